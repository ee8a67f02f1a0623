//! Object operations: streaming reads from staging (pinned to one version), heads, hashing reads,
//! version-exact deletes, listings, and raising tags and locks.
//!
//! Every operation that acts on a staged recording names the exact version that was read and
//! hashed: a station (or an attacker) that writes new bytes at the same key creates a new version,
//! which nothing here reads, copies or deletes by mistake (R2.1).

use crate::error::classify;
use crate::{Store, StoreError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention,
    ObjectLockRetentionMode, Tag, Tagging,
};
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use recvault_core::{Blake3Hash, RetentionClass};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key holding the BLAKE3 of an archived object (a claim: the worker proves it by
/// hashing before it trusts an object it did not just write).
pub const META_BLAKE3: &str = "blake3";
/// Metadata key holding the SHA-256 of an archived object.
pub const META_SHA256: &str = "sha256";
/// The object tag read by the lifecycle rule (R19.1).
pub const RETENTION_TAG: &str = "retention";

/// Chunks in flight between a download and the thread hashing it.
const HASH_CHANNEL_DEPTH: usize = 16;

/// An open read of a staged object.
#[derive(Debug)]
pub struct StagedRead {
    pub body: ByteStream,
    pub size: u64,
    /// The ETag of the bytes being read.
    pub etag: String,
    /// The version being read (`None` only on an unversioned bucket, in a development set-up).
    pub version_id: Option<String>,
}

/// One version or delete marker in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionEntry {
    pub key: String,
    pub version_id: Option<String>,
    /// The current version of its key (or the delete marker hiding it).
    pub is_latest: bool,
    pub delete_marker: bool,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// What a HEAD tells about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectHead {
    pub size: u64,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    /// User metadata, keys lowercased.
    pub metadata: HashMap<String, String>,
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

/// The Object Lock protection of one version (the default: none, as on a version just written).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Protection {
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

impl Protection {
    pub fn of(h: &ObjectHead) -> Self {
        Self { lock_mode: h.lock_mode.clone(), lock_until: h.lock_until, legal_hold: h.legal_hold }
    }
}

pub(crate) fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

pub(crate) fn chrono_time(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

pub(crate) fn tag_query(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| {
            format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A hash fed on a blocking thread.
trait StreamDigest: Send + 'static {
    type Out: Send + 'static;
    fn update(&mut self, bytes: &[u8]);
    fn finish(self) -> Self::Out;
}

impl StreamDigest for blake3::Hasher {
    type Out = Blake3Hash;
    fn update(&mut self, bytes: &[u8]) {
        blake3::Hasher::update(self, bytes);
    }
    fn finish(self) -> Blake3Hash {
        Blake3Hash(*self.finalize().as_bytes())
    }
}

impl StreamDigest for sha2::Sha256 {
    type Out = [u8; 32];
    fn update(&mut self, bytes: &[u8]) {
        sha2::Digest::update(self, bytes);
    }
    fn finish(self) -> [u8; 32] {
        sha2::Digest::finalize(self).into()
    }
}

/// Hashes a byte stream with BLAKE3 on a blocking thread (never on the async workers); returns
/// the size and the hash.
pub(crate) async fn hash_stream(body: ByteStream, op: &'static str) -> Result<(u64, Blake3Hash), StoreError> {
    digest_stream(body, op, blake3::Hasher::new()).await
}

async fn digest_stream<D: StreamDigest>(
    mut body: ByteStream,
    op: &'static str,
    mut digest: D,
) -> Result<(u64, D::Out), StoreError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(HASH_CHANNEL_DEPTH);
    let hasher = tokio::task::spawn_blocking(move || {
        let mut size = 0u64;
        while let Some(chunk) = rx.blocking_recv() {
            size += chunk.len() as u64;
            digest.update(&chunk);
        }
        (size, digest.finish())
    });
    let mut streamed = Ok(());
    loop {
        match body.next().await {
            Some(Ok(chunk)) => {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Some(Err(e)) => {
                streamed = Err(StoreError::Transport { op, detail: e.to_string() });
                break;
            }
            None => break,
        }
    }
    drop(tx);
    let hashed = hasher.await.map_err(|e| StoreError::Other { op, detail: format!("hashing thread: {e}") })?;
    streamed.map(|()| hashed)
}

impl Store {
    /// Opens a streaming read of a staged object: of `version` when given (the one a HEAD saw),
    /// else of the current version, whose id the read reports.
    pub async fn read_staged(&self, bucket: &str, key: &str, version: Option<&str>) -> Result<StagedRead, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("GetObject", bucket, key, e))?;
        let size = out.content_length().and_then(|l| u64::try_from(l).ok()).unwrap_or(0);
        let etag = out.e_tag().unwrap_or_default().to_string();
        let version_id = out.version_id().filter(|v| *v != "null").map(str::to_string);
        Ok(StagedRead { body: out.body, size, etag, version_id })
    }

    /// Reads one version of an object and hashes it (BLAKE3): what proves that an object holds the
    /// bytes its content-addressed key names.
    pub async fn hash_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<(u64, Blake3Hash), StoreError> {
        hash_stream(self.body_of(bucket, key, version).await?, "GetObject body").await
    }

    /// The body of one version of an object (the current one without `version`).
    async fn body_of(&self, bucket: &str, key: &str, version: Option<&str>) -> Result<ByteStream, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("GetObject", bucket, key, e))?;
        Ok(out.body)
    }

    /// Reads one version of an object and hashes it with SHA-256 (what a bundle's record claims).
    pub async fn sha256_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<(u64, [u8; 32]), StoreError> {
        digest_stream(self.body_of(bucket, key, version).await?, "GetObject body", sha2::Sha256::default()).await
    }

    /// Whether a bucket answers (readiness).
    pub async fn head_bucket(&self, bucket: &str) -> Result<(), StoreError> {
        self.client.head_bucket().bucket(bucket).send().await.map_err(|e| classify("HeadBucket", bucket, "", e))?;
        Ok(())
    }

    /// HEAD of the current version of an object; `None` if there is none.
    pub async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectHead>, StoreError> {
        self.head_version(bucket, key, None).await
    }

    /// HEAD of one version of an object (the current one for `None`).
    pub async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<ObjectHead>, StoreError> {
        let req = self.client.head_object().bucket(bucket).key(key).set_version_id(version.map(str::to_string));
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) => {
                let e = classify("HeadObject", bucket, key, e);
                return if e.is_not_found() { Ok(None) } else { Err(e) };
            }
        };
        Ok(Some(ObjectHead {
            size: out.content_length().and_then(|l| u64::try_from(l).ok()).unwrap_or(0),
            etag: out.e_tag().map(str::to_string),
            version_id: out.version_id().filter(|v| *v != "null").map(str::to_string),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect())
                .unwrap_or_default(),
            lock_mode: out.object_lock_mode().map(|m| m.as_str().to_string()),
            lock_until: out.object_lock_retain_until_date().and_then(chrono_time),
            legal_hold: out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
        }))
    }

    /// Uploads a local file (what a docking station does); returns the new version's id, if the
    /// bucket keeps versions.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: &[(String, String)],
    ) -> Result<Option<String>, StoreError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StoreError::Other { op: "PutObject", detail: e.to_string() })?;
        let mut req = self.client.put_object().bucket(bucket).key(key).body(body).content_type("video/mp4");
        for (k, v) in metadata {
            req = req.metadata(k, v);
        }
        let out = req.send().await.map_err(|e| classify("PutObject", bucket, key, e))?;
        Ok(out.version_id().filter(|v| *v != "null").map(str::to_string))
    }

    /// The retention tag of one version of an object (the current one for `None`).
    pub async fn retention_tag(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        self.retention_tag_of(bucket, key, None).await
    }

    pub async fn retention_tag_of(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify("GetObjectTagging", bucket, key, e));
        match out {
            Ok(out) => Ok(out.tag_set().iter().find(|t| t.key() == RETENTION_TAG).map(|t| t.value().to_string())),
            // Ceph's gateway answers an object without tags with 200 and an empty body, which the
            // SDK cannot parse: that is "no tags", not a fault.
            Err(StoreError::Service { status: 200, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// R19.1: sets the retention tag of one version to `class`'s tag unless it already protects
    /// at least as much. Returns true if it wrote the tag.
    pub async fn raise_tag(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        class: RetentionClass,
    ) -> Result<bool, StoreError> {
        let current = self.retention_tag_of(bucket, key, version).await?;
        let wanted = class.tag();
        let keeps_longer = current.as_deref() == Some(RetentionClass::Permanent.tag());
        if current.as_deref() == Some(wanted) || keeps_longer {
            return Ok(false);
        }
        let tag = Tag::builder()
            .key(RETENTION_TAG)
            .value(wanted)
            .build()
            .map_err(|e| StoreError::Other { op: "PutObjectTagging", detail: e.to_string() })?;
        let tagging = Tagging::builder()
            .tag_set(tag)
            .build()
            .map_err(|e| StoreError::Other { op: "PutObjectTagging", detail: e.to_string() })?;
        self.client
            .put_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .tagging(tagging)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| classify("PutObjectTagging", bucket, key, e))?;
        Ok(true)
    }

    /// Raises the Object Lock of one version (protected as `before`) to at least `want`: a
    /// retention date no earlier than `want.lock_until` (in the configured mode when it has none)
    /// and the legal hold if `want` has it. Never shortens a lock, changes its mode or lifts a
    /// hold. Returns the protection the version has afterwards.
    pub async fn raise_protection(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        before: Protection,
        want: &Protection,
    ) -> Result<Protection, StoreError> {
        let version = version.map(str::to_string);
        let mut after = before;
        if let Some(until) = want.lock_until
            && after.lock_until.is_none_or(|t| t < until)
        {
            // Keep a mode the version already has (a store refuses to switch COMPLIANCE anyway).
            let mode = match after.lock_mode.as_deref() {
                Some("COMPLIANCE") => ObjectLockRetentionMode::Compliance,
                Some("GOVERNANCE") => ObjectLockRetentionMode::Governance,
                _ => self.retention_mode(),
            };
            self.client
                .put_object_retention()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.clone())
                .retention(
                    ObjectLockRetention::builder().mode(mode.clone()).retain_until_date(smithy_time(until)).build(),
                )
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await
                .map_err(|e| classify("PutObjectRetention", bucket, key, e))?;
            after.lock_mode = Some(mode.as_str().to_string());
            after.lock_until = Some(until);
        }
        if want.legal_hold && !after.legal_hold {
            self.client
                .put_object_legal_hold()
                .bucket(bucket)
                .key(key)
                .set_version_id(version)
                .legal_hold(ObjectLockLegalHold::builder().status(ObjectLockLegalHoldStatus::On).build())
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await
                .map_err(|e| classify("PutObjectLegalHold", bucket, key, e))?;
            after.legal_hold = true;
        }
        Ok(after)
    }

    /// The protection `class` asks for when a version is first archived now: a lock for the
    /// class's days (whole seconds: what the store keeps and a HEAD reads back), and the legal
    /// hold where the class has one. A version archived earlier keeps its first date (the
    /// retention period runs from the first archiving; see [`Store::raise_protection`]).
    pub fn protection_for(&self, class: RetentionClass, now: DateTime<Utc>) -> Protection {
        let plan = class.lock();
        let until = now + TimeDelta::days(i64::from(plan.retain_days));
        let until = DateTime::from_timestamp(until.timestamp(), 0).unwrap_or(until);
        Protection {
            lock_mode: Some(self.retention_mode().as_str().to_string()),
            lock_until: Some(until),
            legal_hold: plan.legal_hold,
        }
    }

    fn retention_mode(&self) -> ObjectLockRetentionMode {
        match self.cfg.lock_mode {
            crate::LockMode::Compliance => ObjectLockRetentionMode::Compliance,
            crate::LockMode::Governance => ObjectLockRetentionMode::Governance,
        }
    }

    /// Every version in `bucket` (ListObjectVersions, all pages; delete markers left out), for the
    /// staging sweep.
    pub async fn list_staged(&self, bucket: &str) -> Result<Vec<VersionEntry>, StoreError> {
        Ok(self.list_versions(bucket, "").await?.into_iter().filter(|v| !v.delete_marker).collect())
    }

    /// Every version and delete marker under `prefix` (ListObjectVersions, all pages).
    pub async fn list_versions(&self, bucket: &str, prefix: &str) -> Result<Vec<VersionEntry>, StoreError> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(|e| classify("ListObjectVersions", bucket, prefix, e))?;
            let version_of = |v: Option<&str>| v.filter(|v| *v != "null").map(str::to_string);
            out.extend(page.versions().iter().filter_map(|o| {
                Some(VersionEntry {
                    key: o.key()?.to_string(),
                    version_id: version_of(o.version_id()),
                    is_latest: o.is_latest() == Some(true),
                    delete_marker: false,
                    size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                    last_modified: o.last_modified().and_then(chrono_time),
                })
            }));
            out.extend(page.delete_markers().iter().filter_map(|m| {
                Some(VersionEntry {
                    key: m.key()?.to_string(),
                    version_id: version_of(m.version_id()),
                    is_latest: m.is_latest() == Some(true),
                    delete_marker: true,
                    size: 0,
                    last_modified: m.last_modified().and_then(chrono_time),
                })
            }));
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_string);
            version_marker = page.next_version_id_marker().map(str::to_string);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// Puts a lock back in `mode` until `until` (reconciliation of a lock switched to another
    /// mode or removed): only ever called with a date no earlier than the one in force.
    pub async fn restore_lock(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        mode: &str,
        until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mode = ObjectLockRetentionMode::from(mode);
        self.client
            .put_object_retention()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .retention(ObjectLockRetention::builder().mode(mode).retain_until_date(smithy_time(until)).build())
            .bypass_governance_retention(true)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| classify("PutObjectRetention", bucket, key, e))?;
        Ok(())
    }

    /// Removes exactly one version of a staged object: the one that was verified and archived.
    /// A missing version is fine (a duplicate delivery, or an earlier attempt already removed it).
    /// Other versions at the key (bytes a station staged later) are untouched.
    pub async fn delete_staged_version(&self, bucket: &str, key: &str, version: &str) -> Result<(), StoreError> {
        match self.client.delete_object().bucket(bucket).key(key).version_id(version).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = classify("DeleteObject", bucket, key, e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }

    /// A short-lived link to one version of an object (a bundle download, R21.1): anyone holding
    /// it can read those bytes until it expires, and nothing else. Returns the URL and its expiry.
    pub async fn presign_get(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        ttl: std::time::Duration,
    ) -> Result<(String, DateTime<Utc>), StoreError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| StoreError::Other { op: "presign", detail: e.to_string() })?;
        let expires = Utc::now() + TimeDelta::from_std(ttl).unwrap_or_default();
        let req = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .presigned(config)
            .await
            .map_err(|e| classify("GetObject (presign)", bucket, key, e))?;
        Ok((req.uri().to_string(), expires))
    }

    /// Removes an object by key alone. Only for buckets recvault owns outright (benchmarks,
    /// probes): recordings are only ever removed by version, see [`Store::delete_staged_version`].
    pub async fn delete_key(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        match self.client.delete_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = classify("DeleteObject", bucket, key, e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }

    /// True if the object's lock mode is the configured one and runs into the future (for
    /// reports and tests).
    pub fn is_locked(&self, head: &ObjectHead) -> bool {
        let want = match self.cfg.lock_mode {
            crate::LockMode::Compliance => ObjectLockMode::Compliance,
            crate::LockMode::Governance => ObjectLockMode::Governance,
        };
        head.lock_mode.as_deref() == Some(want.as_str()) && head.lock_until.is_some_and(|t| t > Utc::now())
    }
}
