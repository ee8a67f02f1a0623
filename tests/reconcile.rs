//! `recvault reconcile` (R21.1): objects removed, unlocked, re-tagged or planted behind the
//! system's back are each found, kept as critical findings, and `--repair` raises back what can
//! be raised (never lowering or deleting anything).
//!
//! The deployment here locks in GOVERNANCE mode, as a staging environment might: that is what lets
//! the test (playing an administrator with the bypass permission) shorten a lock and remove a
//! version at all. Under COMPLIANCE the store itself refuses both (tests/store.rs).

#![allow(clippy::unwrap_used)]

use aws_sdk_s3::types::ChecksumAlgorithm;
use aws_sdk_s3::types::{
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockRetention, ObjectLockRetentionMode, Tag, Tagging,
};
use recvault_core::job::ActivityV1;
use recvault_core::reconcile::DriftKind;
use recvault_fixtures::RecordingSpec;
use recvault_store::LockMode;
use recvault_tests::TestEnv;
use recvault_worker::reconcile::reconcile;
use std::collections::BTreeSet;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r21_1_drift_behind_the_systems_back_is_found_and_repair_only_raises() {
    let env = TestEnv::with(|s| s.s3.lock_mode = LockMode::Governance).await;
    let bucket = env.settings.s3.archive_bucket.clone();
    let c = env.store.client().clone();
    let worker = env.start_worker().await;
    let mut jobs = Vec::new();
    for (i, disputed) in [false, true, false, false].into_iter().enumerate() {
        let (path, _) =
            env.fixture(&format!("r{i}.mp4"), &RecordingSpec { seed: 100 + i as u64, ..RecordingSpec::default() });
        let mut info = TestEnv::file_info(&format!("DSJ-10{i}0"));
        info.activity = Some(ActivityV1 { disputed, ..ActivityV1::default() });
        let job = env.station.submit(&path, &info).await.unwrap();
        assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
        jobs.push(job);
    }
    worker.stop().await;
    let clean = reconcile(&env.store, &env.db, &env.settings.bundles.prefix, false).await.unwrap();
    assert!(clean.drift.is_empty(), "{:?}", clean.drift);
    assert_eq!((clean.rows, clean.objects), (4, 4));

    let row = |i: usize| env.db.recordings(1, Some(jobs[i].job_id()));
    let (retagged, held, hidden, unlocked) = (
        row(0).await.unwrap().remove(0),
        row(1).await.unwrap().remove(0),
        row(2).await.unwrap().remove(0),
        row(3).await.unwrap().remove(0),
    );
    // 1. the permanent recording's tag lowered to 2y (the lifecycle rule would expire it)
    let tag = Tagging::builder().tag_set(Tag::builder().key("retention").value("2y").build().unwrap()).build().unwrap();
    c.put_object_tagging()
        .bucket(&bucket)
        .key(&held.archive_key)
        .set_version_id(held.archive_version_id.clone())
        .tagging(tag)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    // 2. its legal hold lifted
    c.put_object_legal_hold()
        .bucket(&bucket)
        .key(&held.archive_key)
        .set_version_id(held.archive_version_id.clone())
        .legal_hold(ObjectLockLegalHold::builder().status(ObjectLockLegalHoldStatus::Off).build())
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    // 3. the first recording's tag removed
    c.delete_object_tagging()
        .bucket(&bucket)
        .key(&retagged.archive_key)
        .set_version_id(retagged.archive_version_id.clone())
        .send()
        .await
        .unwrap();
    // 4. a recording "deleted": a delete marker hides it
    c.delete_object().bucket(&bucket).key(&hidden.archive_key).send().await.unwrap();
    // 5. a lock shortened with the governance bypass
    let soon = aws_smithy_types::DateTime::from_secs(chrono::Utc::now().timestamp() + 3600);
    c.put_object_retention()
        .bucket(&bucket)
        .key(&unlocked.archive_key)
        .set_version_id(unlocked.archive_version_id.clone())
        .retention(
            ObjectLockRetention::builder().mode(ObjectLockRetentionMode::Governance).retain_until_date(soon).build(),
        )
        .bypass_governance_retention(true)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    // 6. bytes planted where recordings live, unrecorded
    let planted = "recordings/00/planted.mp4";
    c.put_object()
        .bucket(&bucket)
        .key(planted)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"not evidence"))
        .send()
        .await
        .unwrap();

    let found = reconcile(&env.store, &env.db, &env.settings.bundles.prefix, false).await.unwrap();
    let kinds: BTreeSet<(String, DriftKind)> = found.drift.iter().map(|d| (d.key.clone(), d.kind)).collect();
    let want: BTreeSet<(String, DriftKind)> = [
        (held.archive_key.clone(), DriftKind::TagLowered),
        (held.archive_key.clone(), DriftKind::HoldLifted),
        (retagged.archive_key.clone(), DriftKind::TagLowered),
        (hidden.archive_key.clone(), DriftKind::Hidden),
        (unlocked.archive_key.clone(), DriftKind::LockShortened),
        (planted.to_string(), DriftKind::Unrecorded),
    ]
    .into_iter()
    .collect();
    assert_eq!(kinds, want, "{:#?}", found.drift);
    assert!(found.repaired.is_empty());
    assert_eq!(found.findings_raised, 6);
    let open: i64 = sqlx::query_scalar(
        "select count(*) from findings where kind = 'archive_drift' and withdrawn_at is null and severity = 'critical'",
    )
    .fetch_one(env.db.pool())
    .await
    .unwrap();
    assert_eq!(open, 6);
    // the JSON report names each drift
    let json = serde_json::to_value(&found).unwrap();
    assert_eq!(json["drift"].as_array().unwrap().len(), 6);

    // --repair raises what was lowered; what it cannot raise back stays reported, and nothing is
    // deleted or lowered (the planted object and the delete marker are still there).
    let repaired = reconcile(&env.store, &env.db, &env.settings.bundles.prefix, true).await.unwrap();
    let fixed: BTreeSet<(String, DriftKind)> = repaired.repaired.iter().map(|d| (d.key.clone(), d.kind)).collect();
    let want_fixed: BTreeSet<(String, DriftKind)> = [
        (held.archive_key.clone(), DriftKind::TagLowered),
        (held.archive_key.clone(), DriftKind::HoldLifted),
        (retagged.archive_key.clone(), DriftKind::TagLowered),
        (unlocked.archive_key.clone(), DriftKind::LockShortened),
    ]
    .into_iter()
    .collect();
    assert_eq!(fixed, want_fixed);
    let head =
        env.store.head_version(&bucket, &held.archive_key, held.archive_version_id.as_deref()).await.unwrap().unwrap();
    assert!(head.legal_hold);
    assert_eq!(
        env.store
            .retention_tag_of(&bucket, &held.archive_key, held.archive_version_id.as_deref())
            .await
            .unwrap()
            .as_deref(),
        Some("permanent")
    );
    let head = env
        .store
        .head_version(&bucket, &unlocked.archive_key, unlocked.archive_version_id.as_deref())
        .await
        .unwrap()
        .unwrap();
    assert!(head.lock_until >= unlocked.lock_until, "{:?} < {:?}", head.lock_until, unlocked.lock_until);
    assert!(env.store.head(&bucket, planted).await.unwrap().is_some(), "repair deletes nothing");

    let after = reconcile(&env.store, &env.db, &env.settings.bundles.prefix, false).await.unwrap();
    let left: BTreeSet<(String, DriftKind)> = after.drift.iter().map(|d| (d.key.clone(), d.kind)).collect();
    let want_left: BTreeSet<(String, DriftKind)> =
        [(hidden.archive_key.clone(), DriftKind::Hidden), (planted.to_string(), DriftKind::Unrecorded)]
            .into_iter()
            .collect();
    assert_eq!(left, want_left);
    assert_eq!(after.findings_withdrawn, 4, "the repaired drift's findings are withdrawn");
    let (live, last) = env.db.drift_status().await.unwrap();
    assert_eq!(live, 2);
    assert!(last.is_some());
    env.finish().await;
}
