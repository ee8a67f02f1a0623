//! Reading ISO BMFF (ISO/IEC 14496-12): the top-level boxes of a file by positioned reads (the
//! media data is never loaded), and a movie box in memory: its tracks, their sample entries and
//! sample tables.

use crate::error::RecoverError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A movie box larger than this is not a recorder's: refused rather than loaded.
const MAX_MOOV: u64 = 256 << 20;

/// One box inside an in-memory buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoxRef<'a> {
    pub(crate) fourcc: [u8; 4],
    /// The whole box, header included.
    pub(crate) whole: &'a [u8],
    /// The body (after the header).
    pub(crate) body: &'a [u8],
}

/// The boxes directly inside `buf`, in order; stops at the first malformed header.
pub(crate) fn children(buf: &[u8]) -> impl Iterator<Item = BoxRef<'_>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let rest = buf.get(at..)?;
        let (fourcc, header, size) = header(rest)?;
        let size = size.unwrap_or(rest.len() as u64);
        let size = usize::try_from(size).ok().filter(|s| *s >= header && *s <= rest.len())?;
        at += size;
        Some(BoxRef { fourcc, whole: &rest[..size], body: &rest[header..size] })
    })
}

/// The first child of type `fourcc`.
pub(crate) fn child<'a>(buf: &'a [u8], fourcc: &[u8; 4]) -> Option<BoxRef<'a>> {
    children(buf).find(|b| &b.fourcc == fourcc)
}

/// Follows a path of box types from `buf`.
pub(crate) fn path<'a>(buf: &'a [u8], types: &[&[u8; 4]]) -> Option<BoxRef<'a>> {
    let (first, rest) = types.split_first()?;
    let mut b = child(buf, first)?;
    for t in rest {
        b = child(b.body, t)?;
    }
    Some(b)
}

/// (type, header length, declared size; `None` for "to the end").
fn header(b: &[u8]) -> Option<([u8; 4], usize, Option<u64>)> {
    let size32 = be32(b, 0)?;
    let fourcc: [u8; 4] = b.get(4..8)?.try_into().ok()?;
    match size32 {
        0 => Some((fourcc, 8, None)),
        1 => Some((fourcc, 16, Some(be64(b, 8)?).filter(|s| *s >= 16))),
        s if s < 8 => None,
        s => Some((fourcc, 8, Some(u64::from(s)))),
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub(crate) fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A top-level box of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TopBox {
    pub(crate) fourcc: [u8; 4],
    pub(crate) offset: u64,
    pub(crate) header: u64,
    /// Declared size; `None` for size 0 ("to the end of the file").
    pub(crate) size: Option<u64>,
}

impl TopBox {
    /// Where the body starts.
    pub(crate) fn body(&self) -> u64 {
        self.offset + self.header
    }
}

/// Walks the top-level boxes of `file` (`len` bytes): stops at the end, at a box that runs past
/// the end (kept: an open `mdat` is one), or at bytes that are not a box header.
pub(crate) fn top_level(file: &File, len: u64) -> std::io::Result<Vec<TopBox>> {
    let mut boxes = Vec::new();
    let mut at = 0u64;
    while at + 8 <= len {
        let mut h = [0u8; 16];
        let n = usize::try_from((len - at).min(16)).unwrap_or(16);
        file.read_exact_at(&mut h[..n], at)?;
        let Some((fourcc, header, size)) = header(&h[..n]) else { break };
        if !fourcc.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            break;
        }
        let b = TopBox { fourcc, offset: at, header: header as u64, size };
        boxes.push(b);
        match size {
            Some(s) if at + s <= len => at += s,
            _ => break,
        }
    }
    Ok(boxes)
}

/// One sample of a track, where it is in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Byte offset in the file.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
}

/// A track of a finished recording, as far as recovery needs it.
#[derive(Debug, Clone)]
pub struct Track {
    /// `vide`, `soun`, …
    pub handler: [u8; 4],
    /// Media timescale (`mdhd`), ticks per second.
    pub timescale: u32,
    /// The most common sample duration (`stts`), in `timescale` ticks.
    pub sample_delta: u32,
    /// Every sample, in decode order.
    pub samples: Vec<Sample>,
    /// Sync samples (`stss`) as 0-based indices; `None`: every sample is a sync sample.
    pub sync: Option<Vec<u32>>,
    /// The whole `tkhd`, `hdlr`, media header (`vmhd`/`smhd`/…), `dinf` and `stsd` boxes, copied
    /// into a recovered file.
    pub(crate) tkhd: Vec<u8>,
    pub(crate) hdlr: Vec<u8>,
    pub(crate) media_header: Vec<u8>,
    pub(crate) dinf: Option<Vec<u8>>,
    pub(crate) stsd: Vec<u8>,
    /// `mdhd` language code.
    pub(crate) language: u16,
}

impl Track {
    /// The first sample entry (`avc1`, `mp4a`, …) of `stsd`.
    pub(crate) fn sample_entry(&self) -> Option<BoxRef<'_>> {
        // stsd: full box (4) + entry count (4), then the entries
        children(self.stsd.get(16..)?).next()
    }
}

/// The movie of a finished recording.
#[derive(Debug, Clone)]
pub struct Movie {
    /// The `ftyp` box, whole.
    pub(crate) ftyp: Option<Vec<u8>>,
    /// Tracks in `moov` order.
    pub tracks: Vec<Track>,
}

impl Movie {
    /// Reads the movie of the finished MP4 file at `path`.
    pub fn read(path: &Path) -> Result<Self, RecoverError> {
        let io = |source| RecoverError::Io { path: path.to_owned(), source };
        let bad = |why: String| RecoverError::Reference { path: path.to_owned(), why };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let top = top_level(&file, len).map_err(io)?;
        let load = |b: &TopBox| -> Result<Vec<u8>, RecoverError> {
            let size = b.size.unwrap_or(len - b.offset).min(len - b.offset);
            if size > MAX_MOOV {
                return Err(bad(format!("its {} box is {size} bytes", String::from_utf8_lossy(&b.fourcc))));
            }
            let mut buf = vec![0u8; usize::try_from(size).unwrap_or(0)];
            file.read_exact_at(&mut buf, b.offset).map_err(io)?;
            Ok(buf)
        };
        let ftyp = top.iter().find(|b| &b.fourcc == b"ftyp").map(load).transpose()?;
        let moov_box = top.iter().find(|b| &b.fourcc == b"moov").ok_or_else(|| bad("it has no moov box".into()))?;
        let moov = load(moov_box)?;
        let moov_body = children(&moov).next().map(|b| b.body).unwrap_or_default();
        let tracks = children(moov_body)
            .filter(|b| &b.fourcc == b"trak")
            .map(|t| track(t.body).map_err(|why| bad(format!("a track: {why}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if tracks.is_empty() {
            return Err(bad("its movie has no tracks".into()));
        }
        Ok(Movie { ftyp, tracks })
    }
}

fn track(trak: &[u8]) -> Result<Track, String> {
    let need = |types: &[&[u8; 4]]| {
        path(trak, types).ok_or_else(|| {
            let names: Vec<_> = types.iter().map(|t| String::from_utf8_lossy(*t).into_owned()).collect();
            format!("no {}", names.join("/"))
        })
    };
    let tkhd = need(&[b"tkhd"])?;
    let mdhd = need(&[b"mdia", b"mdhd"])?;
    let hdlr = need(&[b"mdia", b"hdlr"])?;
    let minf = need(&[b"mdia", b"minf"])?;
    let stbl = need(&[b"mdia", b"minf", b"stbl"])?;
    let handler: [u8; 4] = hdlr.body.get(8..12).and_then(|h| h.try_into().ok()).ok_or("short hdlr")?;
    // mdhd v0: flags(4) ctime(4) mtime(4) timescale(4) duration(4) language(2); v1: 8-byte times and duration
    let (timescale, language) = match mdhd.body.first() {
        Some(1) => (be32(mdhd.body, 20), be16(mdhd.body, 32)),
        _ => (be32(mdhd.body, 12), be16(mdhd.body, 20)),
    };
    let timescale = timescale.filter(|t| *t > 0).ok_or("no timescale")?;
    let media_header = children(minf.body)
        .find(|b| matches!(&b.fourcc, b"vmhd" | b"smhd" | b"nmhd" | b"sthd" | b"hmhd"))
        .ok_or("no media header")?;
    let dinf = child(minf.body, b"dinf").map(|b| b.whole.to_vec());
    let stsd = child(stbl.body, b"stsd").ok_or("no stsd")?;

    let sizes = sample_sizes(child(stbl.body, b"stsz").ok_or("no stsz")?.body)?;
    let chunks = chunk_offsets(stbl.body)?;
    let stsc = child(stbl.body, b"stsc").ok_or("no stsc")?.body;
    let samples = place(&sizes, &chunks, stsc)?;
    let sample_delta = common_delta(child(stbl.body, b"stts").ok_or("no stts")?.body)?;
    let sync = child(stbl.body, b"stss")
        .map(|b| table32(b.body).map(|v| v.into_iter().map(|i| i.saturating_sub(1)).collect()))
        .transpose()?;
    Ok(Track {
        handler,
        timescale,
        sample_delta,
        samples,
        sync,
        tkhd: tkhd.whole.to_vec(),
        hdlr: hdlr.whole.to_vec(),
        media_header: media_header.whole.to_vec(),
        dinf,
        stsd: stsd.whole.to_vec(),
        language: language.unwrap_or(0x55c4), // "und"
    })
}

/// A full box's table of u32 after its entry count.
fn table32(body: &[u8]) -> Result<Vec<u32>, String> {
    let n = be32(body, 4).ok_or("short table")? as usize;
    (0..n).map(|i| be32(body, 8 + 4 * i).ok_or_else(|| "table shorter than its count".to_string())).collect()
}

fn sample_sizes(stsz: &[u8]) -> Result<Vec<u64>, String> {
    let fixed = be32(stsz, 4).ok_or("short stsz")?;
    let n = be32(stsz, 8).ok_or("short stsz")? as usize;
    if fixed != 0 {
        return Ok(vec![u64::from(fixed); n]);
    }
    (0..n).map(|i| be32(stsz, 12 + 4 * i).map(u64::from).ok_or_else(|| "stsz shorter than its count".into())).collect()
}

fn chunk_offsets(stbl: &[u8]) -> Result<Vec<u64>, String> {
    if let Some(stco) = child(stbl, b"stco") {
        return Ok(table32(stco.body)?.into_iter().map(u64::from).collect());
    }
    let co64 = child(stbl, b"co64").ok_or("no stco or co64")?.body;
    let n = be32(co64, 4).ok_or("short co64")? as usize;
    (0..n).map(|i| be64(co64, 8 + 8 * i).ok_or_else(|| "co64 shorter than its count".into())).collect()
}

/// Sample offsets from sizes, chunk offsets and the sample-to-chunk table.
fn place(sizes: &[u64], chunks: &[u64], stsc: &[u8]) -> Result<Vec<Sample>, String> {
    let n = be32(stsc, 4).ok_or("short stsc")? as usize;
    let entries: Vec<(u32, u32)> = (0..n)
        .map(|i| Some((be32(stsc, 8 + 12 * i)?, be32(stsc, 12 + 12 * i)?)))
        .collect::<Option<_>>()
        .ok_or("stsc shorter than its count")?;
    let mut samples = Vec::with_capacity(sizes.len());
    let mut next = sizes.iter();
    for (ci, &offset) in chunks.iter().enumerate() {
        let chunk_no = ci as u32 + 1;
        let per_chunk = entries.iter().rev().find(|(first, _)| *first <= chunk_no).map_or(0, |e| e.1);
        let mut at = offset;
        for _ in 0..per_chunk {
            let Some(&size) = next.next() else { break };
            samples.push(Sample { offset: at, size });
            at += size;
        }
    }
    if samples.len() != sizes.len() {
        return Err(format!("the chunk tables place {} of {} samples", samples.len(), sizes.len()));
    }
    Ok(samples)
}

/// The most frequent sample duration (a recorder's tracks run at a constant rate; a pause shows
/// as one long delta).
fn common_delta(stts: &[u8]) -> Result<u32, String> {
    let n = be32(stts, 4).ok_or("short stts")? as usize;
    let mut best = (0u64, 0u32);
    let mut counts: Vec<(u32, u64)> = Vec::new();
    for i in 0..n {
        let count = be32(stts, 8 + 8 * i).ok_or("stts shorter than its count")?;
        let delta = be32(stts, 12 + 8 * i).ok_or("stts shorter than its count")?;
        match counts.iter_mut().find(|(d, _)| *d == delta) {
            Some((_, c)) => *c += u64::from(count),
            None => counts.push((delta, u64::from(count))),
        }
    }
    for (d, c) in counts {
        if c > best.0 && d > 0 {
            best = (c, d);
        }
    }
    if best.1 == 0 {
        return Err("no sample durations".into());
    }
    Ok(best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(fourcc);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn children_stop_at_a_box_that_runs_past_its_parent() {
        let mut buf = bx(b"free", &[1, 2, 3]);
        buf.extend(bx(b"skip", &[]));
        buf.extend_from_slice(&[0, 0, 0, 99, b'm', b'd', b'a', b't']);
        let found: Vec<_> = children(&buf).map(|b| b.fourcc).collect();
        assert_eq!(found, vec![*b"free", *b"skip"]);
        assert_eq!(path(&bx(b"moov", &bx(b"trak", &[7])), &[b"moov", b"trak"]).unwrap().body, &[7]);
    }

    #[test]
    fn samples_are_placed_by_the_chunk_tables() {
        // chunks 1-2 hold 2 samples, chunk 3 holds 1
        let mut stsc = vec![0, 0, 0, 0, 0, 0, 0, 2];
        for (first, per) in [(1u32, 2u32), (3, 1)] {
            stsc.extend(first.to_be_bytes());
            stsc.extend(per.to_be_bytes());
            stsc.extend(1u32.to_be_bytes());
        }
        let placed = place(&[10, 20, 30, 40, 50], &[100, 1000, 5000], &stsc).unwrap();
        let offsets: Vec<u64> = placed.iter().map(|s| s.offset).collect();
        assert_eq!(offsets, vec![100, 110, 1000, 1030, 5000]);
        assert!(place(&[10, 20, 30, 40, 50, 60], &[100, 1000, 5000], &stsc).is_err());
    }

    #[test]
    fn the_common_delta_ignores_a_pause() {
        let mut stts = vec![0, 0, 0, 0, 0, 0, 0, 3];
        for (count, delta) in [(40u32, 1000u32), (1, 61000), (30, 1000)] {
            stts.extend(count.to_be_bytes());
            stts.extend(delta.to_be_bytes());
        }
        assert_eq!(common_delta(&stts).unwrap(), 1000);
    }
}
