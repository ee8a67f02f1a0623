//! The findings an assembled activity raises, each with a fingerprint that stays the same when the
//! activity is recomputed, so unchanged findings keep their identity and new or withdrawn ones can
//! be told apart.

use super::{Activity, Explanation, ResumptionKind, SpeechHit};
use crate::finding::{Finding, FindingKind, Severity};
use crate::speech::Speaker;
use serde_json::json;

/// A finding on one recording of an activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityFinding {
    /// The recording the finding is about (where speech was due).
    pub recording_id: i64,
    /// Stable identity: kind, recording and moment.
    pub fingerprint: String,
    pub finding: Finding,
}

fn ms_of(ns: u64) -> u64 {
    ns / 1_000_000
}

/// What was heard instead of the wearer's notification or explanation (R13.1, R15.1): "only
/// distant speech after the resumption (3.2 s of it, 1.0 s after)", then the wearer's first
/// speech if any ("the wearer's first speech 40.0 s after, lasting 2.5 s"), or `none` when there
/// was no speech at all.
fn heard_instead(
    nearest: Option<&SpeechHit>,
    heard: Option<&SpeechHit>,
    after: &str,
    moment: &str,
    none: &str,
) -> String {
    let secs = |ms: u64| ms as f64 / 1000.0;
    let other = heard.map(|h| {
        let whose = match h.speaker {
            Speaker::Unknown => {
                "speech that could not be attributed (too faint, or no reference voice in the activity)"
            }
            _ => "distant speech (not the wearer's voice)",
        };
        format!("only {whose} {after} {moment} ({:.1} s of it, {:.1} s {after})", secs(h.duration_ms), secs(h.after_ms))
    });
    let wearer = nearest.map(|n| {
        format!("the wearer's first speech {:.1} s {after}, lasting {:.1} s", secs(n.after_ms), secs(n.duration_ms))
    });
    match (other, wearer) {
        (Some(o), Some(w)) => format!("{o}; {w}"),
        (Some(o), None) => o,
        (None, Some(w)) => w,
        (None, None) => none.into(),
    }
}

/// R12.1, R13.1, R15.1, R15.2: the findings of one activity.
pub fn activity_findings(a: &Activity, policy: &super::AnalysisPolicy) -> Vec<ActivityFinding> {
    let mut out = Vec::new();
    let window_s = policy.explanation_window_ns / 1_000_000_000;
    let min_s = policy.explanation_min_speech_ns as f64 / 1e9;
    for r in &a.resumptions {
        let at = r.resumed_at.timestamp_millis();
        let base = json!({
            "activity": a.key,
            "kind": r.kind,
            "stopped_at": r.stopped_at,
            "resumed_at": r.resumed_at,
            "gap_ms": ms_of(r.gap_ns),
            "offset_in_recording_ms": ms_of(r.offset_ns),
            "explanation": r.explanation,
        });
        match r.kind {
            // Inside-file pauses are already `timestamp_gap` findings of the recording (R12.1).
            ResumptionKind::InsideRecording => {}
            ResumptionKind::BetweenRecordings { before } => out.push(ActivityFinding {
                recording_id: r.recording_id,
                fingerprint: format!("interruption:{}:{at}", r.recording_id),
                finding: Finding {
                    kind: FindingKind::Interruption,
                    severity: Severity::Warning,
                    summary: format!(
                        "recording stopped for {} s before this file (after recording {before})",
                        r.gap_ns / 1_000_000_000
                    ),
                    evidence: base.clone(),
                },
            }),
            ResumptionKind::Handover => {}
        }
        let what = match &r.explanation {
            Explanation::Missing { nearest, heard } => {
                Some(heard_instead(nearest.as_ref(), heard.as_ref(), "after", "the resumption", "no speech after it"))
            }
            Explanation::NoAudio => Some(
                "the recording that resumed has no audio (no audio track, or digital silence): there is no spoken explanation to hear".into(),
            ),
            _ => None,
        };
        if let Some(what) = what {
            out.push(ActivityFinding {
                recording_id: r.recording_id,
                fingerprint: format!("interruption_unexplained:{}:{at}", r.recording_id),
                finding: Finding {
                    kind: FindingKind::InterruptionUnexplained,
                    severity: Severity::Warning,
                    summary: format!(
                        "no spoken explanation by the wearer (speech of {min_s:.1} s within {window_s} s, before the next stop) after a {:.0} s stop: {what}",
                        r.gap_ns as f64 / 1e9
                    ),
                    evidence: base,
                },
            });
        }
    }
    if let Some(Explanation::Missing { nearest, heard }) = &a.notification {
        let first = a.recording_ids[0];
        let what = heard_instead(nearest.as_ref(), heard.as_ref(), "in", "the activity's start", "no speech at all");
        out.push(ActivityFinding {
            recording_id: first,
            fingerprint: format!("notification_missing:{first}:{}", a.start.timestamp_millis()),
            finding: Finding {
                kind: FindingKind::NotificationMissing,
                severity: Severity::Warning,
                summary: format!(
                    "no speech by the wearer of {:.1} s within {} s of the activity's start (before recording first stopped): {what}",
                    policy.notification_min_speech_ns as f64 / 1e9,
                    policy.notification_window_ns / 1_000_000_000
                ),
                evidence: json!({ "activity": a.key, "start": a.start, "notification": a.notification }),
            },
        });
    }
    if let Some(h) = &a.handover {
        let first = a.recording_ids[0];
        out.push(ActivityFinding {
            recording_id: first,
            fingerprint: format!("device_handover:{first}"),
            finding: Finding {
                kind: FindingKind::DeviceHandover,
                severity: Severity::Info,
                summary: format!(
                    "continues recording from device {}{}: report to the unit head and file a written explanation",
                    h.from_device,
                    h.from_recording.map(|r| format!(" (recording {r})")).unwrap_or_default()
                ),
                evidence: json!({ "activity": a.key, "handover": h }),
            },
        });
    }
    out
}
