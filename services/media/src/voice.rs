//! Speech in decoded audio: PCM placed by buffer timestamps → fixed frames → a voice-activity
//! detector's score per frame → [`recvault_core::speech::Segmenter`] → speech segments, plus the
//! track's loudness.
//!
//! Placement: the AAC decoder does not fill timestamp gaps with samples, so samples are never
//! counted from the start of the track. Each run of buffers whose timestamps follow on from the
//! previous one (within [`JITTER_NS`]) is one continuous stretch; a buffer that starts elsewhere
//! starts a new stretch at its own timestamp, drops the partial frame before it, and the segmenter
//! sees the jump and closes any open segment. Frames inside a stretch are timed from the stretch's
//! first timestamp plus whole samples, so rounding never accumulates.
//!
//! The shipped [`Detector`] is earshot's network behind a [`BandGate`] (why: `ACCURACY.md` at the repository root); any
//! [`VoiceDetector`] can stand in its place through [`crate::probe_with`], which is how the
//! candidates were compared.

use crate::cues::CueMeter;
use recvault_core::speaker::{SpeakerRules, attribute};
use recvault_core::speech::{AudioAnalysis, Frame, SegmentRules, Segmenter};

/// The analysis rate: what the decode branch resamples to and what every detector here expects.
pub const RATE: u32 = 16_000;
/// A buffer starting within this of where the previous one ended continues it.
pub const JITTER_NS: u64 = 2_000_000;
/// Levels are clamped here: silence has no finite dBFS, and JSON has no infinity.
pub const DBFS_FLOOR: f32 = -120.0;
/// A track whose loudest sample is below this is digital silence (about 3 LSB of 16-bit audio):
/// the microphone recorded nothing, which no real room sounds like.
pub const SILENCE_PEAK_DBFS: f32 = -80.0;

/// A frame-level voice-activity detector on 16 kHz mono 16-bit PCM. Implementations keep their
/// own state across frames (noise estimates, context); one instance analyses one track.
pub trait VoiceDetector {
    /// Samples per frame.
    fn frame_len(&self) -> usize;
    /// 0..1, how speech-like the frame is (0/1 for a detector that only decides).
    fn score(&mut self, frame: &[i16]) -> f32;
    /// The next frame does not continue the previous one (the recording paused): forget what the
    /// audio before sounded like. The default keeps all state.
    fn reset(&mut self) {}
    /// Name, version and settings, for the report.
    fn describe(&self) -> String;
}

/// ns from the start of a stretch to sample `n` of it.
fn sample_ns(n: u64) -> u64 {
    (u128::from(n) * 1_000_000_000 / u128::from(RATE)) as u64
}

fn dbfs(amplitude: f64) -> f32 {
    if amplitude <= 0.0 { DBFS_FLOOR } else { ((20.0 * (amplitude / 32768.0).log10()) as f32).max(DBFS_FLOOR) }
}

/// Streams decoded PCM into an [`AudioAnalysis`].
#[derive(Debug)]
pub struct Analyzer<D> {
    detector: D,
    segmenter: Segmenter,
    /// Timestamp of the current stretch's first sample, and samples since.
    stretch: Option<(u64, u64)>,
    /// Samples of the frame being filled.
    pending: Vec<i16>,
    /// Exact: a 16-bit sample squared is at most 2^30, so 2^98 samples fit.
    sum_squares: u128,
    samples: u64,
    peak: u16,
    /// The cues of who spoke each segment (R13.1, R15.1).
    cues: CueMeter,
}

impl<D: VoiceDetector> Analyzer<D> {
    /// `rules.frame_ns` is replaced by the detector's frame length.
    pub fn new(detector: D, rules: SegmentRules) -> Self {
        let frame_len = detector.frame_len();
        let rules = SegmentRules { frame_ns: sample_ns(frame_len as u64), ..rules };
        Self {
            detector,
            segmenter: Segmenter::new(rules),
            stretch: None,
            pending: Vec::with_capacity(frame_len),
            sum_squares: 0,
            samples: 0,
            peak: 0,
            cues: CueMeter::default(),
        }
    }

    /// Adds one decoded buffer whose first sample is at `pts_ns` (file timeline).
    pub fn push(&mut self, pts_ns: u64, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        let continues = self.stretch.is_some_and(|(start, n)| (start + sample_ns(n)).abs_diff(pts_ns) <= JITTER_NS);
        if !continues {
            if self.stretch.is_some() {
                self.detector.reset();
                self.cues.reset();
            }
            self.stretch = Some((pts_ns, 0));
            self.pending.clear();
        }
        // Level and peak over the whole buffer first, in integers: exact, and a loop the compiler
        // vectorizes (per sample, with the framing below, it was a fifth of the thread, issue 8).
        let (squares, peak) = samples.iter().fold((0u64, 0u16), |(q, p), &s| {
            (q + u64::from((i32::from(s) * i32::from(s)).unsigned_abs()), p.max(s.unsigned_abs()))
        });
        self.sum_squares += u128::from(squares);
        self.peak = self.peak.max(peak);
        let frame_len = self.detector.frame_len();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (frame_len - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if let Some((_, n)) = &mut self.stretch {
                *n += take as u64;
            }
            if self.pending.len() == frame_len {
                let (start, n) = self.stretch.unwrap_or((pts_ns, 0));
                let frame_start = start + sample_ns(n - frame_len as u64);
                let score = self.detector.score(&self.pending);
                self.segmenter.push(Frame { start_ns: frame_start, score });
                self.cues.push(frame_start, &self.pending);
                self.pending.clear();
            }
        }
        self.samples += samples.len() as u64;
    }

    /// Samples pushed so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The analysis of everything pushed: segments with their cues, attributed within the file
    /// (the activity's analysis attributes them again across its files, R13.1, R15.1).
    pub fn finish(self) -> AudioAnalysis {
        let rules = *self.segmenter.rules();
        let mut speech = self.segmenter.finish();
        self.cues.measure(&mut speech);
        let speakers = SpeakerRules::default();
        attribute(speech.iter_mut(), &speakers);
        let rms = if self.samples == 0 { 0.0 } else { (self.sum_squares as f64 / self.samples as f64).sqrt() };
        let peak_dbfs = dbfs(f64::from(self.peak));
        AudioAnalysis {
            detector: format!(
                "{}; threshold={} merge_gap_ms={} min_segment_ms={}",
                self.detector.describe(),
                rules.threshold,
                rules.merge_gap_ns / 1_000_000,
                rules.min_segment_ns / 1_000_000
            ),
            decoded_ns: sample_ns(self.samples),
            rms_dbfs: dbfs(rms),
            peak_dbfs,
            digital_silence: peak_dbfs < SILENCE_PEAK_DBFS,
            speech,
        }
    }
}

/// A second-order IIR section (RBJ cookbook), transposed direct form II; also the cue meter's
/// (`crate::cues`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Biquad {
    b: [f32; 3],
    a: [f32; 2],
    z: [f32; 2],
}

impl Biquad {
    pub(crate) fn new(high_pass: bool, hz: f32) -> Self {
        let w = std::f32::consts::TAU * hz / RATE as f32;
        let (sin, cos) = w.sin_cos();
        // Q = 1/sqrt(2): Butterworth.
        let alpha = sin / std::f32::consts::SQRT_2;
        let a0 = 1.0 + alpha;
        let b = if high_pass {
            [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0]
        } else {
            [(1.0 - cos) / 2.0, 1.0 - cos, (1.0 - cos) / 2.0]
        };
        Self { b: b.map(|v| v / a0), a: [-2.0 * cos / a0, (1.0 - alpha) / a0], z: [0.0; 2] }
    }

    pub(crate) fn run(&mut self, x: f32) -> f32 {
        let y = self.b[0] * x + self.z[0];
        self.z[0] = self.b[1] * x - self.a[0] * y + self.z[1];
        self.z[1] = self.b[2] * x - self.a[1] * y;
        y
    }
}

/// The minimum of the last `len` values pushed (a monotonic deque: O(1) amortised per value).
#[derive(Debug, Clone)]
struct SlidingMin {
    len: u64,
    pushed: u64,
    queue: std::collections::VecDeque<(u64, f32)>,
}

impl SlidingMin {
    fn new(len: u64) -> Self {
        Self { len: len.max(1), pushed: 0, queue: std::collections::VecDeque::new() }
    }

    fn push(&mut self, v: f32) -> f32 {
        while self.queue.back().is_some_and(|&(_, b)| b >= v) {
            self.queue.pop_back();
        }
        self.queue.push_back((self.pushed, v));
        self.pushed += 1;
        while self.queue.front().is_some_and(|&(i, _)| i + self.len < self.pushed) {
            self.queue.pop_front();
        }
        self.queue.front().map_or(v, |&(_, m)| m)
    }
}

/// Settings of [`BandGate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateSettings {
    /// The speech band (300–3400 Hz) must stand this far above its recent floor, dB.
    pub speech_band_db: f32,
    /// The formant band (1–4 kHz) must stand this far above its recent floor, dB.
    pub formant_band_db: f32,
    /// The floor is the quietest frame of this long a window, s (minimum statistics).
    pub floor_window_s: f32,
    /// The formant band must hold at least this much of the speech band's energy, dB (negative):
    /// speech spreads over formants and fricatives, tonal sounds (sirens, chords, hum harmonics)
    /// mostly do not.
    pub formant_share_db: f32,
}

impl Default for GateSettings {
    fn default() -> Self {
        Self { speech_band_db: 6.0, formant_band_db: 6.0, floor_window_s: 0.3, formant_share_db: -20.0 }
    }
}

/// A band-limited energy gate: is there energy in the speech band and in the formant band above
/// what the last couple of seconds of background held? Rumble, engines and wind sit below 300 Hz
/// and change slowly; speech comes and goes syllable by syllable, and carries formants and
/// fricatives between 1 and 4 kHz. The floor of each band is the minimum of its frame energies
/// over a sliding window, so the gate adapts to any background level.
#[derive(Debug, Clone)]
pub struct BandGate {
    settings: GateSettings,
    frame_len: usize,
    speech: [Biquad; 2],
    formant: [Biquad; 3],
    speech_floor: SlidingMin,
    formant_floor: SlidingMin,
    /// Frames seen since the start (or the last reset).
    frames: u64,
}

/// The first frames after a start are left out of the floors: AAC decoders fade in over their
/// priming samples (up to 2048), and a floor taken there would open the gate for a whole window.
const SETTLE_NS: u64 = 130_000_000;

impl BandGate {
    /// A gate for frames of `frame_len` samples.
    pub fn new(settings: GateSettings, frame_len: usize) -> Self {
        let window = (settings.floor_window_s * RATE as f32 / frame_len as f32).round() as u64;
        Self {
            settings,
            frame_len,
            speech: [Biquad::new(true, 300.0), Biquad::new(false, 3400.0)],
            formant: [Biquad::new(true, 1000.0), Biquad::new(true, 1000.0), Biquad::new(false, 4000.0)],
            speech_floor: SlidingMin::new(window),
            formant_floor: SlidingMin::new(window),
            frames: 0,
        }
    }

    /// Starts afresh (after a pause in the recording): filters, floors and the settling time.
    pub fn reset(&mut self) {
        *self = Self::new(self.settings, self.frame_len);
    }

    /// Frames left out of the floors after a start, and frames before the gate may open: the
    /// settling frames plus half a floor window, so a floor exists (with the defaults speech is
    /// caught from 0.3 s after a recording starts or resumes).
    fn warm_up(&self) -> (u64, u64) {
        let settle = SETTLE_NS.div_ceil(sample_ns(self.frame_len as u64).max(1));
        (settle, settle + self.speech_floor.len.div_ceil(2))
    }

    /// (speech band, formant band) level above its floor, and the formant band's level against the
    /// speech band's, for this frame, dB.
    pub fn levels(&mut self, frame: &[i16]) -> (f32, f32, f32) {
        let (mut es, mut ef) = (0.0f64, 0.0f64);
        for &x in frame {
            let x = f32::from(x);
            let s = self.speech.iter_mut().fold(x, |v, f| f.run(v));
            let f = self.formant.iter_mut().fold(x, |v, f| f.run(v));
            es += f64::from(s * s);
            ef += f64::from(f * f);
        }
        let n = frame.len().max(1) as f64;
        // +1 keeps digital silence finite (about -90 dBFS).
        let db = |e: f64| (10.0 * (e / n + 1.0).log10()) as f32;
        let (ls, lf) = (db(es), db(ef));
        self.frames += 1;
        if self.frames <= self.warm_up().0 {
            return (0.0, 0.0, lf - ls);
        }
        (ls - self.speech_floor.push(ls), lf - self.formant_floor.push(lf), lf - ls)
    }

    /// Whether the frame passes the gate.
    pub fn open(&mut self, frame: &[i16]) -> bool {
        let (s, f, share) = self.levels(frame);
        self.frames > self.warm_up().1
            && s >= self.settings.speech_band_db
            && f >= self.settings.formant_band_db
            && share >= self.settings.formant_share_db
    }
}

/// Any frame-level detector behind a [`BandGate`]: a frame that does not pass the gate scores 0.
///
/// The inner detector (a recurrent network for earshot) runs only on frames the gate passes:
/// it was 60 % of the analysis thread's CPU, and most frames of a recording are not speech
/// (issue 8). Its state must not notice: frames the gate holds closed are kept (up to
/// [`CATCH_UP_FRAMES`]) and fed to it, in order and unscored, before the next frame that passes,
/// so after a short closure it is in exactly the state it would have had seeing every frame.
/// After a longer one it starts from a reset and the last [`CATCH_UP_FRAMES`] frames, 4 s of
/// context: speech segments can then move by a frame or a few (`ACCURACY.md`: R13.1 and R15.1
/// results unchanged on the evaluation corpora; BENCHMARKS.md, issue 8: the per-file shifts).
#[derive(Debug)]
pub struct Gated<D> {
    inner: D,
    gate: BandGate,
    /// Samples of the frames held closed that `inner` has not seen, oldest first.
    skipped: std::collections::VecDeque<i16>,
    /// More frames were held closed than `skipped` keeps: `inner` restarts from the kept ones.
    overflowed: bool,
}

/// Frames kept for the inner detector while the gate is closed: 4 s at 16 ms frames.
pub const CATCH_UP_FRAMES: usize = 256;

impl<D: VoiceDetector> Gated<D> {
    /// `inner` behind a gate with `settings`.
    pub fn new(inner: D, settings: GateSettings) -> Self {
        let frame_len = inner.frame_len();
        let gate = BandGate::new(settings, frame_len);
        Self {
            inner,
            gate,
            skipped: std::collections::VecDeque::with_capacity(CATCH_UP_FRAMES * frame_len),
            overflowed: false,
        }
    }

    fn hold(&mut self, frame: &[i16]) {
        let frame_len = self.inner.frame_len();
        if self.skipped.len() + frame.len() > CATCH_UP_FRAMES * frame_len {
            self.skipped.drain(..frame_len.min(self.skipped.len()));
            self.overflowed = true;
        }
        self.skipped.extend(frame);
    }

    fn catch_up(&mut self) {
        if self.overflowed {
            self.inner.reset();
            self.overflowed = false;
        }
        let frame_len = self.inner.frame_len();
        for frame in self.skipped.make_contiguous().chunks_exact(frame_len) {
            self.inner.score(frame);
        }
        self.skipped.clear();
    }
}

impl<D: VoiceDetector> VoiceDetector for Gated<D> {
    fn frame_len(&self) -> usize {
        self.inner.frame_len()
    }

    fn score(&mut self, frame: &[i16]) -> f32 {
        if !self.gate.open(frame) {
            self.hold(frame);
            return 0.0;
        }
        self.catch_up();
        self.inner.score(frame)
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.gate.reset();
        self.skipped.clear();
        self.overflowed = false;
    }

    fn describe(&self) -> String {
        let s = self.gate.settings;
        format!(
            "{} behind band gate (300-3400 Hz +{} dB, 1-4 kHz +{} dB over the {} s floor, 1-4 kHz >= {} dB of 300-3400 Hz)",
            self.inner.describe(),
            s.speech_band_db,
            s.formant_band_db,
            s.floor_window_s,
            s.formant_share_db
        )
    }
}

/// earshot's neural network (pure Rust, weights compiled in), 16 ms frames.
pub struct Earshot {
    nn: Box<earshot::Detector>,
}

impl std::fmt::Debug for Earshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Earshot").finish_non_exhaustive()
    }
}

impl Default for Earshot {
    fn default() -> Self {
        Self { nn: earshot::Detector::default_boxed() }
    }
}

impl VoiceDetector for Earshot {
    fn frame_len(&self) -> usize {
        256
    }

    fn score(&mut self, frame: &[i16]) -> f32 {
        self.nn.predict_i16(frame)
    }

    fn reset(&mut self) {
        self.nn.reset();
    }

    fn describe(&self) -> String {
        "earshot 1.2".into()
    }
}

/// The detector the probe uses (see `ACCURACY.md`).
#[derive(Debug)]
pub struct Detector(Gated<Earshot>);

impl Default for Detector {
    fn default() -> Self {
        Self(Gated::new(Earshot::default(), GateSettings::default()))
    }
}

impl Detector {
    /// The segment rules the detector was tuned with.
    pub fn rules() -> SegmentRules {
        SegmentRules::default()
    }
}

/// A boxed detector is a detector (for choosing one at run time).
impl<D: VoiceDetector + ?Sized> VoiceDetector for Box<D> {
    fn frame_len(&self) -> usize {
        (**self).frame_len()
    }

    fn score(&mut self, frame: &[i16]) -> f32 {
        (**self).score(frame)
    }

    fn reset(&mut self) {
        (**self).reset();
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

impl VoiceDetector for Detector {
    fn frame_len(&self) -> usize {
        self.0.frame_len()
    }

    fn score(&mut self, frame: &[i16]) -> f32 {
        self.0.score(frame)
    }

    fn reset(&mut self) {
        self.0.reset();
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// Voiced when the frame's first sample is non-zero; 10 ms frames.
    #[derive(Debug)]
    struct Loud;
    impl VoiceDetector for Loud {
        fn frame_len(&self) -> usize {
            160
        }
        fn score(&mut self, frame: &[i16]) -> f32 {
            if frame[0] != 0 { 1.0 } else { 0.0 }
        }
        fn describe(&self) -> String {
            "loud".into()
        }
    }

    fn rules() -> SegmentRules {
        SegmentRules { frame_ns: 0, threshold: 0.5, merge_gap_ns: 100 * MS, min_segment_ns: 0 }
    }

    /// `ms` milliseconds of constant `value` in 1024-sample buffers from `at_ms`.
    fn push(a: &mut Analyzer<Loud>, at_ms: u64, ms: u64, value: i16) {
        let total = (ms * 16) as usize;
        let mut done = 0;
        while done < total {
            let n = (total - done).min(1024);
            a.push(at_ms * MS + sample_ns(done as u64), &vec![value; n]);
            done += n;
        }
    }

    #[test]
    fn speech_after_a_timestamp_gap_is_placed_by_timestamp() {
        let mut a = Analyzer::new(Loud, rules());
        push(&mut a, 0, 1000, 0);
        push(&mut a, 1000, 500, 1000);
        // the decoder leaves a 4 s hole: no samples, the next buffer is stamped 5.5 s
        push(&mut a, 5500, 500, 1000);
        push(&mut a, 6000, 1000, 0);
        let r = a.finish();
        let spans: Vec<(u64, u64)> = r.speech.iter().map(|s| (s.start_ns / MS, s.end_ns / MS)).collect();
        assert_eq!(spans, vec![(1000, 1500), (5500, 6000)]);
        assert_eq!(r.decoded_ns, 3000 * MS);
        assert!(!r.digital_silence);
    }

    #[test]
    fn small_timestamp_jitter_is_not_a_gap_and_frames_do_not_drift() {
        let mut a = Analyzer::new(Loud, rules());
        // 100 buffers of 1000 samples (62.5 ms), each stamped 1 ms late or early alternately
        for i in 0..100u64 {
            let jitter = if i % 2 == 0 { MS } else { 0 };
            a.push(i * 62_500_000 + jitter, &[500; 1000]);
        }
        let r = a.finish();
        assert_eq!(r.speech.len(), 1);
        assert_eq!((r.speech[0].start_ns, r.speech[0].end_ns), (MS, MS + 6_250_000_000));
    }

    #[test]
    fn levels_and_silence() {
        let mut a = Analyzer::new(Loud, rules());
        push(&mut a, 0, 1000, 0);
        let r = a.finish();
        assert!(r.digital_silence);
        assert_eq!((r.rms_dbfs, r.peak_dbfs), (DBFS_FLOOR, DBFS_FLOOR));
        assert!(r.speech.is_empty());

        let mut a = Analyzer::new(Loud, rules());
        // a full-scale square wave is 0 dBFS; -6 dB peaks at half scale
        let square: Vec<i16> = (0..1600).map(|i| if i % 2 == 0 { 16384 } else { -16384 }).collect();
        a.push(0, &square);
        let r = a.finish();
        assert!((r.rms_dbfs + 6.02).abs() < 0.01 && (r.peak_dbfs + 6.02).abs() < 0.01, "{r:?}");
        assert!(!r.digital_silence);
        // 3 LSB is still silence, 4 LSB is not
        for (lsb, silent) in [(3i16, true), (4, false)] {
            let mut a = Analyzer::new(Loud, rules());
            a.push(0, &[0, lsb, -lsb, 0]);
            assert_eq!(a.finish().digital_silence, silent, "{lsb} LSB");
        }
    }

    #[test]
    fn the_analysis_does_not_depend_on_how_the_audio_was_cut_into_buffers() {
        // eight 0.25 s bursts of "speech" (non-zero frames) between silences, the level varying per sample
        let audio: Vec<i16> =
            (0..16_000 * 6).map(|i| if (i / 4_000) % 3 == 1 { ((i % 97) as i16 - 48) * 300 } else { 0 }).collect();
        let analyse = |sizes: &[usize]| {
            let mut a = Analyzer::new(Loud, rules());
            let (mut at, mut k) = (0, 0);
            while at < audio.len() {
                let n = sizes[k % sizes.len()].min(audio.len() - at);
                a.push(sample_ns(at as u64), &audio[at..at + n]);
                (at, k) = (at + n, k + 1);
            }
            a.finish()
        };
        let whole = analyse(&[audio.len()]);
        assert_eq!(whole.speech.len(), 8, "{whole:?}");
        // one sample at a time, a frame at a time, and sizes that straddle frame boundaries
        for sizes in [&[1][..], &[160], &[1024], &[7, 333, 160, 1]] {
            assert_eq!(analyse(sizes), whole, "buffers of {sizes:?}");
        }
    }

    #[test]
    fn nothing_pushed_is_an_empty_analysis() {
        let r = Analyzer::new(Loud, rules()).finish();
        assert_eq!(r.decoded_ns, 0);
        assert!(r.detector.starts_with("loud; threshold=0.5"), "{}", r.detector);
    }

    #[test]
    fn sliding_minimum_forgets_what_left_the_window() {
        let mut m = SlidingMin::new(3);
        let got: Vec<f32> = [5.0, 3.0, 4.0, 6.0, 7.0, 1.0, 2.0].iter().map(|&v| m.push(v)).collect();
        assert_eq!(got, vec![5.0, 3.0, 3.0, 3.0, 4.0, 1.0, 1.0]);
    }

    #[test]
    fn filters_pass_their_band() {
        let gain = |high_pass: bool, cutoff: f32, hz: f32| {
            let mut f = Biquad::new(high_pass, cutoff);
            let out: Vec<f32> =
                (0..16_000).map(|i| f.run((std::f32::consts::TAU * hz * i as f32 / RATE as f32).sin())).collect();
            out[8000..].iter().fold(0.0f32, |m, v| m.max(v.abs()))
        };
        assert!(gain(true, 300.0, 1000.0) > 0.95 && gain(true, 300.0, 60.0) < 0.05);
        assert!(gain(false, 3400.0, 500.0) > 0.95 && gain(false, 3400.0, 7000.0) < 0.3);
        // -3 dB at the cut-off (Butterworth)
        assert!((gain(true, 1000.0, 1000.0) - std::f32::consts::FRAC_1_SQRT_2).abs() < 0.02);
    }

    /// 16 ms frames of a test signal: `f(t)` for t in seconds.
    fn frames(secs: f32, f: impl Fn(f32) -> f32) -> Vec<Vec<i16>> {
        let n = (secs * RATE as f32) as usize;
        let x: Vec<i16> = (0..n).map(|i| (f(i as f32 / RATE as f32) * 32767.0) as i16).collect();
        x.chunks_exact(256).map(<[i16]>::to_vec).collect()
    }

    fn opened(signal: &[Vec<i16>]) -> Vec<bool> {
        let mut gate = BandGate::new(GateSettings::default(), 256);
        signal.iter().map(|f| gate.open(f)).collect()
    }

    /// Deterministic white noise in -1..1.
    fn noise(t: f32) -> f32 {
        let i = (t * RATE as f32) as u32;
        let h = i.wrapping_mul(2_654_435_761).rotate_left(13).wrapping_mul(2_246_822_519);
        (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }

    #[test]
    fn the_gate_opens_on_syllables_and_stays_shut_on_steady_or_tonal_sound() {
        // broadband bursts of 150 ms every 300 ms over quiet noise: syllable-like
        let syllables =
            frames(3.0, |t| 0.01 * noise(t) + if (t * 1000.0) as u32 % 300 < 150 { 0.3 * noise(t + 7.0) } else { 0.0 });
        let open = opened(&syllables);
        assert!(open.iter().filter(|&&o| o).count() > 30, "{open:?}");
        // never during the warm-up (settling plus half a window): the floor is not known yet
        let (settle, warm) = BandGate::new(GateSettings::default(), 256).warm_up();
        assert!(settle > 0 && !open[..warm as usize].iter().any(|&o| o));
        // steady loud noise, a 45 Hz hum with harmonics, chords of pure tones pulsing twice a second
        let steady = frames(3.0, |t| 0.3 * noise(t));
        let hum = frames(3.0, |t| {
            (1..=8).map(|k| (std::f32::consts::TAU * 45.0 * k as f32 * t).sin() / k as f32).sum::<f32>() * 0.2
        });
        let chords = frames(3.0, |t| {
            let within = t % 0.5;
            let env = (within / 0.02).min(1.0) * (-within * 3.0).exp();
            env * [262.0f32, 330.0, 392.0].iter().map(|f| (std::f32::consts::TAU * f * t).sin()).sum::<f32>() * 0.2
        });
        for (name, signal) in [("steady noise", steady), ("hum", hum), ("chords", chords)] {
            let open = opened(&signal).iter().filter(|&&o| o).count();
            assert!(open <= 2, "{name}: open on {open} frames");
        }
    }

    /// Records what the inner detector of a [`Gated`] sees: frame indices, `None` for a reset.
    #[derive(Debug)]
    struct Recorder {
        index: std::collections::HashMap<Vec<i16>, usize>,
        seen: std::rc::Rc<std::cell::RefCell<Vec<Option<usize>>>>,
    }
    impl VoiceDetector for Recorder {
        fn frame_len(&self) -> usize {
            256
        }
        fn score(&mut self, frame: &[i16]) -> f32 {
            let i = self.index[frame];
            self.seen.borrow_mut().push(Some(i));
            i as f32
        }
        fn reset(&mut self) {
            self.seen.borrow_mut().push(None);
        }
        fn describe(&self) -> String {
            "recorder".into()
        }
    }

    #[test]
    fn the_gated_detector_sees_what_it_would_have_seen_ungated() {
        // bursts after short (150 ms) and long (5 s, more than CATCH_UP_FRAMES) quiet stretches
        let burst = |t: f32| {
            let ms = (t * 1000.0) as u32;
            let on = (5000..5150).contains(&ms) || (5300..5450).contains(&ms) || (10450..10600).contains(&ms);
            0.01 * noise(t) + if on { 0.3 * noise(t + 7.0) } else { 0.0 }
        };
        let signal = frames(11.0, burst);
        let open = opened(&signal);
        let index = signal.iter().enumerate().map(|(i, f)| (f.clone(), i)).collect();
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut gated = Gated::new(Recorder { index, seen: seen.clone() }, GateSettings::default());
        for (i, f) in signal.iter().enumerate() {
            let score = gated.score(f);
            // a frame that passes is scored by the inner detector, any other scores 0
            assert_eq!(score, if open[i] { i as f32 } else { 0.0 }, "frame {i}");
        }
        let seen = seen.borrow().clone();
        let last_open = open.iter().rposition(|&o| o).unwrap();
        // The inner detector sees consecutive frames up to the last that passed; it restarts only
        // where more than CATCH_UP_FRAMES were held, and then from exactly that many.
        let mut expected = Vec::new();
        let mut held = Vec::new();
        for (i, &o) in open.iter().enumerate().take(last_open + 1) {
            if !o {
                held.push(i);
                continue;
            }
            if held.len() > CATCH_UP_FRAMES {
                expected.push(None);
                held.drain(..held.len() - CATCH_UP_FRAMES);
            }
            expected.extend(held.drain(..).map(Some));
            expected.push(Some(i));
        }
        assert_eq!(seen, expected);
        // both kinds of closure happened
        assert!(seen.iter().filter(|s| s.is_none()).count() >= 2, "{seen:?}");
        let short_gap = open.windows(2).filter(|w| w[0] && !w[1]).count() > seen.iter().filter(|s| s.is_none()).count();
        assert!(short_gap, "no short closure in the signal");
    }
}
