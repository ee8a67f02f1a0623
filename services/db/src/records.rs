//! What the worker writes: attempts, archived recordings, quarantined bytes, job id conflicts.
//!
//! A result is written inside a [`ContentTx`]: one transaction that holds a lock on the content
//! hash from before the archive write until the commit, so two jobs with the same bytes take
//! turns and one content hash has one archived version (R2.1). A job's identity is its id and the
//! digest of its body: the same body again is a redelivery, another body under a used id is a
//! conflict, never a redelivery.

use crate::analysis::{AnalysisOutcome, analyse, lock_device};
use crate::{Db, DbError};
use chrono::{DateTime, Utc};
use recvault_core::analysis::AnalysisPolicy;
use recvault_core::job::Timeline;
use recvault_core::probe::{Assessment, ProbePolicy, ProbeReport, TrackKind};
use recvault_core::retention::{RetentionClass, RetentionDecision};
use recvault_core::{Blake3Hash, ContentHashes, Finding, FindingKind, Rejection, Severity, UploadJob};
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
    /// The staged version that was read and verified (recorded so that exactly it is deleted).
    pub source_version_id: Option<String>,
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
    /// Another job with this id and another body was recorded first; nothing changed.
    IdConflict,
}

/// A job that completed before, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedJob {
    pub state: String,
    /// Where its bytes are: the archive or quarantine key.
    pub key: String,
    /// BLAKE3 of its canonical body (`None` for jobs recorded before digests were kept).
    pub digest: Option<Blake3Hash>,
    /// Its body as recorded.
    pub payload: serde_json::Value,
    /// The staged version that was verified, archived, and may be deleted.
    pub source_version_id: Option<String>,
}

impl CompletedJob {
    /// R2.1: whether `job` is this job again (a redelivery) rather than another job under its id.
    pub fn is_same_job(&self, job: &UploadJob) -> bool {
        match &self.digest {
            Some(d) => *d == job.digest(),
            // Recorded before digests were kept: the body as recorded, compared as JSON values.
            None => serde_json::to_value(job.wire()).is_ok_and(|v| v == self.payload),
        }
    }
}

/// A critical finding about a job or an object (not about what one recording shows): raised once
/// per fingerprint while it stays live.
#[derive(Debug, Clone)]
pub(crate) struct SystemFinding {
    pub recording_id: Option<i64>,
    pub kind: FindingKind,
    pub summary: String,
    pub evidence: serde_json::Value,
    /// What it is about (job id, bucket and key, ...), for findings without a recording.
    pub subject: serde_json::Value,
    pub fingerprint: String,
}

/// Inserts a [`SystemFinding`] unless a live one has its fingerprint; true if inserted.
pub(crate) async fn insert_system_finding<'e, E>(executor: E, f: &SystemFinding) -> Result<bool, DbError>
where
    E: sqlx::Executor<'e, Database = Postgres>,
{
    let done = sqlx::query(
        "insert into findings (recording_id, kind, requirement, severity, summary, evidence, subject, fingerprint) \
         values ($1,$2,$3,'critical',$4,$5,$6,$7) \
         on conflict (fingerprint) where fingerprint is not null and withdrawn_at is null do nothing",
    )
    .bind(f.recording_id)
    .bind(f.kind.code())
    .bind(f.kind.requirement())
    .bind(&f.summary)
    .bind(Json(&f.evidence))
    .bind(Json(&f.subject))
    .bind(&f.fingerprint)
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A transaction holding the lock on one content hash, from before the archive write until the
/// commit. Dropping it rolls back and releases the lock.
#[derive(Debug)]
pub struct ContentTx {
    tx: Transaction<'static, Postgres>,
    content: Blake3Hash,
}

/// Bytes sent to quarantine.
#[derive(Debug, Clone)]
pub struct NewQuarantine<'a> {
    pub job: &'a UploadJob,
    pub hashes: ContentHashes,
    pub location: ArchiveLocation,
    pub rejection: &'a Rejection,
    /// The staged version that was read and verified.
    pub source_version_id: Option<String>,
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
        Ok(self.completed_job(job_id).await?.map(|j| (j.state, j.key)))
    }

    /// A job that completed before, with what tells a redelivery from a reuse of its id.
    pub async fn completed_job(&self, job_id: &str) -> Result<Option<CompletedJob>, DbError> {
        let row = sqlx::query(
            "select j.state, coalesce(r.archive_key, q.key) as key, j.job_digest, j.payload, j.source_version_id \
             from ingest_jobs j left join recordings r on r.id = j.recording_id \
             left join quarantined q on q.id = j.quarantine_id where j.job_id = $1",
        )
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let digest: Option<Vec<u8>> = r.get("job_digest");
            let Json(payload): Json<serde_json::Value> = r.get("payload");
            Ok(CompletedJob {
                state: r.get("state"),
                key: r.get("key"),
                digest: digest.map(|d| blake3_of_row(&d)).transpose()?,
                payload,
                source_version_id: r.get("source_version_id"),
            })
        })
        .transpose()
    }

    /// R2.1: a job that reused a completed job's id with another body. Its bytes stay in staging
    /// (the worker dead-letters it as `job_id_conflict`); the conflict becomes a critical finding,
    /// once per distinct body. Returns true if the finding is new.
    pub async fn record_id_conflict(&self, job: &UploadJob, prior: &CompletedJob) -> Result<bool, DbError> {
        let digest = job.digest().to_hex();
        let w = job.wire();
        let prior_recording: Option<i64> = sqlx::query_scalar("select recording_id from ingest_jobs where job_id = $1")
            .bind(job.job_id())
            .fetch_optional(&self.pool)
            .await?
            .flatten();
        let summary = format!(
            "job id {} was reused for other bytes or facts (staged at {}); the new job was not processed and its bytes stay in staging",
            job.job_id(),
            w.source.key
        );
        let subject = json!({
            "job_id": job.job_id(),
            "station_id": w.station_id,
            "digest": digest,
            "first_digest": prior.digest.map(|d| d.to_hex()),
            "first_key": prior.key,
        });
        let finding = SystemFinding {
            recording_id: prior_recording,
            kind: FindingKind::JobIdConflict,
            summary,
            evidence: json!({ "job": w }),
            subject,
            fingerprint: format!("job_id_conflict:{}:{digest}", job.job_id()),
        };
        insert_system_finding(&self.pool, &finding).await
    }

    /// Begins the transaction that records one content's result, holding the content's lock.
    pub async fn lock_content(&self, content: &Blake3Hash) -> Result<ContentTx, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("select pg_advisory_xact_lock(hashtextextended('content:' || $1, 0))")
            .bind(content.to_hex())
            .execute(&mut *tx)
            .await?;
        Ok(ContentTx { tx, content: *content })
    }
}

fn blake3_of_row(bytes: &[u8]) -> Result<Blake3Hash, DbError> {
    <[u8; 32]>::try_from(bytes)
        .map(Blake3Hash)
        .map_err(|_| DbError::Corrupt(format!("digest of {} bytes", bytes.len())))
}

impl ContentTx {
    /// The archive version recorded for this content, if it is archived and recorded already
    /// (`Some(None)`: recorded without a version id).
    pub async fn recorded_archive_version(&mut self) -> Result<Option<Option<String>>, DbError> {
        Ok(sqlx::query_scalar("select archive_version_id from recordings where blake3 = $1")
            .bind(self.content.as_bytes().as_slice())
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// The quarantine version recorded for this content at `key`, if any.
    pub async fn recorded_quarantine_version(&mut self, key: &str) -> Result<Option<Option<String>>, DbError> {
        Ok(sqlx::query_scalar("select version_id from quarantined where blake3 = $1 and key = $2 order by id limit 1")
            .bind(self.content.as_bytes().as_slice())
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await?)
    }

    /// Gives up: rolls back and releases the lock.
    pub async fn rollback(self) {
        let _ = self.tx.rollback().await;
    }

    /// Writes an archived recording, its tracks, probe report and findings, the job row and the
    /// attempt outcome, and commits (releasing the content lock).
    pub async fn record_archived(self, rec: &NewRecording<'_>, attempt_id: i64) -> Result<Recorded, DbError> {
        let mut tx = self.tx;
        let job = rec.job;
        set_actor(&mut tx, job).await?;
        match existing_job(&mut tx, job).await? {
            Some(Existing::Same(id)) => {
                finish_attempt(&mut *tx, attempt_id, "already_recorded", None, None).await?;
                tx.commit().await?;
                return Ok(Recorded::AlreadyRecorded { recording_id: id });
            }
            Some(Existing::Conflict) => {
                finish_attempt(&mut *tx, attempt_id, "dead_lettered", Some("job_id_conflict"), None).await?;
                tx.commit().await?;
                return Ok(Recorded::IdConflict);
            }
            None => {}
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
                crate::recoveries::on_archived(&mut tx, recording_id, job.device_id(), rec.report, rec.findings)
                    .await?;
                let analysis = analyse(&mut tx, recording_id, rec.analysis, rec.probe).await?;
                Recorded::New { recording_id, analysis }
            }
            None => {
                let recording_id: i64 = sqlx::query_scalar("select id from recordings where blake3 = $1")
                    .bind(rec.hashes.blake3.as_bytes().as_slice())
                    .fetch_one(&mut *tx)
                    .await?;
                let current = raise_retention(&mut tx, recording_id, rec, job).await?;
                let raised = current.raise_to(rec.retention.class);
                let raised_from = (raised != current).then_some(current);
                if let (Some(mode), Some(until)) = (&rec.archive.lock_mode, rec.archive.lock_until) {
                    sqlx::query("select recvault_raise_lock($1, $2, $3, $4)")
                        .bind(recording_id)
                        .bind(mode)
                        .bind(until)
                        .bind(rec.archive.legal_hold)
                        .execute(&mut *tx)
                        .await?;
                }
                Recorded::SameContent { recording_id, raised_from }
            }
        };
        let (state, recording_id) = match &outcome {
            Recorded::New { recording_id, .. } => ("archived", *recording_id),
            Recorded::SameContent { recording_id, .. } => ("duplicate_content", *recording_id),
            Recorded::AlreadyRecorded { .. } | Recorded::IdConflict => unreachable!("handled above"),
        };
        sqlx::query(
            "insert into ingest_jobs (job_id, station_id, device_id, state, recording_id, payload, job_digest, source_version_id) \
             values ($1,$2,$3,$4,$5,$6,$7,$8)",
        )
        .bind(job.job_id())
        .bind(&w.station_id)
        .bind(&w.device_id)
        .bind(state)
        .bind(recording_id)
        .bind(Json(w))
        .bind(job.digest().as_bytes().as_slice())
        .bind(&rec.source_version_id)
        .execute(&mut *tx)
        .await?;
        finish_attempt(&mut *tx, attempt_id, state, None, None).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Writes a quarantine row, the job row and the attempt outcome, and commits. A job already
    /// recorded is left as it is; returns the quarantine row id.
    pub async fn record_quarantined(self, q: &NewQuarantine<'_>, attempt_id: i64) -> Result<Quarantined, DbError> {
        let mut tx = self.tx;
        let job = q.job;
        let w = job.wire();
        set_actor(&mut tx, job).await?;
        match existing_job(&mut tx, job).await? {
            Some(Existing::Same(_)) => {
                finish_attempt(&mut *tx, attempt_id, "already_recorded", None, None).await?;
                tx.commit().await?;
                return Ok(Quarantined::AlreadyRecorded);
            }
            Some(Existing::Conflict) => {
                finish_attempt(&mut *tx, attempt_id, "dead_lettered", Some("job_id_conflict"), None).await?;
                tx.commit().await?;
                return Ok(Quarantined::IdConflict);
            }
            None => {}
        }
        let id: i64 = sqlx::query_scalar(
            "insert into quarantined (job_id, blake3, sha256, size_bytes, bucket, key, version_id, reason_code, reason, \
               detail, station_id, device_id, job, source_version_id) \
             values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14) returning id",
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
        .bind(&q.source_version_id)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "insert into ingest_jobs (job_id, station_id, device_id, state, quarantine_id, payload, job_digest, source_version_id) \
             values ($1,$2,$3,'quarantined',$4,$5,$6,$7)",
        )
        .bind(job.job_id())
        .bind(&w.station_id)
        .bind(&w.device_id)
        .bind(id)
        .bind(Json(w))
        .bind(job.digest().as_bytes().as_slice())
        .bind(&q.source_version_id)
        .execute(&mut *tx)
        .await?;
        finish_attempt(&mut *tx, attempt_id, "quarantined", Some(q.rejection.code()), Some(&q.rejection.to_string()))
            .await?;
        tx.commit().await?;
        Ok(Quarantined::New(id))
    }
}

/// What [`ContentTx::record_quarantined`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quarantined {
    New(i64),
    AlreadyRecorded,
    IdConflict,
}

/// A job id that completed before: the same job again, or another job under its id.
enum Existing {
    Same(Option<i64>),
    Conflict,
}

/// Whether this job's id completed before, and as this job or as another. Locks the job id so a
/// concurrent attempt at the same id waits for this transaction.
async fn existing_job(tx: &mut Transaction<'_, Postgres>, job: &UploadJob) -> Result<Option<Existing>, DbError> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('job:' || $1, 0))")
        .bind(job.job_id())
        .execute(&mut **tx)
        .await?;
    let row = sqlx::query("select recording_id, job_digest, payload from ingest_jobs where job_id = $1")
        .bind(job.job_id())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let digest: Option<Vec<u8>> = row.get("job_digest");
    let Json(payload): Json<serde_json::Value> = row.get("payload");
    let prior = CompletedJob {
        state: String::new(),
        key: String::new(),
        digest: digest.map(|d| blake3_of_row(&d)).transpose()?,
        payload,
        source_version_id: None,
    };
    Ok(Some(if prior.is_same_job(job) { Existing::Same(row.get("recording_id")) } else { Existing::Conflict }))
}

/// Names the job in the change log of this transaction (`evidence_changes.actor`).
async fn set_actor(tx: &mut Transaction<'_, Postgres>, job: &UploadJob) -> Result<(), DbError> {
    sqlx::query("select set_config('recvault.actor', $1, true)")
        .bind(format!("job {}", job.job_id()))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// R19.1: raises the recording's class to what this job asks for, through the database's one
/// raise path (which logs the change); returns the class before.
async fn raise_retention(
    tx: &mut Transaction<'_, Postgres>,
    recording_id: i64,
    rec: &NewRecording<'_>,
    job: &UploadJob,
) -> Result<RetentionClass, DbError> {
    let before: String = sqlx::query_scalar("select recvault_raise_retention($1, $2, $3, $4, $5)")
        .bind(recording_id)
        .bind(rec.retention.class.code())
        .bind(rec.retention.basis)
        .bind(job.job_id())
        .bind(rec.archive.legal_hold)
        .fetch_one(&mut **tx)
        .await?;
    crate::retention_class(&before)
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

/// What a recording's row says of its retention and protection (the retention path reads it).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedProtection {
    pub class: RetentionClass,
    pub unit: String,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

impl Db {
    pub async fn recorded_protection(&self, recording_id: i64) -> Result<Option<RecordedProtection>, DbError> {
        let row = sqlx::query(
            "select retention_class, unit, archive_bucket, archive_key, archive_version_id, lock_mode, lock_until, legal_hold \
             from recordings where id = $1",
        )
        .bind(recording_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let class: String = r.get("retention_class");
            Ok(RecordedProtection {
                class: crate::retention_class(&class)?,
                unit: r.get("unit"),
                bucket: r.get("archive_bucket"),
                key: r.get("archive_key"),
                version_id: r.get("archive_version_id"),
                lock_mode: r.get("lock_mode"),
                lock_until: r.get("lock_until"),
                legal_hold: r.get("legal_hold"),
            })
        })
        .transpose()
    }

    /// R19.1: records a raise of a recording's class (and the protection the store now has),
    /// through the database's raise-only functions, with who did it and why; one transaction.
    /// Returns the class before.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_retention_raise(
        &self,
        recording_id: i64,
        class: RetentionClass,
        basis: &str,
        actor: &str,
        lock_mode: Option<&str>,
        lock_until: Option<DateTime<Utc>>,
        legal_hold: bool,
    ) -> Result<RetentionClass, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("select set_config('recvault.actor', $1, true), set_config('recvault.reason', $2, true)")
            .bind(actor)
            .bind(basis)
            .execute(&mut *tx)
            .await?;
        let before: String = sqlx::query_scalar("select recvault_raise_retention($1, $2, $3, null, $4)")
            .bind(recording_id)
            .bind(class.code())
            .bind(basis)
            .bind(legal_hold)
            .fetch_one(&mut *tx)
            .await?;
        if let (Some(mode), Some(until)) = (lock_mode, lock_until) {
            sqlx::query("select recvault_raise_lock($1, $2, $3, $4)")
                .bind(recording_id)
                .bind(mode)
                .bind(until)
                .bind(legal_hold)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        crate::retention_class(&before)
    }
}
