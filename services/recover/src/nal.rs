//! Length-prefixed H.264 (ISO/IEC 14496-15 `avc1`/`avc3`) and H.265 (`hvc1`/`hev1`) NAL units,
//! and the access units (MP4 samples) they make.
//!
//! A sample in the media data has no marker: it is a run of NAL units, each after a 1–4 byte
//! length. What tells a sample from the AAC frames around it is that every NAL header, slice header
//! start and length must match what the same device wrote in its reference recording: which NAL
//! types start a sample, which precede and follow the picture's slices, how many slices a picture
//! has, which slice types and picture parameter sets occur, and how large units get.

use std::collections::BTreeSet;

/// The video codec of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

/// One NAL unit's header, as far as telling samples apart needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nal {
    pub(crate) kind: u8,
    pub(crate) vcl: bool,
    /// A slice that starts a picture (H.264 `first_mb_in_slice == 0`, H.265
    /// `first_slice_segment_in_pic_flag`).
    pub(crate) first_slice: bool,
    /// A random-access picture (IDR, or H.265 IRAP).
    pub(crate) sync: bool,
    /// What starts the slice header, for a slice that starts a picture: H.264 (slice_type % 5,
    /// pic_parameter_set_id), H.265 (0, slice_pic_parameter_set_id).
    pub(crate) slice: Option<(u32, u32)>,
}

impl Codec {
    /// Parses the NAL header (and the start of a slice header) at the start of `b`.
    pub(crate) fn nal(self, b: &[u8]) -> Option<Nal> {
        let h = *b.first()?;
        if h & 0x80 != 0 {
            return None; // forbidden_zero_bit
        }
        match self {
            Codec::H264 => {
                let kind = h & 0x1f;
                let ref_idc = h >> 5;
                if kind == 0 || kind >= 24 || (kind == 5 && ref_idc == 0) {
                    return None;
                }
                let vcl = (1..=5).contains(&kind);
                let mut bits = Bits::new(b.get(1..).unwrap_or_default());
                let (first_slice, slice) = if vcl {
                    let first_mb = bits.ue()?;
                    let first = first_mb == 0;
                    let slice = if first { Some((bits.ue()? % 5, bits.ue()?)) } else { None };
                    (first, slice)
                } else {
                    (false, None)
                };
                Some(Nal { kind, vcl, first_slice, sync: kind == 5, slice })
            }
            Codec::H265 => {
                let h1 = *b.get(1)?;
                let kind = (h >> 1) & 0x3f;
                let layer = ((h & 1) << 5) | (h1 >> 3);
                if layer != 0 || h1 & 7 == 0 {
                    return None; // nuh_layer_id (base layer only), nuh_temporal_id_plus1 > 0
                }
                let vcl = kind < 32;
                let irap = (16..=23).contains(&kind);
                let mut bits = Bits::new(b.get(2..).unwrap_or_default());
                let (first_slice, slice) = if vcl {
                    let first = bits.bit()? == 1;
                    let slice = if first {
                        if irap {
                            bits.bit()?; // no_output_of_prior_pics_flag
                        }
                        Some((0, bits.ue()?))
                    } else {
                        None
                    };
                    (first, slice)
                } else {
                    (false, None)
                };
                Some(Nal { kind, vcl, first_slice, sync: irap, slice })
            }
        }
    }

    /// Bytes of NAL header and slice header start [`Codec::nal`] looks at (at most).
    pub(crate) const PEEK: usize = 12;
}

/// MSB-first bit reader over a few bytes, for Exp-Golomb codes.
struct Bits<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(b: &'a [u8]) -> Self {
        Bits { b, at: 0 }
    }

    fn bit(&mut self) -> Option<u32> {
        let byte = self.b.get(self.at / 8)?;
        let v = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(v))
    }

    /// ue(v); `None` past the bytes or for codes over 31 bits.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut v = 0u32;
        for _ in 0..zeros {
            v = (v << 1) | self.bit()?;
        }
        Some(((1u64 << zeros) - 1 + u64::from(v)) as u32)
    }
}

/// What a device's video samples look like, learned from its reference recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoModel {
    pub(crate) codec: Codec,
    /// Bytes of each NAL unit's length prefix (1, 2 or 4).
    pub(crate) length_size: usize,
    /// NAL types that start a sample.
    pub(crate) first: BTreeSet<u8>,
    /// Non-VCL types before a sample's first slice.
    pub(crate) lead: BTreeSet<u8>,
    /// VCL types.
    pub(crate) vcl: BTreeSet<u8>,
    /// Non-VCL types after a sample's slices.
    pub(crate) trail: BTreeSet<u8>,
    /// Slice header starts of pictures' first slices.
    pub(crate) slices: BTreeSet<(u8, u32, u32)>,
    /// Most slices in one sample.
    pub(crate) max_slices: usize,
    /// Largest NAL unit accepted (the reference's largest, with a wide margin: another scene can
    /// cost several times the bits).
    pub(crate) max_nal: u64,
}

/// How far the bytes at an offset go as a video sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A whole sample of this many bytes; `sync` for a random-access picture.
    Sample { len: u64, sync: bool },
    /// A sample starts here but runs past the end of the data.
    Cut,
    /// Not a sample of this device.
    No,
}

impl VideoModel {
    /// Learns the model from the reference's samples, each given as its bytes.
    pub(crate) fn learn<'a>(
        codec: Codec,
        length_size: usize,
        samples: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Self, String> {
        let mut m = VideoModel {
            codec,
            length_size,
            first: BTreeSet::new(),
            lead: BTreeSet::new(),
            vcl: BTreeSet::new(),
            trail: BTreeSet::new(),
            slices: BTreeSet::new(),
            max_slices: 0,
            max_nal: 0,
        };
        let mut seen = 0;
        for sample in samples {
            let mut at = 0usize;
            let mut slices = 0;
            while at < sample.len() {
                let len = read_len(&sample[at..], length_size).ok_or("a sample ends inside a length prefix")?;
                let body = sample
                    .get(at + length_size..at + length_size + len as usize)
                    .ok_or("a NAL unit runs past its sample")?;
                let nal = codec.nal(body).ok_or("a NAL unit header is not valid")?;
                if at == 0 {
                    m.first.insert(nal.kind);
                }
                if nal.vcl {
                    m.vcl.insert(nal.kind);
                    slices += 1;
                    if let Some((t, pps)) = nal.slice {
                        m.slices.insert((nal.kind, t, pps));
                    }
                } else if slices == 0 {
                    m.lead.insert(nal.kind);
                } else {
                    m.trail.insert(nal.kind);
                }
                m.max_nal = m.max_nal.max(len);
                at += length_size + len as usize;
            }
            if slices == 0 {
                return Err("a sample has no slice".into());
            }
            m.max_slices = m.max_slices.max(slices);
            seen += 1;
        }
        if seen == 0 {
            return Err("the video track has no samples".into());
        }
        m.max_nal = (m.max_nal * 8).max(4 << 20);
        Ok(m)
    }

    /// The sample starting at `at` in `data` (`data` ends where the media data ends).
    pub(crate) fn unit(&self, data: &mut impl Bytes, at: u64, end: u64) -> Unit {
        let mut p = at;
        let mut slices = 0usize;
        let mut sync = false;
        loop {
            if p == end {
                break;
            }
            let Some((len, nal)) = self.nal_at(data, p, end) else { break };
            let fits = p + self.length_size as u64 + len <= end;
            let continues = if p == at {
                self.first.contains(&nal.kind) && self.plausible_slice(&nal)
            } else if slices == 0 {
                if nal.vcl { self.plausible_slice(&nal) } else { self.lead.contains(&nal.kind) }
            } else if nal.vcl {
                !nal.first_slice && slices < self.max_slices && self.vcl.contains(&nal.kind)
            } else {
                self.trail.contains(&nal.kind)
            };
            if !continues {
                break;
            }
            if !fits {
                return Unit::Cut;
            }
            if nal.vcl {
                slices += 1;
                sync |= nal.sync;
            }
            p += self.length_size as u64 + len;
        }
        if slices == 0 { Unit::No } else { Unit::Sample { len: p - at, sync } }
    }

    /// A picture's first slice must start as the reference's do; other NAL types are known.
    fn plausible_slice(&self, nal: &Nal) -> bool {
        if !nal.vcl {
            return true;
        }
        nal.first_slice && nal.slice.is_some_and(|(t, pps)| self.slices.contains(&(nal.kind, t, pps)))
    }

    /// The NAL unit at `p`: its payload length (which may run past `end`) and header.
    fn nal_at(&self, data: &mut impl Bytes, p: u64, end: u64) -> Option<(u64, Nal)> {
        let n = self.length_size;
        let head = data.peek(p, n + Codec::PEEK)?;
        let len = read_len(head, n)?;
        if len < 2 || len > self.max_nal || p + n as u64 + 1 > end {
            return None;
        }
        let body = &head[n..head.len().min(n + len as usize)];
        let nal = self.codec.nal(body)?;
        let known = if nal.vcl {
            self.vcl.contains(&nal.kind)
        } else {
            self.lead.contains(&nal.kind) || self.trail.contains(&nal.kind) || self.first.contains(&nal.kind)
        };
        known.then_some((len, nal))
    }
}

/// A big-endian length of `n` bytes at the start of `b`.
fn read_len(b: &[u8], n: usize) -> Option<u64> {
    let bytes = b.get(..n)?;
    Some(bytes.iter().fold(0u64, |v, x| (v << 8) | u64::from(*x)))
}

/// Random access to the damaged file's bytes.
pub(crate) trait Bytes {
    /// Up to `n` bytes at `at` (fewer at the end of the data); `None` past the end or on a read
    /// error.
    fn peek(&mut self, at: u64, n: usize) -> Option<&[u8]>;
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Bytes for Vec<u8> {
        fn peek(&mut self, at: u64, n: usize) -> Option<&[u8]> {
            let at = usize::try_from(at).ok()?;
            (at < self.len()).then(|| &self[at..self.len().min(at + n)])
        }
    }

    fn nal(header: &[u8], len: usize) -> Vec<u8> {
        let mut v = (len as u32).to_be_bytes().to_vec();
        v.extend_from_slice(header);
        v.resize(4 + len, 0x5a);
        v
    }

    // SEI, then an IDR slice: first_mb 0 ('1'), slice_type 7 ('0001000'), pps 0 ('1') = 1000 1000 1...
    const SEI: [u8; 2] = [0x06, 0x05];
    const IDR: [u8; 3] = [0x65, 0x88, 0x80];
    // P slice: first_mb 0 ('1'), slice_type 5 ('00110'), pps 0 ('1') = 1001 1010 ...
    const P: [u8; 3] = [0x41, 0x9a, 0x00];

    fn model() -> VideoModel {
        let s1 = [nal(&SEI, 20), nal(&IDR, 300)].concat();
        let s2 = nal(&P, 120);
        VideoModel::learn(Codec::H264, 4, [s1.as_slice(), s2.as_slice()].into_iter()).unwrap()
    }

    #[test]
    fn exp_golomb_codes_read_as_the_standard_gives_them() {
        let mut b = Bits::new(&[0b1010_0110, 0b0100_0000]);
        assert_eq!((b.ue(), b.ue(), b.ue(), b.ue()), (Some(0), Some(1), Some(2), Some(3)));
        assert_eq!(Codec::H264.nal(&IDR).unwrap().slice, Some((2, 0)));
        assert_eq!(Codec::H264.nal(&P).unwrap().slice, Some((0, 0)));
        assert!(Codec::H264.nal(&[0x85]).is_none(), "forbidden bit");
        assert!(Codec::H264.nal(&[0x05, 0x88]).is_none(), "an IDR slice must be a reference");
    }

    #[test]
    fn samples_are_found_whole_and_end_where_the_next_picture_starts() {
        let m = model();
        assert_eq!(m.first, BTreeSet::from([6, 1]));
        assert_eq!(m.max_slices, 1);
        let mut data = [nal(&SEI, 20), nal(&IDR, 300), nal(&P, 120), nal(&P, 90)].concat();
        let end = data.len() as u64;
        assert_eq!(m.unit(&mut data, 0, end), Unit::Sample { len: 24 + 304, sync: true });
        assert_eq!(m.unit(&mut data, 328, end), Unit::Sample { len: 124, sync: false });
        assert_eq!(m.unit(&mut data, 452, end), Unit::Sample { len: 94, sync: false });
        // the last picture cut short
        assert_eq!(m.unit(&mut data, 452, end - 1), Unit::Cut);
        // bytes of something else: an AAC frame starts 0x00 then the global gain
        let mut aac = vec![0x01, 0x18, 0x20, 0x07, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(m.unit(&mut aac, 0, 8), Unit::No);
        // a slice type the device never wrote
        let mut b_slice = nal(&[0x41, 0x88 | 0x02, 0x00], 50);
        assert_eq!(m.unit(&mut b_slice, 0, 54), Unit::No);
    }
}
