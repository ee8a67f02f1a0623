//! Configuration: defaults in code, then a TOML file (`pipeline-config/recvault.toml` documents
//! every key), then environment variables `RECVAULT_<SECTION>__<KEY>` (e.g. `RECVAULT_AMQP__URL`).
//! Unknown keys are errors, so a typo cannot silently fall back to a default.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use recvault_core::probe::ProbePolicy;
use recvault_db::DbConfig;
use recvault_queue::QueueConfig;
use recvault_store::StoreConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Every setting of every recvault process.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub amqp: QueueConfig,
    pub s3: StoreConfig,
    pub database: DbConfig,
    pub worker: WorkerConfig,
    pub probe: ProbeSettings,
    pub log: LogConfig,
}

/// `[worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Jobs processed at once; also the AMQP prefetch.
    pub concurrency: u16,
    /// Where staged files are spooled while they are verified.
    pub spool_dir: PathBuf,
    /// On SIGTERM, how long in-flight jobs may run before they are handed back to the queue.
    pub shutdown_grace_secs: u64,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    pub metrics_addr: SocketAddr,
    /// Name in attempt records and the broker's connection list; defaults to the host name.
    pub id: Option<String>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            spool_dir: std::env::temp_dir().join("recvault-spool"),
            shutdown_grace_secs: 60,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9898)),
            id: None,
        }
    }
}

impl WorkerConfig {
    pub fn worker_id(&self) -> String {
        self.id.clone().unwrap_or_else(|| {
            std::env::var("HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
                .unwrap_or_else(|| "recvault-worker".into())
        })
    }
}

/// `[probe]`: thresholds of the media assessment.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// A jump longer than this in a track's timestamps is a gap inside the file (R12.1).
    pub gap_threshold_ms: u64,
    /// Packets may end this much before the declared duration before a file counts as truncated.
    pub truncation_tolerance_ms: u64,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        let p = ProbePolicy::default();
        Self {
            gap_threshold_ms: p.gap_threshold_ns / 1_000_000,
            truncation_tolerance_ms: p.truncation_tolerance_ns / 1_000_000,
        }
    }
}

impl ProbeSettings {
    pub fn policy(&self) -> ProbePolicy {
        ProbePolicy {
            gap_threshold_ns: self.gap_threshold_ms.saturating_mul(1_000_000),
            truncation_tolerance_ns: self.truncation_tolerance_ms.saturating_mul(1_000_000),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
    /// `tracing` filter directives (overridden by `RUST_LOG`).
    pub filter: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, filter: "info".into() }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct SettingsError(#[from] Box<figment::Error>);

impl Settings {
    /// Loads defaults, then `file` (if given), then `RECVAULT_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut fig = Figment::new();
        if let Some(f) = file {
            fig = fig.merge(Toml::file_exact(f));
        }
        // Only `SECTION__KEY` variables are settings; `RECVAULT_CONFIG` and the like are not.
        let env = Env::prefixed("RECVAULT_").filter(|k| k.as_str().contains("__")).split("__");
        Self::extract(fig.merge(env))
    }

    /// Loads from a TOML string only (tests, examples).
    pub fn from_toml(toml: &str) -> Result<Self, SettingsError> {
        Self::extract(Figment::new().merge(Toml::string(toml)))
    }

    fn extract(fig: Figment) -> Result<Self, SettingsError> {
        let s: Settings = fig.extract().map_err(Box::new)?;
        s.validate().map_err(|m| Box::new(figment::Error::from(m)))?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), String> {
        if self.worker.concurrency == 0 {
            return Err("worker.concurrency must be at least 1".into());
        }
        if self.amqp.prefix.is_empty() || self.amqp.prefix.contains(char::is_whitespace) {
            return Err("amqp.prefix must be a non-empty name without spaces".into());
        }
        if self.amqp.retry_delays_ms.contains(&0) {
            return Err("amqp.retry_delays_ms must be positive".into());
        }
        if self.s3.staging_bucket == self.s3.archive_bucket {
            return Err(
                "s3.staging_bucket and s3.archive_bucket must differ: staged objects are deleted after archiving"
                    .into(),
            );
        }
        if !self.s3.quarantine_prefix.ends_with('/') || self.s3.quarantine_prefix.starts_with("recordings/") {
            return Err("s3.quarantine_prefix must end with '/' and lie outside recordings/".into());
        }
        if self.s3.access_key_id.is_some() != self.s3.secret_access_key.is_some() {
            return Err("s3.access_key_id and s3.secret_access_key go together".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENTED: &str = include_str!("../../../pipeline-config/recvault.toml");

    #[test]
    fn the_documented_file_holds_exactly_the_code_defaults() {
        let from_file = Settings::from_toml(DOCUMENTED).expect("pipeline-config/recvault.toml parses");
        let d = Settings::default();
        assert_eq!(format!("{:?}", from_file.amqp), format!("{:?}", d.amqp));
        assert_eq!(format!("{:?}", from_file.s3), format!("{:?}", d.s3));
        assert_eq!(format!("{:?}", from_file.database), format!("{:?}", d.database));
        assert_eq!(from_file.probe, d.probe);
        assert_eq!(from_file.log, d.log);
        assert_eq!(from_file.worker.concurrency, d.worker.concurrency);
        assert_eq!(from_file.worker.metrics_addr, d.worker.metrics_addr);
        assert_eq!(from_file.worker.shutdown_grace_secs, d.worker.shutdown_grace_secs);
    }

    #[test]
    fn every_key_documents_its_environment_variable() {
        let table: toml::Table = DOCUMENTED.parse().unwrap();
        let mut missing = Vec::new();
        for (section, keys) in &table {
            for key in keys.as_table().unwrap().keys() {
                let var = format!("RECVAULT_{}__{}", section.to_uppercase(), key.to_uppercase());
                if !DOCUMENTED.contains(&var) {
                    missing.push(var);
                }
            }
        }
        // keys that are commented out (secrets, optional values) are documented the same way
        for var in [
            "RECVAULT_S3__ACCESS_KEY_ID",
            "RECVAULT_S3__SECRET_ACCESS_KEY",
            "RECVAULT_S3__ENDPOINT",
            "RECVAULT_WORKER__SPOOL_DIR",
            "RECVAULT_WORKER__ID",
        ] {
            if !DOCUMENTED.contains(var) {
                missing.push(var.to_string());
            }
        }
        assert!(missing.is_empty(), "undocumented: {missing:?}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let err = Settings::from_toml("[worker]\nconcurency = 3\n").unwrap_err().to_string();
        assert!(err.contains("concurency"), "{err}");
        assert!(Settings::from_toml("[worker]\nconcurrency = 0\n").is_err());
        assert!(Settings::from_toml("[s3]\narchive_bucket = \"recvault-staging\"\n").is_err());
        assert!(Settings::from_toml("[s3]\naccess_key_id = \"x\"\n").is_err());
        assert!(Settings::from_toml("[s3]\nquarantine_prefix = \"q\"\n").is_err());
        let ok = Settings::from_toml("[worker]\nconcurrency = 4\n[probe]\ngap_threshold_ms = 250\n").unwrap();
        assert_eq!(ok.worker.concurrency, 4);
        assert_eq!(ok.probe.policy().gap_threshold_ns, 250_000_000);
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let s = Settings::from_toml(
            "[amqp]\nurl = \"amqp://u:hunter2@h/v\"\n[database]\nurl = \"postgres://u:hunter2@h/d\"\n[s3]\naccess_key_id = \"AK\"\nsecret_access_key = \"hunter2\"\n",
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
