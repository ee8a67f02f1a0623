//! Table-driven tests of activity assembly and the spoken-word checks (R12.1, R13.1, R15.1, R15.2).

use super::*;
use crate::finding::FindingKind;
use crate::speech::{Speaker, VoiceCues};
use chrono::TimeZone;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).unwrap()
}

/// The wearer's voice as the probe measures it: loud and dry (R13.1, R15.1 count only this).
const WEARER: VoiceCues = VoiceCues { level_dbfs: -20.0, floor_dbfs: -50.0, decay_db: 25.0, hf_db: -15.0 };
/// A bystander a few metres away: 12 dB quieter and reverberant.
const CROWD: VoiceCues = VoiceCues { level_dbfs: -32.0, floor_dbfs: -50.0, decay_db: 5.0, hf_db: -24.0 };
/// Barely above the background: nobody can tell whose.
const FAINT: VoiceCues = VoiceCues { level_dbfs: -48.0, floor_dbfs: -50.0, decay_db: 2.0, hf_db: -20.0 };

fn spoken(start_ms: u64, dur_ms: u64, cues: VoiceCues) -> SpeechSegment {
    SpeechSegment {
        start_ns: start_ms * MS,
        end_ns: (start_ms + dur_ms) * MS,
        confidence: 0.9,
        // what the probe guessed is overwritten by the activity's attribution
        speaker: Speaker::Other,
        speaker_confidence: 0.0,
        cues: Some(cues),
    }
}

fn speech(start_ms: u64, dur_ms: u64) -> SpeechSegment {
    spoken(start_ms, dur_ms, WEARER)
}

/// A recording starting `at_ms` after t0, lasting `dur_s`, with speech (file-relative ms).
fn rec(id: i64, at_ms: u64, dur_s: u64, speech_ms: &[(u64, u64)]) -> RecordingFacts {
    RecordingFacts {
        recording_id: id,
        device_id: "DSJ-1".into(),
        activity_id: None,
        start: t0() + ns(at_ms * MS),
        duration_ns: dur_s * S,
        pauses: vec![],
        audio: Audio::Analysed(speech_ms.iter().map(|&(s, d)| speech(s, d)).collect()),
        continues_from_device: None,
    }
}

fn notified(r: RecordingFacts) -> RecordingFacts {
    let mut r = r;
    if let Audio::Analysed(s) = &mut r.audio {
        s.insert(0, speech(500, 7000));
    }
    r
}

fn policy() -> AnalysisPolicy {
    AnalysisPolicy::default()
}

fn kinds(a: &Activity) -> Vec<FindingKind> {
    activity_findings(a, &policy()).into_iter().map(|f| f.finding.kind).collect()
}

#[test]
fn r12_1_gaps_at_and_around_the_interruption_threshold() {
    // first file 60 s; the second starts `gap` ms after it ends
    for (gap_ms, interrupted) in
        [(0, false), (1_000, false), (2_999, false), (3_000, false), (3_001, true), (10_000, true), (29 * 60_000, true)]
    {
        let a = notified(rec(1, 0, 60, &[]));
        let b = rec(2, 60_000 + gap_ms, 60, &[(1_000, 3_000)]);
        let acts = assemble(&[a, b], &[], &policy());
        assert_eq!(acts.len(), 1, "gap {gap_ms} ms stays one activity");
        assert_eq!(acts[0].resumptions.len(), usize::from(interrupted), "gap {gap_ms} ms");
        if interrupted {
            let r = &acts[0].resumptions[0];
            assert_eq!(r.gap_ns, gap_ms * MS);
            assert_eq!(r.recording_id, 2);
            assert_eq!(r.kind, ResumptionKind::BetweenRecordings { before: 1 });
            assert_eq!(kinds(&acts[0]), vec![FindingKind::Interruption], "explained: only the R12.1 finding");
        }
    }
}

#[test]
fn r15_1_explanation_window_and_minimum_length() {
    // (speech start after resumption, duration) -> explained?
    for (start_ms, dur_ms, explained) in [
        (0, 2_000, true),
        (500, 5_000, true),
        (29_900, 2_500, true),
        (30_000, 2_000, true),
        (30_001, 5_000, false),
        (45_000, 5_000, false),
        (1_000, 1_999, false),
        (1_000, 2_000, true),
    ] {
        let a = notified(rec(1, 0, 60, &[]));
        let b = rec(2, 120_000, 90, &[(start_ms, dur_ms)]);
        let acts = assemble(&[a, b], &[], &policy());
        let r = &acts[0].resumptions[0];
        assert_eq!(
            !r.explanation.is_missing(),
            explained,
            "speech at +{start_ms} ms for {dur_ms} ms: {:?}",
            r.explanation
        );
        let ks = kinds(&acts[0]);
        assert_eq!(ks.contains(&FindingKind::InterruptionUnexplained), !explained);
        if !explained {
            let Explanation::Missing { nearest, heard: None } = &r.explanation else { unreachable!() };
            let n = nearest.as_ref().expect("the speech there was is shown");
            assert_eq!(n.after_ms, start_ms);
            assert_eq!(n.duration_ms, dur_ms);
        }
    }
}

#[test]
fn r15_1_no_speech_at_all_is_unexplained_and_so_is_a_resumption_without_audio() {
    let a = notified(rec(1, 0, 60, &[]));
    let b = rec(2, 100_000, 60, &[]);
    let acts = assemble(&[a.clone(), b.clone()], &[], &policy());
    assert_eq!(acts[0].resumptions[0].explanation, Explanation::Missing { nearest: None, heard: None });
    // R15.1 asks for a spoken explanation: a recording without audio gives none, and says why.
    let mut mute = b.clone();
    mute.audio = Audio::Missing;
    let acts = assemble(&[a.clone(), mute], &[], &policy());
    assert_eq!(acts[0].resumptions[0].explanation, Explanation::NoAudio);
    assert_eq!(kinds(&acts[0]), vec![FindingKind::Interruption, FindingKind::InterruptionUnexplained]);
    let f = activity_findings(&acts[0], &policy());
    let unexplained = f.iter().find(|f| f.finding.kind == FindingKind::InterruptionUnexplained).unwrap();
    assert!(unexplained.finding.summary.contains("has no audio"), "{}", unexplained.finding.summary);
    // An unfinalized recording cannot be checked until it is recovered, and says so.
    let mut broken = b.clone();
    broken.audio = Audio::Unfinalized;
    let acts = assemble(&[a.clone(), broken], &[], &policy());
    assert_eq!(acts[0].resumptions[0].explanation, Explanation::Unfinalized);
    assert_eq!(kinds(&acts[0]), vec![FindingKind::Interruption]);
    // Audio not analysed: nothing is claimed either way.
    let mut unknown = b;
    unknown.audio = Audio::Unknown;
    let acts = assemble(&[a, unknown], &[], &policy());
    assert_eq!(acts[0].resumptions[0].explanation, Explanation::Unknown);
    assert_eq!(kinds(&acts[0]), vec![FindingKind::Interruption]);
}

#[test]
fn an_unfinalized_report_is_not_a_report_without_audio() {
    let report = ProbeReport {
        file_size: 1000,
        container: crate::probe::ContainerLayout { first_mdat_offset: Some(32), ..Default::default() },
        movie: None,
        tracks: Vec::new(),
        demux: crate::probe::DemuxOutcome::default(),
        audio: None,
    };
    assert_eq!(Audio::of(&report), Audio::Unfinalized);
}

#[test]
fn r13_1_notification_window_at_and_around_sixty_seconds() {
    for (start_ms, dur_ms, ok) in
        [(0, 1_000, true), (59_000, 3_000, true), (60_000, 3_000, true), (60_001, 3_000, false), (10_000, 999, false)]
    {
        let a = rec(1, 0, 120, &[(start_ms, dur_ms)]);
        let acts = assemble(&[a], &[], &policy());
        let n = acts[0].notification.as_ref().unwrap();
        assert_eq!(!n.is_missing(), ok, "speech at {start_ms} ms for {dur_ms} ms");
        assert_eq!(kinds(&acts[0]).contains(&FindingKind::NotificationMissing), !ok);
    }
    // speech in the second file of the activity still counts if it starts in the window
    let acts = assemble(&[rec(1, 0, 20, &[]), rec(2, 21_000, 60, &[(5_000, 3_000)])], &[], &policy());
    assert!(
        matches!(acts[0].notification, Some(Explanation::Found(ref h)) if h.recording_id == 2 && h.after_ms == 26_000)
    );
    let mut mute = rec(1, 0, 60, &[]);
    mute.audio = Audio::Unknown;
    assert_eq!(assemble(&[mute], &[], &policy())[0].notification, Some(Explanation::Unknown));
    // R13.1 without audio is the recording's audio_missing finding, not a notification finding
    let mut silent = rec(1, 0, 60, &[]);
    silent.audio = Audio::Missing;
    assert_eq!(assemble(&[silent], &[], &policy())[0].notification, Some(Explanation::Unknown));
}

#[test]
fn activities_split_by_time_or_by_the_stations_activity_id() {
    let p = policy();
    let minute = 60_000;
    // 29 min apart: one activity; 31 min: two
    assert_eq!(assemble(&[rec(1, 0, 60, &[]), rec(2, minute + 29 * minute, 60, &[])], &[], &p).len(), 1);
    let two = assemble(&[rec(1, 0, 60, &[]), rec(2, minute + 31 * minute, 60, &[])], &[], &p);
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|a| a.resumptions.is_empty()));
    assert_eq!(two[1].key, "auto:2");
    // the station's activity id wins over time: five hours apart, one activity, one interruption
    let mut a = rec(1, 0, 60, &[]);
    let mut b = rec(2, 5 * 60 * minute, 60, &[]);
    a.activity_id = Some("act-9".into());
    b.activity_id = Some("act-9".into());
    let one = assemble(&[a.clone(), b.clone()], &[], &p);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].key, "id:act-9");
    assert_eq!(one[0].resumptions.len(), 1);
    // adjacent recordings of different activities are not an interruption
    b.activity_id = Some("act-10".into());
    b.start = a.end() + ns(20 * S);
    let split = assemble(&[a, b], &[], &p);
    assert_eq!(split.len(), 2);
    assert!(split.iter().all(|a| a.resumptions.is_empty()));
}

#[test]
fn the_result_does_not_depend_on_arrival_order() {
    let recs = vec![
        notified(rec(1, 0, 60, &[])),
        rec(2, 70_000, 60, &[(2_000, 3_000)]),
        rec(3, 140_000, 60, &[]),
        rec(4, 200_000, 30, &[(0, 2_500)]),
        rec(5, 4 * 3_600_000, 60, &[]),
    ];
    let expected = assemble(&recs, &[], &policy());
    let mut shuffled = recs.clone();
    for k in 0..10 {
        shuffled.rotate_left(k % 5);
        shuffled.swap(0, k % 5);
        assert_eq!(assemble(&shuffled, &[], &policy()), expected);
    }
    assert_eq!(expected.len(), 2);
    assert_eq!(expected[0].resumptions.len(), 2, "10 s, 10 s and a seamless split");
}

#[test]
fn r15_1_a_late_segment_changes_the_verdict() {
    // A (0-60 s) and C (120-180 s, explains at once): one explained interruption
    let a = notified(rec(1, 0, 60, &[]));
    let c = rec(3, 120_000, 60, &[(1_000, 3_000)]);
    let before = assemble(&[a.clone(), c.clone()], &[], &policy());
    assert!(!kinds(&before[0]).contains(&FindingKind::InterruptionUnexplained));
    // late B (65-100 s) without speech: the stop before B is now unexplained, C's is still explained
    let b = rec(2, 65_000, 35, &[]);
    let after = assemble(&[a.clone(), c.clone(), b], &[], &policy());
    let f = activity_findings(&after[0], &policy());
    let unexplained: Vec<_> = f.iter().filter(|f| f.finding.kind == FindingKind::InterruptionUnexplained).collect();
    assert_eq!(unexplained.len(), 1);
    assert_eq!(unexplained[0].recording_id, 2);
    // the reverse: C without speech is unexplained until a late B closes the gap entirely
    let c_silent = rec(3, 120_000, 60, &[]);
    assert!(
        kinds(&assemble(&[a.clone(), c_silent.clone()], &[], &policy())[0])
            .contains(&FindingKind::InterruptionUnexplained)
    );
    let filler = rec(2, 61_000, 58, &[]);
    let closed = assemble(&[a, c_silent, filler], &[], &policy());
    assert!(closed[0].resumptions.is_empty());
    assert!(kinds(&closed[0]).is_empty());
}

#[test]
fn r15_1_speech_after_the_next_stop_does_not_explain_an_earlier_resumption() {
    // A 0-60 s; B 65-75 s silent; C 80-140 s speaks 1 s in: C's speech is 16 s after B's
    // resumption (inside the 30 s window) but recording stopped in between.
    let a = notified(rec(1, 0, 60, &[]));
    let b = rec(2, 65_000, 10, &[]);
    let c = rec(3, 80_000, 60, &[(1_000, 3_000)]);
    let acts = assemble(&[a, b, c], &[], &policy());
    let r = &acts[0].resumptions;
    assert_eq!(r.len(), 2);
    assert!(r[0].explanation.is_missing(), "B: {:?}", r[0].explanation);
    assert!(!r[1].explanation.is_missing(), "C: {:?}", r[1].explanation);
    // the same holds for the notification: speech after the first stop is not a notification
    let quiet = rec(1, 0, 10, &[]);
    let later = rec(2, 20_000, 60, &[(1_000, 7_000)]);
    let acts = assemble(&[quiet, later], &[], &policy());
    assert!(acts[0].notification.as_ref().unwrap().is_missing());
}

#[test]
fn pauses_inside_a_file_are_interruptions_that_need_an_explanation() {
    let mut r = notified(rec(1, 0, 120, &[]));
    r.pauses = vec![(30 * S, 10 * S), (80 * S, 2 * S)];
    if let Audio::Analysed(s) = &mut r.audio {
        s.push(speech(41_000, 2_500));
    }
    let acts = assemble(&[r.clone()], &[], &policy());
    assert_eq!(acts[0].resumptions.len(), 1, "the 2 s pause is under the threshold");
    let res = &acts[0].resumptions[0];
    assert_eq!(res.kind, ResumptionKind::InsideRecording);
    assert_eq!(res.offset_ns, 40 * S);
    assert!(matches!(&res.explanation, Explanation::Found(h) if h.after_ms == 1_000));
    assert!(kinds(&acts[0]).is_empty(), "inside-file pauses are timestamp_gap findings of the probe");
    // without the speech: unexplained
    r.audio = Audio::Analysed(vec![speech(500, 7000)]);
    assert_eq!(kinds(&assemble(&[r], &[], &policy())[0]), vec![FindingKind::InterruptionUnexplained]);
}

#[test]
fn r15_2_a_handover_links_the_other_device_and_checks_the_explanation() {
    let a = notified(rec(1, 0, 60, &[]));
    let mut b = rec(2, 80_000, 60, &[(1_000, 4_000)]);
    b.device_id = "DSJ-2".into();
    b.continues_from_device = Some("DSJ-1".into());
    let acts = assemble(std::slice::from_ref(&b), std::slice::from_ref(&a), &policy());
    assert_eq!(acts.len(), 1);
    let h = acts[0].handover.as_ref().unwrap();
    assert_eq!((h.from_device.as_str(), h.from_recording), ("DSJ-1", Some(1)));
    assert_eq!(acts[0].notification, None, "a continued activity needs no second notification");
    let r = &acts[0].resumptions[0];
    assert_eq!(r.kind, ResumptionKind::Handover);
    assert_eq!(r.gap_ns, 20 * S);
    assert!(!r.explanation.is_missing());
    assert_eq!(kinds(&acts[0]), vec![FindingKind::DeviceHandover]);
    // unexplained hand-over, and the other device's recording unknown
    let mut silent = b;
    silent.audio = Audio::Analysed(vec![]);
    let acts = assemble(&[silent], &[], &policy());
    assert_eq!(acts[0].handover.as_ref().unwrap().from_recording, None);
    assert_eq!(kinds(&acts[0]), vec![FindingKind::InterruptionUnexplained, FindingKind::DeviceHandover]);
}

#[test]
fn fingerprints_are_stable_across_recomputation() {
    let recs = [notified(rec(1, 0, 60, &[])), rec(2, 100_000, 60, &[])];
    let a = activity_findings(&assemble(&recs, &[], &policy())[0], &policy());
    let mut rev = recs.clone();
    rev.reverse();
    let b = activity_findings(&assemble(&rev, &[], &policy())[0], &policy());
    let fa: Vec<_> = a.iter().map(|f| f.fingerprint.clone()).collect();
    let fb: Vec<_> = b.iter().map(|f| f.fingerprint.clone()).collect();
    assert_eq!(fa, fb);
    assert_eq!(fa.len(), 2);
    assert!(fa.iter().all(|f| f.contains(":2:")));
}

/// A recording with segments of given voices: `(start ms, length ms, cues)`.
fn rec_voices(id: i64, at_ms: u64, dur_s: u64, voices: &[(u64, u64, VoiceCues)]) -> RecordingFacts {
    let mut r = rec(id, at_ms, dur_s, &[]);
    r.audio = Audio::Analysed(voices.iter().map(|&(s, d, c)| spoken(s, d, c)).collect());
    r
}

#[test]
fn r15_1_r13_1_only_the_wearers_voice_counts_and_the_finding_says_what_was_heard() {
    // (case, start voices, voices after the resumption, notified, explained, words in the finding)
    type Voices = &'static [(u64, u64, VoiceCues)];
    let table: &[(&str, Voices, Voices, bool, bool, &str)] = &[
        ("wearer throughout", &[(500, 7000, WEARER)], &[(1000, 3000, WEARER)], true, true, ""),
        (
            "crowd alone after the resumption",
            &[(500, 7000, WEARER)],
            &[(0, 20_000, CROWD)],
            true,
            false,
            "only distant speech (not the wearer's voice) after the resumption (20.0 s of it, 0.0 s after)",
        ),
        (
            "crowd, then the wearer too late",
            &[(500, 7000, WEARER)],
            &[(2000, 5000, CROWD), (45_000, 3000, WEARER)],
            true,
            false,
            "only distant speech (not the wearer's voice) after the resumption (5.0 s of it, 2.0 s after); \
             the wearer's first speech 45.0 s after, lasting 3.0 s",
        ),
        (
            "faint speech only",
            &[(500, 7000, WEARER)],
            &[(2000, 5000, FAINT)],
            true,
            false,
            "only speech that could not be attributed (too faint, or no reference voice in the activity) after the resumption",
        ),
        // no notification by the wearer: the crowd at the start is no notification, and without a
        // reference the crowd stays someone else; the wearer's explanation still counts
        ("crowd at the start", &[(500, 9000, CROWD)], &[(1000, 3000, WEARER)], false, true, ""),
        ("nobody is the wearer", &[(500, 9000, CROWD)], &[(1000, 3000, CROWD)], false, false, "only distant"),
        // the wearer over a crowd: the wearer's segment counts wherever the crowd's lie
        (
            "wearer over crowd",
            &[(0, 30_000, CROWD), (4000, 6000, WEARER)],
            &[(0, 9000, CROWD), (2000, 3000, WEARER)],
            true,
            true,
            "",
        ),
    ];
    for &(case, start, after, notified, explained, words) in table {
        let a = rec_voices(1, 0, 60, start);
        let b = rec_voices(2, 100_000, 60, after);
        let acts = assemble(&[a, b], &[], &policy());
        let act = &acts[0];
        assert_eq!(!act.notification.as_ref().unwrap().is_missing(), notified, "{case}: {:?}", act.notification);
        let r = &act.resumptions[0];
        assert_eq!(!r.explanation.is_missing(), explained, "{case}: {:?}", r.explanation);
        if let Explanation::Found(h) = &r.explanation {
            assert_eq!(h.speaker, Speaker::Wearer, "{case}");
        }
        let ks = kinds(act);
        assert_eq!(ks.contains(&FindingKind::InterruptionUnexplained), !explained, "{case}");
        assert_eq!(ks.contains(&FindingKind::NotificationMissing), !notified, "{case}");
        if !explained {
            let f = activity_findings(act, &policy());
            let f = f.iter().find(|f| f.finding.kind == FindingKind::InterruptionUnexplained).unwrap();
            assert!(f.finding.summary.contains(words), "{case}: {}", f.finding.summary);
            assert!(f.finding.summary.contains("by the wearer"), "{}", f.finding.summary);
        }
    }
}

#[test]
fn r15_1_the_notification_in_an_earlier_file_is_the_reference_for_a_later_one() {
    // A party 7 dB under the wearer sounds dry enough; alone in its file it would be the loudest
    // close voice there, but the activity's notification is louder: it is someone else.
    let party = VoiceCues { level_dbfs: -27.0, ..WEARER };
    let a = rec_voices(1, 0, 60, &[(500, 7000, WEARER)]);
    let b = rec_voices(2, 100_000, 60, &[(1000, 3000, party)]);
    let acts = assemble(&[a.clone(), b.clone()], &[], &policy());
    assert!(acts[0].resumptions[0].explanation.is_missing(), "{:?}", acts[0].resumptions[0].explanation);
    // without the notification's file (a separate activity) nothing says it is not the wearer
    let alone = assemble(std::slice::from_ref(&b), &[], &policy());
    assert!(!alone[0].notification.as_ref().unwrap().is_missing());
    // and another method can be asked for
    let absolute = crate::speaker::SpeakerRules { method: crate::speaker::Method::AbsoluteLevel, ..Default::default() };
    let acts = assemble_with(&[a, b], &[], &policy(), &absolute);
    assert!(!acts[0].resumptions[0].explanation.is_missing(), "-27 dBFS is above the absolute threshold");
}

#[test]
fn an_outcome_reads_as_what_was_heard() {
    use super::checks::{Explanation, SpeechHit};
    use crate::speech::Speaker;
    let hit = |speaker, after_ms, duration_ms| SpeechHit {
        recording_id: 7,
        start: DateTime::UNIX_EPOCH,
        after_ms,
        duration_ms,
        confidence: 0.9,
        speaker,
        speaker_confidence: 0.731,
    };
    let cases = [
        (
            Explanation::Found(hit(Speaker::Wearer, 1500, 4000)),
            "found: wearer speech 4.0 s long, 1.5 s after (recording 7, 73 % sure whose)",
        ),
        (Explanation::Missing { nearest: None, heard: None }, "missing: no speech"),
        (
            Explanation::Missing { nearest: None, heard: Some(hit(Speaker::Other, 4896, 4032)) },
            "missing: heard other speech 4.0 s long, 4.9 s after (recording 7, 73 % sure whose)",
        ),
        (
            Explanation::Missing {
                nearest: Some(hit(Speaker::Wearer, 31_000, 2000)),
                heard: Some(hit(Speaker::Unknown, 0, 800)),
            },
            "missing: heard unknown speech 0.8 s long, 0.0 s after (recording 7, 73 % sure whose); \
             the wearer's nearest speech 2.0 s long, 31.0 s after (recording 7)",
        ),
        (
            Explanation::Missing { nearest: Some(hit(Speaker::Wearer, 31_000, 2000)), heard: None },
            "missing: the wearer's nearest speech 2.0 s long, 31.0 s after (recording 7)",
        ),
        (Explanation::NoAudio, "missing: no audio"),
        (Explanation::Unfinalized, "unchecked: unfinalized recording"),
    ];
    for (outcome, expected) in cases {
        assert_eq!(outcome.to_string(), expected);
    }
}

#[test]
fn r15_1_r13_1_an_activity_without_a_reference_of_its_own_borrows_the_devices_wearer_level() {
    use crate::speaker::Reference;
    const HOUR_MS: u64 = 3_600_000;
    // Earlier activities of the shift on this device: the wearer's notification at -20 dBFS.
    let shift = |n: u64| -> Vec<RecordingFacts> {
        (0..n).map(|i| rec_voices(10 + i as i64, i * HOUR_MS, 60, &[(500, 7000, WEARER)])).collect()
    };
    // At 30 dB over the background a voice sounds close from a 9.5 dB decay and sets a reference
    // from 11.5 dB: this one is the wearer not quite dry enough to set one.
    let just = VoiceCues { level_dbfs: -21.0, decay_db: 10.0, ..WEARER };
    // A radio 6 dB under the wearer, dry, the only close voice of its activity.
    let radio = VoiceCues { level_dbfs: -26.0, ..WEARER };
    // The wearer speaking up, 3 dB over the device's level.
    let loud = VoiceCues { level_dbfs: -17.0, ..WEARER };
    // (case, other activities of the device, the activity's voice at its start and on resuming,
    //  notified, explained, reference)
    type Case = (&'static str, u64, VoiceCues, bool, bool, Reference);
    let device = Reference::Device { level_dbfs: -20.0, activities: 3 };
    let table: &[Case] = &[
        ("not dry enough, alone", 0, just, false, false, Reference::None),
        ("not dry enough, one other activity is too few", 1, just, false, false, Reference::None),
        ("not dry enough, in its shift", 3, just, true, true, device),
        ("a radio, alone: its own reference", 0, radio, true, true, Reference::Own { level_dbfs: -26.0 }),
        ("a radio, in its shift: 6 dB under the wearer", 3, radio, false, false, device),
        ("the wearer speaking up", 3, loud, true, true, Reference::Own { level_dbfs: -17.0 }),
    ];
    for &(case, others, voice, notified, explained, reference) in table {
        let at = 10 * HOUR_MS;
        let mut recs = shift(others);
        recs.push(rec_voices(1, at, 60, &[(500, 7000, voice)]));
        recs.push(rec_voices(2, at + 100_000, 60, &[(1000, 3000, voice)]));
        let acts = assemble(&recs, &[], &policy());
        assert_eq!(acts.len() as u64, others + 1, "{case}");
        let act = acts.iter().find(|a| a.recording_ids == vec![1, 2]).unwrap();
        assert_eq!(act.wearer_reference, reference, "{case}");
        assert_eq!(!act.notification.as_ref().unwrap().is_missing(), notified, "{case}: {:?}", act.notification);
        let r = &act.resumptions[0];
        assert_eq!(!r.explanation.is_missing(), explained, "{case}: {:?}", r.explanation);
        // the shift's own activities keep their own reference, and the order does not matter
        for a in acts.iter().filter(|a| a.recording_ids != vec![1, 2]) {
            assert_eq!(a.wearer_reference, Reference::Own { level_dbfs: -20.0 }, "{case}");
        }
        recs.reverse();
        assert_eq!(assemble(&recs, &[], &policy()), acts, "{case}");
    }
}
