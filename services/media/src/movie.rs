//! Inside `moov`: the movie header (`mvhd`) and the fragment duration (`mvex/mehd`).
//!
//! Only the few bytes of those boxes are read; sample tables (which can be megabytes) are skipped
//! by seeking. A `moov` cut short by truncation is read as far as its bytes go.

use crate::boxes::{HeaderRead, read_header};
use chrono::{DateTime, Utc};
use recvault_core::probe::MovieHeader;
use std::io::{self, Read, Seek, SeekFrom};

/// Seconds from 1904-01-01 (the ISO BMFF epoch) to 1970-01-01.
const EPOCH_1904: i64 = 2_082_844_800;

/// Raw values from `mvhd` and `mehd`, in movie timescale units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MovieBoxes {
    pub(crate) timescale: u32,
    /// `None` when 0 or all ones ("unknown").
    pub(crate) duration: Option<u64>,
    /// Seconds since 1904; `None` when 0.
    pub(crate) creation: Option<u64>,
    pub(crate) fragment_duration: Option<u64>,
}

impl MovieBoxes {
    /// Converts to nanoseconds and UTC. A zero timescale declares nothing.
    pub(crate) fn header(self) -> MovieHeader {
        let to_ns = |units: u64| {
            (self.timescale > 0)
                .then(|| u64::try_from(u128::from(units) * 1_000_000_000 / u128::from(self.timescale)).ok())
                .flatten()
        };
        MovieHeader {
            timescale: self.timescale,
            duration_ns: self.duration.and_then(to_ns),
            fragment_duration_ns: self.fragment_duration.and_then(to_ns),
            creation_time: self.creation.and_then(from_1904),
        }
    }
}

fn from_1904(secs: u64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(i64::try_from(secs).ok()?.checked_sub(EPOCH_1904)?, 0)
}

/// Whether the `moov` whose body starts at `start` (`len` bytes) announces fragments (`mvex`).
pub(crate) fn has_mvex<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> io::Result<bool> {
    Ok(children(r, start, len)?.iter().any(|(fourcc, _, _)| fourcc == b"mvex"))
}

/// Reads the children of a `moov` whose body starts at `start` with `len` bytes present.
/// `None` when it has no `mvhd`.
pub(crate) fn read<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> io::Result<Option<MovieBoxes>> {
    let mut found = MovieBoxes::default();
    let mut has_mvhd = false;
    for (fourcc, body, body_len) in children(r, start, len)? {
        match &fourcc {
            b"mvhd" => {
                if let Some((timescale, duration, creation)) = mvhd(&read_body(r, body, body_len, 32)?) {
                    (found.timescale, found.duration, found.creation) = (timescale, duration, creation);
                    has_mvhd = true;
                }
            }
            b"mvex" => {
                for (fourcc, body, body_len) in children(r, body, body_len)? {
                    if &fourcc == b"mehd" {
                        found.fragment_duration = mehd(&read_body(r, body, body_len, 12)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(has_mvhd.then_some(found))
}

/// (type, body offset, body bytes present) of each child box in `[start, start + len)`.
fn children<R: Read + Seek>(r: &mut R, start: u64, len: u64) -> io::Result<Vec<([u8; 4], u64, u64)>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        r.seek(SeekFrom::Start(start + at))?;
        let HeaderRead::Box(h) = read_header(r, len - at)? else {
            break;
        };
        let size = h.size.unwrap_or(len - at);
        let present = size.min(len - at).saturating_sub(h.header_len);
        out.push((h.fourcc, start + at + h.header_len, present));
        at = at.saturating_add(size); // a hostile 64-bit size must end the loop, not overflow
    }
    Ok(out)
}

fn read_body<R: Read + Seek>(r: &mut R, at: u64, len: u64, max: u64) -> io::Result<Vec<u8>> {
    r.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; len.min(max) as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn be32(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?)))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// (timescale, duration, creation) of an `mvhd` body; version 0 has 32-bit times, version 1
/// 64-bit ones.
fn mvhd(b: &[u8]) -> Option<(u32, Option<u64>, Option<u64>)> {
    let (creation, timescale, duration, unknown) = match b.first()? {
        0 => (be32(b, 4)?, be32(b, 12)?, be32(b, 16)?, u64::from(u32::MAX)),
        1 => (be64(b, 4)?, be32(b, 20)?, be64(b, 24)?, u64::MAX),
        _ => return None,
    };
    let duration = Some(duration).filter(|&d| d != 0 && d != unknown);
    Some((u32::try_from(timescale).ok()?, duration, Some(creation).filter(|&c| c != 0)))
}

/// The fragment duration of an `mehd` body (0 means not known).
fn mehd(b: &[u8]) -> Option<u64> {
    let d = match b.first()? {
        0 => be32(b, 4)?,
        1 => be64(b, 4)?,
        _ => return None,
    };
    (d != 0).then_some(d)
}
