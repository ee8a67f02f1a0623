//! Ingest through the queue exactly as a docking station posts jobs: happy path, retention,
//! duplicates, damaged-but-kept recordings.

#![allow(clippy::unwrap_used)]

use recvault_core::job::ActivityV1;
use recvault_core::{Blake3Hash, EventType, keys};
use recvault_fixtures::{Damage, Layout, RecordingSpec, SpeechSpec};
use recvault_tests::{TestEnv, eventually};
use sqlx::Row;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_archived_with_tags_hashes_lock_and_rows_and_staging_is_cleared() {
    let env = TestEnv::new().await;
    let (path, truth) = env.fixture(
        "20261127_101530_0001.MP4",
        &RecordingSpec {
            duration: Duration::from_secs(9),
            speech: vec![SpeechSpec::notification(Duration::from_millis(500))],
            ..RecordingSpec::default()
        },
    );
    let mut info = TestEnv::file_info("DSJ-0001");
    info.device_clock_ahead = chrono::TimeDelta::seconds(-90);
    info.activity = Some(ActivityV1 {
        event_type: Some(EventType::InspectionRoutine),
        party: Some("鼓楼区某餐馆".into()),
        location: Some("五四路1号".into()),
        ..ActivityV1::default()
    });
    let job = env.station.submit(&path, &info).await.unwrap();
    let worker = env.start_worker().await;
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    worker.stop().await;

    // the object: content-addressed key, hashes in metadata, R19.1 tag, compliance lock
    let bytes = std::fs::read(&path).unwrap();
    let b3 = Blake3Hash(*blake3::hash(&bytes).as_bytes());
    let key = keys::archive_key(&b3);
    let head = env.store.head(&env.settings.s3.archive_bucket, &key).await.unwrap().expect("archived object");
    assert_eq!(head.size, truth.size_bytes);
    assert_eq!(head.metadata.get("blake3"), Some(&b3.to_hex()));
    assert_eq!(head.metadata.get("sha256").map(String::len), Some(64));
    assert_eq!(head.metadata.get("job-id").map(String::as_str), Some(job.job_id()));
    assert_eq!(env.store.retention_tag(&env.settings.s3.archive_bucket, &key).await.unwrap().as_deref(), Some("2y"));
    assert!(env.store.is_locked(&head), "compliance lock expected: {head:?}");
    let until = head.lock_until.unwrap();
    let days = (until - chrono::Utc::now()).num_days();
    assert!((728..=730).contains(&days), "R19.1 two years of lock, got {days} days");
    assert!(!head.legal_hold);

    // the rows: one recording with its probe results, indexed metadata and the clock offset
    let rows = env.db.recordings(10, Some(job.job_id())).await.unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.blake3, b3.to_hex());
    assert_eq!(r.archive_key, key);
    assert_eq!(r.status, "ok");
    assert_eq!(r.retention_class, "two_years");
    // what Postgres records of the object's protection is what the store reports
    assert_eq!(r.archive_version_id, head.version_id);
    assert!(r.archive_version_id.is_some(), "versioned archive bucket");
    assert_eq!(r.lock_until, head.lock_until);
    assert_eq!(r.legal_hold, head.legal_hold);
    assert_eq!(r.clock_offset_ms, 90_000, "R11.1 station minus device");
    // R11.1: the recorder was 90 s behind; the only finding, and the times are corrected
    let kinds: Vec<&str> = r.findings.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, vec!["clock_offset"], "{:?}", r.findings);
    assert_eq!(r.findings[0].evidence.0["offset_ms"], 90_000);
    let declared = truth.declared_duration.unwrap().as_millis() as i64;
    assert!((r.duration_ms - declared).abs() <= 100, "{} vs {declared}", r.duration_ms);
    let tracks =
        sqlx::query("select kind, codec, packets from recording_tracks where recording_id = $1 order by track_index")
            .bind(r.id)
            .fetch_all(env.db.pool())
            .await
            .unwrap();
    let kinds: Vec<(String, String)> = tracks.iter().map(|t| (t.get("kind"), t.get("codec"))).collect();
    assert!(
        kinds.contains(&("video".into(), "h264".into())) && kinds.contains(&("audio".into(), "aac".into())),
        "{kinds:?}"
    );
    let video_packets: i64 = tracks.iter().find(|t| t.get::<String, _>("kind") == "video").unwrap().get("packets");
    assert_eq!(video_packets as u64, truth.video_frames);
    let party: String = sqlx::query_scalar("select party from recordings where id = $1")
        .bind(r.id)
        .fetch_one(env.db.pool())
        .await
        .unwrap();
    assert_eq!(party, "鼓楼区某餐馆");

    // the message was acknowledged and then the staging object deleted (after the commit that
    // wait_for_job sees, so waited for)
    eventually("the staged object deleted after the ack", WAIT, || async {
        !env.staged_exists(&job.source().key).await
    })
    .await;
    assert_eq!(env.work_queue_depth().await, 0);
    assert!(env.take_all(&env.broker.topology().dead_queue).await.is_empty());
    let attempts = env.db.attempts(job.job_id()).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome.as_deref(), Some("archived"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_1_a_disputed_activity_is_kept_permanently_under_legal_hold() {
    let env = TestEnv::new().await;
    let (path, _) = env.fixture("disputed.mp4", &RecordingSpec { seed: 11, ..RecordingSpec::default() });
    let mut info = TestEnv::file_info("DSJ-0002");
    info.activity =
        Some(ActivityV1 { event_type: Some(EventType::InspectionRoutine), disputed: true, ..ActivityV1::default() });
    let job = env.station.submit(&path, &info).await.unwrap();
    let worker = env.start_worker().await;
    env.wait_for_job(job.job_id(), WAIT).await;
    worker.stop().await;
    let r = &env.db.recordings(1, Some(job.job_id())).await.unwrap()[0];
    assert_eq!(r.retention_class, "permanent");
    assert!(r.retention_basis.starts_with("R19.1(3)"));
    let head = env.store.head(&env.settings.s3.archive_bucket, &r.archive_key).await.unwrap().unwrap();
    assert!(head.legal_hold);
    assert!(r.legal_hold, "Postgres records the hold the store has");
    assert_eq!(r.lock_until, head.lock_until);
    assert_eq!(
        env.store.retention_tag(&env.settings.s3.archive_bucket, &r.archive_key).await.unwrap().as_deref(),
        Some("permanent")
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_job_delivered_twice_yields_one_recording() {
    let env = TestEnv::new().await;
    let (path, _) = env.fixture("twice.mp4", &RecordingSpec { seed: 12, ..RecordingSpec::default() });
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0003")).await.unwrap();
    // a station that crashed after publishing re-posts the same job
    env.station.post_raw(job.job_id(), &job.to_json()).await.unwrap();
    let worker = env.start_worker().await;
    env.wait_for_job(job.job_id(), WAIT).await;
    eventually("both deliveries settled", WAIT, || async {
        worker.outcome_count("archived") + worker.outcome_count("duplicate_delivery") == 2
    })
    .await;
    assert_eq!(worker.outcome_count("archived"), 1);
    assert_eq!(worker.outcome_count("duplicate_delivery"), 1);
    worker.stop().await;
    let n: i64 = sqlx::query_scalar("select count(*) from recordings").fetch_one(env.db.pool()).await.unwrap();
    assert_eq!(n, 1);
    let jobs: i64 = sqlx::query_scalar("select count(*) from ingest_jobs").fetch_one(env.db.pool()).await.unwrap();
    assert_eq!(jobs, 1);
    assert_eq!(env.work_queue_depth().await, 0);
    assert!(env.take_all(&env.broker.topology().dead_queue).await.is_empty());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_1_the_same_bytes_from_a_disputed_job_raise_retention_never_lower_it() {
    let env = TestEnv::new().await;
    let (path, _) = env.fixture("shared.mp4", &RecordingSpec { seed: 13, ..RecordingSpec::default() });
    let plain = env.station.submit(&path, &TestEnv::file_info("DSJ-0004")).await.unwrap();
    let worker = env.start_worker().await;
    env.wait_for_job(plain.job_id(), WAIT).await;
    // the same file offloaded again at another station, this time tagged as disputed
    let mut info = TestEnv::file_info("DSJ-0005");
    info.activity = Some(ActivityV1 { disputed: true, ..ActivityV1::default() });
    let disputed = env.station.submit(&path, &info).await.unwrap();
    assert_eq!(env.wait_for_job(disputed.job_id(), WAIT).await, "duplicate_content");
    // and a third time without the flag: retention must not drop back
    let again = env.station.submit(&path, &TestEnv::file_info("DSJ-0006")).await.unwrap();
    assert_eq!(env.wait_for_job(again.job_id(), WAIT).await, "duplicate_content");
    worker.stop().await;

    let rows = env.db.recordings(10, None).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].retention_class, "permanent");
    assert_eq!(rows[0].jobs, 3);
    let events: Vec<(String, String)> =
        sqlx::query_as("select from_class, to_class from retention_events").fetch_all(env.db.pool()).await.unwrap();
    assert_eq!(events, vec![("two_years".to_string(), "permanent".to_string())]);
    let bucket = &env.settings.s3.archive_bucket;
    assert_eq!(env.store.retention_tag(bucket, &rows[0].archive_key).await.unwrap().as_deref(), Some("permanent"));
    let head = env.store.head(bucket, &rows[0].archive_key).await.unwrap().unwrap();
    assert!(head.legal_hold);
    assert!(rows[0].legal_hold, "Postgres records the raised hold");
    assert_eq!(rows[0].lock_until, head.lock_until, "the lock runs from the first archiving");

    // R19.1 and R21.1 hold in the database for every client, not only in recvault's code: even
    // the owner role, which has every privilege, meets the triggers (the service role has not even
    // the privilege: tests/database.rs)
    let pool = &env.owner;
    let id = rows[0].id;
    for (sql, rule) in [
        ("update recordings set retention_class = 'two_years' where id = $1", "R19.1"),
        ("update recordings set legal_hold = false where id = $1", "R19.1"),
        ("update recordings set archive_key = 'elsewhere' where id = $1", "R21.1"),
        ("delete from recordings where id = $1", "R21.1"),
    ] {
        let err = sqlx::query(sql).bind(id).execute(pool).await.unwrap_err().to_string();
        assert!(err.contains(rule), "{sql}: {err}");
    }
    sqlx::query("update recordings set location = 'corrected address' where id = $1")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_truncated_unfinalized_and_interrupted_files_are_archived_flagged() {
    let env = TestEnv::new().await;
    let cases = [
        (
            "cut.mp4",
            RecordingSpec {
                layout: Layout::MoovAtStart,
                damage: Damage::TruncateAtFraction(0.6),
                seed: 21,
                ..RecordingSpec::default()
            },
            "flagged",
            "truncated",
        ),
        (
            "cut_fragmented.mp4",
            RecordingSpec {
                layout: Layout::Fragmented { fragment: Duration::from_secs(1) },
                damage: Damage::TruncateAtFraction(0.5),
                seed: 22,
                ..RecordingSpec::default()
            },
            "flagged",
            "truncated",
        ),
        (
            "killed.mp4",
            RecordingSpec {
                damage: Damage::KilledMidWrite { after: Duration::from_millis(2500) },
                seed: 23,
                ..RecordingSpec::default()
            },
            "flagged",
            "unfinalized",
        ),
        (
            "paused.mp4",
            RecordingSpec {
                gaps: vec![recvault_fixtures::GapSpec { at: Duration::from_secs(2), length: Duration::from_secs(5) }],
                seed: 24,
                ..RecordingSpec::default()
            },
            "ok",
            "timestamp_gap",
        ),
    ];
    let mut jobs = Vec::new();
    for (name, spec, status, kind) in &cases {
        let (path, truth) = env.fixture(name, spec);
        let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0007")).await.unwrap();
        jobs.push((job, truth, *status, *kind));
    }
    let worker = env.start_worker().await;
    for (job, truth, status, kind) in &jobs {
        assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived", "{kind}: kept as evidence, not quarantined");
        let r = &env.db.recordings(1, Some(job.job_id())).await.unwrap()[0];
        assert_eq!(&r.status, status, "{kind}");
        let f =
            r.findings.iter().find(|f| f.kind == *kind).unwrap_or_else(|| panic!("{kind} finding in {:?}", r.findings));
        assert!(f.requirement.starts_with("R"));
        match *kind {
            "truncated" => {
                let declared = r.declared_duration_ms.expect("declared duration");
                assert!(
                    r.duration_ms > 0 && r.duration_ms + 1000 < declared,
                    "readable {} of {declared}",
                    r.duration_ms
                );
                assert!(truth.truncated);
            }
            "unfinalized" => assert_eq!(r.duration_ms, 0),
            _ => {
                assert_eq!(
                    f.evidence.0["at_ms"].as_i64().map(|v| (v - 2000).abs() < 100),
                    Some(true),
                    "{:?}",
                    f.evidence
                );
                assert_eq!(
                    f.evidence.0["length_ms"].as_i64().map(|v| (v - 5000).abs() < 100),
                    Some(true),
                    "{:?}",
                    f.evidence
                );
            }
        }
        // deleted after the commit and the ack, so waited for
        eventually("the staged object deleted", WAIT, || async { !env.staged_exists(&job.source().key).await }).await;
    }
    assert_eq!(worker.outcome_count("flagged"), 3);
    worker.stop().await;
    env.finish().await;
}
