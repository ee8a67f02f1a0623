//! Reads for people and tests: recent recordings with their findings, quarantine, attempts.

use crate::{Db, DbError};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use sqlx::types::Json;

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
    pub device_id: String,
    pub officer_ids: Vec<String>,
    pub original_name: String,
    pub event_type: Option<String>,
    pub clock_offset_ms: i64,
    pub recorded_start: Option<DateTime<Utc>>,
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
    pub size_bytes: i64,
    pub bucket: String,
    pub key: String,
    pub reason_code: String,
    pub reason: String,
    pub device_id: String,
    pub created_at: DateTime<Utc>,
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

impl Db {
    /// Most recently archived recordings first. `job_id` narrows to the recording a job produced.
    pub async fn recordings(&self, limit: i64, job_id: Option<&str>) -> Result<Vec<RecordingRow>, DbError> {
        let rows = sqlx::query(
            "select r.*, (select count(*) from ingest_jobs j where j.recording_id = r.id) as jobs from recordings r \
             where $2::text is null or r.id = (select recording_id from ingest_jobs where job_id = $2) \
             order by r.archived_at desc, r.id desc limit $1",
        )
        .bind(limit)
        .bind(job_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.get("id");
            let findings = sqlx::query_as::<_, FindingRow>(
                "select kind, requirement, severity, summary, evidence from findings where recording_id = $1 order by id",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            out.push(RecordingRow {
                id,
                blake3: hex_of(&r, "blake3"),
                sha256: hex_of(&r, "sha256"),
                size_bytes: r.get("size_bytes"),
                archive_key: r.get("archive_key"),
                archive_version_id: r.get("archive_version_id"),
                status: r.get("status"),
                retention_class: r.get("retention_class"),
                retention_basis: r.get("retention_basis"),
                legal_hold: r.get("legal_hold"),
                lock_until: r.get("lock_until"),
                job_id: r.get("job_id"),
                device_id: r.get("device_id"),
                officer_ids: r.get("officer_ids"),
                original_name: r.get("original_name"),
                event_type: r.get("event_type"),
                clock_offset_ms: r.get("clock_offset_ms"),
                recorded_start: r.get("recorded_start"),
                duration_ms: r.get("duration_ms"),
                declared_duration_ms: r.get("declared_duration_ms"),
                archived_at: r.get("archived_at"),
                jobs: r.get("jobs"),
                findings,
            });
        }
        Ok(out)
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
        Ok(rows
            .into_iter()
            .map(|r| QuarantineRow {
                id: r.get("id"),
                job_id: r.get("job_id"),
                blake3: hex_of(&r, "blake3"),
                size_bytes: r.get("size_bytes"),
                bucket: r.get("bucket"),
                key: r.get("key"),
                reason_code: r.get("reason_code"),
                reason: r.get("reason"),
                device_id: r.get("device_id"),
                created_at: r.get("created_at"),
            })
            .collect())
    }

    /// Every attempt at a job, oldest first.
    pub async fn attempts(&self, job_id: &str) -> Result<Vec<AttemptRow>, DbError> {
        Ok(sqlx::query_as::<_, AttemptRow>("select * from job_attempts where job_id = $1 order by id")
            .bind(job_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Jobs completed so far (archived, duplicate content or quarantined).
    pub async fn completed_jobs(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("select count(*) from ingest_jobs").fetch_one(&self.pool).await?)
    }
}
