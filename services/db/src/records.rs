//! What the worker writes: attempts, archived recordings and quarantined bytes.

use crate::analysis::{AnalysisOutcome, analyse, lock_device};
use crate::{Db, DbError};
use chrono::{DateTime, Utc};
use recvault_core::Finding;
use recvault_core::analysis::AnalysisPolicy;
use recvault_core::job::Timeline;
use recvault_core::probe::{Assessment, ProbePolicy, ProbeReport, TrackKind};
use recvault_core::retention::{RetentionClass, RetentionDecision};
use recvault_core::{ContentHashes, Rejection, Severity, UploadJob};
use serde_json::json;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};

/// Where the archive copy is and how it is locked.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveLocation {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

/// An archived recording and everything found about it.
#[derive(Debug, Clone)]
pub struct NewRecording<'a> {
    pub job: &'a UploadJob,
    pub hashes: ContentHashes,
    pub archive: ArchiveLocation,
    pub retention: RetentionDecision,
    pub report: &'a ProbeReport,
    pub assessment: &'a Assessment,
    /// Where the recording sits in time (R11.1: recorder clock and corrected).
    pub timeline: Timeline,
    /// Findings about this recording alone: the assessment's, and the rules on time (R11.1, R17.1).
    pub findings: &'a [Finding],
    /// Thresholds of the activity analysis run in the same transaction.
    pub analysis: &'a AnalysisPolicy,
    pub probe: &'a ProbePolicy,
}

/// What [`Db::record_archived`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new recording, and what the analysis of its activity changed.
    New { recording_id: i64, analysis: AnalysisOutcome },
    /// The same bytes were already archived by another job; this job is linked to them, and the
    /// retention class raised if this job asked for more.
    SameContent { recording_id: i64, raised_from: Option<RetentionClass> },
    /// This job was already recorded (a redelivery after commit); nothing changed.
    AlreadyRecorded { recording_id: Option<i64> },
}

/// Bytes sent to quarantine.
#[derive(Debug, Clone)]
pub struct NewQuarantine<'a> {
    pub job: &'a UploadJob,
    pub hashes: ContentHashes,
    pub location: ArchiveLocation,
    pub rejection: &'a Rejection,
}

fn kind_code(k: TrackKind) -> &'static str {
    match k {
        TrackKind::Video => "video",
        TrackKind::Audio => "audio",
        TrackKind::Other => "other",
    }
}

fn ms(ns: u64) -> i64 {
    i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX)
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Db {
    /// Opens an attempt row; returns its id. `delivery` counts deliveries of the message.
    pub async fn start_attempt(&self, job_id: &str, delivery: u32, worker_id: &str) -> Result<i64, DbError> {
        let id: i64 = sqlx::query_scalar(
            "insert into job_attempts (job_id, delivery, worker_id) values ($1, $2, $3) returning id",
        )
        .bind(job_id)
        .bind(i32::try_from(delivery).unwrap_or(i32::MAX))
        .bind(worker_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Closes an attempt row outside a result transaction (retries, dead letters).
    pub async fn finish_attempt(
        &self,
        attempt_id: i64,
        outcome: &str,
        error_code: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), DbError> {
        finish_attempt(&self.pool, attempt_id, outcome, error_code, error).await
    }

    /// The recorded outcome of a job, if it completed before: `(state, archive or quarantine key)`.
    pub async fn job_outcome(&self, job_id: &str) -> Result<Option<(String, String)>, DbError> {
        let row = sqlx::query(
            "select j.state, coalesce(r.archive_key, q.key) as key from ingest_jobs j \
             left join recordings r on r.id = j.recording_id left join quarantined q on q.id = j.quarantine_id \
             where j.job_id = $1",
        )
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (r.get("state"), r.get("key"))))
    }

    /// Writes an archived recording, its tracks, probe report and findings, the job row and the
    /// attempt outcome in one transaction.
    pub async fn record_archived(&self, rec: &NewRecording<'_>, attempt_id: i64) -> Result<Recorded, DbError> {
        let mut tx = self.pool.begin().await?;
        let job = rec.job;
        if let Some(id) = existing_job(&mut tx, job.job_id()).await? {
            finish_attempt(&mut *tx, attempt_id, "already_recorded", None, None).await?;
            tx.commit().await?;
            return Ok(Recorded::AlreadyRecorded { recording_id: id });
        }
        // Neighbouring segments of one device are analysed one transaction at a time.
        lock_device(&mut tx, job.device_id()).await?;
        let a = rec.assessment;
        let w = job.wire();
        let activity = job.activity();
        let timeline = rec.timeline;
        let flagged = rec.findings.iter().any(|f| f.severity == Severity::Critical);
        let inserted: Option<i64> = sqlx::query_scalar(
            "insert into recordings (blake3, sha256, size_bytes, archive_bucket, archive_key, archive_version_id, status, \
               retention_class, retention_basis, lock_mode, lock_until, legal_hold, job_id, station_id, unit, squad, \
               device_id, officer_ids, original_name, activity_id, event_type, party, location, case_id, disputed, \
               emergency, station_time, device_time, clock_offset_ms, recorded_start_device, recorded_start, \
               recorded_end, duration_ms, declared_duration_ms, upload_extension_approved, continues_from_device) \
             values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26, \
               $27,$28,$29,$30,$31,$32,$33,$34,$35,$36) \
             on conflict (blake3) do nothing returning id",
        )
        .bind(rec.hashes.blake3.as_bytes().as_slice())
        .bind(rec.hashes.sha256.as_bytes().as_slice())
        .bind(i64_of(rec.hashes.size))
        .bind(&rec.archive.bucket)
        .bind(&rec.archive.key)
        .bind(&rec.archive.version_id)
        .bind(if flagged { "flagged" } else { "ok" })
        .bind(rec.retention.class.code())
        .bind(rec.retention.basis)
        .bind(&rec.archive.lock_mode)
        .bind(rec.archive.lock_until)
        .bind(rec.archive.legal_hold)
        .bind(job.job_id())
        .bind(&w.station_id)
        .bind(&w.unit)
        .bind(&w.squad)
        .bind(&w.device_id)
        .bind(&w.officer_ids)
        .bind(&w.original_name)
        .bind(&activity.activity_id)
        .bind(activity.event_type.map(|e| e.code()))
        .bind(&activity.party)
        .bind(&activity.location)
        .bind(&activity.case_id)
        .bind(activity.disputed)
        .bind(activity.emergency)
        .bind(w.station_time.to_utc())
        .bind(w.device_time.to_utc())
        .bind(job.clock_offset().num_milliseconds())
        .bind(timeline.start_device)
        .bind(timeline.start)
        .bind(timeline.end)
        .bind(ms(a.readable_duration_ns))
        .bind(a.declared_duration_ns.map(ms))
        .bind(activity.upload_extension_approved)
        .bind(&activity.continues_from_device)
        .fetch_optional(&mut *tx)
        .await?;

        let outcome = match inserted {
            Some(recording_id) => {
                insert_details(&mut tx, recording_id, rec).await?;
                let analysis = analyse(&mut tx, recording_id, rec.analysis, rec.probe).await?;
                Recorded::New { recording_id, analysis }
            }
            None => {
                let row = sqlx::query("select id, retention_class from recordings where blake3 = $1 for update")
                    .bind(rec.hashes.blake3.as_bytes().as_slice())
                    .fetch_one(&mut *tx)
                    .await?;
                let recording_id: i64 = row.get("id");
                let current_code: String = row.get("retention_class");
                let current = RetentionClass::from_code(&current_code)
                    .ok_or_else(|| DbError::Corrupt(format!("retention_class {current_code:?}")))?;
                let raised = current.raise_to(rec.retention.class);
                let raised_from = (raised != current).then_some(current);
                if raised_from.is_some() {
                    sqlx::query("update recordings set retention_class = $2, retention_basis = $3, legal_hold = legal_hold or $4 where id = $1")
                        .bind(recording_id)
                        .bind(raised.code())
                        .bind(rec.retention.basis)
                        .bind(rec.archive.legal_hold)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("insert into retention_events (recording_id, from_class, to_class, basis, job_id) values ($1,$2,$3,$4,$5)")
                        .bind(recording_id)
                        .bind(current.code())
                        .bind(raised.code())
                        .bind(rec.retention.basis)
                        .bind(job.job_id())
                        .execute(&mut *tx)
                        .await?;
                }
                Recorded::SameContent { recording_id, raised_from }
            }
        };
        let (state, recording_id) = match &outcome {
            Recorded::New { recording_id, .. } => ("archived", *recording_id),
            Recorded::SameContent { recording_id, .. } => ("duplicate_content", *recording_id),
            Recorded::AlreadyRecorded { .. } => unreachable!("handled above"),
        };
        sqlx::query(
            "insert into ingest_jobs (job_id, station_id, device_id, state, recording_id, payload) values ($1,$2,$3,$4,$5,$6)",
        )
        .bind(job.job_id())
        .bind(&w.station_id)
        .bind(&w.device_id)
        .bind(state)
        .bind(recording_id)
        .bind(Json(w))
        .execute(&mut *tx)
        .await?;
        finish_attempt(&mut *tx, attempt_id, state, None, None).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Writes a quarantine row, the job row and the attempt outcome in one transaction. A job
    /// already recorded is left as it is; returns the quarantine row id.
    pub async fn record_quarantined(&self, q: &NewQuarantine<'_>, attempt_id: i64) -> Result<Option<i64>, DbError> {
        let mut tx = self.pool.begin().await?;
        let job = q.job;
        let w = job.wire();
        if existing_job(&mut tx, job.job_id()).await?.is_some() {
            finish_attempt(&mut *tx, attempt_id, "already_recorded", None, None).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar(
            "insert into quarantined (job_id, blake3, sha256, size_bytes, bucket, key, version_id, reason_code, reason, \
               detail, station_id, device_id, job) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) returning id",
        )
        .bind(job.job_id())
        .bind(q.hashes.blake3.as_bytes().as_slice())
        .bind(q.hashes.sha256.as_bytes().as_slice())
        .bind(i64_of(q.hashes.size))
        .bind(&q.location.bucket)
        .bind(&q.location.key)
        .bind(&q.location.version_id)
        .bind(q.rejection.code())
        .bind(q.rejection.to_string())
        .bind(Json(q.rejection))
        .bind(&w.station_id)
        .bind(&w.device_id)
        .bind(Json(w))
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "insert into ingest_jobs (job_id, station_id, device_id, state, quarantine_id, payload) values ($1,$2,$3,'quarantined',$4,$5)",
        )
        .bind(job.job_id())
        .bind(&w.station_id)
        .bind(&w.device_id)
        .bind(id)
        .bind(Json(w))
        .execute(&mut *tx)
        .await?;
        finish_attempt(&mut *tx, attempt_id, "quarantined", Some(q.rejection.code()), Some(&q.rejection.to_string()))
            .await?;
        tx.commit().await?;
        Ok(Some(id))
    }
}

/// The recording a completed job points at, if the job completed before. Locks the job row so a
/// concurrent attempt at the same job waits for this transaction.
async fn existing_job(tx: &mut Transaction<'_, Postgres>, job_id: &str) -> Result<Option<Option<i64>>, DbError> {
    // Serialise concurrent attempts at one job id for the rest of the transaction.
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))").bind(job_id).execute(&mut **tx).await?;
    let row: Option<Option<i64>> = sqlx::query_scalar("select recording_id from ingest_jobs where job_id = $1")
        .bind(job_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row)
}

async fn insert_details(
    tx: &mut Transaction<'_, Postgres>,
    recording_id: i64,
    rec: &NewRecording<'_>,
) -> Result<(), DbError> {
    for (i, t) in rec.report.tracks.iter().enumerate() {
        let gaps: Vec<_> = t.gaps.iter().map(|g| json!({"at_ms": ms(g.at_ns), "length_ms": ms(g.length_ns)})).collect();
        sqlx::query(
            "insert into recording_tracks (recording_id, track_index, kind, codec, profile, width, height, frame_rate, \
               sample_rate, channels, packets, bytes, first_pts_ms, end_ms, gaps) \
             values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)",
        )
        .bind(recording_id)
        .bind(i32::try_from(i).unwrap_or(i32::MAX))
        .bind(kind_code(t.kind))
        .bind(&t.codec)
        .bind(&t.profile)
        .bind(t.width.and_then(|v| i32::try_from(v).ok()))
        .bind(t.height.and_then(|v| i32::try_from(v).ok()))
        .bind(t.frame_rate)
        .bind(t.sample_rate.and_then(|v| i32::try_from(v).ok()))
        .bind(t.channels.and_then(|v| i32::try_from(v).ok()))
        .bind(i64_of(t.packets))
        .bind(i64_of(t.bytes))
        .bind(t.first_pts_ns.map(ms))
        .bind(t.end_ns.map(ms))
        .bind(Json(gaps))
        .execute(&mut **tx)
        .await?;
    }
    let c = &rec.report.container;
    let moov_first = match (c.moov_offset, c.first_mdat_offset) {
        (Some(m), Some(d)) => Some(m < d),
        _ => None,
    };
    sqlx::query(
        "insert into probe_reports (recording_id, major_brand, moov_first, fragments, creation_time, report) values ($1,$2,$3,$4,$5,$6)",
    )
    .bind(recording_id)
    .bind(&c.major_brand)
    .bind(moov_first)
    .bind(i64_of(c.fragments))
    .bind(rec.report.movie.as_ref().and_then(|m| m.creation_time))
    .bind(Json(rec.report))
    .execute(&mut **tx)
    .await?;
    for f in rec.findings {
        sqlx::query(
            "insert into findings (recording_id, kind, requirement, severity, summary, evidence) values ($1,$2,$3,$4,$5,$6)",
        )
        .bind(recording_id)
        .bind(f.kind.code())
        .bind(f.requirement())
        .bind(f.severity.code())
        .bind(&f.summary)
        .bind(Json(&f.evidence))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn finish_attempt<'e, E>(
    executor: E,
    attempt_id: i64,
    outcome: &str,
    error_code: Option<&str>,
    error: Option<&str>,
) -> Result<(), DbError>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    sqlx::query("update job_attempts set finished_at = now(), outcome = $2, error_code = $3, error = $4 where id = $1")
        .bind(attempt_id)
        .bind(outcome)
        .bind(error_code)
        .bind(error)
        .execute(executor)
        .await?;
    Ok(())
}
