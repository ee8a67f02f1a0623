//! R13.1, R15.1: who spoke each speech segment, the officer wearing the recorder or someone else.
//!
//! The wearer's mouth is a few centimetres from the microphone; everyone else's is a metre or
//! more away. That shows in the cues the probe measures per segment ([`VoiceCues`]): the wearer
//! is louder, and dry (a syllable's end falls to the background at once, where a distant voice
//! rides its reverberant tail down); radios and distant voices lose their high frequencies.
//! Pure: the same segments and rules always give the same speakers.
//!
//! Two methods, compared on the labelled scenes of `recvault eval --scenes` (`ACCURACY.md`, "Who
//! spoke"):
//! - [`Method::AbsoluteLevel`]: a segment at least [`SpeakerRules::absolute_level_dbfs`] loud is
//!   the wearer. Simple, but recorders differ in gain and officers in voice effort.
//! - [`Method::Relative`] (shipped): a segment must *sound* close (its sharpest syllable ends
//!   fall far enough within 48 ms, its high band is there) and be within [`SpeakerRules::reference_margin_db`] of the
//!   reference: the loudest segment of the set, at least 1 s long, that sounds clearly close (a stricter decay), which in an activity is normally
//!   the wearer's R13.1 notification. The set is a file when the probe attributes, the whole
//!   activity when the analysis does.

use crate::speech::{Speaker, SpeechSegment, VoiceCues};
use serde::{Deserialize, Serialize};

/// How segments are attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Level against a fixed threshold.
    AbsoluteLevel,
    /// Dryness and spectral balance, then level against the set's own reference.
    Relative,
}

/// Thresholds of the attribution (tuned on scene seed 5 only, see `ACCURACY.md`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeakerRules {
    pub method: Method,
    /// Below this far above its background a segment's cues say nothing: `unknown`.
    pub min_snr_db: f32,
    /// [`Method::AbsoluteLevel`]: this loud or louder is the wearer, dBFS.
    pub absolute_level_dbfs: f32,
    /// [`Method::Relative`]: a segment sounds close when its sharpest syllable ends fall by at
    /// least this much within 48 ms, dB (at 15 dB above the background; see
    /// `decay_per_snr_db`)...
    pub close_decay_db: f32,
    /// ...and the reference must fall by at least this much: a voice that is only just dry
    /// enough never sets the level others are judged by, dB...
    pub reference_decay_db: f32,
    /// ...both raised by this much per dB the segment stands above 15 dB over its background
    /// (a louder voice has further to fall before the background hides its tail)...
    pub decay_per_snr_db: f32,
    /// ...and its 4–7 kHz band is at least this much of its speech band, dB. Lenient: AAC at
    /// 32 kb/s drops most of the high band for every voice alike.
    pub close_hf_db: f32,
    /// [`Method::Relative`]: a close-sounding segment this far below the reference or less is
    /// the wearer, dB.
    pub reference_margin_db: f32,
    /// [`Method::Relative`]: only a segment at least this long can be the reference, ns: a
    /// fraction of a second (a shout, a cough, a word) is no measure of how loud a voice speaks.
    pub reference_min_ns: u64,
}

impl Default for SpeakerRules {
    fn default() -> Self {
        Self {
            method: Method::Relative,
            min_snr_db: 3.0,
            absolute_level_dbfs: -30.0,
            close_decay_db: 8.0,
            reference_decay_db: 10.0,
            decay_per_snr_db: 0.1,
            close_hf_db: -40.0,
            reference_margin_db: 3.0,
            reference_min_ns: 1_000_000_000,
        }
    }
}

/// A logistic squash of a margin (in its own units over `scale`) into 0.5..1: how far a decision
/// is from its threshold.
fn sure(margin: f32, scale: f32) -> f32 {
    1.0 / (1.0 + (-(margin.abs() / scale)).exp())
}

/// The margin (positive: close) by which a segment sounds close, in units of each cue's
/// threshold scale, against a decay threshold of `decay_db` at 15 dB SNR: the smaller of the two
/// cues decides.
fn closeness(c: &VoiceCues, r: &SpeakerRules, decay_db: f32) -> f32 {
    let needed = decay_db + r.decay_per_snr_db * (c.snr_db() - 15.0);
    let decay = (c.decay_db - needed) / 2.0;
    let hf = (c.hf_db - r.close_hf_db) / 3.0;
    decay.min(hf)
}

/// Attributes every segment of one set (a file's, or an activity's across its files): sets
/// `speaker` and `speaker_confidence`. Segments without cues, too faint to judge, or sounding
/// close in a set with no reference to weigh them against, are `unknown`.
pub fn attribute<'a>(segments: impl IntoIterator<Item = &'a mut SpeechSegment>, r: &SpeakerRules) {
    let mut segments: Vec<&mut SpeechSegment> = segments.into_iter().collect();
    let judged = |s: &SpeechSegment| s.cues.filter(|c| c.snr_db() >= r.min_snr_db);
    // The reference: the loudest segment that sounds close.
    let reference = segments
        .iter()
        .filter(|s| s.duration_ns() >= r.reference_min_ns)
        .filter_map(|s| judged(s))
        .filter(|c| closeness(c, r, r.reference_decay_db) >= 0.0)
        .map(|c| c.level_dbfs)
        .fold(None, |m: Option<f32>, l| Some(m.map_or(l, |m| m.max(l))));
    for s in &mut segments {
        let Some(c) = judged(s) else {
            s.speaker = Speaker::Unknown;
            s.speaker_confidence = 0.0;
            continue;
        };
        // Positive margin: the wearer; the smallest margin decides and says how sure.
        let margin = match r.method {
            Method::AbsoluteLevel => (c.level_dbfs - r.absolute_level_dbfs) / 3.0,
            Method::Relative => {
                let close = closeness(&c, r, r.close_decay_db);
                match reference {
                    Some(re) => close.min((c.level_dbfs - (re - r.reference_margin_db)) / 3.0),
                    // A close-sounding voice and no reference to weigh it against: the wearer
                    // not quite dry enough to set one, or a party or radio near by. Not counted
                    // as the wearer, and not called someone else either (ACCURACY.md).
                    None if close >= 0.0 => {
                        s.speaker = Speaker::Unknown;
                        s.speaker_confidence = 0.0;
                        continue;
                    }
                    None => close,
                }
            }
        };
        s.speaker = if margin >= 0.0 { Speaker::Wearer } else { Speaker::Other };
        s.speaker_confidence = sure(margin, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn seg(i: u64, cues: Option<VoiceCues>) -> SpeechSegment {
        SpeechSegment {
            start_ns: i * 5000 * MS,
            end_ns: i * 5000 * MS + 3000 * MS,
            confidence: 0.9,
            speaker: Speaker::Unknown,
            speaker_confidence: 0.0,
            cues,
        }
    }

    /// Cues of a segment `level` dBFS loud over a floor at -50 dBFS whose sharpest syllable ends
    /// fall by `decay` dB, with the high band `hf` dB under the speech band.
    fn cues(level: f32, decay: f32, hf: f32) -> Option<VoiceCues> {
        Some(VoiceCues { level_dbfs: level, floor_dbfs: -50.0, decay_db: decay, hf_db: hf })
    }

    fn speakers(segments: &mut [SpeechSegment], r: &SpeakerRules) -> Vec<Speaker> {
        attribute(segments.iter_mut(), r);
        segments.iter().map(|s| s.speaker).collect()
    }

    const W: Speaker = Speaker::Wearer;
    const O: Speaker = Speaker::Other;
    const U: Speaker = Speaker::Unknown;

    #[test]
    fn the_loudest_dry_voice_is_the_reference_and_quieter_or_reverberant_ones_are_others() {
        let r = SpeakerRules::default();
        // (description, segments, expected)
        // At -20 dBFS over -50 the SNR is 30 dB: the decay thresholds are 8 + 1.5 = 9.5 dB to
        // sound close and 10 + 1.5 = 11.5 dB to be the reference.
        type Case = (&'static str, Vec<Option<VoiceCues>>, Vec<Speaker>);
        let table: Vec<Case> = vec![
            ("wearer alone", vec![cues(-20.0, 20.0, -15.0)], vec![W]),
            // the notification at -20, an explanation at -22 (within 3 dB), a party at -24 (4 below)
            (
                "reference and a quieter party",
                vec![cues(-20.0, 20.0, -15.0), cues(-22.0, 15.0, -16.0), cues(-24.0, 20.0, -18.0)],
                vec![W, W, O],
            ),
            // exactly at the margin is the wearer; a hair below is not
            ("at the margin", vec![cues(-20.0, 20.0, -15.0), cues(-23.0, 20.0, -15.0)], vec![W, W]),
            ("below the margin", vec![cues(-20.0, 20.0, -15.0), cues(-23.01, 20.0, -15.0)], vec![W, O]),
            // a reverberant voice is never the reference, however loud: a crowd alone stays others
            ("reverberant only", vec![cues(-15.0, 6.0, -15.0), cues(-20.0, 9.0, -15.0)], vec![O, O]),
            // only just dry enough: close, but not a reference, so with nothing to weigh it
            // against, whose it is cannot be told (R13.1, R15.1: it never counts as the wearer,
            // and the finding does not call it someone else)
            ("just dry enough, alone", vec![cues(-20.0, 10.0, -15.0)], vec![U]),
            ("just dry enough, next to a crowd", vec![cues(-20.0, 10.0, -15.0), cues(-30.0, 5.0, -15.0)], vec![U, O]),
            (
                "just dry enough, next to a reference",
                vec![cues(-19.0, 12.0, -15.0), cues(-20.0, 9.5, -15.0)],
                vec![W, W],
            ),
            ("a hair too reverberant", vec![cues(-19.0, 12.0, -15.0), cues(-20.0, 9.49, -15.0)], vec![W, O]),
            // a loud band-limited radio next to a quieter wearer does not take the reference
            ("radio and wearer", vec![cues(-15.0, 20.0, -45.0), cues(-22.0, 20.0, -15.0)], vec![O, W]),
            ("high band at the threshold", vec![cues(-20.0, 20.0, -40.0)], vec![W]),
            ("high band under the threshold", vec![cues(-20.0, 20.0, -40.1)], vec![O]),
            // the decay needed falls with the SNR: 8.5 dB at 20 dB over the background
            ("a quiet wearer", vec![cues(-30.0, 8.6, -15.0)], vec![U]),
            ("a hair too reverberant, alone", vec![cues(-30.0, 8.4, -15.0)], vec![O]),
            ("a quiet wearer, reference", vec![cues(-30.0, 10.6, -15.0), cues(-31.0, 8.6, -15.0)], vec![W, W]),
            // too faint to judge, or not measured: unknown, and never the reference
            (
                "faint and unmeasured",
                vec![
                    Some(VoiceCues { level_dbfs: -47.5, floor_dbfs: -50.0, decay_db: 2.5, hf_db: -10.0 }),
                    None,
                    cues(-30.0, 15.0, -15.0),
                ],
                vec![U, U, W],
            ),
            ("nothing", vec![], vec![]),
        ];
        for (what, c, expected) in table {
            let mut s: Vec<SpeechSegment> = c.into_iter().enumerate().map(|(i, c)| seg(i as u64, c)).collect();
            assert_eq!(speakers(&mut s, &r), expected, "{what}");
            for x in &s {
                let ok = if x.speaker == U {
                    x.speaker_confidence == 0.0
                } else {
                    (0.5..=1.0).contains(&x.speaker_confidence)
                };
                assert!(ok, "{what}: {x:?}");
            }
        }
    }

    #[test]
    fn a_short_loud_word_does_not_set_the_reference() {
        // R15.1: a 0.3 s shout at -18 would put an explanation at -21.3 more than 3 dB under it;
        // the notification (-20.6, 3 s) is the reference instead, and the explanation is within.
        let r = SpeakerRules::default();
        let mut s =
            vec![seg(0, cues(-20.6, 20.0, -15.0)), seg(1, cues(-21.3, 18.0, -15.0)), seg(2, cues(-18.2, 30.0, -15.0))];
        s[2].end_ns = s[2].start_ns + 300 * MS;
        assert_eq!(speakers(&mut s, &r), vec![W, W, W]);
        // at the minimum length it is a reference like any other
        s[2].end_ns = s[2].start_ns + r.reference_min_ns;
        assert_eq!(speakers(&mut s, &r), vec![W, O, W]);
    }

    #[test]
    fn the_absolute_method_looks_at_level_alone() {
        let r = SpeakerRules { method: Method::AbsoluteLevel, ..SpeakerRules::default() };
        let mut s: Vec<SpeechSegment> = [cues(-29.0, 2.0, -50.0), cues(-30.0, 20.0, -15.0), cues(-30.5, 20.0, -15.0)]
            .into_iter()
            .enumerate()
            .map(|(i, c)| seg(i as u64, c))
            .collect();
        // reverberant and band-limited but loud: the wearer for this method
        assert_eq!(speakers(&mut s, &r), vec![W, W, O]);
    }

    #[test]
    fn attribution_is_the_same_in_any_order_and_sure_far_from_the_threshold() {
        let r = SpeakerRules::default();
        let c = [cues(-20.0, 20.0, -15.0), cues(-35.0, 20.0, -15.0), cues(-22.5, 20.0, -15.0), cues(-18.0, 4.0, -15.0)];
        let mut a: Vec<SpeechSegment> = c.iter().enumerate().map(|(i, c)| seg(i as u64, *c)).collect();
        let mut b: Vec<SpeechSegment> = a.iter().rev().copied().collect();
        let sa = speakers(&mut a, &r);
        let mut sb = speakers(&mut b, &r);
        sb.reverse();
        assert_eq!(sa, sb);
        assert_eq!(sa, vec![W, O, W, O]);
        // 15 dB under the reference is surer to be someone else than 0.5 dB inside the margin is
        // to be the wearer
        assert!(a[1].speaker_confidence > a[2].speaker_confidence, "{a:?}");
        // re-attributing overwrites what was there
        let mut again = a.clone();
        again[0].speaker = O;
        attribute(again.iter_mut(), &r);
        assert_eq!(again, a);
    }
}
