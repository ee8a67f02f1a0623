//! `recvault eval`: the accuracy of the compliance checks, measured by running the real pipeline
//! code (the worker's probe with speech detection, its assessment, and the activity analysis) over
//! generated activities whose ground truth is known, and counting per finding kind and per noise
//! condition. The numbers in ACCURACY.md come from here.
//!
//! Ground truth comes from the generator (where the voiced speech of the clean synthesized
//! utterances was written, where the pauses are); the rules applied to it are the product's:
//! speech of at least the minimum length starting inside the window and before recording stops
//! again.

use anyhow::Context;
use chrono::TimeDelta;
use recvault_config::Settings;
use recvault_core::analysis::{AnalysisPolicy, Audio, RecordingFacts, assemble, pauses_of};
use recvault_core::probe::{ProbePolicy, assess};
use recvault_fixtures::activity::{LabelledActivity, evaluation_corpus};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Corpus size: 16 street-noise activities per SNR and 4 trap activities per noise per unit
    #[arg(long, default_value_t = 1)]
    scale: usize,
    /// Seed of the corpus
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Where to generate the corpus (default: a temporary directory, removed afterwards)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write the report (Markdown) to this file
    #[arg(long)]
    report: Option<PathBuf>,
    /// Evaluate who spoke (R13.1, R15.1 count only the wearer) on labelled scenes instead: the
    /// wearer alone, over a crowd, a crowd alone, a party at 1 m, a radio; 25 activities per scale
    /// unit and noise level, recorded by devices in shifts of five (one wearer each), analysed per
    /// shift as the worker does
    #[arg(long)]
    scenes: bool,
    /// With --scenes: also write every speech segment's cues and true speaker (CSV), for tuning
    #[arg(long)]
    cues: Option<PathBuf>,
}

/// Confusion counts of one binary check.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
    /// The check could not run (no audio at that moment).
    unknown: u32,
}

impl Counts {
    fn add(&mut self, truth: bool, predicted: Option<bool>) {
        match (truth, predicted) {
            (_, None) => self.unknown += 1,
            (true, Some(true)) => self.tp += 1,
            (false, Some(true)) => self.fp += 1,
            (true, Some(false)) => self.fn_ += 1,
            (false, Some(false)) => self.tn += 1,
        }
    }

    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    fn row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            self.tp,
            self.fp,
            self.fn_,
            self.tn,
            self.unknown,
            fmt(self.precision(), self.tp + self.fp),
            fmt(self.recall(), self.tp + self.fn_)
        )
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 { f64::NAN } else { f64::from(a) / f64::from(b) }
}

fn fmt(v: f64, denominator: u32) -> String {
    if denominator == 0 { "n/a".into() } else { format!("{v:.3}") }
}

/// Interruption detection, which must be exact.
#[derive(Debug, Default, Clone, Copy)]
struct Detection {
    labelled: u32,
    found: u32,
    missed: u32,
    spurious: u32,
    max_gap_error_ms: u64,
}

#[derive(Debug, Default)]
struct Tally {
    interruptions: Detection,
    unexplained: Counts,
    notification_missing: Counts,
    activities: u32,
    audio_s: f64,
}

pub fn run(config: Option<&Path>, a: Args) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(config).context("loading configuration")?;
    let probe = ProbePolicy { speech: true, ..settings.probe.policy() };
    let policy = settings.analysis.policy();
    recvault_media::init().context("initialising gstreamer")?;

    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().context("temporary directory")?;
            tmp.path().to_path_buf()
        }
    };
    if a.scenes {
        let report = crate::commands::eval_scenes::run(&probe, &policy, &dir, a.scale, a.seed, a.cues.as_deref())?;
        print!("{report}");
        if let Some(path) = &a.report {
            std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("generating the corpus (scale {}, seed {}) in {}", a.scale, a.seed, dir.display());
    let started = Instant::now();
    let corpus = evaluation_corpus(&dir, a.scale, a.seed).context("generating the evaluation corpus")?;
    let generated_in = started.elapsed();
    eprintln!("{} activities generated in {:.0} s; analysing", corpus.len(), generated_in.as_secs_f64());

    let started = Instant::now();
    let mut by_condition: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for act in &corpus {
        let condition = condition(act);
        let tally = by_condition.entry(condition).or_default();
        evaluate(act, &probe, &policy, tally, &mut failures)?;
    }
    let analysed_in = started.elapsed();
    let report = render(&by_condition, &failures, &policy, a.scale, a.seed, generated_in, analysed_in);
    print!("{report}");
    if let Some(path) = &a.report {
        std::fs::write(path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn condition(act: &LabelledActivity) -> String {
    let bg = format!("{:?}", act.spec.background).to_lowercase();
    match bg.as_str() {
        "street" => format!("street {:>2} dB", act.spec.snr_db as i32),
        other => format!("{other} (no speech)"),
    }
}

fn evaluate(
    act: &LabelledActivity,
    probe: &ProbePolicy,
    policy: &AnalysisPolicy,
    tally: &mut Tally,
    failures: &mut Vec<String>,
) -> anyhow::Result<()> {
    let start = act.spec.started_at;
    let mut facts = Vec::with_capacity(act.files.len());
    for (i, f) in act.files.iter().enumerate() {
        let report = recvault_media::probe(&f.path, probe).with_context(|| format!("probing {}", f.path.display()))?;
        let assessment = assess(&report, probe);
        tally.audio_s += assessment.readable_duration_ns as f64 / 1e9;
        facts.push(RecordingFacts {
            recording_id: i64::try_from(i).unwrap_or(i64::MAX),
            device_id: act.spec.device_id.clone(),
            activity_id: None,
            start: start + td(f.start),
            duration_ns: assessment.readable_duration_ns,
            pauses: pauses_of(&report, probe),
            audio: Audio::of(&report),
            continues_from_device: None,
        });
    }
    let activities = assemble(&facts, &[], policy);
    tally.activities += 1;
    if activities.len() != 1 {
        failures.push(format!("{}: assembled into {} activities", act.spec.name, activities.len()));
    }
    let resumptions: Vec<_> = activities.iter().flat_map(|a| a.resumptions.iter()).collect();

    // Ground truth with the product's rule: the window ends early when recording stops again.
    let stops: Vec<Duration> = act.resumptions.iter().map(|r| r.at - r.gap).collect();
    let speech_within = |from: Duration, window: Duration, min: Duration| {
        let next_stop = stops.iter().copied().filter(|&s| s > from).min();
        let until = next_stop.map_or(from + window, |s| s.min(from + window));
        // R13.1, R15.1: only the wearer's speech counts.
        act.speech.iter().any(|s| s.wearer && s.start >= from && s.start <= until && s.end - s.start >= min)
    };
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);

    let d = &mut tally.interruptions;
    let mut matched = vec![false; resumptions.len()];
    for label in &act.resumptions {
        d.labelled += 1;
        let at = start + td(label.at);
        let hit =
            resumptions.iter().enumerate().find(|(_, r)| (r.resumed_at - at).abs() <= TimeDelta::milliseconds(1000));
        let truth_unexplained =
            !speech_within(label.at, dur(policy.explanation_window_ns), dur(policy.explanation_min_speech_ns));
        match hit {
            Some((k, r)) => {
                matched[k] = true;
                d.found += 1;
                d.max_gap_error_ms = d.max_gap_error_ms.max(r.gap_ns.abs_diff(ns(label.gap)) / 1_000_000);
                let predicted = if r.explanation.is_unchecked() { None } else { Some(r.explanation.is_missing()) };
                tally.unexplained.add(truth_unexplained, predicted);
                if predicted.is_some_and(|p| p != truth_unexplained) {
                    failures.push(format!(
                        "{}: resumption at {:.1} s: truth {}, predicted {} ({})",
                        act.spec.name,
                        label.at.as_secs_f64(),
                        if truth_unexplained { "unexplained" } else { "explained" },
                        if truth_unexplained { "explained" } else { "unexplained" },
                        r.explanation
                    ));
                }
            }
            None => {
                d.missed += 1;
                failures.push(format!("{}: resumption at {:.1} s not detected", act.spec.name, label.at.as_secs_f64()));
            }
        }
    }
    let spurious = matched.iter().filter(|m| !**m).count();
    d.spurious += u32::try_from(spurious).unwrap_or(u32::MAX);
    if spurious > 0 {
        failures.push(format!("{}: {spurious} spurious interruption(s)", act.spec.name));
    }

    let truth_missing =
        !speech_within(Duration::ZERO, dur(policy.notification_window_ns), dur(policy.notification_min_speech_ns));
    let predicted = match activities.first().and_then(|a| a.notification.as_ref()) {
        Some(e) if !e.is_unchecked() => Some(e.is_missing()),
        _ => None,
    };
    tally.notification_missing.add(truth_missing, predicted);
    if predicted.is_some_and(|p| p != truth_missing) {
        failures.push(format!(
            "{}: notification: truth {}, predicted {}",
            act.spec.name,
            if truth_missing { "missing" } else { "given" },
            if truth_missing { "given" } else { "missing" }
        ));
    }
    Ok(())
}

fn td(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn dur(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

fn render(
    by: &BTreeMap<String, Tally>,
    failures: &[String],
    policy: &AnalysisPolicy,
    scale: usize,
    seed: u64,
    generated_in: Duration,
    analysed_in: Duration,
) -> String {
    let mut out = String::new();
    let audio: f64 = by.values().map(|t| t.audio_s).sum();
    let activities: u32 = by.values().map(|t| t.activities).sum();
    let _ = writeln!(out, "## Evaluation run\n");
    let _ = writeln!(
        out,
        "`recvault eval --scale {scale} --seed {seed}`: {activities} activities, {:.0} s of recording timeline, generated in {:.0} s, \
         analysed in {:.0} s ({:.0}x real time). Checks: explanation within {} s lasting >= {:.1} s (R15.1), notification \
         within {} s lasting >= {:.1} s (R13.1), interruption threshold {:.1} s (R12.1).\n",
        audio,
        generated_in.as_secs_f64(),
        analysed_in.as_secs_f64(),
        audio / analysed_in.as_secs_f64().max(1e-9),
        policy.explanation_window_ns / 1_000_000_000,
        policy.explanation_min_speech_ns as f64 / 1e9,
        policy.notification_window_ns / 1_000_000_000,
        policy.notification_min_speech_ns as f64 / 1e9,
        policy.interruption_threshold_ns as f64 / 1e9,
    );
    let _ = writeln!(out, "### Interruptions (R12.1): must be exact\n");
    let _ = writeln!(out, "| condition | labelled | found | missed | spurious | max gap error (ms) |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let mut all = Detection::default();
    for (c, t) in by {
        let d = t.interruptions;
        let _ = writeln!(
            out,
            "| {c} | {} | {} | {} | {} | {} |",
            d.labelled, d.found, d.missed, d.spurious, d.max_gap_error_ms
        );
        all.labelled += d.labelled;
        all.found += d.found;
        all.missed += d.missed;
        all.spurious += d.spurious;
        all.max_gap_error_ms = all.max_gap_error_ms.max(d.max_gap_error_ms);
    }
    let _ = writeln!(
        out,
        "| **all** | {} | {} | {} | {} | {} |\n",
        all.labelled, all.found, all.missed, all.spurious, all.max_gap_error_ms
    );
    for (title, pick) in [
        ("interruption_unexplained (R15.1)", (|t: &Tally| t.unexplained) as fn(&Tally) -> Counts),
        ("notification_missing (R13.1)", |t: &Tally| t.notification_missing),
    ] {
        let _ = writeln!(out, "### {title}\n");
        let _ = writeln!(out, "Positive = the finding is raised. Unknown = no audio to check.\n");
        let _ = writeln!(out, "| condition | TP | FP | FN | TN | unknown | precision | recall |");
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        let mut sum = Counts::default();
        let mut down_to_5 = Counts::default();
        for (c, t) in by {
            let k = pick(t);
            let _ = writeln!(out, "{}", k.row(c));
            for (acc, include) in [(&mut sum, true), (&mut down_to_5, !c.starts_with("street  0"))] {
                if include {
                    acc.tp += k.tp;
                    acc.fp += k.fp;
                    acc.fn_ += k.fn_;
                    acc.tn += k.tn;
                    acc.unknown += k.unknown;
                }
            }
        }
        let _ = writeln!(out, "{}", down_to_5.row("**all down to 5 dB**"));
        let _ = writeln!(out, "{}\n", sum.row("**all**"));
    }
    let _ = writeln!(out, "### Disagreements ({})\n", failures.len());
    if failures.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for f in failures {
        let _ = writeln!(out, "- {f}");
    }
    out
}
