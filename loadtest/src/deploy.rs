//! An isolated deployment on the shared local stack, as `tests/harness` makes one: its own queue
//! prefix, its own buckets, its own Postgres database, all removed again by [`Names::teardown`].
//!
//! Unlike the tests, the archive bucket uses Object Lock in GOVERNANCE mode: the worker runs the
//! very same calls (PutObjectRetention differs only in the mode it sends), and the benchmark can
//! then delete what it archived with `x-amz-bypass-governance-retention` instead of leaving
//! hundreds of locked megabytes in moto's memory until it is restarted.

use anyhow::Context;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use recvault_config::Settings;
use recvault_db::Db;
use recvault_queue::{Broker, Topology};
use recvault_station::{Station, StationIdentity};
use recvault_store::{LockMode, Store};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::Path;

/// Everything a deployment is called, enough to remove it even if creating it failed halfway.
#[derive(Debug, Clone)]
pub struct Names {
    pub id: String,
    pub settings: Settings,
    /// Bucket of the plain-upload baseline (no lock, no versioning).
    pub plain_bucket: String,
    db_name: String,
    admin_url: String,
}

impl Names {
    pub fn new(base: &Settings, admin_url: &str, concurrency: u16, work_dir: &Path) -> anyhow::Result<Self> {
        let id = format!("l{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let mut s = base.clone();
        s.amqp.prefix = format!("rvload.{id}");
        s.amqp.retry_delays_ms = vec![1_000, 2_000, 5_000];
        s.s3.staging_bucket = format!("rv-{id}-staging");
        s.s3.archive_bucket = format!("rv-{id}-archive");
        s.s3.probe_bucket_prefix = format!("rv-{id}-probe");
        s.s3.lock_mode = LockMode::Governance;
        s.worker.concurrency = concurrency;
        s.worker.spool_dir = work_dir.join(format!("spool-{id}"));
        s.worker.metrics_addr = free_port()?;
        s.worker.shutdown_grace_secs = 10;
        s.worker.id = Some(format!("loadtest-{id}"));
        let db_name = format!("rvload_{id}");
        // As deployed: migrations as the owner (the admin role that creates the database), the
        // processes as the service role of the environment, both on the benchmark's database.
        let service_url = s.database.url.expose_secret().to_string();
        s.database.url = SecretString::from(recvault_db::url_with_database(&service_url, &db_name));
        s.database.owner_url = Some(SecretString::from(recvault_db::url_with_database(admin_url, &db_name)));
        Ok(Self { plain_bucket: format!("rv-{id}-plain"), db_name, admin_url: admin_url.to_string(), settings: s, id })
    }

    /// Removes the queues and exchanges, every object version and the buckets, the database and
    /// the spool directory. Best effort; returns what it did and what failed.
    pub async fn teardown(&self) -> String {
        let s = &self.settings;
        let mut notes = Vec::new();
        match lapin::Connection::connect(s.amqp.url.expose_secret(), lapin::ConnectionProperties::default()).await {
            Ok(conn) => {
                if let Ok(ch) = conn.create_channel().await {
                    let t = Topology::new(&s.amqp.prefix, &s.amqp.retry_delays_ms, s.amqp.delivery_limit);
                    let mut queues = vec![t.work_queue.clone(), t.dead_queue.clone(), t.bundle_queue.clone()];
                    queues.extend(t.all_retry_queues().into_iter().map(|(q, _)| q.name.clone()));
                    let n = queues.len();
                    for q in queues {
                        let _ = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
                    }
                    for x in [t.jobs_exchange, t.dead_exchange, t.events_exchange] {
                        let _ = ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await;
                    }
                    notes.push(format!("{n} queues and 3 exchanges deleted"));
                }
                let _ = conn.close(200, "bye".into()).await;
            }
            Err(e) => notes.push(format!("queues NOT deleted ({e})")),
        }

        let store = Store::connect(s.s3.clone()).await;
        let mut objects = 0;
        for bucket in [&s.s3.staging_bucket, &s.s3.archive_bucket, &self.plain_bucket] {
            match remove_bucket(store.client(), bucket).await {
                Ok(n) => objects += n,
                Err(e) => notes.push(format!("bucket {bucket} NOT removed: {e}")),
            }
        }
        notes.push(format!("{objects} object versions and the buckets removed"));

        match sqlx::PgPool::connect(&self.admin_url).await {
            Ok(admin) => {
                // db_name is "rvload_" plus hex digits: safe to splice.
                let drop = format!("drop database if exists {} with (force)", self.db_name);
                match sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await {
                    Ok(_) => notes.push(format!("database {} dropped", self.db_name)),
                    Err(e) => notes.push(format!("database {} NOT dropped: {e}", self.db_name)),
                }
                admin.close().await;
            }
            Err(e) => notes.push(format!("database NOT dropped: {e}")),
        }
        let _ = std::fs::remove_dir_all(&s.worker.spool_dir);
        notes.join("; ")
    }
}

/// A connected deployment: buckets set up, database migrated, topology declared.
#[derive(Debug)]
pub struct Deployment {
    pub store: Store,
    pub db: Db,
    pub broker: Broker,
    pub station: Station,
}

/// The archive bucket of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveBucket {
    /// As `recvault setup` makes it: versioning, Object Lock, the lifecycle rules.
    Locked,
    /// Versioning only: no object can be locked or held, so everything can be deleted afterwards
    /// (the worker then runs with `s3.dev_mode`).
    Unlocked,
}

impl Deployment {
    pub async fn create(names: &Names) -> anyhow::Result<Self> {
        Self::create_with(names, ArchiveBucket::Locked).await
    }

    pub async fn create_with(names: &Names, archive: ArchiveBucket) -> anyhow::Result<Self> {
        let s = &names.settings;
        let admin = sqlx::PgPool::connect(&names.admin_url)
            .await
            .context("postgres admin connection (is the stack up? deploy/local/stack.sh)")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {}", names.db_name)))
            .execute(&admin)
            .await
            .context("creating the benchmark database")?;
        admin.close().await;

        let store = Store::connect(s.s3.clone()).await;
        match archive {
            ArchiveBucket::Locked => {
                store.setup_buckets().await.context("bucket set-up (is the S3 store up? deploy/local/stack.sh)")?;
            }
            ArchiveBucket::Unlocked => {
                for bucket in [&s.s3.staging_bucket, &s.s3.archive_bucket] {
                    versioned_bucket(store.client(), bucket).await?;
                }
            }
        }
        store
            .client()
            .create_bucket()
            .bucket(&names.plain_bucket)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("creating {}: {}", names.plain_bucket, DisplayErrorContext(&e)))?;
        Db::migrate(&s.database).await.context("migrations")?;
        let db = Db::connect(&s.database).await.context("benchmark database")?;
        let broker = Broker::connect(&s.amqp, "recvault-loadtest").await.context("rabbitmq (is the stack up?)")?;
        broker.declare().await.context("declaring the topology")?;
        let station = Station::new(
            StationIdentity { station_id: "st-load".into(), unit: "zhidui".into(), squad: Some("sq1".into()) },
            store.clone(),
            broker.publisher().await.context("publisher")?,
        );
        Ok(Self { store, db, broker, station })
    }

    pub async fn close(self) {
        self.broker.close().await;
        self.db.close().await;
    }
}

/// A bucket with versioning and nothing else.
async fn versioned_bucket(c: &aws_sdk_s3::Client, bucket: &str) -> anyhow::Result<()> {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    c.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating {bucket}: {}", DisplayErrorContext(&e)))?;
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("versioning on {bucket}: {}", DisplayErrorContext(&e)))?;
    Ok(())
}

/// Aborts unfinished multipart uploads, deletes every version and delete marker (bypassing
/// governance locks), then the bucket. Returns the versions deleted; a bucket that does not exist
/// is fine.
async fn remove_bucket(c: &aws_sdk_s3::Client, bucket: &str) -> Result<usize, String> {
    let mut deleted = 0;
    match c.list_multipart_uploads().bucket(bucket).send().await {
        Ok(list) => {
            for u in list.uploads() {
                let _ = c
                    .abort_multipart_upload()
                    .bucket(bucket)
                    .set_key(u.key().map(str::to_string))
                    .set_upload_id(u.upload_id().map(str::to_string))
                    .send()
                    .await;
            }
        }
        Err(e) if e.code() == Some("NoSuchBucket") => return Ok(0),
        Err(_) => {}
    }
    loop {
        let list = match c.list_object_versions().bucket(bucket).send().await {
            Ok(l) => l,
            Err(e) if e.code() == Some("NoSuchBucket") => return Ok(deleted),
            Err(e) => return Err(DisplayErrorContext(&e).to_string()),
        };
        let mut ids: Vec<(Option<String>, Option<String>)> =
            list.versions().iter().map(|v| (v.key().map(str::to_string), v.version_id().map(str::to_string))).collect();
        ids.extend(
            list.delete_markers().iter().map(|m| (m.key().map(str::to_string), m.version_id().map(str::to_string))),
        );
        if ids.is_empty() {
            break;
        }
        for (key, version) in ids {
            c.delete_object()
                .bucket(bucket)
                .set_key(key)
                .set_version_id(version)
                .bypass_governance_retention(true)
                .send()
                .await
                .map_err(|e| DisplayErrorContext(&e).to_string())?;
            deleted += 1;
        }
    }
    match c.delete_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(deleted),
        Err(e) if e.code() == Some("NoSuchBucket") => Ok(deleted),
        Err(e) => Err(DisplayErrorContext(&e).to_string()),
    }
}

/// A port free right now on 127.0.0.1 (for the spawned worker's `/metrics` and `/readyz`).
pub(crate) fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_environment_round_trips_through_settings() {
        let base = Settings::default();
        let names = Names::new(&base, "postgres://u@h/postgres", 3, Path::new("/tmp/x")).unwrap();
        let env = names.settings.to_env();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("RECVAULT_S3__LOCK_MODE").as_deref(), Some("governance"));
        assert_eq!(get("RECVAULT_WORKER__CONCURRENCY").as_deref(), Some("3"));
        assert!(get("RECVAULT_AMQP__PREFIX").unwrap().starts_with("rvload."));
    }
}
