//! Activities, interruptions and the spoken-word checks (R12.1, R13.1, R15.1, R15.2).
//!
//! Input: what is known of each recording of one device ([`RecordingFacts`]: corrected start,
//! readable duration, pauses inside the file, speech found in its audio). Output: the device's
//! activities ([`Activity`]), each with its interruptions ([`Resumption`]) and the findings they
//! raise. Pure and deterministic: the worker recomputes an activity whenever one of its recordings
//! arrives, in any order, so the result depends only on the set of recordings, never on the order
//! they came in.
//!
//! - [`assemble`]: recordings → activities (by the station's activity id, else by time adjacency).
//! - [`checks`]: the R13.1 notification and R15.1 explanation checks on an assembled activity.
//! - [`findings`]: the findings an activity raises, with stable fingerprints.

mod assemble;
mod checks;
mod findings;
#[cfg(test)]
mod tests;

pub use assemble::{Activity, Handover, Resumption, ResumptionKind, assemble, assemble_with};
pub use checks::{Explanation, SpeechHit, explanation_for, notification_for};
pub use findings::{ActivityFinding, activity_findings};

use crate::probe::{ProbePolicy, ProbeReport, TrackKind, interruptions};
use crate::speech::SpeechSegment;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Thresholds of the analysis; defaults in `pipeline-config/recvault.toml` (`[analysis]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisPolicy {
    /// Recordings of one device closer than this (end to start) belong to one activity, unless
    /// the station's activity ids say otherwise.
    pub activity_gap_ns: u64,
    /// A stop longer than this, between two recordings of an activity or inside one file, is an
    /// interruption that needs a spoken explanation (R15.1).
    pub interruption_threshold_ns: u64,
    /// R15.1: the explanation must start within this long after the resumption...
    pub explanation_window_ns: u64,
    /// ...and last at least this long.
    pub explanation_min_speech_ns: u64,
    /// R13.1: speech must start within this long after the activity starts...
    pub notification_window_ns: u64,
    /// ...and last at least this long.
    pub notification_min_speech_ns: u64,
}

const S: u64 = 1_000_000_000;

impl Default for AnalysisPolicy {
    fn default() -> Self {
        Self {
            activity_gap_ns: 30 * 60 * S,
            interruption_threshold_ns: 3 * S,
            explanation_window_ns: 30 * S,
            explanation_min_speech_ns: 2 * S,
            notification_window_ns: 60 * S,
            notification_min_speech_ns: S,
        }
    }
}

/// What the audio of a recording allows the checks to say.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", content = "speech", rename_all = "snake_case")]
pub enum Audio {
    /// Speech segments found (possibly none).
    Analysed(Vec<SpeechSegment>),
    /// No audio track, or digital silence throughout (audio_missing): nothing was said that
    /// could be heard.
    Missing,
    /// The file was never finalised (no index): its tracks cannot be read until it is recovered.
    Unfinalized,
    /// Not analysed (speech analysis off, or decoding failed): nothing can be checked.
    Unknown,
}

/// One recording as the analysis sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingFacts {
    pub recording_id: i64,
    pub device_id: String,
    /// The station's activity id, if it sent one.
    pub activity_id: Option<String>,
    /// Start on the corrected timeline (device clock + offset measured at docking, R11.1).
    pub start: DateTime<Utc>,
    /// Readable duration, ns (pauses inside the file included).
    pub duration_ns: u64,
    /// Pauses inside the file, `(at_ns, length_ns)` on the file timeline.
    pub pauses: Vec<(u64, u64)>,
    pub audio: Audio,
    /// R15.2: the station says this recording continues an activity recorded on another device.
    pub continues_from_device: Option<String>,
}

impl RecordingFacts {
    pub fn end(&self) -> DateTime<Utc> {
        self.start + ns(self.duration_ns)
    }
}

impl Audio {
    /// What a probe report allows the checks to say about a recording's audio.
    pub fn of(report: &ProbeReport) -> Self {
        // No index, or one cut short: an unfinalized recording, not one without audio.
        if report.container.moov_offset.is_none() || report.tracks.is_empty() {
            return Self::Unfinalized;
        }
        if !report.tracks.iter().any(|t| t.kind == TrackKind::Audio) {
            return Self::Missing;
        }
        match &report.audio {
            None => Self::Unknown,
            Some(a) if a.digital_silence => Self::Missing,
            Some(a) => Self::Analysed(a.speech.clone()),
        }
    }

    /// The speech segments found; none unless analysed.
    pub fn speech(&self) -> &[SpeechSegment] {
        match self {
            Self::Analysed(segments) => segments,
            Self::Missing | Self::Unfinalized | Self::Unknown => &[],
        }
    }

    /// [`Self::speech`], to attribute.
    pub fn speech_mut(&mut self) -> &mut [SpeechSegment] {
        match self {
            Self::Analysed(segments) => segments,
            Self::Missing | Self::Unfinalized | Self::Unknown => &mut [],
        }
    }
}

/// The pauses inside a file, as `(at_ns, length_ns)`, from its probe report.
pub fn pauses_of(report: &ProbeReport, probe: &ProbePolicy) -> Vec<(u64, u64)> {
    interruptions(report, probe).into_iter().map(|i| (i.at_ns, i.length_ns)).collect()
}

pub(crate) fn ns(v: u64) -> chrono::TimeDelta {
    chrono::TimeDelta::nanoseconds(i64::try_from(v).unwrap_or(i64::MAX))
}

pub(crate) fn ns_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u64 {
    u64::try_from((b - a).num_nanoseconds().unwrap_or(i64::MAX).max(0)).unwrap_or(0)
}
