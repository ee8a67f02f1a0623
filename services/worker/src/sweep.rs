//! The staging sweep (`recvault staging sweep`): removes staged objects whose job is completed.
//!
//! A worker deletes the staged object after the ack, so a worker that dies between the two
//! leaves a staged copy of bytes that are already archived (the redelivery never comes: the
//! message was acknowledged). The sweep finds those by asking Postgres, not by age: a staged object
//! is removed only when a committed job names it (archived, duplicate content or quarantined, so
//! its bytes are in the archive bucket). Anything else stays, whatever its age: a dead-lettered
//! job's bytes wait in staging for an operator to replay them (R2.1: nothing is lost).

use chrono::{DateTime, TimeDelta, Utc};
use recvault_db::{Db, DbError};
use recvault_store::{StagedEntry, Store, StoreError};
use serde::Serialize;

/// Keys per Postgres lookup.
const BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a sweep saw and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Objects in the staging bucket.
    pub listed: usize,
    /// Younger than the minimum age: not looked at (their job may still be running).
    pub too_young: usize,
    /// No completed job names them: pending, retrying or dead-lettered jobs; kept.
    pub kept: Vec<String>,
    /// Their job is completed: removed (or, in a dry run, would be).
    pub removed: Vec<String>,
    pub dry_run: bool,
}

/// The staged objects of `entries` old enough to look at, at `now`.
fn old_enough(entries: Vec<StagedEntry>, min_age: TimeDelta, now: DateTime<Utc>) -> (Vec<String>, usize) {
    let total = entries.len();
    let old: Vec<String> = entries
        .into_iter()
        // No date from the store: treat as old; the job check below still decides.
        .filter(|e| e.last_modified.is_none_or(|t| now - t >= min_age))
        .map(|e| e.key)
        .collect();
    let young = total - old.len();
    (old, young)
}

/// Sweeps `bucket`: every object at least `min_age` old whose job is completed is deleted
/// (unless `dry_run`).
pub async fn sweep_staging(
    store: &Store,
    db: &Db,
    bucket: &str,
    min_age: TimeDelta,
    dry_run: bool,
) -> Result<SweepReport, SweepError> {
    let entries = store.list_staged(bucket).await?;
    let listed = entries.len();
    let (candidates, too_young) = old_enough(entries, min_age, Utc::now());
    let mut report = SweepReport { listed, too_young, dry_run, ..SweepReport::default() };
    for batch in candidates.chunks(BATCH) {
        let done = db.completed_sources(bucket, batch).await?;
        for key in batch {
            if !done.contains(key) {
                report.kept.push(key.clone());
                continue;
            }
            if !dry_run {
                store.delete_staged(bucket, key).await?;
            }
            report.removed.push(key.clone());
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, age_mins: Option<i64>, now: DateTime<Utc>) -> StagedEntry {
        StagedEntry { key: key.into(), last_modified: age_mins.map(|m| now - TimeDelta::minutes(m)) }
    }

    #[test]
    fn only_objects_at_least_the_minimum_age_are_candidates() {
        let now = Utc::now();
        let entries = vec![
            entry("fresh", Some(5), now),
            entry("at-the-limit", Some(60), now),
            entry("old", Some(600), now),
            entry("undated", None, now),
        ];
        let (old, young) = old_enough(entries, TimeDelta::minutes(60), now);
        assert_eq!(old, vec!["at-the-limit", "old", "undated"]);
        assert_eq!(young, 1);
        let (all, none) = old_enough(vec![entry("fresh", Some(0), now)], TimeDelta::zero(), now);
        assert_eq!((all.len(), none), (1, 0));
    }
}
