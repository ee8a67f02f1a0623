//! What the media probe reads from a file, and the verdict on it.
//!
//! `recvault-media` fills a [`ProbeReport`] from two independent readings of the same file: a walk of
//! the top-level ISO BMFF boxes (structure: is there a `moov`, does a box run past the end of the
//! file) and a GStreamer demux of every packet (tracks, codecs, timestamps). [`assess`] turns the
//! report into a verdict. The two readings are needed together: qtdemux plays a truncated file
//! silently up to where the bytes stop, so only the box walk sees the missing tail, and only the
//! packet walk sees a file that ends before its declared duration.

use crate::finding::{Finding, FindingKind, Rejection, Severity};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Top-level box types that may legitimately start an ISO BMFF / QuickTime file.
pub const FIRST_BOX_TYPES: &[&str] = &["ftyp", "styp", "moov", "mdat", "free", "skip", "wide", "pdin", "uuid", "sidx"];

/// Everything the probe read from one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub file_size: u64,
    pub container: ContainerLayout,
    /// From `moov/mvhd` (and `moov/mvex/mehd`), when there is a `moov`.
    pub movie: Option<MovieHeader>,
    /// One entry per elementary stream the demuxer exposed, in pad order.
    pub tracks: Vec<TrackReport>,
    pub demux: DemuxOutcome,
    /// The audio track decoded in the same pass: loudness and speech. `None` when the file has no
    /// audio track, nothing could be decoded, or the policy turned speech analysis off.
    #[serde(default)]
    pub audio: Option<crate::speech::AudioAnalysis>,
}

/// The top-level box structure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerLayout {
    /// Major brand from `ftyp`/`styp`.
    pub major_brand: Option<String>,
    /// Number of top-level boxes read.
    pub box_count: u64,
    /// First top-level boxes and last top-level boxes, for the report (at most 32 in all).
    pub boxes: Vec<TopLevelBox>,
    pub moov_offset: Option<u64>,
    pub first_mdat_offset: Option<u64>,
    /// Number of `moof` boxes (fragmented MP4).
    pub fragments: u64,
    /// The box (or box header) that runs past the end of the file, if any.
    pub overrun: Option<BoxOverrun>,
    /// An `mdat` declared with size 0 ("extends to end of file"), as written by a muxer before it
    /// finalises.
    pub open_ended_mdat: bool,
    /// Where the walk met bytes that are not a box header, if it did.
    pub box_error: Option<BoxError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopLevelBox {
    pub fourcc: String,
    pub offset: u64,
    /// Declared size in bytes (0: to end of file).
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxOverrun {
    /// `????` when even the 8-byte header is cut.
    pub fourcc: String,
    pub offset: u64,
    pub declared_size: u64,
    /// Bytes of the box actually present.
    pub available: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoxError {
    pub offset: u64,
    pub detail: String,
}

/// Movie header facts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MovieHeader {
    pub timescale: u32,
    /// Declared duration; `None` when the header says 0 or "unknown" (all ones).
    pub duration_ns: Option<u64>,
    /// Fragmented files: the whole-file duration from `mehd`, when written.
    pub fragment_duration_ns: Option<u64>,
    /// The recorder's clock when the file was created; `None` when 0.
    pub creation_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    Video,
    Audio,
    Other,
}

/// One elementary stream and its packets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackReport {
    pub kind: TrackKind,
    /// Short codec name: `h264`, `h265`, `aac`, or the caps media type for anything else.
    pub codec: String,
    pub profile: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub packets: u64,
    pub bytes: u64,
    /// Timestamp of the first packet, ns.
    pub first_pts_ns: Option<u64>,
    /// End of the last packet (its timestamp plus duration), ns: how far this track can be played.
    pub end_ns: Option<u64>,
    /// Jumps in the packet timeline longer than the probe's gap threshold, in timeline order.
    pub gaps: Vec<TimestampGap>,
}

/// The timeline of a track jumps: `length_ns` with no packets after `at_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimestampGap {
    pub at_ns: u64,
    pub length_ns: u64,
}

/// How the packet walk ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DemuxOutcome {
    /// The demuxer reached end of stream.
    pub reached_end: bool,
    /// The first error the pipeline posted, if any.
    pub error: Option<String>,
}

/// Thresholds for [`assess`]; defaults in `pipeline-config/recvault.toml` (`[probe]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbePolicy {
    /// A jump in a track's timestamps longer than this is a gap (R12.1).
    pub gap_threshold_ns: u64,
    /// Packets may end this much before the declared duration before the file counts as truncated.
    pub truncation_tolerance_ns: u64,
    /// Decode the audio track in the same pass and look for speech (R13.1, R15.1).
    pub speech: bool,
}

impl Default for ProbePolicy {
    fn default() -> Self {
        Self { gap_threshold_ns: 1_000_000_000, truncation_tolerance_ns: 1_000_000_000, speech: true }
    }
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// `Err` sends the bytes to quarantine; `Ok` archives them, with any findings.
    pub verdict: Result<(), Rejection>,
    /// How much of the recording can be played, ns (end of the longest readable track).
    pub readable_duration_ns: u64,
    /// Declared duration, ns, when the file declares one.
    pub declared_duration_ns: Option<u64>,
    pub findings: Vec<Finding>,
}

impl Assessment {
    fn rejected(r: Rejection) -> Self {
        Self { verdict: Err(r), readable_duration_ns: 0, declared_duration_ns: None, findings: Vec::new() }
    }
}

fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

/// A pause inside one file: every track's gap over the threshold that overlaps it, merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interruption {
    pub at_ns: u64,
    pub length_ns: u64,
    /// Indexes of the tracks that pause there.
    pub tracks: Vec<usize>,
}

/// R12.1: the pauses inside a file. A recorder that pauses stops every track at once, so gaps of
/// different tracks that overlap in time are one interruption, not one per track.
pub fn interruptions(r: &ProbeReport, policy: &ProbePolicy) -> Vec<Interruption> {
    let mut gaps: Vec<(u64, u64, usize)> = r
        .tracks
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.gaps
                .iter()
                .filter(|g| g.length_ns > policy.gap_threshold_ns)
                .map(move |g| (g.at_ns, g.at_ns + g.length_ns, i))
        })
        .collect();
    gaps.sort_unstable();
    let mut out: Vec<Interruption> = Vec::new();
    for (start, end, track) in gaps {
        match out.last_mut() {
            Some(last) if start <= last.at_ns + last.length_ns => {
                let last_end = (last.at_ns + last.length_ns).max(end);
                last.length_ns = last_end - last.at_ns;
                if !last.tracks.contains(&track) {
                    last.tracks.push(track);
                    last.tracks.sort_unstable();
                }
            }
            _ => out.push(Interruption { at_ns: start, length_ns: end - start, tracks: vec![track] }),
        }
    }
    out
}

/// R2.1, R12.1: decides whether a probed file is a recording that can be archived, and what is
/// wrong with it. Truncated and unfinalized files are still evidence: they are accepted, flagged.
pub fn assess(r: &ProbeReport, policy: &ProbePolicy) -> Assessment {
    if r.file_size == 0 {
        return Assessment::rejected(Rejection::EmptyFile);
    }
    let c = &r.container;
    match c.boxes.first() {
        None => {
            let detail = c.box_error.as_ref().map_or("no box header at offset 0".into(), |e| e.detail.clone());
            return Assessment::rejected(Rejection::NotMp4 { detail });
        }
        Some(b) if !FIRST_BOX_TYPES.contains(&b.fourcc.as_str()) => {
            return Assessment::rejected(Rejection::NotMp4 {
                detail: format!("first box is {:?}, not an iso base media box", b.fourcc),
            });
        }
        Some(_) => {}
    }

    let mut findings = Vec::new();
    if c.moov_offset.is_none() {
        if c.first_mdat_offset.is_none() {
            return Assessment::rejected(Rejection::NotMp4 { detail: "no movie box and no media data".into() });
        }
        // The recorder died before writing its index (moov at end): the media bytes are there but
        // cannot be played without repair. Still evidence.
        findings.push(Finding {
            kind: FindingKind::Unfinalized,
            severity: Severity::Critical,
            summary: "no moov box: the recorder never finalised the file; media data kept unplayable".into(),
            evidence: json!({
                "mdat_offset": c.first_mdat_offset,
                "open_ended_mdat": c.open_ended_mdat,
                "file_size": r.file_size,
                "overrun": c.overrun,
            }),
        });
        return Assessment { verdict: Ok(()), readable_duration_ns: 0, declared_duration_ns: None, findings };
    }

    if r.tracks.is_empty() {
        // A moov cut short by the end of the file is the same failure as no moov at all: the
        // recorder died while writing its index. Evidence, not garbage.
        if let Some(o) = c.overrun.as_ref().filter(|o| o.fourcc == "moov") {
            findings.push(Finding {
                kind: FindingKind::Unfinalized,
                severity: Severity::Critical,
                summary: format!(
                    "the moov box at offset {} is cut short ({} of {} bytes): the index was never completed",
                    o.offset, o.available, o.declared_size
                ),
                evidence: json!({ "overrun": o, "demux_error": r.demux.error, "file_size": r.file_size }),
            });
            return Assessment { verdict: Ok(()), readable_duration_ns: 0, declared_duration_ns: None, findings };
        }
        let detail = r.demux.error.clone().unwrap_or_else(|| "the demuxer found no playable tracks".into());
        return Assessment::rejected(Rejection::UnreadableContainer { detail });
    }

    let readable = r.tracks.iter().filter_map(|t| t.end_ns).max().unwrap_or(0);
    let declared = r.movie.as_ref().and_then(|m| m.duration_ns.or(m.fragment_duration_ns));
    let ends_early = declared.filter(|&d| readable.saturating_add(policy.truncation_tolerance_ns) < d);
    let demux_failed = r.demux.error.is_some();
    if c.overrun.is_some() || ends_early.is_some() || demux_failed {
        let mut why = Vec::new();
        if let Some(o) = &c.overrun {
            why.push(format!(
                "{} box at offset {} declares {} bytes, {} present",
                o.fourcc, o.offset, o.declared_size, o.available
            ));
        }
        if let Some(d) = ends_early {
            why.push(format!("packets end at {} ms of a declared {} ms", ms(readable), ms(d)));
        }
        if let Some(e) = &r.demux.error {
            why.push(format!("demuxer stopped: {e}"));
        }
        findings.push(Finding {
            kind: FindingKind::Truncated,
            severity: Severity::Critical,
            summary: why.join("; "),
            evidence: json!({
                "overrun": c.overrun,
                "declared_duration_ms": declared.map(ms),
                "readable_duration_ms": ms(readable),
                "demux_error": r.demux.error,
            }),
        });
    }
    if let Some(e) = &c.box_error {
        findings.push(Finding {
            kind: FindingKind::TrailingData,
            severity: Severity::Warning,
            summary: format!("bytes from offset {} are not a box: {}", e.offset, e.detail),
            evidence: json!({ "offset": e.offset, "detail": e.detail, "file_size": r.file_size }),
        });
    }
    for g in interruptions(r, policy) {
        findings.push(Finding {
            kind: FindingKind::TimestampGap,
            severity: Severity::Warning,
            summary: format!("{} ms without packets after {} ms", ms(g.length_ns), ms(g.at_ns)),
            evidence: json!({ "at_ms": ms(g.at_ns), "length_ms": ms(g.length_ns), "tracks": g.tracks }),
        });
    }
    let has = |k| r.tracks.iter().any(|t| t.kind == k && t.packets > 0);
    if !r.tracks.iter().any(|t| t.kind == TrackKind::Video) {
        findings.push(Finding {
            kind: FindingKind::NoVideoTrack,
            severity: Severity::Warning,
            summary: "no video track".into(),
            evidence: json!({ "tracks": r.tracks.len() }),
        });
    }
    if let Some(audio) = r.audio.as_ref().filter(|a| a.digital_silence) {
        findings.push(Finding {
            kind: FindingKind::AudioMissing,
            severity: Severity::Warning,
            summary: "the audio track is digital silence throughout: notification (R13.1) and explanations (R15.1) cannot be checked".into(),
            evidence: json!({ "decoded_ms": ms(audio.decoded_ns), "peak_dbfs": audio.peak_dbfs }),
        });
    }
    if !r.tracks.iter().any(|t| t.kind == TrackKind::Audio) {
        findings.push(Finding {
            kind: FindingKind::AudioMissing,
            severity: Severity::Warning,
            summary: "no audio track: notification (R13.1) and explanations (R15.1) cannot be checked".into(),
            evidence: json!({ "video_packets": has(TrackKind::Video) }),
        });
    }
    Assessment { verdict: Ok(()), readable_duration_ns: readable, declared_duration_ns: declared, findings }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn b(fourcc: &str, offset: u64, size: u64) -> TopLevelBox {
        TopLevelBox { fourcc: fourcc.into(), offset, size }
    }

    fn track(kind: TrackKind, end_s: u64) -> TrackReport {
        TrackReport {
            kind,
            codec: if kind == TrackKind::Video { "h264" } else { "aac" }.into(),
            profile: None,
            width: None,
            height: None,
            frame_rate: None,
            sample_rate: None,
            channels: None,
            packets: end_s * 30,
            bytes: end_s * 1000,
            first_pts_ns: Some(0),
            end_ns: Some(end_s * S),
            gaps: vec![],
        }
    }

    /// A well-formed 60 s file with moov at the end.
    fn good() -> ProbeReport {
        ProbeReport {
            file_size: 10_000,
            container: ContainerLayout {
                major_brand: Some("isom".into()),
                box_count: 3,
                boxes: vec![b("ftyp", 0, 32), b("mdat", 32, 9000), b("moov", 9032, 968)],
                moov_offset: Some(9032),
                first_mdat_offset: Some(32),
                ..ContainerLayout::default()
            },
            movie: Some(MovieHeader {
                timescale: 1000,
                duration_ns: Some(60 * S),
                fragment_duration_ns: None,
                creation_time: None,
            }),
            tracks: vec![track(TrackKind::Video, 60), track(TrackKind::Audio, 60)],
            demux: DemuxOutcome { reached_end: true, error: None },
            audio: None,
        }
    }

    fn kinds(a: &Assessment) -> Vec<FindingKind> {
        a.findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_good_file_is_accepted_without_findings() {
        let a = assess(&good(), &ProbePolicy::default());
        assert_eq!(a.verdict, Ok(()));
        assert_eq!(a.readable_duration_ns, 60 * S);
        assert_eq!(a.declared_duration_ns, Some(60 * S));
        assert!(a.findings.is_empty(), "{:?}", a.findings);
    }

    #[test]
    fn empty_and_foreign_files_are_rejected() {
        let mut r = good();
        r.file_size = 0;
        assert_eq!(assess(&r, &ProbePolicy::default()).verdict, Err(Rejection::EmptyFile));

        let mut r = good();
        r.container = ContainerLayout {
            box_error: Some(BoxError { offset: 0, detail: "bad fourcc".into() }),
            ..ContainerLayout::default()
        };
        let a = assess(&r, &ProbePolicy::default());
        assert_eq!(a.verdict.unwrap_err().code(), "not_mp4");

        let mut r = good();
        r.container.boxes[0].fourcc = "RIFF".into();
        assert_eq!(assess(&r, &ProbePolicy::default()).verdict.unwrap_err().code(), "not_mp4");

        // ftyp and nothing else
        let mut r = good();
        r.container.boxes.truncate(1);
        r.container.moov_offset = None;
        r.container.first_mdat_offset = None;
        assert_eq!(assess(&r, &ProbePolicy::default()).verdict.unwrap_err().code(), "not_mp4");
    }

    #[test]
    fn r2_1_no_moov_is_unfinalized_but_kept_as_evidence() {
        let mut r = good();
        r.container.boxes.truncate(2);
        r.container.moov_offset = None;
        r.container.open_ended_mdat = true;
        r.movie = None;
        r.tracks.clear();
        r.demux.error = Some("This file contains no playable streams.".into());
        let a = assess(&r, &ProbePolicy::default());
        assert_eq!(a.verdict, Ok(()));
        assert_eq!(kinds(&a), vec![FindingKind::Unfinalized]);
        assert_eq!(a.findings[0].severity, Severity::Critical);
        assert_eq!(a.readable_duration_ns, 0);
    }

    #[test]
    fn a_moov_without_tracks_is_unreadable() {
        let mut r = good();
        r.tracks.clear();
        r.demux.error = Some("internal data stream error".into());
        let a = assess(&r, &ProbePolicy::default());
        assert_eq!(a.verdict, Err(Rejection::UnreadableContainer { detail: "internal data stream error".into() }));
    }

    #[test]
    fn r2_1_a_moov_cut_short_is_unfinalized_not_unreadable() {
        let mut r = good();
        r.container.overrun =
            Some(BoxOverrun { fourcc: "moov".into(), offset: 9032, declared_size: 968, available: 868 });
        r.tracks.clear();
        r.demux.error = Some("This file is incomplete and cannot be played.".into());
        let a = assess(&r, &ProbePolicy::default());
        assert_eq!(a.verdict, Ok(()));
        assert_eq!(kinds(&a), vec![FindingKind::Unfinalized]);
        // the same cut inside an mdat, with nothing readable, stays unreadable
        r.container.overrun =
            Some(BoxOverrun { fourcc: "mdat".into(), offset: 32, declared_size: 9000, available: 10 });
        assert_eq!(assess(&r, &ProbePolicy::default()).verdict.unwrap_err().code(), "unreadable_container");
    }

    #[test]
    fn r2_1_an_mdat_running_past_the_end_is_truncated() {
        // moov first, mdat cut: qtdemux plays silently to where the bytes stop
        let mut r = good();
        r.container.boxes = vec![b("ftyp", 0, 32), b("moov", 32, 968), b("mdat", 1000, 20_000)];
        r.container.moov_offset = Some(32);
        r.container.first_mdat_offset = Some(1000);
        r.container.overrun =
            Some(BoxOverrun { fourcc: "mdat".into(), offset: 1000, declared_size: 20_000, available: 9000 });
        r.tracks = vec![track(TrackKind::Video, 27), track(TrackKind::Audio, 27)];
        let a = assess(&r, &ProbePolicy::default());
        assert_eq!(a.verdict, Ok(()));
        assert_eq!(kinds(&a), vec![FindingKind::Truncated]);
        assert_eq!(a.readable_duration_ns, 27 * S);
        assert_eq!(a.findings[0].evidence["readable_duration_ms"], 27_000);
        assert_eq!(a.findings[0].evidence["declared_duration_ms"], 60_000);
        assert!(a.findings[0].summary.contains("mdat box at offset 1000"), "{}", a.findings[0].summary);
    }

    #[test]
    fn r2_1_truncation_tolerance_at_and_around_the_threshold() {
        let policy = ProbePolicy { gap_threshold_ns: S, truncation_tolerance_ns: S, speech: false };
        for (readable_ms, truncated) in
            [(60_000, false), (59_000, false), (58_999, true), (10_000, true), (61_000, false)]
        {
            let mut r = good();
            for t in &mut r.tracks {
                t.end_ns = Some(readable_ms * 1_000_000);
            }
            let a = assess(&r, &policy);
            assert_eq!(kinds(&a).contains(&FindingKind::Truncated), truncated, "readable {readable_ms} ms");
        }
    }

    #[test]
    fn fragmented_files_use_the_fragment_duration() {
        let mut r = good();
        r.movie = Some(MovieHeader {
            timescale: 1000,
            duration_ns: None,
            fragment_duration_ns: Some(60 * S),
            creation_time: None,
        });
        r.tracks = vec![track(TrackKind::Video, 30), track(TrackKind::Audio, 30)];
        assert_eq!(kinds(&assess(&r, &ProbePolicy::default())), vec![FindingKind::Truncated]);
        // a live fragmented file declares nothing: only the box walk can tell
        r.movie =
            Some(MovieHeader { timescale: 1000, duration_ns: None, fragment_duration_ns: None, creation_time: None });
        assert!(assess(&r, &ProbePolicy::default()).findings.is_empty());
    }

    #[test]
    fn a_demux_error_after_some_packets_is_truncation() {
        let mut r = good();
        r.demux = DemuxOutcome { reached_end: false, error: Some("stream error".into()) };
        assert_eq!(kinds(&assess(&r, &ProbePolicy::default())), vec![FindingKind::Truncated]);
    }

    #[test]
    fn r12_1_gaps_at_and_around_the_threshold() {
        let policy = ProbePolicy { gap_threshold_ns: S, truncation_tolerance_ns: S, speech: false };
        for (gap_ms, flagged) in [(999, false), (1000, false), (1001, true), (5000, true)] {
            let mut r = good();
            r.tracks[0].gaps = vec![TimestampGap { at_ns: 10 * S, length_ns: gap_ms * 1_000_000 }];
            let a = assess(&r, &policy);
            assert_eq!(kinds(&a) == vec![FindingKind::TimestampGap], flagged, "gap {gap_ms} ms: {:?}", kinds(&a));
            if flagged {
                assert_eq!(a.findings[0].evidence["at_ms"], 10_000);
                assert_eq!(a.findings[0].evidence["length_ms"], gap_ms);
                assert_eq!(a.findings[0].kind.requirement(), "R12.1");
            }
        }
    }

    #[test]
    fn r12_1_simultaneous_gaps_on_several_tracks_are_one_interruption() {
        let mut r = good();
        r.tracks[0].gaps =
            vec![TimestampGap { at_ns: 3 * S, length_ns: 4 * S }, TimestampGap { at_ns: 30 * S, length_ns: 2 * S }];
        r.tracks[1].gaps = vec![TimestampGap { at_ns: 3 * S + 8_000_000, length_ns: 4 * S }];
        let a = assess(&r, &ProbePolicy::default());
        assert_eq!(kinds(&a), vec![FindingKind::TimestampGap, FindingKind::TimestampGap]);
        assert_eq!(a.findings[0].evidence["tracks"], json!([0, 1]));
        assert_eq!(a.findings[0].evidence["at_ms"], 3000);
        assert_eq!(a.findings[0].evidence["length_ms"], 4008);
        assert_eq!(a.findings[1].evidence["tracks"], json!([0]));
        assert_eq!(a.findings[1].evidence["at_ms"], 30_000);
    }

    #[test]
    fn missing_tracks_are_findings() {
        let mut r = good();
        r.tracks.retain(|t| t.kind == TrackKind::Video);
        assert_eq!(kinds(&assess(&r, &ProbePolicy::default())), vec![FindingKind::AudioMissing]);
        let mut r = good();
        r.tracks.retain(|t| t.kind == TrackKind::Audio);
        assert_eq!(kinds(&assess(&r, &ProbePolicy::default())), vec![FindingKind::NoVideoTrack]);
    }

    #[test]
    fn r13_1_digital_silence_is_audio_missing() {
        let mut r = good();
        r.audio = Some(crate::speech::AudioAnalysis {
            detector: "test".into(),
            decoded_ns: 60 * S,
            rms_dbfs: f32::NEG_INFINITY,
            peak_dbfs: f32::NEG_INFINITY,
            digital_silence: true,
            speech: vec![],
        });
        let a = assess(&r, &ProbePolicy::default());
        assert_eq!(kinds(&a), vec![FindingKind::AudioMissing]);
        assert!(a.findings[0].summary.contains("silence"));
        r.audio.as_mut().unwrap().digital_silence = false;
        assert!(assess(&r, &ProbePolicy::default()).findings.is_empty());
    }

    #[test]
    fn trailing_garbage_is_a_warning() {
        let mut r = good();
        r.container.box_error = Some(BoxError { offset: 10_000, detail: "zero padding".into() });
        let a = assess(&r, &ProbePolicy::default());
        assert_eq!(kinds(&a), vec![FindingKind::TrailingData]);
        assert_eq!(a.findings[0].severity, Severity::Warning);
    }
}
