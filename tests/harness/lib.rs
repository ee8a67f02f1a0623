//! Test harness: a fresh, isolated recvault deployment on the real services for each test.
//!
//! Every [`TestEnv`] gets its own Postgres database, its own queue prefix, its own buckets and its
//! own docking station (a broker user of its own, staging under its own prefix), so tests run in
//! parallel against one broker, one Postgres and one S3 server (Ceph's gateway) without seeing
//! each other. Services come from the environment that `deploy/local/stack.sh` prints
//! (`RECVAULT_AMQP__URL`, `RECVAULT_S3__ENDPOINT`, `RECVAULT_DATABASE__URL` for the service role,
//! `RECVAULT_DATABASE__OWNER_URL` and `RECVAULT_TEST_PG_ADMIN_URL` for the owner, ...). The
//! worker connects as the service role, as in production; migrations run as the owner.
//!
//! [`TestEnv::start_api`] serves the HTTP API on a port of its own with a signing key of its own
//! ([`api::RunningApi`] mints tokens for any role and unit).
//!
//! [`proxy::TcpProxy`] sits between a worker and a service so a test can stall or cut the
//! connection without disturbing the other tests.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod api;
pub mod proxy;

use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use recvault_db::Db;
use recvault_fixtures::{GroundTruth, RecordingSpec};
use recvault_queue::Broker;
use recvault_queue::admin::{BrokerAdmin, amqp_url_as};
use recvault_station::{FileInfo, Station, StationIdentity};
use recvault_store::Store;
use recvault_worker::{Metrics, Settings, Worker};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use recvault_fixtures as fixtures;

/// One isolated deployment.
#[derive(Debug)]
pub struct TestEnv {
    pub settings: Settings,
    pub store: Store,
    /// Connected as the service role (what the worker can do).
    pub db: Db,
    /// Connected as the owner of the test database (what a test inspects or tampers with).
    pub owner: sqlx::PgPool,
    pub broker: Broker,
    /// The docking station, publishing as its own broker user.
    pub station: Station,
    /// The station's broker connection (its user may only publish to the jobs exchange).
    pub station_broker: Broker,
    pub station_password: SecretString,
    pub admin: BrokerAdmin,
    pub files: tempfile::TempDir,
    /// Broker users of further stations this test made ([`TestEnv::another_station`]).
    extra_stations: std::sync::Mutex<Vec<String>>,
    /// Queues a test bound ([`TestEnv::bind_events`]), deleted at the end.
    extra_queues: std::sync::Mutex<Vec<String>>,
    admin_url: String,
    db_name: String,
    amqp: lapin::Connection,
}

/// A worker running inside the test process.
#[derive(Debug)]
pub struct RunningWorker {
    pub shutdown: CancellationToken,
    pub metrics: Metrics,
    pub metrics_addr: Option<SocketAddr>,
    handle: JoinHandle<()>,
}

impl RunningWorker {
    /// Graceful stop: cancel and wait until every job is settled.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.handle).await.expect("worker stops").expect("worker task");
    }

    /// A counter of `recvault_jobs_total{outcome}`.
    pub fn outcome_count(&self, outcome: &str) -> u64 {
        self.metrics.jobs.with_label_values(&[outcome]).get()
    }
}

/// A message read back from a queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub body: Vec<u8>,
    pub headers: FieldTable,
}

impl QueuedMessage {
    pub fn header(&self, name: &str) -> Option<String> {
        match self.headers.inner().get(name)? {
            AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
            AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
            other => Some(format!("{other:?}")),
        }
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,recvault_worker=info".into()))
        .with_test_writer()
        .try_init();
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl TestEnv {
    pub async fn new() -> Self {
        Self::with(|_| {}).await
    }

    /// A deployment whose settings `tweak` adjusts (before anything is created).
    pub async fn with(tweak: impl FnOnce(&mut Settings)) -> Self {
        init_tracing();
        let mut settings = Settings::load(None).expect("settings from the environment");
        let id = unique("t");
        settings.amqp.prefix = format!("rvtest.{id}");
        settings.amqp.retry_delays_ms = vec![500, 1000, 2000];
        settings.s3.staging_bucket = format!("rv-{id}-staging");
        settings.s3.archive_bucket = format!("rv-{id}-archive");
        settings.s3.probe_bucket_prefix = format!("rv-{id}-probe");
        settings.worker.metrics_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.worker.shutdown_grace_secs = 10;
        settings.worker.id = Some(format!("test-worker-{id}"));
        // The capability probe waits out a compliance lock; its own test runs it (tests/store.rs).
        settings.worker.probe_store_at_start = false;
        let admin_url = std::env::var("RECVAULT_TEST_PG_ADMIN_URL")
            .unwrap_or_else(|_| "postgres://recvault:recvault-local@127.0.0.1:5432/postgres".into());
        let db_name = format!("rvtest_{id}");
        let admin = sqlx::PgPool::connect(&admin_url)
            .await
            .expect("postgres admin connection (is the stack up? deploy/local/stack.sh)");
        // db_name is "rvtest_" plus hex digits: safe to splice.
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {db_name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let service_url = settings.database.url.expose_secret().to_string();
        settings.database.url = SecretString::from(recvault_db::url_with_database(&service_url, &db_name));
        let owner_url = recvault_db::url_with_database(&admin_url, &db_name);
        settings.database.owner_url = Some(SecretString::from(owner_url.clone()));
        settings.database.max_connections = 4;
        tweak(&mut settings);

        let store = Store::connect(settings.s3.clone()).await;
        store.setup_buckets().await.expect("bucket set-up (is the S3 store up? deploy/local/stack.sh)");
        Db::migrate(&settings.database).await.expect("migrations");
        let db = Db::connect(&settings.database).await.expect("test database as the service role");
        let owner = sqlx::PgPool::connect(&owner_url).await.expect("test database as the owner");
        let broker = Broker::connect(&settings.amqp, "recvault-test").await.expect("rabbitmq (is the stack up?)");
        broker.declare().await.expect("declare topology");
        // The station: a broker user of its own, allowed to publish to this test's jobs exchange.
        let station_id = format!("st-{id}");
        let admin = BrokerAdmin::new(&settings.amqp.url, &settings.amqp.management_url).expect("broker admin");
        let station_password = SecretString::from(uuid::Uuid::new_v4().simple().to_string());
        admin
            .register_station(&station_id, &station_password, &settings.amqp.prefix)
            .await
            .expect("registering the station's broker user (management API)");
        let mut station_amqp = settings.amqp.clone();
        station_amqp.url = amqp_url_as(&settings.amqp.url, &station_id, &station_password).expect("station url");
        let station_broker = Broker::connect(&station_amqp, &station_id).await.expect("the station connects");
        let station = Station::new(
            StationIdentity { station_id, unit: "zhidui".into(), squad: Some("sq1".into()) },
            store.clone(),
            station_broker.publisher().await.expect("publisher"),
        );
        let amqp =
            lapin::Connection::connect(settings.amqp.url.expose_secret(), lapin::ConnectionProperties::default())
                .await
                .expect("rabbitmq");
        Self {
            settings,
            store,
            db,
            owner,
            broker,
            station,
            station_broker,
            station_password,
            admin,
            files: tempfile::tempdir().expect("tempdir"),
            extra_stations: std::sync::Mutex::new(Vec::new()),
            extra_queues: std::sync::Mutex::new(Vec::new()),
            admin_url,
            db_name,
            amqp,
        }
    }

    async fn clean_buckets(&self) {
        let c = self.store.client();
        let prefix = self.settings.s3.staging_bucket.trim_end_matches("-staging").to_string();
        let Ok(list) = c.list_buckets().send().await else { return };
        for b in list.buckets().iter().filter_map(|b| b.name()).filter(|n| n.starts_with(&prefix)) {
            let _ = c.delete_bucket_lifecycle().bucket(b).send().await;
            if let Ok(versions) = self.store.list_versions(b, "").await {
                for v in versions {
                    let _ = c.delete_object().bucket(b).key(&v.key).set_version_id(v.version_id.clone()).send().await;
                }
            }
            let _ = c.delete_bucket().bucket(b).send().await;
        }
    }

    /// Another docking station of this deployment, with a broker user of its own (`suffix` makes
    /// its id): what an attacker or a faulty station would use.
    pub async fn another_station(&self, suffix: &str) -> (Station, Broker) {
        let station_id = format!("{}-{suffix}", self.station.identity.station_id);
        let password = SecretString::from(uuid::Uuid::new_v4().simple().to_string());
        self.admin.register_station(&station_id, &password, &self.settings.amqp.prefix).await.expect("station user");
        self.extra_stations.lock().expect("lock").push(station_id.clone());
        let mut amqp = self.settings.amqp.clone();
        amqp.url = amqp_url_as(&self.settings.amqp.url, &station_id, &password).expect("station url");
        let broker = Broker::connect(&amqp, &station_id).await.expect("the other station connects");
        let station = Station::new(
            StationIdentity { station_id, unit: "zhidui".into(), squad: None },
            self.store.clone(),
            broker.publisher().await.expect("publisher"),
        );
        (station, broker)
    }

    /// Starts a worker in this process with these settings.
    pub async fn start_worker(&self) -> RunningWorker {
        self.start_worker_with(self.settings.clone()).await
    }

    pub async fn start_worker_with(&self, settings: Settings) -> RunningWorker {
        let metrics = Metrics::new();
        let worker = Worker::start(settings, metrics.clone()).await.expect("worker starts");
        let metrics_addr = worker.metrics_addr();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            worker.run(token, None).await.expect("worker runs");
        });
        RunningWorker { shutdown, metrics, metrics_addr, handle }
    }

    /// Generates a fixture file.
    pub fn fixture(&self, name: &str, spec: &RecordingSpec) -> (PathBuf, GroundTruth) {
        let path = self.files.path().join(name);
        let truth = recvault_fixtures::generate(spec, &path).expect("fixture generation");
        (path, truth)
    }

    /// Writes arbitrary bytes as a file.
    pub fn raw_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.files.path().join(name);
        std::fs::write(&path, bytes).expect("write file");
        path
    }

    pub fn file_info(device: &str) -> FileInfo {
        FileInfo { device_id: device.into(), officer_ids: vec!["35010001".into()], ..FileInfo::default() }
    }

    /// Stages and posts a file as `device` with its recording start (recorder clock) set, and
    /// station and recorder clocks read at `docked` (equal, unless `mutate` says otherwise).
    pub async fn submit_at(
        &self,
        path: &Path,
        device: &str,
        recorded_start: chrono::DateTime<chrono::FixedOffset>,
        docked: chrono::DateTime<chrono::FixedOffset>,
        mutate: impl FnOnce(&mut recvault_core::job::UploadJobV1),
    ) -> recvault_core::UploadJob {
        self.submit_with(path, device, |wire| {
            wire.recorded_start = Some(recorded_start);
            wire.station_time = docked;
            wire.device_time = docked;
            mutate(wire);
        })
        .await
    }

    /// Stages and posts a file as `device`, the job changed by `mutate` before it is sealed.
    pub async fn submit_with(
        &self,
        path: &Path,
        device: &str,
        mutate: impl FnOnce(&mut recvault_core::job::UploadJobV1),
    ) -> recvault_core::UploadJob {
        let mut wire = self.station.prepare(path, &Self::file_info(device)).await.expect("prepare");
        mutate(&mut wire);
        let job = recvault_core::UploadJob::new(wire).expect("valid job");
        self.station.stage(path, &job).await.expect("stage");
        self.station.post_raw(job.job_id(), &job.to_json()).await.expect("post");
        job
    }

    /// Generates a recording (`seed` makes its bytes), archives it with its job changed by
    /// `mutate` (unit, activity, times; a worker must be running) and returns its recording id.
    pub async fn archive_recording(&self, seed: u64, mutate: impl FnOnce(&mut recvault_core::job::UploadJobV1)) -> i64 {
        let (path, _) = self.fixture(&format!("rec-{seed}.mp4"), &RecordingSpec { seed, ..RecordingSpec::default() });
        let job = self.submit_with(&path, &format!("DSJ-{seed}"), mutate).await;
        assert_eq!(self.wait_for_job(job.job_id(), Duration::from_secs(120)).await, "archived", "seed {seed}");
        self.recording_of(job.job_id()).await
    }

    /// Live findings of a recording, by kind code.
    pub async fn live_findings(&self, recording_id: i64) -> Vec<String> {
        sqlx::query_scalar("select kind from findings where recording_id = $1 and withdrawn_at is null order by kind")
            .bind(recording_id)
            .fetch_all(self.db.pool())
            .await
            .expect("findings")
    }

    /// The recording a job produced.
    pub async fn recording_of(&self, job_id: &str) -> i64 {
        sqlx::query_scalar("select recording_id from ingest_jobs where job_id = $1")
            .bind(job_id)
            .fetch_one(self.db.pool())
            .await
            .expect("job row")
    }

    /// Waits until the job has a completed row; returns its state.
    pub async fn wait_for_job(&self, job_id: &str, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some((state, _)) = self.db.job_outcome(job_id).await.expect("job outcome") {
                return state;
            }
            assert!(tokio::time::Instant::now() < deadline, "job {job_id} did not complete within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `n` messages sit in the dead-letter queue, then takes them all (acknowledged).
    pub async fn take_dead_letters(&self, n: usize, timeout: Duration) -> Vec<QueuedMessage> {
        let queue = self.broker.topology().dead_queue.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (ready, _) = self.broker.depth(&queue).await.expect("depth");
            if ready as usize >= n {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} dead letters expected, {ready} arrived within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.take_all(&queue).await
    }

    /// Waits until `n` messages sit in the dead-letter queue, leaving them there.
    pub async fn wait_for_dead_letters(&self, n: u32, timeout: Duration) {
        let queue = self.broker.topology().dead_queue.clone();
        eventually(&format!("{n} dead letter(s)"), timeout, || async {
            self.broker.depth(&queue).await.expect("depth").0 >= n
        })
        .await;
    }

    /// Publishes a raw message with headers (as the operator's connection, which may set any
    /// `user_id`): what a message that went through the broker's hands looks like.
    pub async fn publish_with_headers(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: FieldTable,
        user_id: Option<&str>,
    ) {
        let ch = self.amqp.create_channel().await.expect("channel");
        ch.confirm_select(lapin::options::ConfirmSelectOptions::default()).await.expect("confirms");
        let mut props = lapin::BasicProperties::default().with_delivery_mode(2).with_headers(headers);
        if let Some(u) = user_id {
            props = props.with_user_id(u.into());
        }
        let confirm = ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                lapin::options::BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "the broker took the message");
        let _ = ch.close(200, "done".into()).await;
    }

    /// Takes (and acknowledges) every message now in `queue`.
    pub async fn take_all(&self, queue: &str) -> Vec<QueuedMessage> {
        let ch = self.amqp.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Some(m) = ch.basic_get(queue.into(), BasicGetOptions::default()).await.expect("basic.get") {
            out.push(QueuedMessage {
                body: m.delivery.data.clone(),
                headers: m.delivery.properties.headers().clone().unwrap_or_default(),
            });
            m.delivery.acker.ack(BasicAckOptions::default()).await.expect("ack");
        }
        out
    }

    /// A queue of this test's own bound to the events exchange for `routing_key` (a case
    /// system's subscription); read it with [`TestEnv::take_all`].
    pub async fn bind_events(&self, routing_key: &str) -> String {
        let ch = self.amqp.create_channel().await.expect("channel");
        let name = format!("{}.test-events.{}", self.settings.amqp.prefix, uuid::Uuid::new_v4().simple());
        ch.queue_declare(name.as_str().into(), lapin::options::QueueDeclareOptions::default(), FieldTable::default())
            .await
            .expect("declare event queue");
        let exchange = self.broker.topology().events_exchange.clone();
        ch.queue_bind(
            name.as_str().into(),
            exchange.as_str().into(),
            routing_key.into(),
            lapin::options::QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind event queue");
        self.extra_queues.lock().expect("lock").push(name.clone());
        name
    }

    /// Messages ready in the work queue.
    pub async fn work_queue_depth(&self) -> u32 {
        self.broker.depth(&self.broker.topology().work_queue).await.expect("depth").0
    }

    pub async fn staged_exists(&self, key: &str) -> bool {
        self.store.head(&self.settings.s3.staging_bucket, key).await.expect("head").is_some()
    }

    /// Drops the test database, the queues and the station's broker user, and empties this test's
    /// buckets of what can be deleted. Locked versions cannot be (which is the point): their
    /// buckets stay, with their lifecycle rules removed so the store's lifecycle runs do not slow
    /// down as test buckets pile up.
    pub async fn finish(self) {
        self.clean_buckets().await;
        self.broker.close().await;
        self.station_broker.close().await;
        let _ = self.admin.remove_station(&self.station.identity.station_id).await;
        let extra = std::mem::take(&mut *self.extra_stations.lock().expect("lock"));
        for s in extra {
            let _ = self.admin.remove_station(&s).await;
        }
        self.owner.close().await;
        if let Ok(ch) = self.amqp.create_channel().await {
            let t = recvault_queue::Topology::new(&self.settings.amqp.prefix, &self.settings.amqp.retry_delays_ms, 1);
            let mut queues = vec![t.work_queue, t.dead_queue, t.bundle_queue];
            queues.extend(t.retry_queues.into_iter().map(|q| q.name));
            queues.extend(t.bundle_retry_queues.into_iter().map(|q| q.name));
            queues.extend(self.extra_queues.lock().expect("lock").drain(..));
            for q in queues {
                let _ = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
            }
            for x in [t.jobs_exchange, t.dead_exchange, t.events_exchange] {
                let _ = ch.exchange_delete(x.as_str().into(), lapin::options::ExchangeDeleteOptions::default()).await;
            }
        }
        let _ = self.amqp.close(200, "bye".into()).await;
        self.db.close().await;
        if let Ok(admin) = sqlx::PgPool::connect(&self.admin_url).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("drop database if exists {} with (force)", self.db_name)))
                .execute(&admin)
                .await;
        }
    }
}

/// `${RECVAULT_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/recvault}`, where deploy/local/tools.sh
/// installs the validators (`venv/`, `node/`).
pub fn state_dir() -> PathBuf {
    if let Some(s) = std::env::var_os("RECVAULT_STATE").filter(|s| !s.is_empty()) {
        return PathBuf::from(s);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache"));
    cache.join("recvault")
}

/// A program of the validators' virtualenv (`bagit.py`, `openapi-spec-validator`).
pub fn venv_tool(name: &str) -> PathBuf {
    let p = state_dir().join("venv/bin").join(name);
    assert!(p.exists(), "{} missing: run deploy/local/tools.sh", p.display());
    p
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// The `recvault` binary built next to the test executables (`cargo test --workspace` builds it
/// for the CLI's own integration tests; `RECVAULT_BIN` overrides).
pub fn recvault_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RECVAULT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("recvault");
    assert!(bin.exists(), "{} not built: run `cargo build -p recvault` (or cargo test --workspace)", bin.display());
    bin
}

/// `recvault worker` as its own process with these settings (which a test can SIGKILL), logging
/// to the test's stderr.
pub fn spawn_worker_process(settings: &Settings) -> tokio::process::Child {
    tokio::process::Command::new(recvault_bin())
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("RUST_LOG", std::env::var("RECVAULT_TEST_WORKER_LOG").unwrap_or_else(|_| "warn".into()))
        .envs(settings.to_env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn recvault worker")
}

/// 96x64 video at 5 fps, 50 kb/s, a keyframe a second: a recording's segment that is quick to
/// generate and ingest.
pub fn tiny_video() -> recvault_fixtures::VideoSpec {
    recvault_fixtures::VideoSpec {
        width: 96,
        height: 64,
        fps: 5,
        bitrate_kbps: 50,
        keyframe_interval: 5,
        ..recvault_fixtures::VideoSpec::default()
    }
}

/// Waits for `cond` to hold, polling.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
