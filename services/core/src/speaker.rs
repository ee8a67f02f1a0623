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
//!
//! An activity where the wearer never speaks dry enough to set a reference, or where a radio or
//! a party is the only close voice, borrows the **device's wearer level** ([`device_level`]):
//! the median of the references of the device's other activities that the analysis loads with it
//! (the same shift; R9.1: each device has its custodian, so normally the same officer on the same
//! microphone). An activity's own reference more than [`SpeakerRules::device_margin_db`] below
//! that level is not its wearer's, and the device's level is used instead ([`effective_reference`]).
//! Against a borrowed level a voice must come closer ([`SpeakerRules::device_reference_margin_db`]).

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
    /// [`Method::Relative`]: the references of at least this many other activities of the device
    /// give its wearer level ([`device_level`]); 0 never borrows it (each activity on its own).
    pub device_min_activities: usize,
    /// [`Method::Relative`]: an activity's own reference this far below the device's wearer level
    /// or further is someone else's (a radio or a party that was the only close voice), dB.
    pub device_margin_db: f32,
    /// [`Method::Relative`]: weighed against the device's wearer level, a close-sounding segment
    /// this far below it or less is the wearer, dB. Tighter than [`Self::reference_margin_db`]:
    /// the level is borrowed from other activities (the officer's effort differs from one to the
    /// next), and radios and parties come within 2–9 dB of the wearer (`ACCURACY.md`).
    pub device_reference_margin_db: f32,
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
            device_min_activities: 2,
            device_margin_db: 4.0,
            device_reference_margin_db: 1.0,
        }
    }
}

/// What the wearer's speech in a set was weighed against (R13.1, R15.1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Reference {
    /// The set's own: its loudest segment that sounds clearly close (normally the notification).
    Own { level_dbfs: f32 },
    /// The device's wearer level, from the references of its other activities.
    Device { level_dbfs: f32, activities: usize },
    /// Neither: close-sounding voices cannot be told apart, and none counts as the wearer.
    None,
}

impl Reference {
    /// The level the set's voices are weighed against.
    pub fn level_dbfs(self) -> Option<f32> {
        match self {
            Self::Own { level_dbfs } | Self::Device { level_dbfs, .. } => Some(level_dbfs),
            Self::None => None,
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Own { level_dbfs } => write!(f, "the activity's own reference voice ({level_dbfs:.1} dBFS)"),
            Self::Device { level_dbfs, activities } => {
                write!(f, "the device's wearer level ({level_dbfs:.1} dBFS, from {activities} other activities)")
            }
            Self::None => write!(f, "no reference voice (a close voice cannot be attributed)"),
        }
    }
}

/// The device's wearer level: the median of its other activities' own references, when at least
/// [`SpeakerRules::device_min_activities`] have one. The median, so that one activity whose only
/// close voice was a radio does not move it.
pub fn device_level(references: &[f32], r: &SpeakerRules) -> Option<(f32, usize)> {
    if r.method != Method::Relative || r.device_min_activities == 0 || references.len() < r.device_min_activities {
        return None;
    }
    let mut v: Vec<f32> = references.iter().copied().filter(|l| l.is_finite()).collect();
    if v.len() < r.device_min_activities {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Some((median, n))
}

/// What a set is weighed against, given its own reference and the device's wearer level: its own,
/// unless it has none or it lies more than [`SpeakerRules::device_margin_db`] below the device's
/// (then it is not the wearer's: the device's level is used). An own reference above the device's
/// is kept (the wearer speaking up).
pub fn effective_reference(own: Option<f32>, device: Option<(f32, usize)>, r: &SpeakerRules) -> Reference {
    match (own, device) {
        (Some(o), Some((d, _))) if o >= d - r.device_margin_db => Reference::Own { level_dbfs: o },
        (_, Some((d, n))) => Reference::Device { level_dbfs: d, activities: n },
        (Some(o), None) => Reference::Own { level_dbfs: o },
        (None, None) => Reference::None,
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

/// The judged cues of a segment: none when it has no cues or stands too little above its
/// background to say anything.
fn judged(s: &SpeechSegment, r: &SpeakerRules) -> Option<VoiceCues> {
    s.cues.filter(|c| c.snr_db() >= r.min_snr_db)
}

/// A set's own reference level ([`Method::Relative`]; none for the others): its loudest segment,
/// at least [`SpeakerRules::reference_min_ns`] long, that sounds clearly close.
pub fn own_reference<'a>(segments: impl IntoIterator<Item = &'a SpeechSegment>, r: &SpeakerRules) -> Option<f32> {
    if r.method != Method::Relative {
        return None;
    }
    segments
        .into_iter()
        .filter(|s| s.duration_ns() >= r.reference_min_ns)
        .filter_map(|s| judged(s, r))
        .filter(|c| closeness(c, r, r.reference_decay_db) >= 0.0)
        .map(|c| c.level_dbfs)
        .fold(None, |m: Option<f32>, l| Some(m.map_or(l, |m| m.max(l))))
}

/// Attributes every segment of one set (a file's, or an activity's across its files) against its
/// own reference: sets `speaker` and `speaker_confidence`. Segments without cues, too faint to
/// judge, or sounding close in a set with no reference to weigh them against, are `unknown`.
pub fn attribute<'a>(segments: impl IntoIterator<Item = &'a mut SpeechSegment>, r: &SpeakerRules) -> Reference {
    let segments: Vec<&mut SpeechSegment> = segments.into_iter().collect();
    let own = own_reference(segments.iter().map(|s| &**s), r);
    let reference = effective_reference(own, None, r);
    attribute_against(segments, reference, r);
    reference
}

/// [`attribute`] against a reference already chosen ([`effective_reference`]).
pub fn attribute_against<'a>(
    segments: impl IntoIterator<Item = &'a mut SpeechSegment>,
    reference: Reference,
    r: &SpeakerRules,
) {
    let margin_db = match reference {
        Reference::Device { .. } => r.device_reference_margin_db,
        Reference::Own { .. } | Reference::None => r.reference_margin_db,
    };
    let reference = reference.level_dbfs();
    for s in segments {
        let Some(c) = judged(s, r) else {
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
                    Some(re) => close.min((c.level_dbfs - (re - margin_db)) / 3.0),
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
    fn the_devices_wearer_level_is_the_median_of_enough_other_references() {
        let r = SpeakerRules::default();
        assert_eq!(device_level(&[], &r), None);
        assert_eq!(device_level(&[-20.0], &r), None, "one activity is too few");
        assert_eq!(device_level(&[-20.0, -22.0], &r), Some((-21.0, 2)));
        // one activity whose only close voice was a radio does not move the median
        assert_eq!(device_level(&[-20.0, -35.0, -21.0], &r), Some((-21.0, 3)));
        assert_eq!(device_level(&[-20.0, f32::NAN, -22.0], &r), Some((-21.0, 2)));
        assert_eq!(device_level(&[-20.0, f32::NAN], &r), None);
        let off = SpeakerRules { device_min_activities: 0, ..r };
        assert_eq!(device_level(&[-20.0, -22.0], &off), None, "0 never borrows");
        let absolute = SpeakerRules { method: Method::AbsoluteLevel, ..r };
        assert_eq!(device_level(&[-20.0, -22.0], &absolute), None);
    }

    #[test]
    fn an_own_reference_well_under_the_devices_level_is_not_the_wearers() {
        let r = SpeakerRules::default();
        let d = Some((-20.0, 3));
        let table = [
            (None, None, Reference::None),
            (Some(-25.0), None, Reference::Own { level_dbfs: -25.0 }),
            (None, d, Reference::Device { level_dbfs: -20.0, activities: 3 }),
            // at the margin (4 dB under) it is kept; a hair further it is someone else
            (Some(-24.0), d, Reference::Own { level_dbfs: -24.0 }),
            (Some(-24.01), d, Reference::Device { level_dbfs: -20.0, activities: 3 }),
            // louder than the device's level: the wearer speaking up
            (Some(-12.0), d, Reference::Own { level_dbfs: -12.0 }),
        ];
        for (own, device, expected) in table {
            assert_eq!(effective_reference(own, device, &r), expected, "{own:?} {device:?}");
        }
        // weighed against the device's level, a close voice within 1 dB of it is the wearer's;
        // against its own reference, within 3 dB
        let mut s = [seg(0, cues(-20.9, 10.0, -15.0)), seg(1, cues(-21.1, 20.0, -15.0))];
        attribute_against(s.iter_mut(), Reference::Device { level_dbfs: -20.0, activities: 3 }, &r);
        assert_eq!(s.iter().map(|s| s.speaker).collect::<Vec<_>>(), vec![W, O]);
        attribute_against(s.iter_mut(), Reference::Own { level_dbfs: -20.0 }, &r);
        assert_eq!(s.iter().map(|s| s.speaker).collect::<Vec<_>>(), vec![W, W]);
        let mut s = [seg(0, cues(-22.9, 10.0, -15.0)), seg(1, cues(-23.1, 20.0, -15.0))];
        // and attribute reports what it weighed against
        assert_eq!(attribute(s.iter_mut(), &r), Reference::Own { level_dbfs: -23.1 });
        assert_eq!(s.iter().map(|s| s.speaker).collect::<Vec<_>>(), vec![W, W]);
        assert_eq!(attribute(s[..1].iter_mut(), &r), Reference::None);
        let said = Reference::Device { level_dbfs: -20.04, activities: 3 }.to_string();
        assert_eq!(said, "the device's wearer level (-20.0 dBFS, from 3 other activities)");
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
