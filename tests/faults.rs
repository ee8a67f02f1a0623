//! Faults: S3 or Postgres briefly unreachable (retried through the delayed-retry queue, then
//! done), unreachable for good (dead-lettered, bytes still staged), a worker killed with SIGKILL
//! mid-job (redelivered and completed exactly once), SIGTERM (in-flight job handed back), and the
//! staging sweep that removes what a worker killed between its ack and its delete left behind.
//!
//! Services are cut off through a TCP proxy the test controls, since moto keeps its objects in
//! memory and would lose them on a restart.

#![allow(clippy::unwrap_used)]

use recvault_core::{Blake3Hash, UploadJob, keys};
use recvault_db::url_with_database;
use recvault_fixtures::RecordingSpec;
use recvault_queue::headers;
use recvault_tests::proxy::{Mode, TcpProxy};
use recvault_tests::{TestEnv, eventually, recvault_bin, spawn_worker_process};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

fn endpoint_addr(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let hostport = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    let hostport = hostport.rsplit('@').next().unwrap();
    hostport.to_socket_addrs().unwrap().find(SocketAddr::is_ipv4).unwrap()
}

/// A proxy in front of the S3 server and one in front of Postgres, and settings that use them.
struct Proxied {
    s3: TcpProxy,
    pg: TcpProxy,
    settings: recvault_config::Settings,
}

async fn proxied(env: &TestEnv) -> Proxied {
    let s3_url = env.settings.s3.endpoint.clone().expect("tests run against an S3 endpoint");
    let s3 = TcpProxy::start(endpoint_addr(&s3_url)).await;
    let pg_url = env.settings.database.url.expose_secret().to_string();
    let pg = TcpProxy::start(endpoint_addr(&pg_url)).await;
    let mut settings = env.settings.clone();
    settings.s3.endpoint = Some(format!("http://{}", s3.addr()));
    let db_name = pg_url.rsplit('/').next().unwrap().split('?').next().unwrap().to_string();
    let (userinfo, _) = pg_url.split_once('@').unwrap();
    settings.database.url = SecretString::from(url_with_database(&format!("{userinfo}@{}/x", pg.addr()), &db_name));
    settings.database.acquire_timeout_ms = 1000;
    Proxied { s3, pg, settings }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_briefly_unreachable_is_retried_then_done() {
    let env = TestEnv::with(|s| s.amqp.retry_delays_ms = vec![1000, 2000, 4000]).await;
    let p = proxied(&env).await;
    let worker = env.start_worker_with(p.settings.clone()).await;
    p.s3.set(Mode::Down);
    let (path, _) = env.fixture("s3down.mp4", &RecordingSpec { seed: 41, ..RecordingSpec::default() });
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0300")).await.unwrap();
    eventually("a retry", WAIT, || async { worker.outcome_count("retried") >= 1 }).await;
    p.s3.set(Mode::Pass);
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    worker.stop().await;
    let attempts = env.db.attempts(job.job_id()).await.unwrap();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert!(
        attempts[..attempts.len() - 1]
            .iter()
            .all(|a| a.outcome.as_deref() == Some("retry") && a.error_code.as_deref() == Some("s3_unreachable")),
        "{attempts:?}"
    );
    assert_eq!(attempts.last().unwrap().outcome.as_deref(), Some("archived"));
    assert_eq!(env.db.recordings(10, None).await.unwrap().len(), 1);
    assert!(env.take_all(&env.broker.topology().dead_queue).await.is_empty());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_briefly_unreachable_is_retried_then_done() {
    let env = TestEnv::with(|s| s.amqp.retry_delays_ms = vec![1000, 2000, 4000]).await;
    let p = proxied(&env).await;
    let worker = env.start_worker_with(p.settings.clone()).await;
    p.pg.set(Mode::Down);
    let (path, _) = env.fixture("pgdown.mp4", &RecordingSpec { seed: 42, ..RecordingSpec::default() });
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0301")).await.unwrap();
    eventually("a retry", WAIT, || async { worker.outcome_count("retried") >= 1 }).await;
    p.pg.set(Mode::Pass);
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    worker.stop().await;
    assert_eq!(env.db.recordings(10, None).await.unwrap().len(), 1);
    assert!(!env.staged_exists(&job.source().key).await);
    assert!(env.take_all(&env.broker.topology().dead_queue).await.is_empty());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_that_outlasts_the_retries_dead_letters_and_keeps_the_staged_bytes() {
    let env = TestEnv::with(|s| s.amqp.retry_delays_ms = vec![200, 400]).await;
    let p = proxied(&env).await;
    let worker = env.start_worker_with(p.settings.clone()).await;
    p.s3.set(Mode::Down);
    let (path, _) = env.fixture("gone.mp4", &RecordingSpec { seed: 43, ..RecordingSpec::default() });
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0302")).await.unwrap();
    let dead = env.take_dead_letters(1, WAIT).await;
    assert_eq!(dead[0].header(headers::REASON).as_deref(), Some("retries_exhausted"));
    assert!(dead[0].header(headers::DETAIL).unwrap().contains("s3_unreachable"));
    assert_eq!(worker.outcome_count("retried"), 2);
    worker.stop().await;
    // nothing lost: the bytes wait in staging for an operator to replay the job
    assert!(env.staged_exists(&job.source().key).await);
    assert_eq!(env.db.completed_jobs().await.unwrap(), 0);
    let attempts = env.db.attempts(job.job_id()).await.unwrap();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert_eq!(attempts[2].outcome.as_deref(), Some("dead_lettered"));
    env.finish().await;
}

/// Waits for the worker process to consume; fails at once (with its exit status) if it died
/// (a stale binary, say: `cargo test --workspace` rebuilds it).
async fn wait_for_consumer(env: &TestEnv, worker: &mut tokio::process::Child) {
    let q = env.broker.topology().work_queue.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    while env.broker.depth(&q).await.unwrap().1 < 1 {
        if let Some(status) = worker.try_wait().unwrap() {
            panic!("the worker process exited before consuming ({status}); see its log above");
        }
        assert!(tokio::time::Instant::now() < deadline, "no consumer on the work queue after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn attempts_started(env: &TestEnv, job_id: &str) -> usize {
    env.db.attempts(job_id).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_redelivered_and_the_job_completes_exactly_once() {
    let env = TestEnv::new().await;
    let p = proxied(&env).await;
    let (path, _) = env.fixture("killed_worker.mp4", &RecordingSpec { seed: 44, ..RecordingSpec::default() });
    let b3 = Blake3Hash(*blake3::hash(&std::fs::read(&path).unwrap()).as_bytes());
    let key = keys::archive_key(&b3);
    let bucket = env.settings.s3.archive_bucket.clone();

    let mut first = spawn_worker_process(&p.settings);
    wait_for_consumer(&env, &mut first).await;
    // Hold the worker at its download, so the job is in flight but not yet archived, and kill it
    // there. (The window between the archive write and the commit is held by a lock on the
    // content's hash in Postgres; what a crash there leaves, a copy with no row, is adopted only
    // after it is proven by hashing: tests/integrity.rs. The chaos test kills at random moments.)
    p.s3.set(Mode::Stall);
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0303")).await.unwrap();
    eventually("the first attempt", WAIT, || async { attempts_started(&env, job.job_id()).await == 1 }).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.kill().await.unwrap(); // SIGKILL
    first.wait().await.unwrap();
    assert_eq!(env.db.completed_jobs().await.unwrap(), 0, "killed before its commit");
    p.s3.set(Mode::Pass);

    let mut second = spawn_worker_process(&p.settings);
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    // The commit comes first, then the ack, then the staged object's deletion: wait for the last
    // step before killing this worker too, or the kill races it.
    eventually("the staged object deleted after the ack", WAIT, || async {
        !env.staged_exists(&job.source().key).await
    })
    .await;
    second.kill().await.unwrap();

    let recordings = env.db.recordings(10, None).await.unwrap();
    assert_eq!(recordings.len(), 1);
    let attempts = env.db.attempts(job.job_id()).await.unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(attempts[0].finished_at.is_none(), "the killed attempt never finished");
    assert_eq!(attempts[1].outcome.as_deref(), Some("archived"));
    assert_eq!(attempts[1].delivery, 2, "x-delivery-count counted the redelivery");
    // one object version
    let versions = env.store.client().list_object_versions().bucket(&bucket).prefix(&key).send().await.unwrap();
    assert_eq!(versions.versions().len(), 1);
    assert_eq!(env.work_queue_depth().await, 0);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_an_unfinished_job_back_and_exits_cleanly() {
    let env = TestEnv::with(|s| s.worker.shutdown_grace_secs = 1).await;
    let p = proxied(&env).await;
    let (path, _) = env.fixture("sigterm.mp4", &RecordingSpec { seed: 45, ..RecordingSpec::default() });
    let mut first = spawn_worker_process(&p.settings);
    wait_for_consumer(&env, &mut first).await;
    p.s3.set(Mode::Stall);
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0304")).await.unwrap();
    eventually("the first attempt", WAIT, || async { attempts_started(&env, job.job_id()).await == 1 }).await;
    let pid = first.id().unwrap();
    std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), first.wait())
        .await
        .expect("exits within the grace period")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // handed back, not lost and not dead-lettered
    assert_eq!(env.work_queue_depth().await, 1);
    p.s3.set(Mode::Pass);
    let worker = env.start_worker_with(p.settings.clone()).await;
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    worker.stop().await;
    assert!(env.take_all(&env.broker.topology().dead_queue).await.is_empty());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_the_staging_sweep_removes_only_the_bytes_of_completed_jobs() {
    let env = TestEnv::new().await;
    let staging = env.settings.s3.staging_bucket.clone();
    let (path, _) = env.fixture("swept.mp4", &RecordingSpec { seed: 46, ..RecordingSpec::default() });
    let (other, _) = env.fixture("restaged.mp4", &RecordingSpec { seed: 47, ..RecordingSpec::default() });
    let worker = env.start_worker().await;
    let done = env.station.submit(&path, &TestEnv::file_info("DSJ-0305")).await.unwrap();
    assert_eq!(env.wait_for_job(done.job_id(), WAIT).await, "archived");
    worker.stop().await;
    assert!(!env.staged_exists(&done.source().key).await);
    // What a worker killed after its ack and before its delete leaves: a staged copy of bytes
    // that are archived. Then a later job stages new bytes at the same key (a station whose
    // counter restarted), and a job that never completed left its bytes: those two must stay,
    // whatever their age (R2.1). Before this fix the sweep deleted by key and took the new bytes.
    let left_behind = env.store.put_file(&staging, &done.source().key, &path, &[]).await.unwrap();
    let restaged = env.store.put_file(&staging, &done.source().key, &other, &[]).await.unwrap();
    let pending_key = format!("{}/2026/12/01/pending/pending.mp4", env.station.identity.station_id);
    let pending = env.store.put_file(&staging, &pending_key, &path, &[]).await.unwrap();
    assert!(left_behind.is_some() && restaged.is_some(), "the staging bucket keeps versions");

    let sweep =
        |min_age, dry_run| recvault_worker::sweep::sweep_staging(&env.store, &env.db, &staging, min_age, dry_run);
    let young = sweep(chrono::TimeDelta::minutes(60), false).await.unwrap();
    assert_eq!((young.listed, young.too_young), (3, 3), "nothing is looked at before the minimum age");
    assert!(young.removed.is_empty());

    let version = |key: &str, v: &Option<String>| recvault_worker::sweep::StagedVersion {
        key: key.into(),
        version_id: v.clone(),
    };
    let dry = sweep(chrono::TimeDelta::zero(), true).await.unwrap();
    assert_eq!(dry.removed, vec![version(&done.source().key, &left_behind)]);
    let versions = env.store.list_staged(&staging).await.unwrap();
    assert_eq!(versions.len(), 3, "a dry run removes nothing");

    let swept = sweep(chrono::TimeDelta::zero(), false).await.unwrap();
    assert_eq!(swept.removed, vec![version(&done.source().key, &left_behind)]);
    let mut kept = swept.kept.clone();
    kept.sort_by(|a, b| a.key.cmp(&b.key));
    let mut want = vec![version(&done.source().key, &restaged), version(&pending_key, &pending)];
    want.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(kept, want);
    // the new bytes at the completed job's key are still there, untouched
    let (size, b3) = env.store.hash_object(&staging, &done.source().key, restaged.as_deref()).await.unwrap();
    assert_eq!(
        (size, b3.0),
        (std::fs::metadata(&other).unwrap().len(), *blake3::hash(&std::fs::read(&other).unwrap()).as_bytes())
    );
    assert!(env.staged_exists(&pending_key).await, "bytes without a completed job are kept");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_the_spool_is_dead_lettered_at_once_and_replayed_once_there_is_room() {
    let env = TestEnv::with(|s| s.worker.spool_max_bytes = Some(10_000)).await;
    let (path, _) = env.fixture("big.mp4", &RecordingSpec { seed: 47, ..RecordingSpec::default() });
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 10_000);
    let worker = env.start_worker().await;
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0307")).await.unwrap();
    env.wait_for_dead_letters(1, WAIT).await;
    assert_eq!(worker.outcome_count("too_large_for_spool"), 1);
    assert_eq!(worker.outcome_count("retried"), 0, "not retried: it can never fit this worker");
    worker.stop().await;
    assert!(env.staged_exists(&job.source().key).await, "the bytes are kept");

    // The operator reads why, enlarges the spool, and replays the job.
    let mut roomy = env.settings.clone();
    roomy.worker.spool_max_bytes = None;
    let cli = |args: &[&str]| {
        std::process::Command::new(recvault_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("USER", "ops-tester")
            .envs(roomy.to_env())
            .output()
            .unwrap()
    };
    let listed = cli(&["dead-letters", "list", "--json"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let letters: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters} {}", String::from_utf8_lossy(&listed.stderr));
    assert_eq!(letters[0]["reason"], "too_large_for_spool");
    assert_eq!(letters[0]["message_id"], job.job_id());
    let detail = letters[0]["detail"].as_str().unwrap();
    assert!(detail.contains(&size.to_string()) && detail.contains("10000"), "{detail}");
    assert_eq!(cli(&["dead-letters", "list"]).status.code(), Some(0), "listing removes nothing");
    let replay = cli(&["dead-letters", "replay", "--job-id", job.job_id(), "--reason", "spool volume enlarged"]);
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let worker = env.start_worker_with(roomy).await;
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    worker.stop().await;
    let (by, reason, was): (String, String, String) =
        sqlx::query_as("select replayed_by, reason, dead_reason from dead_letter_replays")
            .fetch_one(env.db.pool())
            .await
            .unwrap();
    assert_eq!(
        (by.as_str(), reason.as_str(), was.as_str()),
        ("ops-tester", "spool volume enlarged", "too_large_for_spool")
    );
    assert!(env.take_all(&env.broker.topology().dead_queue).await.is_empty());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_delivered_as_often_as_the_queue_allows_is_dead_lettered_with_the_reason() {
    let env = TestEnv::with(|s| s.amqp.delivery_limit = 2).await;
    let (path, _) = env.fixture("crashloop.mp4", &RecordingSpec { seed: 48, ..RecordingSpec::default() });
    // What a job that crashed two workers looks like to the third: x-delivery-count 2.
    let job = UploadJob::new(env.station.prepare(&path, &TestEnv::file_info("DSJ-0308")).await.unwrap()).unwrap();
    env.station.stage(&path, &job).await.unwrap();
    let mut headers_in = lapin::types::FieldTable::default();
    headers_in.insert("x-delivery-count".into(), lapin::types::AMQPValue::LongInt(2));
    env.publish_with_headers(
        &env.broker.topology().jobs_exchange,
        "upload.v1",
        &job.to_json(),
        headers_in,
        Some(&job.wire().station_id),
    )
    .await;
    let worker = env.start_worker().await;
    let dead = env.take_dead_letters(1, WAIT).await;
    assert_eq!(dead[0].header(headers::REASON).as_deref(), Some("delivery_limit"));
    assert_eq!(worker.outcome_count("delivery_limit"), 1);
    worker.stop().await;
    assert!(env.staged_exists(&job.source().key).await);
    env.finish().await;
}
