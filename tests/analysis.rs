//! Compliance analysis through the queue (R11.1, R12.1, R13.1, R15.1, R15.2, R17.1): segments of
//! one device arrive in any order, from concurrent workers, late; the stored activity is always
//! the one the full set of segments gives.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, FixedOffset, TimeDelta};
use recvault_db::queries::TimelineFilter;
use recvault_fixtures::spec::RESUMPTION_PINYIN;
use recvault_fixtures::{AudioSpec, RecordingSpec, SpeechSpec};
use recvault_tests::TestEnv;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

fn t0() -> DateTime<FixedOffset> {
    // Monday 2 March 2026, 09:00 in Fuzhou
    DateTime::parse_from_rfc3339("2026-03-02T09:00:00+08:00").unwrap()
}

fn at(secs: i64) -> DateTime<FixedOffset> {
    t0() + TimeDelta::seconds(secs)
}

/// A short segment: tiny video, 16 kHz audio over pink noise, optional speech.
fn segment(env: &TestEnv, name: &str, secs: u64, speech: Option<SpeechSpec>, seed: u64) -> PathBuf {
    let spec = RecordingSpec {
        duration: Duration::from_secs(secs),
        video: Some(recvault_tests::tiny_video()),
        audio: Some(AudioSpec::default()),
        speech: speech.into_iter().collect(),
        seed,
        ..RecordingSpec::default()
    };
    env.fixture(name, &spec).0
}

fn notified(env: &TestEnv, name: &str, seed: u64) -> PathBuf {
    segment(env, name, 10, Some(SpeechSpec::notification(Duration::from_millis(500))), seed)
}

/// A 12 s segment whose notification is spoken `snr_db` over the background: the wearer's voice
/// louder or quieter (R13.1, R15.1 weigh it against a reference level).
fn notified_at(env: &TestEnv, name: &str, snr_db: f32, seed: u64) -> PathBuf {
    let notice = SpeechSpec { snr_db, ..SpeechSpec::notification(Duration::from_millis(500)) };
    segment(env, name, 12, Some(notice), seed)
}

fn explained(env: &TestEnv, name: &str, seed: u64) -> PathBuf {
    segment(env, name, 8, Some(SpeechSpec::new(Duration::from_secs(1), RESUMPTION_PINYIN)), seed)
}

fn silent(env: &TestEnv, name: &str, seed: u64) -> PathBuf {
    segment(env, name, 8, None, seed)
}

async fn activities_of(env: &TestEnv, device: &str) -> Vec<recvault_db::queries::TimelineActivity> {
    env.db
        .timeline(&TimelineFilter { device: Some(device.into()), limit: 100, ..TimelineFilter::default() })
        .await
        .unwrap()
}

/// What each activity's voices were weighed against (R13.1, R15.1), in time order.
async fn references_of(env: &TestEnv, device: &str) -> Vec<String> {
    let acts = activities_of(env, device).await;
    acts.iter().map(|a| a.summary["wearer_reference"]["from"].as_str().unwrap_or("").to_string()).collect()
}

fn resumption_count(a: &recvault_db::queries::TimelineActivity) -> usize {
    a.summary["resumptions"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r15_1_segments_out_of_order_give_the_activity_of_the_whole_set() {
    let env = TestEnv::with(|s| s.worker.concurrency = 1).await;
    let a = notified(&env, "a.mp4", 1);
    let b = explained(&env, "b.mp4", 2);
    let c = silent(&env, "c.mp4", 3);
    // posted newest first: C (40 s), B (20 s), A (0 s); stops of 10 s and 12 s
    let jc = env.submit_at(&c, "DSJ-A1", at(40), at(3600), |_| {}).await;
    let jb = env.submit_at(&b, "DSJ-A1", at(20), at(3600), |_| {}).await;
    let ja = env.submit_at(&a, "DSJ-A1", at(0), at(3600), |_| {}).await;
    let worker = env.start_worker().await;
    for j in [&jc, &jb, &ja] {
        assert_eq!(env.wait_for_job(j.job_id(), WAIT).await, "archived");
    }
    worker.stop().await;

    let acts = activities_of(&env, "DSJ-A1").await;
    assert_eq!(acts.len(), 1, "one activity");
    let act = &acts[0];
    assert_eq!(act.recordings.len(), 3);
    assert_eq!(resumption_count(act), 2);
    assert_eq!(act.summary["notification"]["result"], "found", "R13.1: {}", act.summary["notification"]);
    let (ra, rb, rc) =
        (env.recording_of(ja.job_id()).await, env.recording_of(jb.job_id()).await, env.recording_of(jc.job_id()).await);
    assert_eq!(env.live_findings(ra).await, Vec::<String>::new());
    assert_eq!(env.live_findings(rb).await, vec!["interruption"], "B explains its resumption");
    assert_eq!(env.live_findings(rc).await, vec!["interruption", "interruption_unexplained"], "C does not");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_neighbouring_segments_are_serialised_per_device() {
    let env = TestEnv::with(|s| s.worker.concurrency = 3).await;
    let n: i64 = 6;
    let mut jobs = Vec::new();
    for i in 0..n {
        let seed = 10 + i.unsigned_abs();
        let path = if i == 0 { notified(&env, "s0.mp4", seed) } else { silent(&env, &format!("s{i}.mp4"), seed) };
        // 8-10 s segments every 20 s: five stops of about 10 s
        jobs.push(env.submit_at(&path, "DSJ-C1", at(20 * i), at(3600), |_| {}).await);
    }
    // two workers with three jobs each in flight: neighbours commit at the same time
    let w1 = env.start_worker().await;
    let w2 = env.start_worker().await;
    for j in &jobs {
        assert_eq!(env.wait_for_job(j.job_id(), WAIT).await, "archived");
    }
    w1.stop().await;
    w2.stop().await;
    let acts = activities_of(&env, "DSJ-C1").await;
    assert_eq!(acts.len(), 1, "one activity row, however the commits interleaved");
    assert_eq!(acts[0].recordings.len(), n as usize);
    assert_eq!(resumption_count(&acts[0]) as i64, n - 1);
    let live: Vec<(String, i64)> = sqlx::query_as(
        "select kind, count(*) from findings where withdrawn_at is null and activity_ref is not null group by kind order by kind",
    )
    .fetch_all(env.db.pool())
    .await
    .unwrap();
    assert_eq!(live, vec![("interruption".into(), n - 1), ("interruption_unexplained".into(), n - 1)]);
    let orphans: i64 = sqlx::query_scalar("select count(*) from activities where device_id = 'DSJ-C1'")
        .fetch_one(env.db.pool())
        .await
        .unwrap();
    assert_eq!(orphans, 1);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r15_1_a_late_segment_turns_an_explained_interruption_into_an_unexplained_one() {
    let env = TestEnv::new().await;
    let a = notified(&env, "a.mp4", 21);
    let c = explained(&env, "c.mp4", 22);
    let b = silent(&env, "b.mp4", 23);
    let worker = env.start_worker().await;
    let ja = env.submit_at(&a, "DSJ-L1", at(0), at(3600), |_| {}).await;
    env.wait_for_job(ja.job_id(), WAIT).await;
    let jc = env.submit_at(&c, "DSJ-L1", at(40), at(3600), |_| {}).await;
    env.wait_for_job(jc.job_id(), WAIT).await;
    let rc = env.recording_of(jc.job_id()).await;
    assert_eq!(env.live_findings(rc).await, vec!["interruption"], "the 30 s stop is explained");
    // B arrives late: 15-23 s, silent. The stop before B is now unexplained; C still explains its own.
    let jb = env.submit_at(&b, "DSJ-L1", at(15), at(3700), |_| {}).await;
    env.wait_for_job(jb.job_id(), WAIT).await;
    let rb = env.recording_of(jb.job_id()).await;
    assert_eq!(env.live_findings(rb).await, vec!["interruption", "interruption_unexplained"]);
    assert_eq!(env.live_findings(rc).await, vec!["interruption"]);
    // the interruption before C is the same moment (same finding), now after B: a 17 s stop, not 30 s
    let gap: i64 = sqlx::query_scalar(
        "select (evidence->>'gap_ms')::bigint from findings where recording_id = $1 and kind = 'interruption' and withdrawn_at is null",
    )
    .bind(rc)
    .fetch_one(env.db.pool())
    .await
    .unwrap();
    assert!((16_000..18_000).contains(&gap), "{gap}");
    assert_eq!(worker.metrics.findings_withdrawn.with_label_values(&["interruption"]).get(), 0);
    worker.stop().await;
    assert_eq!(resumption_count(&activities_of(&env, "DSJ-L1").await[0]), 2);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r15_1_a_late_segment_that_closes_the_gap_withdraws_the_finding() {
    let env = TestEnv::new().await;
    let a = notified(&env, "a.mp4", 31);
    let c = silent(&env, "c.mp4", 32);
    let b = silent(&env, "b.mp4", 33);
    let worker = env.start_worker().await;
    let ja = env.submit_at(&a, "DSJ-L2", at(0), at(3600), |_| {}).await;
    env.wait_for_job(ja.job_id(), WAIT).await;
    let jc = env.submit_at(&c, "DSJ-L2", at(22), at(3600), |_| {}).await;
    env.wait_for_job(jc.job_id(), WAIT).await;
    let rc = env.recording_of(jc.job_id()).await;
    assert_eq!(env.live_findings(rc).await, vec!["interruption", "interruption_unexplained"]);
    // B (11-19 s) fills the 12 s stop: the seams left (about 1 s and 3 s) are not over the 3 s threshold.
    let jb = env.submit_at(&b, "DSJ-L2", at(11), at(3700), |_| {}).await;
    env.wait_for_job(jb.job_id(), WAIT).await;
    assert_eq!(env.live_findings(rc).await, Vec::<String>::new(), "nothing left to explain");
    let withdrawn: i64 =
        sqlx::query_scalar("select count(*) from findings where recording_id = $1 and withdrawn_at is not null")
            .bind(rc)
            .fetch_one(env.db.pool())
            .await
            .unwrap();
    assert_eq!(withdrawn, 2, "kept, marked withdrawn");
    worker.stop().await;
    assert_eq!(resumption_count(&activities_of(&env, "DSJ-L2").await[0]), 0);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r15_2_a_device_handover_is_linked_and_shown_on_the_timeline() {
    let env = TestEnv::new().await;
    let x = notified(&env, "x.mp4", 41);
    let y = explained(&env, "y.mp4", 42);
    let worker = env.start_worker().await;
    let jx = env.submit_at(&x, "DSJ-X", at(0), at(3600), |_| {}).await;
    env.wait_for_job(jx.job_id(), WAIT).await;
    let jy = env
        .submit_at(&y, "DSJ-Y", at(25), at(3600), |w| {
            w.activity = Some(recvault_core::job::ActivityV1 {
                continues_from_device: Some("DSJ-X".into()),
                ..Default::default()
            });
        })
        .await;
    env.wait_for_job(jy.job_id(), WAIT).await;
    worker.stop().await;
    let (rx, ry) = (env.recording_of(jx.job_id()).await, env.recording_of(jy.job_id()).await);
    let acts = activities_of(&env, "DSJ-Y").await;
    let h = &acts[0].summary["handover"];
    assert_eq!(h["from_device"], "DSJ-X");
    assert_eq!(h["from_recording"], rx);
    assert!(acts[0].summary["notification"].is_null(), "a continued activity needs no second notification");
    assert_eq!(acts[0].summary["resumptions"][0]["explanation"]["result"], "found", "the hand-over was explained");
    assert_eq!(env.live_findings(ry).await, vec!["device_handover"]);

    // the timeline, as a supervisor reads it
    let out = std::process::Command::new(recvault_tests::recvault_bin())
        .args(["timeline", "--device", "DSJ-Y"])
        .env_clear()
        .envs(env.settings.to_env())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("continues from device DSJ-X"), "{text}");
    assert!(text.contains("handed over") && text.contains("ok: speech"), "{text}");
    assert!(text.contains("R15.2 device_handover"), "{text}");

    // the other order: the continuing device docks first, the one that stopped later
    let (p, q) = (notified(&env, "p.mp4", 43), explained(&env, "q.mp4", 44));
    let worker = env.start_worker().await;
    let jq = env
        .submit_at(&q, "DSJ-Q", at(1000), at(4600), |w| {
            w.activity = Some(recvault_core::job::ActivityV1 {
                continues_from_device: Some("DSJ-P".into()),
                ..Default::default()
            });
        })
        .await;
    env.wait_for_job(jq.job_id(), WAIT).await;
    assert!(activities_of(&env, "DSJ-Q").await[0].summary["handover"]["from_recording"].is_null(), "not docked yet");
    let jp = env.submit_at(&p, "DSJ-P", at(975), at(4700), |_| {}).await;
    env.wait_for_job(jp.job_id(), WAIT).await;
    worker.stop().await;
    let rp = env.recording_of(jp.job_id()).await;
    assert_eq!(
        activities_of(&env, "DSJ-Q").await[0].summary["handover"]["from_recording"],
        rp,
        "linked once it arrived"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r11_1_and_r17_1_clock_offset_and_late_upload_through_the_queue() {
    let env = TestEnv::new().await;
    let files: Vec<PathBuf> = (0..4).map(|i| notified(&env, &format!("t{i}.mp4"), 50 + i)).collect();
    let worker = env.start_worker().await;
    // Friday 13 Feb 2026, 10:00: the last working day before the Spring Festival (Sat 14 is an
    // adjusted working day, then 15-23 off).
    let fri = DateTime::parse_from_rfc3339("2026-02-13T10:00:00+08:00").unwrap();
    let cases = [
        // (recorder clock ahead, docked after, extension, disputed, expected findings)
        (120, TimeDelta::hours(2), false, false, vec!["clock_offset"]),
        (0, TimeDelta::hours(30), false, false, vec!["late_upload"]),
        (0, TimeDelta::days(10), true, false, vec![]), // Tue 24 Feb: second working day after Fri 13
        (0, TimeDelta::hours(30), true, true, vec!["late_upload"]), // dispute: 24 h stands
    ];
    for (i, (ahead, docked_after, extension, disputed, expected)) in cases.into_iter().enumerate() {
        let docked = fri + docked_after;
        let job = env
            .submit_at(&files[i], &format!("DSJ-T{i}"), fri, docked, |w| {
                w.device_time = docked + TimeDelta::seconds(ahead);
                w.recorded_start = Some(fri + TimeDelta::seconds(ahead));
                w.activity = Some(recvault_core::job::ActivityV1 {
                    upload_extension_approved: extension,
                    disputed,
                    ..Default::default()
                });
            })
            .await;
        env.wait_for_job(job.job_id(), WAIT).await;
        let r = env.recording_of(job.job_id()).await;
        assert_eq!(env.live_findings(r).await, expected, "case {i}");
    }
    worker.stop().await;
    env.finish().await;
}

/// R13.1: an activity is judged again when a later upload of its shift gives the device's wearer
/// level. Alone, a voice is its activity's own reference and counts as the wearer; once two other
/// activities of the device show the wearer 10 dB louder, it lies more than 4 dB under the device's
/// level, is someone else's, and the notification is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r13_1_an_activity_is_judged_again_when_its_shift_gives_the_devices_wearer_level() {
    let env = TestEnv::new().await;
    let quiet = notified_at(&env, "x.mp4", 12.0, 31);
    let a = notified_at(&env, "a.mp4", 22.0, 32);
    let b = notified_at(&env, "b.mp4", 22.0, 33);
    let worker = env.start_worker().await;
    let jx = env.submit_at(&quiet, "DSJ-P1", at(7200), at(20_000), |_| {}).await;
    env.wait_for_job(jx.job_id(), WAIT).await;
    let rx = env.recording_of(jx.job_id()).await;
    assert_eq!(env.live_findings(rx).await, Vec::<String>::new(), "alone, its voice is its own reference");
    assert_eq!(references_of(&env, "DSJ-P1").await, vec!["own"]);
    // One other activity is too few to give the device's level: nothing changes.
    let ja = env.submit_at(&a, "DSJ-P1", at(0), at(20_000), |_| {}).await;
    env.wait_for_job(ja.job_id(), WAIT).await;
    assert_eq!(env.live_findings(rx).await, Vec::<String>::new());
    // The second does, and the earlier activity is judged again.
    let jb = env.submit_at(&b, "DSJ-P1", at(14_400), at(20_000), |_| {}).await;
    env.wait_for_job(jb.job_id(), WAIT).await;
    assert_eq!(env.live_findings(rx).await, vec!["notification_missing"]);
    assert_eq!(references_of(&env, "DSJ-P1").await, vec!["own", "device", "own"]);
    for j in [&ja, &jb] {
        assert_eq!(env.live_findings(env.recording_of(j.job_id()).await).await, Vec::<String>::new());
    }
    worker.stop().await;
    env.finish().await;
}

/// R13.1, R15.1: an activity grouped by the station's activity id can reach beyond the window
/// another recording's analysis loads; judging it again from the part loaded there would drop the
/// rest of its recordings from its row (R18.1: the activity's record must stay whole). Only the
/// recording's own activity and those grouped by time are stored again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_of_the_stations_id_reaching_beyond_the_window_is_not_stored_in_part() {
    let env = TestEnv::new().await;
    // One station activity over 30 hours: loud at its start, quiet at its end.
    let a0 = notified_at(&env, "a0.mp4", 22.0, 41);
    let a1 = notified_at(&env, "a1.mp4", 12.0, 42);
    // Another activity, 20 hours in: its window (12 h either side) holds a1 but not a0.
    let x = notified_at(&env, "x.mp4", 22.0, 43);
    let worker = env.start_worker().await;
    let long = |j: &mut recvault_core::job::UploadJobV1| {
        j.activity.get_or_insert_with(Default::default).activity_id = Some("ACT-LONG".into());
    };
    let mut ids = Vec::new();
    for (path, at_s) in [(&a0, 0), (&a1, 30 * 3600)] {
        let job = env.submit_at(path, "DSJ-P2", at(at_s), at(40 * 3600), long).await;
        env.wait_for_job(job.job_id(), WAIT).await;
        ids.push(env.recording_of(job.job_id()).await);
    }
    let before = activities_of(&env, "DSJ-P2").await;
    assert_eq!(before.len(), 1);
    let whole: Vec<i64> = before[0].recordings.iter().map(|r| r.id).collect();
    assert_eq!(whole, ids);
    let jx = env.submit_at(&x, "DSJ-P2", at(20 * 3600), at(40 * 3600), |_| {}).await;
    env.wait_for_job(jx.job_id(), WAIT).await;
    let after = activities_of(&env, "DSJ-P2").await;
    assert_eq!(after.len(), 2, "{after:?}");
    let long = after.iter().find(|a| a.activity_id.as_deref() == Some("ACT-LONG")).unwrap();
    assert_eq!(long.recordings.iter().map(|r| r.id).collect::<Vec<_>>(), ids, "the whole activity stays in its row");
    assert_eq!(long.summary, before[0].summary);
    worker.stop().await;
    env.finish().await;
}
