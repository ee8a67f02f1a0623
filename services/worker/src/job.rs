//! One delivery, from message to settlement.
//!
//! | what happened                                   | result                               | message            |
//! |-------------------------------------------------|--------------------------------------|--------------------|
//! | job malformed, invalid or of unknown version    | nothing written                      | dead-lettered      |
//! | job already completed (redelivery)              | nothing new                          | acked              |
//! | bytes verified (possibly flagged)               | archived + row committed             | acked              |
//! | bytes rejected (hash, size, empty, not MP4, ...) | quarantined + row committed          | dead-lettered      |
//! | staged object gone and job not completed        | attempt recorded                     | dead-lettered      |
//! | S3, Postgres or the network failing             | attempt recorded (if Postgres is up) | retried, then dead |
//!
//! "Acked" always means after the commit; a staged object is deleted only after the ack.

use crate::archive::{Destination, archive, location};
use crate::fetch::{FetchError, Spooled, fetch};
use crate::metrics::{Metrics, Outcome};
use crate::verify::{Verified, verify};
use chrono::Utc;
use recvault_core::analysis::AnalysisPolicy;
use recvault_core::calendar::WorkCalendar;
use recvault_core::deadlines::{TimePolicy, recording_findings};
use recvault_core::probe::ProbePolicy;
use recvault_core::retention::{RetentionClass, decide};
use recvault_core::{Rejection, Severity, UploadJob, check_claims};
use recvault_db::{Db, NewQuarantine, NewRecording, Recorded};
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
    pub analysis: AnalysisPolicy,
    pub time: TimePolicy,
    pub calendar: Arc<WorkCalendar>,
}

/// How the stages ended for a job that reached them.
enum Settled {
    Archived { outcome: Outcome },
    Quarantined { rejection: Rejection },
}

/// Why the stages did not finish.
enum Failure {
    /// The staged object does not exist (and the job never completed).
    StagedMissing,
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
    match ctx.db.job_outcome(job.job_id()).await {
        Ok(Some((state, key))) => {
            info!(state, key, "job already completed, acknowledging the redelivery");
            if ack(d).await {
                delete_staged(ctx, job).await;
            }
            return Outcome::DuplicateDelivery;
        }
        Ok(None) => {}
        Err(e) => return retry_or_dead(ctx, d, None, e.code(), &e.to_string()).await,
    }
    let attempt = match ctx.db.start_attempt(job.job_id(), delivery, &ctx.worker_id).await {
        Ok(id) => id,
        Err(e) => return retry_or_dead(ctx, d, None, e.code(), &e.to_string()).await,
    };
    match stages(ctx, job, attempt).await {
        Ok(Settled::Archived { outcome }) => {
            if ack(d).await {
                delete_staged(ctx, job).await;
            }
            outcome
        }
        Ok(Settled::Quarantined { rejection }) => {
            dead_letter(ctx, d, rejection.code(), &rejection.to_string()).await;
            delete_staged(ctx, job).await;
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
        Err(Failure::Transient { code, error }) => retry_or_dead(ctx, d, Some(attempt), code, &error).await,
    }
}

/// Fetch, verify, archive (or quarantine), record.
async fn stages(ctx: &JobContext, job: &UploadJob, attempt: i64) -> Result<Settled, Failure> {
    let src = job.source();
    let fetched = {
        let _t = ctx.metrics.stage("fetch");
        fetch(&ctx.store, &src.bucket, &src.key, &ctx.spool_dir).await
    };
    let spooled = match fetched {
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
        let _t = ctx.metrics.stage("verify");
        verify(spooled.file.path().to_path_buf(), ctx.policy).await.map_err(|e| transient("media_probe", e))?
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
    let archived = {
        let _t = ctx.metrics.stage("archive");
        archive(&ctx.store, job, spooled, Destination::Archive, retention.class, ctx.object_lock)
            .await
            .map_err(|e| transient(e.code(), e))?
    };
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
        };
        ctx.db.record_archived(&rec, attempt).await.map_err(|e| transient(e.code(), e))?
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
    };
    Ok(Settled::Archived { outcome })
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
    let stored = {
        let _t = ctx.metrics.stage("archive");
        archive(&ctx.store, job, spooled, Destination::Quarantine, RetentionClass::Permanent, ctx.object_lock)
            .await
            .map_err(|e| transient(e.code(), e))?
    };
    let _t = ctx.metrics.stage("record");
    let q = NewQuarantine { job, hashes: spooled.hashes, location: location(&stored), rejection: &rejection };
    ctx.db.record_quarantined(&q, attempt).await.map_err(|e| transient(e.code(), e))?;
    Ok(Settled::Quarantined { rejection })
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

async fn delete_staged(ctx: &JobContext, job: &UploadJob) {
    let src = job.source();
    if let Err(e) = ctx.store.delete_staged(&src.bucket, &src.key).await {
        warn!(error = %e, bucket = src.bucket, key = src.key, "could not delete the staged object; it is archived and can be removed later");
    }
}
