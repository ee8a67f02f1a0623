//! recvault-media: the media probe the ingest worker runs on a spooled local file.
//!
//! [`probe`] fills a [`ProbeReport`] for [`recvault_core::probe::assess`] from a top-level box
//! walk in pure Rust (is there a `moov`, does a box run past the end, what does the header
//! declare) and a GStreamer packet walk (tracks, codecs, packet counts, timeline extent, gaps).
//! qtdemux alone plays a truncated file silently to where the bytes stop; only the box walk sees
//! that bytes are missing. In a finished, unfragmented file the packets of tracks that are not
//! decoded are counted from the `moov`'s sample tables ([`Counting::SampleTables`]), and qtdemux
//! reads only the audio it decodes; anything the tables cannot vouch for is read as before.
//!
//! With `policy.speech`, the packet walk also decodes the first AAC track (same pass, the media is
//! read once) and a voice-activity detector finds speech in it ([`ProbeReport::audio`], R13.1,
//! R15.1); `ACCURACY.md` at the repository root records how the detector was chosen.
//!
//! A bad file is never an error: it yields a report whose facts make `assess` reject or flag it.
//! [`MediaError`] is for the environment (file unreadable, GStreamer or a plugin missing).
//!
//! # Layout
//! - [`boxes`]: top-level box walk over `Read + Seek` (seeks over bodies; multi-GB safe).
//! - `movie`: `mvhd` and `mvex/mehd` inside `moov`.
//! - `tables`: per-track sample tables from `moov` (sizes, times, placement), validated.
//! - `demux`: `filesrc ! qtdemux`, counting pad probes, one sink branch per pad, bus watchdog.
//! - `audio`: the AAC pad's decoding branch (to 16 kHz mono) and the tap to the detector thread.
//! - [`voice`]: PCM placed by timestamps → frames → detector → speech segments; loudness.
//! - `cues`: per-segment level, dryness and spectral cues of who spoke (R13.1, R15.1).
//! - `track`: per-track packet accounting and gap detection (decode order).
//! - `caps`: caps → kind, codec name, format fields.
//! - `env`: `gst::init` and the required elements with their Debian packages.

#![warn(missing_docs)]
mod audio;
pub mod boxes;
mod caps;
mod cues;
mod demux;
mod env;
mod error;
mod movie;
pub mod tables;
mod track;
pub mod voice;

pub use audio::Chunk;
pub use env::init;
pub use error::MediaError;

use recvault_core::probe::{ContainerLayout, DemuxOutcome, FIRST_BOX_TYPES, ProbePolicy, ProbeReport};
use recvault_core::speech::SegmentRules;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::sync::mpsc::Receiver;
use voice::{Analyzer, VoiceDetector};

/// How the packets of tracks that are not decoded are accounted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Counting {
    /// From the sample tables where the file has trustworthy ones (finished, unfragmented, every
    /// sample inside the file), else by demuxing: the same report, without reading the video.
    #[default]
    SampleTables,
    /// qtdemux reads every packet (the reference the tables are tested against).
    Demuxer,
}

/// Probes the file at `path`. Blocking (run it on `spawn_blocking`): the box walk costs a few
/// reads per top-level box, the packet walk reads the media once at demux speed.
///
/// The packet walk is skipped for files the box walk already shows are not ISO BMFF (empty, no
/// box header at offset 0, or a first box of a foreign type): `assess` rejects those on the
/// container facts alone, and garbage is never fed to a demuxer.
pub fn probe(path: &Path, policy: &ProbePolicy) -> Result<ProbeReport, MediaError> {
    probe_with(path, policy, voice::Detector::default, voice::Detector::rules())
}

/// [`probe`], counting packets as `counting` says.
pub fn probe_counting(path: &Path, policy: &ProbePolicy, counting: Counting) -> Result<ProbeReport, MediaError> {
    probe_by(path, policy, counting, voice::Detector::default, voice::Detector::rules())
}

/// [`probe`] with another voice-activity detector (built on the analysis thread by `detector`, so
/// it need not be `Send`) and other segment rules.
pub fn probe_with<D, F>(
    path: &Path,
    policy: &ProbePolicy,
    detector: F,
    rules: SegmentRules,
) -> Result<ProbeReport, MediaError>
where
    D: VoiceDetector,
    F: FnOnce() -> D + Send + 'static,
{
    probe_by(path, policy, Counting::default(), detector, rules)
}

fn probe_by<D, F>(
    path: &Path,
    policy: &ProbePolicy,
    counting: Counting,
    detector: F,
    rules: SegmentRules,
) -> Result<ProbeReport, MediaError>
where
    D: VoiceDetector,
    F: FnOnce() -> D + Send + 'static,
{
    let (mut report, audio) = walk(path, policy, counting, move |rx: Receiver<Vec<Chunk>>| {
        let mut analyzer = Analyzer::new(detector(), rules);
        for (pts, samples) in rx.into_iter().flatten() {
            analyzer.push(pts, &samples);
        }
        (analyzer.samples() > 0).then(|| analyzer.finish())
    })?;
    report.audio = audio.flatten();
    Ok(report)
}

/// The first AAC track decoded exactly as [`probe`] decodes it (16 kHz mono, each buffer with its
/// timestamp on the file timeline), for evaluating detectors offline. Empty without an AAC track.
pub fn decode_audio(path: &Path) -> Result<Vec<Chunk>, MediaError> {
    let policy = ProbePolicy { speech: true, ..ProbePolicy::default() };
    let (_, chunks) = walk(path, &policy, Counting::default(), |rx: Receiver<Vec<Chunk>>| {
        rx.into_iter().flatten().collect::<Vec<_>>()
    })?;
    Ok(chunks.unwrap_or_default())
}

/// The probe, with `consume` run on its own thread over the decoded audio when `policy.speech`.
fn walk<T, C>(
    path: &Path,
    policy: &ProbePolicy,
    counting: Counting,
    consume: C,
) -> Result<(ProbeReport, Option<T>), MediaError>
where
    T: Send + 'static,
    C: FnOnce(Receiver<Vec<Chunk>>) -> T + Send + 'static,
{
    init()?;
    if policy.speech {
        env::require_audio()?;
    }
    let open = |source| MediaError::Open { path: path.to_owned(), source };
    let file = File::open(path).map_err(open)?;
    let file_size = file.metadata().map_err(open)?.len();
    // Small buffer: the walk reads 8–16 bytes per box and seeks, a large one would read ahead
    // for nothing.
    let mut reader = BufReader::with_capacity(256, file);
    let walk =
        boxes::walk(&mut reader, file_size).map_err(|source| MediaError::Read { path: path.to_owned(), source })?;

    let iso = walk.layout.boxes.first().is_some_and(|b| FIRST_BOX_TYPES.contains(&b.fourcc.as_str()));
    let mut consumed = None;
    let (tracks, demux) = if iso {
        let (tap, consumer) = if policy.speech {
            let (tap, rx) = audio::Tap::new();
            let thread = std::thread::Builder::new()
                .name("recvault-vad".into())
                .spawn(move || consume(rx))
                .map_err(|e| MediaError::Pipeline(format!("cannot start the audio analysis thread: {e}")))?;
            (Some(tap), Some(thread))
        } else {
            (None, None)
        };
        let tables = match counting {
            Counting::SampleTables => sample_tables(&mut reader, &walk.layout, file_size),
            Counting::Demuxer => HashMap::new(),
        };
        // The tap is closed when the walk returns, so the consumer always finishes.
        let d = demux::packet_walk(path, file_size, policy, tap, tables);
        if let Some(thread) = consumer {
            consumed = Some(thread.join().map_err(|_| MediaError::Pipeline("audio analysis panicked".into()))?);
        }
        let d = d?;
        (d.tracks, d.outcome)
    } else {
        let skipped =
            DemuxOutcome { reached_end: false, error: Some("packet walk skipped: not an iso base media file".into()) };
        (Vec::new(), skipped)
    };
    tracing::debug!(
        path = %path.display(),
        file_size,
        boxes = walk.layout.box_count,
        tracks = tracks.len(),
        reached_end = demux.reached_end,
        error = demux.error.as_deref(),
        "probed"
    );
    let report = ProbeReport { file_size, container: walk.layout, movie: walk.movie, tracks, demux, audio: None };
    Ok((report, consumed))
}

/// The sample tables of a file whose structure is whole (a `moov`, no fragments, no box running
/// past the end or unreadable); none otherwise, or when the tables themselves are not sound.
fn sample_tables<R: Read + Seek>(r: &mut R, layout: &ContainerLayout, file_size: u64) -> HashMap<u32, tables::Table> {
    let whole = layout.fragments == 0 && layout.overrun.is_none() && layout.box_error.is_none();
    let Some(moov) = layout.moov_offset.filter(|_| whole) else {
        return HashMap::new();
    };
    tables::read(r, moov, file_size).unwrap_or_else(|reason| {
        tracing::debug!(reason, "packets counted by the demuxer: sample tables not used");
        HashMap::new()
    })
}
