//! One delivery, from message to settlement.
//!
//! | what happened                                   | result                               | message            |
//! |-------------------------------------------------|--------------------------------------|--------------------|
//! | job malformed, invalid or of unknown version    | nothing written                      | dead-lettered      |
//! | job names another bucket, another station's key,| nothing read, nothing deleted        | dead-lettered      |
//! | or was published by another station's user      |                                      | (`invalid_job`)    |
//! | job already completed, same body (redelivery)   | nothing new                          | acked              |
//! | job id completed before with another body       | conflict finding; bytes stay staged  | dead-lettered      |
//! | bytes verified (possibly flagged)               | archived + row committed             | acked              |
//! | bytes rejected (hash, size, empty, not MP4, ...) | quarantined + row committed          | dead-lettered      |
//! | staged object gone and job not completed        | attempt recorded                     | dead-lettered      |
//! | S3, Postgres or the network failing             | attempt recorded (if Postgres is up) | retried, then dead |
//!
//! "Acked" always means after the commit; a staged object is deleted only after the ack, and only
//! the version that was read, verified and archived (R2.1).

use crate::archive::{Destination, archive, key_for, location};
use crate::budget::Admission;
use crate::fetch::{FetchError, Spooled, fetch_with};
use crate::metrics::{Metrics, Outcome};
use crate::verify::{Verified, VerifyError, verify_growing};
use chrono::Utc;
use recvault_core::analysis::AnalysisPolicy;
use recvault_core::calendar::WorkCalendar;
use recvault_core::deadlines::{TimePolicy, recording_findings};
use recvault_core::probe::ProbePolicy;
use recvault_core::retention::{RetentionClass, decide};
use recvault_core::{FindingKind, Provenance, Rejection, Severity, UploadJob, check_claims};
use recvault_db::{CompletedJob, ContentTx, Db, NewQuarantine, NewRecording, Quarantined, Recorded};
use recvault_queue::{JobDelivery, Publisher};
use recvault_store::Store;
use std::fmt::Display;
use std::path::PathBuf;
use std::sync::Arc;
use tracing::{Instrument, error, info, info_span, warn};

/// Everything a job needs, shared by all in-flight jobs.
#[derive(Debug, Clone)]
pub struct JobContext {
    pub store: Store,
    pub db: Db,
    pub publisher: Publisher,
    pub metrics: Metrics,
    pub policy: ProbePolicy,
    pub spool_dir: PathBuf,
    pub worker_id: String,
    /// Whether the archive bucket enforces Object Lock (false only in a development set-up).
    pub object_lock: bool,
    pub max_retries: u32,
    /// Deliveries of one message the queue allows (`amqp.delivery_limit`): the last one is
    /// dead-lettered with a reason instead of being tried again.
    pub delivery_limit: u32,
    /// Room in the spool for the files in flight.
    pub budget: crate::budget::SpoolBudget,
    pub analysis: AnalysisPolicy,
    pub time: TimePolicy,
    pub calendar: Arc<WorkCalendar>,
}

/// How the stages ended for a job that reached them; `staged` is the version to delete.
enum Settled {
    Archived { outcome: Outcome, staged: Option<String> },
    Quarantined { rejection: Rejection, staged: Option<String> },
}

/// Why the stages did not finish.
enum Failure {
    /// The staged object does not exist (and the job never completed).
    StagedMissing,
    /// Another job with this id and another body committed first (a race of the two).
    IdConflict,
    /// The file is larger than the whole spool.
    TooLarge { size: u64, capacity: u64 },
    /// The file does not fit beside the ones in flight.
    NoRoomYet { size: u64, free: u64 },
    /// A fault of the infrastructure: worth retrying.
    Transient { code: &'static str, error: String },
}

fn transient(code: &'static str, e: impl Display) -> Failure {
    Failure::Transient { code, error: e.to_string() }
}

/// Processes one delivery and settles it (ack, retry or dead-letter). Never panics on bad input.
pub async fn handle(ctx: &JobContext, d: &JobDelivery) {
    let job = match UploadJob::parse(d.body()) {
        Ok(job) => job,
        Err(e) => {
            warn!(message_id = ?d.message_id(), code = e.code(), error = %e, "invalid job, dead-lettering");
            dead_letter(ctx, d, e.code(), &e.to_string()).await;
            ctx.metrics.outcome(Outcome::Invalid);
            return;
        }
    };
    // R2.1: a station speaks only for itself, about its own staged bytes. Checked before
    // anything is read, so a job that names another's bytes reads and deletes nothing.
    let scope = Provenance { staging_bucket: &ctx.store.config().staging_bucket, publisher: d.user_id() };
    if let Err(e) = job.authorize(&scope) {
        warn!(message_id = ?d.message_id(), code = e.code(), error = %e, "job refused, dead-lettering");
        dead_letter(ctx, d, e.code(), &e.to_string()).await;
        ctx.metrics.outcome(Outcome::Invalid);
        return;
    }
    let delivery = d.retries() + d.redeliveries() + 1;
    let span = info_span!("job", job_id = job.job_id(), device_id = job.device_id(), station_id = %job.wire().station_id, delivery);
    async {
        let timer = ctx.metrics.stage("total");
        ctx.metrics.in_flight.inc();
        let outcome = process(ctx, d, &job, delivery).await;
        ctx.metrics.in_flight.dec();
        ctx.metrics.outcome(outcome);
        if matches!(outcome, Outcome::Archived | Outcome::Flagged | Outcome::Quarantined | Outcome::DuplicateContent) {
            timer.observe_duration();
        } else {
            timer.stop_and_discard();
        }
    }
    .instrument(span)
    .await
}

async fn process(ctx: &JobContext, d: &JobDelivery, job: &UploadJob, delivery: u32) -> Outcome {
    match ctx.db.completed_job(job.job_id()).await {
        Ok(Some(prior)) if prior.is_same_job(job) => {
            info!(state = prior.state, key = prior.key, "job already completed, acknowledging the redelivery");
            if ack(d).await {
                delete_staged(ctx, job, prior.source_version_id.as_deref()).await;
            }
            return Outcome::DuplicateDelivery;
        }
        Ok(Some(prior)) => return id_conflict(ctx, d, job, Some(&prior)).await,
        Ok(None) => {}
        Err(e) => return retry_or_dead(ctx, d, None, e.code(), &e.to_string()).await,
    }
    // Delivered as often as the queue allows and never settled: every worker that took it died
    // (a crash loop). Kept for a person, with the reason, instead of another try.
    if d.redeliveries() >= ctx.delivery_limit {
        let msg = format!(
            "delivered {} times and never settled: workers died while processing it; the staged bytes are kept",
            d.redeliveries() + 1
        );
        error!(error = msg, "dead-lettering");
        dead_letter(ctx, d, "delivery_limit", &msg).await;
        return Outcome::DeliveryLimit;
    }
    let attempt = match ctx.db.start_attempt(job.job_id(), delivery, &ctx.worker_id).await {
        Ok(id) => id,
        Err(e) => return retry_or_dead(ctx, d, None, e.code(), &e.to_string()).await,
    };
    match stages(ctx, job, attempt).await {
        Ok(Settled::Archived { outcome, staged }) => {
            if ack(d).await {
                delete_staged(ctx, job, staged.as_deref()).await;
            }
            outcome
        }
        Ok(Settled::Quarantined { rejection, staged }) => {
            dead_letter(ctx, d, rejection.code(), &rejection.to_string()).await;
            delete_staged(ctx, job, staged.as_deref()).await;
            Outcome::Quarantined
        }
        Err(Failure::StagedMissing) => {
            let src = job.source();
            let msg = format!("staged object {}/{} does not exist", src.bucket, src.key);
            error!(error = msg, "dead-lettering");
            let _ = ctx.db.finish_attempt(attempt, "dead_lettered", Some("staged_object_missing"), Some(&msg)).await;
            dead_letter(ctx, d, "staged_object_missing", &msg).await;
            Outcome::DeadLettered
        }
        Err(Failure::IdConflict) => {
            let prior = ctx.db.completed_job(job.job_id()).await.ok().flatten();
            id_conflict(ctx, d, job, prior.as_ref()).await
        }
        Err(Failure::TooLarge { size, capacity }) => {
            let msg = format!(
                "the file has {size} bytes and this worker's spool holds {capacity}: raise worker.spool_max_bytes or the spool volume, then replay; the staged bytes are kept"
            );
            error!(error = msg, "dead-lettering");
            let _ = ctx.db.finish_attempt(attempt, "dead_lettered", Some("too_large_for_spool"), Some(&msg)).await;
            dead_letter(ctx, d, "too_large_for_spool", &msg).await;
            Outcome::TooLargeForSpool
        }
        Err(Failure::NoRoomYet { size, free }) => {
            let msg = format!("{size} bytes do not fit in the spool now ({free} free); waiting");
            warn!(msg);
            let _ = ctx.db.finish_attempt(attempt, "waiting_for_spool", Some("spool_full"), Some(&msg)).await;
            match ctx.publisher.publish_wait(d, &msg).await {
                Ok(()) => {
                    ack(d).await;
                    Outcome::WaitingForSpool
                }
                Err(e) => {
                    error!(error = %e, "could not schedule the wait; handing the job back to the queue");
                    let _ = d.requeue().await;
                    Outcome::Requeued
                }
            }
        }
        Err(Failure::Transient { code, error }) => retry_or_dead(ctx, d, Some(attempt), code, &error).await,
    }
}

/// R2.1: a job that reuses a completed job's id for another body is not a redelivery: its bytes
/// stay in staging, the conflict is a critical finding, and the job is dead-lettered.
async fn id_conflict(ctx: &JobContext, d: &JobDelivery, job: &UploadJob, prior: Option<&CompletedJob>) -> Outcome {
    let msg = format!(
        "job id {} already completed with another body (digest {}, key {}); this job names {} and was not processed",
        job.job_id(),
        prior.and_then(|p| p.digest).map_or_else(|| "unknown".into(), |h| h.to_hex()),
        prior.map_or("unknown", |p| p.key.as_str()),
        job.source().key,
    );
    if let Some(prior) = prior {
        match ctx.db.record_id_conflict(job, prior).await {
            Ok(true) => ctx.metrics.findings.with_label_values(&[FindingKind::JobIdConflict.code()]).inc(),
            Ok(false) => {}
            Err(e) => return retry_or_dead(ctx, d, None, e.code(), &e.to_string()).await,
        }
    }
    error!(error = msg, "job id conflict, dead-lettering; the staged bytes stay");
    dead_letter(ctx, d, "job_id_conflict", &msg).await;
    Outcome::IdConflict
}

/// Fetch, verify, archive (or quarantine), record.
async fn stages(ctx: &JobContext, job: &UploadJob, attempt: i64) -> Result<Settled, Failure> {
    let src = job.source();
    // Room first, from the larger of the job's size and the staged object's: a file that cannot
    // fit is not downloaded at all. The HEAD also pins the version that is then read.
    let head = match ctx.store.head(&src.bucket, &src.key).await {
        Ok(Some(h)) => h,
        Ok(None) => return Err(Failure::StagedMissing),
        Err(e) => return Err(transient(e.code(), e)),
    };
    let size = head.size.max(job.size_bytes());
    let _room = match ctx.budget.reserve(size) {
        Ok(Ok(room)) => room,
        Ok(Err(Admission::Never { capacity })) => return Err(Failure::TooLarge { size, capacity }),
        Ok(Err(Admission::NotNow { free })) => return Err(Failure::NoRoomYet { size, free }),
        Ok(Err(Admission::Admit)) => unreachable!("an admission is a reservation"),
        Err(e) => return Err(transient("spool", e)),
    };
    // The probe starts with the download and reads the spool file as it grows (issue 8).
    let fetched = {
        let _t = ctx.metrics.stage("fetch");
        let start_probe = |started| verify_growing(started, ctx.policy);
        fetch_with(&ctx.store, &src.bucket, &src.key, head.version_id.as_deref(), &ctx.spool_dir, start_probe).await
    };
    let (spooled, probing) = match fetched {
        Ok(s) => s,
        Err(FetchError::Store(e)) if e.is_not_found() => return Err(Failure::StagedMissing),
        Err(FetchError::Store(e)) => return Err(transient(e.code(), e)),
        Err(e) => return Err(transient("fetch", e)),
    };
    ctx.metrics.bytes.inc_by(spooled.hashes.size);
    info!(blake3 = %spooled.hashes.blake3, size = spooled.hashes.size, "fetched and hashed");

    // R2.1: the bytes must be the ones the station read off the recorder.
    if let Err(rejection) = check_claims(job.size_bytes(), job.claimed_hash(), &spooled.hashes) {
        return quarantine(ctx, job, &spooled, rejection, attempt).await;
    }
    let verified = {
        // Only what is left of the probe once the download has ended.
        let _t = ctx.metrics.stage("verify");
        probing.await.map_err(VerifyError::from).and_then(|v| v).map_err(|e| transient("media_probe", e))?
    };
    if let Err(rejection) = &verified.assessment.verdict {
        return quarantine(ctx, job, &spooled, rejection.clone(), attempt).await;
    }
    archive_and_record(ctx, job, &spooled, &verified, attempt).await
}

async fn archive_and_record(
    ctx: &JobContext,
    job: &UploadJob,
    spooled: &Spooled,
    v: &Verified,
    attempt: i64,
) -> Result<Settled, Failure> {
    let retention = decide(&job.activity()); // R19.1
    // One content hash, one archived version: jobs with these bytes take turns from here to the
    // commit (R2.1).
    let mut tx = ctx.db.lock_content(&spooled.hashes.blake3).await.map_err(|e| transient(e.code(), e))?;
    let archived = {
        let _t = ctx.metrics.stage("archive");
        let recorded = match tx.recorded_archive_version().await {
            Ok(v) => v,
            Err(e) => return Err(abandon(tx, transient(e.code(), e)).await),
        };
        match archive(&ctx.store, job, spooled, Destination::Archive, retention.class, ctx.object_lock, recorded).await
        {
            Ok(a) => a,
            Err(e) => return Err(abandon(tx, transient(e.code(), e)).await),
        }
    };
    count_placement(ctx, &archived);
    let a = &v.assessment;
    let duration =
        chrono::TimeDelta::milliseconds(i64::try_from(a.readable_duration_ns / 1_000_000).unwrap_or(i64::MAX));
    let timeline = job.timeline(v.report.movie.as_ref().and_then(|m| m.creation_time), duration);
    // R11.1 and R17.1 belong to the recording; R12.1, R13.1, R15.1 to its activity (in the commit).
    let mut findings = a.findings.clone();
    findings.extend(recording_findings(job, timeline.end, &ctx.calendar, &ctx.time));
    let recorded = {
        let _t = ctx.metrics.stage("record");
        let rec = NewRecording {
            job,
            hashes: spooled.hashes,
            archive: location(&archived),
            retention,
            report: &v.report,
            assessment: a,
            timeline,
            findings: &findings,
            analysis: &ctx.analysis,
            probe: &ctx.policy,
            source_version_id: spooled.version_id.clone(),
        };
        tx.record_archived(&rec, attempt).await.map_err(|e| transient(e.code(), e))?
    };
    let outcome = match recorded {
        Recorded::New { recording_id, analysis } => {
            for kind in findings.iter().map(|f| f.kind).chain(analysis.raised.iter().copied()) {
                ctx.metrics.findings.with_label_values(&[kind.code()]).inc();
            }
            for kind in &analysis.withdrawn {
                ctx.metrics.findings_withdrawn.with_label_values(&[kind.code()]).inc();
            }
            if let Some(end) = timeline.end {
                ctx.metrics.upload_delay_seconds.observe((Utc::now() - end).num_milliseconds().max(0) as f64 / 1000.0);
            }
            let flagged = findings.iter().any(|f| f.severity == Severity::Critical);
            info!(
                recording_id,
                key = archived.key,
                retention = %retention.class,
                findings = findings.len(),
                activity = analysis.activity_key.as_deref().unwrap_or("-"),
                activity_findings_raised = analysis.raised.len(),
                activity_findings_withdrawn = analysis.withdrawn.len(),
                flagged,
                "archived"
            );
            if flagged { Outcome::Flagged } else { Outcome::Archived }
        }
        Recorded::SameContent { recording_id, raised_from } => {
            info!(recording_id, raised_from = ?raised_from.map(RetentionClass::code), "same content already archived, job linked");
            Outcome::DuplicateContent
        }
        Recorded::AlreadyRecorded { .. } => Outcome::DuplicateDelivery,
        Recorded::IdConflict => return Err(Failure::IdConflict),
    };
    Ok(Settled::Archived { outcome, staged: spooled.version_id.clone() })
}

/// R2.1: bytes that are not a valid recording are kept, permanently, with the reason.
async fn quarantine(
    ctx: &JobContext,
    job: &UploadJob,
    spooled: &Spooled,
    rejection: Rejection,
    attempt: i64,
) -> Result<Settled, Failure> {
    warn!(code = rejection.code(), reason = %rejection, "quarantining");
    let mut tx = ctx.db.lock_content(&spooled.hashes.blake3).await.map_err(|e| transient(e.code(), e))?;
    let stored = {
        let _t = ctx.metrics.stage("archive");
        let key = key_for(&ctx.store, Destination::Quarantine, &spooled.hashes.blake3);
        let recorded = match tx.recorded_quarantine_version(&key).await {
            Ok(v) => v,
            Err(e) => return Err(abandon(tx, transient(e.code(), e)).await),
        };
        let class = RetentionClass::Permanent;
        match archive(&ctx.store, job, spooled, Destination::Quarantine, class, ctx.object_lock, recorded).await {
            Ok(a) => a,
            Err(e) => return Err(abandon(tx, transient(e.code(), e)).await),
        }
    };
    count_placement(ctx, &stored);
    let _t = ctx.metrics.stage("record");
    let q = NewQuarantine {
        job,
        hashes: spooled.hashes,
        location: location(&stored),
        rejection: &rejection,
        source_version_id: spooled.version_id.clone(),
    };
    match tx.record_quarantined(&q, attempt).await.map_err(|e| transient(e.code(), e))? {
        Quarantined::IdConflict => Err(Failure::IdConflict),
        Quarantined::New(_) | Quarantined::AlreadyRecorded => {
            Ok(Settled::Quarantined { rejection, staged: spooled.version_id.clone() })
        }
    }
}

/// A transient fault: into the delayed-retry queue, or dead-lettered once the retries are spent.
async fn retry_or_dead(
    ctx: &JobContext,
    d: &JobDelivery,
    attempt: Option<i64>,
    code: &'static str,
    error: &str,
) -> Outcome {
    let retries = d.retries();
    let (outcome, recorded) = if retries < ctx.max_retries {
        warn!(code, error, retry = retries + 1, of = ctx.max_retries, "transient fault, retrying later");
        match ctx.publisher.publish_retry(d, retries, &format!("{code}: {error}")).await {
            Ok(()) => {
                ack(d).await;
                (Outcome::Retried, "retry")
            }
            Err(e) => {
                error!(error = %e, "could not schedule the retry; handing the job back to the queue");
                let _ = d.requeue().await;
                (Outcome::Requeued, "requeued")
            }
        }
    } else {
        error!(code, error, retries, "transient faults outlasted every retry, dead-lettering");
        dead_letter(ctx, d, "retries_exhausted", &format!("{code}: {error}")).await;
        (Outcome::DeadLettered, "dead_lettered")
    };
    if let Some(id) = attempt {
        // best effort: Postgres may be the thing that is down
        if let Err(e) = ctx.db.finish_attempt(id, recorded, Some(code), Some(error)).await {
            warn!(error = %e, "could not record the attempt outcome");
        }
    }
    outcome
}

/// Publishes to the dead-letter exchange (confirmed), then acknowledges. If the publish fails the
/// message goes back to the queue instead: it is never dropped.
async fn dead_letter(ctx: &JobContext, d: &JobDelivery, code: &str, detail: &str) {
    match ctx.publisher.publish_dead(d, code, detail).await {
        Ok(()) => {
            ack(d).await;
        }
        Err(e) => {
            error!(error = %e, "could not dead-letter; handing the job back to the queue");
            let _ = d.requeue().await;
        }
    }
}

async fn ack(d: &JobDelivery) -> bool {
    match d.ack().await {
        Ok(()) => true,
        Err(e) => {
            // The broker will redeliver; the job is already committed, so that is a no-op.
            warn!(error = %e, "ack failed");
            false
        }
    }
}

/// Rolls back a content transaction (releasing its lock) and passes the failure on.
async fn abandon(tx: ContentTx, failure: Failure) -> Failure {
    tx.rollback().await;
    failure
}

fn count_placement(ctx: &JobContext, a: &recvault_store::ArchivedObject) {
    ctx.metrics.archive_writes.with_label_values(&[a.placement.code()]).inc();
    if a.mismatches > 0 {
        ctx.metrics.archive_mismatches.inc_by(u64::from(a.mismatches));
    }
}

/// Deletes exactly the staged version that was verified and archived (R2.1): bytes staged again
/// at the key since are another version and stay. Without a version (an unversioned staging
/// bucket, development only) nothing is deleted; `recvault staging sweep` removes the copy once
/// it has hashed it.
async fn delete_staged(ctx: &JobContext, job: &UploadJob, version: Option<&str>) {
    let src = job.source();
    let Some(version) = version else {
        warn!(
            bucket = src.bucket,
            key = src.key,
            "the staging bucket keeps no versions: the staged copy is left for recvault staging sweep"
        );
        return;
    };
    if let Err(e) = ctx.store.delete_staged_version(&src.bucket, &src.key, version).await {
        warn!(error = %e, bucket = src.bucket, key = src.key, version, "could not delete the staged version; it is archived and recvault staging sweep removes it later");
    }
}
