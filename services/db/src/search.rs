//! The read side of recordings (R18.1), shared by the CLI and the API: find recordings by unit,
//! party, date, location, event type, device, officer and case; newest first, in pages that a
//! cursor continues (keyset pagination: stable while rows arrive, no OFFSET scans); one query
//! for a page and one for all its findings, never a query per row.
//!
//! The SQL is assembled from the filters present only (each one a bound parameter), so the
//! planner sees a query it can use an index for, whatever the combination.

use crate::queries::{FindingRow, RecordingRow};
use crate::{Db, DbError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder, Row};
use std::collections::HashMap;

/// Largest page the read side returns, whatever is asked.
pub const MAX_PAGE: u32 = 500;

/// Filters of a recording search, all optional and combined with AND. Text fields match exactly
/// (what a case system has on file, as the station recorded it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordingQuery {
    pub unit: Option<String>,
    pub party: Option<String>,
    pub location: Option<String>,
    pub event_type: Option<String>,
    pub device_id: Option<String>,
    pub officer_id: Option<String>,
    pub case_id: Option<String>,
    /// Recorded (corrected clock) at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
    /// The recording a job produced.
    pub job_id: Option<String>,
    /// Continue after this position (from the previous page).
    pub after: Option<Cursor>,
    /// Page size, 1 to [`MAX_PAGE`].
    pub limit: u32,
}

/// A position in the newest-first order: the sort time (recording start, or archiving time when
/// unknown) and the id that breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: i64,
}

impl Cursor {
    /// An opaque token for a URL: `<microseconds>.<id>` in hex, so it needs no escaping.
    pub fn encode(&self) -> String {
        format!("{:x}.{:x}", self.at.timestamp_micros(), self.id)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (at, id) = s.split_once('.')?;
        let at = i64::from_str_radix(at, 16).ok()?;
        let id = i64::from_str_radix(id, 16).ok()?;
        Some(Self { at: DateTime::from_timestamp_micros(at)?, id })
    }
}

/// One page of results and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

fn hex_of(row: &sqlx::postgres::PgRow, col: &str) -> String {
    hex::encode(row.get::<Vec<u8>, _>(col))
}

pub(crate) fn recording_row(r: &sqlx::postgres::PgRow, findings: Vec<FindingRow>) -> RecordingRow {
    RecordingRow {
        id: r.get("id"),
        blake3: hex_of(r, "blake3"),
        sha256: hex_of(r, "sha256"),
        size_bytes: r.get("size_bytes"),
        archive_key: r.get("archive_key"),
        archive_version_id: r.get("archive_version_id"),
        status: r.get("status"),
        retention_class: r.get("retention_class"),
        retention_basis: r.get("retention_basis"),
        legal_hold: r.get("legal_hold"),
        lock_until: r.get("lock_until"),
        job_id: r.get("job_id"),
        station_id: r.get("station_id"),
        unit: r.get("unit"),
        squad: r.get("squad"),
        device_id: r.get("device_id"),
        officer_ids: r.get("officer_ids"),
        original_name: r.get("original_name"),
        activity_id: r.get("activity_id"),
        event_type: r.get("event_type"),
        party: r.get("party"),
        location: r.get("location"),
        case_id: r.get("case_id"),
        clock_offset_ms: r.get("clock_offset_ms"),
        recorded_start: r.get("recorded_start"),
        recorded_end: r.get("recorded_end"),
        duration_ms: r.get("duration_ms"),
        declared_duration_ms: r.get("declared_duration_ms"),
        archived_at: r.get("archived_at"),
        jobs: r.get("jobs"),
        findings,
    }
}

const SELECT: &str = "select r.*, coalesce(r.recorded_start, r.archived_at) as sort_at, \
     (select count(*) from ingest_jobs j where j.recording_id = r.id) as jobs from recordings r where true";

impl Db {
    /// Recordings matching `q`, newest first, one page.
    pub async fn search_recordings(&self, q: &RecordingQuery) -> Result<Page<RecordingRow>, DbError> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
        let eq = |sql: &mut QueryBuilder<Postgres>, col: &str, v: &Option<String>| {
            if let Some(v) = v {
                sql.push(format_args!(" and r.{col} = ")).push_bind(v.clone());
            }
        };
        eq(&mut sql, "unit", &q.unit);
        eq(&mut sql, "party", &q.party);
        eq(&mut sql, "location", &q.location);
        eq(&mut sql, "event_type", &q.event_type);
        eq(&mut sql, "device_id", &q.device_id);
        eq(&mut sql, "case_id", &q.case_id);
        if let Some(o) = &q.officer_id {
            sql.push(" and r.officer_ids @> array[").push_bind(o.clone()).push("]::text[]");
        }
        if let Some(j) = &q.job_id {
            sql.push(" and r.id = (select recording_id from ingest_jobs where job_id = ")
                .push_bind(j.clone())
                .push(")");
        }
        if let Some(from) = q.from {
            sql.push(" and coalesce(r.recorded_start, r.archived_at) >= ").push_bind(from);
        }
        if let Some(to) = q.to {
            sql.push(" and coalesce(r.recorded_start, r.archived_at) < ").push_bind(to);
        }
        if let Some(c) = q.after {
            sql.push(" and (coalesce(r.recorded_start, r.archived_at), r.id) < (")
                .push_bind(c.at)
                .push(", ")
                .push_bind(c.id)
                .push(")");
        }
        sql.push(" order by coalesce(r.recorded_start, r.archived_at) desc, r.id desc limit ")
            .push_bind(i64::from(limit) + 1);
        let mut rows = sql.build().fetch_all(&self.pool).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(|r| Cursor { at: r.get("sort_at"), id: r.get("id") }) } else { None };
        let ids: Vec<i64> = rows.iter().map(|r| r.get("id")).collect();
        let mut findings = self.live_findings(&ids).await?;
        let items = rows
            .iter()
            .map(|r| recording_row(r, findings.remove(&r.get::<i64, _>("id")).unwrap_or_default()))
            .collect();
        Ok(Page { items, next })
    }

    /// One recording, with its live findings.
    pub async fn recording(&self, id: i64) -> Result<Option<RecordingRow>, DbError> {
        let mut sql: QueryBuilder<Postgres> = QueryBuilder::new(SELECT);
        sql.push(" and r.id = ").push_bind(id);
        let Some(row) = sql.build().fetch_optional(&self.pool).await? else { return Ok(None) };
        let findings = self.live_findings(&[id]).await?.remove(&id).unwrap_or_default();
        Ok(Some(recording_row(&row, findings)))
    }

    /// The live findings of these recordings, in one query.
    pub async fn live_findings(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<FindingRow>>, DbError> {
        let rows = sqlx::query(
            "select recording_id, kind, requirement, severity, summary, evidence from findings \
             where recording_id = any($1) and withdrawn_at is null order by recording_id, id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut out: HashMap<i64, Vec<FindingRow>> = HashMap::new();
        for r in rows {
            out.entry(r.get("recording_id")).or_default().push(FindingRow {
                kind: r.get("kind"),
                requirement: r.get("requirement"),
                severity: r.get("severity"),
                summary: r.get("summary"),
                evidence: r.get("evidence"),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor { at: DateTime::from_timestamp_micros(1_764_633_600_123_456).unwrap(), id: 4711 };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "x", "12", "zz.1", "1.zz", "1.2.3"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
