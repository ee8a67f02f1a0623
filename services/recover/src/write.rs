//! Writes the recovered file: `ftyp`, one `mdat` holding the placed media data byte for byte, and
//! a `moov` whose sample tables index it. Track boxes that describe the device (sample entries with
//! their codec configuration, handler, media header) are the reference's; durations, sample
//! tables and times are the recovered file's own. Creation times are left 0 (unknown): the
//! recording's time is in its job, not in the reference.

use crate::mp4::{Track, be32};
use crate::scan::Placed;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

/// Movie timescale (ms).
const MOVIE_TIMESCALE: u32 = 1000;
const MATRIX: [u32; 9] = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000];

/// One output track: the reference track it copies (and its index) and its placed samples, in order.
pub(crate) struct OutTrack<'a> {
    pub(crate) index: usize,
    pub(crate) reference: &'a Track,
    pub(crate) samples: Vec<Placed>,
}

impl OutTrack<'_> {
    /// Duration in the track's timescale: samples at the reference's constant rate.
    pub(crate) fn ticks(&self) -> u64 {
        self.samples.len() as u64 * u64::from(self.reference.sample_delta)
    }
}

/// Writes the recovered file to `out`: `ftyp`, then the damaged file's bytes `[start, end)` as the
/// one `mdat`, then the index.
pub(crate) fn write(
    out: &mut File,
    ftyp: &[u8],
    damaged: &mut File,
    start: u64,
    end: u64,
    tracks: &[OutTrack<'_>],
) -> io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 20, out);
    w.write_all(ftyp)?;
    let body = ftyp.len() as u64 + 16;
    w.write_all(&1u32.to_be_bytes())?;
    w.write_all(b"mdat")?;
    w.write_all(&(16 + end - start).to_be_bytes())?;
    damaged.seek(SeekFrom::Start(start))?;
    let copied = io::copy(&mut Read::by_ref(damaged).take(end - start), &mut w)?;
    if copied != end - start {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the damaged file shrank while it was read"));
    }
    w.write_all(&moov(tracks, |offset| body + (offset - start)))?;
    w.flush()
}

fn moov(tracks: &[OutTrack<'_>], relocate: impl Fn(u64) -> u64) -> Vec<u8> {
    let movie_duration = tracks.iter().map(|t| to_movie(t.ticks(), t.reference.timescale)).max().unwrap_or(0);
    let mut body = mvhd(movie_duration, tracks.len() as u32 + 1);
    for (i, t) in tracks.iter().enumerate() {
        body.extend(trak(i as u32 + 1, t, &relocate));
    }
    boxed(b"moov", body)
}

fn to_movie(ticks: u64, timescale: u32) -> u64 {
    (u128::from(ticks) * u128::from(MOVIE_TIMESCALE) / u128::from(timescale.max(1))) as u64
}

fn boxed(fourcc: &[u8; 4], body: Vec<u8>) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(&(u32::try_from(body.len() + 8).unwrap_or(u32::MAX)).to_be_bytes());
    v.extend_from_slice(fourcc);
    v.extend(body);
    v
}

/// A full box: version and flags, then `body`.
fn full(fourcc: &[u8; 4], version: u8, flags: u32, body: Vec<u8>) -> Vec<u8> {
    let mut v = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
    v.extend(body);
    boxed(fourcc, v)
}

struct Buf(Vec<u8>);

impl Buf {
    fn u16(mut self, v: u16) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend(v.to_be_bytes());
        self
    }
    fn matrix(self) -> Self {
        MATRIX.iter().fold(self, |b, m| b.u32(*m))
    }
}

fn mvhd(duration: u64, next_track: u32) -> Vec<u8> {
    let b = Buf(Vec::new()).u64(0).u64(0).u32(MOVIE_TIMESCALE).u64(duration);
    let b = b.u32(0x0001_0000).u16(0x0100).u16(0).u64(0).matrix();
    let b = (0..6).fold(b, |b, _| b.u32(0)).u32(next_track);
    full(b"mvhd", 1, 0, b.0)
}

fn trak(id: u32, t: &OutTrack<'_>, relocate: &impl Fn(u64) -> u64) -> Vec<u8> {
    let r = t.reference;
    let audio = &r.handler == b"soun";
    // width and height (16.16) are the last 8 bytes of the reference's tkhd
    let size = r.tkhd.len();
    let (width, height) = if size >= 8 { (be32(&r.tkhd, size - 8), be32(&r.tkhd, size - 4)) } else { (None, None) };
    let tkhd = Buf(Vec::new()).u64(0).u64(0).u32(id).u32(0).u64(to_movie(t.ticks(), r.timescale));
    let tkhd = tkhd.u64(0).u16(0).u16(0).u16(if audio { 0x0100 } else { 0 }).u16(0).matrix();
    let tkhd = tkhd.u32(width.unwrap_or(0)).u32(height.unwrap_or(0));
    let mdhd = Buf(Vec::new()).u64(0).u64(0).u32(r.timescale).u64(t.ticks()).u16(r.language).u16(0);

    let mut stbl = r.stsd.clone();
    stbl.extend(full(b"stts", 0, 0, Buf(Vec::new()).u32(1).u32(t.samples.len() as u32).u32(r.sample_delta).0));
    if !audio && t.samples.iter().any(|s| !s.sync) {
        let sync: Vec<u32> = (1..).zip(&t.samples).filter(|(_, s)| s.sync).map(|(i, _)| i).collect();
        stbl.extend(full(b"stss", 0, 0, sync.iter().fold(Buf(Vec::new()).u32(sync.len() as u32), |b, i| b.u32(*i)).0));
    }
    let chunks = chunks(&t.samples);
    stbl.extend(full(b"stsc", 0, 0, stsc(&chunks)));
    let sizes = t.samples.iter().fold(Buf(Vec::new()).u32(0).u32(t.samples.len() as u32), |b, s| b.u32(s.size as u32));
    stbl.extend(full(b"stsz", 0, 0, sizes.0));
    let offsets: Vec<u64> = chunks.iter().map(|(first, _)| relocate(t.samples[*first].offset)).collect();
    if offsets.last().is_some_and(|o| *o > u64::from(u32::MAX)) {
        let b = offsets.iter().fold(Buf(Vec::new()).u32(offsets.len() as u32), |b, o| b.u64(*o));
        stbl.extend(full(b"co64", 0, 0, b.0));
    } else {
        let b = offsets.iter().fold(Buf(Vec::new()).u32(offsets.len() as u32), |b, o| b.u32(*o as u32));
        stbl.extend(full(b"stco", 0, 0, b.0));
    }

    let mut minf = r.media_header.clone();
    minf.extend(r.dinf.clone().unwrap_or_else(default_dinf));
    minf.extend(boxed(b"stbl", stbl));
    let mut mdia = full(b"mdhd", 1, 0, mdhd.0);
    mdia.extend_from_slice(&r.hdlr);
    mdia.extend(boxed(b"minf", minf));
    let mut trak = full(b"tkhd", 1, 3, tkhd.0);
    trak.extend(boxed(b"mdia", mdia));
    boxed(b"trak", trak)
}

/// Chunks: runs of samples that are contiguous in the file, as (first sample index, count).
fn chunks(samples: &[Placed]) -> Vec<(usize, u32)> {
    let mut out: Vec<(usize, u32)> = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        match out.last_mut() {
            Some((first, n))
                if i > 0 && samples[i - 1].offset + samples[i - 1].size == s.offset && *first + *n as usize == i =>
            {
                *n += 1
            }
            _ => out.push((i, 1)),
        }
    }
    out
}

/// Sample-to-chunk entries: one per change of samples-per-chunk.
fn stsc(chunks: &[(usize, u32)]) -> Vec<u8> {
    let mut entries: Vec<(u32, u32)> = Vec::new();
    for (i, (_, n)) in chunks.iter().enumerate() {
        if entries.last().is_none_or(|(_, last)| last != n) {
            entries.push((i as u32 + 1, *n));
        }
    }
    entries.iter().fold(Buf(Vec::new()).u32(entries.len() as u32), |b, (first, n)| b.u32(*first).u32(*n).u32(1)).0
}

fn default_dinf() -> Vec<u8> {
    let url = full(b"url ", 0, 1, Vec::new());
    let mut dref = 1u32.to_be_bytes().to_vec();
    dref.extend(url);
    boxed(b"dinf", full(b"dref", 0, 0, dref))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64, size: u64) -> Placed {
        Placed { track: 0, offset, size, sync: true }
    }

    #[test]
    fn contiguous_samples_share_a_chunk_and_runs_compress_in_stsc() {
        let s = [at(0, 10), at(10, 5), at(40, 5), at(45, 5), at(100, 1), at(200, 1), at(201, 2)];
        let c = chunks(&s);
        assert_eq!(c, vec![(0, 2), (2, 2), (4, 1), (5, 2)]);
        let table = stsc(&c);
        // 3 entries: chunk 1 -> 2, chunk 3 -> 1, chunk 4 -> 2
        assert_eq!(be32(&table, 0), Some(3));
        assert_eq!((be32(&table, 4), be32(&table, 8)), (Some(1), Some(2)));
        assert_eq!((be32(&table, 16), be32(&table, 20)), (Some(3), Some(1)));
        assert_eq!((be32(&table, 28), be32(&table, 32)), (Some(4), Some(2)));
    }
}
