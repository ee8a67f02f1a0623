//! recvault-recover: recovery of unfinalized recordings (R2.1).
//!
//! A recorder that loses power mid-recording leaves an MP4 file with its media data (`mdat`) and
//! no index (`moov`): players and demuxers read nothing, although nearly all the audio and video
//! are there. [`recover`] rebuilds an index for those bytes from a finished recording of the same
//! device (the reference: same codec configuration, timescales, sample shapes) by walking the
//! media data and telling video samples (length-prefixed H.264/H.265 NAL units) from raw AAC
//! frames, as far as the bytes allow, and writes a new, separate file. The damaged original is
//! only read.
//!
//! What cannot be known from the media data alone is stated in [`Recovery::assumptions`]: the
//! timestamps are rebuilt at the reference's constant rates, so a pause inside the file (R15.1) is
//! not visible in the recovered media.
//!
//! # Layout
//! - `mp4`: box reading, the reference's movie and sample tables.
//! - `reference`: what the device's tracks look like (video model, AAC configuration).
//! - `nal`: NAL unit headers, access units, the learned video model.
//! - `aac`: raw AAC frame lengths, by decoding (Symphonia).
//! - `scan`: the walk over the damaged file's media data.
//! - `write`: the recovered file.
//! - [`eval`] (feature `eval`): recovery measured against generated ground truth.

#![warn(missing_docs)]
mod aac;
mod error;
#[cfg(feature = "eval")]
pub mod eval;
pub mod mp4;
mod nal;
mod reference;
mod scan;
mod write;

pub use error::RecoverError;
pub use nal::Codec;
pub use scan::Unplaced;

use reference::Reference;
use scan::Recognisers;
use serde::Serialize;
use std::fs::File;
use std::path::{Path, PathBuf};

/// What a recovery found and wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    /// The reference recording the index was rebuilt from.
    pub reference: PathBuf,
    /// Where the damaged file's media data starts (its first byte, after the `mdat` header).
    pub media_offset: u64,
    /// Bytes of media data in the damaged file.
    pub media_bytes: u64,
    /// Bytes placed as samples (a prefix of the media data).
    pub placed_bytes: u64,
    /// `placed_bytes / media_bytes`.
    pub placed_fraction: f64,
    /// The recovered tracks, in the reference's order (tracks with no sample placed are left out).
    pub tracks: Vec<RecoveredTrack>,
    /// The longest recovered track, in seconds.
    pub duration_seconds: f64,
    /// The bytes that could not be placed, if any, and why.
    pub unplaced: Option<Unplaced>,
    /// What the recovered file takes from the reference rather than from the damaged file.
    pub assumptions: Vec<String>,
}

/// One recovered track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveredTrack {
    /// `video` or `audio`.
    pub kind: &'static str,
    /// `h264`, `h265` or `aac`.
    pub codec: &'static str,
    /// Samples placed.
    pub samples: u64,
    /// Random-access samples among them (every AAC frame is one).
    pub sync_samples: u64,
    /// Bytes placed.
    pub bytes: u64,
    /// Samples × the reference's sample duration.
    pub duration_seconds: f64,
}

/// Rebuilds the index of the unfinalized recording `damaged` from `reference` (a finished
/// recording of the same device) and writes the recovered file to `out`. `damaged` is only read.
///
/// Refuses a damaged file that has a movie box (it is finalized, or truncated rather than
/// unfinalized: nothing to rebuild) or no media data.
pub fn recover(damaged: &Path, reference: &Path, out: &Path) -> Result<Recovery, RecoverError> {
    let reference = Reference::read(reference)?;
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| RecoverError::Io { path, source }
    };
    let not = |why: &str| RecoverError::NotRecoverable { path: damaged.to_owned(), why: why.into() };
    let mut file = File::open(damaged).map_err(io(damaged))?;
    let len = file.metadata().map_err(io(damaged))?.len();
    let top = mp4::top_level(&file, len).map_err(io(damaged))?;
    if top.iter().any(|b| &b.fourcc == b"moov") {
        return Err(not("has a movie box: its index is there, nothing to rebuild"));
    }
    let mdat = top.iter().find(|b| &b.fourcc == b"mdat").ok_or_else(|| not("has no media data (no mdat box)"))?;
    let start = mdat.body();
    // A declared size that fits the file is where the recorder's media data ended; size 0 (the
    // muxer had not written it yet) or one past the end of the file: the data runs to the end.
    let end = match mdat.size {
        Some(s) if mdat.offset + s <= len => mdat.offset + s,
        _ => len,
    };
    if end <= start {
        return Err(not("has an empty mdat box"));
    }

    let video = reference.video.as_ref().map(|(i, m)| (*i, m));
    let audio = match &reference.audio {
        Some((i, asc)) => Some((
            *i,
            aac::Framer::new(asc).map_err(|why| RecoverError::Reference { path: reference.path.clone(), why })?,
        )),
        None => None,
    };
    let (placed, unplaced) = scan::walk(&file, start, end, Recognisers { video, audio });

    let mut tracks: Vec<write::OutTrack<'_>> = Vec::new();
    for (i, track) in reference.movie.tracks.iter().enumerate() {
        let samples: Vec<_> = placed.iter().filter(|p| p.track == i).copied().collect();
        if !samples.is_empty() {
            tracks.push(write::OutTrack { index: i, reference: track, samples });
        }
    }
    let placed_bytes = placed.iter().map(|p| p.size).sum::<u64>();
    let placed_end = placed.last().map_or(start, |p| p.offset + p.size);

    let ftyp = match top.first() {
        Some(b) if &b.fourcc == b"ftyp" && b.size.is_some_and(|s| s <= 4096) => {
            let mut buf = vec![0u8; b.size.unwrap_or(0) as usize];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut buf, 0).map_err(io(damaged))?;
            buf
        }
        _ => reference.movie.ftyp.clone().unwrap_or_default(),
    };
    let mut output = File::create(out).map_err(io(out))?;
    write::write(&mut output, &ftyp, &mut file, start, placed_end, &tracks).map_err(io(out))?;
    output.sync_all().map_err(io(out))?;

    let recovered: Vec<RecoveredTrack> = tracks.iter().map(|t| describe(&reference, t)).collect();
    let duration_seconds = recovered.iter().map(|t| t.duration_seconds).fold(0.0, f64::max);
    let media_bytes = end - start;
    let recovery = Recovery {
        reference: reference.path.clone(),
        media_offset: start,
        media_bytes,
        placed_bytes,
        placed_fraction: placed_bytes as f64 / media_bytes as f64,
        tracks: recovered,
        duration_seconds,
        unplaced,
        assumptions: vec![
            "sample timestamps are rebuilt at the reference's constant frame and sample rates: a pause inside the file cannot be seen".into(),
            "codec configuration (sample entries) is the reference's".into(),
        ],
    };
    tracing::info!(
        damaged = %damaged.display(),
        reference = %reference.path.display(),
        placed_bytes,
        media_bytes,
        duration_seconds,
        unplaced = recovery.unplaced.as_ref().map(|u| u.reason.as_str()),
        "recovered"
    );
    Ok(recovery)
}

fn describe(reference: &Reference, t: &write::OutTrack<'_>) -> RecoveredTrack {
    let (kind, codec) = match &reference.video {
        Some((i, m)) if *i == t.index => ("video", if m.codec == Codec::H264 { "h264" } else { "h265" }),
        _ => ("audio", "aac"),
    };
    RecoveredTrack {
        kind,
        codec,
        samples: t.samples.len() as u64,
        sync_samples: t.samples.iter().filter(|s| s.sync).count() as u64,
        bytes: t.samples.iter().map(|s| s.size).sum(),
        duration_seconds: t.ticks() as f64 / f64::from(t.reference.timescale),
    }
}
