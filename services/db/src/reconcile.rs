//! The database's side of `recvault reconcile` (R21.1): what every recording and quarantine row
//! says its archive object must be, and the drift found, kept as critical findings (raised once
//! per object and kind, withdrawn when a later run no longer finds it) and as a run record.

use crate::records::{SystemFinding, insert_system_finding};
use crate::{Db, DbError};
use chrono::{DateTime, Utc};
use recvault_core::FindingKind;
use recvault_core::RetentionClass;
use recvault_core::reconcile::{Claim, DriftKind, Expected};
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use sqlx::types::Json;
use std::collections::HashSet;

/// Which row an archived object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "table", content = "id")]
pub enum RowRef {
    Recording(i64),
    Quarantine(i64),
    Bundle(uuid::Uuid),
    /// The recovered file of this recording (R2.1).
    Recovery(i64),
}

/// A row's archived object, as the database records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedObject {
    pub row: RowRef,
    pub bucket: String,
    pub expected: Expected,
}

/// One drift found, as reported and kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub kind: DriftKind,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
    /// The row it concerns (`None`: an object no row records).
    pub row: Option<RowRef>,
    /// What was seen, for a person.
    pub detail: String,
}

impl Drift {
    fn fingerprint(&self) -> String {
        format!(
            "archive_drift:{}/{}@{}:{}",
            self.bucket,
            self.key,
            self.version_id.as_deref().unwrap_or("-"),
            self.kind.code()
        )
    }
}

/// An object the system wrote after the fact (a bundle, a recovered file), recorded in nullable
/// columns `bucket, key, version_id, size_bytes, lock_mode, lock_until, legal_hold`.
fn written_object(r: &sqlx::postgres::PgRow, row: RowRef, tag: &'static str, claim: Claim) -> RecordedObject {
    let size: Option<i64> = r.get("size_bytes");
    RecordedObject {
        row,
        bucket: r.get::<Option<String>, _>("bucket").unwrap_or_default(),
        expected: Expected {
            key: r.get::<Option<String>, _>("key").unwrap_or_default(),
            version_id: r.get("version_id"),
            tag,
            lock_mode: r.get("lock_mode"),
            lock_until: r.get("lock_until"),
            legal_hold: r.get("legal_hold"),
            size: size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            claim,
        },
    }
}

fn blake3_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

impl Db {
    /// Every archived object a row records: recordings (the tag their class needs), quarantined
    /// bytes (permanent, held), recovered files (their original's class) and ready bundles.
    pub async fn recorded_objects(&self) -> Result<Vec<RecordedObject>, DbError> {
        let mut out = Vec::new();
        let rows = sqlx::query(
            "select id, archive_bucket, archive_key, archive_version_id, retention_class, lock_mode, lock_until, \
               legal_hold, size_bytes, blake3 from recordings order by id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let class: String = r.get("retention_class");
            let class = crate::retention_class(&class)?;
            let size: i64 = r.get("size_bytes");
            let blake3: Vec<u8> = r.get("blake3");
            out.push(RecordedObject {
                row: RowRef::Recording(r.get("id")),
                bucket: r.get("archive_bucket"),
                expected: Expected {
                    key: r.get("archive_key"),
                    version_id: r.get("archive_version_id"),
                    tag: class.tag(),
                    lock_mode: r.get("lock_mode"),
                    lock_until: r.get("lock_until"),
                    legal_hold: r.get("legal_hold"),
                    size: u64::try_from(size).unwrap_or(0),
                    claim: Claim::Blake3Metadata(blake3_hex(&blake3)),
                },
            });
        }
        // Quarantine rows record where the bytes went; their protection is that of the
        // permanent class (R2.1), whatever the worker could set at the time.
        let rows = sqlx::query(
            "select distinct on (bucket, key, version_id) id, bucket, key, version_id, size_bytes, blake3 \
             from quarantined order by bucket, key, version_id, id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let size: i64 = r.get("size_bytes");
            let blake3: Vec<u8> = r.get("blake3");
            out.push(RecordedObject {
                row: RowRef::Quarantine(r.get("id")),
                bucket: r.get("bucket"),
                expected: Expected {
                    key: r.get("key"),
                    version_id: r.get("version_id"),
                    tag: RetentionClass::Permanent.tag(),
                    lock_mode: None,
                    lock_until: None,
                    legal_hold: false,
                    size: u64::try_from(size).unwrap_or(0),
                    claim: Claim::Blake3Metadata(blake3_hex(&blake3)),
                },
            });
        }
        // Recovered files (R2.1): kept as long as their original, with the lock and hold recorded.
        let rows = sqlx::query(
            "select rc.recording_id, rc.bucket, rc.key, rc.version_id, rc.size_bytes, rc.blake3, rc.lock_mode, \
               rc.lock_until, rc.legal_hold, r.retention_class \
             from recoveries rc join recordings r on r.id = rc.recording_id where rc.state = 'recovered' \
             order by rc.recording_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let class: String = r.get("retention_class");
            let class = crate::retention_class(&class)?;
            let blake3: Option<Vec<u8>> = r.get("blake3");
            let claim = Claim::Blake3Metadata(blake3.as_deref().map(blake3_hex).unwrap_or_default());
            out.push(written_object(&r, RowRef::Recovery(r.get("recording_id")), class.tag(), claim));
        }
        // Ready bundles (R19.1(2)): permanent, with the lock and hold recorded, and the SHA-256
        // the case systems were given.
        let rows = sqlx::query(
            "select id, bucket, key, version_id, size_bytes, sha256, lock_mode, lock_until, legal_hold \
             from bundles where state = 'ready' order by created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let sha: Option<Vec<u8>> = r.get("sha256");
            let claim = Claim::Sha256(sha.map(hex::encode).unwrap_or_default());
            out.push(written_object(&r, RowRef::Bundle(r.get("id")), RetentionClass::Permanent.tag(), claim));
        }
        Ok(out)
    }

    /// Keeps a run's drift as critical findings: new drift raises one (once per object version
    /// and kind), drift no longer found withdraws it. Records the run. Returns (raised, withdrawn).
    pub async fn record_reconcile(
        &self,
        started_at: DateTime<Utc>,
        objects: usize,
        drift: &[Drift],
        repaired: usize,
        report: &serde_json::Value,
    ) -> Result<(usize, usize), DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("select set_config('recvault.actor', 'recvault reconcile', true)").execute(&mut *tx).await?;
        let mut raised = 0;
        let live: HashSet<String> = drift.iter().map(Drift::fingerprint).collect();
        for d in drift {
            let recording_id = match d.row {
                Some(RowRef::Recording(id) | RowRef::Recovery(id)) => Some(id),
                _ => None,
            };
            let summary = format!("archive drift ({}): {}/{}: {}", d.kind.code(), d.bucket, d.key, d.detail);
            let finding = SystemFinding {
                recording_id,
                kind: FindingKind::ArchiveDrift,
                summary,
                evidence: serde_json::to_value(d).unwrap_or_default(),
                subject: json!({ "bucket": d.bucket, "key": d.key, "version_id": d.version_id, "drift": d.kind.code() }),
                fingerprint: d.fingerprint(),
            };
            raised += usize::from(insert_system_finding(&mut *tx, &finding).await?);
        }
        let open: Vec<(i64, String)> = sqlx::query_as(
            "select id, fingerprint from findings where kind = $1 and withdrawn_at is null and fingerprint is not null",
        )
        .bind(FindingKind::ArchiveDrift.code())
        .fetch_all(&mut *tx)
        .await?;
        let mut withdrawn = 0;
        for (id, print) in open {
            if !live.contains(&print) {
                sqlx::query("select set_config('recvault.reason', 'no longer found by recvault reconcile', true)")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("update findings set withdrawn_at = now() where id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                withdrawn += 1;
            }
        }
        sqlx::query(
            "insert into reconcile_runs (started_at, objects, drift, repaired, report) values ($1,$2,$3,$4,$5)",
        )
        .bind(started_at)
        .bind(i64::try_from(objects).unwrap_or(i64::MAX))
        .bind(i64::try_from(drift.len()).unwrap_or(i64::MAX))
        .bind(i64::try_from(repaired).unwrap_or(i64::MAX))
        .bind(Json(report))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((raised, withdrawn))
    }

    /// Live archive-drift findings, and when reconciliation last finished (for the metrics).
    pub async fn drift_status(&self) -> Result<(i64, Option<DateTime<Utc>>), DbError> {
        let live: i64 = sqlx::query_scalar("select count(*) from findings where kind = $1 and withdrawn_at is null")
            .bind(FindingKind::ArchiveDrift.code())
            .fetch_one(&self.pool)
            .await?;
        let last: Option<DateTime<Utc>> =
            sqlx::query_scalar("select max(finished_at) from reconcile_runs").fetch_one(&self.pool).await?;
        Ok((live, last))
    }
}
