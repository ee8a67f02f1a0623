//! Compares voice-activity detectors on the labelled evaluation corpus and prints the tables of
//! `ACCURACY.md` (the detector comparison): `cargo run --release -p recvault-media --example vad_eval -- [--dir D] [--scale N]
//! [--seed S] [--candidates all|shipped]`.
//!
//! The corpus (recvault-fixtures' `evaluation_corpus`) is generated into `D` once and reused (its
//! labels are kept in `D/corpus.json`). Every file is decoded once with the probe's own decoding
//! branch ([`recvault_media::decode_audio`]); each candidate then runs through the probe's own
//! placement and segment logic ([`recvault_media::voice::Analyzer`]). The shipped detector is also
//! run through [`recvault_media::probe`] itself, to show the offline numbers are the pipeline's.
//!
//! `VAD_ONLY=<name part>` runs only matching candidates; `VAD_DEBUG=1` lists every detected
//! segment on stderr; `VAD_SWEEP="speech_db,formant_db,window_s,share_db,threshold,merge_ms,min_ms;..."`
//! adds earshot + gate variants.
//!
//! Checks scored as the analysis applies them (defaults of `AnalysisPolicy`): R15.1 speech of at
//! least 2 s starting within 30 s after a resumption; R13.1 speech of at least 1 s starting within
//! 60 s of the activity's start. A finding is the positive class: precision is the share of
//! findings raised that are right, recall the share of real breaches found.

use recvault_core::probe::ProbePolicy;
use recvault_core::speech::{SegmentRules, SpeechSegment};
use recvault_fixtures::activity::{
    EXPLANATION_MIN, EXPLANATION_WINDOW, LabelledActivity, NOTIFICATION_MIN, NOTIFICATION_WINDOW, evaluation_corpus,
};
use recvault_fixtures::spec::Background;
use recvault_media::voice::{Analyzer, Detector, Earshot, GateSettings, Gated, RATE, VoiceDetector};
use recvault_media::{Chunk, decode_audio};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// WebRTC's GMM detector (libfvad, C, bundled by the crate), 30 ms frames, decisions only.
struct WebRtc {
    vad: webrtc_vad::Vad,
    mode: i32,
}

impl WebRtc {
    fn new(mode: i32) -> Self {
        let m = match mode {
            0 => webrtc_vad::VadMode::Quality,
            1 => webrtc_vad::VadMode::LowBitrate,
            2 => webrtc_vad::VadMode::Aggressive,
            _ => webrtc_vad::VadMode::VeryAggressive,
        };
        Self { vad: webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate16kHz, m), mode }
    }
}

impl VoiceDetector for WebRtc {
    fn frame_len(&self) -> usize {
        480
    }
    fn score(&mut self, frame: &[i16]) -> f32 {
        if self.vad.is_voice_segment(frame).unwrap_or(false) { 1.0 } else { 0.0 }
    }
    fn describe(&self) -> String {
        format!("webrtc-vad 0.4 mode={}", self.mode)
    }
}

/// RNNoise's voice probability (nnnoiseless), 10 ms frames at 48 kHz: 16 kHz upsampled ×3.
struct RnNoise {
    state: Box<nnnoiseless::DenoiseState<'static>>,
    last: f32,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl RnNoise {
    fn new() -> Self {
        Self { state: nnnoiseless::DenoiseState::new(), last: 0.0, input: vec![0.0; 480], output: vec![0.0; 480] }
    }
}

impl VoiceDetector for RnNoise {
    fn frame_len(&self) -> usize {
        160
    }
    fn score(&mut self, frame: &[i16]) -> f32 {
        for (i, &s) in frame.iter().enumerate() {
            let s = f32::from(s);
            for k in 0..3 {
                let t = (k + 1) as f32 / 3.0;
                self.input[3 * i + k] = self.last + (s - self.last) * t;
            }
            self.last = s;
        }
        self.state.process_frame(&mut self.output, &self.input)
    }
    fn describe(&self) -> String {
        "nnnoiseless 0.5 (rnnoise vad probability)".into()
    }
}

/// Scores every frame 1: with a gate in front, the gate alone.
struct Always;

impl VoiceDetector for Always {
    fn frame_len(&self) -> usize {
        256
    }
    fn score(&mut self, _: &[i16]) -> f32 {
        1.0
    }
    fn describe(&self) -> String {
        "energy".into()
    }
}

type Make = Box<dyn Fn() -> Box<dyn VoiceDetector>>;

struct Candidate {
    name: String,
    make: Make,
    rules: SegmentRules,
}

fn candidates(which: &str) -> Vec<Candidate> {
    let rules = SegmentRules::default();
    let mut c = vec![Candidate {
        name: "shipped".into(),
        make: Box::new(|| Box::new(Detector::default())),
        rules: Detector::rules(),
    }];
    let gate = GateSettings::default();
    if which == "all" || which == "raw" {
        for mode in [0, 3] {
            c.push(Candidate {
                name: format!("webrtc-vad mode {mode}"),
                make: Box::new(move || Box::new(WebRtc::new(mode))),
                rules,
            });
        }
        c.push(Candidate { name: "earshot".into(), make: Box::new(|| Box::new(Earshot::default())), rules });
        c.push(Candidate { name: "rnnoise".into(), make: Box::new(|| Box::new(RnNoise::new())), rules });
    }
    if which == "all" || which == "gated" {
        c.push(Candidate {
            name: "webrtc-vad mode 3 + gate".into(),
            make: Box::new(move || Box::new(Gated::new(WebRtc::new(3), gate))),
            rules,
        });
        c.push(Candidate {
            name: "earshot + gate".into(),
            make: Box::new(move || Box::new(Gated::new(Earshot::default(), gate))),
            rules,
        });
        c.push(Candidate {
            name: "rnnoise + gate".into(),
            make: Box::new(move || Box::new(Gated::new(RnNoise::new(), gate))),
            rules,
        });
        c.push(Candidate {
            name: "gate alone".into(),
            make: Box::new(move || Box::new(Gated::new(Always, gate))),
            rules,
        });
    }
    if let Ok(sweep) = std::env::var("VAD_SWEEP") {
        // "speech_db,formant_db,window_s,share_db,threshold,merge_ms,min_ms;..."
        for p in sweep.split(';') {
            let v: Vec<f32> = p.split(',').filter_map(|x| x.parse().ok()).collect();
            let g = GateSettings {
                speech_band_db: v[0],
                formant_band_db: v[1],
                floor_window_s: v[2],
                formant_share_db: v[3],
            };
            let r = SegmentRules {
                threshold: v[4],
                merge_gap_ns: v[5] as u64 * 1_000_000,
                min_segment_ns: v[6] as u64 * 1_000_000,
                ..rules
            };
            c.push(Candidate {
                name: format!("earshot + gate {p}"),
                make: Box::new(move || Box::new(Gated::new(Earshot::default(), g))),
                rules: r,
            });
        }
    }
    c
}

fn group(a: &LabelledActivity) -> String {
    match a.spec.background {
        Background::Street => format!("street {} dB", a.spec.snr_db as i32),
        other => format!("{other:?} trap").to_lowercase(),
    }
}

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u32,
    fp: u32,
    fn_: u32,
    tn: u32,
}

impl Counts {
    fn add(&mut self, truth: bool, predicted: bool) {
        match (truth, predicted) {
            (true, true) => self.tp += 1,
            (false, true) => self.fp += 1,
            (true, false) => self.fn_ += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn precision(&self) -> Option<f64> {
        let d = self.tp + self.fp;
        (d > 0).then(|| f64::from(self.tp) / f64::from(d))
    }
    fn recall(&self) -> Option<f64> {
        let d = self.tp + self.fn_;
        (d > 0).then(|| f64::from(self.tp) / f64::from(d))
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

#[derive(Default)]
struct Score {
    /// Ground-truth utterances, and those overlapped by a detected segment.
    utterances: u32,
    found: u32,
    /// Detected segments, and those overlapping an utterance.
    detected: u32,
    correct: u32,
    /// |detected start − true start| of found utterances, ms.
    onset_ms: Vec<u64>,
    /// Detected segments of at least 2 s that overlap no utterance (what could fake an explanation).
    long_false: u32,
    unexplained: Counts,
    notification_missing: Counts,
    audio_s: f64,
    detector_s: f64,
}

/// Speech on the activity timeline.
fn place(a: &LabelledActivity, per_file: &[Vec<SpeechSegment>]) -> Vec<(Duration, Duration)> {
    let mut out: Vec<(Duration, Duration)> = a
        .files
        .iter()
        .zip(per_file)
        .flat_map(|(f, segs)| {
            segs.iter().map(|s| (f.start + Duration::from_nanos(s.start_ns), f.start + Duration::from_nanos(s.end_ns)))
        })
        .collect();
    out.sort();
    out
}

fn score(a: &LabelledActivity, per_file: &[Vec<SpeechSegment>], s: &mut Score) {
    let detected = place(a, per_file);
    if std::env::var_os("VAD_DEBUG").is_some() {
        for (f, segs) in a.files.iter().zip(per_file) {
            for d in segs {
                let span = (f.start + Duration::from_nanos(d.start_ns), f.start + Duration::from_nanos(d.end_ns));
                let truth = a.speech.iter().find(|u| span.0 < u.end && u.start < span.1);
                eprintln!(
                    "{} bg={:.0}dBFS {} {:.2}-{:.2} ({:.2} s) conf={:.2} {}",
                    a.spec.name,
                    a.spec.background_dbfs,
                    f.path.file_name().unwrap_or_default().to_string_lossy(),
                    d.start_ns as f64 / 1e9,
                    d.end_ns as f64 / 1e9,
                    d.duration_ns() as f64 / 1e9,
                    d.confidence,
                    truth.map_or("FALSE".to_string(), |u| format!("truth {:.2} s", (u.end - u.start).as_secs_f64()))
                );
            }
        }
    }
    let overlaps = |x: (Duration, Duration), y: (Duration, Duration)| x.0 < y.1 && y.0 < x.1;
    for u in &a.speech {
        s.utterances += 1;
        if let Some(d) = detected.iter().find(|d| overlaps(**d, (u.start, u.end))) {
            s.found += 1;
            s.onset_ms.push(d.0.abs_diff(u.start).as_millis() as u64);
        }
    }
    for d in &detected {
        s.detected += 1;
        if a.speech.iter().any(|u| overlaps(*d, (u.start, u.end))) {
            s.correct += 1;
        } else if d.1 - d.0 >= EXPLANATION_MIN {
            s.long_false += 1;
        }
    }
    let speech_in = |from: Duration, window: Duration, min: Duration| {
        detected.iter().any(|d| d.0 >= from && d.0 - from <= window && d.1 - d.0 >= min)
    };
    for r in &a.resumptions {
        let explained = speech_in(r.at, EXPLANATION_WINDOW, EXPLANATION_MIN);
        s.unexplained.add(!r.explained, !explained);
    }
    let notified = speech_in(Duration::ZERO, NOTIFICATION_WINDOW, NOTIFICATION_MIN);
    s.notification_missing.add(!a.notified, !notified);
}

fn percentile(v: &mut [u64], p: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[((v.len() - 1) as f64 * p).round() as usize])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut dir = PathBuf::from("/tmp/recvault-vad-corpus");
    let (mut scale, mut seed, mut which) = (1usize, 2024u64, "all".to_string());
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => dir = value()?.into(),
            "--scale" => scale = value()?.parse()?,
            "--seed" => seed = value()?.parse()?,
            "--candidates" => which = value()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let labels = dir.join(format!("corpus-{scale}-{seed}.json"));
    let corpus: Vec<LabelledActivity> = if labels.exists() {
        serde_json::from_slice(&std::fs::read(&labels)?)?
    } else {
        let t = Instant::now();
        let corpus = evaluation_corpus(&dir, scale, seed)?;
        let files: usize = corpus.iter().map(|a| a.files.len()).sum();
        let audio: f64 = corpus.iter().flat_map(|a| &a.files).map(|f| f.truth.media_duration.as_secs_f64()).sum();
        let mb: u64 = corpus.iter().flat_map(|a| &a.files).map(|f| f.truth.size_bytes).sum();
        eprintln!(
            "generated {} activities, {files} files, {audio:.0} s of media, {:.1} MB in {:.1} s",
            corpus.len(),
            mb as f64 / 1e6,
            t.elapsed().as_secs_f64()
        );
        std::fs::write(&labels, serde_json::to_vec_pretty(&corpus)?)?;
        corpus
    };

    recvault_media::init()?;
    let t = Instant::now();
    let decoded: Vec<Vec<Vec<Chunk>>> = corpus
        .iter()
        .map(|a| a.files.iter().map(|f| decode_audio(&f.path)).collect::<Result<Vec<_>, _>>())
        .collect::<Result<_, _>>()?;
    let audio_s: f64 = decoded.iter().flatten().flatten().map(|(_, s)| s.len() as f64).sum::<f64>() / f64::from(RATE);
    eprintln!("decoded {audio_s:.0} s of audio in {:.1} s", t.elapsed().as_secs_f64());

    for c in candidates(&which).into_iter().filter(|c| std::env::var("VAD_ONLY").map_or(true, |o| c.name.contains(&o)))
    {
        let mut scores: BTreeMap<String, Score> = BTreeMap::new();
        let mut describe = String::new();
        for (a, files) in corpus.iter().zip(&decoded) {
            let s = scores.entry(group(a)).or_default();
            let mut per_file = Vec::new();
            for chunks in files {
                let t = Instant::now();
                let mut analyzer = Analyzer::new((c.make)(), c.rules);
                for (pts, samples) in chunks {
                    analyzer.push(*pts, samples);
                }
                let r = analyzer.finish();
                s.detector_s += t.elapsed().as_secs_f64();
                s.audio_s += r.decoded_ns as f64 / 1e9;
                describe = r.detector.clone();
                per_file.push(r.speech);
            }
            score(a, &per_file, s);
        }
        print_table(&c.name, &describe, &scores);
    }

    // The shipped detector through the real probe: must match its offline row.
    let t = Instant::now();
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let policy = ProbePolicy::default();
    let mut bytes = 0u64;
    for a in &corpus {
        let s = scores.entry(group(a)).or_default();
        let mut per_file = Vec::new();
        for f in &a.files {
            let r = recvault_media::probe(&f.path, &policy)?;
            bytes += r.file_size;
            let audio = r.audio.ok_or("no audio analysis")?;
            s.audio_s += audio.decoded_ns as f64 / 1e9;
            per_file.push(audio.speech);
        }
        score(a, &per_file, s);
    }
    let secs = t.elapsed().as_secs_f64();
    print_table("shipped, through probe()", "", &scores);
    println!(
        "probe(): {:.0} s of audio, {:.1} MB in {secs:.1} s ({:.0}x realtime incl. demux+decode)\n",
        audio_s,
        bytes as f64 / 1e6,
        audio_s / secs
    );
    Ok(())
}

fn print_table(name: &str, describe: &str, scores: &BTreeMap<String, Score>) {
    println!("### {name}\n\n`{describe}`\n");
    println!(
        "| group | utterances found | segment precision | onset err median / p90 ms | false ≥2 s | unexplained P / R | notification_missing P / R | x-realtime |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut total = Score::default();
    for (g, s) in scores {
        let mut onset = s.onset_ms.clone();
        let (m, p) = (percentile(&mut onset, 0.5), percentile(&mut onset, 0.9));
        println!(
            "| {g} | {}/{} | {} | {} / {} | {} | {} / {} ({}+{}) | {} / {} ({}+{}) | {:.0} |",
            s.found,
            s.utterances,
            fmt((s.detected > 0).then(|| f64::from(s.correct) / f64::from(s.detected))),
            m.map_or("–".into(), |v| v.to_string()),
            p.map_or("–".into(), |v| v.to_string()),
            s.long_false,
            fmt(s.unexplained.precision()),
            fmt(s.unexplained.recall()),
            s.unexplained.tp + s.unexplained.fn_,
            s.unexplained.fp + s.unexplained.tn,
            fmt(s.notification_missing.precision()),
            fmt(s.notification_missing.recall()),
            s.notification_missing.tp + s.notification_missing.fn_,
            s.notification_missing.fp + s.notification_missing.tn,
            if s.detector_s > 0.0 { s.audio_s / s.detector_s } else { 0.0 },
        );
        total.audio_s += s.audio_s;
        total.detector_s += s.detector_s;
    }
    if total.detector_s > 0.0 {
        println!("\nspeed: {:.0}x realtime (one core)", total.audio_s / total.detector_s);
    }
    println!();
}
