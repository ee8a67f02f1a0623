//! recvault-media: the media probe the ingest worker runs on a spooled local file.
//!
//! [`probe`] reads the same file twice and fills a [`ProbeReport`] for
//! [`recvault_core::probe::assess`]: a top-level box walk in pure Rust (is there a `moov`, does a
//! box run past the end, what does the header declare) and a GStreamer packet walk (tracks,
//! codecs, packet counts, timeline extent, gaps). qtdemux alone plays a truncated file silently to
//! where the bytes stop; only the box walk sees that bytes are missing.
//!
//! A bad file is never an error: it yields a report whose facts make `assess` reject or flag it.
//! [`MediaError`] is for the environment (file unreadable, GStreamer or a plugin missing).
//!
//! # Layout
//! - [`boxes`]: top-level box walk over `Read + Seek` (seeks over bodies; multi-GB safe).
//! - `movie`: `mvhd` and `mvex/mehd` inside `moov`.
//! - `demux`: `filesrc ! qtdemux`, counting pad probes, one sink branch per pad, bus watchdog.
//! - `track`: per-track packet accounting and gap detection (decode order).
//! - `caps`: caps → kind, codec name, format fields.
//! - `env`: `gst::init` and the required elements with their Debian packages.

#![warn(missing_docs)]
pub mod boxes;
mod caps;
mod demux;
mod env;
mod error;
mod movie;
mod track;

pub use env::init;
pub use error::MediaError;

use recvault_core::probe::{DemuxOutcome, FIRST_BOX_TYPES, ProbePolicy, ProbeReport};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// Probes the file at `path`. Blocking (run it on `spawn_blocking`): the box walk costs a few
/// reads per top-level box, the packet walk reads the media once at demux speed.
///
/// The packet walk is skipped for files the box walk already shows are not ISO BMFF (empty, no
/// box header at offset 0, or a first box of a foreign type): `assess` rejects those on the
/// container facts alone, and garbage is never fed to a demuxer.
pub fn probe(path: &Path, policy: &ProbePolicy) -> Result<ProbeReport, MediaError> {
    init()?;
    let open = |source| MediaError::Open { path: path.to_owned(), source };
    let file = File::open(path).map_err(open)?;
    let file_size = file.metadata().map_err(open)?.len();
    // Small buffer: the walk reads 8–16 bytes per box and seeks, a large one would read ahead
    // for nothing.
    let mut reader = BufReader::with_capacity(256, file);
    let walk =
        boxes::walk(&mut reader, file_size).map_err(|source| MediaError::Read { path: path.to_owned(), source })?;

    let iso = walk.layout.boxes.first().is_some_and(|b| FIRST_BOX_TYPES.contains(&b.fourcc.as_str()));
    let (tracks, demux) = if iso {
        let d = demux::packet_walk(path, file_size, policy)?;
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
    Ok(ProbeReport { file_size, container: walk.layout, movie: walk.movie, tracks, demux })
}
