//! Recordings of one device → activities, with their interruptions.

use super::checks::{Explanation, explanation_for, notification_for};
use super::{AnalysisPolicy, RecordingFacts, ns, ns_between};
use crate::speaker::{Reference, SpeakerRules, attribute_against, device_level, effective_reference, own_reference};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One enforcement activity as recorded by one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// Stable within a set of recordings: `id:<station activity id>`, or `auto:<first recording id>`.
    pub key: String,
    pub device_id: String,
    pub activity_id: Option<String>,
    /// Recording ids in time order.
    pub recording_ids: Vec<i64>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Every interruption, in time order, with its explanation check (R12.1, R15.1).
    pub resumptions: Vec<Resumption>,
    /// R13.1: speech at the start of the activity; `None` when the activity continues one from
    /// another device (R15.2), where the hand-over is a resumption instead.
    pub notification: Option<Explanation>,
    /// R15.2: the activity continues one recorded on another device.
    pub handover: Option<Handover>,
    /// R13.1, R15.1: what the voices were weighed against to tell the wearer's speech.
    pub wearer_reference: Reference,
}

/// Where recording stopped and started again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resumption {
    pub kind: ResumptionKind,
    /// When recording stopped and when it resumed, on the corrected timeline.
    pub stopped_at: DateTime<Utc>,
    pub resumed_at: DateTime<Utc>,
    pub gap_ns: u64,
    /// The recording in which recording resumed, and the offset in it.
    pub recording_id: i64,
    pub offset_ns: u64,
    /// R15.1: the spoken explanation found (or not) after the resumption.
    pub explanation: Explanation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResumptionKind {
    /// A new file after a stop.
    BetweenRecordings { before: i64 },
    /// Timestamps jump inside one file.
    InsideRecording,
    /// R15.2: recording went on on this device after another one stopped.
    Handover,
}

/// R15.2: this activity continues one recorded on another device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub from_device: String,
    /// The other device's last recording before the hand-over, if it is known.
    pub from_recording: Option<i64>,
    pub from_ended_at: Option<DateTime<Utc>>,
}

/// Groups one device's recordings into activities and finds every interruption.
///
/// `others` are recordings of other devices, used only to link R15.2 hand-overs.
/// Recordings with the station's activity id group by that id; the rest group by time: a gap of at
/// most `activity_gap_ns` keeps recordings in one activity.
pub fn assemble(recordings: &[RecordingFacts], others: &[RecordingFacts], policy: &AnalysisPolicy) -> Vec<Activity> {
    assemble_with(recordings, others, policy, &SpeakerRules::default())
}

/// [`assemble`] with other speaker-attribution rules (for comparing methods).
///
/// R13.1, R15.1: the speech of each activity is attributed afresh across all its recordings, so
/// the wearer's notification in the first file is the reference for the explanations in later
/// ones; what the probe said per file is only its first guess. An activity with no reference of
/// its own, or one well below the device's wearer level, is weighed against that level: the
/// median of the other activities' references ([`crate::speaker::device_level`]).
pub fn assemble_with(
    recordings: &[RecordingFacts],
    others_devices: &[RecordingFacts],
    policy: &AnalysisPolicy,
    speakers: &SpeakerRules,
) -> Vec<Activity> {
    let mut sorted: Vec<&RecordingFacts> = recordings.iter().collect();
    sorted.sort_by_key(|r| (r.start, r.recording_id));

    let mut groups: Vec<Vec<&RecordingFacts>> = Vec::new();
    let mut by_id: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    let mut last_auto: Option<usize> = None;
    for r in sorted {
        match r.activity_id.as_deref() {
            Some(id) => match by_id.get(id) {
                Some(&g) => groups[g].push(r),
                None => {
                    by_id.insert(id, groups.len());
                    groups.push(vec![r]);
                }
            },
            None => {
                let joins = last_auto.filter(|&g| {
                    let prev_end = groups[g].iter().map(|p| p.end()).max().expect("groups are never empty");
                    r.start <= prev_end + ns(policy.activity_gap_ns) && r.continues_from_device.is_none()
                });
                match joins {
                    Some(g) => groups[g].push(r),
                    None => {
                        last_auto = Some(groups.len());
                        groups.push(vec![r]);
                    }
                }
            }
        }
    }
    // R13.1, R15.1: each activity's own reference first, then the device's wearer level from the
    // others' (this device's activities loaded with it), then the attribution.
    let mut groups: Vec<Vec<RecordingFacts>> = groups.into_iter().map(|g| g.into_iter().cloned().collect()).collect();
    let own: Vec<Option<f32>> =
        groups.iter().map(|g| own_reference(g.iter().flat_map(|r| r.audio.speech()), speakers)).collect();
    let mut activities: Vec<Activity> = groups
        .iter_mut()
        .enumerate()
        .map(|(i, owned)| {
            let others: Vec<f32> = own.iter().enumerate().filter(|&(j, _)| j != i).filter_map(|(_, l)| *l).collect();
            let reference = effective_reference(own[i], device_level(&others, speakers), speakers);
            attribute_against(owned.iter_mut().flat_map(|r| r.audio.speech_mut()), reference, speakers);
            let g: Vec<&RecordingFacts> = owned.iter().collect();
            build(&g, others_devices, policy, reference)
        })
        .collect();
    activities.sort_by_key(|a| (a.start, a.key.clone()));
    activities
}

fn first_stop_after(resumptions: &[Resumption], t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    resumptions.iter().map(|r| r.stopped_at).filter(|&s| s > t).min()
}

fn build(
    group: &[&RecordingFacts],
    others: &[RecordingFacts],
    policy: &AnalysisPolicy,
    wearer_reference: Reference,
) -> Activity {
    let first = group[0];
    let key = match &first.activity_id {
        Some(id) => format!("id:{id}"),
        None => format!("auto:{}", first.recording_id),
    };
    let mut resumptions = Vec::new();
    let mut stopped: Option<(DateTime<Utc>, i64)> = None;
    for r in group {
        if let Some((stop, before)) = stopped
            && r.start > stop
        {
            let gap = ns_between(stop, r.start);
            if gap > policy.interruption_threshold_ns {
                resumptions.push(Resumption {
                    kind: ResumptionKind::BetweenRecordings { before },
                    stopped_at: stop,
                    resumed_at: r.start,
                    gap_ns: gap,
                    recording_id: r.recording_id,
                    offset_ns: 0,
                    explanation: Explanation::Unknown,
                });
            }
        }
        for &(at, length) in &r.pauses {
            if length > policy.interruption_threshold_ns {
                let resumed_at = r.start + ns(at + length);
                resumptions.push(Resumption {
                    kind: ResumptionKind::InsideRecording,
                    stopped_at: r.start + ns(at),
                    resumed_at,
                    gap_ns: length,
                    recording_id: r.recording_id,
                    offset_ns: at + length,
                    explanation: Explanation::Unknown,
                });
            }
        }
        let end = r.end();
        if stopped.is_none_or(|(s, _)| end > s) {
            stopped = Some((end, r.recording_id));
        }
    }
    let start = first.start;
    let handover = first.continues_from_device.as_ref().map(|from| {
        let previous = others
            .iter()
            .filter(|o| &o.device_id == from && o.end() <= start + ns(policy.interruption_threshold_ns))
            .filter(|o| o.end() + ns(policy.activity_gap_ns) >= start)
            .max_by_key(|o| o.end());
        Handover {
            from_device: from.clone(),
            from_recording: previous.map(|p| p.recording_id),
            from_ended_at: previous.map(|p| p.end()),
        }
    });
    let notification = match &handover {
        None => Some(notification_for(group, start, first_stop_after(&resumptions, start), policy)),
        Some(h) => {
            // R15.2 + R15.1: the activity goes on on this device; explain the hand-over on resuming.
            let stopped_at = h.from_ended_at.unwrap_or(start);
            resumptions.insert(
                0,
                Resumption {
                    kind: ResumptionKind::Handover,
                    stopped_at,
                    resumed_at: start,
                    gap_ns: ns_between(stopped_at, start),
                    recording_id: first.recording_id,
                    offset_ns: 0,
                    explanation: Explanation::Unknown,
                },
            );
            None
        }
    };
    resumptions.sort_by_key(|r| r.resumed_at);
    // Each resumption's explanation is sought until recording stops again.
    let stops: Vec<DateTime<Utc>> = resumptions.iter().map(|r| r.stopped_at).collect();
    for r in &mut resumptions {
        let next_stop = stops.iter().copied().filter(|&s| s > r.resumed_at).min();
        r.explanation = explanation_for(group, r.resumed_at, next_stop, policy);
    }
    Activity {
        key,
        device_id: first.device_id.clone(),
        activity_id: first.activity_id.clone(),
        recording_ids: group.iter().map(|r| r.recording_id).collect(),
        start,
        end: group.iter().map(|r| r.end()).max().unwrap_or(start),
        resumptions,
        notification,
        handover,
        wearer_reference,
    }
}
