//! Recovery of unfinalized recordings (R2.1): the work items and what they produced.
//!
//! A `recoveries` row is inserted in the transaction that archives an unfinalized recording (no
//! index), so the work can never be lost between the commit and a message. Workers claim due rows
//! with a lease (`for update skip locked`); a row whose device has no finished recording yet is
//! parked as `awaiting_reference`, and the transaction that archives the device's next finished
//! recording makes it due again. Both happen under the per-device lock the activity analysis takes,
//! so a reference that arrives while a worker parks the row is never missed.
//!
//! A recovered row is final (a trigger refuses changes to it): the derived object, its hashes, the
//! recovery report and the probe report of the recovered media. The activity analysis reads the
//! recovered media's report in place of the original's, and its findings say so.

use crate::analysis::{AnalysisOutcome, analyse, lock_device};
use crate::records::ArchiveLocation;
use crate::{Db, DbError};
use recvault_core::analysis::AnalysisPolicy;
use recvault_core::probe::{Assessment, ProbePolicy, ProbeReport};
use recvault_core::{ContentHashes, Finding, FindingKind};
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use std::time::Duration;

/// An archived object, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub recording_id: i64,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// The recording's retention class (a recovered file is kept as long as its original).
    pub retention_class: String,
    pub size_bytes: i64,
}

/// A claimed recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryWork {
    pub device_id: String,
    /// Claims so far, this one included.
    pub attempts: i32,
    pub original: StoredObject,
}

/// A recovery's row, for the CLI and the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryRow {
    pub recording_id: i64,
    pub state: String,
    pub reason: Option<String>,
    pub reference_id: Option<i64>,
    pub attempts: i32,
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub blake3: Option<Vec<u8>>,
    pub sha256: Option<Vec<u8>>,
    pub size_bytes: Option<i64>,
    pub lock_mode: Option<String>,
    pub legal_hold: bool,
    pub recovery: Option<Value>,
    pub report: Option<Value>,
}

/// A finished recovery to record.
#[derive(Debug)]
pub struct NewRecovery<'a> {
    pub recording_id: i64,
    pub reference_id: i64,
    pub hashes: ContentHashes,
    pub location: ArchiveLocation,
    /// `recvault_recover::Recovery`, as JSON.
    pub recovery: &'a Value,
    pub report: &'a ProbeReport,
    pub assessment: &'a Assessment,
    pub worker_id: &'a str,
}

/// The file has media data and no index: what [`recvault_recover`]-style recovery rebuilds.
pub fn needs_recovery(report: &ProbeReport) -> bool {
    report.container.moov_offset.is_none() && report.container.first_mdat_offset.is_some()
}

/// A finished, complete, unfragmented recording (its sample tables index its media): it can serve
/// as its device's reference.
pub fn can_be_reference(report: &ProbeReport, findings: &[Finding]) -> bool {
    report.container.moov_offset.is_some()
        && report.container.fragments == 0
        && !report.tracks.is_empty()
        && !findings.iter().any(|f| matches!(f.kind, FindingKind::Truncated | FindingKind::Unfinalized))
}

/// In the transaction archiving a new recording (the device lock is held): an unfinalized one
/// gets its recovery row; a finished one makes its device's parked recoveries due.
pub(crate) async fn on_archived(
    tx: &mut Transaction<'_, Postgres>,
    recording_id: i64,
    device_id: &str,
    report: &ProbeReport,
    findings: &[Finding],
) -> Result<(), DbError> {
    if needs_recovery(report) {
        sqlx::query(
            "insert into recoveries (recording_id, device_id, state) values ($1, $2, 'pending') on conflict do nothing",
        )
        .bind(recording_id)
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    } else if can_be_reference(report, findings) {
        sqlx::query(
            "update recoveries set state = 'pending', not_before = now(), reason = null \
             where device_id = $1 and state = 'awaiting_reference'",
        )
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

const REFERENCE: &str = "select r.id, r.archive_bucket, r.archive_key, r.archive_version_id, r.retention_class, r.size_bytes \
     from recordings r join probe_reports p on p.recording_id = r.id \
     where r.device_id = $1 and r.id <> $2 and r.unit = (select unit from recordings where id = $2) \
       and jsonb_typeof(p.report #> '{container,moov_offset}') = 'number' \
       and p.fragments = 0 \
       and jsonb_array_length(p.report -> 'tracks') > 0 \
       and not exists (select 1 from findings f where f.recording_id = r.id and f.kind in ('truncated', 'unfinalized')) \
     order by r.archived_at desc, r.id desc limit 1";

fn stored(row: &sqlx::postgres::PgRow) -> Result<StoredObject, sqlx::Error> {
    Ok(StoredObject {
        recording_id: row.try_get(0)?,
        bucket: row.try_get(1)?,
        key: row.try_get(2)?,
        version_id: row.try_get(3)?,
        retention_class: row.try_get(4)?,
        size_bytes: row.try_get(5)?,
    })
}

impl Db {
    /// Claims the next due recovery for `lease` (another worker may take it once the lease ends).
    pub async fn claim_recovery(&self, worker_id: &str, lease: Duration) -> Result<Option<RecoveryWork>, DbError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let row = sqlx::query(
            "with due as ( \
               select recording_id from recoveries \
               where state = 'pending' and not_before <= now() and (claimed_until is null or claimed_until < now()) \
               order by not_before limit 1 for update skip locked) \
             update recoveries c set claimed_by = $1, claimed_until = now() + make_interval(secs => $2::double precision / 1000), \
               attempts = c.attempts + 1 \
             from due, recordings r \
             where c.recording_id = due.recording_id and r.id = c.recording_id \
             returning r.id, r.archive_bucket, r.archive_key, r.archive_version_id, r.retention_class, r.size_bytes, \
               c.device_id, c.attempts",
        )
        .bind(worker_id)
        .bind(lease_ms)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RecoveryWork { device_id: row.try_get(6)?, attempts: row.try_get(7)?, original: stored(&row)? }))
    }

    /// The device's most recent finished, complete, unfragmented recording other than `recording_id`,
    /// archived for the same unit (a station speaking for another unit's device is not trusted to
    /// supply the codec configuration of this unit's evidence).
    pub async fn recovery_reference(
        &self,
        device_id: &str,
        recording_id: i64,
    ) -> Result<Option<StoredObject>, DbError> {
        let row = sqlx::query(REFERENCE).bind(device_id).bind(recording_id).fetch_optional(self.pool()).await?;
        Ok(row.as_ref().map(stored).transpose()?)
    }

    /// Parks the recovery until the device has a reference, unless one arrived meanwhile (checked
    /// again under the device lock); true when parked.
    pub async fn await_reference(&self, recording_id: i64, device_id: &str) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        lock_device(&mut tx, device_id).await?;
        if sqlx::query(REFERENCE).bind(device_id).bind(recording_id).fetch_optional(&mut *tx).await?.is_some() {
            release(&mut tx, recording_id, None, Duration::ZERO).await?;
            tx.commit().await?;
            return Ok(false);
        }
        sqlx::query(
            "update recoveries set state = 'awaiting_reference', claimed_by = null, claimed_until = null, \
               reason = 'no finished recording of this device is archived yet' \
             where recording_id = $1 and state = 'pending'",
        )
        .bind(recording_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Hands a claimed recovery back to be tried again after `delay`, with the reason.
    pub async fn retry_recovery(&self, recording_id: i64, reason: &str, delay: Duration) -> Result<(), DbError> {
        let mut tx = self.pool().begin().await?;
        release(&mut tx, recording_id, Some(reason), delay).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A recovery that cannot succeed (nothing placeable, tries exhausted): kept with its reason.
    pub async fn fail_recovery(&self, recording_id: i64, reason: &str) -> Result<(), DbError> {
        sqlx::query(
            "update recoveries set state = 'failed', reason = $2, claimed_by = null, claimed_until = null \
             where recording_id = $1 and state = 'pending'",
        )
        .bind(recording_id)
        .bind(reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a finished recovery, its finding on the original, and recomputes the original's
    /// activity on the recovered media, in one transaction. `None` when the row was no longer
    /// pending (another worker recorded it first).
    pub async fn record_recovery(
        &self,
        r: &NewRecovery<'_>,
        policy: &AnalysisPolicy,
        probe: &ProbePolicy,
    ) -> Result<Option<AnalysisOutcome>, DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("select set_config('recvault.actor', $1, true)")
            .bind(format!("recovery by {}", r.worker_id))
            .execute(&mut *tx)
            .await?;
        let device: String = sqlx::query_scalar("select device_id from recoveries where recording_id = $1")
            .bind(r.recording_id)
            .fetch_one(&mut *tx)
            .await?;
        lock_device(&mut tx, &device).await?;
        let updated = sqlx::query(
            "update recoveries set state = 'recovered', reason = null, reference_id = $2, bucket = $3, key = $4, \
               version_id = $5, blake3 = $6, sha256 = $7, size_bytes = $8, lock_mode = $9, lock_until = $10, \
               legal_hold = $11, recovery = $12, report = $13, assessment = $14, recovered_at = now(), \
               claimed_by = null, claimed_until = null \
             where recording_id = $1 and state = 'pending'",
        )
        .bind(r.recording_id)
        .bind(r.reference_id)
        .bind(&r.location.bucket)
        .bind(&r.location.key)
        .bind(&r.location.version_id)
        .bind(r.hashes.blake3.as_bytes().as_slice())
        .bind(r.hashes.sha256.as_bytes().as_slice())
        .bind(i64::try_from(r.hashes.size).unwrap_or(i64::MAX))
        .bind(&r.location.lock_mode)
        .bind(r.location.lock_until)
        .bind(r.location.legal_hold)
        .bind(Json(r.recovery))
        .bind(Json(r.report))
        .bind(Json(r.assessment))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        let seconds = r.assessment.readable_duration_ns as f64 / 1e9;
        let fraction = r.recovery.get("placed_fraction").and_then(Value::as_f64).unwrap_or(0.0);
        let summary = format!(
            "recovered {seconds:.1} s of media ({:.1} % of the recorder's media data) with recording {} as reference; \
             the speech and interruption checks use the recovered media",
            fraction * 100.0,
            r.reference_id
        );
        let evidence = json!({
            "reference_id": r.reference_id,
            "recovered_key": r.location.key,
            "recovered_version_id": r.location.version_id,
            "recovered_blake3": r.hashes.blake3.to_hex(),
            "recovered_sha256": r.hashes.sha256.to_hex(),
            "readable_duration_ms": r.assessment.readable_duration_ns / 1_000_000,
            "placed_fraction": fraction,
            "unplaced": r.recovery.get("unplaced"),
        });
        sqlx::query(
            "insert into findings (recording_id, kind, requirement, severity, summary, evidence) \
             values ($1, $2, $3, 'info', $4, $5)",
        )
        .bind(r.recording_id)
        .bind(FindingKind::Recovered.code())
        .bind(FindingKind::Recovered.requirement())
        .bind(&summary)
        .bind(Json(&evidence))
        .execute(&mut *tx)
        .await?;
        let analysis = analyse(&mut tx, r.recording_id, policy, probe).await?;
        tx.commit().await?;
        Ok(Some(analysis))
    }

    /// The recovered file of a recording, if it has one: (bucket, key, version).
    pub async fn recovered_object(
        &self,
        recording_id: i64,
    ) -> Result<Option<(String, String, Option<String>)>, DbError> {
        Ok(sqlx::query_as(
            "select bucket, key, version_id from recoveries where recording_id = $1 and state = 'recovered'",
        )
        .bind(recording_id)
        .fetch_optional(self.pool())
        .await?)
    }

    /// Records the protection a recovered file now has (raised with its original's class: R19.1).
    /// The row's trigger refuses a shorter lock or a released hold.
    pub async fn record_recovered_protection(
        &self,
        recording_id: i64,
        lock_mode: Option<&str>,
        lock_until: Option<chrono::DateTime<chrono::Utc>>,
        legal_hold: bool,
    ) -> Result<(), DbError> {
        sqlx::query(
            "update recoveries set lock_mode = coalesce($2, lock_mode), lock_until = greatest(lock_until, $3), \
               legal_hold = legal_hold or $4 \
             where recording_id = $1 and state = 'recovered'",
        )
        .bind(recording_id)
        .bind(lock_mode)
        .bind(lock_until)
        .bind(legal_hold)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A recording's recovery, if it has one.
    pub async fn recovery(&self, recording_id: i64) -> Result<Option<RecoveryRow>, DbError> {
        let row = sqlx::query(
            "select recording_id, state, reason, reference_id, attempts, key, version_id, blake3, sha256, size_bytes, \
               lock_mode, legal_hold, recovery, report from recoveries where recording_id = $1",
        )
        .bind(recording_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RecoveryRow {
            recording_id: row.try_get("recording_id")?,
            state: row.try_get("state")?,
            reason: row.try_get("reason")?,
            reference_id: row.try_get("reference_id")?,
            attempts: row.try_get("attempts")?,
            key: row.try_get("key")?,
            version_id: row.try_get("version_id")?,
            blake3: row.try_get("blake3")?,
            sha256: row.try_get("sha256")?,
            size_bytes: row.try_get("size_bytes")?,
            lock_mode: row.try_get("lock_mode")?,
            legal_hold: row.try_get("legal_hold")?,
            recovery: row.try_get::<Option<Json<Value>>, _>("recovery")?.map(|j| j.0),
            report: row.try_get::<Option<Json<Value>>, _>("report")?.map(|j| j.0),
        }))
    }
}

/// Ends a claim: due again after `delay`, with `reason` if given.
async fn release(
    tx: &mut Transaction<'_, Postgres>,
    recording_id: i64,
    reason: Option<&str>,
    delay: Duration,
) -> Result<(), DbError> {
    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
    sqlx::query(
        "update recoveries set claimed_by = null, claimed_until = null, reason = coalesce($2, reason), \
           not_before = now() + make_interval(secs => $3::double precision / 1000) \
         where recording_id = $1 and state = 'pending'",
    )
    .bind(recording_id)
    .bind(reason)
    .bind(delay_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
