//! Findings (what a recording is flagged for) and rejections (why bytes went to quarantine).
//!
//! Every kind names the requirement it serves, so a supervisor reading a finding can look up the rule.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How much a finding matters to a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn code(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

macro_rules! finding_kinds {
    ($($variant:ident = $code:literal, $req:literal, $doc:literal;)*) => {
        /// What a recording is flagged for. The code is stable (database, metrics label).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum FindingKind {
            $(#[doc = $doc] #[serde(rename = $code)] $variant,)*
        }

        impl FindingKind {
            pub const ALL: &'static [FindingKind] = &[$(Self::$variant),*];

            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code,)* }
            }

            /// The requirement ID the finding serves.
            pub fn requirement(self) -> &'static str {
                match self { $(Self::$variant => $req,)* }
            }

            pub fn from_code(code: &str) -> Option<Self> {
                match code { $($code => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

finding_kinds! {
    Truncated = "truncated", "R2.1", "The file ends before its own structure says it should: bytes are missing.";
    Unfinalized = "unfinalized", "R2.1", "The recorder never finished the file (no index): nothing can be played without repair.";
    TrailingData = "trailing_data", "R2.1", "Bytes after the last box do not form a box: padding or a damaged tail.";
    TimestampGap = "timestamp_gap", "R12.1", "Timestamps inside one file jump: recording stopped and resumed without a new file.";
    NoVideoTrack = "no_video_track", "R14.1", "The file has no video track.";
    AudioMissing = "audio_missing", "R13.1", "The file has no audio track or its audio is silent: notification and explanations cannot be checked.";
    Interruption = "interruption", "R12.1", "Recording stopped and resumed within one activity.";
    InterruptionUnexplained = "interruption_unexplained", "R15.1", "No spoken explanation after recording resumed.";
    NotificationMissing = "notification_missing", "R13.1", "No speech at the start of the activity: the party was not told it is recorded.";
    DeviceHandover = "device_handover", "R15.2", "Recording went on on another device; a written explanation is due.";
    ClockOffset = "clock_offset", "R11.1", "The recorder's clock differed from the station's at docking.";
    LateUpload = "late_upload", "R17.1", "The recording reached the system after its deadline.";
    JobIdConflict = "job_id_conflict", "R2.1", "A station reused a completed job's id for other bytes or facts: the new job was held back and its bytes kept in staging.";
    ArchiveDrift = "archive_drift", "R21.1", "The archive and the database disagree: an object missing, unlocked, re-tagged or unrecorded.";
    Recovered = "recovered", "R2.1", "The recorder never finished the file; its media was recovered into a separate file (with a finished recording of the same device as reference), and the speech and interruption checks use the recovered media.";
    FixityMismatch = "fixity_mismatch", "R2.1", "An archived recording no longer hashes to the SHA-256 recorded at ingest (found while bundling it).";
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One finding about one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    /// One line for a person.
    pub summary: String,
    /// Machine-readable facts behind it (times in milliseconds, byte offsets).
    pub evidence: serde_json::Value,
}

impl Finding {
    pub fn requirement(&self) -> &'static str {
        self.kind.requirement()
    }
}

/// Why a file cannot be archived as a recording. The bytes are still kept, in quarantine (R2.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Rejection {
    /// The staged object has no bytes.
    EmptyFile,
    /// The bytes differ from what the station read off the recorder.
    HashMismatch { algorithm: String, claimed: String, observed: String },
    /// The staged object's size differs from the station's.
    SizeMismatch { claimed: u64, observed: u64 },
    /// Not an ISO base media (MP4) file at all.
    NotMp4 { detail: String },
    /// An MP4 structure that the demuxer cannot read.
    UnreadableContainer { detail: String },
}

impl Rejection {
    /// Stable machine code (dead-letter header, database, metrics).
    pub fn code(&self) -> &'static str {
        match self {
            Self::EmptyFile => "empty_file",
            Self::HashMismatch { .. } => "hash_mismatch",
            Self::SizeMismatch { .. } => "size_mismatch",
            Self::NotMp4 { .. } => "not_mp4",
            Self::UnreadableContainer { .. } => "unreadable_container",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyFile => write!(f, "the file is empty"),
            Self::HashMismatch { algorithm, claimed, observed } => {
                write!(f, "{algorithm} mismatch: station claimed {claimed}, bytes hash to {observed}")
            }
            Self::SizeMismatch { claimed, observed } => {
                write!(f, "size mismatch: station claimed {claimed} bytes, staged object has {observed}")
            }
            Self::NotMp4 { detail } => write!(f, "not an mp4 file: {detail}"),
            Self::UnreadableContainer { detail } => write!(f, "unreadable mp4 container: {detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_codes_round_trip_and_cite_a_requirement() {
        for &k in FindingKind::ALL {
            assert_eq!(FindingKind::from_code(k.code()), Some(k));
            assert!(k.requirement().starts_with('R'), "{k}");
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(k.code()));
        }
    }

    #[test]
    fn rejection_serialises_with_its_code() {
        let r = Rejection::SizeMismatch { claimed: 10, observed: 9 };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["code"], r.code());
        assert_eq!(v["claimed"], 10);
        assert!(r.to_string().contains("claimed 10"));
    }
}
