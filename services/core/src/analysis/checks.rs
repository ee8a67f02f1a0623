//! R13.1 and R15.1: is there speech where the rules ask for it, in the voice of the officer
//! wearing the recorder? Speech attributed to anyone else (or to no one: whose cannot be told) is
//! reported as what was heard instead, never as the notification or an explanation.

use super::{AnalysisPolicy, Audio, RecordingFacts, ns, ns_between};
use crate::speech::Speaker;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The outcome of a spoken-word check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Explanation {
    /// Speech long enough started inside the window.
    Found(SpeechHit),
    /// The audio was analysed and holds no such speech from the wearer. `nearest` is the wearer's
    /// first speech after the moment, if any (too short, or too late), and `heard` the longest
    /// speech by someone else (or whose cannot be told) inside the window that would otherwise
    /// have counted: what the supervisor should listen to.
    Missing {
        nearest: Option<SpeechHit>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heard: Option<SpeechHit>,
    },
    /// R15.1: the recording that resumed has no audio (no audio track, or digital silence
    /// throughout). The rule asks for a spoken explanation and there is none to hear: unexplained.
    NoAudio,
    /// The recording at that moment was never finalised (no index): nothing in it can be read
    /// until it is recovered, so the check cannot run.
    Unfinalized,
    /// The audio at that moment was not analysed (speech analysis off, or decoding failed).
    Unknown,
}

impl Explanation {
    /// Whether the speech the rule asks for is known to be absent (a finding is due).
    pub fn is_missing(&self) -> bool {
        matches!(self, Self::Missing { .. } | Self::NoAudio)
    }

    /// Whether the check could not run at all.
    pub fn is_unchecked(&self) -> bool {
        matches!(self, Self::Unfinalized | Self::Unknown)
    }
}

/// For people reading an evaluation or a log: "missing: heard other speech 4.0 s long, 4.9 s
/// after (73 % sure whose)".
impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Found(hit) => write!(f, "found: {hit}"),
            Self::Missing { nearest: None, heard: None } => f.write_str("missing: no speech"),
            Self::Missing { nearest, heard } => {
                f.write_str("missing:")?;
                if let Some(h) = heard {
                    write!(f, " heard {h}")?;
                }
                if let Some(n) = nearest {
                    let (secs, sep) = (|ms: u64| ms as f64 / 1000.0, if heard.is_some() { ";" } else { "" });
                    write!(
                        f,
                        "{sep} the wearer's nearest speech {:.1} s long, {:.1} s after (recording {})",
                        secs(n.duration_ms),
                        secs(n.after_ms),
                        n.recording_id
                    )?;
                }
                Ok(())
            }
            Self::NoAudio => f.write_str("missing: no audio"),
            Self::Unfinalized => f.write_str("unchecked: unfinalized recording"),
            Self::Unknown => f.write_str("unchecked: audio not analysed"),
        }
    }
}

impl std::fmt::Display for SpeechHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = |ms: u64| ms as f64 / 1000.0;
        write!(
            f,
            "{} speech {:.1} s long, {:.1} s after (recording {}, {:.0} % sure whose)",
            self.speaker.as_str(),
            secs(self.duration_ms),
            secs(self.after_ms),
            self.recording_id,
            self.speaker_confidence * 100.0
        )
    }
}

/// A speech segment placed on the corrected timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeechHit {
    pub recording_id: i64,
    pub start: DateTime<Utc>,
    /// Seconds after the moment checked (resumption or activity start), ms.
    pub after_ms: u64,
    pub duration_ms: u64,
    pub confidence: f32,
    /// R13.1, R15.1: who spoke it (`unknown` in results computed before attribution existed).
    #[serde(default)]
    pub speaker: Speaker,
    #[serde(default)]
    pub speaker_confidence: f32,
}

/// R15.1: the wearer's speech of at least `explanation_min_speech_ns` starting within
/// `explanation_window_ns` after `resumed_at`, and before recording stops again (`next_stop`): speech after a later stop
/// explains that stop, not this one.
pub fn explanation_for(
    group: &[&RecordingFacts],
    resumed_at: DateTime<Utc>,
    next_stop: Option<DateTime<Utc>>,
    p: &AnalysisPolicy,
) -> Explanation {
    let check = speech_check(group, resumed_at, next_stop, p.explanation_window_ns, p.explanation_min_speech_ns);
    match check {
        // R15.1 asks for a spoken explanation: a recording without audio gives none.
        Checked::NoAudio => Explanation::NoAudio,
        Checked::Done(e) => e,
    }
}

/// R13.1: the wearer's speech of at least `notification_min_speech_ns` starting within
/// `notification_window_ns` after the activity starts, and before recording first stops.
pub fn notification_for(
    group: &[&RecordingFacts],
    start: DateTime<Utc>,
    first_stop: Option<DateTime<Utc>>,
    p: &AnalysisPolicy,
) -> Explanation {
    match speech_check(group, start, first_stop, p.notification_window_ns, p.notification_min_speech_ns) {
        // R13.1 for a recording without audio is the recording's own `audio_missing` finding.
        Checked::NoAudio => Explanation::Unknown,
        Checked::Done(e) => e,
    }
}

/// A speech check, before the rule says what missing audio means for it.
enum Checked {
    NoAudio,
    Done(Explanation),
}

fn speech_check(
    group: &[&RecordingFacts],
    from: DateTime<Utc>,
    stop: Option<DateTime<Utc>>,
    window_ns: u64,
    min_ns: u64,
) -> Checked {
    let until = stop.map_or(from + ns(window_ns), |s| s.min(from + ns(window_ns)));
    // The recording that holds the moment decides whether the audio there can be checked.
    let holder = group.iter().find(|r| r.start <= from && from < r.end().max(r.start + ns(1)));
    match holder.map(|r| &r.audio) {
        Some(Audio::Missing) => return Checked::NoAudio,
        Some(Audio::Unfinalized) => return Checked::Done(Explanation::Unfinalized),
        Some(Audio::Unknown) => return Checked::Done(Explanation::Unknown),
        Some(Audio::Analysed(_)) | None => {}
    }
    let mut hits: Vec<SpeechHit> = group
        .iter()
        .filter_map(|r| match &r.audio {
            Audio::Analysed(segments) => Some((r, segments)),
            _ => None,
        })
        .flat_map(|(r, segments)| {
            segments.iter().map(move |s| SpeechHit {
                recording_id: r.recording_id,
                start: r.start + ns(s.start_ns),
                after_ms: 0,
                duration_ms: s.duration_ns() / 1_000_000,
                confidence: s.confidence,
                speaker: s.speaker,
                speaker_confidence: s.speaker_confidence,
            })
        })
        .filter(|h| h.start >= from)
        .map(|mut h| {
            h.after_ms = ns_between(from, h.start) / 1_000_000;
            h
        })
        .collect();
    hits.sort_by_key(|h| h.start);
    let counts = |h: &&SpeechHit| h.start <= until && h.duration_ms * 1_000_000 >= min_ns;
    // R13.1, R15.1: only the wearer's voice gives the notification or an explanation.
    Checked::Done(match hits.iter().filter(|h| h.speaker == Speaker::Wearer).find(counts) {
        Some(h) => Explanation::Found(h.clone()),
        None => Explanation::Missing {
            nearest: hits.iter().find(|h| h.speaker == Speaker::Wearer).cloned(),
            heard: hits
                .iter()
                .filter(|h| h.speaker != Speaker::Wearer)
                .filter(counts)
                .max_by_key(|h| h.duration_ms)
                .cloned(),
        },
    })
}
