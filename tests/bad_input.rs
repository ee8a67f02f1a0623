//! Bad input gets a clear reason and nothing is lost (R2.1): rejected bytes are quarantined with
//! permanent retention and a row, and the job is dead-lettered with the reason. Invalid jobs are
//! dead-lettered without touching anything.

#![allow(clippy::unwrap_used)]

use recvault_core::hash::HashAlgorithm;
use recvault_core::job::ClaimedHashV1;
use recvault_core::{Blake3Hash, UploadJob, keys};
use recvault_fixtures::{Layout, RecordingSpec};
use recvault_queue::headers;
use recvault_tests::{TestEnv, eventually};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

/// Replaces the payload of the top-level `moov` box with 0xff bytes (size kept).
fn corrupt_moov(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if &bytes[at + 4..at + 8] == b"moov" {
            bytes[at + 8..at + size].fill(0xff);
            return bytes;
        }
        at += size;
    }
    panic!("no moov in {}", path.display());
}

async fn stage_and_post(
    env: &TestEnv,
    path: &Path,
    device: &str,
    mutate: impl FnOnce(&mut recvault_core::job::UploadJobV1),
) -> UploadJob {
    let mut wire = env.station.prepare(path, &TestEnv::file_info(device)).await.unwrap();
    mutate(&mut wire);
    let job = UploadJob::new(wire).unwrap();
    env.station.stage(path, &job).await.unwrap();
    env.station.post_raw(job.job_id(), &job.to_json()).await.unwrap();
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_rejected_bytes_are_quarantined_recorded_and_dead_lettered_with_the_reason() {
    let env = TestEnv::new().await;
    let (good, _) = env.fixture("good.mp4", &RecordingSpec { seed: 31, ..RecordingSpec::default() });
    let (faststart, _) = env
        .fixture("faststart.mp4", &RecordingSpec { layout: Layout::MoovAtStart, seed: 32, ..RecordingSpec::default() });
    let random: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 2000]].concat();
    let corrupted = corrupt_moov(&faststart);

    let mut expected: Vec<(UploadJob, Vec<u8>, &str)> = Vec::new();
    // hash mismatch: the station read other bytes than the ones staged
    let mut info = TestEnv::file_info("DSJ-0100");
    info.claim_override = Some(ClaimedHashV1 { algorithm: HashAlgorithm::Sha256, hex: "00".repeat(32) });
    let job = env.station.submit(&good, &info).await.unwrap();
    expected.push((job, std::fs::read(&good).unwrap(), "hash_mismatch"));
    // size mismatch
    let (other, _) = env.fixture("other.mp4", &RecordingSpec { seed: 33, ..RecordingSpec::default() });
    let job = stage_and_post(&env, &other, "DSJ-0101", |w| w.size_bytes += 1).await;
    expected.push((job, std::fs::read(&other).unwrap(), "size_mismatch"));
    for (name, bytes, code) in [
        ("empty.mp4", Vec::new(), "empty_file"),
        ("random.mp4", random, "not_mp4"),
        ("photo.mp4", png, "not_mp4"),
        ("corrupt_moov.mp4", corrupted, "unreadable_container"),
    ] {
        let path = env.raw_file(name, &bytes);
        let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0102")).await.unwrap();
        expected.push((job, bytes, code));
    }

    let worker = env.start_worker().await;
    for (job, _, code) in &expected {
        assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "quarantined", "{code}");
    }
    let dead = env.take_dead_letters(expected.len(), WAIT).await;
    worker.stop().await;

    let bucket = &env.settings.s3.archive_bucket;
    for (job, bytes, code) in &expected {
        // the row with its reason
        let q = env.db.quarantined(1, Some(job.job_id())).await.unwrap();
        assert_eq!(q.len(), 1, "{code}");
        assert_eq!(q[0].reason_code, *code);
        assert!(!q[0].reason.is_empty());
        // the bytes, intact, in quarantine with permanent retention
        let b3 = Blake3Hash(*blake3::hash(bytes).as_bytes());
        assert_eq!(q[0].key, keys::quarantine_key(&env.settings.s3.quarantine_prefix, &b3), "{code}");
        let head = env.store.head(bucket, &q[0].key).await.unwrap().unwrap_or_else(|| panic!("{code}: bytes kept"));
        assert_eq!(head.size, bytes.len() as u64);
        assert_eq!(head.metadata.get("blake3"), Some(&b3.to_hex()));
        assert!(head.legal_hold, "{code}: permanent");
        assert_eq!(env.store.retention_tag(bucket, &q[0].key).await.unwrap().as_deref(), Some("permanent"));
        // the message, dead-lettered with the reason
        let msg = dead.iter().find(|m| m.body == job.to_json()).unwrap_or_else(|| panic!("{code}: dead letter"));
        assert_eq!(msg.header(headers::REASON).as_deref(), Some(*code));
        assert!(msg.header(headers::DETAIL).is_some_and(|d| !d.is_empty()));
        // nothing archived as a recording, staging cleared (the bytes are safe in quarantine)
        assert!(env.db.recordings(1, Some(job.job_id())).await.unwrap().is_empty());
        // deleted after the dead letter is published, so waited for
        eventually(code, WAIT, || async { !env.staged_exists(&job.source().key).await }).await;
    }
    assert_eq!(env.work_queue_depth().await, 0);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_jobs_are_dead_lettered_with_the_reason_and_touch_nothing() {
    let env = TestEnv::new().await;
    let (path, _) = env.fixture("fine.mp4", &RecordingSpec { seed: 34, ..RecordingSpec::default() });
    let wire = env.station.prepare(&path, &TestEnv::file_info("DSJ-0200")).await.unwrap();
    let job = UploadJob::new(wire.clone()).unwrap();
    env.station.stage(&path, &job).await.unwrap();

    let mut v2 = serde_json::to_value(&wire).unwrap();
    v2["schema_version"] = 2.into();
    let mut bad_bucket = serde_json::to_value(&wire).unwrap();
    bad_bucket["source"]["bucket"] = "Not_A_Bucket".into();
    let mut typo = serde_json::to_value(&wire).unwrap();
    typo["activty"] = serde_json::json!({"disputed": true});
    let bodies: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "malformed_job"),
        (serde_json::to_vec(&v2).unwrap(), "unsupported_schema_version"),
        (serde_json::to_vec(&bad_bucket).unwrap(), "invalid_job"),
        (serde_json::to_vec(&typo).unwrap(), "malformed_job"),
    ];
    for (i, (body, _)) in bodies.iter().enumerate() {
        env.station.post_raw(&format!("bad-{i}"), body).await.unwrap();
    }
    // a valid job whose staged object does not exist
    let mut missing = wire.clone();
    missing.job_id = format!("{}-missing", wire.job_id);
    missing.source.key = format!("{}/nowhere/none.mp4", wire.station_id);
    let missing = UploadJob::new(missing).unwrap();
    env.station.post_raw(missing.job_id(), &missing.to_json()).await.unwrap();

    let worker = env.start_worker().await;
    let dead = env.take_dead_letters(bodies.len() + 1, WAIT).await;
    assert_eq!(worker.outcome_count("invalid"), bodies.len() as u64);
    assert_eq!(worker.outcome_count("dead_lettered"), 1);
    worker.stop().await;
    for (body, code) in &bodies {
        let msg = dead.iter().find(|m| &m.body == body).unwrap();
        assert_eq!(msg.header(headers::REASON).as_deref(), Some(*code));
    }
    let msg = dead.iter().find(|m| m.body == missing.to_json()).unwrap();
    assert_eq!(msg.header(headers::REASON).as_deref(), Some("staged_object_missing"));
    // nothing recorded, nothing archived, and the staged bytes of the unsupported job are still there
    assert_eq!(env.db.completed_jobs().await.unwrap(), 0);
    assert!(env.staged_exists(&job.source().key).await);
    assert_eq!(env.work_queue_depth().await, 0);
    env.finish().await;
}
