//! What the API takes and returns: plain data with an OpenAPI schema each, built from the
//! database's rows and the core's types. Request bodies refuse unknown fields (a typo must not
//! silently drop a field).

use chrono::{DateTime, Utc};
use recvault_core::cases::BundleState;
use recvault_db::cases::BundleRow;
use recvault_db::queries::{FindingRow, RecordingRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// A finding that holds (withdrawn ones are not listed).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingView {
    /// Stable code (`interruption_unexplained`, `late_upload`, ...).
    pub kind: String,
    /// The requirement it serves (`R15.1`).
    pub requirement: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    pub summary: String,
    /// The facts behind it (times in milliseconds).
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

impl From<&FindingRow> for FindingView {
    fn from(f: &FindingRow) -> Self {
        Self {
            kind: f.kind.clone(),
            requirement: f.requirement.clone(),
            severity: f.severity.clone(),
            summary: f.summary.clone(),
            evidence: f.evidence.0.clone(),
        }
    }
}

/// A recording as search results and the detail show it (R18.1 fields, integrity, retention).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordingView {
    pub id: i64,
    pub unit: String,
    pub squad: Option<String>,
    pub station_id: String,
    pub device_id: String,
    pub officer_ids: Vec<String>,
    pub original_name: String,
    /// R7.1 event type code.
    pub event_type: Option<String>,
    /// The party (当事人).
    pub party: Option<String>,
    pub location: Option<String>,
    pub case_id: Option<String>,
    pub activity_id: Option<String>,
    /// Start and end on the corrected clock (R11.1).
    pub recorded_start: Option<DateTime<Utc>>,
    pub recorded_end: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub archived_at: DateTime<Utc>,
    /// `ok`, or `flagged` (a critical finding: truncated, unfinalized).
    pub status: String,
    /// R19.1: `two_years`, `case_file` or `permanent`; only ever raised.
    pub retention_class: String,
    pub retention_basis: String,
    pub legal_hold: bool,
    pub lock_until: Option<DateTime<Utc>>,
    pub size_bytes: i64,
    /// SHA-256 and BLAKE3 of the bytes, hex.
    pub sha256: String,
    pub blake3: String,
    /// Jobs (dockings) that delivered these bytes.
    pub jobs: i64,
    pub findings: Vec<FindingView>,
}

impl From<&RecordingRow> for RecordingView {
    fn from(r: &RecordingRow) -> Self {
        Self {
            id: r.id,
            unit: r.unit.clone(),
            squad: r.squad.clone(),
            station_id: r.station_id.clone(),
            device_id: r.device_id.clone(),
            officer_ids: r.officer_ids.clone(),
            original_name: r.original_name.clone(),
            event_type: r.event_type.clone(),
            party: r.party.clone(),
            location: r.location.clone(),
            case_id: r.case_id.clone(),
            activity_id: r.activity_id.clone(),
            recorded_start: r.recorded_start,
            recorded_end: r.recorded_end,
            duration_ms: r.duration_ms,
            archived_at: r.archived_at,
            status: r.status.clone(),
            retention_class: r.retention_class.clone(),
            retention_basis: r.retention_basis.clone(),
            legal_hold: r.legal_hold,
            lock_until: r.lock_until,
            size_bytes: r.size_bytes,
            sha256: r.sha256.clone(),
            blake3: r.blake3.clone(),
            jobs: r.jobs,
            findings: r.findings.iter().map(FindingView::from).collect(),
        }
    }
}

/// One page of a search.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordingPage {
    pub items: Vec<RecordingView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// A recording with the activities it belongs to (R12.1–R15.2: stops, speech, hand-overs).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordingDetail {
    pub recording: RecordingView,
    /// The activity timeline(s) holding it, as `recvault timeline --json` prints them.
    #[schema(value_type = Vec<Object>)]
    pub timeline: Vec<serde_json::Value>,
    /// R2.1: for a recording the recorder never finalized, its recovery (absent otherwise).
    pub recovery: Option<RecoveryView>,
}

/// The recovery of an unfinalized recording (R2.1): a separate, derived file rebuilt from a
/// finished recording of the same device; the original is kept as it was.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecoveryView {
    /// `awaiting_reference`, `pending`, `recovered` or `failed`.
    pub state: String,
    /// Why it waits or failed.
    pub reason: Option<String>,
    /// The finished recording of the same device the index was rebuilt from.
    pub reference_id: Option<i64>,
    /// The recovered file in the archive bucket.
    pub key: Option<String>,
    pub version_id: Option<String>,
    /// Hex SHA-256 and BLAKE3 of the recovered file (not of the original).
    pub sha256: Option<String>,
    pub blake3: Option<String>,
    pub size_bytes: Option<i64>,
    /// What was placed and what could not be (`recvault recover` prints the same report).
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
}

impl From<&recvault_db::recoveries::RecoveryRow> for RecoveryView {
    fn from(r: &recvault_db::recoveries::RecoveryRow) -> Self {
        Self {
            state: r.state.clone(),
            reason: r.reason.clone(),
            reference_id: r.reference_id,
            key: r.key.clone(),
            version_id: r.version_id.clone(),
            sha256: r.sha256.as_deref().map(hex::encode),
            blake3: r.blake3.as_deref().map(hex::encode),
            size_bytes: r.size_bytes,
            report: r.recovery.clone(),
        }
    }
}

/// The search filters (R18.1); all optional, combined with AND. Text matches exactly.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The party (当事人), as recorded.
    pub party: Option<String>,
    /// Recorded at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Recorded before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    pub location: Option<String>,
    /// R7.1 event type code.
    pub event_type: Option<String>,
    pub device: Option<String>,
    /// An officer's badge number.
    pub officer: Option<String>,
    /// Only supervisors may name another unit than their own.
    pub unit: Option<String>,
    pub case_id: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size (default and maximum: `[api]` in the configuration).
    pub limit: Option<u32>,
}

/// R19.1 classes as the API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetentionClassDto {
    TwoYears,
    CaseFile,
    Permanent,
}

impl From<RetentionClassDto> for recvault_core::RetentionClass {
    fn from(c: RetentionClassDto) -> Self {
        match c {
            RetentionClassDto::TwoYears => Self::TwoYears,
            RetentionClassDto::CaseFile => Self::CaseFile,
            RetentionClassDto::Permanent => Self::Permanent,
        }
    }
}

/// A request to raise a recording's retention (R19.1).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    pub class: RetentionClassDto,
    /// Why (recorded with the raise, who and when).
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetentionResponse {
    pub recording_id: i64,
    pub from: String,
    pub to: String,
    /// False when the recording already had the class.
    pub changed: bool,
}

/// A case closure (R19.1(2)): the case's recordings are bundled into the case file.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureRequest {
    /// When the case was closed (RFC 3339); the bundle is due 30 days later.
    pub closed_at: DateTime<Utc>,
    /// The unit the case belongs to (the token's).
    pub unit: String,
    /// Recordings to add beyond those whose job carried the case id.
    #[serde(default)]
    pub recordings: Vec<i64>,
    /// Quarantined files to add (kept in the bag with their flag) beyond those of the case.
    #[serde(default)]
    pub quarantined: Vec<i64>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClosureResponse {
    pub bundle_id: Uuid,
    pub case_id: String,
    /// `queued`, `building`, `ready` or `failed`.
    #[schema(value_type = String, example = "queued")]
    pub state: BundleState,
    /// R19.1(2): closure plus 30 days.
    pub deadline: DateTime<Utc>,
}

/// A bundle and where it is.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BundleView {
    pub bundle_id: Uuid,
    pub case_id: String,
    pub unit: String,
    /// `queued`, `building`, `ready` or `failed`.
    #[schema(value_type = String, example = "ready")]
    pub state: BundleState,
    /// Why it failed (failed only).
    pub reason: Option<String>,
    pub closed_at: DateTime<Utc>,
    /// R19.1(2): closure plus 30 days.
    pub deadline: DateTime<Utc>,
    pub recordings: usize,
    pub quarantined: usize,
    /// Size of the tar object (ready only).
    pub size_bytes: Option<i64>,
    /// SHA-256 of the tar object, hex (ready only): check the download against it.
    pub sha256: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
}

impl From<&BundleRow> for BundleView {
    fn from(b: &BundleRow) -> Self {
        Self {
            bundle_id: b.id,
            case_id: b.case_id.clone(),
            unit: b.unit.clone(),
            state: b.state,
            reason: b.reason.clone(),
            closed_at: b.closed_at,
            deadline: b.deadline,
            recordings: b.recording_ids.len(),
            quarantined: b.quarantine_ids.len(),
            size_bytes: b.size_bytes,
            sha256: b.sha256.clone(),
            created_at: b.created_at,
            ready_at: b.ready_at,
        }
    }
}

/// A short-lived link to a ready bundle's bytes; every one handed out is recorded (R21.1).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DownloadLink {
    pub bundle_id: Uuid,
    /// A presigned GET, valid until `expires_at`.
    pub url: String,
    pub expires_at: DateTime<Utc>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
}

/// `/readyz`: each dependency and whether it answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    pub database: bool,
    pub broker: bool,
    pub store: bool,
}
