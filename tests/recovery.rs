//! Recovery of unfinalized recordings by the worker (R2.1), on the real services: a recording the
//! recorder never finalized is archived as it is (flagged), recovered into a separate, locked,
//! derived object once a finished recording of the same device is archived (before or after it),
//! and the speech checks of its activity then run on the recovered media and say so. The original
//! is never changed, and a recovered row cannot be.

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, FixedOffset, TimeDelta};
use recvault_fixtures::spec::{Damage, Layout};
use recvault_fixtures::{AudioSpec, RecordingSpec, SpeechSpec};
use recvault_tests::{TestEnv, eventually};
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

fn t0() -> DateTime<FixedOffset> {
    // Tuesday 3 March 2026, 10:00 in Fuzhou
    DateTime::parse_from_rfc3339("2026-03-03T10:00:00+08:00").unwrap()
}

/// One device's recordings: small video, 16 kHz audio, the R13.1 notification at 0.5 s.
fn recording(env: &TestEnv, name: &str, seed: u64, damage: Damage) -> PathBuf {
    let spec = spec(seed, damage);
    env.fixture(name, &spec).0
}

fn spec(seed: u64, damage: Damage) -> RecordingSpec {
    RecordingSpec {
        duration: Duration::from_secs(12),
        video: Some(recvault_tests::tiny_video()),
        audio: Some(AudioSpec::default()),
        speech: vec![SpeechSpec::notification(Duration::from_millis(500))],
        damage,
        seed,
        ..RecordingSpec::default()
    }
}

async fn archive(env: &TestEnv, path: &Path, device: &str, start: DateTime<FixedOffset>) -> i64 {
    let job = env.submit_at(path, device, start, start + TimeDelta::minutes(30), |_| {}).await;
    let state = env.wait_for_job(job.job_id(), WAIT).await;
    assert_eq!(state, "archived", "{}", path.display());
    env.recording_of(job.job_id()).await
}

async fn state_of(env: &TestEnv, recording_id: i64) -> Option<String> {
    env.db.recovery(recording_id).await.unwrap().map(|r| r.state)
}

async fn recorded_object(env: &TestEnv, recording_id: i64) -> (String, Option<String>, Vec<u8>) {
    sqlx::query_as("select archive_key, archive_version_id, blake3 from recordings where id = $1")
        .bind(recording_id)
        .fetch_one(env.db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinalized_recording_is_recovered_from_its_device_s_reference() {
    let env = TestEnv::with(|s| s.worker.recovery_poll_secs = 1).await;
    let worker = env.start_worker().await;
    let killed = || Damage::KilledMidWrite { after: Duration::from_secs(9) };

    // 1. The unfinalized recording arrives first: archived as it is, flagged, and parked until
    //    its device has a finished recording.
    let device = "DSJ-RECOVER-1";
    let damaged = recording(&env, "killed.mp4", 41, killed());
    let original = archive(&env, &damaged, device, t0()).await;
    assert!(env.live_findings(original).await.contains(&"unfinalized".to_string()));
    eventually("the recovery waits for a reference", WAIT, || async {
        state_of(&env, original).await.as_deref() == Some("awaiting_reference")
    })
    .await;
    let before = recorded_object(&env, original).await;
    // Nothing can be heard in a file without an index: R13.1 cannot be checked yet.
    assert_eq!(env.live_findings(original).await, vec!["unfinalized".to_string()]);

    // 2. A finished recording of the same device (another activity, an hour later) arrives.
    let reference =
        archive(&env, &recording(&env, "reference.mp4", 42, Damage::None), device, t0() + TimeDelta::hours(1)).await;
    eventually("the recording is recovered", WAIT, || async {
        state_of(&env, original).await.as_deref() == Some("recovered")
    })
    .await;
    let row = env.db.recovery(original).await.unwrap().unwrap();
    assert_eq!(row.reference_id, Some(reference));
    let recovery = row.recovery.clone().unwrap();
    assert!(recovery["placed_fraction"].as_f64().unwrap() > 0.95, "{recovery}");
    assert_eq!(recovery["tracks"].as_array().unwrap().len(), 2, "video and audio: {recovery}");

    // The derived object: its own key and hashes, the bytes recorded, locked and held like the original.
    let s3 = &env.settings.s3;
    let key = row.key.clone().unwrap();
    assert!(key.starts_with("recovered/"), "{key}");
    let (size, blake3) = env.store.hash_object(&s3.archive_bucket, &key, row.version_id.as_deref()).await.unwrap();
    assert_eq!(blake3.as_bytes().as_slice(), row.blake3.as_deref().unwrap());
    assert_eq!(i64::try_from(size).unwrap(), row.size_bytes.unwrap());
    assert_ne!(row.blake3.as_deref().unwrap(), before.2.as_slice(), "a new object, not the original");
    let head = env.store.head_version(&s3.archive_bucket, &key, row.version_id.as_deref()).await.unwrap().unwrap();
    let (class, hold): (String, bool) =
        sqlx::query_as("select retention_class, legal_hold from recordings where id = $1")
            .bind(original)
            .fetch_one(env.db.pool())
            .await
            .unwrap();
    assert_eq!(head.lock_mode.as_deref(), Some("COMPLIANCE"), "locked like its original ({class})");
    assert_eq!(head.legal_hold, hold, "held like its original ({class})");
    assert_eq!((row.lock_mode.as_deref(), row.legal_hold), (Some("COMPLIANCE"), hold));
    let tag = env.store.retention_tag_of(&s3.archive_bucket, &key, row.version_id.as_deref()).await.unwrap();
    let original_tag = env.store.retention_tag_of(&s3.archive_bucket, &before.0, before.1.as_deref()).await.unwrap();
    assert_eq!(tag, original_tag, "kept as long as its original");

    // The original is untouched: same key, version and bytes.
    assert_eq!(recorded_object(&env, original).await, before);
    let (_, original_blake3) = env.store.hash_object(&s3.archive_bucket, &before.0, before.1.as_deref()).await.unwrap();
    assert_eq!(original_blake3.as_bytes().as_slice(), before.2.as_slice());

    // The recovered media has the speech the original could not show; the finding says what was done.
    let speech = &row.report.as_ref().unwrap()["audio"]["speech"];
    assert!(!speech.as_array().unwrap().is_empty(), "speech found in the recovered media: {speech}");
    let findings = env.live_findings(original).await;
    assert!(findings.contains(&"recovered".to_string()), "{findings:?}");
    assert!(findings.contains(&"unfinalized".to_string()), "the original stays flagged: {findings:?}");
    // R13.1 on the recovered media: the notification at 0.5 s is heard.
    assert!(!findings.contains(&"notification_missing".to_string()), "{findings:?}");
    let summary: String =
        sqlx::query_scalar("select summary from findings where recording_id = $1 and kind = 'recovered'")
            .bind(original)
            .fetch_one(env.db.pool())
            .await
            .unwrap();
    assert!(summary.contains(&format!("recording {reference} as reference")), "{summary}");

    // A case system reading the recording over the API sees its recovery.
    let api = env.start_api().await;
    let token = api.token(&[recvault_core::access::Role::CaseSystem], "zhidui");
    let answer = api.get(&format!("/v1/recordings/{original}"), &token).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let view = &answer.body["recovery"];
    assert_eq!(view["state"], "recovered");
    assert_eq!(view["reference_id"], reference);
    assert_eq!(view["sha256"].as_str(), Some(hex::encode(row.sha256.as_deref().unwrap()).as_str()));
    assert_eq!(view["key"].as_str(), Some(key.as_str()));
    let answer = api.get(&format!("/v1/recordings/{reference}"), &token).await;
    assert!(answer.body["recovery"].is_null(), "a finished recording has no recovery");
    api.stop().await;

    // R19.1: raising the original's class raises its recovered file with it; reconcile (R21.1)
    // finds every row's object, the recovered one included, as recorded.
    let raise = recvault_evidence::RetentionRaise {
        recording_id: original,
        class: recvault_core::RetentionClass::Permanent,
        basis: "kept for an appeal",
        actor: "test",
    };
    recvault_evidence::raise_retention(&env.store, &env.db, &raise).await.unwrap();
    let head = env.store.head_version(&s3.archive_bucket, &key, row.version_id.as_deref()).await.unwrap().unwrap();
    assert!(head.legal_hold, "the recovered file is held like its original now is");
    let tag = env.store.retention_tag_of(&s3.archive_bucket, &key, row.version_id.as_deref()).await.unwrap();
    assert_eq!(tag.as_deref(), Some("permanent"));
    assert!(env.db.recovery(original).await.unwrap().unwrap().legal_hold);
    let report =
        recvault_worker::reconcile::reconcile(&env.store, &env.db, &env.settings.bundles.prefix, false).await.unwrap();
    assert!(report.drift.is_empty(), "{:?}", report.drift);
    assert!(report.rows >= 3, "the recordings and the recovered file: {}", report.rows);

    // 3. A reference already archived: the next unfinalized recording of the device is recovered
    //    without waiting. Its officer said nothing: on the recovered media the R13.1 check runs,
    //    finds no notification, and the finding says it rests on recovered media.
    let silent = env.fixture("killed-silent.mp4", &RecordingSpec { speech: Vec::new(), ..spec(43, killed()) }).0;
    let second = archive(&env, &silent, device, t0() + TimeDelta::hours(2)).await;
    eventually("the second recording is recovered", WAIT, || async {
        state_of(&env, second).await.as_deref() == Some("recovered")
    })
    .await;
    let (kind, summary, evidence): (String, String, serde_json::Value) = sqlx::query_as(
        "select kind, summary, evidence from findings where recording_id = $1 and kind = 'notification_missing' and withdrawn_at is null",
    )
    .bind(second)
    .fetch_one(env.db.pool())
    .await
    .unwrap();
    assert!(summary.contains(&format!("on the recovered media of recording {second}")), "{kind}: {summary}");
    assert_eq!(evidence["recovered_media"], serde_json::json!([second]));

    // 4. A recovered row is final, even for the service role: no change, no delete.
    let changed = sqlx::query("update recoveries set key = 'recovered/other.mp4' where recording_id = $1")
        .bind(original)
        .execute(env.db.pool())
        .await;
    assert!(changed.is_err(), "a recovered file's record cannot be changed");
    let deleted =
        sqlx::query("delete from recoveries where recording_id = $1").bind(original).execute(env.db.pool()).await;
    assert!(deleted.is_err(), "nor deleted");
    let recovered = worker.metrics.recoveries.with_label_values(&["recovered"]).get();
    assert!(recovered >= 2, "recvault_recoveries_total{{outcome=\"recovered\"}} = {recovered}");

    worker.stop().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_of_another_device_or_unit_or_a_fragmented_one_is_never_used() {
    let env = TestEnv::with(|s| s.worker.recovery_poll_secs = 1).await;
    let worker = env.start_worker().await;
    let damaged = recording(&env, "killed.mp4", 51, Damage::KilledMidWrite { after: Duration::from_secs(6) });
    let original = archive(&env, &damaged, "DSJ-RECOVER-A", t0()).await;
    // a finished recording, but of another device
    archive(&env, &recording(&env, "other.mp4", 52, Damage::None), "DSJ-RECOVER-B", t0()).await;
    // a finished recording of this device, but delivered for another unit
    let foreign = recording(&env, "foreign.mp4", 54, Damage::None);
    let job = env
        .submit_at(&foreign, "DSJ-RECOVER-A", t0() + TimeDelta::hours(2), t0() + TimeDelta::hours(3), |w| {
            w.unit = "another-unit".into();
        })
        .await;
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    // a finished recording of this device, but fragmented: its samples are not in its sample tables
    let fragmented =
        RecordingSpec { layout: Layout::Fragmented { fragment: Duration::from_secs(1) }, ..spec(53, Damage::None) };
    let fragmented = env.fixture("fragmented.mp4", &fragmented).0;
    archive(&env, &fragmented, "DSJ-RECOVER-A", t0() + TimeDelta::hours(1)).await;
    eventually("the recovery waits for a reference", WAIT, || async {
        state_of(&env, original).await.as_deref() == Some("awaiting_reference")
    })
    .await;
    // several polls later it still waits, and nothing was written under recovered/
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(state_of(&env, original).await.as_deref(), Some("awaiting_reference"));
    let derived = env.store.list_versions(&env.settings.s3.archive_bucket, "recovered/").await.unwrap();
    assert!(derived.is_empty(), "{derived:?}");
    worker.stop().await;
    env.finish().await;
}
