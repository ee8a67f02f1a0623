use super::*;
use std::io::Cursor;

fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

fn full(version: u8, rest: &[u8]) -> Vec<u8> {
    let mut b = vec![version, 0, 0, 0];
    b.extend_from_slice(rest);
    b
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// A track as a test describes it; `build` turns it into a `trak`.
#[derive(Clone)]
struct Track {
    id: u32,
    timescale: u32,
    sizes: Vec<u32>,
    stts: Vec<(u32, u32)>,
    ctts: Option<(u8, Vec<(u32, u32)>)>,
    /// (first chunk, samples per chunk).
    stsc: Vec<(u32, u32)>,
    chunks: Vec<u32>,
    elst: Option<Vec<u8>>,
    uniform: u32,
}

impl Track {
    /// Four 100-byte samples of 1000 units, two per chunk, at offsets 100 and 300.
    fn plain() -> Self {
        Self {
            id: 1,
            timescale: 90_000,
            sizes: vec![100; 4],
            stts: vec![(4, 3000)],
            ctts: None,
            stsc: vec![(1, 2)],
            chunks: vec![100, 300],
            elst: None,
            uniform: 0,
        }
    }

    fn build(&self) -> Vec<u8> {
        let pair_box = |kind, version, runs: &[(u32, u32)]| {
            let mut w = vec![runs.len() as u32];
            runs.iter().for_each(|&(a, b)| w.extend([a, b]));
            boxed(kind, &full(version, &words(&w)))
        };
        let mut stsz = vec![self.uniform, self.sizes.len() as u32];
        if self.uniform == 0 {
            stsz.extend(&self.sizes);
        } else {
            stsz[1] = 4;
        }
        let mut stsc = vec![self.stsc.len() as u32];
        self.stsc.iter().for_each(|&(f, n)| stsc.extend([f, n, 1]));
        let mut stco = vec![self.chunks.len() as u32];
        stco.extend(&self.chunks);
        let mut stbl = boxed(b"stsd", &full(0, &words(&[0])));
        stbl.extend(pair_box(b"stts", 0, &self.stts));
        if let Some((v, runs)) = &self.ctts {
            stbl.extend(pair_box(b"ctts", *v, runs));
        }
        stbl.extend(boxed(b"stsc", &full(0, &words(&stsc))));
        stbl.extend(boxed(b"stsz", &full(0, &words(&stsz))));
        stbl.extend(boxed(b"stco", &full(0, &words(&stco))));
        let minf = boxed(b"minf", &boxed(b"stbl", &stbl));
        let duration: u32 = self.stts.iter().map(|&(n, d)| n * d).sum();
        let mut mdia = boxed(b"mdhd", &full(0, &words(&[0, 0, self.timescale, duration, 0])));
        mdia.extend(boxed(b"hdlr", &full(0, &words(&[0, u32::from_be_bytes(*b"vide"), 0, 0, 0]))));
        mdia.extend(minf);
        let mut trak = boxed(b"tkhd", &full(0, &words(&[0, 0, self.id, 0, 0])));
        if let Some(elst) = &self.elst {
            trak.extend(boxed(b"edts", &boxed(b"elst", elst)));
        }
        trak.extend(boxed(b"mdia", &mdia));
        boxed(b"trak", &trak)
    }
}

/// A file of `size` bytes whose `moov` (at offset 0) holds `tracks`, movie timescale 1000.
fn file(tracks: &[Track], size: usize) -> (Vec<u8>, u64) {
    let mut body = boxed(b"mvhd", &full(0, &words(&[0, 0, 1000, 0])));
    tracks.iter().for_each(|t| body.extend(t.build()));
    let mut f = boxed(b"moov", &body);
    f.resize(f.len().max(size), 0);
    let len = f.len() as u64;
    (f, len)
}

fn read_tracks(tracks: &[Track]) -> Result<HashMap<u32, Table>, String> {
    let (f, len) = file(tracks, 1000);
    read(&mut Cursor::new(f), 0, len)
}

fn refused(track: Track, why: &str) {
    let err = read_tracks(&[track]).unwrap_err();
    assert!(err.contains(why), "{err:?} does not say {why:?}");
}

#[test]
fn packets_are_timed_as_qtdemux_times_them() {
    let mut t = Track::plain();
    t.timescale = 30_000;
    t.stts = vec![(3, 1001), (1, 2002)];
    t.ctts = Some((0, vec![(1, 2002), (2, 0), (1, 1001)]));
    let tables = read_tracks(&[t]).unwrap();
    let table = &tables[&1];
    assert_eq!(table.sample_count(), 4);
    let packets: Vec<_> = table.packets_ns().collect();
    // 1001/30000 s = 33_366_666.6 ns, truncated at each boundary (never accumulated)
    assert_eq!(
        packets,
        vec![
            (66_733_333, 0, 33_366_666, 100),
            (33_366_666, 33_366_666, 33_366_667, 100),
            (66_733_333, 66_733_333, 33_366_667, 100),
            (133_466_666, 100_100_000, 66_733_333, 100),
        ]
    );
}

#[test]
fn every_track_is_read_by_id() {
    let mut audio = Track::plain();
    audio.id = 7;
    audio.sizes = vec![10, 20, 30, 40];
    let tables = read_tracks(&[Track::plain(), audio]).unwrap();
    assert_eq!(tables.len(), 2);
    assert_eq!(tables[&7].samples().map(|s| s.size).collect::<Vec<_>>(), vec![10, 20, 30, 40]);
    let mut twin = Track::plain();
    twin.sizes = vec![1; 4];
    assert!(read_tracks(&[Track::plain(), twin]).unwrap_err().contains("two tracks with one id"));
}

#[test]
fn an_edit_list_is_accepted_only_when_it_maps_every_sample_unchanged() {
    // media duration 12000 / 90000 s = 133.3 ms; movie timescale 1000
    let v0 = |duration: u32, media_time: i32, rate: u32| full(0, &words(&[1, duration, media_time as u32, rate]));
    let whole = [
        v0(133, 0, 1 << 16),
        v0(134, 0, 1 << 16),
        v0(0, 0, 1 << 16),
        full(0, &words(&[0])),
        // a B-frame delay of 3000 units (33.3 ms): the rest of the media is 100 ms
        v0(100, 3000, 1 << 16),
    ];
    for elst in whole {
        let mut t = Track::plain();
        t.elst = Some(elst);
        read_tracks(&[t]).unwrap();
    }
    let v1 = |duration: u64, media_time: i64| {
        full(1, &[&words(&[1])[..], &duration.to_be_bytes(), &media_time.to_be_bytes(), &words(&[1 << 16])].concat())
    };
    let mut t = Track::plain();
    t.elst = Some(v1(134, 0));
    read_tracks(&[t]).unwrap();
    let mut t = Track::plain();
    t.elst = Some(v1(100, 0));
    refused(t, "clips");

    for (elst, why) in [
        (v0(98, 3000, 1 << 16), "clips"),
        (v0(133, -1, 1 << 16), "empty edit"),
        (v0(133, 0, 2 << 16), "rate"),
        (v0(60, 0, 1 << 16), "clips"),
        (full(0, &words(&[2, 60, 0, 1 << 16, 73, 0, 1 << 16])), "2 entries"),
    ] {
        let mut t = Track::plain();
        t.elst = Some(elst);
        refused(t, why);
    }
}

#[test]
fn tables_that_disagree_or_that_qtdemux_reads_differently_are_refused() {
    let mut t = Track::plain();
    t.stts = vec![(3, 3000)];
    refused(t, "stts times 3 samples, stsz sizes 4");
    let mut t = Track::plain();
    t.ctts = Some((0, vec![(3, 0)]));
    refused(t, "ctts covers 3 samples of 4");
    let mut t = Track::plain();
    t.ctts = Some((1, vec![(2, 3000), (2, (-3000i32) as u32)]));
    refused(t, "negative composition offsets");
    let mut t = Track::plain();
    t.uniform = 100;
    refused(t, "one size for every sample");
    let mut t = Track::plain();
    t.sizes[2] = 0;
    refused(t, "an empty sample");
    let mut t = Track::plain();
    t.stsc = vec![(1, 3)];
    refused(t, "chunks hold more samples than stsz");
    let mut t = Track::plain();
    t.stsc = vec![(1, 1)];
    refused(t, "chunks place 2 samples of 4");
    let mut t = Track::plain();
    t.stsc = vec![(1, 1), (4, 2)];
    refused(t, "stsc names a chunk stco lacks");
    let mut t = Track::plain();
    t.stsc = vec![(2, 2), (1, 2)];
    refused(t, "out of order");
}

#[test]
fn a_sample_outside_the_file_leaves_the_counting_to_qtdemux() {
    // last sample ends at 300 + 200 = 500: inside a 500-byte file, outside a 499-byte one
    let (mut f, _) = file(&[Track::plain()], 500);
    assert!(read(&mut Cursor::new(f.clone()), 0, 500).is_ok());
    f.truncate(499);
    let err = read(&mut Cursor::new(f), 0, 499).unwrap_err();
    assert!(err.contains("past the end of the file"), "{err}");
}

#[test]
fn hostile_counts_allocate_nothing() {
    // stsz claims 2^32-1 samples in a few bytes: refused before any allocation
    let mut t = Track::plain();
    t.sizes = vec![];
    let mut trak = t.build();
    let at = trak.windows(4).position(|w| w == b"stsz").unwrap() + 4 + 8;
    trak[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut body = boxed(b"mvhd", &full(0, &words(&[0, 0, 1000, 0])));
    body.extend(trak);
    let f = boxed(b"moov", &body);
    let len = f.len() as u64;
    assert!(read(&mut Cursor::new(f), 0, len).unwrap_err().contains("more samples than it holds"));
    // a moov larger than MAX_MOOV is not loaded
    let mut huge = words(&[1]);
    huge.extend(b"moov");
    huge.extend((MAX_MOOV + 17).to_be_bytes());
    assert!(read(&mut Cursor::new(huge), 0, MAX_MOOV * 2).unwrap_err().contains("does not fit"));
}

#[test]
fn a_fragmented_movie_is_refused() {
    let mut body = boxed(b"mvhd", &full(0, &words(&[0, 0, 1000, 0])));
    body.extend(boxed(b"mvex", &[]));
    let f = boxed(b"moov", &body);
    let len = f.len() as u64;
    assert_eq!(read(&mut Cursor::new(f), 0, len).unwrap_err(), "fragmented movie");
}

#[test]
fn mangled_tables_are_refused_or_read_never_panic() {
    use rand::{Rng, SeedableRng};
    // Every byte of the moov is fair game: sizes, counts, versions, offsets. Whatever comes out
    // must be refused with a reason, or be tables whose samples all lie inside the file.
    let mut t = Track::plain();
    t.ctts = Some((0, vec![(2, 3000), (2, 0)]));
    let (good, len) = file(&[t, Track { id: 2, ..Track::plain() }], 1000);
    let moov_len = u32::from_be_bytes(good[..4].try_into().unwrap()) as usize;
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let (mut refused, mut read_ok) = (0, 0);
    for _ in 0..5000 {
        let mut f = good.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..moov_len);
            f[at] = rng.random();
        }
        match read(&mut Cursor::new(f), 0, len) {
            Err(_) => refused += 1,
            Ok(tables) => {
                read_ok += 1;
                for table in tables.values() {
                    assert_eq!(table.samples().count() as u64, table.sample_count());
                    assert!(table.packets_ns().all(|(pts, dts, _, size)| pts >= dts && size > 0));
                }
            }
        }
    }
    assert!(refused > 100 && read_ok > 100, "refused {refused}, read {read_ok}");
}
