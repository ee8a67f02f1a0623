//! Recomputes the activity a new recording belongs to, inside the recording's transaction.
//!
//! Serialised per device: the transaction holds an advisory lock on the device id, so two
//! workers committing neighbouring segments of one device take turns, and the second one sees the
//! first one's recording. Whatever the arrival order, the last commit computes the activity from
//! every recording it has, so the stored result is the one the full set gives.

use crate::DbError;
use chrono::{DateTime, TimeDelta, Utc};
use recvault_core::FindingKind;
use recvault_core::analysis::{
    Activity, AnalysisPolicy, Audio, RecordingFacts, activity_findings, assemble, pauses_of,
};
use recvault_core::probe::{ProbePolicy, ProbeReport};
use serde_json::json;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use std::collections::{HashMap, HashSet};

/// What an analysis changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalysisOutcome {
    /// The activity the recording is in (`None` when it has no start time to place it by).
    pub activity_key: Option<String>,
    /// Findings raised for the first time.
    pub raised: Vec<FindingKind>,
    /// Findings that no longer hold (a late segment explained or closed an interruption).
    pub withdrawn: Vec<FindingKind>,
}

/// Takes the per-device lock for the rest of the transaction.
pub(crate) async fn lock_device(tx: &mut Transaction<'_, Postgres>, device_id: &str) -> Result<(), DbError> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('device:' || $1, 0))")
        .bind(device_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A recording's facts; for a recovered recording (R2.1), those of its recovered media.
const FACTS: &str = "select r.id, r.device_id, r.activity_id, r.recorded_start, \
       coalesce((rc.assessment ->> 'readable_duration_ns')::bigint / 1000000, r.duration_ms) as duration_ms, \
       r.continues_from_device, coalesce(rc.report, p.report) as report \
     from recordings r join probe_reports p on p.recording_id = r.id \
     left join recoveries rc on rc.recording_id = r.id and rc.state = 'recovered' \
     where r.recorded_start is not null and r.device_id = $1";

fn to_facts(rows: Vec<sqlx::postgres::PgRow>, probe: &ProbePolicy) -> Result<Vec<RecordingFacts>, DbError> {
    rows.into_iter()
        .map(|r| {
            let Json(report): Json<ProbeReport> = r.try_get("report")?;
            let duration_ms: i64 = r.try_get("duration_ms")?;
            Ok(RecordingFacts {
                recording_id: r.try_get("id")?,
                device_id: r.try_get("device_id")?,
                activity_id: r.try_get("activity_id")?,
                start: r.try_get("recorded_start")?,
                duration_ns: u64::try_from(duration_ms).unwrap_or(0) * 1_000_000,
                pauses: pauses_of(&report, probe),
                audio: Audio::of(&report),
                continues_from_device: r.try_get("continues_from_device")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(DbError::from)
}

/// The device's recordings overlapping `[from, to]`, and every recording of `activity_id`.
async fn facts_around(
    tx: &mut Transaction<'_, Postgres>,
    device: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    activity_id: Option<&str>,
    probe: &ProbePolicy,
) -> Result<Vec<RecordingFacts>, DbError> {
    let sql = format!(
        "{FACTS} and ((r.recorded_start <= $3 and r.recorded_end >= $2) or (r.activity_id is not null and r.activity_id = $4))"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(device)
        .bind(from)
        .bind(to)
        .bind(activity_id)
        .fetch_all(&mut **tx)
        .await?;
    to_facts(rows, probe)
}

/// Recomputes the activity holding `recording_id` and syncs its row and findings; then, R15.2,
/// the activities on other devices that say they continue this device's recording around that
/// time, since they link to it and it may have arrived after them.
pub(crate) async fn analyse(
    tx: &mut Transaction<'_, Postgres>,
    recording_id: i64,
    policy: &AnalysisPolicy,
    probe: &ProbePolicy,
) -> Result<AnalysisOutcome, DbError> {
    let mut outcome = analyse_one(tx, recording_id, policy, probe).await?;
    for (device, continuing) in continuations(tx, recording_id).await? {
        // Lock order is always "this device, then the one continuing it"; a cycle of hand-overs
        // would be a deadlock that Postgres breaks by failing one transaction, which is retried.
        lock_device(tx, &device).await?;
        let more = analyse_one(tx, continuing, policy, probe).await?;
        outcome.raised.extend(more.raised);
        outcome.withdrawn.extend(more.withdrawn);
    }
    Ok(outcome)
}

/// Recordings of other devices that continue from this recording's device and start from 10
/// minutes before it ends to 2 hours after (the window `handover_sources` looks back over).
async fn continuations(tx: &mut Transaction<'_, Postgres>, recording_id: i64) -> Result<Vec<(String, i64)>, DbError> {
    Ok(sqlx::query_as(
        "select distinct on (c.device_id) c.device_id, c.id from recordings r \
         join recordings c on c.continues_from_device = r.device_id and c.device_id <> r.device_id \
         where r.id = $1 and r.recorded_end is not null and c.recorded_start is not null \
           and c.recorded_start between r.recorded_end - interval '10 minutes' and r.recorded_end + interval '2 hours' \
         order by c.device_id, c.recorded_start",
    )
    .bind(recording_id)
    .fetch_all(&mut **tx)
    .await?)
}

async fn analyse_one(
    tx: &mut Transaction<'_, Postgres>,
    recording_id: i64,
    policy: &AnalysisPolicy,
    probe: &ProbePolicy,
) -> Result<AnalysisOutcome, DbError> {
    let row = sqlx::query("select device_id, activity_id, recorded_start, recorded_end from recordings where id = $1")
        .bind(recording_id)
        .fetch_one(&mut **tx)
        .await?;
    let device: String = row.get("device_id");
    let activity_id: Option<String> = row.get("activity_id");
    let (Some(start), Some(end)) =
        (row.get::<Option<DateTime<Utc>>, _>("recorded_start"), row.get::<Option<DateTime<Utc>>, _>("recorded_end"))
    else {
        return Ok(AnalysisOutcome::default());
    };

    // Widen the window until the activity no longer touches its edges (chains of files).
    let gap = TimeDelta::nanoseconds(i64::try_from(policy.activity_gap_ns).unwrap_or(i64::MAX));
    let mut margin = TimeDelta::hours(12);
    let (activities, at, from, to) = loop {
        let (from, to) = (start - margin - gap, end + margin + gap);
        let facts = facts_around(tx, &device, from, to, activity_id.as_deref(), probe).await?;
        let others = handover_sources(tx, &facts, probe).await?;
        let activities = assemble(&facts, &others, policy);
        let at = activities
            .iter()
            .position(|a| a.recording_ids.contains(&recording_id))
            .ok_or_else(|| DbError::Corrupt(format!("recording {recording_id} is in no activity")))?;
        let inside = activities[at].start - gap > from && activities[at].end + gap < to;
        if inside || margin > TimeDelta::days(14) {
            break (activities, at, from, to);
        }
        margin = margin * 4;
    };
    let mut outcome = store(tx, &activities[at], policy).await?;
    // R13.1, R15.1: an activity without a reference of its own is weighed against the device's
    // wearer level, learnt from its other activities; this recording may have moved that level,
    // so every other activity wholly inside the window whose reference changed is stored again
    // (an earlier activity of the shift is re-judged when a later one brings the reference).
    // Only activities grouped by time: one grouped by a station's activity id may have recordings
    // outside the window, and storing the part loaded here would drop the rest from its row.
    for (i, a) in activities.iter().enumerate() {
        if i == at || a.activity_id.is_some() || a.start - gap <= from || a.end + gap >= to {
            continue;
        }
        let stored: Option<Option<serde_json::Value>> = sqlx::query_scalar(
            "select summary -> 'wearer_reference' from activities where device_id = $1 and activity_key = $2",
        )
        .bind(&a.device_id)
        .bind(&a.key)
        .fetch_optional(&mut **tx)
        .await?;
        if stored.flatten() != Some(json!(a.wearer_reference)) {
            let more = store(tx, a, policy).await?;
            outcome.raised.extend(more.raised);
            outcome.withdrawn.extend(more.withdrawn);
        }
    }
    Ok(outcome)
}

/// R15.2: recordings of the devices that recordings here continue from.
async fn handover_sources(
    tx: &mut Transaction<'_, Postgres>,
    facts: &[RecordingFacts],
    probe: &ProbePolicy,
) -> Result<Vec<RecordingFacts>, DbError> {
    let mut out = Vec::new();
    for f in facts {
        if let Some(from) = &f.continues_from_device {
            let sql = format!("{FACTS} and r.recorded_end between $2 and $3");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(from)
                .bind(f.start - TimeDelta::hours(2))
                .bind(f.start + TimeDelta::minutes(10))
                .fetch_all(&mut **tx)
                .await?;
            out.extend(to_facts(rows, probe)?);
        }
    }
    Ok(out)
}

async fn store(
    tx: &mut Transaction<'_, Postgres>,
    a: &Activity,
    policy: &AnalysisPolicy,
) -> Result<AnalysisOutcome, DbError> {
    // The rows this activity replaces: any that shares a recording with it, or has its key.
    let old_ids: Vec<i64> = sqlx::query_scalar(
        "select id from activities where device_id = $1 and (recording_ids && $2 or activity_key = $3)",
    )
    .bind(&a.device_id)
    .bind(&a.recording_ids)
    .bind(&a.key)
    .fetch_all(&mut **tx)
    .await?;
    let old: Vec<(i64, String, String)> = sqlx::query_as(
        "select id, fingerprint, kind from findings where activity_ref = any($1) and withdrawn_at is null and fingerprint is not null",
    )
    .bind(&old_ids)
    .fetch_all(&mut **tx)
    .await?;

    let summary = json!({
        "resumptions": a.resumptions,
        "notification": a.notification,
        "handover": a.handover,
        "wearer_reference": a.wearer_reference,
    });
    let id: i64 = sqlx::query_scalar(
        "insert into activities (device_id, activity_key, activity_id, started_at, ended_at, recording_ids, summary) \
         values ($1,$2,$3,$4,$5,$6,$7) on conflict (device_id, activity_key) do update set \
           activity_id = excluded.activity_id, started_at = excluded.started_at, ended_at = excluded.ended_at, \
           recording_ids = excluded.recording_ids, summary = excluded.summary, analysed_at = now() \
         returning id",
    )
    .bind(&a.device_id)
    .bind(&a.key)
    .bind(&a.activity_id)
    .bind(a.start)
    .bind(a.end)
    .bind(&a.recording_ids)
    .bind(Json(&summary))
    .fetch_one(&mut **tx)
    .await?;

    let mut new = activity_findings(a, policy);
    // R2.1: findings that rest on recovered media say so.
    let recovered: Vec<i64> = sqlx::query_scalar(
        "select recording_id from recoveries where state = 'recovered' and recording_id = any($1) order by recording_id",
    )
    .bind(&a.recording_ids)
    .fetch_all(&mut **tx)
    .await?;
    if !recovered.is_empty() {
        let ids: Vec<String> = recovered.iter().map(ToString::to_string).collect();
        for f in &mut new {
            f.finding.summary =
                format!("{} (on the recovered media of recording {})", f.finding.summary, ids.join(", "));
            if let Some(map) = f.finding.evidence.as_object_mut() {
                map.insert("recovered_media".into(), json!(recovered));
            }
        }
    }
    let new_prints: HashMap<&str, usize> = new.iter().enumerate().map(|(i, f)| (f.fingerprint.as_str(), i)).collect();
    let mut outcome = AnalysisOutcome { activity_key: Some(a.key.clone()), ..AnalysisOutcome::default() };
    let mut kept: HashSet<&str> = HashSet::new();
    for (fid, print, kind) in &old {
        match new_prints.get(print.as_str()) {
            Some(&i) => {
                let f = &new[i].finding;
                sqlx::query("update findings set activity_ref = $2, summary = $3, evidence = $4 where id = $1")
                    .bind(fid)
                    .bind(id)
                    .bind(&f.summary)
                    .bind(Json(&f.evidence))
                    .execute(&mut **tx)
                    .await?;
                kept.insert(print.as_str());
            }
            None => {
                sqlx::query("update findings set withdrawn_at = now() where id = $1")
                    .bind(fid)
                    .execute(&mut **tx)
                    .await?;
                outcome.withdrawn.extend(FindingKind::from_code(kind));
            }
        }
    }
    for f in new.iter().filter(|f| !kept.contains(f.fingerprint.as_str())) {
        let inserted = sqlx::query(
            "insert into findings (recording_id, kind, requirement, severity, summary, evidence, activity_ref, fingerprint) \
             values ($1,$2,$3,$4,$5,$6,$7,$8) \
             on conflict (fingerprint) where fingerprint is not null and withdrawn_at is null do nothing",
        )
        .bind(f.recording_id)
        .bind(f.finding.kind.code())
        .bind(f.finding.requirement())
        .bind(f.finding.severity.code())
        .bind(&f.finding.summary)
        .bind(Json(&f.finding.evidence))
        .bind(id)
        .bind(&f.fingerprint)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 1 {
            outcome.raised.push(f.finding.kind);
        }
    }
    sqlx::query("delete from activities where id = any($1) and id <> $2")
        .bind(&old_ids)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(outcome)
}
