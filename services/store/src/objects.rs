//! Object operations: streaming reads from staging, archive writes, staging clean-up.
//!
//! Archive writes are idempotent: the key is content-addressed, an existing object with the same
//! BLAKE3 metadata is reused, and tags and locks are only ever raised, never lowered (R19.1), so a
//! job redelivered after a crash converges on the same object with the same protection.

use crate::error::classify;
use crate::{Store, StoreError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, MetadataDirective, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode, Tag, Tagging,
    TaggingDirective,
};
use chrono::{DateTime, TimeDelta, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use recvault_core::RetentionClass;
use std::collections::HashMap;
use std::path::Path;

/// Metadata key holding the BLAKE3 of an archived object; checked before reusing an object.
pub const META_BLAKE3: &str = "blake3";
/// Metadata key holding the SHA-256 of an archived object.
pub const META_SHA256: &str = "sha256";
/// The object tag read by the lifecycle rule (R19.1).
pub const RETENTION_TAG: &str = "retention";

/// S3's limit for a single CopyObject.
const MAX_SINGLE_COPY: u64 = 5 * 1024 * 1024 * 1024;
/// Part size of a multipart server-side copy.
const COPY_PART: u64 = 1024 * 1024 * 1024;

/// Characters left as-is in a copy source: unreserved characters and the path separator.
const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// An open read of a staged object.
#[derive(Debug)]
pub struct StagedRead {
    pub body: ByteStream,
    pub size: u64,
    /// The version of the bytes being read; the archive copy is conditional on it.
    pub etag: String,
}

/// One object in a listing of the staging bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedEntry {
    pub key: String,
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

/// An archive or quarantine write.
#[derive(Debug, Clone)]
pub struct ArchiveRequest {
    /// The staged object, read and hashed by the worker.
    pub source_bucket: String,
    pub source_key: String,
    /// ETag of the bytes that were hashed: the copy fails if the staged object changed since.
    pub source_etag: String,
    pub size: u64,
    /// Content-addressed key in the archive bucket.
    pub key: String,
    pub blake3_hex: String,
    pub sha256_hex: String,
    /// Further user metadata (job id, station, original name).
    pub metadata: Vec<(String, String)>,
    pub content_type: String,
    pub retention: RetentionClass,
    /// Apply Object Lock retention and legal holds (false only in a development set-up).
    pub object_lock: bool,
}

/// Where the bytes ended up and how they are protected.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivedObject {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// The object was already there (an earlier attempt, or the same content from another job).
    pub already_present: bool,
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

/// The Object Lock protection of one version (the default: none, as on a version just written).
#[derive(Debug, Clone, Default)]
struct Protection {
    lock_mode: Option<String>,
    lock_until: Option<DateTime<Utc>>,
    legal_hold: bool,
}

impl Protection {
    fn of(h: &ObjectHead) -> Self {
        Self { lock_mode: h.lock_mode.clone(), lock_until: h.lock_until, legal_hold: h.legal_hold }
    }
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn chrono_time(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

fn tag_query(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| {
            format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC))
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl Store {
    /// Opens a streaming read of a staged object.
    pub async fn read_staged(&self, bucket: &str, key: &str) -> Result<StagedRead, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("GetObject", bucket, key, e))?;
        let size = out.content_length().and_then(|l| u64::try_from(l).ok()).unwrap_or(0);
        let etag = out.e_tag().unwrap_or_default().to_string();
        Ok(StagedRead { body: out.body, size, etag })
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
            version_id: out.version_id().map(str::to_string),
            metadata: out
                .metadata()
                .map(|m| m.iter().map(|(k, v)| (k.to_lowercase(), v.clone())).collect())
                .unwrap_or_default(),
            lock_mode: out.object_lock_mode().map(|m| m.as_str().to_string()),
            lock_until: out.object_lock_retain_until_date().and_then(chrono_time),
            legal_hold: out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
        }))
    }

    /// Uploads a local file (what a docking station does); returns the ETag.
    pub async fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &Path,
        metadata: &[(String, String)],
    ) -> Result<String, StoreError> {
        let body = ByteStream::from_path(path)
            .await
            .map_err(|e| StoreError::Other { op: "PutObject", detail: e.to_string() })?;
        let mut req = self.client.put_object().bucket(bucket).key(key).body(body).content_type("video/mp4");
        for (k, v) in metadata {
            req = req.metadata(k, v);
        }
        let out = req.send().await.map_err(|e| classify("PutObject", bucket, key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    /// Writes a staged object into the archive bucket under `req.key` (server-side copy), with its
    /// hashes as metadata, the R19.1 retention tag, and Object Lock. Idempotent.
    ///
    /// Requests: HEAD, then CopyObject and PutObjectRetention (+ PutObjectLegalHold) for a new
    /// object; the protection recorded is what was set, on a store whose lock enforcement the
    /// start-up probe verified. An object that is already there is only raised, from its HEAD.
    pub async fn archive(&self, req: &ArchiveRequest) -> Result<ArchivedObject, StoreError> {
        let bucket = self.cfg.archive_bucket.clone();
        let (version_id, before, already_present) = match self.head(&bucket, &req.key).await? {
            Some(h) if h.metadata.get(META_BLAKE3) == Some(&req.blake3_hex) => {
                self.raise_tag(&bucket, &req.key, req.retention).await?;
                (h.version_id.clone(), Protection::of(&h), true)
            }
            Some(h) => {
                return Err(StoreError::Other {
                    op: "archive",
                    detail: format!(
                        "{} exists with blake3 {:?}, expected {}: refusing to overwrite",
                        req.key,
                        h.metadata.get(META_BLAKE3),
                        req.blake3_hex
                    ),
                });
            }
            // A new version carries no lock and no hold yet.
            None if req.size > MAX_SINGLE_COPY => (self.copy_multipart(req).await?, Protection::default(), false),
            None => (self.copy_single(req).await?, Protection::default(), false),
        };
        let protection = if req.object_lock {
            self.raise_lock(&bucket, &req.key, version_id.as_deref(), before, req.retention).await?
        } else {
            before
        };
        Ok(ArchivedObject {
            bucket,
            key: req.key.clone(),
            version_id,
            already_present,
            lock_mode: protection.lock_mode,
            lock_until: protection.lock_until,
            legal_hold: protection.legal_hold,
        })
    }

    fn copy_source(req: &ArchiveRequest) -> String {
        format!("{}/{}", req.source_bucket, utf8_percent_encode(&req.source_key, COPY_SOURCE))
    }

    fn metadata(req: &ArchiveRequest) -> HashMap<String, String> {
        let mut m: HashMap<String, String> = req.metadata.iter().cloned().collect();
        m.insert(META_BLAKE3.into(), req.blake3_hex.clone());
        m.insert(META_SHA256.into(), req.sha256_hex.clone());
        m
    }

    fn tags(retention: RetentionClass) -> String {
        tag_query(&[(RETENTION_TAG.to_string(), retention.tag().to_string())])
    }

    async fn copy_single(&self, req: &ArchiveRequest) -> Result<Option<String>, StoreError> {
        let bucket = &self.cfg.archive_bucket;
        let out = self
            .client
            .copy_object()
            .bucket(bucket)
            .key(&req.key)
            .copy_source(Self::copy_source(req))
            .copy_source_if_match(&req.source_etag)
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(Self::metadata(req)))
            .content_type(&req.content_type)
            .tagging_directive(TaggingDirective::Replace)
            .tagging(Self::tags(req.retention))
            .send()
            .await
            .map_err(|e| classify("CopyObject", &req.source_bucket, &req.source_key, e))?;
        Ok(out.version_id().map(str::to_string))
    }

    /// Server-side copy in parts, for objects above the single-copy limit.
    async fn copy_multipart(&self, req: &ArchiveRequest) -> Result<Option<String>, StoreError> {
        let bucket = &self.cfg.archive_bucket;
        let create = self
            .client
            .create_multipart_upload()
            .bucket(bucket)
            .key(&req.key)
            .set_metadata(Some(Self::metadata(req)))
            .content_type(&req.content_type)
            .tagging(Self::tags(req.retention))
            .send()
            .await
            .map_err(|e| classify("CreateMultipartUpload", bucket, &req.key, e))?;
        let upload_id = create.upload_id().unwrap_or_default().to_string();
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1i32;
        while start < req.size {
            let end = (start + COPY_PART).min(req.size) - 1;
            let out = self
                .client
                .upload_part_copy()
                .bucket(bucket)
                .key(&req.key)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(Self::copy_source(req))
                .copy_source_if_match(&req.source_etag)
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(e) => {
                    let _ = self
                        .client
                        .abort_multipart_upload()
                        .bucket(bucket)
                        .key(&req.key)
                        .upload_id(&upload_id)
                        .send()
                        .await;
                    return Err(classify("UploadPartCopy", &req.source_bucket, &req.source_key, e));
                }
            };
            let etag = out.copy_part_result().and_then(|r| r.e_tag()).unwrap_or_default().to_string();
            parts.push(CompletedPart::builder().part_number(number).e_tag(etag).build());
            start = end + 1;
            number += 1;
        }
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(&req.key)
            .upload_id(&upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map_err(|e| classify("CompleteMultipartUpload", bucket, &req.key, e))?;
        Ok(out.version_id().map(str::to_string))
    }

    /// The retention tag of an object.
    pub async fn retention_tag(&self, bucket: &str, key: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("GetObjectTagging", bucket, key, e))?;
        Ok(out.tag_set().iter().find(|t| t.key() == RETENTION_TAG).map(|t| t.value().to_string()))
    }

    /// R19.1: sets the retention tag to `class`'s tag unless it already protects at least as much.
    async fn raise_tag(&self, bucket: &str, key: &str, class: RetentionClass) -> Result<(), StoreError> {
        let current = self.retention_tag(bucket, key).await?;
        let wanted = class.tag();
        let keeps_longer = current.as_deref() == Some(RetentionClass::Permanent.tag());
        if current.as_deref() == Some(wanted) || keeps_longer {
            return Ok(());
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
            .tagging(tagging)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| classify("PutObjectTagging", bucket, key, e))?;
        Ok(())
    }

    /// Raises the Object Lock of one version (protected as `before`) to what `class` needs:
    /// compliance (or governance) retention for the class's days from the first archiving, and a
    /// legal hold where the class has one. Never shortens a lock or lifts a hold. Returns the
    /// protection the version has afterwards.
    async fn raise_lock(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        before: Protection,
        class: RetentionClass,
    ) -> Result<Protection, StoreError> {
        let plan = class.lock();
        let version = version.map(str::to_string);
        let mut after = before;
        // The retention period runs from the first archiving; a later write of the same content
        // (redelivery, or the same file from another job) leaves it as it is.
        if after.lock_until.is_none() {
            // Whole seconds: what the store keeps and a HEAD reads back.
            let until = Utc::now() + TimeDelta::days(i64::from(plan.retain_days));
            let until = DateTime::from_timestamp(until.timestamp(), 0).unwrap_or(until);
            let mode = match self.cfg.lock_mode {
                crate::LockMode::Compliance => ObjectLockRetentionMode::Compliance,
                crate::LockMode::Governance => ObjectLockRetentionMode::Governance,
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
        if plan.legal_hold && !after.legal_hold {
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

    /// Every object in `bucket` (ListObjectsV2, all pages), for the staging sweep.
    pub async fn list_staged(&self, bucket: &str) -> Result<Vec<StagedEntry>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(bucket).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("ListObjectsV2", bucket, "", e))?;
            out.extend(page.contents().iter().filter_map(|o| {
                Some(StagedEntry { key: o.key()?.to_string(), last_modified: o.last_modified().and_then(chrono_time) })
            }));
        }
        Ok(out)
    }

    /// Removes a staged object once its job is committed. A missing object is fine (a duplicate
    /// delivery, or an earlier attempt already removed it).
    pub async fn delete_staged(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        match self.client.delete_object().bucket(bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = classify("DeleteObject", bucket, key, e);
                if e.is_not_found() { Ok(()) } else { Err(e) }
            }
        }
    }

    /// True if the object's lock mode is the configured one (for reports and tests).
    pub fn is_locked(&self, head: &ObjectHead) -> bool {
        let want = match self.cfg.lock_mode {
            crate::LockMode::Compliance => ObjectLockMode::Compliance,
            crate::LockMode::Governance => ObjectLockMode::Governance,
        };
        head.lock_mode.as_deref() == Some(want.as_str()) && head.lock_until.is_some_and(|t| t > Utc::now())
    }
}
