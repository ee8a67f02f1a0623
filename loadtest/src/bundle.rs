//! Issue 7: building and uploading a case-file bundle (R19.1(2)) against `tar` piped into a plain
//! multipart upload of the same files to the same S3 server, and the builder's peak RSS.
//!
//! One run, on a fresh deployment ([`crate::deploy`]) whose archive bucket has no Object Lock
//! (`s3.dev_mode`), so everything written can be deleted again:
//! 1. `n` files of random bytes are generated and ingested through the real pipeline (station
//!    stage + post, a release `recvault worker`): not MP4s, so each is quarantined, and a
//!    quarantined file goes into a case's bundle through the same read / SHA-256 check / write
//!    path as a recording (`services/bundles/src/build.rs`);
//! 2. per bundle size (the first `k` files) and repetition: the baseline (`tar -cf - FILES` of
//!    the local copies into a multipart upload, [`crate::tarbase`]), then the builder with
//!    read-back on and off: a fresh `recvault worker` is spawned and waited for until ready, the
//!    case is closed as the API does it (`Db::case_contents`, `Db::close_case`,
//!    `Publisher::publish_bundle_job`), and the window runs from the publish to the row's
//!    `ready_at` (the builder's own commit); `VmHWM` of that worker is read once it is ready;
//! 3. every bundle and baseline object is deleted after its run, and Ceph's garbage collector is
//!    run so the deleted bytes are freed inside the OSD now rather than after two hours. The local
//!    OSD's sparse file still grows with every byte written (its allocator moves on to untouched
//!    blocks), so every write first checks the free disk space (`--min-free-gb`).
//!
//! References per size: `tar | sha256sum` on the local files, a sequential GetObject of the
//! sources (what the builder reads), and (up to `--reference-max-mb`) those GetObjects streamed
//! into a multipart upload without a bag.

use crate::deploy::{ArchiveBucket, Deployment, Names};
use crate::ingest::WorkerProcess;
use crate::procfs::{CpuMeter, CpuUse, Quiet, QuietWait};
use crate::stats::{Samples, mb, mbps, secs};
use crate::tarbase;
use anyhow::{Context, anyhow, bail};
use chrono::{TimeDelta, Utc};
use recvault_config::Settings;
use recvault_core::UploadJob;
use recvault_core::cases::{BundleJobV1, BundleState, Closure};
use recvault_db::cases::Closed;
use recvault_station::FileInfo;
use sha2::Digest;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The unit of the station and of every closed case.
const UNIT: &str = "zhidui";
/// The bundle row is polled this often (the window itself comes from `ready_at`).
const POLL: Duration = Duration::from_millis(50);

/// What the command line decides.
#[derive(Debug, Clone)]
pub struct BundleBench {
    pub base: Settings,
    pub admin_url: String,
    pub worker_bin: PathBuf,
    pub work_dir: PathBuf,
    /// Bundle sizes, in MB of source files.
    pub sizes_mb: Vec<u64>,
    pub file_mb: u64,
    pub repeats: usize,
    /// Parts the baseline keeps in flight (the builder's `PARTS_IN_FLIGHT`).
    pub parts_in_flight: usize,
    /// Ceph's configuration, to run its garbage collector after deletions (`None`: do not).
    pub rgw_gc_conf: Option<PathBuf>,
    /// Ceph's run directory (PID files of `radosgw` and `ceph-osd`, for their CPU time).
    pub ceph_run_dir: Option<PathBuf>,
    pub quiet: Quiet,
    pub keep_sources: bool,
    /// Stop before writing more when the file systems of the work directory or of Ceph's OSD have
    /// less than this many bytes free (the local OSD is a sparse file that grows with every
    /// write, deleted or not: its allocator moves on to untouched blocks).
    pub min_free_bytes: u64,
    /// Where Ceph keeps its OSD (for the free-space check).
    pub ceph_dir: Option<PathBuf>,
    /// Run the S3 → multipart reference only for bundles up to this size (it writes the bundle's
    /// size once more).
    pub reference_max_mb: u64,
}

/// One source file.
#[derive(Debug, Clone)]
struct SourceFile {
    name: String,
    size: u64,
    quarantine_id: i64,
    bucket: String,
    key: String,
    version: Option<String>,
}

/// One build of a bundle by the worker.
#[derive(Debug, Clone)]
pub struct BuilderRun {
    /// Publish of the bundle job → `ready_at` of its row.
    pub window: Duration,
    /// Publish → the poll that saw `ready` (a check of `window`; up to one poll later).
    pub polled: Duration,
    pub bundle_bytes: u64,
    pub idle_hwm_kb: u64,
    pub idle_rss_kb: u64,
    pub peak_hwm_kb: u64,
    pub cpu: CpuUse,
    pub quiet: QuietWait,
}

/// One `tar` → multipart upload.
#[derive(Debug, Clone)]
pub struct BaselineRun {
    pub elapsed: Duration,
    pub tar_bytes: u64,
    pub parts: usize,
    pub cpu: CpuUse,
    pub quiet: QuietWait,
}

/// Everything measured for one bundle size.
#[derive(Debug, Clone)]
pub struct SizeResult {
    pub files: usize,
    pub data_bytes: u64,
    pub tar_sha256sum: Samples,
    pub s3_get: Samples,
    /// The sources read from S3 into a multipart upload, without the bag (one run).
    pub s3_stream: Option<BaselineRun>,
    pub baseline: Vec<BaselineRun>,
    pub readback_on: Vec<BuilderRun>,
    pub readback_off: Vec<BuilderRun>,
}

/// The whole benchmark.
#[derive(Debug, Clone)]
pub struct BundleReport {
    pub started: chrono::DateTime<Utc>,
    pub elapsed: Duration,
    pub part_bytes: u64,
    pub parts_in_flight: usize,
    pub repeats: usize,
    pub ingest: Duration,
    pub ingest_outcome: String,
    pub sizes: Vec<SizeResult>,
    pub notes: Vec<String>,
}

/// Runs the benchmark on a fresh deployment and removes it afterwards, whatever happened.
pub async fn run(cfg: &BundleBench) -> anyhow::Result<BundleReport> {
    let started = Utc::now();
    let clock = Instant::now();
    let mut names = Names::new(&cfg.base, &cfg.admin_url, 2, &cfg.work_dir)?;
    // No Object Lock on the archive bucket: the worker must accept it, and needs no store probe.
    names.settings.s3.dev_mode = true;
    names.settings.worker.probe_store_at_start = false;
    eprintln!("[loadtest] bundle benchmark on deployment {}", names.id);
    let source_dir = cfg.work_dir.join(format!("bundle-sources-{}", names.id));
    let result = async {
        let d = Deployment::create_with(&names, ArchiveBucket::Unlocked).await?;
        let r = measure(cfg, &names, &d, &source_dir).await;
        d.close().await;
        r
    }
    .await;
    let cleanup = names.teardown().await;
    eprintln!("[loadtest]   cleanup: {cleanup}");
    if let Some(conf) = &cfg.rgw_gc_conf {
        match tokio::task::spawn_blocking({
            let conf = conf.clone();
            move || rgw_gc(&conf)
        })
        .await?
        {
            Ok(d) => eprintln!("[loadtest]   ceph gc: {:.1} s", d.as_secs_f64()),
            Err(e) => eprintln!("[loadtest]   ceph gc failed: {e}"),
        }
    }
    if !cfg.keep_sources {
        let _ = std::fs::remove_dir_all(&source_dir);
    }
    let (mut report, mut notes) = result?;
    notes.push(format!("clean-up: {cleanup}"));
    report.notes = notes;
    report.started = started;
    report.elapsed = clock.elapsed();
    Ok(report)
}

async fn measure(
    cfg: &BundleBench,
    names: &Names,
    d: &Deployment,
    source_dir: &Path,
) -> anyhow::Result<(BundleReport, Vec<String>)> {
    let mut notes = Vec::new();
    let s = &names.settings;
    let largest = cfg.sizes_mb.iter().copied().max().unwrap_or(0);
    let n_files = largest.div_ceil(cfg.file_mb.max(1)) as usize;
    anyhow::ensure!(n_files > 0, "no bundle size given");

    // 1. Sources, ingested through the pipeline.
    cfg.check_disk(3 * largest * 1_000_000)?;
    std::fs::create_dir_all(source_dir)?;
    let t = Instant::now();
    let mut generated = Vec::new();
    for i in 0..n_files {
        let name = format!("src-{i:02}.bin");
        let path = source_dir.join(&name);
        let size = cfg.file_mb * 1_000_000;
        let sha = tokio::task::spawn_blocking({
            let path = path.clone();
            move || random_file(&path, size, 7_000 + i as u64)
        })
        .await??;
        generated.push((path, name, size, sha));
    }
    eprintln!(
        "[loadtest]   generated {n_files} × {} MB of random bytes in {:.1} s",
        cfg.file_mb,
        t.elapsed().as_secs_f64()
    );
    let (ingest, ingest_outcome, sources) = ingest(cfg, names, d, generated).await?;

    let publisher = d.broker.publisher().await?;
    let ceph = ceph_pids(cfg.ceph_run_dir.as_deref());
    if ceph.is_empty() {
        notes.push("the PIDs of radosgw and ceph-osd were not found: no Ceph CPU readings".into());
    }
    let mut sizes_mb = cfg.sizes_mb.clone();
    sizes_mb.sort_unstable();
    sizes_mb.dedup();
    let mut sizes = Vec::new();
    for size_mb in sizes_mb {
        let k = size_mb.div_ceil(cfg.file_mb.max(1)) as usize;
        let files: Vec<SourceFile> = sources[..k].to_vec();
        let data_bytes: u64 = files.iter().map(|f| f.size).sum();
        let label = format!("{:.0} MB", mb(data_bytes));
        eprintln!("[loadtest] bundle of {k} files ({label})");
        let names_only: Vec<String> = files.iter().map(|f| f.name.clone()).collect();

        // References: tar | sha256sum on the local copies, and reading the sources from S3.
        let mut tar_sha = Samples::default();
        let mut s3_get = Samples::default();
        for _ in 0..cfg.repeats {
            cfg.quiet_wait();
            let (dir, files_) = (source_dir.to_path_buf(), names_only.clone());
            tar_sha.push(tokio::task::spawn_blocking(move || tarbase::tar_sha256sum(&dir, &files_)).await??);
            cfg.quiet_wait();
            s3_get.push(read_sources(d, &files).await?);
        }
        eprintln!(
            "[loadtest]   tar | sha256sum {}, sequential GetObject of the sources {}",
            secs(tar_sha.median()),
            secs(s3_get.median())
        );
        // Reference, one run: the builder's S3 reads and writes without the bag.
        let s3_stream = if size_mb <= cfg.reference_max_mb {
            Some(s3_reference(cfg, names, d, &ceph, &files, size_mb).await?)
        } else {
            None
        };

        let mut baseline = Vec::new();
        let mut on = Vec::new();
        let mut off = Vec::new();
        for r in 0..cfg.repeats {
            // The three variants alternate, so drift in the machine's load spreads over all.
            cfg.check_disk(data_bytes)?;
            let quiet = cfg.quiet_wait();
            let meter = CpuMeter::start(&ceph.iter().map(|(n, p)| (*n, *p)).collect::<Vec<_>>());
            let key = format!("baseline/{size_mb}-{r}.tar");
            let up = tarbase::tar_to_multipart(
                &d.store,
                &s.s3.archive_bucket,
                &key,
                source_dir,
                &names_only,
                usize::try_from(s.bundles.part_bytes)?,
                cfg.parts_in_flight,
            )
            .await?;
            let cpu = meter.stop();
            eprintln!(
                "[loadtest]   baseline tar → multipart: {} ({:.0} MB/s, {} parts)",
                secs(up.elapsed),
                mbps(up.bytes, up.elapsed),
                up.parts
            );
            delete_version(d, &s.s3.archive_bucket, &key, up.version.as_deref()).await?;
            cfg.gc().await;
            baseline.push(BaselineRun { elapsed: up.elapsed, tar_bytes: up.bytes, parts: up.parts, cpu, quiet });

            for readback in [true, false] {
                cfg.check_disk(data_bytes)?;
                let case = format!("LOAD-{}-{size_mb}-{}-{r}", names.id, if readback { "rb" } else { "norb" });
                let run = build_once(cfg, names, d, &publisher, &ceph, &files, &case, readback).await?;
                eprintln!(
                    "[loadtest]   builder (read-back {}): {} ({:.0} MB/s), worker VmHWM {:.1} MiB (idle {:.1} MiB)",
                    if readback { "on" } else { "off" },
                    secs(run.window),
                    mbps(run.bundle_bytes, run.window),
                    run.peak_hwm_kb as f64 / 1024.0,
                    run.idle_hwm_kb as f64 / 1024.0
                );
                if readback { on.push(run) } else { off.push(run) }
            }
        }
        sizes.push(SizeResult {
            files: k,
            data_bytes,
            tar_sha256sum: tar_sha,
            s3_get,
            s3_stream,
            baseline,
            readback_on: on,
            readback_off: off,
        });
    }
    let report = BundleReport {
        started: Utc::now(),
        elapsed: Duration::ZERO,
        part_bytes: s.bundles.part_bytes,
        parts_in_flight: cfg.parts_in_flight,
        repeats: cfg.repeats,
        ingest,
        ingest_outcome,
        sizes,
        notes: Vec::new(),
    };
    Ok((report, notes))
}

impl BundleBench {
    /// Refuses to write `more` bytes when the work directory's or the OSD's file system would
    /// drop below `min_free_bytes`.
    fn check_disk(&self, more: u64) -> anyhow::Result<()> {
        let mut dirs = vec![self.work_dir.clone()];
        dirs.extend(self.ceph_dir.clone());
        for dir in dirs {
            if let Some(free) = free_bytes(&dir)
                && free < self.min_free_bytes + more
            {
                bail!(
                    "{} has {:.1} GB free: writing {:.1} GB more would leave less than --min-free-gb {:.0}; stopped (Ceph's OSD file does not shrink when objects are deleted)",
                    dir.display(),
                    free as f64 / 1e9,
                    more as f64 / 1e9,
                    self.min_free_bytes as f64 / 1e9
                );
            }
        }
        Ok(())
    }

    fn quiet_wait(&self) -> QuietWait {
        let q = self.quiet;
        tokio::task::block_in_place(|| q.wait())
    }

    /// Ceph's garbage collector, after deletions (best effort).
    async fn gc(&self) {
        if let Some(conf) = self.rgw_gc_conf.clone() {
            match tokio::task::spawn_blocking(move || rgw_gc(&conf)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("[loadtest]   ceph gc failed: {e}"),
                Err(e) => eprintln!("[loadtest]   ceph gc failed: {e}"),
            }
        }
    }
}

/// The builder's S3 reads and writes without the bag: the sources read one after the other into
/// a multipart upload.
async fn s3_reference(
    cfg: &BundleBench,
    names: &Names,
    d: &Deployment,
    ceph: &[(&'static str, u32)],
    files: &[SourceFile],
    size_mb: u64,
) -> anyhow::Result<BaselineRun> {
    let s = &names.settings;
    cfg.check_disk(files.iter().map(|f| f.size).sum())?;
    let quiet = cfg.quiet_wait();
    let meter = CpuMeter::start(&ceph.iter().map(|(n, p)| (*n, *p)).collect::<Vec<_>>());
    let key = format!("reference/{size_mb}-s3.bin");
    let sources3 = files
        .iter()
        .map(|f| tarbase::S3Source { bucket: f.bucket.clone(), key: f.key.clone(), version: f.version.clone() })
        .collect();
    let up = tarbase::s3_to_multipart(
        &d.store,
        &s.s3.archive_bucket,
        &key,
        sources3,
        usize::try_from(s.bundles.part_bytes)?,
        cfg.parts_in_flight,
    )
    .await?;
    let cpu = meter.stop();
    eprintln!(
        "[loadtest]   reference S3 sources → multipart: {} ({:.0} MB/s)",
        secs(up.elapsed),
        mbps(up.bytes, up.elapsed)
    );
    delete_version(d, &s.s3.archive_bucket, &key, up.version.as_deref()).await?;
    cfg.gc().await;
    Ok(BaselineRun { elapsed: up.elapsed, tar_bytes: up.bytes, parts: up.parts, cpu, quiet })
}

/// Stages and posts every file as the station, lets a worker quarantine them all, and returns
/// the sources with their quarantine rows.
async fn ingest(
    cfg: &BundleBench,
    names: &Names,
    d: &Deployment,
    generated: Vec<(PathBuf, String, u64, [u8; 32])>,
) -> anyhow::Result<(Duration, String, Vec<SourceFile>)> {
    let t = Instant::now();
    let mut jobs = Vec::new();
    for (i, (path, _, _, _)) in generated.iter().enumerate() {
        let info =
            FileInfo { device_id: format!("DSJ-B{i:02}"), officer_ids: vec!["35010001".into()], ..FileInfo::default() };
        let wire = d.station.prepare(path, &info).await?;
        let job = UploadJob::new(wire).map_err(|e| anyhow!("job for {}: {e}", path.display()))?;
        d.station.stage(path, &job).await?;
        d.station.post(&job).await?;
        jobs.push(job);
    }
    let log = cfg.work_dir.join(format!("worker-bundle-ingest-{}.log", names.id));
    let mut worker = WorkerProcess::spawn(&cfg.worker_bin, &names.settings, &log, Some(2))?;
    worker.wait_ready(Duration::from_secs(120)).await?;
    let total: u64 = generated.iter().map(|g| g.2).sum();
    let deadline = Duration::from_secs(180 + total / 10_000_000);
    loop {
        let done = d.db.completed_jobs().await?;
        if done >= jobs.len() as i64 {
            break;
        }
        if let Some(status) = worker.exited()? {
            bail!("the ingest worker exited ({status}) with {done}/{} jobs done; log: {}", jobs.len(), log.display());
        }
        if t.elapsed() > deadline {
            bail!("{done}/{} jobs done after {deadline:?}; log: {}", jobs.len(), log.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = t.elapsed();
    let (exit, _) = worker.wait_exit(Duration::from_secs(60)).await?;
    let states: Vec<(String, i64)> =
        sqlx::query_as("select state, count(*) from ingest_jobs group by state order by state")
            .fetch_all(d.db.pool())
            .await?;
    let outcome = states.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ");
    eprintln!("[loadtest]   ingest of {} files: {:.1} s ({outcome}; worker {exit})", jobs.len(), elapsed.as_secs_f64());

    type QRow = (i64, String, i64, Vec<u8>, String, String, Option<String>, String);
    let rows: Vec<QRow> = sqlx::query_as(
        "select id, job_id, size_bytes, sha256, bucket, key, version_id, reason_code from quarantined order by id",
    )
    .fetch_all(d.db.pool())
    .await?;
    let mut sources = Vec::new();
    for ((_, name, size, sha), job) in generated.into_iter().zip(&jobs) {
        let row = rows
            .iter()
            .find(|r| r.1 == job.job_id())
            .with_context(|| format!("{name} was not quarantined ({outcome}); log: {}", log.display()))?;
        anyhow::ensure!(
            row.2 as u64 == size && row.3.as_slice() == sha.as_slice(),
            "{name}: the quarantined row does not match the local file"
        );
        sources.push(SourceFile {
            name,
            size,
            quarantine_id: row.0,
            bucket: row.4.clone(),
            key: row.5.clone(),
            version: row.6.clone(),
        });
    }
    let reason = rows.first().map(|r| r.7.clone()).unwrap_or_default();
    Ok((elapsed, format!("{outcome} (reason `{reason}`)"), sources))
}

/// One bundle: a fresh worker, the case closed as the API closes it, the window to `ready_at`.
#[allow(clippy::too_many_arguments)]
async fn build_once(
    cfg: &BundleBench,
    names: &Names,
    d: &Deployment,
    publisher: &recvault_queue::Publisher,
    ceph: &[(&'static str, u32)],
    files: &[SourceFile],
    case: &str,
    readback: bool,
) -> anyhow::Result<BuilderRun> {
    let mut settings = names.settings.clone();
    settings.bundles.verify_readback = readback;
    settings.worker.metrics_addr = crate::deploy::free_port()?;
    let quiet = cfg.quiet_wait();
    let log = cfg.work_dir.join(format!("worker-bundle-{case}.log"));
    let mut worker = WorkerProcess::spawn(&cfg.worker_bin, &settings, &log, None)?;
    worker.wait_ready(Duration::from_secs(120)).await?;
    // Let start-up finish whatever it does after `/readyz` (first connections, buffers).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = worker.sample().context("the worker vanished")?;

    // What `PUT /v1/cases/{case}/closure` does (services/api/src/routes.rs, close_case).
    let ids: Vec<i64> = files.iter().map(|f| f.quarantine_id).collect();
    let now = Utc::now();
    let closure = Closure::new(case, UNIT, now - TimeDelta::minutes(1), [], "loadtest 结案归档", now)
        .and_then(|c| c.with_quarantined(ids.clone()))
        .map_err(|e| anyhow!("closure: {e}"))?;
    let contents = d.db.case_contents(case, UNIT, &[], &ids).await?;
    anyhow::ensure!(contents.quarantine_ids.len() == files.len(), "case contents: {contents:?}");
    let bundle_id = match d.db.close_case(&closure, "loadtest", &contents).await? {
        Closed::New { bundle_id } => bundle_id,
        other => bail!("closing {case}: {other:?}"),
    };
    let body = serde_json::to_vec(&BundleJobV1 { schema_version: 1, bundle_id: bundle_id.to_string() })?;

    let mut procs: Vec<(&str, u32)> = vec![("worker", worker.pid)];
    procs.extend(ceph.iter().map(|(n, p)| (*n, *p)));
    let meter = CpuMeter::start(&procs);
    let published_at = Utc::now();
    let t0 = Instant::now();
    publisher.publish_bundle_job(&bundle_id.to_string(), &body).await?;
    let bytes: u64 = files.iter().map(|f| f.size).sum();
    let deadline = Duration::from_secs(120 + bytes / 5_000_000);
    let row = loop {
        let row = d.db.bundle(bundle_id).await?.context("the bundle row vanished")?;
        match row.state {
            BundleState::Ready => break row,
            BundleState::Failed => bail!("bundle {bundle_id} failed: {:?}; log: {}", row.reason, log.display()),
            _ => {}
        }
        if let Some(status) = worker.exited()? {
            bail!("the worker exited ({status}) before bundle {bundle_id} was ready:\n{}", worker.log_tail());
        }
        if t0.elapsed() > deadline {
            bail!("bundle {bundle_id} not ready after {deadline:?} ({:?}); log: {}", row.state, log.display());
        }
        worker.sample();
        tokio::time::sleep(POLL).await;
    };
    let polled = t0.elapsed();
    let cpu = meter.stop();
    let peak = worker.sample().context("the worker vanished")?;
    let window = row
        .ready_at
        .map(|r| (r - published_at).to_std().unwrap_or_default())
        .context("a ready bundle without ready_at")?;
    let (exit, _) = worker.terminate(Duration::from_secs(30)).await?;
    if !exit.contains("exit status: 0") {
        eprintln!("[loadtest]   note: the bundle worker ended with {exit}");
    }
    let bundle_bytes = row.size_bytes.map_or(0, |b| b as u64);
    let bucket = row.bucket.clone().unwrap_or_else(|| names.settings.s3.archive_bucket.clone());
    if let Some(key) = &row.key {
        delete_version(d, &bucket, key, row.version_id.as_deref()).await?;
    }
    cfg.gc().await;
    Ok(BuilderRun {
        window,
        polled,
        bundle_bytes,
        idle_hwm_kb: idle.hwm_kb,
        idle_rss_kb: idle.rss_kb,
        peak_hwm_kb: peak.hwm_kb,
        cpu,
        quiet,
    })
}

/// GetObject of every source, one after the other as the builder reads them; bytes drained.
async fn read_sources(d: &Deployment, files: &[SourceFile]) -> anyhow::Result<Duration> {
    let t = Instant::now();
    for f in files {
        let mut read = d.store.read_staged(&f.bucket, &f.key, f.version.as_deref()).await?;
        let mut n = 0u64;
        while let Some(chunk) = read.body.next().await {
            n += chunk.map_err(|e| anyhow!("reading {}: {e}", f.key))?.len() as u64;
        }
        anyhow::ensure!(n == f.size, "{}: {n} of {} bytes", f.key, f.size);
    }
    Ok(t.elapsed())
}

async fn delete_version(d: &Deployment, bucket: &str, key: &str, version: Option<&str>) -> anyhow::Result<()> {
    d.store
        .client()
        .delete_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
        .map_err(|e| anyhow!("deleting {key}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)))?;
    Ok(())
}

/// `radosgw-admin gc process --include-all`: frees the bytes of deleted objects now rather than
/// after `rgw_gc_obj_min_wait` (2 h), so repeated multi-GB runs do not fill the OSD's disk.
fn rgw_gc(conf: &Path) -> Result<Duration, String> {
    let t = Instant::now();
    let out = std::process::Command::new("radosgw-admin")
        .arg("-c")
        .arg(conf)
        .args(["gc", "process", "--include-all"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(t.elapsed())
}

/// Bytes free for unprivileged users on the file system holding `path` (`df`).
fn free_bytes(path: &Path) -> Option<u64> {
    let out = std::process::Command::new("df").args(["--output=avail", "-B1"]).arg(path).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().nth(1)?.trim().parse().ok()
}

/// PIDs of the local Ceph gateway and OSD, from their PID files.
fn ceph_pids(run_dir: Option<&Path>) -> Vec<(&'static str, u32)> {
    let Some(dir) = run_dir else { return Vec::new() };
    [("radosgw", "ceph-client.rgw.local.pid"), ("ceph-osd", "ceph-osd.0.pid")]
        .into_iter()
        .filter_map(|(name, file)| {
            let pid = std::fs::read_to_string(dir.join(file)).ok()?.trim().parse::<u32>().ok()?;
            crate::procfs::cmdline(pid)?;
            Some((name, pid))
        })
        .collect()
}

/// `size` bytes of xorshift output (distinct per `seed`); returns their SHA-256.
fn random_file(path: &Path, size: u64, seed: u64) -> anyhow::Result<[u8; 32]> {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut sha = sha2::Sha256::new();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        sha.update(&buf[..n]);
        left -= n as u64;
    }
    f.flush()?;
    Ok(sha.finalize().into())
}

fn median_of(runs: &[BuilderRun]) -> Duration {
    let mut s = Samples::default();
    runs.iter().for_each(|r| s.push(r.window));
    s.median()
}

fn baseline_median(runs: &[BaselineRun]) -> Duration {
    let mut s = Samples::default();
    runs.iter().for_each(|r| s.push(r.elapsed));
    s.median()
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn cpu_cell(c: &CpuUse, name: &str) -> String {
    c.of(name).map_or_else(|| "n/a".into(), |s| format!("{:.0} %", 100.0 * s / c.wall.as_secs_f64().max(1e-9)))
}

/// The median run of a list (by window).
fn median_run(runs: &[BuilderRun]) -> Option<&BuilderRun> {
    let mut v: Vec<&BuilderRun> = runs.iter().collect();
    v.sort_by_key(|r| r.window);
    v.get(v.len().saturating_sub(1) / 2).copied()
}

impl BundleReport {
    /// The Markdown tables.
    pub fn tables(&self) -> String {
        let mut t = String::new();
        let n = self.repeats;
        t.push_str(&format!(
            "Part size {} MiB, {} parts in flight (builder and baseline); median of {n} runs each; MB = 10⁶ bytes, MiB = 2²⁰.\n\n",
            self.part_bytes >> 20,
            self.parts_in_flight
        ));
        t.push_str("| bundle | builder, read-back on | builder, read-back off | baseline: `tar -cf -` → multipart upload | ratio (baseline ÷ builder), read-back on | ratio, read-back off |\n|---|---|---|---|---|---|\n");
        for s in &self.sizes {
            let (on, off, base) = (median_of(&s.readback_on), median_of(&s.readback_off), baseline_median(&s.baseline));
            let bytes = s.readback_on.first().map_or(s.data_bytes, |r| r.bundle_bytes);
            let tar_bytes = s.baseline.first().map_or(s.data_bytes, |r| r.tar_bytes);
            let _ = writeln!(
                t,
                "| {:.0} MB ({} files) | {} · {:.0} MB/s | {} · {:.0} MB/s | {} · {:.0} MB/s | **{:.2}×** | **{:.2}×** |",
                mb(s.data_bytes),
                s.files,
                secs(on),
                mbps(bytes, on),
                secs(off),
                mbps(bytes, off),
                secs(base),
                mbps(tar_bytes, base),
                base.as_secs_f64() / on.as_secs_f64().max(1e-9),
                base.as_secs_f64() / off.as_secs_f64().max(1e-9),
            );
        }
        t.push_str("\nBuilder peak RSS (`VmHWM` of the `recvault worker` process that built the bundle, read when the bundle was ready; a fresh worker per bundle):\n\n");
        t.push_str("| bundle | read-back | idle worker before the bundle (VmHWM / VmRSS) | peak VmHWM, every run | goal ≤ 200 MB |\n|---|---|---|---|---|\n");
        for s in &self.sizes {
            for (label, runs) in [("on", &s.readback_on), ("off", &s.readback_off)] {
                let idle = runs
                    .iter()
                    .map(|r| format!("{:.1} / {:.1} MiB", mib(r.idle_hwm_kb), mib(r.idle_rss_kb)))
                    .next()
                    .unwrap_or_default();
                let peaks = runs.iter().map(|r| format!("{:.1}", mib(r.peak_hwm_kb))).collect::<Vec<_>>().join(", ");
                let max = runs.iter().map(|r| r.peak_hwm_kb).max().unwrap_or(0);
                let _ = writeln!(
                    t,
                    "| {:.0} MB | {label} | {idle} | {peaks} MiB | {} (max {:.1} MB) |",
                    mb(s.data_bytes),
                    if max as f64 * 1024.0 <= 200e6 { "met" } else { "**not met**" },
                    max as f64 * 1024.0 / 1e6
                );
            }
        }
        t.push_str("\nWhere the time goes (medians; CPU as % of one core over the window):\n\n| | ");
        t.push_str(&self.sizes.iter().map(|s| format!("{:.0} MB", mb(s.data_bytes))).collect::<Vec<_>>().join(" | "));
        t.push_str(" |\n|---|");
        t.push_str(&"---|".repeat(self.sizes.len()));
        t.push('\n');
        let mut row = |name: &str, cell: &dyn Fn(&SizeResult) -> String| {
            let _ = writeln!(t, "| {name} | {} |", self.sizes.iter().map(cell).collect::<Vec<_>>().join(" | "));
        };
        row("bundle object (BagIt tar) / source bytes", &|s| {
            let b = s.readback_on.first().map_or(0, |r| r.bundle_bytes);
            format!(
                "{b} B / {} B (+{} B of tar headers, tag files, metadata)",
                s.data_bytes,
                b.saturating_sub(s.data_bytes)
            )
        });
        row("`tar -cf - FILES | sha256sum` (local files, warm page cache)", &|s| {
            format!("{} · {:.0} MB/s", secs(s.tar_sha256sum.median()), mbps(s.data_bytes, s.tar_sha256sum.median()))
        });
        row("GetObject of the sources one after the other (what the builder reads)", &|s| {
            format!("{} · {:.0} MB/s", secs(s.s3_get.median()), mbps(s.data_bytes, s.s3_get.median()))
        });
        row(
            "reference: the sources read from S3 one after the other into a multipart upload, no bag (one run)",
            &|s| {
                s.s3_stream.as_ref().map_or("n/a".into(), |r| {
                    format!(
                        "{} · {:.0} MB/s · radosgw {} · ceph-osd {}",
                        secs(r.elapsed),
                        mbps(r.tar_bytes, r.elapsed),
                        cpu_cell(&r.cpu, "radosgw"),
                        cpu_cell(&r.cpu, "ceph-osd")
                    )
                })
            },
        );
        row("baseline `tar` → multipart (every run)", &|s| {
            let runs = s.baseline.iter().map(|r| secs(r.elapsed)).collect::<Vec<_>>().join(", ");
            format!("{runs} ({} parts)", s.baseline.first().map_or(0, |r| r.parts))
        });
        row("builder, read-back on (every run; publish → `ready_at`)", &|s| {
            s.readback_on.iter().map(|r| secs(r.window)).collect::<Vec<_>>().join(", ")
        });
        row("builder, read-back off (every run)", &|s| {
            s.readback_off.iter().map(|r| secs(r.window)).collect::<Vec<_>>().join(", ")
        });
        row("read-back's cost (on − off, medians)", &|s| {
            let d = median_of(&s.readback_on).as_secs_f64() - median_of(&s.readback_off).as_secs_f64();
            format!("{d:.3} s")
        });
        row("check: publish → the poll that saw `ready` (50 ms polls), median run, on / off", &|s| {
            let f = |r: Option<&BuilderRun>| r.map_or("n/a".into(), |r| secs(r.polled));
            format!("{} / {}", f(median_run(&s.readback_on)), f(median_run(&s.readback_off)))
        });
        row("worker CPU, median run, on / off", &|s| {
            let f = |r: Option<&BuilderRun>| r.map_or("n/a".into(), |r| cpu_cell(&r.cpu, "worker"));
            format!("{} / {}", f(median_run(&s.readback_on)), f(median_run(&s.readback_off)))
        });
        row("radosgw CPU, median run, on / off / baseline", &|s| {
            let f = |r: Option<&BuilderRun>| r.map_or("n/a".into(), |r| cpu_cell(&r.cpu, "radosgw"));
            let b = s.baseline.first().map_or("n/a".into(), |r| cpu_cell(&r.cpu, "radosgw"));
            format!("{} / {} / {b}", f(median_run(&s.readback_on)), f(median_run(&s.readback_off)))
        });
        row("ceph-osd CPU, median run, on / off / baseline", &|s| {
            let f = |r: Option<&BuilderRun>| r.map_or("n/a".into(), |r| cpu_cell(&r.cpu, "ceph-osd"));
            let b = s.baseline.first().map_or("n/a".into(), |r| cpu_cell(&r.cpu, "ceph-osd"));
            format!("{} / {} / {b}", f(median_run(&s.readback_on)), f(median_run(&s.readback_off)))
        });
        row("baseline: this process + `tar` CPU (first run)", &|s| {
            s.baseline.first().map_or("n/a".into(), |r| {
                format!("{:.0} %", 100.0 * r.cpu.own_secs / r.cpu.wall.as_secs_f64().max(1e-9))
            })
        });
        t.push_str("\nMachine load in each timed window (everything else = machine busy minus this benchmark, its `tar`, the worker, radosgw and ceph-osd; 2 cores = 100 %):\n\n");
        t.push_str("| bundle | run | quiet before? | machine busy | everything else |\n|---|---|---|---|---|\n");
        for s in &self.sizes {
            let mut line = |what: &str, q: &QuietWait, c: &CpuUse| {
                let _ = writeln!(
                    t,
                    "| {:.0} MB | {what} | {} | {:.0} % | {:.0} % |",
                    mb(s.data_bytes),
                    q.describe(),
                    100.0 * c.busy,
                    100.0 * c.others()
                );
            };
            for (i, r) in s.baseline.iter().enumerate() {
                line(&format!("baseline {}", i + 1), &r.quiet, &r.cpu);
            }
            for (i, r) in s.readback_on.iter().enumerate() {
                line(&format!("builder, read-back on {}", i + 1), &r.quiet, &r.cpu);
            }
            for (i, r) in s.readback_off.iter().enumerate() {
                line(&format!("builder, read-back off {}", i + 1), &r.quiet, &r.cpu);
            }
        }
        let _ = writeln!(
            t,
            "\nIngest of the sources (not timed as part of the benchmark): {:.1} s, {}.",
            self.ingest.as_secs_f64(),
            self.ingest_outcome
        );
        if !self.notes.is_empty() {
            t.push_str("\nNotes:\n\n");
            for n in &self.notes {
                let _ = writeln!(t, "- {n}");
            }
        }
        t
    }
}
