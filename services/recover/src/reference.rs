//! What a device's recordings look like, learned from one finished recording of it (the
//! reference): codec configurations, timescales, sample rates, and the shape of its video samples.

use crate::aac::Framer;
use crate::error::RecoverError;
use crate::mp4::{self, Movie, Track, be16, child, children};
use crate::nal::{Codec, VideoModel};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Reference samples read to learn the video model: enough for several keyframe intervals.
const LEARN_SAMPLES: usize = 600;

/// The reference recording's tracks, ready to recognise the same device's media data.
#[derive(Debug)]
pub(crate) struct Reference {
    pub(crate) path: PathBuf,
    pub(crate) movie: Movie,
    pub(crate) video: Option<(usize, VideoModel)>,
    /// Track index and the AudioSpecificConfig.
    pub(crate) audio: Option<(usize, Vec<u8>)>,
}

impl Reference {
    pub(crate) fn read(path: &Path) -> Result<Self, RecoverError> {
        let bad = |why: String| RecoverError::Reference { path: path.to_owned(), why };
        let movie = Movie::read(path)?;
        let file = File::open(path).map_err(|source| RecoverError::Io { path: path.to_owned(), source })?;
        let mut video = None;
        let mut audio = None;
        for (i, track) in movie.tracks.iter().enumerate() {
            let entry = track.sample_entry().ok_or_else(|| bad("a track has no sample entry".into()))?;
            match (&track.handler, &entry.fourcc) {
                (b"vide", b"avc1" | b"avc3" | b"hvc1" | b"hev1") if video.is_none() => {
                    let model =
                        video_model(&file, track, entry).map_err(|why| bad(format!("its video track: {why}")))?;
                    video = Some((i, model));
                }
                (b"soun", b"mp4a") if audio.is_none() => {
                    let asc = audio_config(entry.body)
                        .ok_or_else(|| bad("its mp4a entry has no AAC configuration".into()))?;
                    // Refuse now what the framer cannot decode, rather than place nothing later.
                    Framer::new(&asc).map_err(|why| bad(format!("its audio track: {why}")))?;
                    audio = Some((i, asc));
                }
                _ => {}
            }
        }
        if video.is_none() && audio.is_none() {
            return Err(bad("it has no H.264/H.265 video or AAC audio track".into()));
        }
        Ok(Reference { path: path.to_owned(), movie, video, audio })
    }
}

/// Visual sample entry fields before its child boxes (ISO/IEC 14496-12, 12.1.3).
const VISUAL_ENTRY: usize = 78;

fn video_model(file: &File, track: &Track, entry: mp4::BoxRef<'_>) -> Result<VideoModel, String> {
    let boxes = entry.body.get(VISUAL_ENTRY..).ok_or("short sample entry")?;
    let (codec, length_size) = match &entry.fourcc {
        b"avc1" | b"avc3" => {
            let avcc = child(boxes, b"avcC").ok_or("no avcC")?;
            (Codec::H264, usize::from(avcc.body.get(4).ok_or("short avcC")? & 3) + 1)
        }
        _ => {
            let hvcc = child(boxes, b"hvcC").ok_or("no hvcC")?;
            (Codec::H265, usize::from(hvcc.body.get(21).ok_or("short hvcC")? & 3) + 1)
        }
    };
    if length_size == 3 {
        return Err("3-byte NAL unit lengths are not allowed".into());
    }
    let mut bufs = Vec::new();
    for s in track.samples.iter().take(LEARN_SAMPLES) {
        let mut b = vec![0u8; usize::try_from(s.size).map_err(|_| "a huge sample")?];
        file.read_exact_at(&mut b, s.offset).map_err(|e| format!("reading a sample: {e}"))?;
        bufs.push(b);
    }
    VideoModel::learn(codec, length_size, bufs.iter().map(Vec::as_slice))
}

/// The AudioSpecificConfig inside an `mp4a` entry's `esds` (ISO/IEC 14496-1 descriptors).
fn audio_config(mp4a: &[u8]) -> Option<Vec<u8>> {
    // sound sample entry: 8 bytes, then version (2): v0 28 bytes in all, v1 +16, v2 +36
    let skip = match be16(mp4a, 8)? {
        0 => 28,
        1 => 44,
        2 => 64,
        _ => return None,
    };
    let esds = children(mp4a.get(skip..)?).find(|b| &b.fourcc == b"esds")?;
    let d = esds.body.get(4..)?; // full box header
    let (tag, es) = descriptor(d)?;
    if tag != 3 {
        return None;
    }
    let flags = *es.get(2)?;
    let mut at = 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*es.get(at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let (tag, dcd) = descriptor(es.get(at..)?)?;
    if tag != 4 {
        return None;
    }
    let (tag, dsi) = descriptor(dcd.get(13..)?)?;
    (tag == 5 && dsi.len() >= 2).then(|| dsi.to_vec())
}

/// A descriptor's tag and body (its size is 1–4 bytes of 7 bits each).
fn descriptor(b: &[u8]) -> Option<(u8, &[u8])> {
    let tag = *b.first()?;
    let mut size = 0usize;
    let mut at = 1;
    loop {
        let c = *b.get(at)?;
        size = (size << 7) | usize::from(c & 0x7f);
        at += 1;
        if c & 0x80 == 0 || at > 4 {
            break;
        }
    }
    Some((tag, b.get(at..at + size)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aac_configuration_is_found_in_an_esds() {
        // ES_Descriptor(ES_ID 1, no flags) > DecoderConfigDescriptor(0x40, audio, ...) > DSI 14 08
        let dsi = [5u8, 2, 0x14, 0x08];
        let mut dcd = vec![4u8, 13 + dsi.len() as u8, 0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        dcd.extend_from_slice(&dsi);
        let mut es = vec![3u8, 0x80, 0x80, 0x80, 3 + dcd.len() as u8, 0, 1, 0];
        es.extend_from_slice(&dcd);
        let mut esds = ((12 + es.len()) as u32).to_be_bytes().to_vec();
        esds.extend_from_slice(b"esds");
        esds.extend_from_slice(&[0, 0, 0, 0]);
        esds.extend_from_slice(&es);
        let mut mp4a = vec![0u8; 28];
        mp4a.extend_from_slice(&esds);
        assert_eq!(audio_config(&mp4a), Some(vec![0x14, 0x08]));
        mp4a[9] = 7; // unknown sound entry version
        assert_eq!(audio_config(&mp4a), None);
    }
}
