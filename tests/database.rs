//! The database protects the evidence too (R19.1, R21.1): the services connect as a role that can
//! read, insert and take the raise-only paths, and nothing else; every permitted change to an
//! evidence row leaves a row in `evidence_changes` in the same transaction; connections can
//! require TLS.

#![allow(clippy::unwrap_used)]

use recvault_fixtures::RecordingSpec;
use recvault_tests::TestEnv;
use secrecy::ExposeSecret;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

async fn archived_recording(env: &TestEnv) -> i64 {
    let (path, _) = env.fixture("evidence.mp4", &RecordingSpec { seed: 91, ..RecordingSpec::default() });
    let worker = env.start_worker().await;
    let job = env.station.submit(&path, &TestEnv::file_info("DSJ-0901")).await.unwrap();
    assert_eq!(env.wait_for_job(job.job_id(), WAIT).await, "archived");
    worker.stop().await;
    env.recording_of(job.job_id()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r21_1_the_service_role_cannot_delete_rewrite_or_unprotect_evidence() {
    let env = TestEnv::new().await;
    let id = archived_recording(&env).await;
    let snapshot = || async {
        sqlx::query_as::<_, (Vec<u8>, String, Option<chrono::DateTime<chrono::Utc>>, bool, i64, i64)>(
            "select blake3, retention_class, lock_until, legal_hold, \
               (select count(*) from ingest_jobs), (select count(*) from evidence_changes) from recordings where id = $1",
        )
        .bind(id)
        .fetch_one(&env.owner)
        .await
        .unwrap()
    };
    let before = snapshot().await;

    let forbidden = [
        "truncate recordings".to_string(),
        "truncate ingest_jobs, recordings cascade".into(),
        format!("delete from recordings where id = {id}"),
        format!("update recordings set blake3 = sha256(blake3) where id = {id}"),
        format!("update recordings set retention_class = 'permanent' where id = {id}"),
        format!("update recordings set lock_until = now() where id = {id}"),
        format!("update recordings set archive_version_id = 'other' where id = {id}"),
        format!("update recordings set legal_hold = true where id = {id}"),
        "update ingest_jobs set job_digest = null".into(),
        "delete from ingest_jobs".into(),
        "delete from findings".into(),
        "update retention_events set to_class = 'two_years'".into(),
        "insert into evidence_changes (table_name, row_id, change, old, new, actor) values ('recordings', 1, 'x', '{}', '{}', 'forged')".into(),
        "delete from evidence_changes".into(),
        "alter table recordings disable trigger all".into(),
        "alter table recordings disable trigger recordings_guarded".into(),
        "drop trigger recordings_guarded on recordings".into(),
        "set session_replication_role = replica".into(),
        "drop table recordings cascade".into(),
        "create table planted (x int)".into(),
        "alter table recordings drop constraint recordings_blake3_key".into(),
        "create or replace function recvault_retention_rank(class text) returns int language sql as 'select 0'".into(),
    ];
    for sql in &forbidden {
        let result = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone())).execute(env.db.pool()).await;
        let err = result.err().unwrap_or_else(|| panic!("the service role was allowed: {sql}"));
        let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
        assert!(code.as_deref() == Some("42501"), "{sql}: expected a privilege error, got {code:?} {err}");
    }
    assert_eq!(snapshot().await, before, "nothing changed");
    // The lock path is open to the service, and only ever raises: an earlier date or another
    // mode changes nothing.
    sqlx::query("select recvault_raise_lock($1, 'GOVERNANCE', now() - interval '1 day', false)")
        .bind(id)
        .execute(env.db.pool())
        .await
        .unwrap();
    assert_eq!(snapshot().await, before, "a lock is never lowered");

    // The permitted path: raising the class through the database's one raise path logs it, in
    // the same transaction, with the actor the service named.
    let mut tx = env.db.pool().begin().await.unwrap();
    sqlx::query("select set_config('recvault.actor', 'test administrator', true)").execute(&mut *tx).await.unwrap();
    let was: String =
        sqlx::query_scalar("select recvault_raise_retention($1, 'permanent', 'R19.1(3) objection', null, true)")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(was, "two_years");
    tx.rollback().await.unwrap();
    assert_eq!(snapshot().await, before, "a rolled-back raise leaves no change row either");
    let mut tx = env.db.pool().begin().await.unwrap();
    sqlx::query("select set_config('recvault.actor', 'test administrator', true)").execute(&mut *tx).await.unwrap();
    sqlx::query("select recvault_raise_retention($1, 'permanent', 'R19.1(3) objection', null, true)")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let change: (String, String, serde_json::Value, serde_json::Value) = sqlx::query_as(
        "select change, actor, old, new from evidence_changes where table_name = 'recordings' and row_id = $1",
    )
    .bind(id)
    .fetch_one(env.db.pool())
    .await
    .unwrap();
    assert_eq!((change.0.as_str(), change.1.as_str()), ("retention_raised", "test administrator"));
    assert_eq!(
        (change.2["retention_class"].as_str(), change.3["retention_class"].as_str()),
        (Some("two_years"), Some("permanent"))
    );
    let events: i64 = sqlx::query_scalar("select count(*) from retention_events where recording_id = $1")
        .bind(id)
        .fetch_one(env.db.pool())
        .await
        .unwrap();
    assert_eq!(events, 1);
    // Lowering through the same path does nothing; not even the owner can lower it directly.
    let was: String = sqlx::query_scalar("select recvault_raise_retention($1, 'two_years', 'lower', null, false)")
        .bind(id)
        .fetch_one(env.db.pool())
        .await
        .unwrap();
    assert_eq!(was, "permanent");
    let owner_lowers = sqlx::query("update recordings set retention_class = 'two_years' where id = $1")
        .bind(id)
        .execute(&env.owner)
        .await;
    assert!(owner_lowers.unwrap_err().to_string().contains("R19.1"));
    let owner_deletes_log = sqlx::query("delete from evidence_changes").execute(&env.owner).await;
    assert!(owner_deletes_log.unwrap_err().to_string().contains("R21.1"));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_finding_leaves_a_change_row() {
    let env = TestEnv::new().await;
    let id = archived_recording(&env).await;
    let finding: i64 = sqlx::query_scalar(
        "insert into findings (recording_id, kind, requirement, severity, summary, evidence) \
         values ($1, 'interruption', 'R12.1', 'warning', 'test', '{}') returning id",
    )
    .bind(id)
    .fetch_one(env.db.pool())
    .await
    .unwrap();
    sqlx::query("update findings set withdrawn_at = now() where id = $1")
        .bind(finding)
        .execute(env.db.pool())
        .await
        .unwrap();
    let changes: i64 =
        sqlx::query_scalar("select count(*) from evidence_changes where table_name = 'findings' and row_id = $1 and change = 'finding_withdrawn'")
            .bind(finding)
            .fetch_one(env.db.pool())
            .await
            .unwrap();
    assert_eq!(changes, 1);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_can_require_tls() {
    let env = TestEnv::new().await;
    let url = env.settings.database.url.expose_secret();
    let url = if url.contains('?') { format!("{url}&sslmode=require") } else { format!("{url}?sslmode=require") };
    let mut cfg = env.settings.database.clone();
    cfg.url = secrecy::SecretString::from(url);
    let db = recvault_db::Db::connect(&cfg).await.expect("a TLS connection with sslmode=require");
    let ssl: bool = sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(ssl, "the connection is encrypted");
    db.close().await;
    env.finish().await;
}
