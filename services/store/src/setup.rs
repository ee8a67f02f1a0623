//! Bucket set-up (`recvault setup`): staging bucket, archive bucket with versioning, Object Lock
//! and the two-year lifecycle rule. Idempotent.

use crate::capabilities::two_year_rule;
use crate::error::classify;
use crate::{Store, StoreError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus, ChecksumAlgorithm,
    ExpirationStatus, LifecycleRule, LifecycleRuleFilter, ObjectLockConfiguration, ObjectLockEnabled,
    VersioningConfiguration,
};

impl Store {
    /// Creates the buckets if needed and (re)applies their configuration. Returns one line per
    /// step for the operator.
    pub async fn setup_buckets(&self) -> Result<Vec<String>, StoreError> {
        let mut report = Vec::new();
        let staging = self.cfg.staging_bucket.clone();
        let archive = self.cfg.archive_bucket.clone();
        report.push(self.ensure_bucket(&staging, false).await?);
        report.push(self.ensure_bucket(&archive, true).await?);

        let c = &self.client;
        // Staging keeps versions too: a station that stages a key again makes a new version, so
        // the worker copies and deletes exactly the version it verified (R2.1).
        c.put_bucket_versioning()
            .bucket(&staging)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map_err(|e| classify("PutBucketVersioning", &staging, "", e))?;
        report.push(format!("{staging}: versioning enabled"));
        c.put_bucket_versioning()
            .bucket(&archive)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .map_err(|e| classify("PutBucketVersioning", &archive, "", e))?;
        report.push(format!("{archive}: versioning enabled"));

        let enabled = c
            .get_object_lock_configuration()
            .bucket(&archive)
            .send()
            .await
            .ok()
            .and_then(|o| o.object_lock_configuration().and_then(|l| l.object_lock_enabled()).cloned())
            == Some(ObjectLockEnabled::Enabled);
        if enabled {
            report.push(format!("{archive}: object lock enabled (per-object retention set by the worker)"));
        } else {
            // Buckets created before recvault can have Object Lock turned on afterwards (AWS allows
            // it on versioned buckets); servers that refuse are reported, and the worker refuses them.
            let lock = c
                .put_object_lock_configuration()
                .bucket(&archive)
                .object_lock_configuration(
                    ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).build(),
                )
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await;
            match lock {
                Ok(_) => {
                    report.push(format!("{archive}: object lock enabled (per-object retention set by the worker)"))
                }
                Err(e) => report.push(format!(
                    "{archive}: object lock NOT enabled: {}",
                    classify("PutObjectLockConfiguration", &archive, "", e)
                )),
            }
        }

        let build = |e: aws_sdk_s3::error::BuildError| StoreError::Other { op: "lifecycle", detail: e.to_string() };
        let abort = LifecycleRule::builder()
            .id("recvault-abort-incomplete-uploads")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(7).build(),
            )
            .build()
            .map_err(build)?;
        let archive_rules = BucketLifecycleConfiguration::builder()
            .rules(two_year_rule()?)
            .rules(abort.clone())
            .build()
            .map_err(build)?;
        c.put_bucket_lifecycle_configuration()
            .bucket(&archive)
            .lifecycle_configuration(archive_rules)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| classify("PutBucketLifecycleConfiguration", &archive, "", e))?;
        report.push(format!("{archive}: lifecycle rule recvault-expire-2y (tag retention=2y, 730 days)"));

        // Staging keeps objects of dead-lettered jobs until an operator replays them: no expiry.
        let staging_rules = BucketLifecycleConfiguration::builder().rules(abort).build().map_err(build)?;
        c.put_bucket_lifecycle_configuration()
            .bucket(&staging)
            .lifecycle_configuration(staging_rules)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| classify("PutBucketLifecycleConfiguration", &staging, "", e))?;
        report.push(format!("{staging}: incomplete uploads aborted after 7 days, objects never expire"));
        Ok(report)
    }

    async fn ensure_bucket(&self, bucket: &str, object_lock: bool) -> Result<String, StoreError> {
        let mut req = self.client.create_bucket().bucket(bucket);
        if object_lock {
            req = req.object_lock_enabled_for_bucket(true);
        }
        match req.send().await {
            Ok(_) => Ok(format!("{bucket}: created{}", if object_lock { " with object lock" } else { "" })),
            Err(e) => {
                let exists = e
                    .as_service_error()
                    .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists());
                if exists { Ok(format!("{bucket}: exists")) } else { Err(classify("CreateBucket", bucket, "", e)) }
            }
        }
    }
}
