//! R19.1(2): a case is closed, and within 30 days its recordings join the case file as an archive
//! bundle. The closure as a checked value (what makes two requests the same closure), the bundle's
//! states and deadline, the bundle job on the queue, and the event a case system listens to.

use crate::hash::Blake3Hash;
use crate::job::JobError;
use chrono::{DateTime, TimeDelta, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// R19.1(2): days after a case's closure by which its recordings must be in the case file.
pub const BUNDLE_DEADLINE_DAYS: i64 = 30;

/// Most recordings a closure may name beyond those that carry the case id.
pub const MAX_EXTRA_RECORDINGS: usize = 1000;

/// A checked case closure. Two requests are the same closure when their canonical forms are
/// equal: the same case, unit, time, reason and sets of extra recordings and quarantined files
/// (in any order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closure {
    pub case_id: String,
    pub unit: String,
    pub closed_at: DateTime<Utc>,
    /// Recordings to add beyond those whose job named this case.
    pub extra_recordings: BTreeSet<i64>,
    /// Quarantined files to add beyond those whose job named this case.
    pub extra_quarantined: BTreeSet<i64>,
    pub reason: String,
}

/// Why a closure request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClosureError {
    #[error("invalid field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl From<JobError> for ClosureError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Invalid { field, reason } => Self::Invalid { field, reason },
            other => Self::Invalid { field: "body", reason: other.to_string() },
        }
    }
}

impl Closure {
    /// Checks a closure request. `now` bounds `closed_at` (a closure is not announced ahead).
    pub fn new(
        case_id: &str,
        unit: &str,
        closed_at: DateTime<Utc>,
        extra_recordings: impl IntoIterator<Item = i64>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, ClosureError> {
        crate::job::check_identifier("case_id", case_id)?;
        crate::job::check_identifier("unit", unit)?;
        crate::job::check_free_text("reason", reason)?;
        if closed_at > now + TimeDelta::minutes(5) {
            return Err(ClosureError::Invalid { field: "closed_at", reason: "lies in the future".into() });
        }
        Ok(Self {
            case_id: case_id.into(),
            unit: unit.into(),
            closed_at,
            extra_recordings: ids("recordings", extra_recordings)?,
            extra_quarantined: BTreeSet::new(),
            reason: reason.into(),
        })
    }

    /// The closure also names these quarantined files (kept in the bag with their flag).
    pub fn with_quarantined(mut self, extra: impl IntoIterator<Item = i64>) -> Result<Self, ClosureError> {
        self.extra_quarantined = ids("quarantined", extra)?;
        Ok(self)
    }

    /// What tells a repeated closure from a different one (idempotency of `PUT .../closure`).
    pub fn digest(&self) -> Blake3Hash {
        let canonical = serde_json::to_vec(self).expect("a closure serialises");
        Blake3Hash(*blake3::hash(&canonical).as_bytes())
    }

    /// R19.1(2): the bundle must be ready by then.
    pub fn deadline(&self) -> DateTime<Utc> {
        deadline(self.closed_at)
    }
}

/// A set of named ids: positive, at most [`MAX_EXTRA_RECORDINGS`].
fn ids(field: &'static str, named: impl IntoIterator<Item = i64>) -> Result<BTreeSet<i64>, ClosureError> {
    let set: BTreeSet<i64> = named.into_iter().collect();
    if set.len() > MAX_EXTRA_RECORDINGS {
        return Err(ClosureError::Invalid { field, reason: format!("at most {MAX_EXTRA_RECORDINGS} ids") });
    }
    if set.iter().any(|id| *id <= 0) {
        return Err(ClosureError::Invalid { field, reason: "ids are positive integers".into() });
    }
    Ok(set)
}

/// R19.1(2): closure plus 30 days.
pub fn deadline(closed_at: DateTime<Utc>) -> DateTime<Utc> {
    closed_at + TimeDelta::days(BUNDLE_DEADLINE_DAYS)
}

/// Whether a case's bundle is late at `now`: past the deadline and not ready.
pub fn is_overdue(closed_at: DateTime<Utc>, ready: bool, now: DateTime<Utc>) -> bool {
    !ready && now > deadline(closed_at)
}

/// Where a bundle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BundleState {
    Queued,
    Building,
    Ready,
    Failed,
}

impl BundleState {
    pub const ALL: [BundleState; 4] = [Self::Queued, Self::Building, Self::Ready, Self::Failed];

    pub fn code(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Building => "building",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.code() == s)
    }
}

/// The routing key of bundle jobs, versioned with their contract.
pub const BUNDLE_ROUTING_KEY: &str = "bundle.v1";

/// A bundle job: which bundle to build (everything else is in Postgres).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleJobV1 {
    pub schema_version: u32,
    pub bundle_id: String,
}

/// What a bundle event says (`bundle.ready`, `bundle.failed` on the events exchange).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "recvault bundle event v1")]
pub struct BundleEventV1 {
    /// Contract version; always 1 here.
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// `bundle.ready` or `bundle.failed` (also the routing key).
    #[schemars(regex(pattern = r"^bundle\.(ready|failed)$"))]
    pub event: String,
    /// The bundle (`GET /v1/bundles/{bundle_id}`).
    #[schemars(regex(pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"))]
    pub bundle_id: String,
    #[schemars(length(min = 1, max = 128), regex(pattern = crate::job::ID_PATTERN))]
    pub case_id: String,
    #[schemars(length(min = 1, max = 128), regex(pattern = crate::job::ID_PATTERN))]
    pub unit: String,
    pub state: BundleState,
    /// R19.1(2): closure plus 30 days.
    pub deadline: DateTime<Utc>,
    /// Recordings in the bag.
    #[schemars(range(min = 0))]
    pub recordings: u32,
    /// Size of the tar object, bytes (ready only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 9_007_199_254_740_991u64))]
    pub size_bytes: Option<u64>,
    /// SHA-256 of the tar object, 64 hex digits (ready only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    pub sha256: Option<String>,
    /// Why it failed (failed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// The JSON Schema of bundle events, as published in `pipeline-config/bundle-event-v1.schema.json`.
pub fn event_json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(BundleEventV1);
    let mut v = serde_json::to_value(schema).expect("schema serialises");
    crate::job::drop_integer_formats(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn now() -> DateTime<Utc> {
        t("2026-12-02T00:00:00Z")
    }

    fn closure(extra: &[i64]) -> Result<Closure, ClosureError> {
        Closure::new("FZCG-2026-001", "zhidui", t("2026-11-20T10:00:00+08:00"), extra.to_vec(), "结案", now())
    }

    #[test]
    fn r19_1_2_the_deadline_is_thirty_days_after_closure() {
        let c = closure(&[]).unwrap();
        assert_eq!(c.deadline(), t("2026-12-20T02:00:00Z"));
        let closed = c.closed_at;
        assert!(!is_overdue(closed, false, c.deadline()));
        assert!(is_overdue(closed, false, c.deadline() + TimeDelta::seconds(1)));
        assert!(!is_overdue(closed, true, c.deadline() + TimeDelta::days(100)));
    }

    #[test]
    fn the_same_closure_in_another_order_is_the_same_closure() {
        let a = closure(&[3, 1, 2]).unwrap();
        let b = closure(&[2, 3, 1, 3]).unwrap();
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), closure(&[1, 2]).unwrap().digest());
        let other_reason =
            Closure::new("FZCG-2026-001", "zhidui", a.closed_at, [1, 2, 3], "另一个理由", now()).unwrap();
        assert_ne!(a.digest(), other_reason.digest());
        let with_quarantined = closure(&[1, 2, 3]).unwrap().with_quarantined([7]).unwrap();
        assert_ne!(a.digest(), with_quarantined.digest(), "a different set of quarantined files is another closure");
        assert_eq!(with_quarantined.digest(), closure(&[3, 2, 1]).unwrap().with_quarantined([7, 7]).unwrap().digest());
    }

    #[test]
    fn bad_closures_are_refused_naming_the_field() {
        let field = |r: Result<Closure, ClosureError>| match r {
            Err(ClosureError::Invalid { field, .. }) => field,
            Ok(_) => "accepted",
        };
        let at = t("2026-11-20T00:00:00Z");
        assert_eq!(field(Closure::new("bad id", "zhidui", at, [], "r", now())), "case_id");
        assert_eq!(field(Closure::new("C1", "", at, [], "r", now())), "unit");
        assert_eq!(field(Closure::new("C1", "zhidui", at, [], " ", now())), "reason");
        assert_eq!(field(Closure::new("C1", "zhidui", at, [], "a\u{202e}b", now())), "reason");
        assert_eq!(field(Closure::new("C1", "zhidui", now() + TimeDelta::days(1), [], "r", now())), "closed_at");
        assert_eq!(field(Closure::new("C1", "zhidui", at, [0], "r", now())), "recordings");
        assert_eq!(field(Closure::new("C1", "zhidui", at, 1..=1001, "r", now())), "recordings");
        assert_eq!(field(Closure::new("C1", "zhidui", at, 1..=1000, "r", now())), "accepted");
        let quarantined = |q: Vec<i64>| Closure::new("C1", "zhidui", at, [], "r", now()).unwrap().with_quarantined(q);
        assert_eq!(field(quarantined(vec![-1])), "quarantined");
        assert_eq!(field(quarantined((1..=1001).collect())), "quarantined");
    }

    #[test]
    fn bundle_states_round_trip() {
        for s in BundleState::ALL {
            assert_eq!(BundleState::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn the_published_event_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipeline-config/bundle-event-v1.schema.json");
        if std::env::var_os("RECVAULT_BLESS").is_some() {
            std::fs::write(path, serde_json::to_string_pretty(&event_json_schema()).unwrap() + "\n").unwrap();
        }
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default()).unwrap_or_default();
        assert!(
            committed == event_json_schema(),
            "pipeline-config/bundle-event-v1.schema.json is stale: RECVAULT_BLESS=1 cargo test -p recvault-core schema"
        );
    }
}
