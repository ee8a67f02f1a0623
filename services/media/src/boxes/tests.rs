//! The box walker over hand-built byte vectors.

use super::*;
use std::io::Cursor;

const S: u64 = 1_000_000_000;

fn bx(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(fourcc);
    v.extend_from_slice(body);
    v
}

fn bx64(fourcc: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = 1u32.to_be_bytes().to_vec();
    v.extend_from_slice(fourcc);
    v.extend_from_slice(&((body.len() + 16) as u64).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn ftyp() -> Vec<u8> {
    bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41")
}

fn mvhd_v0(timescale: u32, duration: u32, creation: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0];
    for x in [creation, creation, timescale, duration] {
        b.extend_from_slice(&x.to_be_bytes());
    }
    b.extend_from_slice(&[0; 80]); // rate, volume, matrix, next track id
    bx(b"mvhd", &b)
}

fn mvhd_v1(timescale: u32, duration: u64, creation: u64) -> Vec<u8> {
    let mut b = vec![1, 0, 0, 0];
    b.extend_from_slice(&creation.to_be_bytes());
    b.extend_from_slice(&creation.to_be_bytes());
    b.extend_from_slice(&timescale.to_be_bytes());
    b.extend_from_slice(&duration.to_be_bytes());
    b.extend_from_slice(&[0; 80]);
    bx(b"mvhd", &b)
}

fn mehd(version: u8, duration: u64) -> Vec<u8> {
    let mut b = vec![version, 0, 0, 0];
    if version == 1 {
        b.extend_from_slice(&duration.to_be_bytes());
    } else {
        b.extend_from_slice(&(duration as u32).to_be_bytes());
    }
    bx(b"mehd", &b)
}

fn trak() -> Vec<u8> {
    bx(b"trak", &bx(b"tkhd", &[0; 84]))
}

fn walk_bytes(bytes: &[u8]) -> BoxWalk {
    walk(&mut Cursor::new(bytes), bytes.len() as u64).unwrap()
}

fn fourccs(w: &BoxWalk) -> Vec<&str> {
    w.layout.boxes.iter().map(|b| b.fourcc.as_str()).collect()
}

/// 2024-05-01T09:30:00Z in seconds since 1904.
const CREATED: u32 = 3_797_400_600;

#[test]
fn moov_at_end_with_a_version_0_movie_header() {
    let mdat = bx(b"mdat", &[7; 500]);
    let moov = bx(b"moov", &[mvhd_v0(1000, 60_500, CREATED), trak(), trak()].concat());
    let bytes = [ftyp(), mdat.clone(), moov].concat();
    let w = walk_bytes(&bytes);
    let l = &w.layout;
    assert_eq!(l.major_brand.as_deref(), Some("isom"));
    assert_eq!(fourccs(&w), ["ftyp", "mdat", "moov"]);
    assert_eq!(l.box_count, 3);
    assert_eq!(l.first_mdat_offset, Some(32));
    assert_eq!(l.moov_offset, Some(32 + mdat.len() as u64));
    assert_eq!((l.overrun.clone(), l.box_error.clone(), l.open_ended_mdat, l.fragments), (None, None, false, 0));
    let m = w.movie.unwrap();
    assert_eq!(m.timescale, 1000);
    assert_eq!(m.duration_ns, Some(60_500_000_000));
    assert_eq!(m.fragment_duration_ns, None);
    assert_eq!(m.creation_time.unwrap().to_rfc3339(), "2024-05-01T09:30:00+00:00");
}

#[test]
fn version_1_header_with_unknown_duration_and_no_creation_time() {
    let bytes = [ftyp(), bx(b"moov", &mvhd_v1(90_000, u64::MAX, 0))].concat();
    let m = walk_bytes(&bytes).movie.unwrap();
    assert_eq!((m.timescale, m.duration_ns, m.creation_time), (90_000, None, None));

    let bytes = [ftyp(), bx(b"moov", &mvhd_v1(48_000, 48_000 * 7200, u64::from(CREATED)))].concat();
    let m = walk_bytes(&bytes).movie.unwrap();
    assert_eq!(m.duration_ns, Some(7200 * S));
    assert!(m.creation_time.is_some());

    // version 0: zero and all-ones durations both mean "not declared"
    for d in [0, u32::MAX] {
        let bytes = [ftyp(), bx(b"moov", &mvhd_v0(600, d, 0))].concat();
        assert_eq!(walk_bytes(&bytes).movie.unwrap().duration_ns, None, "{d}");
    }
    // a moov without mvhd declares nothing
    let bytes = [ftyp(), bx(b"moov", &trak())].concat();
    let w = walk_bytes(&bytes);
    assert_eq!((w.layout.moov_offset, w.movie), (Some(32), None));
}

#[test]
fn fragment_duration_from_mehd() {
    for version in [0u8, 1] {
        let mvex = bx(b"mvex", &[mehd(version, 45_000), bx(b"trex", &[0; 24])].concat());
        let moov = bx(b"moov", &[mvhd_v0(1000, 0, 0), trak(), mvex].concat());
        let bytes = [ftyp(), moov, bx(b"moof", &[0; 16]), bx(b"mdat", &[0; 64])].concat();
        let w = walk_bytes(&bytes);
        let m = w.movie.unwrap();
        assert_eq!((m.duration_ns, m.fragment_duration_ns), (None, Some(45 * S)), "v{version}");
        assert_eq!(w.layout.fragments, 1);
    }
}

#[test]
fn sixty_four_bit_sizes() {
    let mdat = bx64(b"mdat", &[1; 100]);
    let bytes = [ftyp(), mdat.clone(), bx64(b"moov", &mvhd_v0(1000, 5000, 0))].concat();
    let w = walk_bytes(&bytes);
    assert_eq!(fourccs(&w), ["ftyp", "mdat", "moov"]);
    assert_eq!(w.layout.boxes[1].size, 116);
    assert_eq!(w.layout.moov_offset, Some(32 + 116));
    assert_eq!(w.movie.unwrap().duration_ns, Some(5 * S));
    assert_eq!(w.layout.overrun, None);

    // a 64-bit size smaller than its own header is not a box
    let mut bad = bx64(b"mdat", &[]);
    bad[8..16].copy_from_slice(&8u64.to_be_bytes());
    let w = walk_bytes(&[ftyp(), bad].concat());
    assert_eq!(w.layout.box_error.unwrap().offset, 32);
}

#[test]
fn size_zero_mdat_extends_to_the_end() {
    // what mp4mux leaves when the recorder dies: ftyp, free, mdat with size 0, media, no moov
    let mut mdat = bx(b"mdat", &[9; 1000]);
    mdat[..4].copy_from_slice(&0u32.to_be_bytes());
    let bytes = [ftyp(), bx(b"free", &[]), mdat].concat();
    let w = walk_bytes(&bytes);
    let l = &w.layout;
    assert!(l.open_ended_mdat);
    assert_eq!(fourccs(&w), ["ftyp", "free", "mdat"]);
    assert_eq!(l.boxes[2].size, 0);
    assert_eq!(l.first_mdat_offset, Some(40));
    assert_eq!((l.moov_offset, &l.overrun, &l.box_error), (None, &None, &None));
    assert_eq!(w.movie, None);
}

#[test]
fn a_box_running_past_the_end_is_an_overrun() {
    let moov = bx(b"moov", &mvhd_v0(1000, 10_000, 0));
    let mut bytes = [ftyp(), moov.clone(), bx(b"mdat", &[3; 1000])].concat();
    bytes.truncate(bytes.len() - 600);
    let w = walk_bytes(&bytes);
    let o = w.layout.overrun.clone().unwrap();
    let mdat_at = 32 + moov.len() as u64;
    assert_eq!((o.fourcc.as_str(), o.offset, o.declared_size, o.available), ("mdat", mdat_at, 1008, 408));
    assert_eq!(w.movie.as_ref().unwrap().duration_ns, Some(10 * S));
    assert_eq!(fourccs(&w), ["ftyp", "moov", "mdat"]);
}

#[test]
fn a_truncated_moov_is_still_read_as_far_as_it_goes() {
    let moov = bx(b"moov", &[mvhd_v0(1000, 10_000, CREATED), trak(), trak()].concat());
    let mut bytes = [ftyp(), moov].concat();
    bytes.truncate(32 + 8 + 108 + 20); // header, mvhd, part of the first trak
    let w = walk_bytes(&bytes);
    assert_eq!(w.layout.overrun.unwrap().fourcc, "moov");
    assert_eq!(w.movie.unwrap().duration_ns, Some(10 * S));
}

#[test]
fn hostile_sizes_inside_moov_end_the_child_walk() {
    let mut huge = bx64(b"trak", &[0; 8]);
    huge[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    let moov = bx(b"moov", &[mvhd_v0(1000, 2000, 0), huge, bx(b"mvex", &mehd(0, 9))].concat());
    let w = walk_bytes(&[ftyp(), moov].concat());
    let m = w.movie.unwrap();
    assert_eq!((m.duration_ns, m.fragment_duration_ns), (Some(2 * S), None));
    // an mvhd too short for its version declares nothing
    let moov = bx(b"moov", &bx(b"mvhd", &[1, 0, 0, 0, 0, 0]));
    assert_eq!(walk_bytes(&[ftyp(), moov].concat()).movie, None);
}

#[test]
fn a_header_cut_at_the_end_of_the_file() {
    // five bytes of a header: the type itself is missing
    let bytes = [ftyp(), vec![0, 0, 0, 0x40, b'm']].concat();
    let o = walk_bytes(&bytes).layout.overrun.unwrap();
    assert_eq!((o.fourcc.as_str(), o.offset, o.declared_size, o.available), ("????", 32, 8, 5));

    // eight bytes of a 64-bit header: the type is known, the size is not
    let bytes = [ftyp(), bx64(b"mdat", &[])[..12].to_vec()].concat();
    let o = walk_bytes(&bytes).layout.overrun.unwrap();
    assert_eq!((o.fourcc.as_str(), o.declared_size, o.available), ("mdat", 16, 12));

    // a file of three bytes has no box at all
    let w = walk_bytes(b"abc");
    assert!(w.layout.boxes.is_empty());
    assert_eq!(w.layout.overrun.unwrap().fourcc, "????");
}

#[test]
fn garbage_at_offset_zero_is_not_a_box() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\0\0\0\x01\0\x08\x06\0\0\0";
    let w = walk_bytes(png);
    assert!(w.layout.boxes.is_empty());
    let e = w.layout.box_error.unwrap();
    assert_eq!(e.offset, 0);
    assert!(e.detail.contains("not printable"), "{}", e.detail);

    // printable type, impossible size
    let w = walk_bytes(b"\0\0\0\x04ftypisom");
    assert!(w.layout.box_error.unwrap().detail.contains("smaller than a box header"));
    assert_eq!(w.layout.box_count, 0);

    // text looks like a box with a huge size: it is an overrun of a strange type, which assess
    // refuses because the first box is not an ISO BMFF type
    let w = walk_bytes(b"Hello, world! This is not a video.");
    assert_eq!(w.layout.boxes[0].fourcc, "o, w");
    assert!(w.layout.overrun.is_some());
}

#[test]
fn trailing_zero_padding() {
    let good = [ftyp(), bx(b"moov", &mvhd_v0(1000, 1000, 0)), bx(b"mdat", &[5; 50])].concat();
    for pad in [3usize, 8, 100, 4096] {
        let bytes = [good.clone(), vec![0; pad]].concat();
        let w = walk_bytes(&bytes);
        let e = w.layout.box_error.unwrap_or_else(|| panic!("{pad} bytes of padding"));
        assert_eq!(e.offset, good.len() as u64);
        assert!(e.detail.contains("zero padding"), "{pad}: {}", e.detail);
        assert_eq!((w.layout.box_count, w.layout.overrun), (3, None));
    }
    // garbage after the last box is not padding
    let bytes = [good.clone(), vec![0xff; 10]].concat();
    let e = walk_bytes(&bytes).layout.box_error.unwrap();
    assert!(e.detail.contains("not printable"), "{}", e.detail);
}

#[test]
fn thousands_of_fragments_keep_a_bounded_list() {
    let mut bytes = [ftyp(), bx(b"moov", &mvhd_v0(1000, 0, 0))].concat();
    for i in 0..1000u32 {
        bytes.extend(bx(b"moof", &i.to_be_bytes()));
        bytes.extend(bx(b"mdat", &[0; 4]));
    }
    bytes.extend(bx(b"mfra", &[0; 8]));
    let w = walk_bytes(&bytes);
    let l = &w.layout;
    assert_eq!((l.fragments, l.box_count), (1000, 2003));
    assert_eq!(l.boxes.len(), 32);
    assert_eq!(fourccs(&w)[..3], ["ftyp", "moov", "moof"]);
    assert_eq!(fourccs(&w)[31], "mfra");
    assert_eq!(l.boxes[31].offset + 16, bytes.len() as u64);
    assert_eq!(l.first_mdat_offset, Some(l.boxes[3].offset));
}

/// A sparse 6 GB "file": ftyp, a 64-bit mdat of 6 GB, then a moov; reads are counted.
struct Sparse {
    head: Vec<u8>,
    tail: Vec<u8>,
    tail_at: u64,
    pos: u64,
    read: u64,
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(64);
        for (i, b) in buf[..n].iter_mut().enumerate() {
            let p = self.pos + i as u64;
            *b = if p < self.head.len() as u64 {
                self.head[p as usize]
            } else if p >= self.tail_at {
                self.tail.get((p - self.tail_at) as usize).copied().unwrap_or(0)
            } else {
                0
            };
        }
        self.pos += n as u64;
        self.read += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        if let SeekFrom::Start(p) = to {
            self.pos = p;
        }
        Ok(self.pos)
    }
}

#[test]
fn a_multi_gigabyte_file_is_walked_without_reading_its_media() {
    let mdat_size: u64 = 6 << 30;
    let mut head = ftyp();
    head.extend_from_slice(&1u32.to_be_bytes());
    head.extend_from_slice(b"mdat");
    head.extend_from_slice(&mdat_size.to_be_bytes());
    let tail = bx(b"moov", &[mvhd_v0(1000, 3_600_000, 0), trak()].concat());
    let tail_at = 32 + mdat_size;
    let size = tail_at + tail.len() as u64;
    let mut r = Sparse { head, tail, tail_at, pos: 0, read: 0 };
    let w = walk(&mut r, size).unwrap();
    assert_eq!(fourccs(&w), ["ftyp", "mdat", "moov"]);
    assert_eq!(w.layout.moov_offset, Some(tail_at));
    assert_eq!(w.movie.unwrap().duration_ns, Some(3600 * S));
    assert!(r.read < 512, "read {} bytes", r.read);
}
