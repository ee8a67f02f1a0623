//! The acoustic cues of each speech segment ([`VoiceCues`]) from which the core tells the wearer's
//! voice from everyone else's (R13.1, R15.1; `recvault_core::speaker`).
//!
//! Every analysis frame (16 ms) leaves two numbers: its speech-band (300–3400 Hz) and high-band
//! (above 4 kHz) levels. That costs four biquad sections per sample and 16 bytes per frame (3.6 MB
//! for an hour), kept until the segments are known, then read once per segment. The filters
//! restart with each continuous stretch of audio, as the detector does.

use crate::voice::Biquad;
use recvault_core::speech::{SpeechSegment, VoiceCues};

/// What one frame left.
#[derive(Debug, Clone, Copy)]
struct FrameLevels {
    start_ns: u64,
    /// Speech band, dBFS.
    speech_db: f32,
    /// High band, dBFS.
    high_db: f32,
}

/// Frames this far apart or closer around a loud frame show whether its syllable ends dry.
const DECAY_FRAMES: usize = 3;
/// The background is read this far before and after a segment.
const FLOOR_CONTEXT_NS: u64 = 1_000_000_000;
/// Loud frames are within this of the segment's level, dB.
const LOUD_DB: f32 = 6.0;

fn filters() -> ([Biquad; 2], [Biquad; 2]) {
    ([Biquad::new(true, 300.0), Biquad::new(false, 3400.0)], [Biquad::new(true, 4000.0), Biquad::new(true, 4000.0)])
}

/// Streams frames into per-frame levels; [`CueMeter::measure`] turns them into segment cues.
#[derive(Debug)]
pub struct CueMeter {
    speech: [Biquad; 2],
    high: [Biquad; 2],
    frames: Vec<FrameLevels>,
}

impl Default for CueMeter {
    fn default() -> Self {
        let (speech, high) = filters();
        Self { speech, high, frames: Vec::new() }
    }
}

/// dBFS of a mean square of 16-bit samples (floored, so silence stays finite).
fn db(mean_square: f64) -> f32 {
    (10.0 * (mean_square / (32768.0 * 32768.0) + 1e-12).log10()) as f32
}

/// The `q` quantile (0..1) of `v` (sorted in place); `None` for none.
fn quantile(v: &mut [f32], q: f32) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let i = ((v.len() - 1) as f32 * q).round() as usize;
    Some(v[i.min(v.len() - 1)])
}

impl CueMeter {
    /// The next frame does not continue the previous one: the filters start afresh.
    pub fn reset(&mut self) {
        (self.speech, self.high) = filters();
    }

    /// One frame starting at `start_ns` (file timeline).
    pub fn push(&mut self, start_ns: u64, frame: &[i16]) {
        let (mut es, mut eh) = (0.0f64, 0.0f64);
        for &x in frame {
            let x = f32::from(x);
            let s = self.speech.iter_mut().fold(x, |v, f| f.run(v));
            let h = self.high.iter_mut().fold(x, |v, f| f.run(v));
            es += f64::from(s * s);
            eh += f64::from(h * h);
        }
        let n = frame.len().max(1) as f64;
        self.frames.push(FrameLevels { start_ns, speech_db: db(es / n), high_db: db(eh / n) });
    }

    /// Frames starting in `[from, to)`.
    fn between(&self, from: u64, to: u64) -> &[FrameLevels] {
        let a = self.frames.partition_point(|f| f.start_ns < from);
        let b = self.frames.partition_point(|f| f.start_ns < to);
        &self.frames[a..b.max(a)]
    }

    /// The cues of a segment from `start_ns` to `end_ns`; `None` without frames there.
    pub fn cues(&self, start_ns: u64, end_ns: u64) -> Option<VoiceCues> {
        let inside = self.between(start_ns, end_ns);
        let mut levels: Vec<f32> = inside.iter().map(|f| f.speech_db).collect();
        let level = quantile(&mut levels, 0.9)?;
        let mut around: Vec<f32> = self
            .between(start_ns.saturating_sub(FLOOR_CONTEXT_NS), end_ns.saturating_add(FLOOR_CONTEXT_NS))
            .iter()
            .map(|f| f.speech_db)
            .collect();
        let floor = quantile(&mut around, 0.1).unwrap_or(level);
        let loud = |f: &FrameLevels| f.speech_db >= level - LOUD_DB;
        let mut hf: Vec<f32> = inside.iter().filter(|f| loud(f)).map(|f| f.high_db - f.speech_db).collect();
        // Where a loud frame starts to fall: how far the level is down within DECAY_FRAMES.
        let mut decays: Vec<f32> = inside
            .windows(DECAY_FRAMES + 1)
            .filter(|w| loud(&w[0]) && w[1].speech_db < w[0].speech_db - 1.0)
            .map(|w| w[0].speech_db - w[1..].iter().map(|f| f.speech_db).fold(f32::INFINITY, f32::min))
            .collect();
        Some(VoiceCues {
            level_dbfs: level,
            floor_dbfs: floor,
            decay_db: quantile(&mut decays, 0.9).unwrap_or(0.0),
            hf_db: quantile(&mut hf, 0.5).unwrap_or(-60.0),
        })
    }

    /// Fills in the cues of every segment.
    pub fn measure(&self, segments: &mut [SpeechSegment]) {
        for s in segments {
            s.cues = self.cues(s.start_ns, s.end_ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic white noise in -1..1.
    fn noise(i: usize) -> f32 {
        let h = (i as u32).wrapping_mul(2_654_435_761).rotate_left(13).wrapping_mul(2_246_822_519);
        (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }

    /// Pushes `x` (full scale 1.0) as 256-sample frames from 0.
    fn meter(x: &[f32]) -> CueMeter {
        let mut m = CueMeter::default();
        for (k, frame) in x.chunks_exact(256).enumerate() {
            let pcm: Vec<i16> = frame.iter().map(|v| (v * 32767.0) as i16).collect();
            m.push(k as u64 * 16_000_000, &pcm);
        }
        m
    }

    /// Noise bursts of 150 ms every 300 ms (syllables) over a quiet floor, each ending either at
    /// once or with a tail decaying by 60 dB over `rt60` seconds.
    fn syllables(amplitude: f32, rt60: Option<f32>, low_passed: bool) -> Vec<f32> {
        let mut lp = 0.0f32;
        (0..16_000 * 4)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let within = t % 0.3;
                let env = if (0.5..3.5).contains(&t) {
                    match (within < 0.15, rt60) {
                        (true, _) => 1.0,
                        (false, Some(rt)) => (-6.9 * (within - 0.15) / rt).exp(),
                        (false, None) => 0.0,
                    }
                } else {
                    0.0
                };
                let mut v = noise(i);
                if low_passed {
                    lp += 0.2 * (v - lp);
                    v = lp;
                }
                amplitude * env * v + 0.001 * noise(i + 999_999)
            })
            .collect()
    }

    #[test]
    fn a_dry_voice_decays_further_than_a_reverberant_one_and_levels_are_in_dbfs() {
        let dry = meter(&syllables(0.3, None, false)).cues(500_000_000, 3_500_000_000).unwrap();
        let wet = meter(&syllables(0.3, Some(0.6), false)).cues(500_000_000, 3_500_000_000).unwrap();
        // uniform white noise of peak 0.3: RMS 0.3/sqrt(3), -15.2 dBFS broadband; the 300-3400 Hz
        // band holds 3100/8000 of its power (-4.1 dB): -19.3 dBFS
        assert!((-20.5..-18.0).contains(&dry.level_dbfs), "{dry:?}");
        assert!(dry.floor_dbfs < -55.0, "{dry:?}");
        assert!(dry.decay_db > 30.0, "{dry:?}");
        assert!(wet.decay_db < 12.0, "{wet:?}");
        // white noise: the 4-8 kHz band is about as strong as 0.3-3.4 kHz; low-passed it is not
        assert!(dry.hf_db > -3.0, "{dry:?}");
        let dull = meter(&syllables(0.3, None, true)).cues(500_000_000, 3_500_000_000).unwrap();
        // a first-order low pass near 570 Hz: the high band loses about 8 dB more than the speech band
        assert!(dull.hf_db < dry.hf_db - 6.0, "{dull:?}");
    }

    #[test]
    fn segments_without_frames_have_no_cues() {
        let m = meter(&syllables(0.3, None, false));
        assert!(m.cues(10_000_000_000, 11_000_000_000).is_none());
        let mut s = [SpeechSegment {
            start_ns: 500_000_000,
            end_ns: 3_500_000_000,
            confidence: 1.0,
            speaker: Default::default(),
            speaker_confidence: 0.0,
            cues: None,
        }];
        m.measure(&mut s);
        assert!(s[0].cues.is_some());
    }

    #[test]
    fn quantiles() {
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [3.0, 1.0, 2.0], 0.5), Some(2.0));
        assert_eq!(quantile(&mut [3.0, 1.0, 2.0, 4.0, 5.0], 0.9), Some(5.0));
        assert_eq!(quantile(&mut [3.0, 1.0, 2.0, 4.0, 5.0], 0.1), Some(1.0));
    }
}
