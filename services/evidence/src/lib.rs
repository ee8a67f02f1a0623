//! recvault-evidence: one path per action on evidence. Each path takes the core's decision, then
//! carries it out in the object store and in Postgres, in the order that never leaves the record
//! claiming more than the store holds: the store is raised first (a failure after it leaves the
//! object *more* protected than recorded, which reconciliation accepts), then the row and its
//! change record are written in one transaction.
//!
//! # Layout
//! - [`raise_retention`]: R19.1, a recording's class raised (never lowered) by a person or by a
//!   rule (a case closed: R19.1(2)), with who and why; its recovered file (R2.1), if any, with it.
//!
//! Ingest raises a class inside its own content transaction (the same bytes arriving from a job
//! with a higher class, `recvault-db` `record_archived`) with the same building blocks: the core's
//! `RetentionClass::raise_to`, the store's `raise_tag`/`raise_protection` on the recorded version,
//! and the database's `recvault_raise_retention`.

use recvault_core::RetentionClass;
use recvault_core::retention::Lowering;
use recvault_db::{Db, DbError};
use recvault_store::{Protection, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("no recording {0}")]
    NotFound(i64),
    #[error(transparent)]
    Lowering(#[from] Lowering),
    #[error("recording {0} is recorded without its archive version; reconcile before raising it")]
    NoVersion(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A raise of one recording's retention class.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionRaise<'a> {
    pub recording_id: i64,
    pub class: RetentionClass,
    /// Why, for the record (R19.1 basis, a person's reason).
    pub basis: &'a str,
    /// Who: `api:<subject>@<unit>`, `bundle <id>`, ...
    pub actor: &'a str,
}

/// What a raise did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// From `from` to the requested class.
    Raised { from: RetentionClass, to: RetentionClass },
    /// The class was already the requested one; protection checked and kept.
    Unchanged(RetentionClass),
}

/// R19.1: raises a recording's class. A lower class is refused ([`Lowering`]); the same class is a
/// no-op that still makes sure the store carries the class's tag and hold.
pub async fn raise_retention(store: &Store, db: &Db, r: &RetentionRaise<'_>) -> Result<Raised, EvidenceError> {
    let rec = db.recorded_protection(r.recording_id).await?.ok_or(EvidenceError::NotFound(r.recording_id))?;
    let to = rec.class.request(r.class)?;
    let version = rec.version_id.as_deref();
    if version.is_none() && !store.config().dev_mode {
        return Err(EvidenceError::NoVersion(r.recording_id));
    }
    store.raise_tag(&rec.bucket, &rec.key, version, to).await?;
    let head = store.head_version(&rec.bucket, &rec.key, version).await?;
    let before = head.as_ref().map(Protection::of).unwrap_or_default();
    // A class beyond two years is kept by a legal hold (no end date); the lock date is the first
    // archiving's and is not moved.
    let want = Protection { lock_mode: None, lock_until: None, legal_hold: to.lock().legal_hold };
    let after = if head.is_some() && before.lock_mode.is_some() {
        store.raise_protection(&rec.bucket, &rec.key, version, before, &want).await?
    } else {
        before
    };
    // R2.1: a recovered file is kept as long as its original.
    if let Some((bucket, key, version)) = db.recovered_object(r.recording_id).await? {
        store.raise_tag(&bucket, &key, version.as_deref(), to).await?;
        if let Some(head) = store.head_version(&bucket, &key, version.as_deref()).await?
            && head.lock_mode.is_some()
        {
            let p = store.raise_protection(&bucket, &key, version.as_deref(), Protection::of(&head), &want).await?;
            db.record_recovered_protection(r.recording_id, p.lock_mode.as_deref(), p.lock_until, p.legal_hold).await?;
        }
    }
    let from = db
        .record_retention_raise(
            r.recording_id,
            to,
            r.basis,
            r.actor,
            after.lock_mode.as_deref(),
            after.lock_until,
            after.legal_hold,
        )
        .await?;
    tracing::info!(recording_id = r.recording_id, from = %from, to = %to, actor = r.actor, "retention raised");
    Ok(if from == to { Raised::Unchanged(to) } else { Raised::Raised { from, to } })
}
