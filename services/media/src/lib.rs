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
//! - [`growing`]: a file still being downloaded, read as it grows ([`probe_growing`]).
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
pub mod growing;
mod movie;
pub mod tables;
mod track;
pub mod voice;

pub use audio::Chunk;
pub use env::init;
pub use error::MediaError;

use growing::GrowingReader;
use recvault_core::probe::{ContainerLayout, DemuxOutcome, FIRST_BOX_TYPES, ProbePolicy, ProbeReport};
use recvault_core::speech::SegmentRules;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::sync::Arc;
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

/// [`probe`] of a file that is still being written (the worker's spool file while its download
/// runs): the probe starts at once and each read waits for its bytes, so a faststart or
/// fragmented file is probed alongside its download (issue 8). `size` is the size the file will
/// have. The report is the one [`probe`] gives on the finished file; if the download fails, the
/// probe fails with [`MediaError::Read`].
pub fn probe_growing(
    path: &Path,
    size: u64,
    growth: &growing::Growth,
    policy: &ProbePolicy,
) -> Result<ProbeReport, MediaError> {
    let input = Input::Growing { path, size, growth };
    let (counting, rules) = (Counting::default(), voice::Detector::rules());
    match probe_input(input, policy, counting, voice::Detector::default, rules)? {
        Some(report) => Ok(report),
        // The download is complete by now: probe the finished file.
        None => probe_by(path, policy, counting, voice::Detector::default, rules),
    }
}

/// What a probe reads.
#[derive(Debug, Clone, Copy)]
enum Input<'a> {
    File(&'a Path),
    Growing { path: &'a Path, size: u64, growth: &'a growing::Growth },
}

impl Input<'_> {
    fn path(&self) -> &Path {
        match self {
            Self::File(p) | Self::Growing { path: p, .. } => p,
        }
    }
}

/// `Read + Seek` for the box walk, whichever the input.
trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

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
    probe_input(Input::File(path), policy, counting, detector, rules)?
        .ok_or_else(|| MediaError::Pipeline("a finished file was walked as a growing one".into()))
}

/// The probe of `input`; `None` when a growing file must be probed again once whole
/// (see [`walk`]).
fn probe_input<D, F>(
    input: Input<'_>,
    policy: &ProbePolicy,
    counting: Counting,
    detector: F,
    rules: SegmentRules,
) -> Result<Option<ProbeReport>, MediaError>
where
    D: VoiceDetector,
    F: FnOnce() -> D + Send + 'static,
{
    let analyse = move |rx: Receiver<Vec<Chunk>>| {
        let mut analyzer = Analyzer::new(detector(), rules);
        for (pts, samples) in rx.into_iter().flatten() {
            analyzer.push(pts, &samples);
        }
        (analyzer.samples() > 0).then(|| analyzer.finish())
    };
    Ok(walk(input, policy, counting, analyse)?.map(|(mut report, audio)| {
        report.audio = audio.flatten();
        report
    }))
}

/// The first AAC track decoded exactly as [`probe`] decodes it (16 kHz mono, each buffer with its
/// timestamp on the file timeline), for evaluating detectors offline. Empty without an AAC track.
pub fn decode_audio(path: &Path) -> Result<Vec<Chunk>, MediaError> {
    let policy = ProbePolicy { speech: true, ..ProbePolicy::default() };
    let walked = walk(Input::File(path), &policy, Counting::default(), |rx: Receiver<Vec<Chunk>>| {
        rx.into_iter().flatten().collect::<Vec<_>>()
    })?;
    Ok(walked.and_then(|(_, chunks)| chunks).unwrap_or_default())
}

/// The probe, with `consume` run on its own thread over the decoded audio when `policy.speech`.
///
/// `None` when the packet walk of a growing file counted tracks from sample tables that the
/// whole file turned out not to vouch for (fragmented, cut or damaged after its `moov`), or
/// pushed a fragmented file that turned out damaged: the
/// caller probes it again, whole.
fn walk<T, C>(
    input: Input<'_>,
    policy: &ProbePolicy,
    counting: Counting,
    consume: C,
) -> Result<Option<(ProbeReport, Option<T>)>, MediaError>
where
    T: Send + 'static,
    C: FnOnce(Receiver<Vec<Chunk>>) -> T + Send + 'static,
{
    init()?;
    if policy.speech {
        env::require_audio()?;
    }
    let path = input.path();
    let open = |source| MediaError::Open { path: path.to_owned(), source };
    let read = |source| MediaError::Read { path: path.to_owned(), source };
    let file = File::open(path).map_err(open)?;
    let (file_size, growth) = match input {
        Input::File(_) => (file.metadata().map_err(open)?.len(), None),
        Input::Growing { size, growth, .. } => (size, Some(growth)),
    };
    // The box walk's reader, and for a growing file a second one for the packet walk.
    let (boxes_from, packets_from): (Box<dyn ReadSeek>, _) = match growth {
        None => (Box::new(file), None),
        Some(g) => {
            let packets = Arc::new(GrowingReader::new(file.try_clone().map_err(open)?, g.clone(), file_size));
            (Box::new(GrowingReader::new(file, g.clone(), file_size)), Some(packets))
        }
    };
    let source = |push| match &packets_from {
        None => demux::Source::File(path),
        Some(reader) => demux::Source::Growing { path, reader: Arc::clone(reader), push },
    };
    // Small buffer: the walk reads 8–16 bytes per box and seeks, a large one would read ahead
    // for nothing.
    let mut reader = BufReader::with_capacity(256, boxes_from);
    // A file still downloading whose `moov` comes before its media: the packet walk starts from
    // the `moov` read off the head of the file, while the box walk, which must see the end of
    // the file, waits for it on a thread of its own. Any other file is walked once it is whole.
    let ahead = match growth {
        Some(_) => boxes::moov_ahead(&mut reader, file_size).map_err(read)?,
        None => None,
    };
    let Some(moov) = ahead else {
        let walk = boxes::walk(&mut reader, file_size).map_err(read)?;
        let iso = walk.layout.boxes.first().is_some_and(|b| FIRST_BOX_TYPES.contains(&b.fourcc.as_str()));
        let tables = match counting {
            Counting::SampleTables => sample_tables(&mut reader, &walk.layout, file_size),
            Counting::Demuxer => HashMap::new(),
        };
        let (tracks, demux, consumed) = if iso {
            packets(source(false), file_size, policy, tables, consume)?
        } else {
            let skipped = DemuxOutcome {
                reached_end: false,
                error: Some("packet walk skipped: not an iso base media file".into()),
            };
            (Vec::new(), skipped, None)
        };
        return Ok(Some((report(path, file_size, walk, tracks, demux), consumed)));
    };
    let tables = match counting {
        Counting::SampleTables => tables::read(&mut reader, moov, file_size).unwrap_or_default(),
        Counting::Demuxer => HashMap::new(),
    };
    let used_tables = !tables.is_empty();
    // A fragmented file is pushed to qtdemux from start to end, so its fragments are read as they
    // arrive (pulling, qtdemux first looks for their index at the end of the file).
    let streamed = !used_tables && announces_fragments(&mut reader, moov, file_size).map_err(read)?;
    let whole = std::thread::Builder::new()
        .name("recvault-boxes".into())
        .spawn(move || boxes::walk(&mut reader, file_size))
        .map_err(|e| MediaError::Pipeline(format!("cannot start the box walk: {e}")))?;
    let walked = packets(source(streamed), file_size, policy, tables, consume);
    let walk = whole.join().map_err(|_| MediaError::Pipeline("the box walk panicked".into()))?.map_err(read)?;
    let (tracks, demux, consumed) = walked?;
    // The tables read off the head are the ones `sample_tables` would have used on the whole
    // file, or the tracks they counted are counted again by the demuxer.
    if used_tables && tables_moov(&walk.layout) != Some(moov) {
        return Ok(None);
    }
    // Pushed, qtdemux may word a damaged file's faults otherwise than pulling it: only a clean
    // walk of a whole file is kept, anything else is walked again as a finished file.
    let clean = walk.layout.overrun.is_none() && walk.layout.box_error.is_none();
    if streamed && !(clean && demux.reached_end && demux.error.is_none()) {
        return Ok(None);
    }
    Ok(Some((report(path, file_size, walk, tracks, demux), consumed)))
}

/// The packet walk, with the decoded audio consumed on a thread of its own.
fn packets<T, C>(
    source: demux::Source<'_>,
    file_size: u64,
    policy: &ProbePolicy,
    tables: HashMap<u32, tables::Table>,
    consume: C,
) -> Result<(Vec<recvault_core::probe::TrackReport>, DemuxOutcome, Option<T>), MediaError>
where
    T: Send + 'static,
    C: FnOnce(Receiver<Vec<Chunk>>) -> T + Send + 'static,
{
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
    let d = demux::packet_walk(source, file_size, policy, tap, tables);
    let consumed = match consumer {
        Some(thread) => Some(thread.join().map_err(|_| MediaError::Pipeline("audio analysis panicked".into()))?),
        None => None,
    };
    let d = d?;
    Ok((d.tracks, d.outcome, consumed))
}

fn report(
    path: &Path,
    file_size: u64,
    walk: boxes::BoxWalk,
    tracks: Vec<recvault_core::probe::TrackReport>,
    demux: DemuxOutcome,
) -> ProbeReport {
    tracing::debug!(
        path = %path.display(),
        file_size,
        boxes = walk.layout.box_count,
        tracks = tracks.len(),
        reached_end = demux.reached_end,
        error = demux.error.as_deref(),
        "probed"
    );
    ProbeReport { file_size, container: walk.layout, movie: walk.movie, tracks, demux, audio: None }
}

/// Whether the `moov` at `offset` announces fragments (`mvex`).
fn announces_fragments<R: Read + Seek>(r: &mut R, offset: u64, file_size: u64) -> std::io::Result<bool> {
    r.seek(std::io::SeekFrom::Start(offset))?;
    let boxes::HeaderRead::Box(h) = boxes::read_header(r, file_size - offset)? else {
        return Ok(false);
    };
    let len = h.size.unwrap_or(file_size - offset).min(file_size - offset).saturating_sub(h.header_len);
    movie::has_mvex(r, offset + h.header_len, len)
}

/// Where the `moov` of a file whose structure is whole (no fragments, no box running past the
/// end or unreadable) starts: only such a file's sample tables are used.
fn tables_moov(layout: &ContainerLayout) -> Option<u64> {
    let whole = layout.fragments == 0 && layout.overrun.is_none() && layout.box_error.is_none();
    layout.moov_offset.filter(|_| whole)
}

/// The sample tables of a file whose structure is whole (a `moov`, no fragments, no box running
/// past the end or unreadable); none otherwise, or when the tables themselves are not sound.
fn sample_tables<R: Read + Seek>(r: &mut R, layout: &ContainerLayout, file_size: u64) -> HashMap<u32, tables::Table> {
    let Some(moov) = tables_moov(layout) else {
        return HashMap::new();
    };
    tables::read(r, moov, file_size).unwrap_or_else(|reason| {
        tracing::debug!(reason, "packets counted by the demuxer: sample tables not used");
        HashMap::new()
    })
}
