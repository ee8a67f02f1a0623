//! recvault-media: the media probe the ingest worker runs on a spooled local file.
//!
//! [`probe`] reads the same file twice and fills a [`ProbeReport`] for
//! [`recvault_core::probe::assess`]: a top-level box walk in pure Rust (is there a `moov`, does a
//! box run past the end, what does the header declare) and a GStreamer packet walk (tracks,
//! codecs, packet counts, timeline extent, gaps). qtdemux alone plays a truncated file silently to
//! where the bytes stop; only the box walk sees that bytes are missing.
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
mod track;
pub mod voice;

pub use audio::Chunk;
pub use env::init;
pub use error::MediaError;

use recvault_core::probe::{DemuxOutcome, FIRST_BOX_TYPES, ProbePolicy, ProbeReport};
use recvault_core::speech::SegmentRules;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::mpsc::Receiver;
use voice::{Analyzer, VoiceDetector};

/// Probes the file at `path`. Blocking (run it on `spawn_blocking`): the box walk costs a few
/// reads per top-level box, the packet walk reads the media once at demux speed.
///
/// The packet walk is skipped for files the box walk already shows are not ISO BMFF (empty, no
/// box header at offset 0, or a first box of a foreign type): `assess` rejects those on the
/// container facts alone, and garbage is never fed to a demuxer.
pub fn probe(path: &Path, policy: &ProbePolicy) -> Result<ProbeReport, MediaError> {
    probe_with(path, policy, voice::Detector::default, voice::Detector::rules())
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
    let (mut report, audio) = walk(path, policy, move |rx: Receiver<Vec<Chunk>>| {
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
    let (_, chunks) = walk(path, &policy, |rx: Receiver<Vec<Chunk>>| rx.into_iter().flatten().collect::<Vec<_>>())?;
    Ok(chunks.unwrap_or_default())
}

/// The probe, with `consume` run on its own thread over the decoded audio when `policy.speech`.
fn walk<T, C>(path: &Path, policy: &ProbePolicy, consume: C) -> Result<(ProbeReport, Option<T>), MediaError>
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
        // The tap is closed when the walk returns, so the consumer always finishes.
        let d = demux::packet_walk(path, file_size, policy, tap);
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
