//! R19.1(2): case closures, their bundles, and the download links handed out for them (R21.1).
//!
//! Closing a case is idempotent: the same closure again answers with the same bundle; another
//! closure of a closed case is a conflict. The closure and its queued bundle are written in one
//! transaction that holds the case id's lock, so two requests racing each other end the same way.

use crate::queries::QuarantineRow;
use crate::search::recording_row;
use crate::{Db, DbError};
use chrono::{DateTime, Utc};
use recvault_core::cases::{BundleState, Closure};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

/// What a closure would put in the case file, before it is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseContents {
    /// Recordings: those whose job carried the case id, and the extra ones named.
    pub recording_ids: Vec<i64>,
    /// Quarantined files: those whose job carried the case id, and the extra ones named.
    pub quarantine_ids: Vec<i64>,
    /// Extra ids named that do not exist.
    pub unknown_recordings: Vec<i64>,
    pub unknown_quarantined: Vec<i64>,
    /// Extra ids named that belong to another unit.
    pub other_unit: Vec<i64>,
}

/// What [`Db::close_case`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A new closure; its bundle is queued.
    New { bundle_id: Uuid },
    /// The same closure was made before: its bundle.
    Same { bundle_id: Uuid },
    /// The case was closed before with other terms.
    Conflict { closed_at: DateTime<Utc> },
    /// The case was closed by another unit.
    OtherUnit,
}

/// A bundle as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BundleRow {
    pub id: Uuid,
    pub case_id: String,
    pub unit: String,
    pub state: BundleState,
    pub reason: Option<String>,
    pub deadline: DateTime<Utc>,
    pub closed_at: DateTime<Utc>,
    pub recording_ids: Vec<i64>,
    pub quarantine_ids: Vec<i64>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub size_bytes: Option<i64>,
    /// SHA-256 of the tar object, hex.
    pub sha256: Option<String>,
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub ready_at: Option<DateTime<Utc>>,
}

/// A download link handed out.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DownloadRow {
    pub subject: String,
    pub unit: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A case closed past its bundle deadline without a ready bundle.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OverdueCase {
    pub case_id: String,
    pub unit: String,
    pub closed_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub bundle_id: Uuid,
    pub state: String,
    pub reason: Option<String>,
}

/// Where a ready bundle's object is and how it is protected.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleObject {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    pub size_bytes: u64,
    pub sha256: [u8; 32],
    pub lock_mode: Option<String>,
    pub lock_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

fn bundle_row(r: &sqlx::postgres::PgRow) -> Result<BundleRow, DbError> {
    let state: String = r.get("state");
    let sha: Option<Vec<u8>> = r.get("sha256");
    Ok(BundleRow {
        id: r.get("id"),
        case_id: r.get("case_id"),
        unit: r.get("unit"),
        state: BundleState::from_code(&state).ok_or_else(|| DbError::Corrupt(format!("bundle state {state:?}")))?,
        reason: r.get("reason"),
        deadline: r.get("deadline"),
        closed_at: r.get("closed_at"),
        recording_ids: r.get("recording_ids"),
        quarantine_ids: r.get("quarantine_ids"),
        bucket: r.get("bucket"),
        key: r.get("key"),
        version_id: r.get("version_id"),
        size_bytes: r.get("size_bytes"),
        sha256: sha.map(hex::encode),
        lock_mode: r.get("lock_mode"),
        lock_until: r.get("lock_until"),
        legal_hold: r.get("legal_hold"),
        attempts: r.get("attempts"),
        created_at: r.get("created_at"),
        ready_at: r.get("ready_at"),
    })
}

macro_rules! bundle_select {
    () => {
        "select b.*, c.closed_at from bundles b join cases c on c.case_id = b.case_id"
    };
}

impl Db {
    /// What closing `case_id` for `unit` would bundle, checking the extra ids named.
    pub async fn case_contents(
        &self,
        case_id: &str,
        unit: &str,
        extra_recordings: &[i64],
        extra_quarantined: &[i64],
    ) -> Result<CaseContents, DbError> {
        let mut out = CaseContents::default();
        let carried: Vec<i64> =
            sqlx::query_scalar("select id from recordings where case_id = $1 and unit = $2 order by id")
                .bind(case_id)
                .bind(unit)
                .fetch_all(&self.pool)
                .await?;
        let named: Vec<(i64, String)> = sqlx::query_as("select id, unit from recordings where id = any($1)")
            .bind(extra_recordings)
            .fetch_all(&self.pool)
            .await?;
        out.recording_ids = carried;
        for id in extra_recordings {
            match named.iter().find(|(n, _)| n == id) {
                None => out.unknown_recordings.push(*id),
                Some((_, u)) if u != unit => out.other_unit.push(*id),
                Some(_) => out.recording_ids.push(*id),
            }
        }
        out.recording_ids.sort_unstable();
        out.recording_ids.dedup();
        // Quarantined files of the case: the unit is the job's.
        let carried: Vec<i64> = sqlx::query_scalar(
            "select id from quarantined where job->'activity'->>'case_id' = $1 and job->>'unit' = $2 order by id",
        )
        .bind(case_id)
        .bind(unit)
        .fetch_all(&self.pool)
        .await?;
        let named: Vec<(i64, String)> = sqlx::query_as("select id, job->>'unit' from quarantined where id = any($1)")
            .bind(extra_quarantined)
            .fetch_all(&self.pool)
            .await?;
        out.quarantine_ids = carried;
        for id in extra_quarantined {
            match named.iter().find(|(n, _)| n == id) {
                None => out.unknown_quarantined.push(*id),
                Some((_, u)) if u != unit => out.other_unit.push(*id),
                Some(_) => out.quarantine_ids.push(*id),
            }
        }
        out.quarantine_ids.sort_unstable();
        out.quarantine_ids.dedup();
        Ok(out)
    }

    /// Closes a case and queues its bundle (or finds the closure made before), in one transaction
    /// holding the case id's lock.
    pub async fn close_case(
        &self,
        closure: &Closure,
        closed_by: &str,
        contents: &CaseContents,
    ) -> Result<Closed, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("select pg_advisory_xact_lock(hashtextextended('case:' || $1, 0))")
            .bind(&closure.case_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("select set_config('recvault.actor', $1, true)").bind(closed_by).execute(&mut *tx).await?;
        let digest = closure.digest();
        let existing = sqlx::query(
            "select c.unit, c.closed_at, c.closure_digest, b.id from cases c join bundles b on b.case_id = c.case_id \
             where c.case_id = $1",
        )
        .bind(&closure.case_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(e) = existing {
            let unit: String = e.get("unit");
            let d: Vec<u8> = e.get("closure_digest");
            let outcome = if unit != closure.unit {
                Closed::OtherUnit
            } else if d.as_slice() == digest.as_bytes() {
                Closed::Same { bundle_id: e.get("id") }
            } else {
                Closed::Conflict { closed_at: e.get("closed_at") }
            };
            tx.rollback().await?;
            return Ok(outcome);
        }
        let extra_r: Vec<i64> = closure.extra_recordings.iter().copied().collect();
        let extra_q: Vec<i64> = closure.extra_quarantined.iter().copied().collect();
        sqlx::query(
            "insert into cases (case_id, unit, closed_at, reason, extra_recordings, extra_quarantined, closure_digest, closed_by) \
             values ($1,$2,$3,$4,$5,$6,$7,$8)",
        )
        .bind(&closure.case_id)
        .bind(&closure.unit)
        .bind(closure.closed_at)
        .bind(&closure.reason)
        .bind(&extra_r)
        .bind(&extra_q)
        .bind(digest.as_bytes().as_slice())
        .bind(closed_by)
        .execute(&mut *tx)
        .await?;
        let bundle_id = Uuid::new_v4();
        sqlx::query(
            "insert into bundles (id, case_id, unit, state, deadline, recording_ids, quarantine_ids) \
             values ($1,$2,$3,'queued',$4,$5,$6)",
        )
        .bind(bundle_id)
        .bind(&closure.case_id)
        .bind(&closure.unit)
        .bind(closure.deadline())
        .bind(&contents.recording_ids)
        .bind(&contents.quarantine_ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Closed::New { bundle_id })
    }

    pub async fn bundle(&self, id: Uuid) -> Result<Option<BundleRow>, DbError> {
        let row =
            sqlx::query(concat!(bundle_select!(), " where b.id = $1")).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(bundle_row).transpose()
    }

    /// Bundles in a state, oldest first (the builder's recovery, reconciliation).
    pub async fn bundles_in(&self, state: BundleState) -> Result<Vec<BundleRow>, DbError> {
        let rows = sqlx::query(concat!(bundle_select!(), " where b.state = $1 order by b.created_at"))
            .bind(state.code())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(bundle_row).collect()
    }

    /// Moves a bundle to `state` (not out of `ready`), counting attempts when it starts building.
    pub async fn set_bundle_state(
        &self,
        id: Uuid,
        state: BundleState,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("select set_config('recvault.actor', $1, true)").bind(actor).execute(&mut *tx).await?;
        sqlx::query(
            "update bundles set state = $2, reason = $3, updated_at = now(), \
               attempts = attempts + case when $2 = 'building' then 1 else 0 end \
             where id = $1 and state <> 'ready'",
        )
        .bind(id)
        .bind(state.code())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a built, verified and locked bundle as ready.
    pub async fn bundle_ready(&self, id: Uuid, o: &BundleObject, actor: &str) -> Result<(), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("select set_config('recvault.actor', $1, true)").bind(actor).execute(&mut *tx).await?;
        sqlx::query(
            "update bundles set state = 'ready', reason = null, bucket = $2, key = $3, version_id = $4, size_bytes = $5, \
               sha256 = $6, lock_mode = $7, lock_until = $8, legal_hold = $9, updated_at = now(), ready_at = now() \
             where id = $1 and state <> 'ready'",
        )
        .bind(id)
        .bind(&o.bucket)
        .bind(&o.key)
        .bind(&o.version_id)
        .bind(i64::try_from(o.size_bytes).unwrap_or(i64::MAX))
        .bind(o.sha256.as_slice())
        .bind(&o.lock_mode)
        .bind(o.lock_until)
        .bind(o.legal_hold)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// R21.1: records a download link handed out.
    pub async fn record_download(
        &self,
        bundle_id: Uuid,
        subject: &str,
        unit: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        sqlx::query("insert into bundle_downloads (bundle_id, subject, unit, expires_at) values ($1,$2,$3,$4)")
            .bind(bundle_id)
            .bind(subject)
            .bind(unit)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The download links handed out for a bundle, oldest first.
    pub async fn downloads(&self, bundle_id: Uuid) -> Result<Vec<DownloadRow>, DbError> {
        Ok(sqlx::query_as::<_, DownloadRow>(
            "select subject, unit, issued_at, expires_at from bundle_downloads where bundle_id = $1 order by id",
        )
        .bind(bundle_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// R19.1(2): cases closed more than 30 days before `now` without a ready bundle (of `unit`, or
    /// of every unit).
    pub async fn overdue_cases(&self, now: DateTime<Utc>, unit: Option<&str>) -> Result<Vec<OverdueCase>, DbError> {
        Ok(sqlx::query_as::<_, OverdueCase>(
            "select c.case_id, c.unit, c.closed_at, b.deadline, b.id as bundle_id, b.state, b.reason \
             from cases c join bundles b on b.case_id = c.case_id \
             where b.state <> 'ready' and b.deadline < $1 and ($2::text is null or c.unit = $2) order by b.deadline",
        )
        .bind(now)
        .bind(unit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Recordings as the bundle's metadata lists them (one query for the rows, one for findings).
    pub async fn recordings_by_id(&self, ids: &[i64]) -> Result<Vec<crate::queries::RecordingRow>, DbError> {
        let rows = sqlx::query(
            "select r.*, coalesce(r.recorded_start, r.archived_at) as sort_at, \
               (select count(*) from ingest_jobs j where j.recording_id = r.id) as jobs \
             from recordings r where r.id = any($1) order by r.id",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        let mut findings = self.live_findings(ids).await?;
        Ok(rows.iter().map(|r| recording_row(r, findings.remove(&r.get::<i64, _>("id")).unwrap_or_default())).collect())
    }

    /// The probe reports of these recordings (what the verification read from each file).
    pub async fn probe_reports_of(
        &self,
        ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, serde_json::Value>, DbError> {
        let rows: Vec<(i64, sqlx::types::Json<serde_json::Value>)> =
            sqlx::query_as("select recording_id, report from probe_reports where recording_id = any($1)")
                .bind(ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, sqlx::types::Json(v))| (id, v)).collect())
    }

    /// R2.1: an archived recording that no longer hashes to its recorded SHA-256 (found while
    /// bundling it): a critical finding on the recording, raised once while it stays live.
    pub async fn record_fixity_mismatch(
        &self,
        recording_id: i64,
        bundle_id: Uuid,
        expected_sha256: &str,
        actual_sha256: &str,
    ) -> Result<bool, DbError> {
        let f = crate::records::SystemFinding {
            recording_id: Some(recording_id),
            kind: recvault_core::FindingKind::FixityMismatch,
            summary: format!(
                "the archived bytes hash to sha-256 {actual_sha256}, not {expected_sha256} as recorded at ingest (found while building bundle {bundle_id})"
            ),
            evidence: serde_json::json!({ "expected_sha256": expected_sha256, "actual_sha256": actual_sha256, "bundle_id": bundle_id }),
            subject: serde_json::json!({ "recording_id": recording_id, "bundle_id": bundle_id }),
            fingerprint: format!("fixity_mismatch:{recording_id}:{actual_sha256}"),
        };
        crate::records::insert_system_finding(&self.pool, &f).await
    }

    /// Quarantined files by id, with what the bundle's metadata says of them.
    pub async fn quarantined_by_id(&self, ids: &[i64]) -> Result<Vec<QuarantineRow>, DbError> {
        let rows = sqlx::query("select * from quarantined where id = any($1) order by id")
            .bind(ids)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(crate::queries::quarantine_row).collect())
    }
}
