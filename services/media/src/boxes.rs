//! Top-level ISO BMFF box walk over any `Read + Seek`: structure only, never the media bytes.
//!
//! Invariants: every box header is read where the previous box says it ends, and the walk seeks
//! over box bodies, so a multi-GB file costs a few reads per top-level box. The walk stops at the
//! first box that runs past the end of the file (`overrun`) or at bytes that cannot be a box
//! header (`box_error`); both are facts for `assess`, not errors.

use crate::movie::{self, MovieBoxes};
use recvault_core::probe::{BoxError, BoxOverrun, ContainerLayout, FIRST_BOX_TYPES, MovieHeader, TopLevelBox};
use std::collections::VecDeque;
use std::io::{self, Read, Seek, SeekFrom};

/// Boxes kept at each end of the report: long fragmented files have thousands of `moof`s.
const KEEP: usize = 16;
/// Trailing bytes inspected to tell zero padding from garbage.
const PADDING_PEEK: u64 = 4096;

/// What the walk found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoxWalk {
    /// Top-level structure.
    pub layout: ContainerLayout,
    /// From the first `moov` (even a truncated one, as far as its bytes go).
    pub movie: Option<MovieHeader>,
}

/// One parsed box header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) fourcc: [u8; 4],
    /// 8, or 16 with a 64-bit size.
    pub(crate) header_len: u64,
    /// Declared size; `None` for size 0 ("to the end of the enclosing space").
    pub(crate) size: Option<u64>,
}

/// Outcome of reading a header at some offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderRead {
    Box(Header),
    /// Fewer bytes than the header needs: `fourcc` when the first 8 bytes are present.
    Cut {
        fourcc: Option<[u8; 4]>,
        needed: u64,
    },
    /// Not a box header.
    Invalid(String),
}

pub(crate) fn fourcc_str(f: &[u8; 4]) -> String {
    String::from_utf8_lossy(f).into_owned()
}

fn printable(f: &[u8; 4]) -> bool {
    f.iter().all(|b| (0x20..=0x7e).contains(b))
}

/// Reads the header at the reader's current position, with `available` bytes left in the
/// enclosing space.
pub(crate) fn read_header<R: Read>(r: &mut R, available: u64) -> io::Result<HeaderRead> {
    if available < 8 {
        return Ok(HeaderRead::Cut { fourcc: None, needed: 8 });
    }
    let mut h = [0u8; 8];
    r.read_exact(&mut h)?;
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let fourcc = [h[4], h[5], h[6], h[7]];
    if !printable(&fourcc) {
        return Ok(HeaderRead::Invalid(if h == [0; 8] {
            "zero bytes where a box header should be".into()
        } else {
            format!("box type {:02x?} is not printable", fourcc)
        }));
    }
    let (header_len, size) = match size32 {
        0 => (8, None),
        1 => {
            if available < 16 {
                return Ok(HeaderRead::Cut { fourcc: Some(fourcc), needed: 16 });
            }
            let mut large = [0u8; 8];
            r.read_exact(&mut large)?;
            let size = u64::from_be_bytes(large);
            if size < 16 {
                return Ok(HeaderRead::Invalid(format!(
                    "{} box declares a 64-bit size of {size}, smaller than its 16-byte header",
                    fourcc_str(&fourcc)
                )));
            }
            (16, Some(size))
        }
        s if s < 8 => {
            return Ok(HeaderRead::Invalid(format!(
                "{} box declares a size of {s}, smaller than a box header",
                fourcc_str(&fourcc)
            )));
        }
        s => (8, Some(u64::from(s))),
    };
    Ok(HeaderRead::Box(Header { fourcc, header_len, size }))
}

/// Where the `moov` starts when it comes before any media (`mdat`, `moof`) of a `file_size`-byte
/// stream that opens with an ISO base media box: a faststart or fragmented file, which the probe
/// of a growing file can start on before the rest arrives. Reads only the boxes' headers, up to
/// the `moov`. `None` for anything else, or a head it cannot read as boxes.
pub fn moov_ahead<R: Read + Seek>(r: &mut R, file_size: u64) -> io::Result<Option<u64>> {
    let mut offset = 0u64;
    while offset < file_size {
        r.seek(SeekFrom::Start(offset))?;
        let HeaderRead::Box(h) = read_header(r, file_size - offset)? else {
            return Ok(None);
        };
        let fourcc = fourcc_str(&h.fourcc);
        if offset == 0 && !FIRST_BOX_TYPES.contains(&fourcc.as_str()) {
            return Ok(None);
        }
        match (&h.fourcc, h.size) {
            (b"moov", _) => return Ok(Some(offset)),
            (b"mdat" | b"moof", _) | (_, None) => return Ok(None),
            (_, Some(size)) => offset += size,
        }
    }
    Ok(None)
}

/// Walks the top-level boxes of a `file_size`-byte stream.
pub fn walk<R: Read + Seek>(r: &mut R, file_size: u64) -> io::Result<BoxWalk> {
    let mut layout = ContainerLayout::default();
    let mut movie = None;
    let mut first = Vec::new();
    let mut last: VecDeque<TopLevelBox> = VecDeque::new();
    let mut offset = 0u64;
    while offset < file_size {
        let remaining = file_size - offset;
        r.seek(SeekFrom::Start(offset))?;
        let header = match read_header(r, remaining)? {
            HeaderRead::Box(h) => h,
            HeaderRead::Cut { fourcc, needed } => {
                r.seek(SeekFrom::Start(offset))?;
                if fourcc.is_none() && all_zero(r, remaining)? {
                    layout.box_error = Some(padding(offset, remaining));
                } else {
                    layout.overrun = Some(BoxOverrun {
                        fourcc: fourcc.map_or_else(|| "????".into(), |f| fourcc_str(&f)),
                        offset,
                        declared_size: needed,
                        available: remaining,
                    });
                }
                break;
            }
            HeaderRead::Invalid(detail) => {
                r.seek(SeekFrom::Start(offset))?;
                let zeros = remaining <= PADDING_PEEK && all_zero(r, remaining)?;
                layout.box_error = Some(if zeros { padding(offset, remaining) } else { BoxError { offset, detail } });
                break;
            }
        };
        let size = header.size.unwrap_or(remaining);
        let fourcc = fourcc_str(&header.fourcc);
        layout.box_count += 1;
        let entry = TopLevelBox { fourcc: fourcc.clone(), offset, size: header.size.unwrap_or(0) };
        if first.len() < KEEP {
            first.push(entry);
        } else {
            if last.len() == KEEP {
                last.pop_front();
            }
            last.push_back(entry);
        }
        let body = offset + header.header_len;
        let body_available = size.min(remaining).saturating_sub(header.header_len);
        match &header.fourcc {
            b"ftyp" | b"styp" if layout.major_brand.is_none() && body_available >= 4 => {
                r.seek(SeekFrom::Start(body))?;
                let mut brand = [0u8; 4];
                r.read_exact(&mut brand)?;
                layout.major_brand = Some(fourcc_str(&brand));
            }
            b"moov" if layout.moov_offset.is_none() => {
                layout.moov_offset = Some(offset);
                movie = movie::read(r, body, body_available)?.map(MovieBoxes::header);
            }
            b"mdat" => {
                layout.first_mdat_offset.get_or_insert(offset);
                layout.open_ended_mdat |= header.size.is_none();
            }
            b"moof" => layout.fragments += 1,
            _ => {}
        }
        if size > remaining {
            layout.overrun = Some(BoxOverrun { fourcc, offset, declared_size: size, available: remaining });
            break;
        }
        offset += size;
    }
    first.extend(last);
    layout.boxes = first;
    Ok(BoxWalk { layout, movie })
}

/// True when the next `len` bytes (at most [`PADDING_PEEK`] of them are read) are all zero.
fn all_zero<R: Read>(r: &mut R, len: u64) -> io::Result<bool> {
    let mut buf = vec![0u8; len.min(PADDING_PEEK) as usize];
    r.read_exact(&mut buf)?;
    Ok(buf.iter().all(|&b| b == 0))
}

fn padding(offset: u64, len: u64) -> BoxError {
    BoxError { offset, detail: format!("{len} bytes of zero padding to the end of the file") }
}

#[cfg(test)]
mod tests;
