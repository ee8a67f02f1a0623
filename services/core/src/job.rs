//! The upload job contract, version 1: what a docking station (采集站) posts for each staged file.
//!
//! [`UploadJobV1`] is the wire shape (also published as JSON Schema in
//! `pipeline-config/job-v1.schema.json`); [`UploadJob`] is the only way the rest of the system sees a
//! job, and it can only be built by [`UploadJob::parse`] or [`UploadJob::new`], which check every field.
//! An unknown `schema_version` is refused before the shape is looked at, so a v2 job is reported as
//! "unsupported version", not as a pile of field errors.

use crate::hash::{Blake3Hash, ClaimedHash, HashAlgorithm, Sha256Hash};
use crate::taxonomy::EventType;
use chrono::{DateTime, Datelike, FixedOffset, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The contract version this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// Most officers one recording may name: R5.1 allows one recorder per two officers, and a squad
/// sometimes shares one; more than this is a station bug.
pub const MAX_OFFICERS: usize = 8;

const MAX_ID_LEN: usize = 128;
const MAX_TEXT_LEN: usize = 500;
const MAX_NAME_LEN: usize = 255;
const MAX_KEY_LEN: usize = 1024;

/// Upload job v1, as a docking station posts it (JSON).
///
/// Times are RFC 3339 with an offset. `device_time` and `recorded_start` are read from the recorder's
/// own clock; `station_time` is the station's (NTP-synchronised) clock read at the same moment, so
/// their difference is the recorder's clock offset (R11.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "recvault upload job v1")]
pub struct UploadJobV1 {
    /// Contract version; always 1 here.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// The station's idempotency key: the same file re-posted carries the same id.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"))]
    pub job_id: String,
    /// The docking station that offloaded the recorder.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"))]
    pub station_id: String,
    /// Enforcement unit (执法单位) code.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"))]
    pub unit: String,
    /// Squad (执法分队) code inside the unit, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"))]
    pub squad: Option<String>,
    /// The recorder's device id.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"))]
    pub device_id: String,
    /// Officers (执法人员) who wore or shared the recorder, by badge number; at least one.
    #[schemars(length(min = 1, max = 8))]
    pub officer_ids: Vec<String>,
    /// Where the station staged the file.
    pub source: StagedObject,
    /// Size of the staged file in bytes, as the station read it from the recorder.
    pub size_bytes: u64,
    /// The station's hash of the file, if it computed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_hash: Option<ClaimedHashV1>,
    /// File name on the recorder (no directories).
    #[schemars(length(min = 1, max = 255))]
    pub original_name: String,
    /// Station clock at docking.
    pub station_time: DateTime<FixedOffset>,
    /// Recorder clock read at the same moment as `station_time` (R11.1).
    pub device_time: DateTime<FixedOffset>,
    /// Start of the recording on the recorder's clock, if the station knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_start: Option<DateTime<FixedOffset>>,
    /// What the recording is of, as tagged at the station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivityV1>,
}

/// A staged object in S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StagedObject {
    #[schemars(length(min = 3, max = 63), regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"))]
    pub bucket: String,
    #[schemars(length(min = 1, max = 1024))]
    pub key: String,
}

/// The station's hash claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimedHashV1 {
    pub algorithm: HashAlgorithm,
    /// 64 hex digits.
    #[schemars(regex(pattern = r"^[0-9A-Fa-f]{64}$"))]
    pub hex: String,
}

/// Activity metadata (R7.1, R18.1, R19.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityV1 {
    /// Groups the recordings of one enforcement activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"))]
    pub activity_id: Option<String>,
    /// R7.1 event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    /// The party (当事人): person or business name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 500))]
    pub party: Option<String>,
    /// Where it happened (address or place name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 500))]
    pub location: Option<String>,
    /// The case this activity belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"))]
    pub case_id: Option<String>,
    /// A dispute or conflict happened on scene, or the party objected (R19.1(3) 3 and 4).
    #[serde(default)]
    pub disputed: bool,
    /// A sudden or mass incident (R19.1(3) 2; R17.1 keeps the 24-hour deadline).
    #[serde(default)]
    pub emergency: bool,
    /// R17.1: the unit head approved export within 2 working days instead of 24 hours.
    #[serde(default)]
    pub upload_extension_approved: bool,
    /// R15.2: recording could not continue on another device and went on on this one; the device
    /// id of the one that stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"))]
    pub continues_from_device: Option<String>,
}

/// Why a job was refused. Each variant has a stable [`JobError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("unsupported schema version {0} (this worker reads version {SCHEMA_VERSION})")]
    UnsupportedVersion(u64),
    #[error("job is not valid json for contract v1: {0}")]
    Malformed(String),
    #[error("invalid field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl JobError {
    /// Stable machine code, used in dead-letter headers, logs and the database.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedVersion(_) => "unsupported_schema_version",
            Self::Malformed(_) => "malformed_job",
            Self::Invalid { .. } => "invalid_job",
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> JobError {
    JobError::Invalid { field, reason: reason.into() }
}

/// A checked upload job. Built only by [`UploadJob::parse`] or [`UploadJob::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct UploadJob {
    wire: UploadJobV1,
    claimed_hash: Option<ClaimedHash>,
}

impl UploadJob {
    /// Parses and checks a message body. The version is checked first.
    pub fn parse(body: &[u8]) -> Result<Self, JobError> {
        let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| JobError::Malformed(e.to_string()))?;
        let version =
            value.get("schema_version").ok_or_else(|| JobError::Malformed("missing field `schema_version`".into()))?;
        match version.as_u64() {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) => return Err(JobError::UnsupportedVersion(v)),
            None => return Err(invalid("schema_version", "must be a positive integer")),
        }
        let wire: UploadJobV1 = serde_json::from_value(value).map_err(|e| JobError::Malformed(e.to_string()))?;
        Self::new(wire)
    }

    /// Checks a wire job field by field.
    pub fn new(wire: UploadJobV1) -> Result<Self, JobError> {
        if wire.schema_version != SCHEMA_VERSION {
            return Err(JobError::UnsupportedVersion(u64::from(wire.schema_version)));
        }
        // Identifiers the job id is usually built from come first, so their error names them.
        check_id("station_id", &wire.station_id)?;
        check_id("device_id", &wire.device_id)?;
        check_id("job_id", &wire.job_id)?;
        check_id("unit", &wire.unit)?;
        if let Some(squad) = &wire.squad {
            check_id("squad", squad)?;
        }
        if wire.officer_ids.is_empty() {
            return Err(invalid("officer_ids", "at least one officer is required"));
        }
        if wire.officer_ids.len() > MAX_OFFICERS {
            return Err(invalid("officer_ids", format!("at most {MAX_OFFICERS} officers")));
        }
        for (i, id) in wire.officer_ids.iter().enumerate() {
            check_id("officer_ids", id)?;
            if wire.officer_ids[..i].contains(id) {
                return Err(invalid("officer_ids", format!("officer {id} is listed twice")));
            }
        }
        check_bucket(&wire.source.bucket)?;
        check_key(&wire.source.key)?;
        check_file_name(&wire.original_name)?;
        for (field, t) in [("station_time", Some(&wire.station_time)), ("device_time", Some(&wire.device_time))]
            .into_iter()
            .chain([("recorded_start", wire.recorded_start.as_ref())])
        {
            if let Some(t) = t {
                check_time(field, t)?;
            }
        }
        let claimed_hash = wire.claimed_hash.as_ref().map(parse_claim).transpose()?;
        if let Some(a) = &wire.activity {
            if let Some(id) = &a.activity_id {
                check_id("activity.activity_id", id)?;
            }
            if let Some(id) = &a.case_id {
                check_id("activity.case_id", id)?;
            }
            if let Some(p) = &a.party {
                check_text("activity.party", p)?;
            }
            if let Some(l) = &a.location {
                check_text("activity.location", l)?;
            }
            if let Some(d) = &a.continues_from_device {
                check_id("activity.continues_from_device", d)?;
                if d == &wire.device_id {
                    return Err(invalid(
                        "activity.continues_from_device",
                        "a device cannot continue its own recording",
                    ));
                }
            }
        }
        Ok(Self { wire, claimed_hash })
    }

    /// The wire form, for publishing and storing.
    pub fn wire(&self) -> &UploadJobV1 {
        &self.wire
    }

    /// The JSON body a station publishes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.wire).expect("a checked job always serialises")
    }

    pub fn job_id(&self) -> &str {
        &self.wire.job_id
    }

    pub fn device_id(&self) -> &str {
        &self.wire.device_id
    }

    pub fn source(&self) -> &StagedObject {
        &self.wire.source
    }

    pub fn size_bytes(&self) -> u64 {
        self.wire.size_bytes
    }

    pub fn claimed_hash(&self) -> Option<ClaimedHash> {
        self.claimed_hash
    }

    /// The activity metadata, or the empty default when the station sent none.
    pub fn activity(&self) -> ActivityV1 {
        self.wire.activity.clone().unwrap_or_default()
    }

    /// R11.1: station clock minus recorder clock at docking. Positive when the recorder is behind.
    pub fn clock_offset(&self) -> TimeDelta {
        self.wire.station_time.signed_duration_since(self.wire.device_time)
    }

    /// A recorder-clock time on the corrected (station) timeline.
    pub fn correct(&self, device_time: DateTime<Utc>) -> DateTime<Utc> {
        device_time + self.clock_offset()
    }

    /// R11.1: where the recording sits in time. The start on the recorder's clock comes from the
    /// station (which reads it from the recorder's file listing) or, failing that, from the file's
    /// own creation time; both are then corrected by the offset measured at docking.
    pub fn timeline(&self, file_creation: Option<DateTime<Utc>>, duration: TimeDelta) -> Timeline {
        let start_device = self.wire.recorded_start.map(|t| t.to_utc()).or(file_creation);
        let start = start_device.map(|t| self.correct(t));
        Timeline { start_device, start, end: start.map(|s| s + duration) }
    }
}

/// A recording's place in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    /// Start as the recorder's clock had it.
    pub start_device: Option<DateTime<Utc>>,
    /// Start on the corrected timeline.
    pub start: Option<DateTime<Utc>>,
    /// End on the corrected timeline (start plus the readable duration).
    pub end: Option<DateTime<Utc>>,
}

fn check_id(field: &'static str, s: &str) -> Result<(), JobError> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(invalid(field, format!("must be 1 to {MAX_ID_LEN} characters")));
    }
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')) {
        return Err(invalid(field, "must start with a letter or digit and use only A-Z a-z 0-9 . _ : -"));
    }
    Ok(())
}

fn check_bucket(s: &str) -> Result<(), JobError> {
    let ok = (3..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok { Ok(()) } else { Err(invalid("source.bucket", "not a valid S3 bucket name")) }
}

fn check_key(s: &str) -> Result<(), JobError> {
    if s.is_empty() || s.len() > MAX_KEY_LEN {
        return Err(invalid("source.key", format!("must be 1 to {MAX_KEY_LEN} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid("source.key", "must not contain control characters"));
    }
    Ok(())
}

fn check_file_name(s: &str) -> Result<(), JobError> {
    if s.is_empty() || s.chars().count() > MAX_NAME_LEN {
        return Err(invalid("original_name", format!("must be 1 to {MAX_NAME_LEN} characters")));
    }
    if s.chars().any(|c| c.is_control() || c == '/' || c == '\\') || s == "." || s == ".." {
        return Err(invalid("original_name", "must be a bare file name"));
    }
    Ok(())
}

fn check_text(field: &'static str, s: &str) -> Result<(), JobError> {
    if s.trim().is_empty() || s.chars().count() > MAX_TEXT_LEN {
        return Err(invalid(field, format!("must be 1 to {MAX_TEXT_LEN} characters")));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Recorders that lost their clock report 1970 or 2000; those still parse (the offset exposes them),
/// but anything outside this window is a station bug, not a clock offset.
fn check_time(field: &'static str, t: &DateTime<FixedOffset>) -> Result<(), JobError> {
    if (1970..=2200).contains(&t.year()) { Ok(()) } else { Err(invalid(field, "year must be between 1970 and 2200")) }
}

fn parse_claim(c: &ClaimedHashV1) -> Result<ClaimedHash, JobError> {
    let bad = |_| invalid("claimed_hash.hex", "must be 64 hex digits");
    Ok(match c.algorithm {
        HashAlgorithm::Blake3 => ClaimedHash::Blake3(Blake3Hash::from_hex(&c.hex).map_err(bad)?),
        HashAlgorithm::Sha256 => ClaimedHash::Sha256(Sha256Hash::from_hex(&c.hex).map_err(bad)?),
    })
}

/// The JSON Schema of contract v1, as published in `pipeline-config/job-v1.schema.json`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(UploadJobV1);
    serde_json::to_value(schema).expect("schema serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> serde_json::Value {
        json!({
            "schema_version": 1,
            "job_id": "st01-20261127-0001",
            "station_id": "st01",
            "unit": "zhidui",
            "squad": "sq3",
            "device_id": "DSJ-0042",
            "officer_ids": ["35010001", "35010002"],
            "source": {"bucket": "recvault-staging", "key": "st01/2026/11/27/0001.MP4"},
            "size_bytes": 1234,
            "claimed_hash": {"algorithm": "sha256", "hex": "ab".repeat(32)},
            "original_name": "20261127_101530_0001.MP4",
            "station_time": "2026-11-27T10:30:00+08:00",
            "device_time": "2026-11-27T10:29:30+08:00",
            "recorded_start": "2026-11-27T10:15:30+08:00",
            "activity": {
                "activity_id": "act-1",
                "event_type": "penalty_inquiry",
                "party": "鼓楼区某餐馆",
                "location": "福州市鼓楼区五四路1号",
                "case_id": "FZCG-2026-001",
                "disputed": true
            }
        })
    }

    fn parse(v: &serde_json::Value) -> Result<UploadJob, JobError> {
        UploadJob::parse(&serde_json::to_vec(v).unwrap())
    }

    fn with(path: &[&str], value: serde_json::Value) -> serde_json::Value {
        let mut v = valid();
        let mut cur = &mut v;
        for p in &path[..path.len() - 1] {
            cur = cur.get_mut(*p).unwrap();
        }
        cur[path[path.len() - 1]] = value;
        v
    }

    #[test]
    fn a_valid_job_parses_and_round_trips() {
        let job = parse(&valid()).unwrap();
        assert_eq!(job.job_id(), "st01-20261127-0001");
        assert_eq!(job.claimed_hash(), Some(ClaimedHash::Sha256(Sha256Hash([0xab; 32]))));
        assert_eq!(job.activity().event_type, Some(EventType::PenaltyInquiry));
        let again = UploadJob::parse(&job.to_json()).unwrap();
        assert_eq!(again, job);
    }

    #[test]
    fn minimal_job_needs_no_optional_fields() {
        let mut v = valid();
        for k in ["squad", "claimed_hash", "recorded_start", "activity"] {
            v.as_object_mut().unwrap().remove(k);
        }
        let job = parse(&v).unwrap();
        assert_eq!(job.activity(), ActivityV1::default());
        assert!(!job.activity().disputed);
    }

    #[test]
    fn r11_1_clock_offset_is_station_minus_device() {
        let job = parse(&valid()).unwrap();
        assert_eq!(job.clock_offset(), TimeDelta::seconds(30));
        let device = DateTime::parse_from_rfc3339("2026-11-27T02:15:30Z").unwrap().to_utc();
        assert_eq!(job.correct(device).to_rfc3339(), "2026-11-27T02:16:00+00:00");
        // a recorder ahead of the station gives a negative offset
        let ahead = parse(&with(&["device_time"], json!("2026-11-27T10:31:00+08:00"))).unwrap();
        assert_eq!(ahead.clock_offset(), TimeDelta::seconds(-60));
    }

    #[test]
    fn r11_1_timeline_prefers_the_station_start_and_corrects_it() {
        let job = parse(&valid()).unwrap();
        let file = DateTime::parse_from_rfc3339("2026-11-27T01:00:00Z").unwrap().to_utc();
        let t = job.timeline(Some(file), TimeDelta::seconds(90));
        assert_eq!(t.start_device.unwrap().to_rfc3339(), "2026-11-27T02:15:30+00:00");
        assert_eq!(t.start.unwrap().to_rfc3339(), "2026-11-27T02:16:00+00:00");
        assert_eq!(t.end.unwrap().to_rfc3339(), "2026-11-27T02:17:30+00:00");
        let mut v = valid();
        v.as_object_mut().unwrap().remove("recorded_start");
        let job = parse(&v).unwrap();
        let t = job.timeline(Some(file), TimeDelta::seconds(10));
        assert_eq!(t.start_device, Some(file));
        assert_eq!(t.start.unwrap().to_rfc3339(), "2026-11-27T01:00:30+00:00");
        let t = job.timeline(None, TimeDelta::seconds(10));
        assert_eq!((t.start_device, t.start, t.end), (None, None, None));
    }

    #[test]
    fn unknown_versions_are_refused_before_the_shape_is_checked() {
        let v2 = json!({"schema_version": 2, "whatever": true});
        assert_eq!(parse(&v2), Err(JobError::UnsupportedVersion(2)));
        assert_eq!(parse(&v2).unwrap_err().code(), "unsupported_schema_version");
        assert_eq!(parse(&with(&["schema_version"], json!(0))), Err(JobError::UnsupportedVersion(0)));
        let missing = {
            let mut v = valid();
            v.as_object_mut().unwrap().remove("schema_version");
            v
        };
        assert_eq!(parse(&missing).unwrap_err().code(), "malformed_job");
        assert_eq!(parse(&with(&["schema_version"], json!("1"))).unwrap_err().code(), "invalid_job");
    }

    #[test]
    fn malformed_bodies_are_reported_as_such() {
        assert_eq!(UploadJob::parse(b"").unwrap_err().code(), "malformed_job");
        assert_eq!(UploadJob::parse(b"{not json").unwrap_err().code(), "malformed_job");
        assert_eq!(UploadJob::parse(b"[1]").unwrap_err().code(), "malformed_job");
        // a typo in a field name must not silently drop the flag that decides retention
        let typo = with(&["activity", "dispute"], json!(true));
        let err = parse(&typo).unwrap_err();
        assert_eq!(err.code(), "malformed_job");
        assert!(err.to_string().contains("dispute"), "{err}");
        let bad_event = with(&["activity", "event_type"], json!("parking"));
        assert_eq!(parse(&bad_event).unwrap_err().code(), "malformed_job");
    }

    #[test]
    fn each_field_is_checked() {
        let long = "a".repeat(129);
        let cases: Vec<(&[&str], serde_json::Value, &str)> = vec![
            (&["job_id"], json!(""), "job_id"),
            (&["job_id"], json!(long), "job_id"),
            (&["job_id"], json!("-leading-dash"), "job_id"),
            (&["job_id"], json!("has space"), "job_id"),
            (&["station_id"], json!("st/01"), "station_id"),
            (&["unit"], json!(""), "unit"),
            (&["squad"], json!("队"), "squad"),
            (&["device_id"], json!("dev\n1"), "device_id"),
            (&["officer_ids"], json!([]), "officer_ids"),
            (&["officer_ids"], json!(["a", "a"]), "officer_ids"),
            (&["officer_ids"], json!(["1", "2", "3", "4", "5", "6", "7", "8", "9"]), "officer_ids"),
            (&["source", "bucket"], json!("UPPER"), "source.bucket"),
            (&["source", "bucket"], json!("ab"), "source.bucket"),
            (&["source", "bucket"], json!("-abc"), "source.bucket"),
            (&["source", "key"], json!(""), "source.key"),
            (&["source", "key"], json!("a\u{0}b"), "source.key"),
            (&["original_name"], json!("../x.mp4"), "original_name"),
            (&["original_name"], json!("dir\\x.mp4"), "original_name"),
            (&["original_name"], json!(""), "original_name"),
            (&["claimed_hash", "hex"], json!("abc"), "claimed_hash.hex"),
            (&["station_time"], json!("0001-01-01T00:00:00Z"), "station_time"),
            (&["activity", "party"], json!("  "), "activity.party"),
            (&["activity", "location"], json!("x".repeat(501)), "activity.location"),
            (&["activity", "case_id"], json!("案件1"), "activity.case_id"),
            (&["activity", "activity_id"], json!(""), "activity.activity_id"),
            (&["activity", "continues_from_device"], json!("dev 2"), "activity.continues_from_device"),
            (&["activity", "continues_from_device"], json!("DSJ-0042"), "activity.continues_from_device"),
        ];
        for (path, value, field) in cases {
            match parse(&with(path, value.clone())) {
                Err(JobError::Invalid { field: f, .. }) => assert_eq!(f, field, "{path:?} = {value}"),
                other => panic!("{path:?} = {value}: expected invalid {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn zero_length_files_are_valid_jobs() {
        // an empty file is evidence of a fault, quarantined by the worker, not a malformed job
        assert!(parse(&with(&["size_bytes"], json!(0))).is_ok());
    }

    #[test]
    fn unicode_text_fields_are_counted_in_characters() {
        let party = "当".repeat(500);
        assert!(parse(&with(&["activity", "party"], json!(party))).is_ok());
    }

    #[test]
    fn the_published_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipeline-config/job-v1.schema.json");
        if std::env::var_os("RECVAULT_BLESS").is_some() {
            let text = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
            std::fs::write(path, text).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap();
        let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
        assert!(
            committed == json_schema(),
            "pipeline-config/job-v1.schema.json is stale: RECVAULT_BLESS=1 cargo test -p recvault-core schema"
        );
    }
}
