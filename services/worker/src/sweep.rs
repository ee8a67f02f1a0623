//! The staging sweep (`recvault staging sweep`): removes staged versions whose bytes a committed
//! job has archived, and nothing else.
//!
//! A worker deletes the staged version it verified after the ack, so a worker that dies between
//! the two leaves a staged copy of bytes that are already archived (the redelivery never comes:
//! the message was acknowledged). The sweep finds those by asking Postgres, not by age, and deletes
//! by version, never by key alone (R2.1):
//! - a version a committed job read and verified (its recorded version id) goes;
//! - another version at a committed job's key (the station staged the key again) goes only if its
//!   bytes, read and hashed now, are the bytes that job archived; new bytes there stay;
//! - everything else stays, whatever its age: a dead-lettered job's bytes wait in staging for an
//!   operator to replay them.

use chrono::{DateTime, TimeDelta, Utc};
use recvault_db::queries::CommittedSource;
use recvault_db::{Db, DbError};
use recvault_store::{Store, StoreError, VersionEntry};
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

/// One staged version, as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedVersion {
    pub key: String,
    pub version_id: Option<String>,
}

/// What a sweep saw and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// Versions in the staging bucket.
    pub listed: usize,
    /// Younger than the minimum age: not looked at (their job may still be running).
    pub too_young: usize,
    /// Not the bytes of a committed job: pending, retrying or dead-lettered jobs, or bytes staged
    /// again at a committed job's key; kept.
    pub kept: Vec<StagedVersion>,
    /// The bytes of a committed job: removed (or, in a dry run, would be).
    pub removed: Vec<StagedVersion>,
    /// Versions read and hashed to decide.
    pub hashed: usize,
    pub dry_run: bool,
}

/// What to do with one staged version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// A committed job read exactly this version.
    Verified,
    /// A committed job named this key, but another version: hash it and compare.
    Hash,
    Keep,
}

fn verdict(entry: &VersionEntry, committed: Option<&Vec<CommittedSource>>) -> Verdict {
    let Some(jobs) = committed else { return Verdict::Keep };
    if entry.version_id.is_some() && jobs.iter().any(|j| j.version_id == entry.version_id) {
        Verdict::Verified
    } else if jobs.iter().any(|j| j.size == entry.size) {
        Verdict::Hash
    } else {
        Verdict::Keep
    }
}

/// The staged versions of `entries` old enough to look at, at `now`.
fn old_enough(entries: Vec<VersionEntry>, min_age: TimeDelta, now: DateTime<Utc>) -> (Vec<VersionEntry>, usize) {
    let total = entries.len();
    let old: Vec<VersionEntry> = entries
        .into_iter()
        // No date from the store: treat as old; the job check below still decides.
        .filter(|e| e.last_modified.is_none_or(|t| now - t >= min_age))
        .collect();
    let young = total - old.len();
    (old, young)
}

/// Sweeps `bucket`: every version at least `min_age` old that holds a committed job's bytes is
/// deleted (unless `dry_run`).
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
        let keys: Vec<String> = batch.iter().map(|e| e.key.clone()).collect();
        let committed = db.committed_sources(bucket, &keys).await?;
        for e in batch {
            let jobs = committed.get(&e.key);
            let remove = match verdict(e, jobs) {
                Verdict::Verified => true,
                Verdict::Keep => false,
                Verdict::Hash => {
                    report.hashed += 1;
                    let (size, blake3) = store.hash_object(bucket, &e.key, e.version_id.as_deref()).await?;
                    jobs.is_some_and(|jobs| jobs.iter().any(|j| j.size == size && j.blake3 == blake3))
                }
            };
            let named = StagedVersion { key: e.key.clone(), version_id: e.version_id.clone() };
            if !remove {
                report.kept.push(named);
                continue;
            }
            if !dry_run {
                match &e.version_id {
                    Some(v) => store.delete_staged_version(bucket, &e.key, v).await?,
                    // An unversioned bucket (development): the bytes were just hashed equal to
                    // the archived ones, and nothing else can be at the key.
                    None => store.delete_key(bucket, &e.key).await?,
                }
            }
            report.removed.push(named);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use recvault_core::Blake3Hash;

    fn entry(key: &str, version: Option<&str>, size: u64, age_mins: Option<i64>, now: DateTime<Utc>) -> VersionEntry {
        VersionEntry {
            key: key.into(),
            version_id: version.map(str::to_string),
            is_latest: true,
            delete_marker: false,
            size,
            last_modified: age_mins.map(|m| now - TimeDelta::minutes(m)),
        }
    }

    #[test]
    fn only_versions_at_least_the_minimum_age_are_candidates() {
        let now = Utc::now();
        let entries = vec![
            entry("fresh", None, 1, Some(5), now),
            entry("at-the-limit", None, 1, Some(60), now),
            entry("old", None, 1, Some(600), now),
            entry("undated", None, 1, None, now),
        ];
        let (old, young) = old_enough(entries, TimeDelta::minutes(60), now);
        let keys: Vec<_> = old.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, vec!["at-the-limit", "old", "undated"]);
        assert_eq!(young, 1);
    }

    #[test]
    fn r2_1_only_the_verified_version_goes_unread_other_versions_are_hashed_first() {
        let now = Utc::now();
        let job = |v: Option<&str>, size| CommittedSource {
            version_id: v.map(str::to_string),
            blake3: Blake3Hash([1; 32]),
            size,
        };
        let jobs = vec![job(Some("v1"), 100)];
        // the version the job verified
        assert_eq!(verdict(&entry("k", Some("v1"), 100, None, now), Some(&jobs)), Verdict::Verified);
        // bytes staged again at the key: only their hash can tell
        assert_eq!(verdict(&entry("k", Some("v2"), 100, None, now), Some(&jobs)), Verdict::Hash);
        // another size cannot be the archived bytes
        assert_eq!(verdict(&entry("k", Some("v2"), 99, None, now), Some(&jobs)), Verdict::Keep);
        // no committed job at the key: pending or dead-lettered
        assert_eq!(verdict(&entry("k", Some("v1"), 100, None, now), None), Verdict::Keep);
        // an unversioned bucket: never deleted unread
        let unversioned = vec![job(None, 100)];
        assert_eq!(verdict(&entry("k", None, 100, None, now), Some(&unversioned)), Verdict::Hash);
    }
}
