//! Speech analysis in the probe's single pass, checked against the generator's ground truth:
//! where speech is (by timestamps, across pauses), what is not speech (music, engines), digital
//! silence, and that turning speech analysis off changes nothing else.

use recvault_core::probe::{ProbePolicy, ProbeReport, TrackKind};
use recvault_core::speech::SpeechSegment;
use recvault_fixtures::{
    AudioSpec, Background, GapSpec, GroundTruth, RecordingSpec, SpeechSpec, VideoContent, VideoSpec, generate,
};
use recvault_media::probe;
use std::time::Duration;

const MS: u64 = 1_000_000;
/// How far a detected segment's ends may sit from the ground truth's at 20 dB SNR.
const TOLERANCE: u64 = 150 * MS;

fn s(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

/// Small video, audio at `rate` over `background`.
fn spec(duration: f64, background: Background, rate: u32) -> RecordingSpec {
    RecordingSpec {
        duration: s(duration),
        video: Some(VideoSpec {
            width: 96,
            height: 64,
            fps: 5,
            bitrate_kbps: 16,
            keyframe_interval: 10,
            content: VideoContent::Pattern,
        }),
        audio: Some(AudioSpec { sample_rate: rate, background, background_dbfs: -30.0, ..AudioSpec::default() }),
        ..RecordingSpec::default()
    }
}

fn utterance(at: f64, text: &str, voice: &str, wpm: u32, snr_db: f32) -> SpeechSpec {
    SpeechSpec {
        at: s(at),
        text: text.into(),
        voice: format!("cmn-latn-pinyin{voice}"),
        speed_wpm: wpm,
        snr_db,
        ..SpeechSpec::new(s(at), text)
    }
}

fn run(spec: &RecordingSpec, policy: &ProbePolicy) -> (GroundTruth, ProbeReport) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.mp4");
    let truth = generate(spec, &path).unwrap();
    let report = probe(&path, policy).unwrap();
    (truth, report)
}

fn speech(r: &ProbeReport) -> &[SpeechSegment] {
    &r.audio.as_ref().expect("audio analysed").speech
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

/// Each ground-truth utterance is one detected segment whose ends are within the tolerance, and
/// nothing else was detected.
fn assert_matches(truth: &GroundTruth, found: &[SpeechSegment]) {
    assert_eq!(found.len(), truth.speech.len(), "found {found:?}, truth {:?}", truth.speech);
    for (f, t) in found.iter().zip(&truth.speech) {
        let (ds, de) = (f.start_ns.abs_diff(ns(t.start)), f.end_ns.abs_diff(ns(t.end)));
        assert!(
            ds <= TOLERANCE && de <= TOLERANCE,
            "found {f:?}, truth {t:?}: start off by {} ms, end by {} ms",
            ds / MS,
            de / MS
        );
        assert!(f.confidence > 0.5 && f.confidence <= 1.0, "{f:?}");
    }
}

#[test]
fn speech_is_found_within_150_ms_at_20_db_over_street_noise() {
    let mut rec = spec(26.0, Background::Street, 16_000);
    rec.speech = vec![
        utterance(1.0, recvault_fixtures::spec::NOTIFICATION_PINYIN, "+f2", 175, 20.0),
        utterance(12.0, recvault_fixtures::spec::RESUMPTION_PINYIN, "+m3", 140, 20.0),
        utterance(20.5, "cun2 chu3 ka3 yi3 man3, huan4 ka3 hou4 ji4 xu4 lu4 zhi4", "", 200, 20.0),
    ];
    let (truth, report) = run(&rec, &ProbePolicy::default());
    assert_matches(&truth, speech(&report));
    let audio = report.audio.as_ref().unwrap();
    assert!(!audio.digital_silence);
    assert!(audio.detector.starts_with("earshot"), "{}", audio.detector);
    assert!(audio.rms_dbfs > -40.0 && audio.rms_dbfs < -10.0 && audio.peak_dbfs > audio.rms_dbfs, "{audio:?}");
    assert!(audio.decoded_ns.abs_diff(26_000 * MS) < 100 * MS, "{}", audio.decoded_ns);
}

#[test]
fn a_48_khz_track_is_resampled_and_analysed_the_same() {
    let mut rec = spec(10.0, Background::Pink, 48_000);
    rec.speech = vec![utterance(2.0, recvault_fixtures::spec::RESUMPTION_PINYIN, "+f4", 160, 20.0)];
    let (truth, report) = run(&rec, &ProbePolicy::default());
    assert_matches(&truth, speech(&report));
}

#[test]
fn music_and_engine_noise_without_speech_are_not_speech() {
    for background in [Background::Music, Background::Engine, Background::Street] {
        for level in [-40.0, -20.0] {
            let mut rec = spec(30.0, background, 16_000);
            if let Some(a) = rec.audio.as_mut() {
                a.background_dbfs = level;
            }
            let (_, report) = run(&rec, &ProbePolicy::default());
            let found = speech(&report);
            // Street noise may hold a horn blast or two: never anything as long as an explanation.
            let long: Vec<_> = found.iter().filter(|s| s.duration_ns() >= 1000 * MS).collect();
            assert!(long.is_empty(), "{background:?} at {level} dBFS: {found:?}");
            if background != Background::Street {
                assert!(found.is_empty(), "{background:?} at {level} dBFS: {found:?}");
            }
        }
    }
}

#[test]
fn digital_silence_is_reported() {
    let (_, report) = run(&spec(5.0, Background::Silence, 16_000), &ProbePolicy::default());
    let audio = report.audio.as_ref().unwrap();
    assert!(audio.digital_silence, "{audio:?}");
    assert!(audio.speech.is_empty());
    assert_eq!(audio.peak_dbfs, recvault_media::voice::DBFS_FLOOR);
    // speech over silence is not silence, and is found
    let mut rec = spec(6.0, Background::Silence, 16_000);
    rec.speech = vec![utterance(1.0, recvault_fixtures::spec::RESUMPTION_PINYIN, "", 175, 0.0)];
    let (truth, report) = run(&rec, &ProbePolicy::default());
    assert!(!report.audio.as_ref().unwrap().digital_silence);
    assert_matches(&truth, speech(&report));
}

#[test]
fn speech_after_a_pause_inside_the_file_is_placed_after_the_pause() {
    // 3 s recorded, a 40 s pause, then speech 0.8 s after recording resumes (file time 43.8 s)
    let mut rec = spec(12.0, Background::Street, 16_000);
    rec.gaps = vec![GapSpec { at: s(3.0), length: s(40.0) }];
    rec.speech = vec![utterance(43.8, recvault_fixtures::spec::RESUMPTION_PINYIN, "+m1", 175, 20.0)];
    let (truth, report) = run(&rec, &ProbePolicy::default());
    assert!(ns(truth.speech[0].start) > 43_000 * MS);
    assert_matches(&truth, speech(&report));
    // the decoder filled nothing in: 12 s decoded on a 52 s timeline
    let audio = report.audio.as_ref().unwrap();
    assert!(audio.decoded_ns.abs_diff(12_000 * MS) < 150 * MS, "{}", audio.decoded_ns);
}

#[test]
fn speech_off_leaves_audio_out_and_counts_unchanged() {
    let mut rec = spec(8.0, Background::Street, 16_000);
    rec.gaps = vec![GapSpec { at: s(2.0), length: s(3.0) }];
    rec.speech = vec![utterance(5.5, recvault_fixtures::spec::RESUMPTION_PINYIN, "", 175, 10.0)];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.mp4");
    let truth = generate(&rec, &path).unwrap();
    let on = probe(&path, &ProbePolicy::default()).unwrap();
    let off = probe(&path, &ProbePolicy { speech: false, ..ProbePolicy::default() }).unwrap();
    assert!(off.audio.is_none());
    assert!(on.audio.is_some());
    assert_eq!(ProbeReport { audio: None, ..on.clone() }, off, "only the audio analysis differs");
    let audio = on.tracks.iter().find(|t| t.kind == TrackKind::Audio).unwrap();
    assert_eq!(audio.packets, truth.audio_frames);
    assert_eq!(on.tracks.iter().find(|t| t.kind == TrackKind::Video).unwrap().packets, truth.video_frames);
}

#[test]
fn no_audio_track_means_no_analysis() {
    let rec = RecordingSpec { audio: None, ..spec(3.0, Background::Pink, 16_000) };
    let (_, report) = run(&rec, &ProbePolicy::default());
    assert!(report.audio.is_none());
    assert_eq!(report.tracks.len(), 1);
}
