//! `recvault recover DAMAGED --reference REF`: rebuilds the index of an unfinalized recording (a
//! recorder that lost power: media data, no `moov`) from a finished recording of the same device,
//! writes the recovered file beside it (the damaged file is only read), then verifies the recovered
//! media exactly as the worker would (R2.1; the R13.1/R15.1 speech checks run on it).
//!
//! `recvault recover --evaluate N` measures recovery against generated ground truth instead
//! (ACCURACY.md).

use anyhow::{Context, bail};
use recvault_core::ContentHashes;
use recvault_core::probe::{Assessment, ProbeReport};
use recvault_recover::Recovery;
use recvault_recover::eval::{Outcome, corpus, run as run_case};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The unfinalized recording (read only)
    #[arg(required_unless_present = "evaluate")]
    damaged: Option<PathBuf>,
    /// A finished recording of the same device (or the same model and settings)
    #[arg(long, required_unless_present = "evaluate")]
    reference: Option<PathBuf>,
    /// Where to write the recovered file (default: DAMAGED with `.recovered.mp4`); never DAMAGED
    #[arg(long)]
    out: Option<PathBuf>,
    /// Instead: recover this many generated recordings killed mid-write and compare with ground truth
    #[arg(long, value_name = "CASES", conflicts_with_all = ["damaged", "reference", "out"])]
    evaluate: Option<usize>,
    /// Seed of the evaluation corpus
    #[arg(long, default_value_t = 11, requires = "evaluate")]
    seed: u64,
    /// Also write the evaluation report (Markdown) to this file
    #[arg(long, requires = "evaluate")]
    report: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Output {
    damaged: PathBuf,
    recovered: PathBuf,
    recovery: Recovery,
    /// Hashes of the recovered file (a derived object: the original keeps its own).
    recovered_hashes: ContentHashes,
    /// The worker's verification of the recovered media; its findings are about recovered media.
    analysed: &'static str,
    assessment: Assessment,
    report: ProbeReport,
}

/// Exit status 0 when samples were recovered, 1 when none could be placed.
pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(cases) = args.evaluate {
        return evaluate(cases, args.seed, args.report.as_deref());
    }
    let (Some(damaged), Some(reference)) = (args.damaged, args.reference) else {
        bail!("DAMAGED and --reference are required");
    };
    let out = args.out.unwrap_or_else(|| damaged.with_extension("recovered.mp4"));
    if same_file(&damaged, &out) || same_file(&reference, &out) {
        bail!("--out {} would overwrite an input: the original is evidence and is only read", out.display());
    }
    let settings = recvault_config::Settings::load(config).context("loading configuration")?;
    let recovery = recvault_recover::recover(&damaged, &reference, &out)?;
    if recovery.tracks.is_empty() {
        let why = recovery.unplaced.as_ref().map_or("no media data", |u| u.reason.as_str());
        eprintln!("recvault: nothing could be placed: {why}");
        let _ = std::fs::remove_file(&out);
        super::print_json(&recovery)?;
        return Ok(ExitCode::from(1));
    }
    recvault_media::init().context("initialising gstreamer")?;
    let policy = settings.probe.policy();
    let (recovered_hashes, v) = super::probe::hash_and_verify(&out, &policy, recvault_media::Counting::default())?;
    super::print_json(&Output {
        damaged,
        recovered: out,
        recovery,
        recovered_hashes,
        analysed: "recovered media: timestamps rebuilt at the reference's constant rates",
        assessment: v.assessment,
        report: v.report,
    })?;
    Ok(ExitCode::SUCCESS)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn evaluate(cases: usize, seed: u64, report: Option<&Path>) -> anyhow::Result<ExitCode> {
    recvault_media::init().context("initialising gstreamer")?;
    let started = Instant::now();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for case in corpus(cases, seed) {
        let dir = tempfile::tempdir().context("temporary directory")?;
        let outcome = run_case(&case, dir.path()).map_err(|e| anyhow::anyhow!("{}: {e}", case.name))?;
        eprintln!("{}: {}", if outcome.exact() { "exact" } else { "FAILED" }, outcome.name);
        outcomes.push(outcome);
    }
    let text = render(&outcomes, seed, started.elapsed().as_secs_f64());
    print!("{text}");
    if let Some(path) = report {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if outcomes.iter().all(Outcome::exact) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn render(outcomes: &[Outcome], seed: u64, seconds: f64) -> String {
    let n = outcomes.len();
    let exact = outcomes.iter().filter(|o| o.exact()).count();
    let misplaced: u64 = outcomes.iter().map(|o| o.misplaced).sum();
    let (ev, ea) = outcomes.iter().fold((0, 0), |(v, a), o| (v + o.expected.0, a + o.expected.1));
    let (rv, ra) = outcomes.iter().fold((0, 0), |(v, a), o| (v + o.recovered.0, a + o.recovered.1));
    let placed = outcomes.iter().map(|o| o.placed_fraction).fold(f64::INFINITY, f64::min);
    let mean_placed = outcomes.iter().map(|o| o.placed_fraction).sum::<f64>() / n.max(1) as f64;
    let time = outcomes.iter().map(|o| o.recovered_seconds / o.fed_seconds).sum::<f64>() / n.max(1) as f64;
    let speech: Vec<&Outcome> = outcomes.iter().filter(|o| o.speech_truth_seconds > 0.0).collect();
    let agreement = speech.iter().map(|o| o.speech_agreement).sum::<f64>() / speech.len().max(1) as f64;
    let worst = speech.iter().map(|o| o.speech_agreement).fold(f64::INFINITY, f64::min);
    let mut s = String::new();
    let _ = writeln!(s, "Recovery of killed recordings: {n} cases, seed {seed}, {seconds:.0} s\n");
    let _ = writeln!(s, "| measure | value |\n|---|---|");
    let _ = writeln!(s, "| cases recovered exactly (every whole sample, none misplaced, demuxed) | {exact} / {n} |");
    let _ = writeln!(s, "| samples placed wrongly | {misplaced} |");
    let _ = writeln!(s, "| video samples recovered / in the file | {rv} / {ev} |");
    let _ = writeln!(s, "| audio frames recovered / in the file | {ra} / {ea} |");
    let _ = writeln!(s, "| media bytes placed: mean, lowest | {mean_placed:.4}, {placed:.4} |");
    let _ = writeln!(s, "| recovered duration / media fed before the kill (mean) | {time:.3} |");
    let _ = writeln!(
        s,
        "| speech agreement (IoU with the finished file), mean, lowest, over {} cases with speech | {agreement:.3}, {worst:.3} |",
        speech.len()
    );
    let _ = writeln!(
        s,
        "\n| case | expected v/a | recovered v/a | misplaced | placed | unplaced tail | speech IoU |\n|---|---|---|---|---|---|---|"
    );
    for o in outcomes {
        let tail = o.unplaced.as_ref().map_or("-".to_string(), |(b, _)| format!("{b} B"));
        let _ = writeln!(
            s,
            "| {} | {}/{} | {}/{} | {} | {:.4} | {tail} | {:.3} |",
            o.name,
            o.expected.0,
            o.expected.1,
            o.recovered.0,
            o.recovered.1,
            o.misplaced,
            o.placed_fraction,
            o.speech_agreement
        );
    }
    s
}
