//! `recvault eval --scenes`: who spoke. The R13.1 notification and the R15.1 explanation count only
//! when the officer wearing the recorder speaks; this runs the worker's probe and the activity
//! analysis over labelled scenes (`recvault_fixtures::scene`: the wearer alone, over a crowd, the
//! crowd alone, a party at 1 m, a radio) at 20/10/5/0 dB street noise, each device's shift
//! assembled together as the worker loads it (the device's wearer level), and counts, per speaker
//! attribution method, how often each scene is taken for the wearer's notification or
//! explanation. Ground truth: the generator's own record of who spoke when, under the product's
//! rule (the wearer's speech of the minimum length starting inside the window).

use anyhow::Context;
use chrono::TimeDelta;
use recvault_core::analysis::{AnalysisPolicy, Audio, Explanation, RecordingFacts, assemble_with, pauses_of};
use recvault_core::probe::{ProbePolicy, ProbeReport, assess};
use recvault_core::speaker::{Method, SpeakerRules};
use recvault_core::speech::Speaker;
use recvault_fixtures::activity::LabelledActivity;
use recvault_fixtures::scene::{LabelledScene, Scene, scene_corpus};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a check was passed (notification given / interruption explained) against the truth.
/// The finding (not given) is the positive class, as in the rest of `recvault eval`.
#[derive(Debug, Default, Clone, Copy)]
struct Cell {
    /// Cases.
    n: u32,
    /// Counted as given.
    passed: u32,
    /// Finding raised, rightly.
    tp: u32,
    /// Finding raised though the wearer did speak.
    fp: u32,
    /// Counted as given though the wearer did not speak: a false "explained".
    fn_: u32,
    tn: u32,
    /// The check could not run.
    unchecked: u32,
}

impl Cell {
    fn add(&mut self, given: bool, check: &Explanation) {
        self.n += 1;
        if check.is_unchecked() {
            self.unchecked += 1;
            return;
        }
        let raised = check.is_missing();
        self.passed += u32::from(!raised);
        match (raised, given) {
            (true, false) => self.tp += 1,
            (true, true) => self.fp += 1,
            (false, false) => self.fn_ += 1,
            (false, true) => self.tn += 1,
        }
    }

    fn merge(&mut self, o: &Cell) {
        self.n += o.n;
        self.passed += o.passed;
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
        self.tn += o.tn;
        self.unchecked += o.unchecked;
    }

    /// Precision and recall of the finding.
    fn finding_pr(&self) -> (f64, f64) {
        let ratio = |a: u32, b: u32| if b == 0 { f64::NAN } else { f64::from(a) / f64::from(b) };
        (ratio(self.tp, self.tp + self.fp), ratio(self.tp, self.tp + self.fn_))
    }
}

/// Segment attribution against ground truth: (truth wearer?, predicted speaker) counts.
#[derive(Debug, Default, Clone)]
struct Segments {
    counts: BTreeMap<(bool, &'static str), u32>,
}

#[derive(Debug, Default)]
struct Tally {
    /// (check, snr, scene) → cell.
    cells: BTreeMap<(&'static str, i32, Scene), Cell>,
    /// snr → segment confusion.
    segments: BTreeMap<i32, Segments>,
}

pub fn run(
    probe: &ProbePolicy,
    policy: &AnalysisPolicy,
    dir: &Path,
    scale: usize,
    seed: u64,
    cues: Option<&Path>,
) -> anyhow::Result<String> {
    eprintln!("generating the scene corpus (scale {scale}, seed {seed}) in {}", dir.display());
    let started = Instant::now();
    // The generator is deterministic: a corpus already generated in `dir` with these settings is
    // reused (its labels are kept next to the files), so tuning does not regenerate it.
    let labels = dir.join(format!("scenes-scale{scale}-seed{seed}.json"));
    let corpus: Vec<LabelledScene> = match std::fs::read(&labels) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("reading the corpus labels")?,
        Err(_) => {
            let corpus = scene_corpus(dir, scale, seed).context("generating the scene corpus")?;
            std::fs::write(&labels, serde_json::to_vec(&corpus)?).context("writing the corpus labels")?;
            corpus
        }
    };
    let generated_in = started.elapsed();
    eprintln!("{} activities generated in {:.0} s; analysing", corpus.len(), generated_in.as_secs_f64());
    let started = Instant::now();
    let methods = [
        ("relative, with the device's wearer level (shipped)", SpeakerRules::default()),
        (
            "relative, with the device's wearer level weighed like an own reference (3 dB)",
            SpeakerRules { device_reference_margin_db: 3.0, ..SpeakerRules::default() },
        ),
        (
            "relative, each activity on its own (third session)",
            SpeakerRules { device_min_activities: 0, ..SpeakerRules::default() },
        ),
        ("absolute level", SpeakerRules { method: Method::AbsoluteLevel, ..SpeakerRules::default() }),
        ("none (any speech counts, before issue 9)", SpeakerRules { min_snr_db: f32::NEG_INFINITY, ..absolute_any() }),
    ];
    let mut tallies: Vec<Tally> = methods.iter().map(|_| Tally::default()).collect();
    let mut failures: Vec<String> = Vec::new();
    let mut audio_s = 0.0;
    let mut csv = String::from(
        "device,activity,snr_db,file,scene,start_s,end_s,wearer,speaker,level_dbfs,floor_dbfs,decay_db,hf_db\n",
    );
    // A device's shift is analysed together, as the worker loads it: an activity without a
    // reference of its own is weighed against the device's wearer level from the others.
    let mut shifts: BTreeMap<&str, Vec<&LabelledScene>> = BTreeMap::new();
    for scene in &corpus {
        shifts.entry(scene.activity.spec.device_id.as_str()).or_default().push(scene);
    }
    for shift in shifts.values() {
        let mut reports = Vec::new();
        for scene in shift {
            let r = scene
                .activity
                .files
                .iter()
                .map(|f| recvault_media::probe(&f.path, probe).with_context(|| format!("probing {}", f.path.display())))
                .collect::<anyhow::Result<Vec<_>>>()?;
            audio_s += r.iter().map(|r| assess(r, probe).readable_duration_ns as f64 / 1e9).sum::<f64>();
            cue_rows(scene, &r, &mut csv);
            reports.push(r);
        }
        for ((name, rules), tally) in methods.iter().zip(&mut tallies) {
            let fails = evaluate(shift, &reports, probe, policy, rules, tally);
            if name.starts_with("relative") && name.contains("shipped") {
                failures.extend(fails);
            }
        }
    }
    let analysed_in = started.elapsed();
    if let Some(path) = cues {
        std::fs::write(path, &csv).with_context(|| format!("writing {}", path.display()))?;
    }
    let mut out = String::new();
    let _ = writeln!(out, "## Scene evaluation run\n");
    let _ = writeln!(
        out,
        "`recvault eval --scenes --scale {scale} --seed {seed}`: {} activities (two files each), {audio_s:.0} s of audio, \
         generated in {:.0} s, analysed in {:.0} s. Each activity's start is one scene (R13.1) and its resumption \
         another (R15.1); every pair occurs once per level and scale unit. Cells: how often the scene was counted as \
         the notification given / the interruption explained, of how many; only the wearer scenes should be.\n",
        corpus.len(),
        generated_in.as_secs_f64(),
        analysed_in.as_secs_f64()
    );
    for ((name, _), tally) in methods.iter().zip(&tallies) {
        render(&mut out, name, tally);
    }
    let _ = writeln!(out, "### Disagreements of the shipped method ({})\n", failures.len());
    if failures.is_empty() {
        let _ = writeln!(out, "None.");
    }
    for f in &failures {
        let _ = writeln!(out, "- {f}");
    }
    Ok(out)
}

/// Every segment with cues counts as the wearer: what the checks did before issue 9.
fn absolute_any() -> SpeakerRules {
    SpeakerRules { method: Method::AbsoluteLevel, absolute_level_dbfs: f32::NEG_INFINITY, ..SpeakerRules::default() }
}

/// Assembles one device's shift (every file of its activities) and tallies each activity's
/// R13.1 and R15.1 decisions and segment attributions against the truth.
fn evaluate(
    shift: &[&LabelledScene],
    reports: &[Vec<ProbeReport>],
    probe: &ProbePolicy,
    policy: &AnalysisPolicy,
    rules: &SpeakerRules,
    tally: &mut Tally,
) -> Vec<String> {
    // Recording ids: activity index × 2 + file index.
    let id = |a: usize, f: usize| i64::try_from(a * 2 + f).unwrap_or(i64::MAX);
    let mut facts: Vec<RecordingFacts> = Vec::new();
    for (ai, (scene, reports)) in shift.iter().zip(reports).enumerate() {
        let act = &scene.activity;
        for (i, (f, report)) in act.files.iter().zip(reports).enumerate() {
            facts.push(RecordingFacts {
                recording_id: id(ai, i),
                device_id: act.spec.device_id.clone(),
                activity_id: None,
                start: act.spec.started_at + TimeDelta::from_std(f.start).unwrap_or(TimeDelta::MAX),
                duration_ns: assess(report, probe).readable_duration_ns,
                pauses: pauses_of(report, probe),
                audio: Audio::of(report),
                continues_from_device: None,
            });
        }
    }
    let activities = assemble_with(&facts, &[], policy, rules);
    let mut failures = Vec::new();
    for (ai, scene) in shift.iter().enumerate() {
        let act = &scene.activity;
        let ids: Vec<i64> = (0..act.files.len()).map(|f| id(ai, f)).collect();
        let Some(a) = activities.iter().find(|a| a.recording_ids == ids) else {
            failures.push(format!("{}: not assembled into one activity of its own", act.spec.name));
            continue;
        };
        let snr = act.spec.snr_db as i32;
        let notified =
            wearer_within(act, Duration::ZERO, policy.notification_window_ns, policy.notification_min_speech_ns);
        if let Some(n) = &a.notification {
            tally.cells.entry(("R13.1", snr, scene.scenes.start)).or_default().add(notified, n);
            if n.is_missing() == notified {
                failures.push(format!(
                    "{}: R13.1 at a {:?} start: {n} (weighed against {:?})",
                    act.spec.name, scene.scenes.start, a.wearer_reference
                ));
            }
        }
        for (label, r) in act.resumptions.iter().zip(&a.resumptions) {
            let explained =
                wearer_within(act, label.at, policy.explanation_window_ns, policy.explanation_min_speech_ns);
            tally.cells.entry(("R15.1", snr, scene.scenes.resumption)).or_default().add(explained, &r.explanation);
            if r.explanation.is_missing() == explained {
                failures.push(format!(
                    "{}: R15.1 after a {:?} resumption: {} (weighed against {:?})",
                    act.spec.name, scene.scenes.resumption, r.explanation, a.wearer_reference
                ));
            }
        }
        // Segments as the activity attributed them, against who truly spoke most of each.
        let mut owned: Vec<RecordingFacts> = facts.iter().filter(|f| ids.contains(&f.recording_id)).cloned().collect();
        recvault_core::speaker::attribute_against(
            owned.iter_mut().flat_map(|r| r.audio.speech_mut()),
            a.wearer_reference,
            rules,
        );
        let seg = tally.segments.entry(snr).or_default();
        for (i, r) in owned.iter().enumerate() {
            for s in r.audio.speech() {
                let truth = wearer_share(act, i, s.start_ns, s.end_ns);
                let Some(truth) = truth else { continue };
                *seg.counts.entry((truth, speaker_name(s.speaker))).or_default() += 1;
            }
        }
    }
    failures
}

/// One CSV row per segment the probe found: its cues, the probe's attribution and the truth.
fn cue_rows(scene: &LabelledScene, reports: &[ProbeReport], csv: &mut String) {
    let act = &scene.activity;
    for (i, report) in reports.iter().enumerate() {
        let Some(audio) = &report.audio else { continue };
        let what = if i == 0 { scene.scenes.start } else { scene.scenes.resumption };
        for s in &audio.speech {
            let (Some(truth), Some(c)) = (wearer_share(act, i, s.start_ns, s.end_ns), s.cues) else { continue };
            let _ = writeln!(
                csv,
                "{},{},{},{i},{what:?},{:.2},{:.2},{truth},{},{:.1},{:.1},{:.1},{:.1}",
                act.spec.device_id,
                act.spec.name,
                act.spec.snr_db,
                s.start_ns as f64 / 1e9,
                s.end_ns as f64 / 1e9,
                s.speaker.as_str(),
                c.level_dbfs,
                c.floor_dbfs,
                c.decay_db,
                c.hf_db
            );
        }
    }
}

fn speaker_name(s: Speaker) -> &'static str {
    s.as_str()
}

/// Whether the wearer's voiced speech covers any of `[start, end)` of file `file` (`None` when no
/// labelled speech does: a false detection, not an attribution).
fn wearer_share(act: &LabelledActivity, file: usize, start_ns: u64, end_ns: u64) -> Option<bool> {
    let f = &act.files[file];
    let (from, to) = (f.start + Duration::from_nanos(start_ns), f.start + Duration::from_nanos(end_ns));
    let overlapping: Vec<_> = act.speech.iter().filter(|s| s.file == file && s.start < to && s.end > from).collect();
    if overlapping.is_empty() {
        return None;
    }
    Some(overlapping.iter().any(|s| s.wearer))
}

/// The product's rule on the ground truth: the wearer's speech of at least `min_ns` starting
/// within `window_ns` after `from` (and before the next stop).
fn wearer_within(act: &LabelledActivity, from: Duration, window_ns: u64, min_ns: u64) -> bool {
    let next_stop = act.resumptions.iter().map(|r| r.at - r.gap).filter(|&s| s > from).min();
    let until = from + Duration::from_nanos(window_ns);
    let until = next_stop.map_or(until, |s| s.min(until));
    act.speech
        .iter()
        .any(|s| s.wearer && s.start >= from && s.start <= until && s.end - s.start >= Duration::from_nanos(min_ns))
}

fn render(out: &mut String, name: &str, t: &Tally) {
    let _ = writeln!(out, "### Method: {name}\n");
    let snrs = [20, 10, 5, 0];
    for check in ["R15.1", "R13.1"] {
        let what = if check == "R15.1" { "explained" } else { "notified" };
        let _ = writeln!(out, "#### {check}: counted as {what}\n");
        let _ = writeln!(out, "| scene | truth | 20 dB | 10 dB | 5 dB | 0 dB |");
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for scene in Scene::ALL {
            let mut row = format!("| {} | {} |", scene.name(), if scene.wearer_speaks() { what } else { "not" });
            for snr in snrs {
                let c = t.cells.get(&(check, snr, scene)).copied().unwrap_or_default();
                let unchecked = if c.unchecked > 0 { format!(" ({} unchecked)", c.unchecked) } else { String::new() };
                let _ = write!(row, " {}/{}{unchecked} |", c.passed, c.n);
            }
            let _ = writeln!(out, "{row}");
        }
        let mut row = "| **finding P / R** | |".to_string();
        for snr in snrs {
            let mut all = Cell::default();
            for scene in Scene::ALL {
                all.merge(&t.cells.get(&(check, snr, scene)).copied().unwrap_or_default());
            }
            let (p, r) = all.finding_pr();
            let _ = write!(row, " {p:.3} / {r:.3} |");
        }
        let _ = writeln!(out, "{row}\n");
    }
    let _ = writeln!(out, "#### Segments: truth (wearer's voice in it or not) against the attribution\n");
    let _ = writeln!(out, "| level | wearer → wearer / other / unknown | others only → wearer / other / unknown |");
    let _ = writeln!(out, "|---|---|---|");
    for snr in snrs {
        let s = t.segments.get(&snr).cloned().unwrap_or_default();
        let c = |truth: bool, p: &str| s.counts.get(&(truth, p)).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "| {snr} dB | {} / {} / {} | {} / {} / {} |",
            c(true, "wearer"),
            c(true, "other"),
            c(true, "unknown"),
            c(false, "wearer"),
            c(false, "other"),
            c(false, "unknown")
        );
    }
    let _ = writeln!(out);
}
