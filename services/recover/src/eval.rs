//! Recovery measured against ground truth (feature `eval`; `recvault eval recovery`, the tests and
//! ACCURACY.md use it).
//!
//! Each case generates, from one spec, the finished recording and the same recording killed
//! mid-write (the generator encodes before it muxes, so both carry the same samples, and the killed
//! file's media data is a prefix of the finished one's: checked, not assumed), plus a reference
//! recording of the same device (same settings, other content). The killed file is recovered with
//! the reference and compared with the finished one: every sample whose bytes reached the killed
//! file must be recovered, in its track, with its size and bytes, in order; one sample placed
//! wrongly fails the case. Then GStreamer demuxes the recovered file (packets per track) and the
//! product's speech detector runs on both files: the speech found in the recovered audio is
//! compared with the speech found in the finished file over the recovered span.

use crate::mp4::{Movie, Sample};
use crate::recover;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recvault_core::probe::{ProbePolicy, TrackKind};
use recvault_fixtures::spec::{
    AacEncoder, AudioSpec, Background, Damage, NOTIFICATION_PINYIN, RESUMPTION_PINYIN, RecordingSpec, SpeechSpec,
    VideoContent, VideoSpec,
};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

/// One generated case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Short description.
    pub name: String,
    /// The recording (its `damage` is replaced: finished for the truth, killed for the input).
    pub spec: RecordingSpec,
    /// When the recorder is killed (file time).
    pub kill_at: Duration,
    /// Bytes then cut off the end of the killed file (0: none): power lost in the middle of a
    /// write, so the last unit is incomplete.
    pub cut_bytes: u64,
    /// The same device's finished reference recording.
    pub reference: RecordingSpec,
}

/// What one case measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The case's name.
    pub name: String,
    /// Whole samples in the killed file's bytes (video, audio): what a perfect recovery places.
    pub expected: (u64, u64),
    /// Samples recovered (video, audio).
    pub recovered: (u64, u64),
    /// Recovered samples that differ from the truth at the same place (track, size or bytes).
    pub misplaced: u64,
    /// Media data bytes placed / all media data bytes in the killed file.
    pub placed_fraction: f64,
    /// Bytes left unplaced, and why.
    pub unplaced: Option<(u64, String)>,
    /// Recovered media duration, s.
    pub recovered_seconds: f64,
    /// Media the recorder was given before the kill, s (what the file could at best hold).
    pub fed_seconds: f64,
    /// Packets GStreamer's demuxer reads from the recovered file (video, audio), and whether it
    /// reached the end without an error.
    pub demuxed: (u64, u64, bool),
    /// Speech time found in the finished file within the recovered span, s.
    pub speech_truth_seconds: f64,
    /// Intersection over union of the speech found in the recovered file and in the finished file,
    /// over the recovered span (1.0 when neither has speech there).
    pub speech_agreement: f64,
}

impl Outcome {
    /// Every whole sample recovered, none misplaced, the demuxer reads them all.
    pub fn exact(&self) -> bool {
        self.misplaced == 0
            && self.recovered == self.expected
            && (self.demuxed.0, self.demuxed.1) == self.recovered
            && self.demuxed.2
    }
}

/// A corpus of `n` cases drawn from `seed`: H.264 at several sizes and rates, AAC at several
/// sample rates, bitrates and both encoders, backgrounds, speech, kill times.
pub fn corpus(n: usize, seed: u64) -> Vec<Case> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let (width, height) = [(320, 240), (320, 240), (640, 480)][rng.random_range(0..3)];
            let fps = [15, 25, 30][rng.random_range(0..3)];
            let video = VideoSpec {
                width,
                height,
                fps,
                bitrate_kbps: rng.random_range(200..1500),
                keyframe_interval: [fps, 2 * fps, 10][rng.random_range(0..3)],
                content: if rng.random_bool(0.2) { VideoContent::Noise } else { VideoContent::Pattern },
            };
            let encoder = if rng.random_bool(0.3) { AacEncoder::VoAac } else { AacEncoder::AvEnc };
            let background = match rng.random_range(0..4) {
                0 => Background::Pink,
                1 => Background::White,
                2 => Background::Street,
                // libvo-aacenc crashed on engine noise (see AudioSpec::default)
                _ if encoder == AacEncoder::AvEnc => Background::Engine,
                _ => Background::Music,
            };
            let audio = AudioSpec {
                sample_rate: [16_000, 16_000, 8_000, 44_100, 48_000][rng.random_range(0..5)],
                bitrate_kbps: [24, 32, 64][rng.random_range(0..3)],
                encoder,
                background,
                background_dbfs: rng.random_range(-50.0..-30.0),
            };
            let duration = Duration::from_millis(rng.random_range(6_000..14_000));
            let speech_at = Duration::from_millis(rng.random_range(200..2_000));
            // the notification lasts about 7.5 s, the explanation about 3 s
            let long_enough = duration > speech_at + Duration::from_secs(8);
            let text = if long_enough && rng.random_bool(0.5) { NOTIFICATION_PINYIN } else { RESUMPTION_PINYIN };
            let kill_at = Duration::from_millis(rng.random_range(1_000..duration.as_millis() as u64));
            let spec = RecordingSpec {
                duration,
                video: Some(video.clone()),
                audio: Some(audio.clone()),
                speech: vec![SpeechSpec::new(speech_at, text)],
                seed: 1000 + i as u64,
                ..RecordingSpec::default()
            };
            let reference = RecordingSpec {
                duration: Duration::from_secs(3),
                video: Some(video),
                audio: Some(AudioSpec { background: Background::Pink, ..audio.clone() }),
                seed: 5000 + i as u64,
                ..RecordingSpec::default()
            };
            let cut_bytes = if rng.random_bool(0.7) { rng.random_range(1..20_000) } else { 0 };
            let name = format!(
                "{i:02} {width}x{height}@{fps} {}k/{} Hz {:?} {:?}, killed at {:.1} s, {cut_bytes} bytes cut",
                spec.video.as_ref().map_or(0, |v| v.bitrate_kbps),
                audio.sample_rate,
                audio.encoder,
                audio.background,
                kill_at.as_secs_f64()
            );
            Case { name, spec, kill_at, cut_bytes, reference }
        })
        .collect()
}

/// Runs one case in `dir` (files are left there).
pub fn run(case: &Case, dir: &Path) -> Result<Outcome, String> {
    let gen_ = |spec: &RecordingSpec, name: &str| {
        let path = dir.join(name);
        recvault_fixtures::generate(spec, &path).map(|t| (path, t)).map_err(|e| format!("generating {name}: {e}"))
    };
    let (finished, _) = gen_(&RecordingSpec { damage: Damage::None, ..case.spec.clone() }, "finished.mp4")?;
    let (killed, truth) = gen_(
        &RecordingSpec { damage: Damage::KilledMidWrite { after: case.kill_at }, ..case.spec.clone() },
        "killed.mp4",
    )?;
    let (reference, _) = gen_(&case.reference, "reference.mp4")?;
    let out = dir.join("recovered.mp4");

    let mut killed_len = std::fs::metadata(&killed).map_err(|e| e.to_string())?.len();
    if case.cut_bytes > 0 {
        killed_len = killed_len.saturating_sub(case.cut_bytes).max(killed_len / 2);
        File::options().write(true).open(&killed).and_then(|f| f.set_len(killed_len)).map_err(|e| e.to_string())?;
    }
    let finished_movie = Movie::read(&finished).map_err(|e| e.to_string())?;
    let media_start = {
        let f = File::open(&killed).map_err(|e| e.to_string())?;
        let top = crate::mp4::top_level(&f, killed_len).map_err(|e| e.to_string())?;
        top.iter().find(|b| &b.fourcc == b"mdat").map(|b| b.body()).ok_or("the killed file has no mdat")?
    };
    if !same_bytes(&killed, &finished, media_start, killed_len - media_start)? {
        return Err("the killed file's media data is not a prefix of the finished file's: no ground truth".into());
    }
    // the truth: the finished file's samples that lie wholly in the killed file's bytes
    let truth_of = |handler: &[u8; 4]| -> Vec<Sample> {
        finished_movie
            .tracks
            .iter()
            .find(|t| &t.handler == handler)
            .map(|t| t.samples.iter().copied().filter(|s| s.offset + s.size <= killed_len).collect())
            .unwrap_or_default()
    };
    let (video_truth, audio_truth) = (truth_of(b"vide"), truth_of(b"soun"));

    let recovery = recover(&killed, &reference, &out).map_err(|e| e.to_string())?;
    let recovered_movie = Movie::read(&out).map_err(|e| e.to_string())?;
    let got_of = |handler: &[u8; 4]| -> Vec<Sample> {
        recovered_movie.tracks.iter().find(|t| &t.handler == handler).map(|t| t.samples.clone()).unwrap_or_default()
    };
    let (video_got, audio_got) = (got_of(b"vide"), got_of(b"soun"));
    let misplaced =
        mismatches(&finished, &video_truth, &out, &video_got)? + mismatches(&finished, &audio_truth, &out, &audio_got)?;

    // what GStreamer reads, and the speech the product finds, in the recovered file
    let policy = ProbePolicy::default();
    let rec = recvault_media::probe(&out, &policy).map_err(|e| e.to_string())?;
    let fin = recvault_media::probe(&finished, &policy).map_err(|e| e.to_string())?;
    let packets = |kind: TrackKind| rec.tracks.iter().filter(|t| t.kind == kind).map(|t| t.packets).sum::<u64>();
    let demuxed =
        (packets(TrackKind::Video), packets(TrackKind::Audio), rec.demux.reached_end && rec.demux.error.is_none());
    let audio_seconds = recovery.tracks.iter().find(|t| t.kind == "audio").map_or(0.0, |t| t.duration_seconds);
    // the detector needs some audio after a segment to end it: compare up to 0.5 s before the end
    let span = ((audio_seconds - 0.5).max(0.0) * 1e9) as u64;
    let segments = |r: &recvault_core::probe::ProbeReport| -> Vec<(u64, u64)> {
        r.audio
            .as_ref()
            .map(|a| a.speech.iter().filter(|s| s.start_ns < span).map(|s| (s.start_ns, s.end_ns.min(span))).collect())
            .unwrap_or_default()
    };
    let (truth_speech, got_speech) = (segments(&fin), segments(&rec));
    let inter = intersection(&truth_speech, &got_speech);
    let union = total(&truth_speech) + total(&got_speech) - inter;

    Ok(Outcome {
        name: case.name.clone(),
        expected: (video_truth.len() as u64, audio_truth.len() as u64),
        recovered: (video_got.len() as u64, audio_got.len() as u64),
        misplaced,
        placed_fraction: recovery.placed_fraction,
        unplaced: recovery.unplaced.map(|u| (u.bytes, u.reason)),
        recovered_seconds: recovery.duration_seconds,
        fed_seconds: truth.media_duration.as_secs_f64(),
        demuxed,
        speech_truth_seconds: total(&truth_speech) as f64 / 1e9,
        speech_agreement: if union == 0 { 1.0 } else { inter as f64 / union as f64 },
    })
}

/// Samples of `got` (in `b`) that differ from `truth` (in `a`) at the same index, plus any extra
/// ones; missing ones are counted by the caller (recovered < expected).
fn mismatches(a: &Path, truth: &[Sample], b: &Path, got: &[Sample]) -> Result<u64, String> {
    let (fa, fb) = (File::open(a).map_err(|e| e.to_string())?, File::open(b).map_err(|e| e.to_string())?);
    let mut bad = got.len().saturating_sub(truth.len()) as u64;
    for (t, g) in truth.iter().zip(got) {
        if t.size != g.size || read(&fa, t)? != read(&fb, g)? {
            bad += 1;
        }
    }
    Ok(bad)
}

fn read(f: &File, s: &Sample) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; s.size as usize];
    f.read_exact_at(&mut buf, s.offset).map_err(|e| e.to_string())?;
    Ok(buf)
}

fn same_bytes(a: &Path, b: &Path, at: u64, len: u64) -> Result<bool, String> {
    let (fa, fb) = (File::open(a).map_err(|e| e.to_string())?, File::open(b).map_err(|e| e.to_string())?);
    if fb.metadata().map_err(|e| e.to_string())?.len() < at + len {
        return Ok(false);
    }
    let s = Sample { offset: at, size: len };
    Ok(read(&fa, &s)? == read(&fb, &s)?)
}

fn total(s: &[(u64, u64)]) -> u64 {
    s.iter().map(|(a, b)| b.saturating_sub(*a)).sum()
}

fn intersection(a: &[(u64, u64)], b: &[(u64, u64)]) -> u64 {
    a.iter().flat_map(|x| b.iter().map(move |y| x.1.min(y.1).saturating_sub(x.0.max(y.0)))).sum()
}
