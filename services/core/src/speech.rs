//! Speech found in a recording's audio, as the media probe reports it, and the rules that turn
//! frame-level voice-activity decisions into speech segments (R13.1, R15.1 rely on them).
//!
//! Times are on the file timeline (ns from the start of the file), placed by the decoded buffers'
//! timestamps, never by counting samples: the AAC decoder does not fill timestamp gaps.

use serde::{Deserialize, Serialize};

/// One stretch of speech.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeechSegment {
    pub start_ns: u64,
    pub end_ns: u64,
    /// 0..1: how sure the detector is (e.g. the share of voiced frames, or mean probability).
    pub confidence: f32,
    /// R13.1, R15.1: who spoke, as far as the system can tell; only the wearer's speech is a
    /// notification or an explanation. `unknown` in reports made before attribution existed.
    #[serde(default)]
    pub speaker: Speaker,
    /// 0..1: how sure the attribution is (0 for `unknown`).
    #[serde(default)]
    pub speaker_confidence: f32,
    /// What the attribution was decided on (absent in reports made before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cues: Option<VoiceCues>,
}

/// Who spoke a segment. R13.1 (the notification before recording) and R15.1 (the explanation on
/// resuming) must be spoken by the officer wearing the recorder: bystanders, a party or a radio
/// talking do not give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    /// The officer wearing the recorder: a few centimetres from the microphone, so loud and dry.
    Wearer,
    /// Someone further away: a party, a crowd, a radio or loudspeaker.
    Other,
    /// Too little to go on: speech barely above the background, no cues measured, or a
    /// close-sounding voice in an activity with no reference voice to weigh it against.
    #[default]
    Unknown,
}

impl Speaker {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wearer => "wearer",
            Self::Other => "other",
            Self::Unknown => "unknown",
        }
    }
}

/// Acoustic cues of one speech segment, measured by the media probe on the decoded 16 kHz mono
/// audio, from which [`crate::speaker::attribute`] tells the wearer from everyone else (R13.1,
/// R15.1). Levels are of the speech band (300–3400 Hz) in 16 ms frames.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VoiceCues {
    /// The segment's loud frames (90th percentile of frame levels), dBFS: the wearer's mouth is a
    /// few centimetres from the microphone, everyone else's metres away.
    pub level_dbfs: f32,
    /// The background around the segment (10th percentile of frame levels from 1 s before to
    /// 1 s after), dBFS.
    pub floor_dbfs: f32,
    /// How far the level falls within 48 ms after the segment's loud syllables end (the sharpest
    /// tenth of them: pauses between words and phrases), dB: a dry voice falls to the background at once, a voice carried by a room rides
    /// its reverberant tail down.
    pub decay_db: f32,
    /// 4–7 kHz against 300–3400 Hz over the loud frames, dB: distance, air and radio channels take
    /// the high frequencies away.
    pub hf_db: f32,
}

impl VoiceCues {
    /// How far the segment stands above its background, dB.
    pub fn snr_db(&self) -> f32 {
        self.level_dbfs - self.floor_dbfs
    }
}

impl SpeechSegment {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// What the audio track held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioAnalysis {
    /// The voice-activity detector and its settings, for the record (e.g. `webrtc-vad 0.4 mode=3`).
    pub detector: String,
    /// Audio decoded, ns (the timeline covered by decoded buffers).
    pub decoded_ns: u64,
    /// Loudness of the whole track.
    pub rms_dbfs: f32,
    pub peak_dbfs: f32,
    /// Every decoded sample is (near) zero: the microphone recorded nothing.
    pub digital_silence: bool,
    /// Speech segments in time order, non-overlapping.
    pub speech: Vec<SpeechSegment>,
}

/// One analysis frame of the voice-activity detector: where it starts on the file timeline and how
/// speech-like it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Placed by the decoded buffer's timestamp plus the frame's offset inside the buffer.
    pub start_ns: u64,
    /// 0..1: a probability, or 0/1 for a detector that only decides.
    pub score: f32,
}

/// How frame decisions become segments. Tuned for the checks built on them (R15.1: speech of at
/// least 2 s starting within 30 s of a resumption; R13.1: speech within the first 60 s), that is
/// for utterances of a few seconds, not for frame accuracy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SegmentRules {
    /// Length of one frame, ns.
    pub frame_ns: u64,
    /// A frame whose score is at least this is voiced.
    pub threshold: f32,
    /// Voiced runs separated by at most this much unvoiced time are one segment (the pauses between
    /// words and at commas; espeak-ng's are at most 260 ms, people's often 300–600 ms).
    pub merge_gap_ns: u64,
    /// Segments shorter than this after merging are dropped (clicks, horn blasts, a cough).
    pub min_segment_ns: u64,
}

impl Default for SegmentRules {
    fn default() -> Self {
        Self { frame_ns: 10_000_000, threshold: 0.5, merge_gap_ns: 600_000_000, min_segment_ns: 300_000_000 }
    }
}

/// An open segment while frames stream in.
#[derive(Debug, Clone, Copy)]
struct Open {
    start_ns: u64,
    /// End of the last voiced frame.
    voiced_end_ns: u64,
    /// Sum of the scores of every frame from the first voiced one to the last voiced one.
    score_sum: f64,
    frames: u64,
    /// Scores of the unvoiced frames since the last voiced one (added if speech resumes).
    pending_sum: f64,
    pending_frames: u64,
}

/// Streams frames (in time order) into speech segments.
///
/// Rules: a segment runs from the start of its first voiced frame to the end of its last voiced
/// frame. Voiced frames join the open segment when the unvoiced stretch since the last voiced frame
/// is at most `merge_gap_ns`. A jump in the frames' timestamps (a frame starting more than half a
/// frame after the previous one ends: the recording paused, and the decoder left a hole) always
/// closes the segment: speech never spans a pause. Closed segments shorter than `min_segment_ns`
/// are dropped. Confidence is the mean score over the segment's frames, pauses included.
#[derive(Debug, Clone)]
pub struct Segmenter {
    rules: SegmentRules,
    open: Option<Open>,
    /// End of the previous frame, to see timestamp jumps.
    last_end_ns: Option<u64>,
    out: Vec<SpeechSegment>,
}

impl Segmenter {
    pub fn new(rules: SegmentRules) -> Self {
        Self { rules, open: None, last_end_ns: None, out: Vec::new() }
    }

    pub fn rules(&self) -> &SegmentRules {
        &self.rules
    }

    /// Adds the next frame. Frames must come in time order; one that starts before the previous
    /// frame ended (overlapping timestamps) is treated as continuing it.
    pub fn push(&mut self, frame: Frame) {
        let end = frame.start_ns.saturating_add(self.rules.frame_ns);
        if let Some(last) = self.last_end_ns
            && frame.start_ns > last.saturating_add(self.rules.frame_ns / 2)
        {
            self.close();
        }
        self.last_end_ns = Some(end);
        let voiced = frame.score >= self.rules.threshold;
        let score = f64::from(frame.score.clamp(0.0, 1.0));
        match (&mut self.open, voiced) {
            (Some(o), true) if frame.start_ns.saturating_sub(o.voiced_end_ns) <= self.rules.merge_gap_ns => {
                o.score_sum += o.pending_sum + score;
                o.frames += o.pending_frames + 1;
                o.pending_sum = 0.0;
                o.pending_frames = 0;
                o.voiced_end_ns = end;
            }
            (Some(o), false) if frame.start_ns.saturating_sub(o.voiced_end_ns) < self.rules.merge_gap_ns => {
                o.pending_sum += score;
                o.pending_frames += 1;
            }
            (_, true) => {
                self.close();
                self.open = Some(Open {
                    start_ns: frame.start_ns,
                    voiced_end_ns: end,
                    score_sum: score,
                    frames: 1,
                    pending_sum: 0.0,
                    pending_frames: 0,
                });
            }
            (_, false) => self.close(),
        }
    }

    fn close(&mut self) {
        if let Some(o) = self.open.take() {
            let segment = SpeechSegment {
                start_ns: o.start_ns,
                end_ns: o.voiced_end_ns,
                confidence: (o.score_sum / o.frames.max(1) as f64) as f32,
                speaker: Speaker::Unknown,
                speaker_confidence: 0.0,
                cues: None,
            };
            if segment.duration_ns() >= self.rules.min_segment_ns {
                self.out.push(segment);
            }
        }
    }

    /// Closes the open segment and returns every segment, in time order.
    pub fn finish(mut self) -> Vec<SpeechSegment> {
        self.close();
        self.out
    }
}

/// Segments of a whole sequence of frames (see [`Segmenter`]).
pub fn segments(frames: impl IntoIterator<Item = Frame>, rules: SegmentRules) -> Vec<SpeechSegment> {
    let mut s = Segmenter::new(rules);
    frames.into_iter().for_each(|f| s.push(f));
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn rules() -> SegmentRules {
        SegmentRules { frame_ns: 10 * MS, threshold: 0.5, merge_gap_ns: 100 * MS, min_segment_ns: 50 * MS }
    }

    /// Frames every 10 ms from 0 with the given pattern: `#` voiced (1.0), `.` unvoiced (0.0).
    fn frames(pattern: &str) -> Vec<Frame> {
        pattern
            .chars()
            .enumerate()
            .map(|(i, c)| Frame { start_ns: i as u64 * 10 * MS, score: if c == '#' { 1.0 } else { 0.0 } })
            .collect()
    }

    fn spans(segments: &[SpeechSegment]) -> Vec<(u64, u64)> {
        segments.iter().map(|s| (s.start_ns / MS, s.end_ns / MS)).collect()
    }

    #[test]
    fn pauses_at_and_around_the_merge_gap() {
        // 10 voiced frames, a pause of n frames, 10 voiced frames; merge gap 100 ms
        let table: &[(usize, &[(u64, u64)])] = &[
            (1, &[(0, 210)]),
            (9, &[(0, 290)]),
            (10, &[(0, 300)]),             // exactly the merge gap: one segment
            (11, &[(0, 100), (210, 310)]), // one frame more: two
            (30, &[(0, 100), (400, 500)]),
        ];
        for &(pause, expected) in table {
            let pattern = format!("{}{}{}", "#".repeat(10), ".".repeat(pause), "#".repeat(10));
            assert_eq!(spans(&segments(frames(&pattern), rules())), expected, "pause of {pause} frames");
        }
    }

    #[test]
    fn minimum_length_at_and_around_the_threshold() {
        // min 50 ms: 4 frames dropped, 5 kept; a merged pair counts as one
        let table: &[(&str, &[(u64, u64)])] = &[
            ("....####....", &[]),
            ("....#####...", &[(40, 90)]),
            ("##.##.......", &[(0, 50)]),
            ("#.#.........", &[]),
            ("", &[]),
            ("..........", &[]),
        ];
        for &(pattern, expected) in table {
            assert_eq!(spans(&segments(frames(pattern), rules())), expected, "{pattern:?}");
        }
    }

    #[test]
    fn trailing_unvoiced_frames_are_not_part_of_the_segment() {
        // hangover bridges pauses but does not extend the end past the last voiced frame
        assert_eq!(spans(&segments(frames("######......"), rules())), vec![(0, 60)]);
        // a segment still open at the end is closed
        assert_eq!(spans(&segments(frames("......######"), rules())), vec![(60, 120)]);
    }

    #[test]
    fn threshold_is_inclusive() {
        let rules = rules();
        for (score, voiced) in [(0.49, false), (0.5, true), (0.9, true)] {
            let f: Vec<Frame> = (0..10).map(|i| Frame { start_ns: i * 10 * MS, score }).collect();
            assert_eq!(segments(f, rules).len(), usize::from(voiced), "score {score}");
        }
    }

    #[test]
    fn a_timestamp_jump_always_splits() {
        // 10 voiced frames, then 10 more after a 40 ms hole (shorter than the merge gap)
        let mut f = frames(&"#".repeat(10));
        f.extend((0..10).map(|i| Frame { start_ns: 140 * MS + i * 10 * MS, score: 1.0 }));
        assert_eq!(spans(&segments(f.clone(), rules())), vec![(0, 100), (140, 240)]);
        // jitter of less than half a frame is not a jump
        let mut g = frames(&"#".repeat(10));
        g.extend((0..10).map(|i| Frame { start_ns: 104 * MS + i * 10 * MS, score: 1.0 }));
        assert_eq!(spans(&segments(g, rules())), vec![(0, 204)]);
        // exactly half a frame late still continues; one ns more splits
        for (late, parts) in [(5 * MS, 1), (5 * MS + 1, 2)] {
            let mut h = frames(&"#".repeat(10));
            h.extend((0..10).map(|i| Frame { start_ns: 100 * MS + late + i * 10 * MS, score: 1.0 }));
            assert_eq!(segments(h, rules()).len(), parts, "{late} ns late");
        }
    }

    #[test]
    fn confidence_is_the_mean_score_pauses_included() {
        let f: Vec<Frame> = [1.0, 0.8, 0.0, 0.0, 0.6, 1.0]
            .iter()
            .enumerate()
            .map(|(i, &score)| Frame { start_ns: i as u64 * 10 * MS, score })
            .collect();
        let s = segments(f, rules());
        assert_eq!(spans(&s), vec![(0, 60)]);
        assert!((s[0].confidence - 3.4 / 6.0).abs() < 1e-6, "{}", s[0].confidence);
    }

    #[test]
    fn default_rules_keep_a_sentence_with_commas_whole() {
        // 1.2 s of speech, a 400 ms comma pause, 1.5 s of speech, 2 s silence, a 200 ms blip
        let pattern =
            format!("{}{}{}{}{}", "#".repeat(120), ".".repeat(40), "#".repeat(150), ".".repeat(200), "#".repeat(20));
        let s = segments(frames(&pattern), SegmentRules::default());
        assert_eq!(spans(&s), vec![(0, 3100)]);
    }
}
