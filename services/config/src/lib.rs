//! recvault-config: the settings of every recvault process, and their log set-up.
//!
//! Defaults in code, then a TOML file (`pipeline-config/recvault.toml` documents every key), then
//! environment variables `RECVAULT_<SECTION>__<KEY>` (e.g. `RECVAULT_AMQP__URL`). Unknown keys are
//! errors, so a typo cannot silently fall back to a default.
//!
//! Its own crate so that the worker, the API, the station and the CLI share one `Settings`
//! without any of them depending on another process's crate (the API never links GStreamer).
//!
//! # Layout
//! - this file: [`Settings`] and one struct per section.
//! - [`logging`]: text for people, JSON for collectors.

pub mod logging;

use chrono::{FixedOffset, TimeDelta};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use recvault_core::analysis::AnalysisPolicy;
use recvault_core::calendar::WorkCalendar;
use recvault_core::deadlines::TimePolicy;
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
    pub analysis: AnalysisSettings,
    pub api: ApiConfig,
    pub bundles: BundleConfig,
    pub log: LogConfig,
}

/// `[api]`: the HTTP API for case systems and people (`recvault api`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the API listens on.
    pub listen_addr: SocketAddr,
    /// The public keys tokens are verified with: a JWKS file (EdDSA or RS256 keys with a `kid`).
    pub jwks_file: Option<PathBuf>,
    /// Or a JWKS URL, fetched at start-up.
    pub jwks_url: Option<String>,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// The `aud` every token must carry.
    pub audience: String,
    /// How long a bundle download link stays valid (R21.1: short-lived, every one recorded).
    pub download_link_secs: u64,
    /// Page size when a search names none, and the most it may ask for.
    pub default_page: u32,
    pub max_page: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            jwks_file: None,
            jwks_url: None,
            issuer: "recvault".into(),
            audience: "recvault-api".into(),
            download_link_secs: 300,
            default_page: 50,
            max_page: 200,
        }
    }
}

/// `[bundles]`: the R19.1(2) case-file bundles (BagIt bags) the worker builds.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BundleConfig {
    /// `Source-Organization` of every bag.
    pub organization: String,
    /// Prefix of bundle objects in the archive bucket.
    pub prefix: String,
    /// Bytes per part of the multipart upload (also the builder's buffer: its memory does not grow
    /// with the bundle). At least 5 MiB (S3's minimum part).
    pub part_bytes: u64,
    /// Bundles built at once by one worker.
    pub concurrency: u16,
    /// Read every uploaded bundle back and verify it as a bag (structure, every manifest, the
    /// SHA-256 of the whole object) before it is recorded ready: no bundle is ever ready that
    /// does not validate. Costs one more read of the bundle.
    pub verify_readback: bool,
}

impl Default for BundleConfig {
    fn default() -> Self {
        Self {
            organization: "福州市城市管理委员会".into(),
            prefix: "bundles/".into(),
            part_bytes: 16 * 1024 * 1024,
            concurrency: 1,
            verify_readback: true,
        }
    }
}

/// `[worker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Jobs processed at once; also the AMQP prefetch.
    pub concurrency: u16,
    /// Where staged files are spooled while they are verified; may be shared by several workers
    /// (each locks its own files, see `spool`).
    pub spool_dir: PathBuf,
    /// Most bytes the spool may hold, where the file system cannot tell (a Kubernetes emptyDir
    /// size limit); unset: the file system's size. A file larger than this is dead-lettered at
    /// once (`too_large_for_spool`, bytes kept); one that does not fit now waits.
    pub spool_max_bytes: Option<u64>,
    /// On SIGTERM, how long in-flight jobs may run before they are handed back to the queue.
    pub shutdown_grace_secs: u64,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    pub metrics_addr: SocketAddr,
    /// Name in attempt records and the broker's connection list; defaults to the host name.
    pub id: Option<String>,
    /// Probe the object store's behaviour on a throwaway bucket at start-up (needs bucket-creation
    /// rights on `probe_bucket_prefix-*`); off: trust `recvault setup` and check only the archive
    /// bucket's configuration.
    pub probe_store_at_start: bool,
    /// Apply database migrations at start-up (needs `database.owner_url`); off (the default): the
    /// worker runs as the service role, `recvault setup` migrates, and the worker only checks that
    /// the schema is current.
    pub migrate_at_start: bool,
    /// How often the worker looks for unfinalized recordings to recover (R2.1); 0: never (another
    /// worker pool does it).
    pub recovery_poll_secs: u64,
    /// How long a claimed recovery is this worker's before another may take it over.
    pub recovery_lease_secs: u64,
    /// Tries of a recovery whose faults are transient before it is kept as failed, with its reason.
    pub recovery_max_attempts: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            spool_dir: std::env::temp_dir().join("recvault-spool"),
            spool_max_bytes: None,
            shutdown_grace_secs: 60,
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 9898)),
            id: None,
            probe_store_at_start: true,
            migrate_at_start: false,
            recovery_poll_secs: 5,
            recovery_lease_secs: 600,
            recovery_max_attempts: 8,
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
    /// Decode the audio in the same pass and find speech (R13.1, R15.1).
    pub speech: bool,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        let p = ProbePolicy::default();
        Self {
            gap_threshold_ms: p.gap_threshold_ns / 1_000_000,
            truncation_tolerance_ms: p.truncation_tolerance_ns / 1_000_000,
            speech: p.speech,
        }
    }
}

impl ProbeSettings {
    pub fn policy(&self) -> ProbePolicy {
        ProbePolicy {
            gap_threshold_ns: self.gap_threshold_ms.saturating_mul(1_000_000),
            truncation_tolerance_ns: self.truncation_tolerance_ms.saturating_mul(1_000_000),
            speech: self.speech,
        }
    }
}

/// `[analysis]`: activities, interruptions and the rules on time.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisSettings {
    pub activity_gap_secs: u64,
    pub interruption_threshold_ms: u64,
    pub explanation_window_secs: u64,
    pub explanation_min_speech_ms: u64,
    pub notification_window_secs: u64,
    pub notification_min_speech_ms: u64,
    pub clock_offset_threshold_secs: u64,
    pub upload_deadline_hours: u64,
    pub extension_working_days: u32,
    /// The units' civil time, `+HH:MM`.
    pub utc_offset: String,
    /// Holiday calendars, one TOML file per year; empty: the calendar shipped with this build.
    pub calendar_files: Vec<PathBuf>,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        let a = AnalysisPolicy::default();
        let t = TimePolicy::default();
        let ms = |ns: u64| ns / 1_000_000;
        Self {
            activity_gap_secs: a.activity_gap_ns / 1_000_000_000,
            interruption_threshold_ms: ms(a.interruption_threshold_ns),
            explanation_window_secs: a.explanation_window_ns / 1_000_000_000,
            explanation_min_speech_ms: ms(a.explanation_min_speech_ns),
            notification_window_secs: a.notification_window_ns / 1_000_000_000,
            notification_min_speech_ms: ms(a.notification_min_speech_ns),
            clock_offset_threshold_secs: u64::try_from(t.clock_offset_threshold.num_seconds()).unwrap_or(30),
            upload_deadline_hours: u64::try_from(t.upload_deadline.num_hours()).unwrap_or(24),
            extension_working_days: t.extension_working_days,
            utc_offset: t.utc_offset.to_string(),
            calendar_files: Vec::new(),
        }
    }
}

impl AnalysisSettings {
    pub fn policy(&self) -> AnalysisPolicy {
        let s = |v: u64| v.saturating_mul(1_000_000_000);
        let ms = |v: u64| v.saturating_mul(1_000_000);
        AnalysisPolicy {
            activity_gap_ns: s(self.activity_gap_secs),
            interruption_threshold_ns: ms(self.interruption_threshold_ms),
            explanation_window_ns: s(self.explanation_window_secs),
            explanation_min_speech_ns: ms(self.explanation_min_speech_ms),
            notification_window_ns: s(self.notification_window_secs),
            notification_min_speech_ns: ms(self.notification_min_speech_ms),
        }
    }

    pub fn time_policy(&self) -> Result<TimePolicy, String> {
        let utc_offset: FixedOffset =
            self.utc_offset.parse().map_err(|_| format!("analysis.utc_offset {:?} is not +HH:MM", self.utc_offset))?;
        let secs = |v: u64| TimeDelta::seconds(i64::try_from(v).unwrap_or(i64::MAX / 1_000_000));
        Ok(TimePolicy {
            clock_offset_threshold: secs(self.clock_offset_threshold_secs),
            upload_deadline: secs(self.upload_deadline_hours.saturating_mul(3600)),
            extension_working_days: self.extension_working_days,
            utc_offset,
        })
    }

    /// Reads the calendar files (or takes the shipped calendar).
    pub fn calendar(&self) -> Result<WorkCalendar, String> {
        if self.calendar_files.is_empty() {
            return Ok(WorkCalendar::shipped());
        }
        let texts = self
            .calendar_files
            .iter()
            .map(|p| std::fs::read_to_string(p).map_err(|e| format!("analysis.calendar_files: {}: {e}", p.display())))
            .collect::<Result<Vec<_>, _>>()?;
        WorkCalendar::from_files(texts.iter().map(String::as_str)).map_err(|e| e.to_string())
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
#[error(transparent)]
pub struct SettingsError(#[from] Box<figment::Error>);

impl Settings {
    /// The `RECVAULT_*` environment that gives another recvault process exactly these settings
    /// (workers spawned by tests and benchmarks). It carries the secrets: hand it to a child
    /// process, never log it.
    pub fn to_env(&self) -> Vec<(String, String)> {
        use secrecy::ExposeSecret;
        let list = |v: &[u64]| format!("[{}]", v.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
        let quoted = |v: &str| format!("{v:?}");
        let (a, s3, db, w, p, an) = (&self.amqp, &self.s3, &self.database, &self.worker, &self.probe, &self.analysis);
        let mut env: Vec<(&str, String)> = vec![
            ("AMQP__URL", a.url.expose_secret().to_string()),
            ("AMQP__PREFIX", a.prefix.clone()),
            ("AMQP__RETRY_DELAYS_MS", list(&a.retry_delays_ms)),
            ("AMQP__DELIVERY_LIMIT", a.delivery_limit.to_string()),
            ("AMQP__MANAGEMENT_URL", quoted(&a.management_url)),
            ("S3__REGION", s3.region.clone()),
            ("S3__FORCE_PATH_STYLE", s3.force_path_style.to_string()),
            ("S3__STAGING_BUCKET", s3.staging_bucket.clone()),
            ("S3__ARCHIVE_BUCKET", s3.archive_bucket.clone()),
            ("S3__QUARANTINE_PREFIX", s3.quarantine_prefix.clone()),
            ("S3__LOCK_MODE", format!("{:?}", s3.lock_mode).to_lowercase()),
            ("S3__DEV_MODE", s3.dev_mode.to_string()),
            ("S3__PROBE_BUCKET_PREFIX", s3.probe_bucket_prefix.clone()),
            ("DATABASE__URL", db.url.expose_secret().to_string()),
            ("DATABASE__MAX_CONNECTIONS", db.max_connections.to_string()),
            ("DATABASE__ACQUIRE_TIMEOUT_MS", db.acquire_timeout_ms.to_string()),
            ("WORKER__CONCURRENCY", w.concurrency.to_string()),
            ("WORKER__SPOOL_DIR", quoted(&w.spool_dir.display().to_string())),
            ("WORKER__SHUTDOWN_GRACE_SECS", w.shutdown_grace_secs.to_string()),
            ("WORKER__METRICS_ADDR", quoted(&w.metrics_addr.to_string())),
            ("WORKER__PROBE_STORE_AT_START", w.probe_store_at_start.to_string()),
            ("WORKER__MIGRATE_AT_START", w.migrate_at_start.to_string()),
            ("WORKER__RECOVERY_POLL_SECS", w.recovery_poll_secs.to_string()),
            ("WORKER__RECOVERY_LEASE_SECS", w.recovery_lease_secs.to_string()),
            ("WORKER__RECOVERY_MAX_ATTEMPTS", w.recovery_max_attempts.to_string()),
            ("PROBE__GAP_THRESHOLD_MS", p.gap_threshold_ms.to_string()),
            ("PROBE__TRUNCATION_TOLERANCE_MS", p.truncation_tolerance_ms.to_string()),
            ("PROBE__SPEECH", p.speech.to_string()),
            ("ANALYSIS__ACTIVITY_GAP_SECS", an.activity_gap_secs.to_string()),
            ("ANALYSIS__INTERRUPTION_THRESHOLD_MS", an.interruption_threshold_ms.to_string()),
            ("ANALYSIS__EXPLANATION_WINDOW_SECS", an.explanation_window_secs.to_string()),
            ("ANALYSIS__EXPLANATION_MIN_SPEECH_MS", an.explanation_min_speech_ms.to_string()),
            ("ANALYSIS__NOTIFICATION_WINDOW_SECS", an.notification_window_secs.to_string()),
            ("ANALYSIS__NOTIFICATION_MIN_SPEECH_MS", an.notification_min_speech_ms.to_string()),
            ("ANALYSIS__CLOCK_OFFSET_THRESHOLD_SECS", an.clock_offset_threshold_secs.to_string()),
            ("ANALYSIS__UPLOAD_DEADLINE_HOURS", an.upload_deadline_hours.to_string()),
            ("ANALYSIS__EXTENSION_WORKING_DAYS", an.extension_working_days.to_string()),
            ("ANALYSIS__UTC_OFFSET", quoted(&an.utc_offset)),
            (
                "ANALYSIS__CALENDAR_FILES",
                format!(
                    "[{}]",
                    an.calendar_files.iter().map(|f| quoted(&f.display().to_string())).collect::<Vec<_>>().join(",")
                ),
            ),
            ("API__LISTEN_ADDR", quoted(&self.api.listen_addr.to_string())),
            ("API__ISSUER", quoted(&self.api.issuer)),
            ("API__AUDIENCE", quoted(&self.api.audience)),
            ("API__DOWNLOAD_LINK_SECS", self.api.download_link_secs.to_string()),
            ("API__DEFAULT_PAGE", self.api.default_page.to_string()),
            ("API__MAX_PAGE", self.api.max_page.to_string()),
            ("BUNDLES__ORGANIZATION", quoted(&self.bundles.organization)),
            ("BUNDLES__PREFIX", quoted(&self.bundles.prefix)),
            ("BUNDLES__PART_BYTES", self.bundles.part_bytes.to_string()),
            ("BUNDLES__CONCURRENCY", self.bundles.concurrency.to_string()),
            ("BUNDLES__VERIFY_READBACK", self.bundles.verify_readback.to_string()),
            ("LOG__FORMAT", format!("{:?}", self.log.format).to_lowercase()),
            ("LOG__FILTER", self.log.filter.clone()),
        ];
        if let Some(e) = &s3.endpoint {
            env.push(("S3__ENDPOINT", e.clone()));
        }
        if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
            env.push(("S3__ACCESS_KEY_ID", id.clone()));
            env.push(("S3__SECRET_ACCESS_KEY", secret.expose_secret().to_string()));
        }
        if let Some(id) = &w.id {
            env.push(("WORKER__ID", id.clone()));
        }
        if let Some(url) = &db.owner_url {
            env.push(("DATABASE__OWNER_URL", url.expose_secret().to_string()));
        }
        if let Some(max) = w.spool_max_bytes {
            env.push(("WORKER__SPOOL_MAX_BYTES", max.to_string()));
        }
        if let Some(f) = &self.api.jwks_file {
            env.push(("API__JWKS_FILE", quoted(&f.display().to_string())));
        }
        if let Some(u) = &self.api.jwks_url {
            env.push(("API__JWKS_URL", quoted(u)));
        }
        env.into_iter().map(|(k, v)| (format!("RECVAULT_{k}"), v)).collect()
    }

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
        if self.bundles.part_bytes < 5 * 1024 * 1024 {
            return Err("bundles.part_bytes must be at least 5 MiB (S3's smallest multipart part)".into());
        }
        if !self.bundles.prefix.ends_with('/')
            || self.bundles.prefix.starts_with("recordings/")
            || self.bundles.prefix == self.s3.quarantine_prefix
        {
            return Err("bundles.prefix must end with '/' and lie outside recordings/ and the quarantine".into());
        }
        if self.api.max_page == 0 || self.api.default_page == 0 || self.api.default_page > self.api.max_page {
            return Err("api.default_page must be between 1 and api.max_page".into());
        }
        if self.api.download_link_secs == 0 || self.api.download_link_secs > 3600 {
            return Err("api.download_link_secs must be 1 to 3600: download links are short-lived".into());
        }
        if self.s3.access_key_id.is_some() != self.s3.secret_access_key.is_some() {
            return Err("s3.access_key_id and s3.secret_access_key go together".into());
        }
        self.analysis.time_policy()?;
        let a = &self.analysis;
        if a.explanation_window_secs == 0 || a.notification_window_secs == 0 {
            return Err("analysis windows must be positive".into());
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
        assert_eq!(from_file.analysis, d.analysis);
        assert_eq!(from_file.log, d.log);
        assert_eq!(from_file.worker.concurrency, d.worker.concurrency);
        assert_eq!(from_file.worker.metrics_addr, d.worker.metrics_addr);
        assert_eq!(from_file.worker.shutdown_grace_secs, d.worker.shutdown_grace_secs);
        assert_eq!(from_file.worker.probe_store_at_start, d.worker.probe_store_at_start);
        assert_eq!(from_file.worker.migrate_at_start, d.worker.migrate_at_start);
        assert_eq!(from_file.worker.recovery_poll_secs, d.worker.recovery_poll_secs);
        assert_eq!(from_file.worker.recovery_lease_secs, d.worker.recovery_lease_secs);
        assert_eq!(from_file.worker.recovery_max_attempts, d.worker.recovery_max_attempts);
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
        assert!(Settings::from_toml("[analysis]\nutc_offset = \"Asia/Shanghai\"\n").is_err());
        let shifted = Settings::from_toml("[analysis]\nutc_offset = \"+07:00\"\n").unwrap();
        assert_eq!(shifted.analysis.time_policy().unwrap().utc_offset.local_minus_utc(), 7 * 3600);
        let ok = Settings::from_toml("[worker]\nconcurrency = 4\n[probe]\ngap_threshold_ms = 250\n").unwrap();
        assert_eq!(ok.worker.concurrency, 4);
        assert_eq!(ok.probe.policy().gap_threshold_ns, 250_000_000);
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure type, not ours
    fn the_environment_form_loads_back_to_the_same_settings() {
        let mut s = Settings::from_toml(
            "[amqp]\nprefix = \"p.x\"\nretry_delays_ms = [7, 8]\n[s3]\nendpoint = \"http://h:1\"\naccess_key_id = \"AK\"\nsecret_access_key = \"SK\"\nlock_mode = \"governance\"\n[database]\nowner_url = \"postgres://o:pw@h/d\"\n[worker]\nconcurrency = 5\nid = \"w-1\"\nspool_max_bytes = 123\n[probe]\nspeech = false\n[analysis]\nutc_offset = \"+07:00\"\ncalendar_files = [\"/etc/recvault/cn-2027.toml\"]\n[log]\nformat = \"json\"\n",
        )
        .unwrap();
        s.worker.spool_dir = PathBuf::from("/var/spool/recvault");
        figment::Jail::expect_with(|jail| {
            for (k, v) in s.to_env() {
                jail.set_env(k, v);
            }
            let back = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(format!("{back:?}"), format!("{s:?}"));
            use secrecy::ExposeSecret;
            assert_eq!(back.s3.secret_access_key.as_ref().map(|k| k.expose_secret().to_string()), Some("SK".into()));
            assert_eq!(back.database.url.expose_secret(), s.database.url.expose_secret());
            Ok(())
        });
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
