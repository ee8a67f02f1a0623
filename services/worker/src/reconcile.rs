//! `recvault reconcile` (R21.1): every row's archive object is at its recorded version, current,
//! with the tag its class needs, the recorded lock (mode, and a date no earlier) and hold, and
//! the bytes the row names; every object version under `recordings/`, `quarantine/`, `recovered/`
//! and the bundles prefix has a row. Ready case-file bundles (R19.1(2)) are read back and their SHA-256
//! compared with the one the case systems were given.
//!
//! Drift is reported (JSON), kept as critical findings (raised once, withdrawn when gone), recorded
//! as a run (the worker turns the live count and the last run into metrics, and the alert rules
//! fire on them). `--repair` only ever raises a tag, a lock or a hold; what it cannot raise back
//! (a missing or hidden version, other bytes, an unrecorded object) stays reported for a person.
//!
//! Cost: one listing of the archive prefixes plus a HEAD and a tag read per row, and one full
//! read of every ready bundle. For archives of
//! many millions of objects an S3 Inventory report would replace the listing; the comparison in
//! `recvault_core::reconcile` stays the same.

use chrono::{DateTime, Utc};
use recvault_core::keys::{RECORDINGS_PREFIX, RECOVERED_PREFIX};
use recvault_core::reconcile::{Claim, DriftKind, Observed, compare};
use recvault_db::reconcile::{Drift, RecordedObject};
use recvault_db::{Db, DbError};
use recvault_store::{Protection, Store, StoreError, VersionEntry};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a run found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileReport {
    pub started_at: Option<DateTime<Utc>>,
    /// Rows whose objects were checked.
    pub rows: usize,
    /// Object versions listed under the archive prefixes.
    pub objects: usize,
    /// Drift found (before repair).
    pub drift: Vec<Drift>,
    /// Drift `--repair` put right (by raising only).
    pub repaired: Vec<Drift>,
    pub findings_raised: usize,
    pub findings_withdrawn: usize,
}

impl ReconcileReport {
    /// Drift still there after the run.
    pub fn outstanding(&self) -> usize {
        self.drift.len() - self.repaired.len()
    }
}

/// Runs one reconciliation of the archive bucket against Postgres; bundles live under
/// `bundles_prefix` (`[bundles] prefix`).
pub async fn reconcile(
    store: &Store,
    db: &Db,
    bundles_prefix: &str,
    repair: bool,
) -> Result<ReconcileReport, ReconcileError> {
    let started_at = Utc::now();
    let bucket = store.config().archive_bucket.clone();
    let mut listed = store.list_versions(&bucket, RECORDINGS_PREFIX).await?;
    listed.extend(store.list_versions(&bucket, &store.config().quarantine_prefix).await?);
    listed.extend(store.list_versions(&bucket, RECOVERED_PREFIX).await?);
    listed.extend(store.list_versions(&bucket, bundles_prefix).await?);
    let rows = db.recorded_objects().await?;
    let mut report = ReconcileReport {
        started_at: Some(started_at),
        rows: rows.len(),
        objects: listed.iter().filter(|v| !v.delete_marker).count(),
        ..ReconcileReport::default()
    };

    let latest: HashMap<&str, &VersionEntry> =
        listed.iter().filter(|v| v.is_latest).map(|v| (v.key.as_str(), v)).collect();
    let recorded: HashSet<(&str, Option<&str>)> =
        rows.iter().map(|r| (r.expected.key.as_str(), r.expected.version_id.as_deref())).collect();

    for row in &rows {
        let observed = observe(store, row, &listed, &latest).await?;
        for kind in compare(&row.expected, &observed) {
            let drift = Drift {
                kind,
                bucket: row.bucket.clone(),
                key: row.expected.key.clone(),
                version_id: row.expected.version_id.clone(),
                row: Some(row.row),
                detail: describe(kind, row, &observed),
            };
            if repair && kind.repairable() && repair_one(store, row, &observed, kind).await? {
                report.repaired.push(drift.clone());
            }
            report.drift.push(drift);
        }
    }
    for v in listed.iter().filter(|v| !v.delete_marker) {
        if !recorded.contains(&(v.key.as_str(), v.version_id.as_deref())) {
            report.drift.push(Drift {
                kind: DriftKind::Unrecorded,
                bucket: bucket.clone(),
                key: v.key.clone(),
                version_id: v.version_id.clone(),
                row: None,
                detail: format!("{} bytes that no recording, quarantine, recovery or bundle row records", v.size),
            });
        }
    }

    // Repaired drift is kept as a finding too (someone lowered protection behind the system's
    // back: a person must look); the next run, not finding it again, withdraws it.
    let json = serde_json::to_value(&report).unwrap_or_default();
    let (raised, withdrawn) =
        db.record_reconcile(started_at, report.objects, &report.drift, report.repaired.len(), &json).await?;
    report.findings_raised = raised;
    report.findings_withdrawn = withdrawn;
    Ok(report)
}

/// What the store shows for one row's object.
async fn observe(
    store: &Store,
    row: &RecordedObject,
    listed: &[VersionEntry],
    latest: &HashMap<&str, &VersionEntry>,
) -> Result<Observed, StoreError> {
    let e = &row.expected;
    let exists = listed.iter().any(|v| !v.delete_marker && v.key == e.key && v.version_id == e.version_id);
    if !exists {
        return Ok(Observed::default());
    }
    let current = latest.get(e.key.as_str()).is_some_and(|v| !v.delete_marker && v.version_id == e.version_id);
    let Some(head) = store.head_version(&row.bucket, &e.key, e.version_id.as_deref()).await? else {
        return Ok(Observed::default());
    };
    let tag = store.retention_tag_of(&row.bucket, &e.key, e.version_id.as_deref()).await?;
    // Bytes are read back only where the claim needs it, and only when the size already agrees.
    let sha256_hex = match &e.claim {
        Claim::Sha256(_) if head.size == e.size => {
            let (_, sha) = store.sha256_object(&row.bucket, &e.key, e.version_id.as_deref()).await?;
            Some(hex::encode(sha))
        }
        _ => None,
    };
    Ok(Observed {
        exists: true,
        current,
        tag,
        lock_mode: head.lock_mode.clone(),
        lock_until: head.lock_until,
        legal_hold: head.legal_hold,
        size: head.size,
        blake3_hex: head.metadata.get(recvault_store::objects::META_BLAKE3).cloned(),
        sha256_hex,
    })
}

fn describe(kind: DriftKind, row: &RecordedObject, o: &Observed) -> String {
    let e = &row.expected;
    match kind {
        DriftKind::Missing => "the recorded version is gone".into(),
        DriftKind::Hidden => "the recorded version is not current (a delete marker or another version on top)".into(),
        DriftKind::TagLowered => format!("retention tag {:?}, the class needs {:?}", o.tag, e.tag),
        DriftKind::LockMode => format!("lock mode {:?}, recorded {:?}", o.lock_mode, e.lock_mode),
        DriftKind::LockShortened => format!("locked until {:?}, recorded {:?}", o.lock_until, e.lock_until),
        DriftKind::HoldLifted => "the recorded legal hold is off".into(),
        DriftKind::Content => match &e.claim {
            Claim::Blake3Metadata(h) => format!(
                "{} bytes claiming blake3 {:?}; the row records {} bytes, blake3 {h}",
                o.size, o.blake3_hex, e.size
            ),
            Claim::Sha256(h) => format!(
                "{} bytes hashing to sha-256 {:?}; the bundle records {} bytes, sha-256 {h}",
                o.size, o.sha256_hex, e.size
            ),
        },
        DriftKind::Unrecorded => "no row records it".into(),
    }
}

/// Raises what one drift lowered; true if the store accepted it. Never lowers, never deletes.
async fn repair_one(store: &Store, row: &RecordedObject, o: &Observed, kind: DriftKind) -> Result<bool, StoreError> {
    let e = &row.expected;
    let version = e.version_id.as_deref();
    let outcome = match kind {
        DriftKind::TagLowered => {
            let class = if e.tag == "permanent" {
                recvault_core::RetentionClass::Permanent
            } else {
                recvault_core::RetentionClass::TwoYears
            };
            store.raise_tag(&row.bucket, &e.key, version, class).await.map(|_| ())
        }
        DriftKind::HoldLifted => {
            let before = Protection { lock_mode: o.lock_mode.clone(), lock_until: o.lock_until, legal_hold: false };
            let want = Protection { legal_hold: true, ..Protection::default() };
            store.raise_protection(&row.bucket, &e.key, version, before, &want).await.map(|_| ())
        }
        DriftKind::LockMode | DriftKind::LockShortened => match (&e.lock_mode, e.lock_until) {
            (Some(mode), Some(recorded)) => {
                let until = o.lock_until.map_or(recorded, |t| t.max(recorded));
                store.restore_lock(&row.bucket, &e.key, version, mode, until).await
            }
            _ => return Ok(false),
        },
        _ => return Ok(false),
    };
    match outcome {
        Ok(()) => Ok(true),
        Err(e) if matches!(e, StoreError::Service { .. }) => {
            tracing::warn!(error = %e, key = row.expected.key, "the store refused the repair");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}
