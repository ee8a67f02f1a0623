//! Measurements 2 and 3: ingest through the queue against a plain upload of the same bytes to the
//! same S3 server, and the worker's peak RSS.
//!
//! One run, on a fresh deployment ([`crate::deploy`]):
//! 1. baseline: PutObject of every file into a plain bucket with the same client configuration
//!    (`Store::put_file`, what the station uses), `concurrency` at a time; then a GetObject of
//!    each (for reference) and the plain objects are deleted again;
//! 2. the station hashes and stages every file (timed, not part of the ingest window);
//! 3. the release `recvault worker --exit-when-idle 2` is spawned and waited for until `/readyz`
//!    says it consumes (start-up is not part of the window);
//! 4. every job is published (confirmed) back to back, and the window runs from the first
//!    publish until `ingest_jobs` holds a committed row for every job;
//! 5. `/metrics` gives the per-stage times; `/proc/<pid>/status` gives `VmHWM`, read until the
//!    worker exits on its own.

use crate::corpus::FileSet;
use crate::deploy::{Deployment, Names};
use crate::procfs::{self, Moto};
use anyhow::{Context, anyhow, bail};
use futures_util::{StreamExt, TryStreamExt};
use recvault_config::Settings;
use recvault_core::UploadJob;
use recvault_station::FileInfo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the worker stays after the queues are empty (`--exit-when-idle`).
const EXIT_WHEN_IDLE_SECS: u64 = 2;
/// Completion is polled this often (the error it adds to the window is at most this).
const POLL: Duration = Duration::from_millis(20);

/// What the benchmark needs from the command line.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub base: Settings,
    pub admin_url: String,
    pub worker_bin: PathBuf,
    pub concurrency: u16,
    pub work_dir: PathBuf,
}

/// Time spent in one pipeline stage, summed over jobs (`recvault_stage_duration_seconds`).
#[derive(Debug, Clone)]
pub struct StageSum {
    pub stage: String,
    pub seconds: f64,
    pub count: u64,
}

/// One ingest run of one file set.
#[derive(Debug, Clone)]
pub struct IngestRun {
    pub set: FileSet,
    pub concurrency: u16,
    pub plain_put: Duration,
    pub plain_get: Duration,
    /// Body chunks the SDK handed out during the plain GetObjects.
    pub get_chunks: u64,
    /// Server-side CopyObject of every plain object (no metadata, tags or lock).
    pub plain_copy: Duration,
    /// Mean latency of a HeadObject (sequential, one per plain object).
    pub head_latency: Duration,
    pub moto_cpu_put: Option<f64>,
    pub stage: Duration,
    pub worker_start: Duration,
    /// First publish → last commit.
    pub window: Duration,
    pub publish: Duration,
    pub worker_cpu: Option<f64>,
    pub moto_cpu_window: Option<f64>,
    pub worker_rss_ready_kb: u64,
    pub worker_hwm_kb: u64,
    pub stages: Vec<StageSum>,
    pub outcomes: Vec<(String, u64)>,
    pub states: Vec<(String, i64)>,
    pub moto_rss_before_mb: Option<f64>,
    pub moto_rss_peak_mb: Option<f64>,
    pub worker_exit: String,
    pub cleanup: String,
    pub moto_rss_after_cleanup_mb: Option<f64>,
    pub worker_log: PathBuf,
}

impl IngestRun {
    pub fn stage(&self, name: &str) -> Option<&StageSum> {
        self.stages.iter().find(|s| s.stage == name)
    }
}

/// Runs one set on a fresh deployment and removes the deployment afterwards, whatever happened.
pub async fn run(cfg: &IngestConfig, set: &FileSet, moto: &Moto) -> anyhow::Result<IngestRun> {
    let names = Names::new(&cfg.base, &cfg.admin_url, cfg.concurrency, &cfg.work_dir)?;
    eprintln!("[loadtest] ingest {} on deployment {} (concurrency {})", set.describe(), names.id, cfg.concurrency);
    let result = async {
        let d = Deployment::create(&names).await?;
        let r = measure(cfg, &names, &d, set, moto).await;
        d.close().await;
        r
    }
    .await;
    let cleanup = names.teardown().await;
    eprintln!("[loadtest]   cleanup: {cleanup}");
    let mut run = result?;
    run.cleanup = cleanup;
    run.moto_rss_after_cleanup_mb = moto.rss_mb();
    Ok(run)
}

async fn measure(
    cfg: &IngestConfig,
    names: &Names,
    d: &Deployment,
    set: &FileSet,
    moto: &Moto,
) -> anyhow::Result<IngestRun> {
    let c = usize::from(cfg.concurrency).max(1);
    let moto_rss_before_mb = moto.rss_mb();
    let mut moto_peak = moto_rss_before_mb.unwrap_or(0.0);

    // 1. Baseline: plain PutObject of the same files, same client configuration, same parallelism.
    let plain = &names.plain_bucket;
    let keys: Vec<(PathBuf, String)> = set
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.clone(), format!("plain/{i:03}-{}", f.file_name().and_then(|n| n.to_str()).unwrap_or("file"))))
        .collect();
    let moto_cpu0 = moto.cpu_seconds();
    let t = Instant::now();
    futures_util::stream::iter(keys.iter().map(|(path, key)| async move {
        d.store.put_file(plain, key, path, &[]).await.with_context(|| format!("plain PutObject {key}"))
    }))
    .buffer_unordered(c)
    .try_collect::<Vec<_>>()
    .await?;
    let plain_put = t.elapsed();
    let moto_cpu_put = moto.cpu_seconds().zip(moto_cpu0).map(|(b, a)| b - a);
    moto_peak = moto_peak.max(moto.rss_mb().unwrap_or(0.0));
    eprintln!("[loadtest]   plain PutObject: {:.3} s", plain_put.as_secs_f64());

    let t = Instant::now();
    let chunks: Vec<u64> = futures_util::stream::iter(keys.iter().map(|(path, key)| async move {
        let expected = std::fs::metadata(path)?.len();
        let mut read = d.store.read_staged(plain, key, None).await.with_context(|| format!("plain GetObject {key}"))?;
        let (mut n, mut chunks) = (0u64, 0u64);
        while let Some(chunk) = read.body.next().await {
            n += chunk.map_err(|e| anyhow!("plain GetObject {key}: {e}"))?.len() as u64;
            chunks += 1;
        }
        anyhow::ensure!(n == expected, "plain GetObject {key}: {n} of {expected} bytes");
        Ok(chunks)
    }))
    .buffer_unordered(c)
    .try_collect()
    .await?;
    let plain_get = t.elapsed();
    let get_chunks = chunks.iter().sum();

    let client = d.store.client();
    let t = Instant::now();
    futures_util::stream::iter(keys.iter().map(|(_, key)| async move {
        client
            .copy_object()
            .bucket(plain)
            .key(format!("{key}.copy"))
            .copy_source(format!("{plain}/{key}"))
            .send()
            .await
            .map_err(|e| anyhow!("plain CopyObject {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))
    }))
    .buffer_unordered(c)
    .try_collect::<Vec<_>>()
    .await?;
    let plain_copy = t.elapsed();
    let t = Instant::now();
    for (_, key) in &keys {
        d.store.head(plain, key).await.with_context(|| format!("plain HeadObject {key}"))?;
    }
    let head_latency = t.elapsed() / u32::try_from(keys.len()).unwrap_or(1).max(1);
    for (_, key) in &keys {
        d.store.delete_key(plain, key).await.with_context(|| format!("deleting {key}"))?;
        d.store.delete_key(plain, &format!("{key}.copy")).await.with_context(|| format!("deleting {key}.copy"))?;
    }
    eprintln!(
        "[loadtest]   plain GetObject {:.3} s, CopyObject {:.3} s, HeadObject {:.1} ms (plain objects deleted)",
        plain_get.as_secs_f64(),
        plain_copy.as_secs_f64(),
        head_latency.as_secs_f64() * 1e3
    );

    // 2. The station hashes and stages every file.
    let t = Instant::now();
    let jobs: Vec<UploadJob> = futures_util::stream::iter(set.files.iter().enumerate().map(|(i, path)| async move {
        let info = FileInfo {
            device_id: format!("dev{:04}", i % 7),
            officer_ids: vec![format!("3501{i:04}")],
            ..FileInfo::default()
        };
        let wire = d.station.prepare(path, &info).await?;
        let job = UploadJob::new(wire).map_err(|e| anyhow!("job for {}: {e}", path.display()))?;
        d.station.stage(path, &job).await?;
        anyhow::Ok(job)
    }))
    .buffered(c)
    .try_collect()
    .await?;
    let stage = t.elapsed();
    moto_peak = moto_peak.max(moto.rss_mb().unwrap_or(0.0));
    eprintln!("[loadtest]   station staged {} files: {:.3} s", jobs.len(), stage.as_secs_f64());

    // 3. The worker, started and ready before the clock runs.
    let log = cfg.work_dir.join(format!("worker-{}-{}.log", set.label, names.id));
    let mut worker = WorkerProcess::spawn(&cfg.worker_bin, &names.settings, &log, Some(EXIT_WHEN_IDLE_SECS))?;
    let worker_start = worker.wait_ready(Duration::from_secs(120)).await?;
    let ready_mem = worker.sample().unwrap_or_default();
    eprintln!(
        "[loadtest]   worker pid {} ready after {:.2} s, RSS {:.1} MiB",
        worker.pid,
        worker_start.as_secs_f64(),
        kib_to_mib(ready_mem.rss_kb)
    );

    // 4. Publish everything, then wait for every commit.
    let publisher = d.broker.publisher().await?;
    let worker_cpu0 = procfs::cpu_seconds(worker.pid);
    let moto_cpu0 = moto.cpu_seconds();
    let t0 = Instant::now();
    for job in &jobs {
        publisher.publish_job(job.job_id(), &job.to_json(), Some(&job.wire().station_id)).await?;
    }
    let publish = t0.elapsed();
    let deadline = Duration::from_secs(120) + Duration::from_secs(set.bytes / 1_000_000);
    let mut polls = 0u32;
    loop {
        let done = d.db.completed_jobs().await?;
        if done >= jobs.len() as i64 {
            break;
        }
        if let Some(status) = worker.exited()? {
            bail!("the worker exited ({status}) with {done}/{} jobs committed; log: {}", jobs.len(), log.display());
        }
        if t0.elapsed() > deadline {
            let errors = attempt_errors(&d.db).await;
            bail!(
                "{done}/{} jobs committed after {:?}; attempts: {errors}; log: {}",
                jobs.len(),
                deadline,
                log.display()
            );
        }
        worker.sample();
        polls += 1;
        if polls.is_multiple_of(10) {
            moto_peak = moto_peak.max(moto.rss_mb().unwrap_or(0.0));
        }
        tokio::time::sleep(POLL).await;
    }
    let window = t0.elapsed();
    let worker_cpu = procfs::cpu_seconds(worker.pid).zip(worker_cpu0).map(|(b, a)| b - a);
    let moto_cpu_window = moto.cpu_seconds().zip(moto_cpu0).map(|(b, a)| b - a);
    moto_peak = moto_peak.max(moto.rss_mb().unwrap_or(0.0));
    eprintln!("[loadtest]   {} jobs committed {:.3} s after the first publish", jobs.len(), window.as_secs_f64());

    // 5. Per-stage times, then the worker's own exit (it leaves when the queues stay empty).
    let metrics = worker.metrics_when_settled(jobs.len() as u64).await?;
    let (stages, outcomes) = parse_metrics(&metrics);
    let states: Vec<(String, i64)> =
        sqlx::query_as("select state, count(*) from ingest_jobs group by state order by state")
            .fetch_all(d.db.pool())
            .await?;
    let (exit, hwm_kb) = worker.wait_exit(Duration::from_secs(EXIT_WHEN_IDLE_SECS + 60)).await?;
    eprintln!("[loadtest]   worker exited ({exit}), VmHWM {:.1} MiB", kib_to_mib(hwm_kb));

    Ok(IngestRun {
        set: set.clone(),
        concurrency: cfg.concurrency,
        plain_put,
        plain_get,
        get_chunks,
        plain_copy,
        head_latency,
        moto_cpu_put,
        stage,
        worker_start,
        window,
        publish,
        worker_cpu,
        moto_cpu_window,
        worker_rss_ready_kb: ready_mem.rss_kb,
        worker_hwm_kb: hwm_kb,
        stages,
        outcomes,
        states,
        moto_rss_before_mb,
        moto_rss_peak_mb: moto.pid.map(|_| moto_peak),
        worker_exit: exit,
        cleanup: String::new(),
        moto_rss_after_cleanup_mb: None,
        worker_log: log,
    })
}

pub fn kib_to_mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// `(job_id, outcome, error)` of a job attempt.
type AttemptRow = (String, Option<String>, Option<String>);

async fn attempt_errors(db: &recvault_db::Db) -> String {
    let rows: Result<Vec<AttemptRow>, _> =
        sqlx::query_as("select job_id, outcome, error from job_attempts order by id desc limit 5")
            .fetch_all(db.pool())
            .await;
    match rows {
        Ok(rows) => format!("{rows:?}"),
        Err(e) => e.to_string(),
    }
}

/// The spawned `recvault worker` (also used by the bundle benchmark).
#[derive(Debug)]
pub(crate) struct WorkerProcess {
    child: tokio::process::Child,
    pub(crate) pid: u32,
    addr: SocketAddr,
    hwm_kb: u64,
    log: PathBuf,
}

impl WorkerProcess {
    /// Spawns `recvault worker` with exactly `settings`; with `exit_when_idle` it leaves by itself
    /// once its queues have stayed empty that many seconds.
    pub(crate) fn spawn(
        bin: &Path,
        settings: &Settings,
        log: &Path,
        exit_when_idle: Option<u64>,
    ) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("worker");
        if let Some(secs) = exit_when_idle {
            cmd.arg("--exit-when-idle").arg(secs.to_string());
        }
        // Only this deployment's settings: nothing inherited from the caller's RECVAULT_* variables.
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("RECVAULT_")) {
                cmd.env_remove(&k);
            }
        }
        cmd.envs(settings.to_env()).stdin(Stdio::null()).stdout(out.try_clone()?).stderr(out).kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("spawning {}", bin.display()))?;
        let pid = child.id().ok_or_else(|| anyhow!("the worker exited at once"))?;
        Ok(Self { child, pid, addr: settings.worker.metrics_addr, hwm_kb: 0, log: log.to_path_buf() })
    }

    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub(crate) fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Reads the memory of the live process; keeps the highest `VmHWM` seen.
    pub(crate) fn sample(&mut self) -> Option<procfs::Memory> {
        let m = procfs::memory(self.pid)?;
        self.hwm_kb = self.hwm_kb.max(m.hwm_kb);
        Some(m)
    }

    pub(crate) async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        let t = Instant::now();
        loop {
            if let Some(status) = self.exited()? {
                bail!("the worker exited during start-up ({status}):\n{}", self.log_tail());
            }
            if let Ok((200, _)) = http_get(self.addr, "/readyz").await {
                return Ok(t.elapsed());
            }
            if t.elapsed() > timeout {
                bail!("the worker was not ready after {timeout:?}:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `/metrics` once every job's outcome and total time are counted (they are observed just
    /// after the acknowledgement, a moment after the commit).
    async fn metrics_when_settled(&mut self, jobs: u64) -> anyhow::Result<String> {
        let t = Instant::now();
        loop {
            self.sample();
            let (status, body) = http_get(self.addr, "/metrics").await.context("scraping /metrics")?;
            anyhow::ensure!(status == 200, "/metrics answered {status}");
            let (stages, outcomes) = parse_metrics(&body);
            let settled: u64 = outcomes.iter().map(|(_, n)| n).sum();
            let totals = stages.iter().find(|s| s.stage == "total").map_or(0, |s| s.count);
            if (settled >= jobs && totals >= jobs) || t.elapsed() > Duration::from_secs(10) {
                return Ok(body);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM (the worker's graceful shutdown), then waits for it to leave like [`Self::wait_exit`].
    pub(crate) async fn terminate(self, timeout: Duration) -> anyhow::Result<(String, u64)> {
        // `kill` rather than a signal call: the workspace forbids unsafe code, and tokio's
        // `start_kill` sends SIGKILL.
        let status = std::process::Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status()?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.pid);
        self.wait_exit(timeout).await
    }

    /// Waits for the worker to leave by itself, sampling `VmHWM` until it is gone.
    pub(crate) async fn wait_exit(mut self, timeout: Duration) -> anyhow::Result<(String, u64)> {
        let t = Instant::now();
        loop {
            self.sample();
            if let Some(status) = self.exited()? {
                return Ok((status.to_string(), self.hwm_kb));
            }
            if t.elapsed() > timeout {
                self.child.start_kill()?;
                let status = self.child.wait().await?;
                return Ok((format!("killed after {timeout:?} ({status})"), self.hwm_kb));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `(status, body)` of an HTTP/1.0 GET.
async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        std::io::Result::Ok(String::from_utf8_lossy(&buf).into_owned())
    };
    let text = tokio::time::timeout(Duration::from_secs(5), exchange).await??;
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// Stage sums and counts, and job outcomes, from the Prometheus text format.
fn parse_metrics(text: &str) -> (Vec<StageSum>, Vec<(String, u64)>) {
    let mut stages: Vec<StageSum> = Vec::new();
    let mut outcomes = Vec::new();
    let labelled = |line: &str, prefix: &str| -> Option<(String, f64)> {
        let rest = line.strip_prefix(prefix)?;
        let (label, value) = rest.split_once("\"} ")?;
        Some((label.to_string(), value.trim().parse().ok()?))
    };
    for line in text.lines() {
        if let Some((stage, v)) = labelled(line, "recvault_stage_duration_seconds_sum{stage=\"") {
            stages.push(StageSum { stage, seconds: v, count: 0 });
        } else if let Some((stage, v)) = labelled(line, "recvault_stage_duration_seconds_count{stage=\"") {
            if let Some(s) = stages.iter_mut().find(|s| s.stage == stage) {
                s.count = v as u64;
            } else {
                stages.push(StageSum { stage, seconds: 0.0, count: v as u64 });
            }
        } else if let Some((outcome, v)) = labelled(line, "recvault_jobs_total{outcome=\"")
            && v > 0.0
        {
            outcomes.push((outcome, v as u64));
        }
    }
    (stages, outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stage_sums_and_outcomes() {
        let text = "# HELP x\n\
            recvault_stage_duration_seconds_bucket{stage=\"fetch\",le=\"0.1\"} 1\n\
            recvault_stage_duration_seconds_sum{stage=\"fetch\"} 1.5\n\
            recvault_stage_duration_seconds_count{stage=\"fetch\"} 3\n\
            recvault_jobs_total{outcome=\"archived\"} 3\n\
            recvault_jobs_total{outcome=\"retried\"} 0\n";
        let (stages, outcomes) = parse_metrics(text);
        assert_eq!(stages.len(), 1);
        assert_eq!(stages[0].stage, "fetch");
        assert!((stages[0].seconds - 1.5).abs() < 1e-9);
        assert_eq!(stages[0].count, 3);
        assert_eq!(outcomes, vec![("archived".to_string(), 3)]);
    }
}
