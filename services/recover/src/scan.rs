//! The walk over the damaged file's media data: at each offset, a video sample of the reference's
//! shape, or an AAC frame that decodes, or the end of what can be placed.
//!
//! A unit is taken only when what follows it can be placed too (another unit, the end of the
//! data, or a tail short enough to be a unit the recorder was still writing): bytes that happen to
//! look like one kind of unit rarely also line up with the next. Video is tried first because its
//! test is strict and cheap; an AAC frame is measured by decoding (see `aac`). Nothing is ever
//! skipped: the first bytes that cannot be placed end the walk, and the report says where and why.

use crate::aac::{Framer, MAX_FRAME};
use crate::nal::{Bytes, Unit, VideoModel};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// A sample placed in the damaged file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    /// Index of the reference track it belongs to.
    pub(crate) track: usize,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) sync: bool,
}

/// Where the walk stopped before the end of the data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unplaced {
    /// File offset of the first byte not placed.
    pub offset: u64,
    /// Bytes from there to the end of the media data.
    pub bytes: u64,
    /// Why they could not be placed.
    pub reason: String,
}

/// The tracks to recognise: (reference track index, model).
pub(crate) struct Recognisers<'a> {
    pub(crate) video: Option<(usize, &'a VideoModel)>,
    pub(crate) audio: Option<(usize, Framer)>,
}

impl std::fmt::Debug for Recognisers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognisers").finish_non_exhaustive()
    }
}

/// Walks `[start, end)` of `file`.
pub(crate) fn walk(file: &File, start: u64, end: u64, mut r: Recognisers<'_>) -> (Vec<Placed>, Option<Unplaced>) {
    let mut data = Window::new(file, end);
    let mut placed = Vec::new();
    let mut at = start;
    // the AAC measurement of the offset looked ahead to last, reused when the walk gets there
    let mut ahead: Option<(u64, Option<usize>)> = None;
    while at < end {
        let video = r.video.map(|(i, m)| (i, m.unit(&mut data, at, end)));
        if let Some((track, Unit::Sample { len, sync })) = video
            && next_fits(&mut data, &mut r, &mut ahead, at + len, end)
        {
            placed.push(Placed { track, offset: at, size: len, sync });
            at += len;
            continue;
        }
        let frame = match ahead.take() {
            Some((p, f)) if p == at => f,
            _ => aac_frame(&mut data, &mut r, at, end),
        };
        if let (Some(len), Some((track, _))) = (frame, r.audio.as_ref()) {
            let track = *track;
            if next_fits(&mut data, &mut r, &mut ahead, at + len as u64, end) {
                placed.push(Placed { track, offset: at, size: len as u64, sync: true });
                at += len as u64;
                continue;
            }
        }
        let reason = match video {
            Some((_, Unit::Cut)) => {
                "a video sample starts here and runs past the end of the data: the recorder stopped while writing it"
            }
            _ if end - at <= MAX_FRAME as u64 && r.audio.is_some() => {
                "too few bytes for a whole unit: most likely the audio frame the recorder was writing"
            }
            _ => "neither a video sample nor an AAC frame of the reference's device starts here",
        };
        return (placed, Some(Unplaced { offset: at, bytes: end - at, reason: reason.into() }));
    }
    (placed, None)
}

/// Whether a unit ending at `p` is followed by something placeable.
fn next_fits(
    data: &mut Window<'_>,
    r: &mut Recognisers<'_>,
    ahead: &mut Option<(u64, Option<usize>)>,
    p: u64,
    end: u64,
) -> bool {
    if p == end {
        return true;
    }
    if p > end {
        return false;
    }
    if let Some((_, m)) = r.video
        && m.unit(data, p, end) != Unit::No
    {
        return true;
    }
    let frame = aac_frame(data, r, p, end);
    *ahead = Some((p, frame));
    // a tail shorter than a frame may be the frame being written when the power went
    frame.is_some() || (r.audio.is_some() && end - p <= MAX_FRAME as u64)
}

fn aac_frame(data: &mut Window<'_>, r: &mut Recognisers<'_>, at: u64, end: u64) -> Option<usize> {
    let (_, framer) = r.audio.as_mut()?;
    let n = usize::try_from((end - at).min(MAX_FRAME as u64)).ok()?;
    framer.frame(data.peek(at, n)?)
}

/// Positioned reads through a 4 MiB window (the walk moves forward; lookahead stays close).
struct Window<'a> {
    file: &'a File,
    end: u64,
    start: u64,
    buf: Vec<u8>,
}

const WINDOW: usize = 4 << 20;

impl<'a> Window<'a> {
    fn new(file: &'a File, end: u64) -> Self {
        Window { file, end, start: 0, buf: Vec::new() }
    }
}

impl Bytes for Window<'_> {
    fn peek(&mut self, at: u64, n: usize) -> Option<&[u8]> {
        if at >= self.end {
            return None;
        }
        let want = (n as u64).min(self.end - at);
        let have = at >= self.start && at + want <= self.start + self.buf.len() as u64;
        if !have {
            let len = usize::try_from((self.end - at).min(WINDOW.max(n) as u64)).ok()?;
            self.buf.resize(len, 0);
            self.file.read_exact_at(&mut self.buf, at).ok()?;
            self.start = at;
        }
        let from = usize::try_from(at - self.start).ok()?;
        self.buf.get(from..from + want as usize)
    }
}
