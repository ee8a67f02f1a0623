//! What the S3 server really does, checked by behaviour rather than by status codes.
//!
//! [`Store::probe_capabilities`] creates a throwaway bucket, exercises each feature the archive
//! depends on, reads the effect back, and removes the bucket. [`Store::check_buckets`]
//! checks that the configured archive bucket is set up to use them.

use crate::error::classify;
use crate::objects::RETENTION_TAG;
use crate::{Store, StoreError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, ChecksumAlgorithm, ExpirationStatus, LifecycleExpiration,
    LifecycleRule, LifecycleRuleFilter, ObjectIdentifier, ObjectLockEnabled, ObjectLockRetention,
    ObjectLockRetentionMode, Tag,
};
use chrono::{TimeDelta, Utc};
use md5::Digest;

/// How long the compliance probe's lock lasts: the probe waits it out before removing its bucket.
const COMPLIANCE_PROBE_SECS: i64 = 4;
use serde::Serialize;

/// A feature the archive's guarantees rest on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Object tags are stored and read back (the retention class, R19.1).
    Tagging,
    /// Versioning keeps overwritten and deleted objects (R21.1: nobody deletes or modifies originals).
    Versioning,
    /// Object Lock retention is stored on a version.
    ObjectLock,
    /// A locked version cannot be deleted (WORM is enforced, not just recorded).
    LockEnforced,
    /// A lifecycle rule keeps its tag filter (otherwise it would expire every object, R19.1).
    LifecycleTagFilter,
    /// Server-side copy (otherwise the worker uploads the bytes again).
    ServerSideCopy,
    /// A write whose Content-MD5 does not match its body is refused (the store checks what it
    /// receives; the archive's upload path relies on it).
    ContentVerified,
    /// A COMPLIANCE retention date cannot be moved earlier.
    ComplianceNotShortened,
    /// A COMPLIANCE lock cannot be switched to GOVERNANCE (which a privileged user can bypass).
    ComplianceModeFixed,
    /// A COMPLIANCE-locked version cannot be deleted, not even with the governance bypass.
    ComplianceNotBypassed,
    /// The staging bucket keeps versions, so a version that was verified can be copied and
    /// deleted exactly, and bytes staged again at the same key are not lost.
    StagingVersioning,
}

impl Capability {
    pub const ALL: [Capability; 11] = [
        Self::Tagging,
        Self::Versioning,
        Self::ObjectLock,
        Self::LockEnforced,
        Self::LifecycleTagFilter,
        Self::ServerSideCopy,
        Self::ContentVerified,
        Self::ComplianceNotShortened,
        Self::ComplianceModeFixed,
        Self::ComplianceNotBypassed,
        Self::StagingVersioning,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::Tagging => "tagging",
            Self::Versioning => "versioning",
            Self::ObjectLock => "object_lock",
            Self::LockEnforced => "lock_enforced",
            Self::LifecycleTagFilter => "lifecycle_tag_filter",
            Self::ServerSideCopy => "server_side_copy",
            Self::ContentVerified => "content_verified",
            Self::ComplianceNotShortened => "compliance_not_shortened",
            Self::ComplianceModeFixed => "compliance_mode_fixed",
            Self::ComplianceNotBypassed => "compliance_not_bypassed",
            Self::StagingVersioning => "staging_versioning",
        }
    }

    /// The guarantee lost without it, for the start-up message.
    pub fn guarantee(self) -> &'static str {
        match self {
            Self::Tagging => "retention classes cannot be attached to objects (R19.1)",
            Self::Versioning => "an overwrite or delete would destroy an original (R21.1)",
            Self::ObjectLock => "originals are not write-once (R2.1, R21.1)",
            Self::LockEnforced => "locked originals can still be deleted (R2.1, R21.1)",
            Self::LifecycleTagFilter => "the 2-year expiry rule would expire permanent recordings too (R19.1)",
            Self::ServerSideCopy => "archiving re-uploads the bytes (slower, same guarantees)",
            Self::ContentVerified => "an upload damaged on the way would be stored as it arrived (R2.1)",
            Self::ComplianceNotShortened => "a locked original could be released early and deleted (R19.1, R21.1)",
            Self::ComplianceModeFixed => {
                "a locked original could be switched to governance mode and deleted with a bypass (R21.1)"
            }
            Self::ComplianceNotBypassed => "a locked original could be deleted with the governance bypass (R21.1)",
            Self::StagingVersioning => {
                "a staged recording could be overwritten before it is archived, and the clean-up could delete bytes staged again at the same key (R2.1)"
            }
        }
    }

    /// Whether running without it breaks a rule of the regulation (as opposed to costing speed).
    pub fn required(self) -> bool {
        !matches!(self, Self::ServerSideCopy)
    }
}

/// One check and what was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub capability: Capability,
    pub ok: bool,
    pub detail: String,
}

/// The outcome of a probe or a bucket check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    pub checks: Vec<Check>,
}

impl Capabilities {
    fn record(&mut self, capability: Capability, ok: bool, detail: impl Into<String>) {
        self.checks.retain(|c| c.capability != capability);
        self.checks.push(Check { capability, ok, detail: detail.into() });
    }

    pub fn has(&self, c: Capability) -> bool {
        self.checks.iter().any(|x| x.capability == c && x.ok)
    }

    /// Required capabilities that failed.
    pub fn missing_required(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.ok && c.capability.required()).collect()
    }

    /// Everything that failed, one line each, naming the guarantee lost.
    pub fn describe_missing(&self) -> String {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {} ({})", c.capability.code(), c.capability.guarantee(), c.detail))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// What a store set up by `recvault setup` provides, for workers that skip the behaviour probe
    /// (`worker.probe_store_at_start = false`); the archive bucket's own check still runs.
    pub fn assumed_from_setup() -> Self {
        let mut caps = Self::default();
        for c in Capability::ALL {
            caps.record(c, true, "assumed from recvault setup (probe skipped at start-up)");
        }
        caps
    }

    pub fn merge(&mut self, other: Capabilities) {
        for c in other.checks {
            // a failure from either source wins
            if !c.ok || !self.checks.iter().any(|x| x.capability == c.capability) {
                self.record(c.capability, c.ok, c.detail);
            }
        }
    }
}

/// The lifecycle rule that expires two-year recordings (R19.1(1)).
pub(crate) fn two_year_rule() -> Result<LifecycleRule, StoreError> {
    expiry_rule(i32::try_from(recvault_core::retention::TWO_YEARS_DAYS).unwrap_or(730))
}

/// The two-year rule's shape with another day count: only objects tagged `retention=2y` expire
/// (tests run it with one "day" on a store whose lifecycle days are seconds long). Noncurrent
/// versions go a day after they stop being current, if their lock allows.
pub fn expiry_rule(days: i32) -> Result<LifecycleRule, StoreError> {
    let build = |e: aws_sdk_s3::error::BuildError| StoreError::Other { op: "lifecycle rule", detail: e.to_string() };
    let tag = Tag::builder().key(RETENTION_TAG).value("2y").build().map_err(build)?;
    LifecycleRule::builder()
        .id("recvault-expire-2y")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().tag(tag).build())
        .expiration(LifecycleExpiration::builder().days(days).build())
        .noncurrent_version_expiration(
            aws_sdk_s3::types::NoncurrentVersionExpiration::builder().noncurrent_days(1).build(),
        )
        .build()
        .map_err(build)
}

fn rule_keeps_tag_filter(rules: &[LifecycleRule]) -> bool {
    rules.iter().any(|r| {
        r.status() == &ExpirationStatus::Enabled
            && r.filter().and_then(|f| f.tag()).is_some_and(|t| t.key() == RETENTION_TAG && t.value() == "2y")
            && r.expiration().and_then(|e| e.days()).is_some()
    })
}

impl Store {
    /// Exercises every capability on a throwaway bucket and removes it again.
    pub async fn probe_capabilities(&self) -> Result<Capabilities, StoreError> {
        let name = format!("{}-{}", self.cfg.probe_bucket_prefix, &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut caps = Capabilities::default();
        let c = &self.client;
        let locked_bucket = c.create_bucket().bucket(&name).object_lock_enabled_for_bucket(true).send().await;
        if let Err(e) = locked_bucket {
            let e = classify("CreateBucket", &name, "", e);
            caps.record(Capability::ObjectLock, false, format!("creating a bucket with object lock failed: {e}"));
            c.create_bucket().bucket(&name).send().await.map_err(|e| classify("CreateBucket", &name, "", e))?;
        }
        let result = self.probe_in(&name, &mut caps).await;
        let lock_ends = match &result {
            Ok(()) if caps.has(Capability::ObjectLock) => self.probe_compliance(&name, &mut caps).await,
            _ => Ok(None),
        };
        // The compliance probe's lock cannot be removed early (that is the point): wait it out.
        if let Ok(Some(until)) = lock_ends {
            let left = (until - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(left + std::time::Duration::from_millis(1500)).await;
        }
        self.remove_probe_bucket(&name).await;
        result.and(lock_ends).map(|_| caps)
    }

    /// The checks a WORM store must pass and a mock does not: a COMPLIANCE lock cannot be
    /// shortened, switched to GOVERNANCE or bypassed, each judged by what the version looks like
    /// afterwards, not by the status code. Returns when the probe's own lock ends.
    async fn probe_compliance(
        &self,
        bucket: &str,
        caps: &mut Capabilities,
    ) -> Result<Option<chrono::DateTime<Utc>>, StoreError> {
        let c = &self.client;
        let key = "compliance";
        let put = c
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"recvault compliance probe"))
            .send()
            .await
            .map_err(|e| classify("PutObject", bucket, key, e))?;
        let version = put.version_id().map(str::to_string);
        let now = Utc::now();
        let until = chrono::DateTime::from_timestamp(now.timestamp() + COMPLIANCE_PROBE_SECS, 0).unwrap_or(now);
        let retention = |mode: ObjectLockRetentionMode, t: chrono::DateTime<Utc>| {
            c.put_object_retention()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.clone())
                .retention(
                    ObjectLockRetention::builder()
                        .mode(mode)
                        .retain_until_date(aws_smithy_types::DateTime::from_secs(t.timestamp()))
                        .build(),
                )
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
        };
        if let Err(e) = retention(ObjectLockRetentionMode::Compliance, until).send().await {
            let why = format!("could not set a compliance lock: {}", classify("PutObjectRetention", bucket, key, e));
            for cap in
                [Capability::ComplianceNotShortened, Capability::ComplianceModeFixed, Capability::ComplianceNotBypassed]
            {
                caps.record(cap, false, why.clone());
            }
            return Ok(None);
        }
        let still_locked = |h: &Option<crate::ObjectHead>| {
            h.as_ref().is_some_and(|h| h.lock_mode.as_deref() == Some("COMPLIANCE") && h.lock_until >= Some(until))
        };

        let shorten = retention(ObjectLockRetentionMode::Compliance, until - TimeDelta::seconds(2)).send().await;
        let after = self.head_version(bucket, key, version.as_deref()).await?;
        let kept = shorten.is_err() && still_locked(&after);
        caps.record(
            Capability::ComplianceNotShortened,
            kept,
            if kept {
                "shortening a compliance lock was refused".to_string()
            } else {
                format!(
                    "after an attempt to shorten it the lock reads {:?} until {:?}",
                    after.as_ref().and_then(|h| h.lock_mode.clone()),
                    after.as_ref().and_then(|h| h.lock_until)
                )
            },
        );

        let switch =
            retention(ObjectLockRetentionMode::Governance, until).bypass_governance_retention(true).send().await;
        let after = self.head_version(bucket, key, version.as_deref()).await?;
        let kept = switch.is_err() && still_locked(&after);
        caps.record(
            Capability::ComplianceModeFixed,
            kept,
            if kept {
                "switching a compliance lock to governance was refused".to_string()
            } else {
                format!(
                    "after an attempt to switch it the lock reads {:?}",
                    after.as_ref().and_then(|h| h.lock_mode.clone())
                )
            },
        );

        let bypass = c
            .delete_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.clone())
            .bypass_governance_retention(true)
            .send()
            .await;
        let after = self.head_version(bucket, key, version.as_deref()).await?;
        let kept = bypass.is_err() && after.is_some();
        caps.record(
            Capability::ComplianceNotBypassed,
            kept,
            if kept {
                "deleting a compliance-locked version with the governance bypass was refused"
            } else {
                "a compliance-locked version was deleted with the governance bypass"
            },
        );
        Ok(Some(until))
    }

    async fn probe_in(&self, bucket: &str, caps: &mut Capabilities) -> Result<(), StoreError> {
        let c = &self.client;
        let key = "probe";
        let put = c
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"recvault capability probe"))
            .tagging(format!("{RETENTION_TAG}=2y"))
            .send()
            .await
            .map_err(|e| classify("PutObject", bucket, key, e))?;
        let version = put.version_id().map(str::to_string);

        match self.retention_tag(bucket, key).await {
            Ok(Some(v)) if v == "2y" => caps.record(Capability::Tagging, true, "tag read back"),
            Ok(other) => caps.record(Capability::Tagging, false, format!("tag read back as {other:?}")),
            Err(e) => caps.record(Capability::Tagging, false, e.to_string()),
        }

        // Content verification: a body that does not match its Content-MD5 must be refused, and
        // one that matches accepted.
        let body: &'static [u8] = b"recvault content check";
        let wrong = aws_smithy_types::base64::encode(<[u8; 16]>::from(md5::Md5::digest(b"other bytes")));
        let right = aws_smithy_types::base64::encode(<[u8; 16]>::from(md5::Md5::digest(body)));
        let put_md5 = |md5: String| {
            c.put_object().bucket(bucket).key("content-md5").body(ByteStream::from_static(body)).content_md5(md5).send()
        };
        match (put_md5(wrong).await, put_md5(right).await) {
            (Err(e), Ok(_)) => {
                let e = classify("PutObject", bucket, "content-md5", e);
                let digest_error = matches!(&e, StoreError::Service { code, .. } if code.contains("Digest"));
                caps.record(
                    Capability::ContentVerified,
                    digest_error,
                    if digest_error {
                        format!("a wrong Content-MD5 was refused ({e})")
                    } else {
                        format!("refused for another reason: {e}")
                    },
                )
            }
            (Ok(_), _) => caps.record(Capability::ContentVerified, false, "a body with a wrong Content-MD5 was stored"),
            (Err(_), Err(e)) => caps.record(
                Capability::ContentVerified,
                false,
                format!(
                    "a body with the right Content-MD5 was refused too: {}",
                    classify("PutObject", bucket, "content-md5", e)
                ),
            ),
        }

        let copy = c.copy_object().bucket(bucket).key("probe-copy").copy_source(format!("{bucket}/{key}")).send().await;
        match copy {
            Ok(_) => caps.record(Capability::ServerSideCopy, true, "copied"),
            Err(e) => {
                caps.record(Capability::ServerSideCopy, false, classify("CopyObject", bucket, key, e).to_string())
            }
        }

        // Versioning by behaviour: a second write of the key must keep the first as its own version.
        let second = c
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"recvault capability probe, second version"))
            .send()
            .await
            .map_err(|e| classify("PutObject", bucket, key, e))?;
        let listed = c.list_object_versions().bucket(bucket).prefix(key).send().await;
        let kept = listed.as_ref().map(|l| l.versions().iter().filter(|v| v.key() == Some(key)).count()).unwrap_or(0);
        let distinct = version.is_some() && second.version_id().is_some() && second.version_id() != version.as_deref();
        caps.record(
            Capability::Versioning,
            distinct && kept >= 2,
            format!(
                "two writes of one key gave version ids {:?} and {:?}, {kept} versions listed",
                version,
                second.version_id()
            ),
        );

        if !caps.checks.iter().any(|x| x.capability == Capability::ObjectLock) {
            let until = Utc::now() + TimeDelta::days(1);
            let retention = c
                .put_object_retention()
                .bucket(bucket)
                .key(key)
                .set_version_id(version.clone())
                .retention(
                    ObjectLockRetention::builder()
                        .mode(ObjectLockRetentionMode::Governance)
                        .retain_until_date(aws_smithy_types::DateTime::from_secs(until.timestamp()))
                        .build(),
                )
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await;
            match retention {
                Err(e) => caps.record(
                    Capability::ObjectLock,
                    false,
                    classify("PutObjectRetention", bucket, key, e).to_string(),
                ),
                Ok(_) => {
                    let head = self.head_version(bucket, key, version.as_deref()).await?;
                    let stored = head
                        .as_ref()
                        .is_some_and(|h| h.lock_mode.as_deref() == Some("GOVERNANCE") && h.lock_until.is_some());
                    caps.record(
                        Capability::ObjectLock,
                        stored,
                        if stored {
                            "retention read back".to_string()
                        } else {
                            format!("retention not read back: {head:?}")
                        },
                    );
                }
            }
        }
        if caps.has(Capability::ObjectLock) {
            // Prove the delete permission on an unlocked version first, so a refusal of the locked
            // one means the lock, not missing rights.
            let unlocked = c
                .delete_object()
                .bucket(bucket)
                .key(key)
                .set_version_id(second.version_id().map(str::to_string))
                .send()
                .await;
            let delete = c.delete_object().bucket(bucket).key(key).set_version_id(version.clone()).send().await;
            match (unlocked, delete) {
                (Err(e), _) => caps.record(
                    Capability::LockEnforced,
                    false,
                    format!(
                        "cannot tell: deleting an unlocked version failed too ({})",
                        classify("DeleteObject", bucket, key, e)
                    ),
                ),
                (Ok(_), Ok(_)) => caps.record(Capability::LockEnforced, false, "a locked version was deleted"),
                (Ok(_), Err(_)) => caps.record(
                    Capability::LockEnforced,
                    true,
                    "delete of a locked version refused, of an unlocked one allowed",
                ),
            }
        } else {
            caps.record(Capability::LockEnforced, false, "no object lock to enforce");
        }

        let rule = two_year_rule()?;
        let put_rule = c
            .put_bucket_lifecycle_configuration()
            .bucket(bucket)
            .lifecycle_configuration(
                BucketLifecycleConfiguration::builder()
                    .rules(rule)
                    .build()
                    .map_err(|e| StoreError::Other { op: "lifecycle", detail: e.to_string() })?,
            )
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await;
        match put_rule {
            Err(e) => caps.record(
                Capability::LifecycleTagFilter,
                false,
                classify("PutBucketLifecycleConfiguration", bucket, "", e).to_string(),
            ),
            Ok(_) => {
                let got = c.get_bucket_lifecycle_configuration().bucket(bucket).send().await;
                match got {
                    Ok(got) if rule_keeps_tag_filter(got.rules()) => {
                        caps.record(Capability::LifecycleTagFilter, true, "tag filter read back")
                    }
                    Ok(got) => caps.record(
                        Capability::LifecycleTagFilter,
                        false,
                        format!("rule read back without its tag filter: {:?}", got.rules()),
                    ),
                    Err(e) => caps.record(
                        Capability::LifecycleTagFilter,
                        false,
                        classify("GetBucketLifecycleConfiguration", bucket, "", e).to_string(),
                    ),
                }
            }
        }
        Ok(())
    }

    /// Best effort: every version (bypassing the governance lock the probe set) and the bucket.
    async fn remove_probe_bucket(&self, bucket: &str) {
        let c = &self.client;
        if let Ok(list) = c.list_object_versions().bucket(bucket).send().await {
            let mut ids: Vec<ObjectIdentifier> = Vec::new();
            for v in list.versions() {
                ids.extend(
                    ObjectIdentifier::builder()
                        .set_key(v.key().map(str::to_string))
                        .set_version_id(v.version_id().map(str::to_string))
                        .build()
                        .ok(),
                );
            }
            for m in list.delete_markers() {
                ids.extend(
                    ObjectIdentifier::builder()
                        .set_key(m.key().map(str::to_string))
                        .set_version_id(m.version_id().map(str::to_string))
                        .build()
                        .ok(),
                );
            }
            for id in ids {
                let _ = c
                    .delete_object()
                    .bucket(bucket)
                    .key(id.key())
                    .set_version_id(id.version_id().map(str::to_string))
                    .bypass_governance_retention(true)
                    .send()
                    .await;
            }
        }
        if let Err(e) = c.delete_bucket().bucket(bucket).send().await {
            tracing::warn!(bucket, error = %classify("DeleteBucket", bucket, "", e), "could not remove the capability probe bucket");
        }
    }

    /// Checks the buckets are configured for the guarantees: the archive bucket with Object Lock,
    /// versioning and the two-year lifecycle rule with its tag filter; the staging bucket with
    /// versioning.
    pub async fn check_buckets(&self) -> Result<Capabilities, StoreError> {
        let bucket = &self.cfg.archive_bucket;
        let c = &self.client;
        let mut caps = Capabilities::default();
        match c.get_object_lock_configuration().bucket(bucket).send().await {
            Ok(out) => {
                let enabled = out.object_lock_configuration().and_then(|l| l.object_lock_enabled())
                    == Some(&ObjectLockEnabled::Enabled);
                caps.record(
                    Capability::ObjectLock,
                    enabled,
                    format!("archive bucket {bucket}: object lock {}", if enabled { "enabled" } else { "not enabled" }),
                );
            }
            Err(e) => caps.record(
                Capability::ObjectLock,
                false,
                format!("archive bucket {bucket}: {}", classify("GetObjectLockConfiguration", bucket, "", e)),
            ),
        }
        // S3 cannot enable Object Lock without versioning, nor suspend versioning under it; some
        // servers (moto) also answer GetBucketVersioning with a body the SDK cannot parse.
        let lock_on = caps.has(Capability::ObjectLock);
        match c.get_bucket_versioning().bucket(bucket).send().await {
            Ok(v) => {
                let on = v.status() == Some(&BucketVersioningStatus::Enabled);
                caps.record(
                    Capability::Versioning,
                    on,
                    format!("archive bucket {bucket}: versioning {:?}", v.status()),
                );
            }
            Err(e) => caps.record(
                Capability::Versioning,
                lock_on,
                format!(
                    "archive bucket {bucket}: versioning unreadable ({}){}",
                    classify("GetBucketVersioning", bucket, "", e),
                    if lock_on { ", implied by object lock" } else { "" }
                ),
            ),
        }
        match c.get_bucket_lifecycle_configuration().bucket(bucket).send().await {
            Ok(out) => {
                let ok = rule_keeps_tag_filter(out.rules());
                caps.record(
                    Capability::LifecycleTagFilter,
                    ok,
                    format!("archive bucket {bucket}: 2-year rule {}", if ok { "present" } else { "missing" }),
                );
            }
            Err(e) => caps.record(
                Capability::LifecycleTagFilter,
                false,
                format!("archive bucket {bucket}: {}", classify("GetBucketLifecycleConfiguration", bucket, "", e)),
            ),
        }
        let staging = &self.cfg.staging_bucket;
        match c.get_bucket_versioning().bucket(staging).send().await {
            Ok(v) => {
                let on = v.status() == Some(&BucketVersioningStatus::Enabled);
                caps.record(
                    Capability::StagingVersioning,
                    on,
                    format!("staging bucket {staging}: versioning {:?}", v.status()),
                );
            }
            Err(e) => caps.record(
                Capability::StagingVersioning,
                false,
                format!("staging bucket {staging}: {}", classify("GetBucketVersioning", staging, "", e)),
            ),
        }
        Ok(caps)
    }
}
