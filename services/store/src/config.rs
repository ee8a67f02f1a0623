//! `[s3]` settings and S3 client construction.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The Object Lock mode of archived objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Nobody, not even the account root, can delete or shorten the lock (production).
    Compliance,
    /// Users with a special permission can bypass the lock (staging environments).
    Governance,
}

/// `[s3]` in `pipeline-config/recvault.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Endpoint URL for S3-compatible servers; unset for AWS.
    pub endpoint: Option<String>,
    pub region: String,
    /// Static credentials; when unset the standard AWS provider chain is used (environment,
    /// web identity on Kubernetes, instance profile).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible servers.
    pub force_path_style: bool,
    pub staging_bucket: String,
    pub archive_bucket: String,
    /// Prefix inside the archive bucket for quarantined bytes.
    pub quarantine_prefix: String,
    pub lock_mode: LockMode,
    /// Run even where the server lacks tagging, versioning, Object Lock or tag-filtered lifecycle
    /// rules. Only for development: the archive then does not meet R2.1/R19.1/R21.1.
    pub dev_mode: bool,
    /// Prefix of the throwaway buckets the capability probe creates and removes.
    pub probe_bucket_prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            force_path_style: true,
            staging_bucket: "recvault-staging".into(),
            archive_bucket: "recvault-archive".into(),
            quarantine_prefix: "quarantine/".into(),
            lock_mode: LockMode::Compliance,
            dev_mode: false,
            probe_bucket_prefix: "recvault-probe".into(),
        }
    }
}

pub(crate) async fn client(cfg: &StoreConfig) -> aws_sdk_s3::Client {
    use aws_config::{BehaviorVersion, Region};
    use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};

    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(cfg.region.clone()));
    if let Some(endpoint) = &cfg.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let (Some(id), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret.expose_secret(),
            None,
            None,
            "recvault-config",
        ));
    }
    let shared = loader.load().await;
    // The worker hashes every byte itself (BLAKE3 + SHA-256); the SDK's default CRC trailers on
    // every request cost 5x on large uploads in debug builds and add nothing. Operations that
    // need a checksum set one explicitly (Object Lock calls).
    let conf = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(cfg.force_path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}
