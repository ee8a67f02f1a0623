//! The upload job contract, version 1: what a docking station (采集站) posts for each staged file.
//!
//! [`UploadJobV1`] is the wire shape (also published as JSON Schema in
//! `pipeline-config/job-v1.schema.json`); [`UploadJob`] is the only way the rest of the system sees a
//! job, and it can only be built by [`UploadJob::parse`] or [`UploadJob::new`], which check every field.
//! An unknown `schema_version` is refused before the shape is looked at, so a v2 job is reported as
//! "unsupported version", not as a pile of field errors.

use crate::hash::{Blake3Hash, ClaimedHash, HashAlgorithm, Sha256Hash};
use crate::taxonomy::EventType;
use crate::text::{escape_untrusted, is_forbidden};
use chrono::{DateTime, Datelike, FixedOffset, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The contract version this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// Most officers one recording may name: R5.1 allows one recorder per two officers, and a squad
/// sometimes shares one; more than this is a station bug.
pub const MAX_OFFICERS: usize = 8;

const MAX_ID_LEN: usize = 128;
/// Largest `size_bytes`: 2^53 - 1, the largest integer every JSON implementation reads exactly.
pub const MAX_SIZE_BYTES: u64 = (1 << 53) - 1;

// The published JSON Schema states the same checks as the code below, as patterns that every
// validator reads alike (ECMA-262, Python `re`, Rust `regex`): character classes spelt out with
// `\uHHHH` escapes, no `\s`, no look-ahead. A test holds the two to each other.

/// Identifiers (job, station, device, unit, officer, case ids).
pub const ID_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$";
/// Characters never allowed in text, as a character-class body: C0 and C1 controls and the
/// bidirectional formatting characters (which can make a name display as another, "Trojan Source").
macro_rules! forbidden {
    () => {
        r"\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069"
    };
}
/// Blank characters, as a character-class body: `char::is_whitespace` plus U+FEFF (which
/// ECMA-262 counts as `\s`); U+0085 is a control and already forbidden.
macro_rules! blank {
    () => {
        r"\u0020\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF"
    };
}
/// Free text: no forbidden character, at least one that is not blank.
pub const TEXT_PATTERN: &str = concat!("^[^", forbidden!(), "]*[^", forbidden!(), blank!(), "][^", forbidden!(), "]*$");
/// A bare file name: no forbidden character, no `/` or `\`, and not `.` or `..`.
pub const FILE_NAME_PATTERN: &str = concat!(
    r"^(?:[^./\\",
    forbidden!(),
    r"][^/\\",
    forbidden!(),
    r"]*|\.[^./\\",
    forbidden!(),
    r"][^/\\",
    forbidden!(),
    r"]*|\.\.[^/\\",
    forbidden!(),
    r"]+)$"
);
/// A staged object key: `<station id>/<rest>`, no forbidden character.
pub const KEY_PATTERN: &str = concat!(r"^[A-Za-z0-9][A-Za-z0-9._:-]*/[^", forbidden!(), "]+$");
/// RFC 3339 times in the years the worker accepts (1970 to 2200; see `check_time`).
pub const TIME_PATTERN: &str = r"^(?:19[7-9][0-9]|2[01][0-9][0-9]|2200)-";
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
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
    pub job_id: String,
    /// The docking station that offloaded the recorder.
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
    pub station_id: String,
    /// Enforcement unit (执法单位) code.
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
    pub unit: String,
    /// Squad (执法分队) code inside the unit, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
    pub squad: Option<String>,
    /// The recorder's device id.
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
    pub device_id: String,
    /// Officers (执法人员) who wore or shared the recorder, by badge number; at least one.
    #[schemars(length(min = 1, max = 8), inner(length(min = 1, max = 128), regex(pattern = ID_PATTERN)), extend("uniqueItems" = true))]
    pub officer_ids: Vec<String>,
    /// Where the station staged the file.
    pub source: StagedObject,
    /// Size of the staged file in bytes, as the station read it from the recorder; at most
    /// 2^53 - 1, so that every JSON implementation reads it exactly.
    #[schemars(range(max = 9_007_199_254_740_991u64))]
    pub size_bytes: u64,
    /// The station's hash of the file, if it computed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_hash: Option<ClaimedHashV1>,
    /// File name on the recorder: a bare name (no `/` or `\\`, not `.` or `..`), without control or
    /// bidirectional-formatting characters.
    #[schemars(length(min = 1, max = 255), regex(pattern = FILE_NAME_PATTERN))]
    pub original_name: String,
    /// Station clock at docking.
    #[schemars(regex(pattern = TIME_PATTERN))]
    pub station_time: DateTime<FixedOffset>,
    /// Recorder clock read at the same moment as `station_time` (R11.1).
    #[schemars(regex(pattern = TIME_PATTERN))]
    pub device_time: DateTime<FixedOffset>,
    /// Start of the recording on the recorder's clock, if the station knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = TIME_PATTERN))]
    pub recorded_start: Option<DateTime<FixedOffset>>,
    /// What the recording is of, as tagged at the station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivityV1>,
}

/// A staged object in S3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StagedObject {
    /// The deployment's staging bucket (the worker refuses any other: JSON Schema cannot say which).
    #[schemars(length(min = 3, max = 63), regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"))]
    pub bucket: String,
    /// `<station_id>/…`: a station stages only under its own prefix (the worker checks that the
    /// first segment is this job's `station_id`; JSON Schema cannot compare two fields).
    #[schemars(length(min = 1, max = 1024), regex(pattern = KEY_PATTERN))]
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
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
    pub activity_id: Option<String>,
    /// R7.1 event type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_type: Option<EventType>,
    /// The party (当事人): person or business name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 500), regex(pattern = TEXT_PATTERN))]
    pub party: Option<String>,
    /// Where it happened (address or place name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 500), regex(pattern = TEXT_PATTERN))]
    pub location: Option<String>,
    /// The case this activity belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
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
    #[schemars(length(min = 1, max = 128), regex(pattern = ID_PATTERN))]
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

/// A parser's message quotes the input (an unknown field's name): escaped before it travels.
fn malformed(e: serde_json::Error) -> JobError {
    JobError::Malformed(escape_untrusted(&e.to_string()).into_owned())
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
        // Duplicate keys are refused: parsers disagree on which one wins, so a job could say one
        // thing to a validator or a station's log and another to this worker.
        let value = serde_json::from_slice::<UniqueKeys>(body).map_err(malformed)?.0;
        let version =
            value.get("schema_version").ok_or_else(|| JobError::Malformed("missing field `schema_version`".into()))?;
        match version.as_u64() {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) => return Err(JobError::UnsupportedVersion(v)),
            None => return Err(invalid("schema_version", "must be a positive integer")),
        }
        let wire: UploadJobV1 = serde_json::from_value(value).map_err(malformed)?;
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
        if wire.size_bytes > MAX_SIZE_BYTES {
            return Err(invalid("size_bytes", format!("must be at most {MAX_SIZE_BYTES}")));
        }
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

    /// R2.1: what tells a redelivery from another job that reuses the id. BLAKE3 of the canonical
    /// body (the checked wire form serialised again: fixed field order, no white space), so the
    /// same job re-posted with other spacing or key order is the same job, and a job that names
    /// other bytes, another key or other facts under a used id is not.
    pub fn digest(&self) -> Blake3Hash {
        Blake3Hash(*blake3::hash(&self.to_json()).as_bytes())
    }

    /// R2.1: a station speaks only for itself, about its own staged bytes. The job must have been
    /// published by the broker user named like its `station_id` (RabbitMQ checks the AMQP
    /// `user_id` property against the connection's user), and its source must be this
    /// deployment's staging bucket, under `<station_id>/`. Anything else is `invalid_job`, and
    /// the worker reads and deletes nothing for it.
    pub fn authorize(&self, p: &Provenance<'_>) -> Result<(), JobError> {
        let w = &self.wire;
        match p.publisher {
            None => {
                return Err(invalid(
                    "station_id",
                    "the message has no user_id property: a station publishes as its own broker user and sets user_id to it",
                ));
            }
            Some(user) if user != w.station_id => {
                return Err(invalid(
                    "station_id",
                    format!("station {} was published by broker user {}", w.station_id, escape_untrusted(user)),
                ));
            }
            Some(_) => {}
        }
        if w.source.bucket != p.staging_bucket {
            return Err(invalid("source.bucket", format!("must be the staging bucket {}", p.staging_bucket)));
        }
        if !w.source.key.strip_prefix(w.station_id.as_str()).is_some_and(|rest| rest.starts_with('/')) {
            return Err(invalid("source.key", format!("must be under the station's own prefix {}/", w.station_id)));
        }
        Ok(())
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

/// What the deployment knows about a delivery that the job cannot say for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance<'a> {
    /// The staging bucket this deployment reads from.
    pub staging_bucket: &'a str,
    /// The broker user that published the message (its AMQP `user_id` property), if it set one.
    pub publisher: Option<&'a str>,
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

/// A station id as the contract requires it (broker user names and staging prefixes are made of it).
pub fn check_station_id(s: &str) -> Result<(), JobError> {
    check_id("station_id", s)
}

/// An identifier (case id, unit, ...) by the contract's rule, refused naming `field`.
pub fn check_identifier(field: &'static str, s: &str) -> Result<(), JobError> {
    check_id(field, s)
}

/// Free text (a reason, a party's name) by the contract's rule, refused naming `field`.
pub fn check_free_text(field: &'static str, s: &str) -> Result<(), JobError> {
    check_text(field, s)
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
    if s.chars().any(is_forbidden) {
        return Err(invalid("source.key", "must not contain control or bidirectional-formatting characters"));
    }
    let first = s.split_once('/').map(|(first, rest)| (first, rest.is_empty()));
    match first {
        Some((station, false)) if check_id("source.key", station).is_ok() => Ok(()),
        _ => Err(invalid("source.key", "must be <station_id>/<name>")),
    }
}

/// Blank for the "not only blanks" rule: Unicode white space and U+FEFF.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || c == '\u{FEFF}'
}

fn check_file_name(s: &str) -> Result<(), JobError> {
    if s.is_empty() || s.chars().count() > MAX_NAME_LEN {
        return Err(invalid("original_name", format!("must be 1 to {MAX_NAME_LEN} characters")));
    }
    if s.chars().any(|c| is_forbidden(c) || c == '/' || c == '\\') || s == "." || s == ".." {
        return Err(invalid(
            "original_name",
            "must be a bare file name (no / or \\, not . or .., no control or bidirectional characters)",
        ));
    }
    Ok(())
}

fn check_text(field: &'static str, s: &str) -> Result<(), JobError> {
    if s.chars().all(is_blank) || s.chars().count() > MAX_TEXT_LEN {
        return Err(invalid(field, format!("must be 1 to {MAX_TEXT_LEN} characters, not all blank")));
    }
    if s.chars().any(is_forbidden) {
        return Err(invalid(field, "must not contain control or bidirectional-formatting characters"));
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

/// A JSON value whose objects, at any depth, have no duplicate keys.
struct UniqueKeys(serde_json::Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(UniqueKeys(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(out.into())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("duplicate key `{}`", escape_untrusted(&key))));
            }
            let UniqueKeys(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(out.into())
    }
}

/// The JSON Schema of contract v1, as published in `pipeline-config/job-v1.schema.json`.
///
/// Integer widths that schemars states as formats (`uint32`, `uint64`) are dropped: they are not
/// JSON Schema formats, strict validators (Ajv) refuse them, and the bounds they imply are
/// stated as `minimum`/`maximum` already.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(UploadJobV1);
    let mut v = serde_json::to_value(schema).expect("schema serialises");
    drop_integer_formats(&mut v);
    v
}

pub(crate) fn drop_integer_formats(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            // `"type": "integer"`, or `["integer", "null"]` for an optional one.
            let integer = match m.get("type") {
                Some(serde_json::Value::String(t)) => t == "integer",
                Some(serde_json::Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
                _ => false,
            };
            if integer {
                m.remove("format");
            }
            m.values_mut().for_each(drop_integer_formats);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(drop_integer_formats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> serde_json::Value {
        crate::contract::valid_example()
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
        for case in crate::contract::invalid_examples() {
            match parse(&case.job()) {
                Err(JobError::Invalid { field, .. }) => assert_eq!(field, case.field, "{case:?}"),
                other => panic!("{case:?}: expected invalid {}, got {other:?}", case.field),
            }
        }
        for job in crate::contract::valid_variations() {
            assert!(parse(&job).is_ok(), "{job}: {:?}", parse(&job));
        }
    }

    /// The schema's string patterns against the code's checks, over strings chosen to sit on
    /// every edge (what the ecosystem's validators then do with the whole schema is tested in
    /// `tests/contract.rs`).
    #[test]
    fn the_schema_patterns_say_what_the_code_checks() {
        let compile = |p: &str| regex::Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        let (text, name, key, id) =
            (compile(TEXT_PATTERN), compile(FILE_NAME_PATTERN), compile(KEY_PATTERN), compile(ID_PATTERN));
        let mut samples: Vec<String> = [
            "",
            " ",
            "a",
            ".",
            "..",
            "...",
            ".a",
            "..a",
            "a/b",
            "a\\b",
            "st01/x",
            "st01/",
            "/x",
            "x/",
            "当事人",
            " 当 ",
            "\u{3000}",
            "\u{feff}",
            "a\u{feff}",
            "\u{200d}",
            "\u{85}",
            "\u{a0}x",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for c in (0u32..0x300).chain(0x600..0x620).chain(0x1680..0x1681).chain(0x2000..0x2070).chain([0x3000, 0xfeff]) {
            let c = char::from_u32(c).expect("scalar value");
            samples.extend([c.to_string(), format!("a{c}"), format!("{c}a"), format!("st01/{c}"), format!("{c}{c}")]);
        }
        for s in &samples {
            assert_eq!(text.is_match(s), check_text("t", s).is_ok(), "text {s:?}");
            assert_eq!(name.is_match(s), check_file_name(s).is_ok(), "file name {s:?}");
            assert_eq!(key.is_match(s), check_key(s).is_ok(), "key {s:?}");
            assert_eq!(id.is_match(s), check_id("i", s).is_ok(), "id {s:?}");
        }
    }

    #[test]
    fn the_schema_states_bounds_without_nonstandard_formats() {
        let schema = json_schema();
        let text = schema.to_string();
        assert!(!text.contains("uint"), "{text}");
        assert_eq!(schema["properties"]["size_bytes"]["maximum"], json!(MAX_SIZE_BYTES));
        assert_eq!(schema["properties"]["officer_ids"]["uniqueItems"], json!(true));
        assert_eq!(schema["properties"]["officer_ids"]["items"]["pattern"], json!(ID_PATTERN));
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let body = serde_json::to_string(&valid()).unwrap();
        let top = body.replacen("\"unit\":\"zhidui\"", "\"unit\":\"zhidui\",\"unit\":\"other\"", 1);
        let err = UploadJob::parse(top.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "malformed_job");
        assert!(err.to_string().contains("duplicate key `unit`"), "{err}");
        let nested = body.replacen("\"disputed\":true", "\"disputed\":true,\"disputed\":false", 1);
        assert_ne!(nested, body);
        assert!(UploadJob::parse(nested.as_bytes()).unwrap_err().to_string().contains("duplicate key `disputed`"));
        assert!(UploadJob::parse(body.as_bytes()).is_ok());
    }

    #[test]
    fn untrusted_text_in_errors_is_escaped() {
        let mut v = valid();
        v["activity"]["forged\nERROR line"] = json!(1);
        let err = parse(&v).unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.contains("forged\\u{000a}ERROR line"), "{err}");
    }

    #[test]
    fn r2_1_a_redelivery_has_the_same_digest_and_another_job_under_the_id_does_not() {
        let job = parse(&valid()).unwrap();
        // the same job, re-serialised with other spacing and key order
        let pretty = serde_json::to_vec_pretty(&valid()).unwrap();
        assert_eq!(UploadJob::parse(&pretty).unwrap().digest(), job.digest());
        let mut reordered = serde_json::Map::new();
        for (k, v) in valid().as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        let reordered = serde_json::to_vec(&serde_json::Value::Object(reordered)).unwrap();
        assert_eq!(UploadJob::parse(&reordered).unwrap().digest(), job.digest());
        for (path, value) in [
            (&["source", "key"][..], json!("st01/2026/11/28/0001.MP4")),
            (&["size_bytes"][..], json!(1235)),
            (&["claimed_hash", "hex"][..], json!("cd".repeat(32))),
            (&["activity", "disputed"][..], json!(false)),
            (&["device_id"][..], json!("DSJ-0043")),
        ] {
            let other = parse(&with(path, value)).unwrap();
            assert_eq!(other.job_id(), job.job_id());
            assert_ne!(other.digest(), job.digest(), "{path:?}");
        }
    }

    #[test]
    fn r2_1_a_station_speaks_only_for_itself_about_its_own_staged_bytes() {
        let job = parse(&valid()).unwrap();
        let scope = |publisher| Provenance { staging_bucket: "recvault-staging", publisher };
        assert_eq!(job.authorize(&scope(Some("st01"))), Ok(()));
        let refused = |j: &UploadJob, p: Provenance<'_>| match j.authorize(&p) {
            Err(e @ JobError::Invalid { .. }) => (e.code(), e.to_string()),
            other => panic!("expected a refusal, got {other:?}"),
        };
        let (code, msg) = refused(&job, scope(None));
        assert_eq!(code, "invalid_job");
        assert!(msg.contains("user_id"), "{msg}");
        let (_, msg) = refused(&job, scope(Some("st02")));
        assert!(msg.contains("st02") && msg.contains("st01"), "{msg}");
        let (_, msg) = refused(&job, scope(Some("st01\nforged")));
        assert!(!msg.contains('\n'), "{msg}");
        // another bucket: the archive, or anyone's
        for bucket in ["recvault-archive", "other-bucket"] {
            let j = parse(&with(&["source", "bucket"], json!(bucket))).unwrap();
            let (_, msg) = refused(&j, scope(Some("st01")));
            assert!(msg.contains("source.bucket"), "{msg}");
        }
        // another station's prefix, a prefix that only starts like ours, the archive's layout
        for key in ["st02/2026/x.MP4", "st011/2026/x.MP4", "recordings/ab/abcd.mp4", "quarantine/ab/abcd"] {
            let j = parse(&with(&["source", "key"], json!(key))).unwrap();
            let (_, msg) = refused(&j, scope(Some("st01")));
            assert!(msg.contains("source.key"), "{key}: {msg}");
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
