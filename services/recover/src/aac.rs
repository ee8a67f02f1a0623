//! Where a raw AAC frame ends.
//!
//! A raw AAC frame (MP4 stores them without ADTS headers) carries no length: its end is where the
//! decoder reads the `ID_END` element, after Huffman-coded spectral data. So the frame is measured
//! by decoding: the shortest prefix of the bytes that decodes completely is the frame.
//!
//! A decoder that runs out of bits may stop without an error (Symphonia's loop ends when fewer than
//! four bits are left), so each candidate prefix is followed by a guard: bytes `0x55` (`0101…`),
//! whose every 3-bit window is `010` (a coupling channel element) or `101` (a program config
//! element), both refused by the decoder. A prefix that stops before the frame's `ID_END` therefore
//! reads into the guard and fails, and one that holds the whole frame never reaches it: success is
//! monotone in the prefix length, and a binary search finds the frame's exact length.

use symphonia_codec_aac::AacDecoder;
use symphonia_core::codecs::audio::well_known::CODEC_ID_AAC;
use symphonia_core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia_core::packet::PacketRef;
use symphonia_core::units::{Duration, Timestamp};

/// Guard length: longer than any element a decoder could read past the candidate's end before it
/// reads an element id.
const GUARD: usize = 8192;

/// The largest raw AAC-LC frame: 6144 bits per channel (ISO/IEC 14496-3, 4.5.3.1), two channels.
pub(crate) const MAX_FRAME: usize = 2 * 6144 / 8;

/// Measures raw AAC frames of one track.
pub(crate) struct Framer {
    decoder: AacDecoder,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Framer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framer").finish_non_exhaustive()
    }
}

impl Framer {
    /// A framer for the track whose AudioSpecificConfig is `asc` (from its `esds`).
    pub(crate) fn new(asc: &[u8]) -> Result<Self, String> {
        let mut params = AudioCodecParameters::new();
        params.for_codec(CODEC_ID_AAC).with_extra_data(asc.to_vec().into_boxed_slice());
        let decoder = AacDecoder::try_new(&params, &AudioDecoderOptions::default())
            .map_err(|e| format!("its AAC configuration is not one this decodes (AAC-LC, 1 or 2 channels): {e}"))?;
        Ok(Framer { decoder, buf: Vec::with_capacity(MAX_FRAME + GUARD) })
    }

    /// The length of the AAC frame at the start of `bytes`, if one is there (whole).
    pub(crate) fn frame(&mut self, bytes: &[u8]) -> Option<usize> {
        let hi = bytes.len().min(MAX_FRAME);
        if hi == 0 || !self.decodes(&bytes[..hi]) {
            return None;
        }
        // smallest n in 1..=hi that decodes
        let (mut lo, mut hi) = (1usize, hi);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.decodes(&bytes[..mid]) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(lo)
    }

    fn decodes(&mut self, frame: &[u8]) -> bool {
        self.buf.clear();
        self.buf.extend_from_slice(frame);
        self.buf.resize(frame.len() + GUARD, 0x55);
        let packet = PacketRef::new(0, Timestamp::ZERO, Duration::new(1024), &self.buf);
        let decoder = &mut self.decoder;
        // A decoder fed arbitrary bytes must not take the recovery down with it.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decoder.decode_ref(&packet).is_ok())).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AudioSpecificConfig: AAC-LC (2), 16 kHz (index 8), mono.
    const ASC_16K_MONO: [u8; 2] = [0x14, 0x08];

    #[test]
    fn a_silent_frame_is_measured_exactly() {
        // SCE (000), tag 0 (0000), global_gain 100 (01100100), ics_info: reserved 0, ONLY_LONG (00),
        // shape 0, max_sfb 0 (000000), predictor 0; no sections; pulse 0, tns 0, gain 0; END (111).
        let bits = ["000", "0000", "01100100", "0", "00", "0", "000000", "0", "000", "111"].concat();
        let mut frame = pack(&bits);
        let len = frame.len();
        let mut f = Framer::new(&ASC_16K_MONO).unwrap();
        frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x11]);
        assert_eq!(f.frame(&frame), Some(len));
        // one byte short: the frame has no end
        assert_eq!(f.frame(&frame[..len - 1]), None);
        // a channel pair in a mono track is refused
        assert_eq!(f.frame(&pack("001")), None);
    }

    fn pack(bits: &str) -> Vec<u8> {
        let mut out = vec![0u8; bits.len().div_ceil(8)];
        for (i, c) in bits.chars().enumerate() {
            if c == '1' {
                out[i / 8] |= 0x80 >> (i % 8);
            }
        }
        out
    }
}
