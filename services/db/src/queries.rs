//! Reads for people and tests: recent recordings with their findings, quarantine, attempts.

use crate::{Db, DbError};
use chrono::{DateTime, Utc};
use recvault_core::Blake3Hash;
use serde::Serialize;
use sqlx::Row;
use sqlx::types::Json;
use std::collections::HashMap;

/// A recording as listed by `recvault recordings`.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingRow {
    pub id: i64,
    pub blake3: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub archive_key: String,
    pub archive_version_id: Option<String>,
    pub status: String,
    pub retention_class: String,
    pub retention_basis: String,
    pub legal_hold: bool,
    pub lock_until: Option<DateTime<Utc>>,
    pub job_id: String,
    pub station_id: String,
    pub unit: String,
    pub squad: Option<String>,
    pub device_id: String,
    pub officer_ids: Vec<String>,
    pub original_name: String,
    pub activity_id: Option<String>,
    pub event_type: Option<String>,
    pub party: Option<String>,
    pub location: Option<String>,
    pub case_id: Option<String>,
    pub clock_offset_ms: i64,
    pub recorded_start: Option<DateTime<Utc>>,
    pub recorded_end: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub declared_duration_ms: Option<i64>,
    pub archived_at: DateTime<Utc>,
    pub jobs: i64,
    pub findings: Vec<FindingRow>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct FindingRow {
    pub kind: String,
    pub requirement: String,
    pub severity: String,
    pub summary: String,
    pub evidence: Json<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineRow {
    pub id: i64,
    pub job_id: String,
    pub blake3: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub reason_code: String,
    pub reason: String,
    pub station_id: String,
    pub device_id: String,
    pub unit: Option<String>,
    pub original_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub(crate) fn quarantine_row(r: &sqlx::postgres::PgRow) -> QuarantineRow {
    let Json(job): Json<serde_json::Value> = r.get("job");
    QuarantineRow {
        id: r.get("id"),
        job_id: r.get("job_id"),
        blake3: hex_of(r, "blake3"),
        sha256: hex_of(r, "sha256"),
        size_bytes: r.get("size_bytes"),
        bucket: r.get("bucket"),
        key: r.get("key"),
        version_id: r.get("version_id"),
        reason_code: r.get("reason_code"),
        reason: r.get("reason"),
        station_id: r.get("station_id"),
        device_id: r.get("device_id"),
        unit: job.get("unit").and_then(|u| u.as_str()).map(str::to_string),
        original_name: job.get("original_name").and_then(|u| u.as_str()).map(str::to_string),
        created_at: r.get("created_at"),
    }
}

/// Which activities `recvault timeline` shows.
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    pub device: Option<String>,
    pub officer: Option<String>,
    /// The station's activity id, or an activity key (`auto:<id>`).
    pub activity: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// The activity holding this recording.
    pub recording: Option<i64>,
    pub limit: i64,
}

/// One activity as a supervisor reads it.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineActivity {
    pub id: i64,
    pub device_id: String,
    pub key: String,
    pub activity_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    /// Resumptions with their explanation checks, the notification check, the hand-over.
    pub summary: serde_json::Value,
    pub recordings: Vec<TimelineRecording>,
    /// Live findings of the activity and of its recordings.
    pub findings: Vec<TimelineFinding>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TimelineRecording {
    pub id: i64,
    pub original_name: String,
    pub recorded_start: Option<DateTime<Utc>>,
    pub recorded_end: Option<DateTime<Utc>>,
    pub duration_ms: i64,
    pub status: String,
    pub officer_ids: Vec<String>,
    pub clock_offset_ms: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TimelineFinding {
    pub recording_id: i64,
    pub kind: String,
    pub requirement: String,
    pub severity: String,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub job_id: String,
    pub delivery: i32,
    pub worker_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
}

fn hex_of(row: &sqlx::postgres::PgRow, col: &str) -> String {
    hex::encode(row.get::<Vec<u8>, _>(col))
}

/// What a committed job verified at a staged key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedSource {
    /// The staged version it read (`None`: the staging bucket kept no versions then).
    pub version_id: Option<String>,
    /// The content it archived.
    pub blake3: Blake3Hash,
    pub size: u64,
}

impl Db {
    /// Most recent recordings first (R18.1 search order). `job_id` narrows to the recording a job
    /// produced.
    pub async fn recordings(&self, limit: i64, job_id: Option<&str>) -> Result<Vec<RecordingRow>, DbError> {
        let q = crate::search::RecordingQuery {
            job_id: job_id.map(str::to_string),
            limit: u32::try_from(limit).unwrap_or(crate::search::MAX_PAGE),
            ..crate::search::RecordingQuery::default()
        };
        Ok(self.search_recordings(&q).await?.items)
    }

    /// Most recent quarantined files first.
    pub async fn quarantined(&self, limit: i64, job_id: Option<&str>) -> Result<Vec<QuarantineRow>, DbError> {
        let rows = sqlx::query(
            "select * from quarantined where $2::text is null or job_id = $2 order by created_at desc, id desc limit $1",
        )
        .bind(limit)
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(quarantine_row).collect())
    }

    /// Every attempt at a job, oldest first.
    pub async fn attempts(&self, job_id: &str) -> Result<Vec<AttemptRow>, DbError> {
        Ok(sqlx::query_as::<_, AttemptRow>("select * from job_attempts where job_id = $1 order by id")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Activities matching `f`, oldest first, with their recordings and live findings.
    pub async fn timeline(&self, f: &TimelineFilter) -> Result<Vec<TimelineActivity>, DbError> {
        let rows = sqlx::query(
            "select a.* from activities a \
             where ($1::text is null or a.device_id = $1) \
               and ($2::text is null or exists (select 1 from recordings r where r.id = any(a.recording_ids) and $2 = any(r.officer_ids))) \
               and ($3::text is null or a.activity_id = $3 or a.activity_key = $3) \
               and ($4::timestamptz is null or a.ended_at >= $4) \
               and ($5::timestamptz is null or a.started_at <= $5) \
               and ($7::bigint is null or $7 = any(a.recording_ids)) \
             order by a.started_at desc, a.id desc limit $6",
        )
        .bind(&f.device)
        .bind(&f.officer)
        .bind(&f.activity)
        .bind(f.since)
        .bind(f.until)
        .bind(f.limit)
        .bind(f.recording)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.into_iter().rev() {
            let ids: Vec<i64> = r.get("recording_ids");
            let recordings = sqlx::query_as::<_, TimelineRecording>(
                "select id, original_name, recorded_start, recorded_end, duration_ms, status, officer_ids, clock_offset_ms \
                 from recordings where id = any($1) order by recorded_start, id",
            )
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
            let findings = sqlx::query_as::<_, TimelineFinding>(
                "select recording_id, kind, requirement, severity, summary from findings \
                 where recording_id = any($1) and withdrawn_at is null order by recording_id, id",
            )
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
            let Json(summary): Json<serde_json::Value> = r.get("summary");
            out.push(TimelineActivity {
                id: r.get("id"),
                device_id: r.get("device_id"),
                key: r.get("activity_key"),
                activity_id: r.get("activity_id"),
                started_at: r.get("started_at"),
                ended_at: r.get("ended_at"),
                summary,
                recordings,
                findings,
            });
        }
        Ok(out)
    }

    /// The committed jobs that named these staged keys in `bucket`: per key, the staged version
    /// each one verified and the content it archived (recording or quarantine). Only bytes that
    /// match one of these may leave staging.
    pub async fn committed_sources(
        &self,
        bucket: &str,
        keys: &[String],
    ) -> Result<HashMap<String, Vec<CommittedSource>>, DbError> {
        let rows = sqlx::query(
            "select j.payload->'source'->>'key' as key, j.source_version_id, \
               coalesce(r.blake3, q.blake3) as blake3, coalesce(r.size_bytes, q.size_bytes) as size_bytes \
             from ingest_jobs j left join recordings r on r.id = j.recording_id \
               left join quarantined q on q.id = j.quarantine_id \
             where j.payload->'source'->>'bucket' = $1 and j.payload->'source'->>'key' = any($2)",
        )
        .bind(bucket)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<String, Vec<CommittedSource>> = HashMap::new();
        for r in rows {
            let blake3: Vec<u8> = r.get("blake3");
            let blake3 = <[u8; 32]>::try_from(blake3.as_slice())
                .map(Blake3Hash)
                .map_err(|_| DbError::Corrupt("blake3 of a committed job".into()))?;
            let size: i64 = r.get("size_bytes");
            out.entry(r.get("key")).or_default().push(CommittedSource {
                version_id: r.get("source_version_id"),
                blake3,
                size: u64::try_from(size).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Jobs completed so far (archived, duplicate content or quarantined).
    pub async fn completed_jobs(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("select count(*) from ingest_jobs").fetch_one(&self.pool).await?)
    }
}

impl Db {
    /// Records a replay of a dead-lettered job: who, why, and why it had been dead-lettered.
    pub async fn record_replay(
        &self,
        message_id: Option<&str>,
        station_user: Option<&str>,
        dead_reason: &str,
        replayed_by: &str,
        reason: &str,
    ) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar(
            "insert into dead_letter_replays (message_id, station_user, dead_reason, replayed_by, reason) \
             values ($1,$2,$3,$4,$5) returning id",
        )
        .bind(message_id)
        .bind(station_user)
        .bind(dead_reason)
        .bind(replayed_by)
        .bind(reason)
        .fetch_one(&self.pool)
        .await?)
    }
}
