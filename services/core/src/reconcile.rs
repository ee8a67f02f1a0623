//! R21.1: the database and the archive must agree. What Postgres records about an archived object
//! (its version, retention tag, lock and hold) against what the store shows, as pure comparisons;
//! `recvault reconcile` gathers both sides and reports the drift.
//!
//! A store can only ever hold *more* protection than recorded without drift (a lock extended, a
//! hold added by hand): drift is protection lost, an object gone or hidden, or bytes nobody
//! recorded. Repair only ever raises (a tag, a lock date, a hold); nothing here lowers or deletes.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What the database says one archived object must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub key: String,
    pub version_id: Option<String>,
    /// The `retention` tag its class needs (`2y` or `permanent`).
    pub tag: &'static str,
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
    pub size: u64,
    /// What the bytes must hash to.
    pub claim: Claim,
}

/// How an object's content is checked without trusting its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// BLAKE3 (hex) of the bytes, as the object's metadata must claim (recordings, quarantined
    /// files: written by the worker that hashed them).
    Blake3Metadata(String),
    /// SHA-256 (hex) of the bytes, read back and hashed (case-file bundles, R19.1(2): the digest
    /// a case system was given).
    Sha256(String),
}

/// What the store shows for that object.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observed {
    /// The recorded version exists.
    pub exists: bool,
    /// The recorded version is the current one (no newer version, no delete marker on top).
    pub current: bool,
    pub tag: Option<String>,
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
    pub size: u64,
    /// The BLAKE3 the object's metadata claims.
    pub blake3_hex: Option<String>,
    /// SHA-256 of the bytes, where they were read back (a [`Claim::Sha256`]).
    pub sha256_hex: Option<String>,
}

/// One disagreement. Codes are stable (JSON report, finding fingerprints).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The recorded version is gone.
    Missing,
    /// The recorded version exists but is not current: a delete marker or another version on top.
    Hidden,
    /// The retention tag is missing or weaker than the class needs.
    TagLowered,
    /// No lock, or a lock in another mode than recorded.
    LockMode,
    /// The lock ends earlier than recorded.
    LockShortened,
    /// The recorded legal hold is not on the object.
    HoldLifted,
    /// Size or BLAKE3 claim differ from the row: other bytes under the name.
    Content,
    /// An object version under `recordings/` or `quarantine/` that no row records.
    Unrecorded,
}

impl DriftKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Hidden => "hidden",
            Self::TagLowered => "tag_lowered",
            Self::LockMode => "lock_mode",
            Self::LockShortened => "lock_shortened",
            Self::HoldLifted => "hold_lifted",
            Self::Content => "content",
            Self::Unrecorded => "unrecorded",
        }
    }

    /// Whether `--repair` can put it right by raising protection (never by deleting or lowering).
    pub fn repairable(self) -> bool {
        matches!(self, Self::TagLowered | Self::LockShortened | Self::HoldLifted | Self::LockMode)
    }
}

/// The `retention` tags from weakest to strongest.
fn tag_rank(tag: &str) -> Option<u8> {
    match tag {
        "2y" => Some(0),
        "permanent" => Some(1),
        _ => None,
    }
}

/// Every way `observed` falls short of `expected`, in a stable order.
pub fn compare(expected: &Expected, observed: &Observed) -> Vec<DriftKind> {
    if !observed.exists {
        return vec![DriftKind::Missing];
    }
    let mut out = Vec::new();
    if !observed.current {
        out.push(DriftKind::Hidden);
    }
    let weaker = match (observed.tag.as_deref().and_then(tag_rank), tag_rank(expected.tag)) {
        (Some(have), Some(want)) => have < want,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    if weaker {
        out.push(DriftKind::TagLowered);
    }
    if let Some(mode) = &expected.lock_mode
        && observed.lock_mode.as_ref() != Some(mode)
    {
        out.push(DriftKind::LockMode);
    }
    if let Some(until) = expected.lock_until
        && observed.lock_until.is_none_or(|t| t < until)
    {
        out.push(DriftKind::LockShortened);
    }
    if expected.legal_hold && !observed.legal_hold {
        out.push(DriftKind::HoldLifted);
    }
    let claimed = match &expected.claim {
        Claim::Blake3Metadata(h) => observed.blake3_hex.as_deref() == Some(h.as_str()),
        Claim::Sha256(h) => observed.sha256_hex.as_deref() == Some(h.as_str()),
    };
    if observed.size != expected.size || !claimed {
        out.push(DriftKind::Content);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2028-12-01T00:00:00Z").unwrap().to_utc()
    }

    fn expected() -> Expected {
        Expected {
            key: "recordings/ab/ab.mp4".into(),
            version_id: Some("v1".into()),
            tag: "2y",
            lock_mode: Some("COMPLIANCE".into()),
            lock_until: Some(t0()),
            legal_hold: false,
            size: 100,
            claim: Claim::Blake3Metadata("ab".repeat(32)),
        }
    }

    fn agreeing() -> Observed {
        Observed {
            exists: true,
            current: true,
            tag: Some("2y".into()),
            lock_mode: Some("COMPLIANCE".into()),
            lock_until: Some(t0()),
            legal_hold: false,
            size: 100,
            blake3_hex: Some("ab".repeat(32)),
            sha256_hex: None,
        }
    }

    #[test]
    fn an_object_as_recorded_has_no_drift() {
        assert_eq!(compare(&expected(), &agreeing()), vec![]);
    }

    #[test]
    fn more_protection_than_recorded_is_not_drift() {
        let o = Observed {
            tag: Some("permanent".into()),
            lock_until: Some(t0() + TimeDelta::days(30)),
            legal_hold: true,
            ..agreeing()
        };
        assert_eq!(compare(&expected(), &o), vec![]);
    }

    #[test]
    fn r21_1_each_loss_of_protection_is_named() {
        let e = Expected { tag: "permanent", legal_hold: true, ..expected() };
        let held = Observed { tag: Some("permanent".into()), legal_hold: true, ..agreeing() };
        assert_eq!(compare(&e, &held), vec![]);
        let cases: Vec<(Observed, Vec<DriftKind>)> = vec![
            (Observed { exists: false, ..held.clone() }, vec![DriftKind::Missing]),
            (Observed { current: false, ..held.clone() }, vec![DriftKind::Hidden]),
            (Observed { tag: Some("2y".into()), ..held.clone() }, vec![DriftKind::TagLowered]),
            (Observed { tag: None, ..held.clone() }, vec![DriftKind::TagLowered]),
            (Observed { tag: Some("forever".into()), ..held.clone() }, vec![DriftKind::TagLowered]),
            (Observed { lock_mode: Some("GOVERNANCE".into()), ..held.clone() }, vec![DriftKind::LockMode]),
            (
                Observed { lock_mode: None, lock_until: None, ..held.clone() },
                vec![DriftKind::LockMode, DriftKind::LockShortened],
            ),
            (
                Observed { lock_until: Some(t0() - TimeDelta::seconds(1)), ..held.clone() },
                vec![DriftKind::LockShortened],
            ),
            (Observed { legal_hold: false, ..held.clone() }, vec![DriftKind::HoldLifted]),
            (Observed { size: 99, ..held.clone() }, vec![DriftKind::Content]),
            (Observed { blake3_hex: None, ..held.clone() }, vec![DriftKind::Content]),
            (
                Observed { current: false, tag: None, legal_hold: false, ..held.clone() },
                vec![DriftKind::Hidden, DriftKind::TagLowered, DriftKind::HoldLifted],
            ),
        ];
        for (o, want) in cases {
            assert_eq!(compare(&e, &o), want, "{o:?}");
        }
    }

    #[test]
    fn a_bundle_is_checked_by_the_sha256_of_its_bytes() {
        let e = Expected { tag: "permanent", claim: Claim::Sha256("cd".repeat(32)), ..expected() };
        let read = Observed {
            tag: Some("permanent".into()),
            blake3_hex: None,
            sha256_hex: Some("cd".repeat(32)),
            ..agreeing()
        };
        assert_eq!(compare(&e, &read), vec![]);
        assert_eq!(
            compare(&e, &Observed { sha256_hex: Some("ce".repeat(32)), ..read.clone() }),
            vec![DriftKind::Content]
        );
        assert_eq!(
            compare(&e, &Observed { sha256_hex: None, ..read.clone() }),
            vec![DriftKind::Content],
            "not read: not proven"
        );
        // a BLAKE3 claim in the metadata does not stand in for the bytes' SHA-256
        assert_eq!(
            compare(&e, &Observed { sha256_hex: None, blake3_hex: Some("cd".repeat(32)), ..read }),
            vec![DriftKind::Content]
        );
    }

    #[test]
    fn a_recording_without_a_recorded_lock_needs_none() {
        // development set-ups record no lock; a missing lock is then not drift
        let e = Expected { lock_mode: None, lock_until: None, ..expected() };
        let o = Observed { lock_mode: None, lock_until: None, ..agreeing() };
        assert_eq!(compare(&e, &o), vec![]);
    }

    #[test]
    fn only_protection_can_be_repaired() {
        let repairable: Vec<_> = [
            DriftKind::Missing,
            DriftKind::Hidden,
            DriftKind::TagLowered,
            DriftKind::LockMode,
            DriftKind::LockShortened,
            DriftKind::HoldLifted,
            DriftKind::Content,
            DriftKind::Unrecorded,
        ]
        .into_iter()
        .filter(|k| k.repairable())
        .collect();
        assert_eq!(
            repairable,
            vec![DriftKind::TagLowered, DriftKind::LockMode, DriftKind::LockShortened, DriftKind::HoldLifted]
        );
    }
}
