//! `recvault-loadtest`: issue #2's benchmark, run on the real local stack in one invocation.
//!
//! 1. **Verify pass**: what the worker runs on a spooled file (`fetch::hash_file` +
//!    `verify::verify_blocking`) against `ffprobe -show_packets` followed by `b3sum`, on a ~800 MB
//!    file and on a corpus of ~20 small recordings; with the split (hash alone, probe alone,
//!    BLAKE3 alone, SHA-256 alone) and two overlapped variants. Issue 8: the whole
//!    `recvault probe FILE` process against the naive sequence `ffprobe -show_packets` +
//!    `ffmpeg` audio → 16 kHz mono + `b3sum` (whole processes), wall and CPU time.
//! 2. **Ingest through the queue**: the station stages and posts jobs, the release
//!    `recvault worker` consumes them; first publish → last committed row, against a plain
//!    PutObject of the same bytes to the same S3 server with the same client configuration.
//! 3. **Worker peak RSS** (`VmHWM`) during those ingests.
//!
//! Every ingest uses a fresh deployment (queue prefix, buckets, database) that is removed again
//! afterwards; see [`deploy`].
//!
//! Separate subcommands: `archive` (issue 6: the archive write's proof), `bundle` (issue 7: a
//! case-file bundle against `tar` into a multipart upload, and the builder's peak RSS) and
//! `search` (R18.1 search latency over generated rows).

mod archive;
mod bundle;
mod corpus;
mod deploy;
mod ingest;
mod procfs;
mod report;
mod search;
mod stats;
mod tarbase;
mod verify;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Issue #2's benchmark: recvault's verify pass against ffprobe + b3sum, ingest through the queue
/// against a plain S3 upload, and the worker's peak RSS, in one run on the local stack.
///
/// Needs the local stack (`deploy/local/stack.sh up`) and its environment
/// (`eval "$(deploy/local/stack.sh env)"`), a release build of `recvault` next to this binary
/// (`cargo build --release -p recvault -p recvault-loadtest`), and ffprobe, b3sum and sha256sum
/// on the PATH. Prints Markdown tables to stdout; progress goes to stderr.
#[derive(Debug, Parser)]
#[command(name = "recvault-loadtest", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// All three measurements: verify pass, ingest through the queue, worker peak RSS
    Run(Opts),
    /// Only the verify pass (measurement 1); needs no services
    Verify(Opts),
    /// Only the ingest through the queue and the worker's peak RSS (measurements 2 and 3)
    Ingest(Opts),
    /// The archive write's cost of proving its content: today's copy + read-back against the
    /// copy alone (before) and an upload with Content-MD5, on the local S3 store
    Archive(ArchiveOpts),
    /// Issue 7: building and uploading a case-file bundle (release `recvault worker`) against
    /// `tar -cf - FILES` piped into a plain multipart upload to the same S3 server, with the
    /// builder's peak RSS, at several bundle sizes, read-back on and off
    Bundle(BundleOpts),
    /// R18.1: search latency (p50/p99/max) of `Db::search_recordings` per query shape over
    /// generated recording rows in a fresh database
    Search(SearchOpts),
}

#[derive(Debug, Clone, Args)]
struct BundleOpts {
    /// Bundle sizes, in MB of source files (each rounded up to whole files)
    #[arg(long, value_delimiter = ',', default_values_t = [512u64, 2048])]
    sizes_mb: Vec<u64>,
    /// Size of each source file, in MB (random bytes, ingested and quarantined as not-MP4)
    #[arg(long, default_value_t = 256)]
    file_mb: u64,
    /// Timed runs of each variant per size (medians are reported)
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Parts the baseline keeps in flight: the builder's `PARTS_IN_FLIGHT`
    /// (services/bundles/src/build.rs)
    #[arg(long, default_value_t = 2)]
    parts_in_flight: usize,
    /// Do not run Ceph's garbage collector (`radosgw-admin gc process --include-all`) after
    /// deleting each bundle; deleted bytes then stay on the OSD for `rgw_gc_obj_min_wait` (2 h)
    #[arg(long)]
    no_rgw_gc: bool,
    /// Directory of the local Ceph cluster (ceph.conf, run/*.pid)
    /// [default: $RECVAULT_STATE or ~/.cache/recvault, then ceph]
    #[arg(long)]
    ceph_dir: Option<PathBuf>,
    /// Keep the generated source files
    #[arg(long)]
    keep_sources: bool,
    /// Stop before a write that would leave less than this many GB free on the file system of
    /// the work directory or of Ceph's OSD (the local OSD is a sparse file that grows with every
    /// write and does not shrink when objects are deleted)
    #[arg(long, default_value_t = 6)]
    min_free_gb: u64,
    /// Run the reference "sources read from S3 into a multipart upload" (one run) only for
    /// bundles up to this many MB (it writes the bundle's size once more)
    #[arg(long, default_value_t = 512)]
    reference_max_mb: u64,
    /// The `recvault` binary to spawn as the worker [default: `recvault` next to this executable]
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Scratch directory: source files (removed), worker spools (removed) and logs (kept)
    #[arg(long, default_value = "/tmp/recvault-loadtest-bundle")]
    work_dir: PathBuf,
    #[command(flatten)]
    quiet: QuietOpts,
    /// Measure even in a debug build (the numbers are then meaningless)
    #[arg(long)]
    allow_debug: bool,
}

#[derive(Debug, Clone, Args)]
struct SearchOpts {
    /// Recording rows to generate
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Timed queries per shape (deep pagination: as many pages, in walks of 21)
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Seed of the generated data and of the query parameters
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Keep the generated database (default: dropped)
    #[arg(long)]
    keep_db: bool,
    /// Also write every shape's EXPLAIN (ANALYZE, BUFFERS) plans to this file
    #[arg(long, value_name = "FILE")]
    plans: Option<PathBuf>,
    #[command(flatten)]
    quiet: QuietOpts,
    /// Measure even in a debug build (the numbers are then meaningless)
    #[arg(long)]
    allow_debug: bool,
}

#[derive(Debug, Clone, Args)]
struct QuietOpts {
    /// Before each timed phase, wait until the machine's CPU use (everyone's) is below this
    /// percentage of all cores; 0 = do not wait
    #[arg(long, default_value_t = 0.0, value_name = "PERCENT")]
    quiet_below: f64,
    /// Longest wait for --quiet-below before measuring anyway (reported)
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    quiet_timeout_secs: u64,
}

impl QuietOpts {
    fn quiet(&self) -> procfs::Quiet {
        procfs::Quiet { below: self.quiet_below, timeout: std::time::Duration::from_secs(self.quiet_timeout_secs) }
    }
}

#[derive(Debug, Clone, Args)]
struct ArchiveOpts {
    /// File sizes, in MB
    #[arg(long, value_delimiter = ',', default_values_t = [16u64, 128, 512])]
    sizes_mb: Vec<u64>,
    /// Timed repetitions per size and variant (medians are reported)
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Scratch directory for the generated files and the spool
    #[arg(long, default_value = "/tmp/recvault-loadtest-archive")]
    work_dir: PathBuf,
    /// Measure even in a debug build (the numbers are then meaningless)
    #[arg(long)]
    allow_debug: bool,
}

#[derive(Debug, Clone, Args)]
struct Opts {
    /// The large file (720p H.264 + AAC, moov at end); generated with recvault_fixtures::big_file
    /// if it does not exist
    #[arg(long, default_value = "/tmp/recvault-big.mp4")]
    big: PathBuf,
    /// Size of the large file when it has to be generated, in MB
    #[arg(long, default_value_t = 800)]
    big_size_mb: u64,
    /// Corpus directory: reused when its manifest matches the corpus specs, (re)generated otherwise
    #[arg(long, default_value = "/tmp/recvault-loadtest-corpus")]
    corpus_dir: PathBuf,
    /// Recordings in the corpus (a few MB each, mixed layouts, half with speech)
    #[arg(long, default_value_t = 20)]
    corpus_files: usize,
    /// Timed repetitions of each verify-pass variant, after one untimed warm-up
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Ingest runs per file set, each on a fresh deployment (the tables show the median run)
    #[arg(long, default_value_t = 3)]
    ingest_repeats: usize,
    /// Jobs the worker runs at once (its default is 2); the plain-upload baseline and the station
    /// upload as many files in parallel
    #[arg(long, default_value_t = 2)]
    concurrency: u16,
    /// The `recvault` binary to spawn as the worker [default: `recvault` next to this executable]
    #[arg(long)]
    worker_bin: Option<PathBuf>,
    /// Scratch directory: worker spool directories (removed) and worker logs (kept)
    #[arg(long, default_value = "/tmp/recvault-loadtest")]
    work_dir: PathBuf,
    /// Also write the results into this Markdown file, between the markers
    /// `<!-- recvault-loadtest:begin -->` and `<!-- recvault-loadtest:end -->` (the rest of the
    /// file is kept; the block is appended if the markers are missing)
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// PID file of the local moto server, to report its CPU time and RSS
    /// [default: $RECVAULT_STATE or ~/.cache/recvault, then moto.pid]
    #[arg(long)]
    moto_pid_file: Option<PathBuf>,
    /// Restart moto (kill the PID in the PID file, then `deploy/local/stack.sh up`) before an
    /// ingest run when its RSS exceeds this many MiB; 0 = never. Restarting drops every object in
    /// moto, including other users' ones
    #[arg(long, default_value_t = 0)]
    restart_moto_above_mib: u64,
    /// Before each phase, wait until the machine's CPU use (everyone's) is below this percentage of
    /// all cores, so builds or tests of other users do not skew the numbers; 0 = do not wait
    #[arg(long, default_value_t = 0.0, value_name = "PERCENT")]
    quiet_below: f64,
    /// Longest wait for --quiet-below before measuring anyway (noted in the report)
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    quiet_timeout_secs: u64,
    /// Measure even in a debug build (the numbers are then meaningless)
    #[arg(long)]
    allow_debug: bool,
}

fn run_archive(a: &ArchiveOpts) -> anyhow::Result<()> {
    if cfg!(debug_assertions) && !a.allow_debug {
        bail!("this is a debug build: run `cargo build --release -p recvault-loadtest` (or pass --allow-debug)");
    }
    let base = recvault_config::Settings::load(None).context("settings from RECVAULT_* variables")?;
    if base.s3.endpoint.is_none() {
        bail!("RECVAULT_S3__ENDPOINT is not set: run `eval \"$(deploy/local/stack.sh env)\"` first");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let rows = rt.block_on(archive::run(&base, &a.sizes_mb, a.repeats.max(1), &a.work_dir))?;
    println!("{}", archive::table(&rows));
    Ok(())
}

fn state_dir() -> PathBuf {
    std::env::var_os("RECVAULT_STATE").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache"))
            .join("recvault")
    })
}

fn admin_url() -> String {
    std::env::var("RECVAULT_TEST_PG_ADMIN_URL")
        .unwrap_or_else(|_| "postgres://recvault:recvault-local@127.0.0.1:5432/postgres".into())
}

fn worker_bin(given: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match given {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.parent().map(|d| d.join("recvault")).context("no executable directory")?,
    };
    if !bin.exists() {
        bail!("{} not found: run `cargo build --release -p recvault` (or pass --worker-bin)", bin.display());
    }
    Ok(bin)
}

fn run_bundle(o: &BundleOpts) -> anyhow::Result<()> {
    if cfg!(debug_assertions) && !o.allow_debug {
        bail!(
            "this is a debug build: run `cargo build --release -p recvault -p recvault-loadtest` (or pass --allow-debug)"
        );
    }
    let base = recvault_config::Settings::load(None).context("settings from RECVAULT_* variables")?;
    if base.s3.endpoint.is_none() {
        bail!("RECVAULT_S3__ENDPOINT is not set: run `eval \"$(deploy/local/stack.sh env)\"` first");
    }
    let ceph_dir = o.ceph_dir.clone().unwrap_or_else(|| state_dir().join("ceph"));
    let conf = ceph_dir.join("ceph.conf");
    std::fs::create_dir_all(&o.work_dir).with_context(|| format!("creating {}", o.work_dir.display()))?;
    let cfg = bundle::BundleBench {
        base,
        admin_url: admin_url(),
        worker_bin: worker_bin(o.worker_bin.as_ref())?,
        work_dir: o.work_dir.clone(),
        sizes_mb: o.sizes_mb.clone(),
        file_mb: o.file_mb.max(1),
        repeats: o.repeats.max(1),
        parts_in_flight: o.parts_in_flight.max(1),
        rgw_gc_conf: (!o.no_rgw_gc && conf.exists()).then_some(conf),
        ceph_run_dir: Some(ceph_dir.join("run")),
        quiet: o.quiet.quiet(),
        keep_sources: o.keep_sources,
        min_free_bytes: o.min_free_gb * 1_000_000_000,
        ceph_dir: ceph_dir.exists().then(|| ceph_dir.clone()),
        reference_max_mb: o.reference_max_mb,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(bundle::run(&cfg))?;
    let m = procfs::machine();
    println!(
        "## recvault-loadtest bundle: {}
",
        report.started.format("%Y-%m-%d %H:%M UTC")
    );
    println!("- Machine: {}, {} cores, {:.1} GiB RAM; {}, Linux {}", m.cpu, m.cores, m.mem_gib, m.os, m.kernel);
    for (k, v) in [
        ("tar", procfs::tool_version("tar", &["--version"], 0)),
        ("radosgw", procfs::tool_version("radosgw", &["--version"], 0)),
        ("git revision", git_revision()),
    ] {
        if let Some(v) = v {
            println!("- {k}: {v}");
        }
    }
    println!("- Command: `{}`", command_line());
    println!(
        "- Whole run: {:.0} s
",
        report.elapsed.as_secs_f64()
    );
    println!("{}", report.tables());
    Ok(())
}

fn run_search(o: &SearchOpts) -> anyhow::Result<()> {
    if cfg!(debug_assertions) && !o.allow_debug {
        bail!("this is a debug build: run `cargo build --release -p recvault-loadtest` (or pass --allow-debug)");
    }
    let base = recvault_config::Settings::load(None).context("settings from RECVAULT_* variables")?;
    let cfg = search::SearchBench {
        base,
        admin_url: admin_url(),
        rows: o.rows.max(1),
        queries: o.queries.max(1),
        seed: o.seed,
        quiet: o.quiet.quiet(),
        keep_db: o.keep_db,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(search::run(&cfg))?;
    let m = procfs::machine();
    println!(
        "## recvault-loadtest search: {}
",
        report.started.format("%Y-%m-%d %H:%M UTC")
    );
    println!("- Machine: {}, {} cores, {:.1} GiB RAM; {}, Linux {}", m.cpu, m.cores, m.mem_gib, m.os, m.kernel);
    if let Some(v) = git_revision() {
        println!("- git revision: {v}");
    }
    println!(
        "- Command: `{}`
",
        command_line()
    );
    println!("{}", report.tables());
    if let Some(p) = &o.plans {
        std::fs::write(p, report.all_plans()).with_context(|| format!("writing {}", p.display()))?;
        eprintln!("[loadtest] plans written to {}", p.display());
    }
    Ok(())
}

fn git_revision() -> Option<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let dirty = std::process::Command::new("git")
        .args(["-C", root, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    procfs::tool_version("git", &["-C", root, "rev-parse", "--short", "HEAD"], 0)
        .map(|r| if dirty { format!("{r} + uncommitted changes in the working tree") } else { r })
}

fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,lapin=off".into()))
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("recvault-loadtest: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let (opts, do_verify, do_ingest) = match command {
        Command::Archive(a) => return run_archive(&a),
        Command::Bundle(b) => return run_bundle(&b),
        Command::Search(q) => return run_search(&q),
        Command::Run(o) => (o, true, true),
        Command::Verify(o) => (o, true, false),
        Command::Ingest(o) => (o, false, true),
    };
    if cfg!(debug_assertions) && !opts.allow_debug {
        bail!(
            "this is a debug build: run `cargo build --release -p recvault -p recvault-loadtest` and target/release/recvault-loadtest (or pass --allow-debug)"
        );
    }
    let started = chrono::Utc::now();
    let clock = Instant::now();
    std::fs::create_dir_all(&opts.work_dir).with_context(|| format!("creating {}", opts.work_dir.display()))?;

    let moto_pid_file = opts.moto_pid_file.clone().unwrap_or_else(default_moto_pid_file);
    let mut moto = procfs::Moto::find(&moto_pid_file);
    let mut notes = Vec::new();
    if moto.pid.is_none() {
        notes.push(format!("moto's PID was not found via {}: no moto CPU or RSS readings", moto_pid_file.display()));
    }

    let big = corpus::big(&opts.big, opts.big_size_mb)?;
    let corpus = corpus::corpus(&opts.corpus_dir, opts.corpus_files)?;

    let mut loads = Vec::new();
    let mut verify_results = Vec::new();
    if do_verify {
        // Issue 8's whole-process comparison needs the release CLI next to this binary.
        let recvault = worker_bin(opts.worker_bin.as_ref()).ok();
        if recvault.is_none() {
            notes.push("no release `recvault` binary: the whole-process `recvault probe` variant was skipped".into());
        }
        for set in [&big, &corpus] {
            quiet(&opts, &mut notes);
            let meter = procfs::LoadMeter::start(format!("verify pass, {}", set.label), &moto);
            verify_results.push(verify::run(set, opts.repeats, recvault.as_deref())?);
            loads.extend(meter.stop(&moto));
        }
    }

    let mut ingest_runs = Vec::new();
    if do_ingest {
        let worker_bin = match &opts.worker_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?.parent().map(|d| d.join("recvault")).context("no executable directory")?,
        };
        if !worker_bin.exists() {
            bail!("{} not found: run `cargo build --release -p recvault` (or pass --worker-bin)", worker_bin.display());
        }
        let base = recvault_config::Settings::load(None).context("settings from RECVAULT_* variables")?;
        if base.s3.endpoint.is_none() {
            bail!("RECVAULT_S3__ENDPOINT is not set: run `eval \"$(deploy/local/stack.sh env)\"` first");
        }
        let admin_url = std::env::var("RECVAULT_TEST_PG_ADMIN_URL")
            .unwrap_or_else(|_| "postgres://recvault:recvault-local@127.0.0.1:5432/postgres".into());
        let cfg = ingest::IngestConfig {
            base,
            admin_url,
            worker_bin,
            concurrency: opts.concurrency.max(1),
            work_dir: opts.work_dir.clone(),
        };
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        for set in [&corpus, &big] {
            for i in 1..=opts.ingest_repeats.max(1) {
                if let Some(note) = maybe_restart_moto(&opts, &mut moto)? {
                    notes.push(note);
                }
                quiet(&opts, &mut notes);
                let meter = procfs::LoadMeter::start(format!("ingest {}, run {i}", set.label), &moto);
                ingest_runs.push(rt.block_on(ingest::run(&cfg, set, &moto))?);
                loads.extend(meter.stop(&moto));
            }
        }
    }

    notes.push(
        "S3 is moto 5 (in-memory, single Python process behind the GIL; objects above ~5 MB spill to temporary files): every S3 number is moto's, not AWS's.".into(),
    );
    notes.push("Each ingest run used its own queue prefix, buckets and database, all removed afterwards; the archive bucket used Object Lock in GOVERNANCE mode (same calls as COMPLIANCE) so the archived versions could be deleted with a governance bypass instead of staying in moto.".into());
    let versions = versions(&moto);
    let report = report::Report {
        started,
        elapsed: clock.elapsed(),
        machine: procfs::machine(),
        versions,
        command: command_line(),
        verify: verify_results,
        ingest: ingest_runs,
        loads,
        notes,
    };
    println!("{}", report.tables());
    if let Some(md) = &opts.markdown {
        report::write_markdown(md, &report.markdown_block()).with_context(|| format!("writing {}", md.display()))?;
        eprintln!("[loadtest] results written to {}", md.display());
    }
    Ok(())
}

/// Honours --quiet-below before a phase.
fn quiet(opts: &Opts, notes: &mut Vec<String>) {
    if opts.quiet_below <= 0.0 {
        return;
    }
    let (waited, ok) =
        procfs::wait_for_quiet(opts.quiet_below, std::time::Duration::from_secs(opts.quiet_timeout_secs));
    if !ok {
        notes.push(format!(
            "the machine stayed above {:.0} % CPU for {:.0} s before a phase; it was measured anyway",
            opts.quiet_below,
            waited.as_secs_f64()
        ));
    }
}

fn default_moto_pid_file() -> PathBuf {
    let state = std::env::var_os("RECVAULT_STATE").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap_or_default()).join(".cache"))
            .join("recvault")
    });
    state.join("moto.pid")
}

/// Restarts moto when it holds more than the configured RSS (opt-in: it drops everyone's objects).
fn maybe_restart_moto(opts: &Opts, moto: &mut procfs::Moto) -> anyhow::Result<Option<String>> {
    let (limit, Some(pid), Some(rss)) = (opts.restart_moto_above_mib, moto.pid, moto.rss_mb()) else {
        return Ok(None);
    };
    if limit == 0 || rss <= limit as f64 {
        return Ok(None);
    }
    eprintln!("[loadtest] moto holds {rss:.0} MiB (> {limit} MiB): restarting it");
    let stack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/stack.sh");
    let status = std::process::Command::new("kill").arg(pid.to_string()).status()?;
    if !status.success() {
        bail!("kill {pid} failed");
    }
    for _ in 0..100 {
        if procfs::cmdline(pid).is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = std::process::Command::new(&stack).arg("up").stdout(std::process::Stdio::null()).status()?;
    if !status.success() {
        bail!("{} up failed", stack.display());
    }
    *moto = procfs::Moto::find(&moto.pid_file);
    Ok(Some(format!("moto was restarted before an ingest run: it held {rss:.0} MiB (limit {limit} MiB)")))
}

fn versions(moto: &procfs::Moto) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut add = |k: &str, val: Option<String>| {
        if let Some(val) = val {
            v.push((k.to_string(), val));
        }
    };
    add("rustc", procfs::tool_version("rustc", &["-V"], 0));
    add("GStreamer", procfs::tool_version("gst-inspect-1.0", &["--version"], 1));
    add(
        "ffprobe",
        procfs::tool_version("ffprobe", &["-version"], 0)
            .map(|l| l.split(" Copyright").next().unwrap_or(&l).to_string()),
    );
    add("b3sum", procfs::tool_version("b3sum", &["--version"], 0));
    add("sha256sum", procfs::tool_version("sha256sum", &["--version"], 0));
    let moto_version = moto.pid.and_then(procfs::cmdline).and_then(|c| {
        let python = c.split(' ').next()?.to_string();
        procfs::tool_version(&python, &["-c", "import moto; print(moto.__version__)"], 0)
    });
    add("moto", moto_version);
    let root = env!("CARGO_MANIFEST_DIR");
    let dirty = std::process::Command::new("git")
        .args(["-C", root, "status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    add(
        "git revision",
        procfs::tool_version("git", &["-C", root, "rev-parse", "--short", "HEAD"], 0)
            .map(|r| if dirty { format!("{r} + uncommitted changes in the working tree") } else { r }),
    );
    v
}

/// The command line as run, with the executable shown relative to the workspace when possible.
fn command_line() -> String {
    let mut args: Vec<String> = std::env::args().collect();
    if let Some(exe) = args.first_mut()
        && let Ok(root) = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize()
        && let Ok(abs) = Path::new(exe.as_str()).canonicalize()
        && let Ok(rel) = abs.strip_prefix(&root)
    {
        *exe = rel.display().to_string();
    }
    args.iter()
        .map(|a| if a.contains(' ') || a.is_empty() { format!("'{a}'") } else { a.clone() })
        .collect::<Vec<_>>()
        .join(" ")
}
