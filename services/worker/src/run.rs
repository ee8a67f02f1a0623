//! The worker: start-up checks, the consumer loop with bounded concurrency, and shutdown.
//!
//! Shutdown is explicit: cancelling the token stops consumption (basic.cancel), in-flight jobs get
//! `shutdown_grace_secs` to finish and settle, and whatever is still running after that is handed
//! back to the queue (nack with requeue) so another worker takes it. Deliveries the broker had
//! already pushed but no task had started are requeued too.

use crate::job::{JobContext, handle};
use crate::metrics::{Metrics, Outcome};
use recvault_config::Settings;
use recvault_core::calendar::WorkCalendar;
use recvault_core::deadlines::TimePolicy;
use recvault_db::{Db, DbError};
use recvault_queue::{Broker, JobConsumer, QueueError};
use recvault_store::{Capabilities, Capability, Store, StoreError};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("media: {0}")]
    Media(#[from] recvault_media::MediaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(
        "the object store lacks guarantees the archive needs: {0}. Use a store with versioning, Object Lock and tag-filtered lifecycle rules (AWS S3, MinIO, Ceph), run `recvault setup`, or set s3.dev_mode = true for a development set-up"
    )]
    MissingGuarantees(String),
    #[error("metrics listener on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("configuration: {0}")]
    Config(String),
    #[error("spool directory {path}: {source}")]
    Spool { path: String, source: std::io::Error },
}

/// Days before the end of the working-day calendar from which the worker warns.
const CALENDAR_WARNING_DAYS: i64 = 60;

/// Connected adapters, for callers that build them themselves (tests).
#[derive(Debug)]
pub struct WorkerDeps {
    pub store: Store,
    pub db: Db,
    pub broker: Broker,
}

/// A started worker, ready to [`Worker::run`].
#[derive(Debug)]
pub struct Worker {
    settings: Settings,
    deps: WorkerDeps,
    metrics: Metrics,
    capabilities: Capabilities,
    listener: Option<TcpListener>,
    /// R11.1/R17.1 thresholds and the working-day calendar, read once at start-up.
    time: TimePolicy,
    calendar: Arc<WorkCalendar>,
}

impl Worker {
    /// Connects to S3, Postgres and RabbitMQ, checks the store's guarantees, applies migrations
    /// and declares the queue topology. Fails with a message naming what is wrong.
    pub async fn start(settings: Settings, metrics: Metrics) -> Result<Self, StartError> {
        recvault_media::init()?;
        let store = Store::connect(settings.s3.clone()).await;
        if settings.worker.migrate_at_start {
            Db::migrate(&settings.database).await?;
        }
        let db = Db::connect(&settings.database).await?;
        db.check_schema().await?;
        let broker =
            Broker::connect(&settings.amqp, &format!("recvault-worker {}", settings.worker.worker_id())).await?;
        broker.declare().await?;
        if !broker.can_impersonate().await? {
            return Err(StartError::Config(
                "the worker's broker user lacks the `impersonator` tag: it re-publishes retries and dead letters with the station's user_id (rabbitmqctl set_user_tags <user> impersonator)".into(),
            ));
        }
        Self::with_deps(settings, WorkerDeps { store, db, broker }, metrics).await
    }

    /// Like [`Worker::start`] with adapters already connected and set up.
    pub async fn with_deps(settings: Settings, deps: WorkerDeps, metrics: Metrics) -> Result<Self, StartError> {
        // Fail on a bad calendar or time zone now, not on the first job.
        let time = settings.analysis.time_policy().map_err(StartError::Config)?;
        let calendar = Arc::new(settings.analysis.calendar().map_err(StartError::Config)?);
        // R17.1 deadlines count working days from this calendar: say so while there is time to
        // ship next year's (the State Council publishes it in the autumn).
        match calendar.days_remaining(chrono::Utc::now().date_naive()) {
            Some(days) if days < CALENDAR_WARNING_DAYS => warn!(
                days,
                last_day = ?calendar.last_day(),
                "the working-day calendar runs out soon: add next year's file to analysis.calendar_files (R17.1 deadlines then count plain weekdays)"
            ),
            None => warn!("no working-day calendar: R17.1 deadlines count plain weekdays"),
            Some(_) => {}
        }
        let spool = &settings.worker.spool_dir;
        let stale = crate::spool::clear_stale(spool)
            .map_err(|source| StartError::Spool { path: spool.display().to_string(), source })?;
        if stale > 0 {
            info!(stale, dir = %spool.display(), "removed spool files left by a stopped worker");
        }
        let mut capabilities = if settings.worker.probe_store_at_start {
            deps.store.probe_capabilities().await?
        } else {
            Capabilities::assumed_from_setup()
        };
        capabilities.merge(deps.store.check_buckets().await?);
        for c in Capability::ALL {
            metrics.capability.with_label_values(&[c.code()]).set(i64::from(capabilities.has(c)));
        }
        let missing = capabilities.missing_required();
        if !missing.is_empty() {
            let what = capabilities.describe_missing();
            if !settings.s3.dev_mode {
                return Err(StartError::MissingGuarantees(what));
            }
            warn!(missing = what, "s3.dev_mode: running WITHOUT the archive guarantees");
        } else {
            info!("object store guarantees verified: tagging, versioning, object lock enforced, lifecycle tag filter");
        }
        let addr = settings.worker.metrics_addr;
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Listen { addr, source })?;
        Ok(Self { settings, deps, metrics, capabilities, listener: Some(listener), time, calendar })
    }

    /// The bound address of `/metrics` (useful with port 0).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Consumes until `shutdown` is cancelled (or, with `idle_exit`, until the work and retry
    /// queues have been empty and nothing was in flight for that long).
    pub async fn run(mut self, shutdown: CancellationToken, idle_exit: Option<Duration>) -> Result<(), StartError> {
        let s = &self.settings;
        let worker_id = s.worker.worker_id();
        let topology = self.deps.broker.topology().clone();
        let ctx = Arc::new(JobContext {
            store: self.deps.store.clone(),
            db: self.deps.db.clone(),
            publisher: self.deps.broker.publisher().await?,
            metrics: self.metrics.clone(),
            policy: s.probe.policy(),
            spool_dir: s.worker.spool_dir.clone(),
            worker_id: worker_id.clone(),
            object_lock: self.capabilities.has(Capability::ObjectLock),
            max_retries: topology.max_retries(),
            delivery_limit: topology.delivery_limit,
            budget: crate::budget::SpoolBudget::new(s.worker.spool_dir.clone(), s.worker.spool_max_bytes),
            analysis: s.analysis.policy(),
            time: self.time,
            calendar: self.calendar.clone(),
        });
        let bundles = Arc::new(recvault_bundles::BundleContext {
            builder: recvault_bundles::Builder {
                store: self.deps.store.clone(),
                db: self.deps.db.clone(),
                cfg: s.bundles.clone(),
                object_lock: self.capabilities.has(Capability::ObjectLock),
            },
            publisher: ctx.publisher.clone(),
            max_retries: topology.max_retries(),
            worker_id: worker_id.clone(),
            outcomes: self.metrics.bundles.clone(),
        });
        let recovery = Arc::new(crate::recovery::RecoveryContext {
            store: self.deps.store.clone(),
            db: self.deps.db.clone(),
            metrics: self.metrics.clone(),
            policy: s.probe.policy(),
            analysis: s.analysis.policy(),
            spool_dir: s.worker.spool_dir.clone(),
            worker_id: worker_id.clone(),
            object_lock: self.capabilities.has(Capability::ObjectLock),
            lease: Duration::from_secs(s.worker.recovery_lease_secs.max(1)),
            max_attempts: s.worker.recovery_max_attempts.max(1),
            budget: ctx.budget.clone(),
        });
        // R2.1: one recovery pass at a time per worker, every recovery_poll_secs (0: never).
        let recovering = Arc::new(AtomicBool::new(false));
        let mut recovery_poll = tokio::time::interval(Duration::from_secs(s.worker.recovery_poll_secs.max(1)));
        recovery_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let recovery_on = s.worker.recovery_poll_secs > 0;
        let ready = Arc::new(AtomicBool::new(false));
        let http_stop = CancellationToken::new();
        let http = self
            .listener
            .take()
            .map(|l| tokio::spawn(crate::http::serve(l, self.metrics.clone(), ready.clone(), http_stop.clone())));

        let mut consumer = self.deps.broker.consume(s.worker.concurrency, &worker_id).await?;
        let mut bundle_consumer = self
            .deps
            .broker
            .consume_from(&topology.bundle_queue, s.bundles.concurrency, &format!("{worker_id}-bundles"))
            .await?;
        ready.store(true, Ordering::Relaxed);
        info!(worker_id, concurrency = s.worker.concurrency, queue = topology.work_queue, "consuming");
        info!(concurrency = s.bundles.concurrency, queue = topology.bundle_queue, "building bundles");

        let hard_stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut background: JoinSet<()> = JoinSet::new();
        let mut last_activity = tokio::time::Instant::now();
        let mut idle_check = tokio::time::interval(Duration::from_millis(500));
        let mut depth_poll = tokio::time::interval(Duration::from_secs(15));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                d = consumer.next() => match d {
                    Some(Ok(d)) => {
                        last_activity = tokio::time::Instant::now();
                        let ctx = ctx.clone();
                        let hard_stop = hard_stop.clone();
                        tasks.spawn(async move {
                            tokio::select! {
                                biased;
                                _ = hard_stop.cancelled() => {
                                    warn!("shutdown deadline passed, handing the job back to the queue");
                                    let _ = d.requeue().await;
                                    ctx.metrics.outcome(Outcome::Requeued);
                                }
                                _ = handle(&ctx, &d) => {}
                            }
                        });
                    }
                    Some(Err(e)) => {
                        error!(error = %e, "consumer failed");
                        break;
                    }
                    None => {
                        warn!("the broker closed the consumer");
                        break;
                    }
                },
                d = bundle_consumer.next() => match d {
                    Some(Ok(d)) => {
                        last_activity = tokio::time::Instant::now();
                        let bundles = bundles.clone();
                        let hard_stop = hard_stop.clone();
                        tasks.spawn(async move {
                            tokio::select! {
                                biased;
                                // A bundle cut short is rebuilt from scratch on redelivery (its
                                // unfinished upload is aborted first).
                                _ = hard_stop.cancelled() => { let _ = d.requeue().await; }
                                _ = recvault_bundles::handle(&bundles, &d) => {}
                            }
                        });
                    }
                    Some(Err(e)) => {
                        error!(error = %e, "bundle consumer failed");
                        break;
                    }
                    None => {
                        warn!("the broker closed the bundle consumer");
                        break;
                    }
                },
                Some(joined) = background.join_next() => {
                    if let Err(e) = joined {
                        error!(error = %e, "recovery task panicked; its claim is taken again when the lease ends");
                    }
                }
                Some(joined) = tasks.join_next() => {
                    last_activity = tokio::time::Instant::now();
                    if let Err(e) = joined {
                        error!(error = %e, "job task panicked; its message will be redelivered");
                    }
                }
                _ = depth_poll.tick() => self.poll_depths().await,
                _ = recovery_poll.tick(), if recovery_on => {
                    if !recovering.swap(true, Ordering::AcqRel) {
                        let (recovery, recovering, hard_stop) = (recovery.clone(), recovering.clone(), hard_stop.clone());
                        // Not a job: kept out of `tasks`, so that an idle poll is not activity.
                        background.spawn(async move {
                            tokio::select! {
                                biased;
                                // the claim's lease runs out and the row is taken again
                                _ = hard_stop.cancelled() => {}
                                _ = crate::recovery::run_due(&recovery) => {}
                            }
                            recovering.store(false, Ordering::Release);
                        });
                    }
                }
                _ = idle_check.tick(), if idle_exit.is_some() => {
                    if let Some(idle) = idle_exit
                        && tasks.is_empty()
                        && background.is_empty()
                        && last_activity.elapsed() >= idle
                        && self.queues_empty().await
                    {
                        info!("queues empty and nothing in flight, exiting");
                        break;
                    }
                }
            }
        }
        ready.store(false, Ordering::Relaxed);
        self.drain(vec![consumer, bundle_consumer], tasks, background, hard_stop).await;
        http_stop.cancel();
        if let Some(h) = http {
            let _ = h.await;
        }
        self.deps.broker.close().await;
        Ok(())
    }

    /// Updates `recvault_queue_messages`: the dead-letter queue fills up silently otherwise (the
    /// broker dead-letters crash loops on its own).
    async fn poll_depths(&self) {
        let t = self.deps.broker.topology();
        let depth =
            |q: String| async move { self.deps.broker.depth(&q).await.map(|(n, _)| i64::from(n)).unwrap_or(-1) };
        let work = depth(t.work_queue.clone()).await;
        let dead = depth(t.dead_queue.clone()).await;
        let bundles = depth(t.bundle_queue.clone()).await;
        let mut retry = 0;
        for q in t.distinct_retry_queues() {
            retry += depth(q.name.clone()).await.max(0);
        }
        for (queue, n) in [("work", work), ("retry", retry), ("dead", dead), ("bundles", bundles)] {
            self.metrics.queue_messages.with_label_values(&[queue]).set(n);
        }
        let days = self.calendar.days_remaining(chrono::Utc::now().date_naive()).unwrap_or(i64::MIN);
        self.metrics.calendar_days_remaining.set(days);
        match self.deps.db.overdue_cases(chrono::Utc::now(), None).await {
            Ok(overdue) => self.metrics.bundles_overdue.set(i64::try_from(overdue.len()).unwrap_or(i64::MAX)),
            Err(e) => warn!(error = %e, "could not count overdue bundles"),
        }
        match self.deps.db.drift_status().await {
            Ok((live, last)) => {
                self.metrics.archive_drift.set(live);
                self.metrics.reconcile_last_run.set(last.map_or(0, |t| t.timestamp()));
            }
            Err(e) => warn!(error = %e, "could not read the reconciliation status"),
        }
    }

    async fn queues_empty(&self) -> bool {
        let t = self.deps.broker.topology();
        let mut queues = vec![t.work_queue.clone(), t.bundle_queue.clone()];
        queues.extend(t.distinct_retry_queues().into_iter().map(|q| q.name.clone()));
        for q in queues {
            match self.deps.broker.depth(&q).await {
                Ok((0, _)) => {}
                _ => return false,
            }
        }
        true
    }

    async fn drain(
        &self,
        consumers: Vec<JobConsumer>,
        mut tasks: JoinSet<()>,
        mut background: JoinSet<()>,
        hard_stop: CancellationToken,
    ) {
        for mut consumer in consumers {
            if let Err(e) = consumer.cancel().await {
                warn!(error = %e, "basic.cancel failed; unacknowledged jobs return to the queue when the connection closes");
            }
            // Deliveries already pushed to us but not started go straight back.
            while let Ok(Some(Ok(d))) = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
                let _ = d.requeue().await;
                self.metrics.outcome(Outcome::Requeued);
            }
        }
        let grace = Duration::from_secs(self.settings.worker.shutdown_grace_secs);
        info!(in_flight = tasks.len(), grace_secs = grace.as_secs(), "draining");
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        loop {
            if tasks.is_empty() && background.is_empty() {
                break;
            }
            tokio::select! {
                Some(_) = tasks.join_next() => {}
                Some(_) = background.join_next() => {}
                _ = &mut deadline => {
                    hard_stop.cancel();
                    while tasks.join_next().await.is_some() {}
                    while background.join_next().await.is_some() {}
                    break;
                }
            }
        }
        info!("all jobs settled");
    }
}
