//! Recovery of unfinalized recordings (R2.1), run by every worker beside its queues.
//!
//! A recording archived without an index (the recorder lost power) has a `recoveries` row, written
//! in the same transaction. A worker claims a due row, finds the device's most recent finished
//! recording (the reference), reads both from the archive, rebuilds the index
//! ([`recvault_recover::recover`]) into a new file, hashes and verifies it exactly as it verifies
//! an upload (speech included), archives it under `recovered/<its own BLAKE3>.mp4` with the
//! original's retention class, Object Lock and legal hold, and records it in one transaction with a
//! `recovered` finding on the original and the activity recomputed on the recovered media.
//!
//! | what happened                                       | row                                  |
//! |-----------------------------------------------------|--------------------------------------|
//! | no finished recording of the device yet             | `awaiting_reference` (made due again |
//! |                                                     | when one is archived)                |
//! | recovered                                           | `recovered` (final)                  |
//! | nothing could be placed                             | `failed`, with the reason            |
//! | S3, Postgres, the spool failing                     | due again later; `failed` after      |
//! |                                                     | `worker.recovery_max_attempts`       |
//!
//! The original is only read: it stays archived, locked and recorded as it was.

use crate::budget::Admission;
use crate::fetch::{Spooled, fetch, hash_file};
use crate::metrics::Metrics;
use crate::verify::verify;
use recvault_core::analysis::AnalysisPolicy;
use recvault_core::probe::ProbePolicy;
use recvault_core::{RetentionClass, keys};
use recvault_db::Db;
use recvault_db::recoveries::{NewRecovery, RecoveryWork, StoredObject};
use recvault_store::{ArchiveRequest, Store};
use std::path::PathBuf;
use std::time::Duration;
use tracing::{Instrument, error, info, info_span, warn};

/// What the recovery pass needs.
#[derive(Debug, Clone)]
pub struct RecoveryContext {
    pub store: Store,
    pub db: Db,
    pub metrics: Metrics,
    pub policy: ProbePolicy,
    pub analysis: AnalysisPolicy,
    pub spool_dir: PathBuf,
    pub worker_id: String,
    pub object_lock: bool,
    pub lease: Duration,
    pub max_attempts: u32,
    /// The worker's spool budget, shared with its jobs.
    pub budget: crate::budget::SpoolBudget,
}

/// A try that did not finish, and whether trying again can help.
#[derive(Debug)]
enum Fault {
    Transient(String),
    Permanent(String),
}

fn transient(what: &str, e: impl std::fmt::Display) -> Fault {
    Fault::Transient(format!("{what}: {e}"))
}

/// Recovers every due recording, one at a time; returns how many were tried.
pub async fn run_due(ctx: &RecoveryContext) -> usize {
    let mut tried = 0;
    loop {
        let work = match ctx.db.claim_recovery(&ctx.worker_id, ctx.lease).await {
            Ok(Some(w)) => w,
            Ok(None) => return tried,
            Err(e) => {
                warn!(error = %e, "could not claim a recovery");
                return tried;
            }
        };
        tried += 1;
        let id = work.original.recording_id;
        let span = info_span!("recovery", recording_id = id, device_id = work.device_id, attempt = work.attempts);
        let outcome = one(ctx, &work).instrument(span.clone()).await;
        let label = settle(ctx, &work, outcome).instrument(span).await;
        ctx.metrics.recoveries.with_label_values(&[label]).inc();
    }
}

async fn settle(ctx: &RecoveryContext, work: &RecoveryWork, outcome: Result<&'static str, Fault>) -> &'static str {
    let id = work.original.recording_id;
    let attempts = u32::try_from(work.attempts).unwrap_or(u32::MAX);
    let (label, result) = match outcome {
        Ok(label) => return label,
        Err(Fault::Permanent(why)) => {
            error!(reason = why, "the recording cannot be recovered; kept as failed with the reason");
            ("failed", ctx.db.fail_recovery(id, &why).await)
        }
        Err(Fault::Transient(why)) if attempts >= ctx.max_attempts => {
            error!(reason = why, attempts, "recovery failed on every try; kept as failed with the reason");
            ("failed", ctx.db.fail_recovery(id, &format!("{attempts} tries failed; last: {why}")).await)
        }
        Err(Fault::Transient(why)) => {
            let delay = backoff(attempts);
            warn!(reason = why, retry_in_s = delay.as_secs(), "recovery failed, trying again later");
            ("retried", ctx.db.retry_recovery(id, &why, delay).await)
        }
    };
    if let Err(e) = result {
        // the lease runs out and another worker (or this one) takes the row again
        warn!(error = %e, "could not record how the recovery ended");
    }
    label
}

/// 5 s, 10 s, 20 s … up to an hour.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(5u64.saturating_mul(1 << attempts.saturating_sub(1).min(10)).min(3600))
}

async fn one(ctx: &RecoveryContext, work: &RecoveryWork) -> Result<&'static str, Fault> {
    let original = &work.original;
    let Some(reference) = ctx
        .db
        .recovery_reference(&work.device_id, original.recording_id)
        .await
        .map_err(|e| transient("database", e))?
    else {
        let parked = ctx
            .db
            .await_reference(original.recording_id, &work.device_id)
            .await
            .map_err(|e| transient("database", e))?;
        if parked {
            info!("no finished recording of this device yet: waiting for one");
            return Ok("awaiting_reference");
        }
        return Err(Fault::Transient("a reference arrived while parking; trying again".into()));
    };
    // The original, the reference and the recovered file (at most the original's size) in the spool.
    let size = [original.size_bytes, original.size_bytes, reference.size_bytes]
        .iter()
        .map(|s| u64::try_from(*s).unwrap_or(0))
        .sum::<u64>();
    let _room = match ctx.budget.reserve(size).map_err(|e| transient("spool", e))? {
        Ok(room) => room,
        Err(Admission::Never { capacity }) => {
            return Err(Fault::Permanent(format!(
                "the recording, its reference and the recovered file need {size} bytes of spool and this worker's holds {capacity}: raise worker.spool_max_bytes or the spool volume"
            )));
        }
        Err(Admission::NotNow { free }) => {
            return Err(Fault::Transient(format!("{size} bytes do not fit in the spool now ({free} free)")));
        }
        Err(Admission::Admit) => unreachable!("an admission is a reservation"),
    };
    let damaged = read(ctx, original).await?;
    let reference_file = read(ctx, &reference).await?;
    let out = crate::spool::create(&ctx.spool_dir).map_err(|e| transient("spool", e))?;

    let (d, r, o) =
        (damaged.file.path().to_path_buf(), reference_file.file.path().to_path_buf(), out.path().to_path_buf());
    let recovered = tokio::task::spawn_blocking(move || recvault_recover::recover(&d, &r, &o))
        .await
        .map_err(|e| transient("recovery task", e))?;
    let recovery = match recovered {
        Ok(r) if r.tracks.is_empty() => {
            let why = r.unplaced.as_ref().map_or("no media data", |u| u.reason.as_str());
            return Err(Fault::Permanent(format!(
                "nothing could be placed with recording {} as reference: {why}",
                reference.recording_id
            )));
        }
        Ok(r) => r,
        Err(recvault_recover::RecoverError::Io { path, source }) => {
            return Err(transient(&format!("reading or writing {}", path.display()), source));
        }
        Err(e) => return Err(Fault::Permanent(e.to_string())),
    };
    let path = out.path().to_path_buf();
    let hashes = tokio::task::spawn_blocking(move || hash_file(&path))
        .await
        .map_err(|e| transient("hash task", e))?
        .map_err(|e| transient("hashing the recovered file", e))?;
    let verified = verify(out.path().to_path_buf(), ctx.policy).await.map_err(|e| transient("verifying", e))?;
    if let Err(rejection) = &verified.assessment.verdict {
        return Err(Fault::Permanent(format!("the recovered file does not verify: {rejection}")));
    }

    let class = RetentionClass::from_code(&original.retention_class).unwrap_or(RetentionClass::Permanent);
    let req = ArchiveRequest {
        source: None,
        spool_path: out.path().to_path_buf(),
        size: hashes.size,
        key: keys::recovered_key(&hashes.blake3),
        blake3: hashes.blake3,
        sha256_hex: hashes.sha256.to_hex(),
        metadata: vec![
            ("recovered-from".into(), original.recording_id.to_string()),
            ("reference".into(), reference.recording_id.to_string()),
            ("device-id".into(), work.device_id.clone()),
        ],
        content_type: "video/mp4".into(),
        retention: class,
        object_lock: ctx.object_lock,
        recorded_version: None,
    };
    let stored = ctx.store.archive(&req).await.map_err(|e| transient("archiving the recovered file", e))?;
    let report = serde_json::to_value(&recovery).map_err(|e| Fault::Permanent(e.to_string()))?;
    let new = NewRecovery {
        recording_id: original.recording_id,
        reference_id: reference.recording_id,
        hashes,
        location: crate::archive::location(&stored),
        recovery: &report,
        report: &verified.report,
        assessment: &verified.assessment,
        worker_id: &ctx.worker_id,
    };
    let recorded =
        ctx.db.record_recovery(&new, &ctx.analysis, &ctx.policy).await.map_err(|e| transient("database", e))?;
    let Some(analysis) = recorded else {
        info!("another worker recorded this recovery first");
        return Ok("superseded");
    };
    for kind in &analysis.raised {
        ctx.metrics.findings.with_label_values(&[kind.code()]).inc();
    }
    for kind in &analysis.withdrawn {
        ctx.metrics.findings_withdrawn.with_label_values(&[kind.code()]).inc();
    }
    ctx.metrics.findings.with_label_values(&[recvault_core::FindingKind::Recovered.code()]).inc();
    info!(
        reference_id = reference.recording_id,
        key = stored.key,
        seconds = verified.assessment.readable_duration_ns as f64 / 1e9,
        placed_fraction = recovery.placed_fraction,
        activity_findings_raised = analysis.raised.len(),
        activity_findings_withdrawn = analysis.withdrawn.len(),
        "recovered"
    );
    Ok("recovered")
}

/// Reads an archived recording into the spool, at its recorded version.
async fn read(ctx: &RecoveryContext, o: &StoredObject) -> Result<Spooled, Fault> {
    fetch(&ctx.store, &o.bucket, &o.key, o.version_id.as_deref(), &ctx.spool_dir)
        .await
        .map_err(|e| transient(&format!("reading recording {} from the archive", o.recording_id), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(5), Duration::from_secs(80));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }
}
