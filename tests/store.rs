//! The object store under the archive, checked for what the guarantees rest on (R2.1, R19.1,
//! R21.1): the capability probe against the local Ceph gateway, the worker's refusal of a store
//! or bucket that lacks a guarantee, and the store's own lifecycle run expiring two-year
//! recordings and not permanent ones.

#![allow(clippy::unwrap_used)]

use aws_sdk_s3::types::{BucketLifecycleConfiguration, ChecksumAlgorithm};
use recvault_core::job::ActivityV1;
use recvault_fixtures::RecordingSpec;
use recvault_store::{Capability, expiry_rule};
use recvault_tests::{TestEnv, eventually};
use recvault_worker::{Metrics, Worker};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_finds_every_guarantee_on_the_local_worm_store() {
    let env = TestEnv::new().await;
    let mut caps = env.store.probe_capabilities().await.unwrap();
    caps.merge(env.store.check_buckets().await.unwrap());
    for c in Capability::ALL {
        let check =
            caps.checks.iter().find(|x| x.capability == c).unwrap_or_else(|| panic!("{} not checked", c.code()));
        assert!(check.ok, "{}: {}", c.code(), check.detail);
    }
    assert!(caps.missing_required().is_empty());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_refuses_buckets_without_the_guarantees_unless_in_development_mode() {
    let env = TestEnv::new().await;
    // An archive bucket without Object Lock, and a staging bucket that keeps no versions.
    let plain_archive = format!("{}-nolock", env.settings.s3.archive_bucket);
    let plain_staging = format!("{}-noversions", env.settings.s3.staging_bucket);
    for b in [&plain_archive, &plain_staging] {
        env.store.client().create_bucket().bucket(b).send().await.unwrap();
    }
    let mut s = env.settings.clone();
    s.s3.archive_bucket = plain_archive;
    s.s3.staging_bucket = plain_staging;
    let err = Worker::start(s.clone(), Metrics::new()).await.unwrap_err().to_string();
    for missing in ["object_lock", "lifecycle_tag_filter", "staging_versioning", "R21.1"] {
        assert!(err.contains(missing), "{missing} not named in: {err}");
    }
    s.s3.dev_mode = true;
    let worker = Worker::start(s, Metrics::new()).await.expect("development mode runs without the guarantees");
    assert!(!worker.capabilities().has(Capability::ObjectLock));
    drop(worker);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r19_1_the_stores_lifecycle_run_expires_two_year_recordings_and_keeps_permanent_ones() {
    let env = TestEnv::new().await;
    let archive = env.settings.s3.archive_bucket.clone();
    // The production rule with one "day" instead of 730: the local Ceph runs lifecycle with
    // `rgw lc debug interval = 10`, so a day lasts ten seconds.
    env.store
        .client()
        .put_bucket_lifecycle_configuration()
        .bucket(&archive)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder().rules(expiry_rule(1).unwrap()).build().unwrap(),
        )
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let (routine, _) = env.fixture("routine.mp4", &RecordingSpec { seed: 81, ..RecordingSpec::default() });
    let (disputed, _) = env.fixture("disputed.mp4", &RecordingSpec { seed: 82, ..RecordingSpec::default() });
    let worker = env.start_worker().await;
    let two_years = env.station.submit(&routine, &TestEnv::file_info("DSJ-0801")).await.unwrap();
    let mut info = TestEnv::file_info("DSJ-0802");
    info.activity = Some(ActivityV1 { disputed: true, ..ActivityV1::default() });
    let permanent = env.station.submit(&disputed, &info).await.unwrap();
    for j in [&two_years, &permanent] {
        assert_eq!(env.wait_for_job(j.job_id(), WAIT).await, "archived");
    }
    worker.stop().await;
    let row = |job_id: String| {
        let db = env.db.clone();
        async move { db.recordings(1, Some(&job_id)).await.unwrap().remove(0) }
    };
    let (short, long) = (row(two_years.job_id().to_string()).await, row(permanent.job_id().to_string()).await);
    assert_eq!((short.retention_class.as_str(), long.retention_class.as_str()), ("two_years", "permanent"));

    eventually("the lifecycle run expires the 2y recording", Duration::from_secs(240), || async {
        env.store.head(&archive, &short.archive_key).await.unwrap().is_none()
    })
    .await;
    // The permanent one is untouched, and the expired one's version is still there under its
    // lock (expiry hides it behind a delete marker; the lock decides when it may go).
    let kept = env.store.head(&archive, &long.archive_key).await.unwrap().expect("permanent recording kept");
    assert_eq!(kept.version_id, long.archive_version_id);
    let hidden =
        env.store.head_version(&archive, &short.archive_key, short.archive_version_id.as_deref()).await.unwrap();
    let hidden = hidden.expect("the locked version outlives its expiry until its lock ends");
    assert!(env.store.is_locked(&hidden));
    env.finish().await;
}
