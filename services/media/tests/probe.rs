//! `probe` then `assess` on generated recordings, checked against the generator's ground truth.

use rand::{Rng, SeedableRng};
use recvault_core::probe::{Assessment, ProbePolicy, ProbeReport, TrackKind, TrackReport, assess};
use recvault_core::{FindingKind, Rejection};
use recvault_fixtures::{AudioSpec, Damage, GapSpec, GroundTruth, Layout, RecordingSpec, SpeechSpec, generate};
use recvault_media::{MediaError, probe};
use std::path::{Path, PathBuf};
use std::time::Duration;

const MS: u64 = 1_000_000;
/// One video frame at the fixtures' 15 fps.
const FRAME: u64 = 66_666_667;

struct Probed {
    _dir: tempfile::TempDir,
    path: PathBuf,
    truth: GroundTruth,
    report: ProbeReport,
    assessment: Assessment,
}

fn run(spec: RecordingSpec) -> Probed {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.mp4");
    let truth = generate(&spec, &path).unwrap();
    let report = probe(&path, &ProbePolicy::default()).unwrap();
    let assessment = assess(&report, &ProbePolicy::default());
    Probed { _dir: dir, path, truth, report, assessment }
}

fn probe_bytes(bytes: &[u8]) -> (ProbeReport, Assessment) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("file.mp4");
    std::fs::write(&path, bytes).unwrap();
    let report = probe(&path, &ProbePolicy::default()).unwrap();
    let assessment = assess(&report, &ProbePolicy::default());
    (report, assessment)
}

fn kinds(a: &Assessment) -> Vec<FindingKind> {
    a.findings.iter().map(|f| f.kind).collect()
}

fn track(r: &ProbeReport, kind: TrackKind) -> &TrackReport {
    r.tracks.iter().find(|t| t.kind == kind).unwrap_or_else(|| panic!("no {kind:?} track in {:?}", r.tracks))
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

fn near(a: u64, b: u64, tolerance: u64) -> bool {
    a.abs_diff(b) <= tolerance
}

fn spec() -> RecordingSpec {
    RecordingSpec { duration: Duration::from_secs(3), ..RecordingSpec::default() }
}

/// Every packet the generator muxed is counted, with the right formats and extent.
fn assert_complete(p: &Probed) {
    let (r, t) = (&p.report, &p.truth);
    assert_eq!(r.file_size, t.size_bytes);
    assert!(r.demux.reached_end && r.demux.error.is_none(), "{:?}", r.demux);
    let v = track(r, TrackKind::Video);
    // qtdemux derives the rate from the sample durations: a pause makes the track variable-rate
    let rate = if t.gaps.is_empty() { Some(15.0) } else { None };
    assert_eq!((v.codec.as_str(), v.width, v.height, v.frame_rate), ("h264", Some(320), Some(240), rate));
    assert_eq!(v.profile.as_deref(), Some("constrained-baseline"));
    assert_eq!(v.packets, t.video_frames);
    assert_eq!(v.first_pts_ns, Some(0));
    assert!(near(v.end_ns.unwrap(), ns(t.video_end.unwrap()), MS), "{:?} vs {:?}", v.end_ns, t.video_end);
    let a = track(r, TrackKind::Audio);
    assert_eq!(
        (a.codec.as_str(), a.sample_rate, a.channels, a.profile.as_deref()),
        ("aac", Some(16_000), Some(1), Some("lc"))
    );
    assert_eq!(a.packets, t.audio_frames);
    assert!(near(a.end_ns.unwrap(), ns(t.audio_end.unwrap()), MS), "{:?} vs {:?}", a.end_ns, t.audio_end);
    assert!(v.bytes > 0 && a.bytes > 0 && v.bytes + a.bytes < t.size_bytes);
    let declared = p.assessment.declared_duration_ns.unwrap();
    assert!(near(declared, ns(t.declared_duration.unwrap()), MS));
    assert!(near(p.assessment.readable_duration_ns, ns(t.media_duration), MS));
}

#[test]
fn moov_at_end_is_accepted_clean() {
    let created = chrono::DateTime::parse_from_rfc3339("2024-05-01T09:30:00Z").unwrap().to_utc();
    let p = run(RecordingSpec {
        creation_time: Some(created),
        speech: vec![SpeechSpec::new(Duration::from_millis(500), "ni3 hao3")],
        ..spec()
    });
    assert_eq!(p.assessment.verdict, Ok(()));
    assert!(p.assessment.findings.is_empty(), "{:?}", p.assessment.findings);
    assert_complete(&p);
    let c = &p.report.container;
    assert_eq!(c.major_brand.as_deref(), Some("mp42"));
    assert!(c.first_mdat_offset.unwrap() < c.moov_offset.unwrap());
    assert_eq!(c.boxes.last().unwrap().fourcc, "moov");
    assert_eq!((c.fragments, c.open_ended_mdat, &c.overrun, &c.box_error), (0, false, &None, &None));
    assert_eq!(p.report.movie.as_ref().unwrap().creation_time, Some(created));
    assert_eq!(p.report.tracks[0].kind, TrackKind::Video, "pad order follows the file's tracks");
}

#[test]
fn moov_at_start_is_accepted_clean() {
    let p = run(RecordingSpec { layout: Layout::MoovAtStart, ..spec() });
    assert!(p.truth.moov_first);
    let c = &p.report.container;
    assert!(c.moov_offset.unwrap() < c.first_mdat_offset.unwrap());
    assert_eq!(p.assessment.verdict, Ok(()));
    assert!(p.assessment.findings.is_empty(), "{:?}", p.assessment.findings);
    assert_complete(&p);
}

#[test]
fn fragmented_is_accepted_clean() {
    let p = run(RecordingSpec { layout: Layout::Fragmented { fragment: Duration::from_millis(500) }, ..spec() });
    let c = &p.report.container;
    assert!(c.fragments >= 6, "{} fragments", c.fragments);
    assert!(p.report.movie.as_ref().unwrap().fragment_duration_ns.is_some());
    assert_eq!(p.assessment.verdict, Ok(()));
    assert!(p.assessment.findings.is_empty(), "{:?}", p.assessment.findings);
    assert_complete(&p);
}

#[test]
fn truncated_moov_first_is_flagged_truncated() {
    let p = run(RecordingSpec {
        duration: Duration::from_secs(5),
        layout: Layout::MoovAtStart,
        damage: Damage::TruncateAtFraction(0.6),
        ..spec()
    });
    let a = &p.assessment;
    assert_eq!(a.verdict, Ok(()), "truncated recordings are still evidence");
    assert_eq!(kinds(a), vec![FindingKind::Truncated]);
    let declared = a.declared_duration_ns.unwrap();
    assert!(near(declared, ns(p.truth.declared_duration.unwrap()), MS));
    assert!(a.readable_duration_ns < declared - 1_000 * MS, "{} of {declared}", a.readable_duration_ns);
    assert!(a.readable_duration_ns > 0);
    let o = p.report.container.overrun.as_ref().unwrap();
    assert_eq!((o.fourcc.as_str(), o.offset + o.available), ("mdat", p.truth.size_bytes));
    // qtdemux says nothing: it plays to where the bytes stop
    assert!(p.report.demux.error.is_none(), "{:?}", p.report.demux);
}

#[test]
fn truncated_fragmented_is_flagged_truncated() {
    let p = run(RecordingSpec {
        duration: Duration::from_secs(4),
        layout: Layout::Fragmented { fragment: Duration::from_millis(500) },
        damage: Damage::TruncateAtFraction(0.5),
        ..spec()
    });
    let a = &p.assessment;
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(kinds(a), vec![FindingKind::Truncated]);
    assert!(p.report.container.overrun.is_some());
    assert!(a.readable_duration_ns < ns(p.truth.media_duration) - 1_000 * MS, "{}", a.readable_duration_ns);
}

#[test]
fn moov_at_end_cut_before_its_index_is_unfinalized() {
    let p = run(RecordingSpec { damage: Damage::TruncateAtFraction(0.6), ..spec() });
    assert!(!p.truth.has_moov);
    assert_eq!(kinds(&p.assessment), vec![FindingKind::Unfinalized]);
    assert_eq!(p.report.container.overrun.as_ref().unwrap().fourcc, "mdat");
}

#[test]
fn moov_at_end_cut_inside_its_index() {
    let whole = run(spec());
    let p = run(RecordingSpec { damage: Damage::TruncateAtByte(whole.truth.size_bytes - 100), ..spec() });
    let c = &p.report.container;
    let o = c.overrun.as_ref().unwrap();
    assert_eq!((o.fourcc.as_str(), Some(o.offset)), ("moov", c.moov_offset));
    assert!(p.report.tracks.is_empty());
    assert!(p.report.demux.error.as_deref().unwrap().contains("incomplete"), "{:?}", p.report.demux);
    // R2.1: the recorder died while writing its index; the media bytes are all there, so the
    // file is kept as evidence, flagged, like a file that lost its moov entirely.
    assert_eq!(p.assessment.verdict, Ok(()));
    assert_eq!(kinds(&p.assessment), vec![FindingKind::Unfinalized]);
}

#[test]
fn killed_mid_write_is_unfinalized() {
    let p = run(RecordingSpec { damage: Damage::KilledMidWrite { after: Duration::from_millis(2000) }, ..spec() });
    assert!(!p.truth.has_moov);
    let c = &p.report.container;
    assert!(c.open_ended_mdat, "{c:?}");
    assert_eq!(c.moov_offset, None);
    assert!(p.report.tracks.is_empty());
    assert!(p.report.demux.error.is_some(), "qtdemux refuses a file without moov");
    assert!(p.report.movie.is_none());
    let a = &p.assessment;
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(kinds(a), vec![FindingKind::Unfinalized]);
    assert_eq!(a.readable_duration_ns, 0);
}

#[test]
fn a_pause_inside_the_file_is_a_timestamp_gap_on_both_tracks() {
    let gap = GapSpec { at: Duration::from_secs(2), length: Duration::from_secs(3) };
    let p = run(RecordingSpec { duration: Duration::from_secs(4), gaps: vec![gap], ..spec() });
    let a = &p.assessment;
    assert_eq!(a.verdict, Ok(()));
    // one pause, seen on both tracks, is one finding naming both
    assert_eq!(kinds(a), vec![FindingKind::TimestampGap], "{:?}", a.findings);
    assert_eq!(a.findings[0].evidence["tracks"], serde_json::json!([0, 1]));
    for t in &p.report.tracks {
        assert_eq!(t.gaps.len(), 1, "{:?}", t.kind);
        let g = t.gaps[0];
        assert!(near(g.at_ns, ns(gap.at), FRAME), "{:?}: at {} ms", t.kind, g.at_ns / MS);
        assert!(near(g.length_ns, ns(gap.length), FRAME), "{:?}: length {} ms", t.kind, g.length_ns / MS);
    }
    // the pause counts as timeline, not as missing bytes
    assert!(near(a.readable_duration_ns, ns(p.truth.media_duration), MS));
    assert_complete(&p);
    let gaps_seen = p.report.tracks.iter().map(|t| t.gaps[0].at_ns).collect::<Vec<_>>();
    assert!(gaps_seen.iter().all(|&at| at >= 2_000 * MS - FRAME));
}

#[test]
fn a_short_pause_below_the_threshold_is_not_a_gap() {
    let gap = GapSpec { at: Duration::from_secs(1), length: Duration::from_millis(500) };
    let p = run(RecordingSpec { gaps: vec![gap], ..spec() });
    assert!(p.assessment.findings.is_empty(), "{:?}", p.assessment.findings);
    // a stricter policy sees it
    let strict = ProbePolicy { gap_threshold_ns: 200 * MS, ..ProbePolicy::default() };
    let r = probe(&p.path, &strict).unwrap();
    assert_eq!(kinds(&assess(&r, &strict)), vec![FindingKind::TimestampGap]);
}

#[test]
fn single_track_files() {
    let p = run(RecordingSpec { audio: None, ..spec() });
    assert_eq!(kinds(&p.assessment), vec![FindingKind::AudioMissing]);
    assert_eq!(p.report.tracks.len(), 1);
    assert_eq!(p.report.tracks[0].packets, p.truth.video_frames);

    let p = run(RecordingSpec {
        video: None,
        audio: Some(AudioSpec { sample_rate: 48_000, ..AudioSpec::default() }),
        ..spec()
    });
    assert_eq!(kinds(&p.assessment), vec![FindingKind::NoVideoTrack]);
    let a = track(&p.report, TrackKind::Audio);
    assert_eq!((a.sample_rate, a.packets), (Some(48_000), p.truth.audio_frames));
}

#[test]
fn trailing_zero_padding_is_a_warning() {
    let p = run(spec());
    let mut bytes = std::fs::read(&p.path).unwrap();
    let end = bytes.len() as u64;
    bytes.extend([0; 512]);
    let (r, a) = probe_bytes(&bytes);
    assert_eq!(a.verdict, Ok(()));
    assert_eq!(kinds(&a), vec![FindingKind::TrailingData]);
    assert_eq!(r.container.box_error.unwrap().offset, end);
}

#[test]
fn foreign_and_empty_files_are_rejected() {
    let (_, a) = probe_bytes(&[]);
    assert_eq!(a.verdict, Err(Rejection::EmptyFile));

    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut noise = vec![0u8; 100_000];
    rng.fill(&mut noise[..]);
    let (r, a) = probe_bytes(&noise);
    assert_eq!(a.verdict.unwrap_err().code(), "not_mp4");
    assert!(r.tracks.is_empty());

    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0\0\0\x01\0\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let (r, a) = probe_bytes(png);
    assert_eq!(a.verdict.unwrap_err().code(), "not_mp4");
    assert_eq!(r.container.box_error.unwrap().offset, 0);

    let (_, a) = probe_bytes(b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0");
    assert_eq!(a.verdict.unwrap_err().code(), "not_mp4");
}

#[test]
fn a_garbage_movie_box_is_unreadable() {
    let p = run(spec());
    let bytes = std::fs::read(&p.path).unwrap();
    let moov_at = p.report.container.moov_offset.unwrap() as usize;
    // keep ftyp, free, mdat and the moov header; scramble the moov body
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut damaged = bytes.clone();
    rng.fill(&mut damaged[moov_at + 8..]);
    let (r, a) = probe_bytes(&damaged);
    assert!(r.container.moov_offset.is_some());
    assert!(r.tracks.is_empty(), "{:?}", r.tracks);
    match a.verdict {
        Err(Rejection::UnreadableContainer { detail }) => assert!(!detail.is_empty()),
        other => panic!("{other:?}: {:?}", r.demux),
    }
}

#[test]
fn environment_failures_are_errors() {
    recvault_media::init().unwrap();
    recvault_media::init().unwrap();
    let missing = Path::new("/nonexistent/recvault/file.mp4");
    let e = probe(missing, &ProbePolicy::default()).unwrap_err();
    assert!(matches!(e, MediaError::Open { .. }), "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().starts_with("cannot open /nonexistent"), "{e}");
}
