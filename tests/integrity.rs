//! Evidence integrity under hostile and faulty input (R2.1, R21.1), tried as an attacker and a
//! faulty station would, on the real services: a reused job id, a job that names what its station
//! does not own, a station that speaks for another, bytes swapped after verification, a
//! redelivery that would delete new bytes, and the same bytes from two jobs at once.

#![allow(clippy::unwrap_used)]

use recvault_core::job::{ActivityV1, ClaimedHashV1};
use recvault_core::{Blake3Hash, RetentionClass, UploadJob, hash::HashAlgorithm, keys};
use recvault_fixtures::RecordingSpec;
use recvault_queue::headers;
use recvault_store::Placement;
use recvault_tests::{TestEnv, eventually};
use recvault_worker::archive::{Destination, archive};
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

fn blake3_of(path: &Path) -> Blake3Hash {
    Blake3Hash(*blake3::hash(&std::fs::read(path).unwrap()).as_bytes())
}

/// Versions (not delete markers) at exactly `key`.
async fn versions(env: &TestEnv, bucket: &str, key: &str) -> Vec<String> {
    let out = env.store.client().list_object_versions().bucket(bucket).prefix(key).send().await.unwrap();
    out.versions().iter().filter(|v| v.key() == Some(key)).filter_map(|v| v.version_id().map(str::to_string)).collect()
}

async fn finding_count(env: &TestEnv, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from findings where kind = $1 and severity = 'critical'")
        .bind(kind)
        .fetch_one(env.db.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_a_reused_job_id_for_other_bytes_is_refused_and_the_new_bytes_stay_staged() {
    let env = TestEnv::new().await;
    let (first, _) = env.fixture("first.mp4", &RecordingSpec { seed: 61, ..RecordingSpec::default() });
    let (second, _) = env.fixture("second.mp4", &RecordingSpec { seed: 62, ..RecordingSpec::default() });
    let worker = env.start_worker().await;
    let a = env.station.submit(&first, &TestEnv::file_info("DSJ-0601")).await.unwrap();
    assert_eq!(env.wait_for_job(a.job_id(), WAIT).await, "archived");

    // A station whose counter restarted: the used job id for another recording, staged at a key
    // of its own. Before the fix this was acknowledged as a redelivery and its bytes deleted.
    let mut wire = env.station.prepare(&second, &TestEnv::file_info("DSJ-0601")).await.unwrap();
    wire.job_id = a.job_id().to_string();
    let b = UploadJob::new(wire).unwrap();
    env.station.stage(&second, &b).await.unwrap();
    env.station.post(&b).await.unwrap();
    let dead = env.take_dead_letters(1, WAIT).await;
    assert_eq!(dead[0].header(headers::REASON).as_deref(), Some("job_id_conflict"));
    assert!(dead[0].header(headers::DETAIL).unwrap().contains(&b.source().key));
    assert!(env.staged_exists(&b.source().key).await, "the new recording's bytes stay in staging");
    assert_eq!(env.db.recordings(10, None).await.unwrap().len(), 1, "nothing of it was archived or linked");
    assert_eq!(finding_count(&env, "job_id_conflict").await, 1);
    assert_eq!(worker.outcome_count("job_id_conflict"), 1);

    // The same conflicting job again: dead-lettered again, still one finding. The first job again
    // (a real redelivery): acknowledged, nothing dead-lettered.
    env.station.post(&b).await.unwrap();
    assert_eq!(env.take_dead_letters(1, WAIT).await[0].header(headers::REASON).as_deref(), Some("job_id_conflict"));
    env.station.post(&a).await.unwrap();
    eventually("the redelivery is acknowledged", WAIT, || async { worker.outcome_count("duplicate_delivery") == 1 })
        .await;
    worker.stop().await;
    assert_eq!(finding_count(&env, "job_id_conflict").await, 1);
    assert!(env.take_all(&env.broker.topology().dead_queue).await.is_empty());
    assert!(env.staged_exists(&b.source().key).await);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_a_redelivery_deletes_only_the_staged_version_that_was_verified() {
    let env = TestEnv::new().await;
    let (path, _) = env.fixture("verified.mp4", &RecordingSpec { seed: 63, ..RecordingSpec::default() });
    let (other, _) = env.fixture("later.mp4", &RecordingSpec { seed: 64, ..RecordingSpec::default() });
    let worker = env.start_worker().await;
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0602")).await.unwrap();
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    let staging = env.settings.s3.staging_bucket.clone();
    // the verified version is deleted after the ack, which follows the commit
    eventually("the verified version is deleted", WAIT, || async { !env.staged_exists(&job.source().key).await }).await;
    // New bytes staged at the same key, then the old job redelivered: before the fix the
    // redelivery deleted by key and took the new bytes with it.
    let later = env.store.put_file(&staging, &job.source().key, &other, &[]).await.unwrap();
    env.station.post(&job).await.unwrap();
    eventually("the redelivery is acknowledged", WAIT, || async { worker.outcome_count("duplicate_delivery") == 1 })
        .await;
    worker.stop().await;
    let head = env.store.head(&staging, &job.source().key).await.unwrap().expect("the new bytes are still staged");
    assert_eq!(head.version_id, later);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_a_job_cannot_name_the_archive_another_bucket_or_another_stations_bytes() {
    let env = TestEnv::new().await;
    let worker = env.start_worker().await;
    let staging = env.settings.s3.staging_bucket.clone();
    let archive_bucket = env.settings.s3.archive_bucket.clone();
    let (mine, _) = env.fixture("mine.mp4", &RecordingSpec { seed: 65, ..RecordingSpec::default() });
    let a = env.station.submit(&mine, &TestEnv::file_info("DSJ-0610")).await.unwrap();
    assert_eq!(env.wait_for_job(a.job_id(), WAIT).await, "archived");
    let rec = env.db.recordings(1, Some(a.job_id())).await.unwrap().remove(0);
    let archived_before = env.store.head(&archive_bucket, &rec.archive_key).await.unwrap().unwrap();

    // Someone else's bucket, with an object in it.
    let other_bucket = format!("{staging}-other");
    env.store.client().create_bucket().bucket(&other_bucket).send().await.unwrap();
    let other_key = format!("{}/elsewhere.mp4", env.station.identity.station_id);
    env.store.put_file(&other_bucket, &other_key, &mine, &[]).await.unwrap();
    // Station A's next recording, staged, its job not posted yet.
    let (next, _) = env.fixture("next.mp4", &RecordingSpec { seed: 66, ..RecordingSpec::default() });
    let a2 = UploadJob::new(env.station.prepare(&next, &TestEnv::file_info("DSJ-0610")).await.unwrap()).unwrap();
    env.station.stage(&next, &a2).await.unwrap();

    // Station B, with a broker user of its own, names what it does not own; each job claims the
    // bytes it names exactly, so only the scope check can stop it.
    let (b, b_broker) = env.another_station("b").await;
    let claim_of = |path: &Path| ClaimedHashV1 { algorithm: HashAlgorithm::Blake3, hex: blake3_of(path).to_hex() };
    let targets = [
        (archive_bucket.clone(), rec.archive_key.clone(), mine.clone()),
        (archive_bucket.clone(), format!("quarantine/{}", &rec.archive_key["recordings/".len()..]), mine.clone()),
        (other_bucket.clone(), other_key.clone(), mine.clone()),
        (staging.clone(), a2.source().key.clone(), next.clone()),
    ];
    for (bucket, key, bytes) in &targets {
        let mut w = b.prepare(bytes, &TestEnv::file_info("DSJ-0620")).await.unwrap();
        w.source.bucket = bucket.clone();
        w.source.key = key.clone();
        w.claimed_hash = Some(claim_of(bytes));
        let job = UploadJob::new(w).unwrap();
        b.post(&job).await.unwrap();
    }
    // B speaks for A: a job that says station A, published by B's user.
    let mut spoof = b.prepare(&next, &TestEnv::file_info("DSJ-0610")).await.unwrap();
    spoof.station_id = env.station.identity.station_id.clone();
    spoof.source.key = a2.source().key.clone();
    let spoof = UploadJob::new(spoof).unwrap();
    b.post(&spoof).await.unwrap();
    // A message with no user_id at all (published by an operator's connection).
    env.broker.publisher().await.unwrap().publish_job(a2.job_id(), &a2.to_json(), None).await.unwrap();

    let dead = env.take_dead_letters(6, WAIT).await;
    for d in &dead {
        assert_eq!(d.header(headers::REASON).as_deref(), Some("invalid_job"), "{:?}", d.header(headers::DETAIL));
    }
    let details: Vec<String> = dead.iter().map(|d| d.header(headers::DETAIL).unwrap()).collect();
    assert_eq!(details.iter().filter(|d| d.contains("source.bucket")).count(), 3, "{details:?}");
    assert_eq!(details.iter().filter(|d| d.contains("source.key")).count(), 1, "{details:?}");
    assert_eq!(details.iter().filter(|d| d.contains("published by broker user")).count(), 1, "{details:?}");
    assert_eq!(details.iter().filter(|d| d.contains("no user_id")).count(), 1, "{details:?}");

    // B cannot even put A's name on its messages: the broker refuses the user_id.
    let forged =
        b_broker.publisher().await.unwrap().publish_job("forged", b"{}", Some(&env.station.identity.station_id)).await;
    assert!(forged.is_err(), "the broker must refuse a user_id that is not the connection's user");

    // Nothing was read, linked or deleted: the archived version is current and alone, the other
    // bucket's object and A's staged bytes are there.
    let archived_after = env.store.head(&archive_bucket, &rec.archive_key).await.unwrap().unwrap();
    assert_eq!(archived_after.version_id, archived_before.version_id);
    assert_eq!(versions(&env, &archive_bucket, &rec.archive_key).await.len(), 1);
    assert!(env.store.head(&other_bucket, &other_key).await.unwrap().is_some());
    assert!(env.staged_exists(&a2.source().key).await);
    assert_eq!(env.db.recordings(10, None).await.unwrap().len(), 1);

    // A's own job still goes through.
    env.station.post(&a2).await.unwrap();
    assert_eq!(env.wait_for_job(a2.job_id(), WAIT).await, "archived");
    worker.stop().await;
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_bytes_swapped_after_verification_are_never_archived_under_the_verified_hash() {
    let env = TestEnv::new().await;
    let staging = env.settings.s3.staging_bucket.clone();
    let archive_bucket = env.settings.s3.archive_bucket.clone();
    let spool = tempfile::tempdir().unwrap();
    let (fake, _) = env.fixture("fake.mp4", &RecordingSpec { seed: 67, ..RecordingSpec::default() });

    // 1. The staging bucket keeps versions: the copy names the version that was hashed.
    let (real, _) = env.fixture("real.mp4", &RecordingSpec { seed: 68, ..RecordingSpec::default() });
    let job = UploadJob::new(env.station.prepare(&real, &TestEnv::file_info("DSJ-0630")).await.unwrap()).unwrap();
    env.station.stage(&real, &job).await.unwrap();
    let spooled =
        recvault_worker::fetch::fetch(&env.store, &staging, &job.source().key, None, spool.path()).await.unwrap();
    env.store.put_file(&staging, &job.source().key, &fake, &[]).await.unwrap(); // swapped after the fetch
    let a =
        archive(&env.store, &job, &spooled, Destination::Archive, RetentionClass::TwoYears, true, None).await.unwrap();
    assert_eq!(a.placement, Placement::Copied);
    let (size, b3) = env.store.hash_object(&archive_bucket, &a.key, a.version_id.as_deref()).await.unwrap();
    assert_eq!((size, b3), (spooled.hashes.size, blake3_of(&real)));
    assert_eq!(a.key, keys::archive_key(&blake3_of(&real)));

    // 2. An unversioned staging bucket (a development set-up), where the copy cannot name the
    // version and the store ignores CopySourceIfMatch: the read-back catches the other bytes,
    // and the spooled (verified) bytes are uploaded instead.
    let plain = format!("{staging}-plain");
    env.store.client().create_bucket().bucket(&plain).send().await.unwrap();
    let (real2, _) = env.fixture("real2.mp4", &RecordingSpec { seed: 69, ..RecordingSpec::default() });
    let mut w = env.station.prepare(&real2, &TestEnv::file_info("DSJ-0631")).await.unwrap();
    w.source.bucket = plain.clone();
    let job2 = UploadJob::new(w).unwrap();
    env.store.put_file(&plain, &job2.source().key, &real2, &[]).await.unwrap();
    let spooled2 =
        recvault_worker::fetch::fetch(&env.store, &plain, &job2.source().key, None, spool.path()).await.unwrap();
    assert_eq!(spooled2.version_id, None);
    env.store.put_file(&plain, &job2.source().key, &fake, &[]).await.unwrap();
    let a2 = archive(&env.store, &job2, &spooled2, Destination::Archive, RetentionClass::Permanent, true, None)
        .await
        .unwrap();
    assert_eq!((a2.placement, a2.mismatches), (Placement::Uploaded, 1));
    let (_, b3) = env.store.hash_object(&archive_bucket, &a2.key, a2.version_id.as_deref()).await.unwrap();
    assert_eq!(b3, blake3_of(&real2));
    // the version that is current, locked and held is the verified one; the wrong copy is not locked
    let current = env.store.head(&archive_bucket, &a2.key).await.unwrap().unwrap();
    assert_eq!(current.version_id, a2.version_id);
    assert!(env.store.is_locked(&current) && current.legal_hold);
    let all = versions(&env, &archive_bucket, &a2.key).await;
    assert_eq!(all.len(), 2);
    let wrong = all.iter().find(|v| Some(*v) != a2.version_id.as_ref()).unwrap();
    let wrong = env.store.head_version(&archive_bucket, &a2.key, Some(wrong)).await.unwrap().unwrap();
    assert!(wrong.lock_until.is_none() && !wrong.legal_hold, "{wrong:?}");
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_one_content_one_archive_version_whatever_the_concurrency() {
    let env = TestEnv::with(|s| s.worker.concurrency = 4).await;
    let pairs = 8;
    let mut files = Vec::new();
    for i in 0..pairs {
        let spec = RecordingSpec { duration: Duration::from_secs(2), seed: 700 + i, ..RecordingSpec::default() };
        files.push(env.fixture(&format!("pair{i}.mp4"), &spec).0);
    }
    // Each file twice: once as routine (2 years), once as disputed (permanent, legal hold), from
    // two devices, staged at two keys.
    let mut jobs = Vec::new();
    for (i, path) in files.iter().enumerate() {
        for (device, disputed) in [(format!("DSJ-07{i}0"), false), (format!("DSJ-07{i}1"), true)] {
            let mut info = TestEnv::file_info(&device);
            info.activity = Some(ActivityV1 { disputed, ..ActivityV1::default() });
            let job = UploadJob::new(env.station.prepare(path, &info).await.unwrap()).unwrap();
            env.station.stage(path, &job).await.unwrap();
            jobs.push(job);
        }
    }
    let w1 = env.start_worker().await;
    let w2 = env.start_worker().await;
    for job in &jobs {
        env.station.post(job).await.unwrap();
    }
    for job in &jobs {
        let state = env.wait_for_job(job.job_id(), WAIT).await;
        assert!(state == "archived" || state == "duplicate_content", "{state}");
    }
    w1.stop().await;
    w2.stop().await;
    let archive_bucket = env.settings.s3.archive_bucket.clone();
    for path in &files {
        let key = keys::archive_key(&blake3_of(path));
        let all = versions(&env, &archive_bucket, &key).await;
        assert_eq!(all.len(), 1, "one content, one archived version: {key} has {all:?}");
        let rows: Vec<(Option<String>, String, bool)> = sqlx::query_as(
            "select archive_version_id, retention_class, legal_hold from recordings where archive_key = $1",
        )
        .bind(&key)
        .fetch_all(env.db.pool())
        .await
        .unwrap();
        assert_eq!(rows.len(), 1);
        let (version, class, hold) = &rows[0];
        assert_eq!(version.as_ref(), Some(&all[0]), "Postgres points at the one version");
        assert_eq!((class.as_str(), *hold), ("permanent", true), "the highest retention of the two jobs");
        let head = env.store.head(&archive_bucket, &key).await.unwrap().unwrap();
        assert!(head.legal_hold, "the one version carries the hold");
        assert_eq!(env.store.retention_tag(&archive_bucket, &key).await.unwrap().as_deref(), Some("permanent"));
    }
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_1_an_unrecorded_copy_at_the_key_is_proven_by_hashing_before_it_is_used() {
    let env = TestEnv::new().await;
    let archive_bucket = env.settings.s3.archive_bucket.clone();
    let (left, _) = env.fixture("left.mp4", &RecordingSpec { seed: 71, ..RecordingSpec::default() });
    let (planted, _) = env.fixture("planted.mp4", &RecordingSpec { seed: 72, ..RecordingSpec::default() });
    let (decoy, _) = env.fixture("decoy.mp4", &RecordingSpec { seed: 73, ..RecordingSpec::default() });
    // What an attempt that crashed between its archive write and its commit leaves: the right
    // bytes at the content-addressed key, unlocked, no row.
    let left_key = keys::archive_key(&blake3_of(&left));
    env.store.put_file(&archive_bucket, &left_key, &left, &[]).await.unwrap();
    // And bytes planted under another recording's name by someone with write access.
    let planted_key = keys::archive_key(&blake3_of(&planted));
    env.store.put_file(&archive_bucket, &planted_key, &decoy, &[]).await.unwrap();

    let worker = env.start_worker().await;
    let a = env.station.submit(&left, &TestEnv::file_info("DSJ-0640")).await.unwrap();
    let b = env.station.submit(&planted, &TestEnv::file_info("DSJ-0641")).await.unwrap();
    for j in [&a, &b] {
        assert_eq!(env.wait_for_job(j.job_id(), WAIT).await, "archived");
    }
    let metrics = worker.metrics.clone();
    worker.stop().await;
    assert_eq!(metrics.archive_writes.with_label_values(&["found"]).get(), 1);
    assert_eq!(metrics.archive_mismatches.get(), 1);
    // The crashed attempt's copy was adopted (one version), the planted one was not: the verified
    // bytes are a new version on top, which is what Postgres records and what is locked.
    assert_eq!(versions(&env, &archive_bucket, &left_key).await.len(), 1);
    assert_eq!(versions(&env, &archive_bucket, &planted_key).await.len(), 2);
    for (job, path) in [(&a, &left), (&b, &planted)] {
        let r = env.db.recordings(1, Some(job.job_id())).await.unwrap().remove(0);
        let (_, b3) =
            env.store.hash_object(&archive_bucket, &r.archive_key, r.archive_version_id.as_deref()).await.unwrap();
        assert_eq!(b3, blake3_of(path), "the recorded version holds the verified bytes");
        let head = env
            .store
            .head_version(&archive_bucket, &r.archive_key, r.archive_version_id.as_deref())
            .await
            .unwrap()
            .unwrap();
        assert!(env.store.is_locked(&head));
    }
    env.finish().await;
}
