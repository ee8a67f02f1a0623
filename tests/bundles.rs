//! R19.1(2): a closed case becomes a BagIt bundle in the archive, built by a worker from the bundle
//! queue, on the real services. The bag is downloaded through its short-lived link with a plain
//! HTTP client and validated by the Library of Congress `bagit` tool and `recvault verify-bundle`;
//! one flipped byte fails both. A worker killed mid-bundle and a store cut mid-upload still end in
//! exactly one ready bundle and no unfinished upload; a missing source object fails the bundle
//! with its reason and is retried, never half-written; a fixity mismatch fails it with a finding
//! (R2.1); cases past the deadline are counted and listed.

#![allow(clippy::unwrap_used)]

use recvault_core::access::Role;
use recvault_core::job::ActivityV1;
use recvault_tests::api::RunningApi;
use recvault_tests::proxy::{Mode, TcpProxy};
use recvault_tests::{TestEnv, eventually, recvault_bin, repo_root, spawn_worker_process, venv_tool};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::Duration;

const UNIT: &str = "zhidui";
const WAIT: Duration = Duration::from_secs(120);

fn for_case(case: &str) -> impl FnOnce(&mut recvault_core::job::UploadJobV1) {
    let case = case.to_string();
    move |j| {
        j.unit = UNIT.into();
        j.activity = Some(ActivityV1 { case_id: Some(case), ..ActivityV1::default() });
    }
}

/// Closes `case` (closed `closed_at`, adding `extra` recordings) as the unit's case system.
async fn close(api: &RunningApi, case: &str, closed_at: &str, extra: &[i64]) -> String {
    let t = api.token(&[Role::CaseSystem], UNIT);
    let body = json!({"closed_at": closed_at, "unit": UNIT, "reason": "结案归档", "recordings": extra});
    let a = api.call(Method::PUT, &format!("/v1/cases/{case}/closure"), Some(&t), Some(&body)).await;
    assert_eq!(a.status, 202, "{:?}", a.body);
    a.body["bundle_id"].as_str().unwrap().to_string()
}

/// Polls the bundle until it is in `state`; returns its view.
async fn wait_for_state(api: &RunningApi, bundle: &str, state: &str) -> Value {
    let t = api.token(&[Role::CaseSystem], UNIT);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let a = api.get(&format!("/v1/bundles/{bundle}"), &t).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        if a.body["state"] == state {
            return a.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "bundle {bundle} not {state}: {:?}", a.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Downloads a ready bundle as a case system does: a link from the API, then a plain GET.
async fn download(api: &RunningApi, bundle: &str, to: &Path) -> Value {
    let t = api.token(&[Role::CaseSystem], UNIT);
    let link = api.get(&format!("/v1/bundles/{bundle}/download"), &t).await;
    assert_eq!(link.status, 200, "{:?}", link.body);
    let bytes = reqwest::get(link.body["url"].as_str().unwrap()).await.unwrap().error_for_status().unwrap();
    let bytes = bytes.bytes().await.unwrap();
    std::fs::write(to, &bytes).unwrap();
    assert_eq!(Some(bytes.len() as u64), link.body["size_bytes"].as_u64(), "the size the API gave");
    assert_eq!(
        Some(hex::encode(sha2::Sha256::digest(&bytes)).as_str()),
        link.body["sha256"].as_str(),
        "the SHA-256 the API gave"
    );
    link.body
}

fn unpack(tar: &Path, into: &Path) -> PathBuf {
    tar::Archive::new(std::fs::File::open(tar).unwrap()).unpack(into).unwrap();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(into).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(dirs.len(), 1, "one bag directory: {dirs:?}");
    dirs.remove(0)
}

/// `bagit.py --validate` (bagit-python, the Library of Congress tool): success and its output.
fn bagit_validate(dir: &Path) -> (bool, String) {
    let out =
        std::process::Command::new(venv_tool("python")).args(["-m", "bagit", "--validate"]).arg(dir).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// `recvault verify-bundle PATH --json`: the exit code and the report.
fn verify_bundle(path: &Path) -> (i32, Value) {
    let out = std::process::Command::new(recvault_bin()).arg("verify-bundle").arg(path).arg("--json").output().unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report)
}

/// Unfinished multipart uploads under the bundles prefix.
async fn open_uploads(env: &TestEnv) -> usize {
    let r = env
        .store
        .client()
        .list_multipart_uploads()
        .bucket(&env.settings.s3.archive_bucket)
        .prefix(&env.settings.bundles.prefix)
        .send()
        .await
        .unwrap();
    r.uploads().len()
}

/// Versions of the bundle's object.
async fn bundle_versions(env: &TestEnv, bundle: &str) -> usize {
    let versions =
        env.store.list_versions(&env.settings.s3.archive_bucket, &env.settings.bundles.prefix).await.unwrap();
    versions.iter().filter(|v| v.key.ends_with(&format!("{bundle}.tar"))).count()
}

/// A quarantined file of the case: `size` bytes that are no MP4 (still evidence, so it goes into
/// the case file with its flag). Big ones make a bundle of several parts.
async fn quarantined_of_case(env: &TestEnv, case: &str, name: &str, size: usize) -> i64 {
    let mut bytes = vec![0u8; size];
    rand::Rng::fill(&mut rand::rng(), bytes.as_mut_slice());
    let path = env.raw_file(name, &bytes);
    let job = env.submit_with(&path, "DSJ-Q", for_case(case)).await;
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "quarantined");
    env.db.quarantined(1, Some(job.job_id())).await.unwrap().remove(0).id
}

fn schema_check(instance: &Value, dir: &Path) -> (bool, String) {
    let file = dir.join("event.json");
    std::fs::write(&file, serde_json::to_vec(instance).unwrap()).unwrap();
    let out = std::process::Command::new(venv_tool("python"))
        .arg(repo_root().join("deploy/local/jsonschema-check.py"))
        .arg(repo_root().join("pipeline-config/bundle-event-v1.schema.json"))
        .arg(&file)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The whole path a case system takes: close, get notified, download, verify offline; the case's
/// recordings raised to the case-file class with a legal hold, the bundle locked and held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_case_becomes_a_bag_that_validates_anywhere() {
    let env = TestEnv::new().await;
    let events = env.bind_events("bundle.*").await;
    let worker = env.start_worker().await;
    let r1 = env.archive_recording(801, for_case("C-B1")).await;
    let r2 = env.archive_recording(802, for_case("C-B1")).await;
    let added = env.archive_recording(803, |j| j.unit = UNIT.into()).await;
    let q = quarantined_of_case(&env, "C-B1", "broken.mp4", 64 * 1024).await;
    let api = env.start_api().await;
    let bundle = close(&api, "C-B1", "2026-11-20T10:00:00+08:00", &[added]).await;
    let view = wait_for_state(&api, &bundle, "ready").await;
    assert_eq!((view["recordings"].as_u64(), view["quarantined"].as_u64()), (Some(3), Some(1)), "{view:?}");
    assert_eq!(view["deadline"], "2026-12-20T02:00:00Z");

    // The event a case system listens to, valid against the published schema.
    eventually("the bundle.ready event", WAIT, || async { env.broker.depth(&events).await.unwrap().0 >= 1 }).await;
    let got = env.take_all(&events).await;
    let event: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!((event["event"].as_str(), event["bundle_id"].as_str()), (Some("bundle.ready"), Some(bundle.as_str())));
    assert_eq!(event["sha256"], view["sha256"]);
    let (valid, out) = schema_check(&event, env.files.path());
    assert!(valid, "bundle.ready against pipeline-config/bundle-event-v1.schema.json: {out}");
    let (valid, _) = schema_check(&json!({"event": "bundle.ready"}), env.files.path());
    assert!(!valid, "the schema check does refuse");

    // Download through the short-lived link; the link is recorded (R21.1).
    let tar = env.files.path().join("bundle.tar");
    let link = download(&api, &bundle, &tar).await;
    let expires = chrono::DateTime::parse_from_rfc3339(link["expires_at"].as_str().unwrap()).unwrap();
    let ttl = expires.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!(ttl > 0 && ttl <= i64::try_from(env.settings.api.download_link_secs).unwrap(), "{ttl}");
    let downloads = env.db.downloads(bundle.parse().unwrap()).await.unwrap();
    assert_eq!(downloads.len(), 1);
    assert_eq!((downloads[0].subject.as_str(), downloads[0].unit.as_str()), ("case_system-client", UNIT));

    // Valid for recvault (the tar and the directory) and for bagit-python.
    let (code, report) = verify_bundle(&tar);
    assert_eq!((code, report["ok"].as_bool()), (0, Some(true)), "{report}");
    assert_eq!(report["payload_files"], 6, "4 files + recordings.json + downloads.jsonl: {report}");
    let dir = unpack(&tar, &env.files.path().join("unpacked"));
    let (ok, out) = bagit_validate(&dir);
    assert!(ok, "bagit --validate: {out}");
    assert_eq!(verify_bundle(&dir).0, 0);

    // What is inside: the originals under their names, the metadata, the bag-info.
    let info = std::fs::read_to_string(dir.join("bag-info.txt")).unwrap();
    for want in ["External-Identifier: C-B1", "Payload-Oxum: ", "Bag-Size: ", "Bagging-Date: ", "Source-Organization: "]
    {
        assert!(info.contains(want), "{want} in {info}");
    }
    assert!(dir.join("tagfile-blake3.txt").exists() && dir.join("tagmanifest-sha256.txt").exists());
    let meta: Value =
        serde_json::from_slice(&std::fs::read(dir.join("data/metadata/recordings.json")).unwrap()).unwrap();
    let mut ids: Vec<i64> =
        meta["recordings"].as_array().unwrap().iter().map(|r| r["recording"]["id"].as_i64().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![r1, r2, added]);
    let quarantined = &meta["quarantined"][0];
    assert_eq!(quarantined["quarantine"]["id"].as_i64(), Some(q));
    assert!(quarantined["flag"].as_str().unwrap().starts_with("quarantined: "), "{quarantined}");
    for r in meta["recordings"].as_array().unwrap().iter().chain(meta["quarantined"].as_array().unwrap()) {
        let file = dir.join(r["file"].as_str().unwrap());
        assert!(file.exists(), "{}", file.display());
    }
    let manifest = std::fs::read_to_string(dir.join("manifest-sha256.txt")).unwrap();
    for id in [r1, r2, added] {
        let row = env.db.recording(id).await.unwrap().unwrap();
        assert!(manifest.contains(&row.sha256), "the ingest SHA-256 of {id} in the manifest");
        // R19.1(2): in the case file now, held.
        assert_eq!((row.retention_class.as_str(), row.legal_hold), ("case_file", true), "{id}");
    }

    // The bundle object: locked, held, tagged permanent.
    let b = env.db.bundle(bundle.parse().unwrap()).await.unwrap().unwrap();
    let head = env
        .store
        .head_version(b.bucket.as_deref().unwrap(), b.key.as_deref().unwrap(), b.version_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert!(head.lock_mode.is_some() && head.legal_hold, "{head:?}");
    assert_eq!(
        env.store.retention_tag(b.bucket.as_deref().unwrap(), b.key.as_deref().unwrap()).await.unwrap().as_deref(),
        Some(recvault_core::RetentionClass::Permanent.tag())
    );
    assert!(b.key.as_deref().unwrap().starts_with("bundles/C-B1/"), "{:?}", b.key);

    // One flipped byte: both validators fail, naming the file.
    let victim = dir.join(meta["recordings"][0]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[1000] ^= 0x01;
    std::fs::write(&victim, bytes).unwrap();
    let (ok, out) = bagit_validate(&dir);
    assert!(!ok, "bagit must fail: {out}");
    let (code, report) = verify_bundle(&dir);
    assert_eq!(code, 1, "{report}");
    let named = meta["recordings"][0]["file"].as_str().unwrap();
    assert!(report["problems"].as_array().unwrap().iter().any(|p| p["file"] == named), "{report}");
    let mut tar_bytes = std::fs::read(&tar).unwrap();
    let at = tar_bytes.len() / 3;
    tar_bytes[at] ^= 0x01;
    let flipped = env.files.path().join("flipped.tar");
    std::fs::write(&flipped, tar_bytes).unwrap();
    assert_eq!(verify_bundle(&flipped).0, 1, "a flipped byte in the tar");

    // The same closure again: the same bundle, ready, and the event sent once more is harmless.
    assert_eq!(close(&api, "C-B1", "2026-11-20T10:00:00+08:00", &[added]).await, bundle);
    assert_eq!(worker.metrics.bundles.with_label_values(&["ready"]).get(), 1);

    // R21.1: reconcile reads the bundle back: as recorded, no drift; a record whose SHA-256 is
    // not the object's is named.
    let prefix = env.settings.bundles.prefix.clone();
    let clean = recvault_worker::reconcile::reconcile(&env.store, &env.db, &prefix, false).await.unwrap();
    assert!(clean.drift.is_empty(), "{:?}", clean.drift);
    assert_eq!(clean.rows, 5, "3 recordings, 1 quarantined file, 1 bundle");
    let mut tx = env.owner.begin().await.unwrap();
    sqlx::query("alter table bundles disable trigger user").execute(&mut *tx).await.unwrap();
    sqlx::query("update bundles set sha256 = sha256(sha256) where id = $1")
        .bind(uuid::Uuid::parse_str(&bundle).unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("alter table bundles enable trigger user").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let found = recvault_worker::reconcile::reconcile(&env.store, &env.db, &prefix, false).await.unwrap();
    let kinds: Vec<(&str, Option<String>)> = found
        .drift
        .iter()
        .map(|d| (d.kind.code(), serde_json::to_value(d.row).ok().map(|r| r["table"].to_string())))
        .collect();
    assert_eq!(kinds, vec![("content", Some("\"bundle\"".to_string()))], "{:?}", found.drift);
    api.stop().await;
    worker.stop().await;
    env.finish().await;
}

/// Settings whose bundles have small parts (several per bundle) and whose S3 goes through `proxy`.
fn through(env: &TestEnv, proxy: &TcpProxy) -> recvault_config::Settings {
    let mut s = env.settings.clone();
    s.s3.endpoint = Some(format!("http://{}", proxy.addr()));
    s
}

fn s3_addr(env: &TestEnv) -> std::net::SocketAddr {
    let url = env.settings.s3.endpoint.clone().expect("an S3 endpoint");
    let host = url.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(host).unwrap().next().unwrap()
}

/// A case of two recordings and a 12 MiB quarantined file: with 5 MiB parts, three parts.
async fn big_case(env: &TestEnv, case: &str, seed: u64) {
    env.archive_recording(seed, for_case(case)).await;
    env.archive_recording(seed + 1, for_case(case)).await;
    quarantined_of_case(env, case, "large.bin", 12 << 20).await;
}

/// After a fault: exactly one ready bundle, one object version, no unfinished upload, a valid bag.
async fn exactly_one_valid_bundle(env: &TestEnv, api: &RunningApi, bundle: &str) {
    wait_for_state(api, bundle, "ready").await;
    assert_eq!(open_uploads(env).await, 0, "no unfinished multipart upload is left");
    assert_eq!(bundle_versions(env, bundle).await, 1, "exactly one bundle object");
    let tar = env.files.path().join(format!("{bundle}.tar"));
    download(api, bundle, &tar).await;
    let (code, report) = verify_bundle(&tar);
    assert_eq!(code, 0, "{report}");
}

/// A worker SIGKILLed while its upload is half done: the job is redelivered, the next worker
/// aborts the unfinished upload and builds the bundle once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_bundle_leaves_one_ready_bundle() {
    let env = TestEnv::with(|s| s.bundles.part_bytes = 5 << 20).await;
    let worker = env.start_worker().await;
    big_case(&env, "C-K", 811).await;
    worker.stop().await;
    let proxy = TcpProxy::start(s3_addr(&env)).await;
    let mut child = spawn_worker_process(&through(&env, &proxy));
    let api = env.start_api().await;
    // Hang the store once the second part is on its way.
    proxy.trip_after(7 << 20, Mode::Stall);
    let bundle = close(&api, "C-K", "2026-11-20T10:00:00+08:00", &[]).await;
    eventually("the upload is half done", WAIT, || async { open_uploads(&env).await == 1 }).await;
    eventually("the store hangs mid-upload", WAIT, || async { proxy.upstream_bytes() >= 7 << 20 }).await;
    assert_eq!(env.db.bundle(bundle.parse().unwrap()).await.unwrap().unwrap().state.code(), "building");
    child.kill().await.unwrap();
    drop(proxy);
    let worker = env.start_worker().await;
    exactly_one_valid_bundle(&env, &api, &bundle).await;
    let b = env.db.bundle(bundle.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(b.attempts, 2, "built on the redelivery");
    api.stop().await;
    worker.stop().await;
    env.finish().await;
}

/// The store cut mid-upload: the build fails for now, the upload is aborted, the job retried,
/// and the retry builds the bundle once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_cut_mid_upload_is_retried_into_one_ready_bundle() {
    let env = TestEnv::with(|s| s.bundles.part_bytes = 5 << 20).await;
    let worker = env.start_worker().await;
    big_case(&env, "C-X", 821).await;
    worker.stop().await;
    let proxy = TcpProxy::start(s3_addr(&env)).await;
    let worker = env.start_worker_with(through(&env, &proxy)).await;
    let api = env.start_api().await;
    proxy.trip_after(7 << 20, Mode::Down);
    let bundle = close(&api, "C-X", "2026-11-20T10:00:00+08:00", &[]).await;
    let failed = wait_for_state(&api, &bundle, "failed").await;
    assert!(failed["reason"].as_str().is_some_and(|r| !r.is_empty()), "{failed:?}");
    proxy.set(Mode::Pass);
    exactly_one_valid_bundle(&env, &api, &bundle).await;
    assert!(worker.metrics.bundles.with_label_values(&["retried"]).get() >= 1);
    api.stop().await;
    worker.stop().await;
    env.finish().await;
}

/// Tampering a recording's row as its owner would (triggers off): what a fault in Postgres or a
/// lost object looks like to the builder.
async fn tamper(env: &TestEnv, sql: &str, id: i64) {
    let mut tx = env.owner.begin().await.unwrap();
    sqlx::query("alter table recordings disable trigger user").execute(&mut *tx).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).bind(id).execute(&mut *tx).await.unwrap();
    sqlx::query("alter table recordings enable trigger user").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// A source object that is gone: the bundle fails with the reason, is retried (the store may be
/// at fault), then dead-lettered with a `bundle.failed` event; nothing is half-written. Once the
/// object is back, the same closure again builds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_source_fails_with_its_reason_and_is_retried() {
    let env = TestEnv::new().await;
    let events = env.bind_events("bundle.failed").await;
    let worker = env.start_worker().await;
    let r = env.archive_recording(831, for_case("C-M")).await;
    let key = env.db.recording(r).await.unwrap().unwrap().archive_key;
    tamper(&env, "update recordings set archive_key = 'recordings/gone/' || archive_key where id = $1", r).await;
    let api = env.start_api().await;
    let bundle = close(&api, "C-M", "2026-11-20T10:00:00+08:00", &[]).await;
    let dead = env.take_dead_letters(1, WAIT).await;
    assert_eq!(dead[0].header("x-recvault-reason").as_deref(), Some("retries_exhausted"), "{:?}", dead[0].headers);
    let view = wait_for_state(&api, &bundle, "failed").await;
    let reason = view["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("recording {r}")) && reason.contains("missing"), "{reason}");
    let b = env.db.bundle(bundle.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(b.attempts, 1 + env.settings.amqp.retry_delays_ms.len() as i32, "retried every time");
    assert_eq!((open_uploads(&env).await, bundle_versions(&env, &bundle).await), (0, 0), "nothing half-written");
    eventually("the bundle.failed event", WAIT, || async { env.broker.depth(&events).await.unwrap().0 >= 1 }).await;
    let event: Value = serde_json::from_slice(&env.take_all(&events).await[0].body).unwrap();
    assert_eq!(event["state"], "failed");
    assert!(schema_check(&event, env.files.path()).0);
    let t = api.token(&[Role::CaseSystem], UNIT);
    assert_eq!(api.get(&format!("/v1/bundles/{bundle}/download"), &t).await.code(), "bundle_not_ready");

    // The object is found again; the case system repeats its closure and the bundle is built.
    tamper(&env, &format!("update recordings set archive_key = '{key}' where id = $1"), r).await;
    assert_eq!(close(&api, "C-M", "2026-11-20T10:00:00+08:00", &[]).await, bundle);
    exactly_one_valid_bundle(&env, &api, &bundle).await;
    api.stop().await;
    worker.stop().await;
    env.finish().await;
}

/// R2.1: archived bytes that do not hash to the recorded SHA-256 fail the bundle at once (no
/// retry can fix it), with a fixity finding on the recording and a dead letter with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixity_mismatch_fails_the_bundle_with_a_finding() {
    let env = TestEnv::new().await;
    let worker = env.start_worker().await;
    let r = env.archive_recording(841, for_case("C-F")).await;
    let other = env.archive_recording(842, for_case("C-F")).await;
    tamper(&env, "update recordings set sha256 = sha256(sha256) where id = $1", r).await;
    let api = env.start_api().await;
    let bundle = close(&api, "C-F", "2026-11-20T10:00:00+08:00", &[]).await;
    let dead = env.take_dead_letters(1, WAIT).await;
    assert_eq!(dead[0].header("x-recvault-reason").as_deref(), Some("fixity_mismatch"));
    let view = wait_for_state(&api, &bundle, "failed").await;
    assert!(view["reason"].as_str().unwrap().contains(&format!("recording {r}")), "{view:?}");
    assert!(env.live_findings(r).await.contains(&"fixity_mismatch".to_string()));
    assert!(!env.live_findings(other).await.contains(&"fixity_mismatch".to_string()));
    let b = env.db.bundle(bundle.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(b.attempts, 1, "not retried");
    assert_eq!(worker.metrics.bundles.with_label_values(&["fixity_mismatch"]).get(), 1, "its own alert (R2.1)");
    assert_eq!((open_uploads(&env).await, bundle_versions(&env, &bundle).await), (0, 0), "nothing half-written");
    api.stop().await;
    worker.stop().await;
    env.finish().await;
}

/// R19.1(2): a case closed more than 30 days ago without a ready bundle is counted by the
/// worker's metric and listed by `recvault cases --overdue`, until its bundle is ready; one whose
/// bundle failed for good stays listed, with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_past_the_deadline_are_counted_and_listed() {
    let env = TestEnv::new().await;
    let worker = env.start_worker().await;
    let bad = env.archive_recording(851, for_case("C-LATE-BAD")).await;
    env.archive_recording(852, for_case("C-LATE")).await;
    env.archive_recording(853, for_case("C-FRESH")).await;
    worker.stop().await;
    tamper(&env, "update recordings set sha256 = sha256(sha256) where id = $1", bad).await;
    let api = env.start_api().await;
    let late = (chrono::Utc::now() - chrono::TimeDelta::days(31)).to_rfc3339();
    let bad_bundle = close(&api, "C-LATE-BAD", &late, &[]).await;
    let late_bundle = close(&api, "C-LATE", &late, &[]).await;
    close(&api, "C-FRESH", &chrono::Utc::now().to_rfc3339(), &[]).await;
    let overdue = || {
        let out = std::process::Command::new(recvault_bin())
            .args(["cases", "--overdue", "--json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.settings.to_env())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut cases: Vec<String> =
            v.as_array().unwrap().iter().map(|c| c["case_id"].as_str().unwrap().to_string()).collect();
        cases.sort();
        cases
    };
    assert_eq!(overdue(), vec!["C-LATE", "C-LATE-BAD"]);
    let worker = env.start_worker().await;
    wait_for_state(&api, &late_bundle, "ready").await;
    wait_for_state(&api, &bad_bundle, "failed").await;
    worker.stop().await;
    assert_eq!(overdue(), vec!["C-LATE-BAD"], "ready: no longer overdue; failed: still");
    // A worker counts them when it starts (and every 15 s).
    let worker = env.start_worker().await;
    let url = format!("http://{}/metrics", worker.metrics_addr.unwrap());
    eventually("recvault_bundles_overdue 1", WAIT, || async {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        text.lines().any(|l| l == "recvault_bundles_overdue 1")
    })
    .await;
    api.stop().await;
    worker.stop().await;
    env.finish().await;
}
