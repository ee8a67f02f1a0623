//! Bounded chaos (R2.1): valid and invalid jobs, two worker processes, and SIGKILLs at random
//! moments. At the end every job is exactly one of archived, quarantined or dead-lettered with a
//! reason; one content hash has one archived version; the archive and Postgres agree (reconcile
//! finds no drift); and staging holds nothing but the bytes of dead-lettered jobs.
//!
//! The kills are random but seeded (`RECVAULT_CHAOS_SEED`, printed), so a failing run can be
//! repeated. At most `KILLS` workers are killed, fewer than the delivery limit, so no job can be
//! dead-lettered for crashing workers: the end state is the same whatever the timing.

#![allow(clippy::unwrap_used)]

use rand::{Rng, SeedableRng};
use recvault_core::{Blake3Hash, UploadJob, keys};
use recvault_fixtures::RecordingSpec;
use recvault_queue::headers;
use recvault_tests::{TestEnv, spawn_worker_process};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

const KILLS: usize = 8;
const WAIT: Duration = Duration::from_secs(180);

fn spawn(settings: &recvault_config::Settings, n: usize) -> tokio::process::Child {
    let mut s = settings.clone();
    s.worker.id = Some(format!("chaos-{n}"));
    spawn_worker_process(&s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_jobs_survive_workers_killed_at_random_moments() {
    let seed: u64 = std::env::var("RECVAULT_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("chaos seed {seed} (RECVAULT_CHAOS_SEED={seed} repeats this run)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let env = TestEnv::with(|s| {
        s.amqp.delivery_limit = 20;
        s.worker.concurrency = 2;
        s.worker.shutdown_grace_secs = 5;
    })
    .await;

    // 6 distinct recordings, one of them delivered twice from two devices; 2 files that are not
    // recordings; 1 malformed job; 1 job whose staged bytes are gone.
    let mut expected: HashMap<String, &str> = HashMap::new();
    let mut jobs: Vec<UploadJob> = Vec::new();
    let mut contents: HashSet<String> = HashSet::new();
    for i in 0..6u64 {
        let spec = RecordingSpec { duration: Duration::from_secs(3), seed: 900 + i, ..RecordingSpec::default() };
        let (path, _) = env.fixture(&format!("c{i}.mp4"), &spec);
        let b3 = Blake3Hash(*blake3::hash(&std::fs::read(&path).unwrap()).as_bytes());
        contents.insert(keys::archive_key(&b3));
        let devices = if i == 0 { vec!["DSJ-9000", "DSJ-9001"] } else { vec!["DSJ-9002"] };
        for device in devices {
            let job = UploadJob::new(env.station.prepare(&path, &TestEnv::file_info(device)).await.unwrap()).unwrap();
            env.station.stage(&path, &job).await.unwrap();
            // of the pair, whichever commits first archives, the other links (duplicate content)
            expected.insert(job.job_id().into(), "archived_or_duplicate");
            jobs.push(job);
        }
    }
    for i in 0..2u8 {
        let path = env.raw_file(&format!("junk{i}.mp4"), &vec![i; 20_000 + usize::from(i)]);
        let job = UploadJob::new(env.station.prepare(&path, &TestEnv::file_info("DSJ-9003")).await.unwrap()).unwrap();
        env.station.stage(&path, &job).await.unwrap();
        expected.insert(job.job_id().into(), "quarantined");
        jobs.push(job);
    }
    let (gone_path, _) = env.fixture("gone.mp4", &RecordingSpec { seed: 950, ..RecordingSpec::default() });
    let gone = UploadJob::new(env.station.prepare(&gone_path, &TestEnv::file_info("DSJ-9004")).await.unwrap()).unwrap();
    expected.insert(gone.job_id().into(), "dead:staged_object_missing");

    let mut workers = vec![spawn(&env.settings, 0), spawn(&env.settings, 1)];
    for job in &jobs {
        env.station.post(job).await.unwrap();
    }
    env.station.post(&gone).await.unwrap();
    env.station.post_raw("malformed-1", b"{\"schema_version\": 1, \"job_id\": ").await.unwrap();

    let all_done = || async {
        let completed = env.db.completed_jobs().await.unwrap();
        let dead = env.broker.depth(&env.broker.topology().dead_queue).await.unwrap().0;
        // 2 quarantined + 1 missing + 1 malformed are dead-lettered (at least once each)
        completed >= jobs.len() as i64 && dead >= 4
    };
    let mut kills = 0;
    let mut spawned = 2;
    while kills < KILLS && !all_done().await {
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..900))).await;
        let victim = rng.random_range(0..workers.len());
        workers[victim].kill().await.unwrap();
        workers[victim].wait().await.unwrap();
        kills += 1;
        workers[victim] = spawn(&env.settings, spawned);
        spawned += 1;
    }
    eprintln!("chaos: {kills} worker(s) killed");
    recvault_tests::eventually("every job settled", WAIT, all_done).await;
    // let the last acks and staged deletes happen, then stop gracefully
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for w in &mut workers {
        let _ = std::process::Command::new("kill").args(["-TERM", &w.id().unwrap().to_string()]).status();
        let _ = tokio::time::timeout(Duration::from_secs(30), w.wait()).await;
    }

    // Exactly one end per job.
    let dead = env.take_all(&env.broker.topology().dead_queue).await;
    let dead_reasons: HashMap<String, HashSet<String>> = dead.iter().fold(HashMap::new(), |mut m, d| {
        let id = String::from_utf8_lossy(&d.body).to_string();
        let id = serde_json::from_slice::<serde_json::Value>(&d.body)
            .ok()
            .and_then(|v| v["job_id"].as_str().map(str::to_string))
            .unwrap_or(id);
        m.entry(id).or_default().insert(d.header(headers::REASON).unwrap_or_default());
        m
    });
    for (job_id, want) in &expected {
        let state = env.db.job_outcome(job_id).await.unwrap().map(|(s, _)| s);
        let reasons = dead_reasons.get(job_id).cloned().unwrap_or_default();
        match *want {
            "archived_or_duplicate" => {
                assert!(matches!(state.as_deref(), Some("archived" | "duplicate_content")), "{job_id}: {state:?}");
                assert!(reasons.is_empty(), "{job_id}: {reasons:?}");
            }
            "quarantined" => {
                assert_eq!(state.as_deref(), Some("quarantined"), "{job_id}");
                assert_eq!(reasons, HashSet::from(["not_mp4".to_string()]), "{job_id}");
            }
            dead_reason => {
                assert_eq!(state, None, "{job_id}");
                assert_eq!(reasons, HashSet::from([dead_reason.trim_start_matches("dead:").to_string()]), "{job_id}");
            }
        }
    }
    assert!(dead_reasons.keys().any(|k| k.contains("schema_version")), "the malformed job is dead-lettered");
    assert_eq!(env.db.recordings(100, None).await.unwrap().len(), contents.len(), "one recording per content");
    assert!(dead.iter().all(|d| d.header(headers::REASON).is_some()), "every dead letter says why");

    // One content hash, one version; Postgres and the archive agree.
    let archive = env.settings.s3.archive_bucket.clone();
    for key in &contents {
        let v = env.store.list_versions(&archive, key).await.unwrap();
        assert_eq!(v.iter().filter(|v| v.key == *key).count(), 1, "{key}: {v:?}");
    }
    let report =
        recvault_worker::reconcile::reconcile(&env.store, &env.db, &env.settings.bundles.prefix, false).await.unwrap();
    assert!(report.drift.is_empty(), "{:#?}", report.drift);

    // Staging: a worker killed between its ack and its staged delete leaves a copy; the sweep
    // removes exactly those. What stays belongs to dead-lettered jobs that never completed.
    let staging = env.settings.s3.staging_bucket.clone();
    recvault_worker::sweep::sweep_staging(&env.store, &env.db, &staging, chrono::TimeDelta::zero(), false)
        .await
        .unwrap();
    let left: Vec<String> = env.store.list_staged(&staging).await.unwrap().into_iter().map(|e| e.key).collect();
    let completed_keys: HashSet<String> = jobs.iter().map(|j| j.source().key.clone()).collect();
    for key in &left {
        assert!(!completed_keys.contains(key), "a completed job's bytes are still staged: {key}");
    }
    env.finish().await;
}
