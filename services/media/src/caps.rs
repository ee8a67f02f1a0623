//! Caps → what a track is: kind, short codec name, and the format fields the report keeps.

use gstreamer as gst;
use recvault_core::probe::TrackKind;

/// The stream description a demuxer pad's caps give.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamInfo {
    pub(crate) kind: TrackKind,
    pub(crate) codec: String,
    pub(crate) profile: Option<String>,
    pub(crate) width: Option<u32>,
    pub(crate) height: Option<u32>,
    pub(crate) frame_rate: Option<f64>,
    pub(crate) sample_rate: Option<u32>,
    pub(crate) channels: Option<u32>,
}

impl StreamInfo {
    /// A pad that has no caps yet.
    pub(crate) fn unknown() -> Self {
        Self {
            kind: TrackKind::Other,
            codec: "unknown".into(),
            profile: None,
            width: None,
            height: None,
            frame_rate: None,
            sample_rate: None,
            channels: None,
        }
    }
}

/// Describes the first structure of `caps`.
pub(crate) fn describe(caps: &gst::CapsRef) -> StreamInfo {
    let Some(s) = caps.structure(0) else {
        return StreamInfo::unknown();
    };
    let name = s.name().as_str();
    let kind = if name.starts_with("video/") || name == "image/jpeg" {
        TrackKind::Video
    } else if name.starts_with("audio/") {
        TrackKind::Audio
    } else {
        TrackKind::Other
    };
    let positive = |field: &str| s.get::<i32>(field).ok().and_then(|v| u32::try_from(v).ok()).filter(|&v| v > 0);
    let codec = match name {
        "video/x-h264" => "h264".to_owned(),
        "video/x-h265" => "h265".to_owned(),
        // MPEG-2 AAC (mpegversion 2) is the same codec in an older wrapper.
        "audio/mpeg" if matches!(s.get::<i32>("mpegversion"), Ok(2 | 4)) => "aac".to_owned(),
        other => other.to_owned(),
    };
    let frame_rate = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| f64::from(f.numer()) / f64::from(f.denom()));
    StreamInfo {
        kind,
        codec,
        profile: s.get::<String>("profile").ok(),
        width: positive("width"),
        height: positive("height"),
        frame_rate,
        sample_rate: positive("rate"),
        channels: positive("channels"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(s: &str) -> gst::Caps {
        gst::init().unwrap();
        s.parse().unwrap()
    }

    #[test]
    fn h264_video() {
        let i = describe(&caps(
            "video/x-h264, stream-format=avc, alignment=au, profile=constrained-baseline, width=320, height=240, framerate=15/1",
        ));
        assert_eq!(
            (i.kind, i.codec.as_str(), i.profile.as_deref()),
            (TrackKind::Video, "h264", Some("constrained-baseline"))
        );
        assert_eq!((i.width, i.height, i.frame_rate), (Some(320), Some(240), Some(15.0)));
        assert_eq!((i.sample_rate, i.channels), (None, None));
    }

    #[test]
    fn variable_frame_rate_is_not_a_rate() {
        let i = describe(&caps("video/x-h265, width=1920, height=1080, framerate=0/1"));
        assert_eq!((i.codec.as_str(), i.frame_rate), ("h265", None));
        let i = describe(&caps("video/x-h264, framerate=30000/1001"));
        assert!((i.frame_rate.unwrap() - 29.97).abs() < 0.001);
    }

    #[test]
    fn aac_and_other_audio() {
        let i = describe(&caps("audio/mpeg, mpegversion=4, stream-format=raw, profile=lc, rate=16000, channels=1"));
        assert_eq!(
            (i.kind, i.codec.as_str(), i.sample_rate, i.channels),
            (TrackKind::Audio, "aac", Some(16000), Some(1))
        );
        let mp3 = describe(&caps("audio/mpeg, mpegversion=1, layer=3, rate=44100, channels=2"));
        assert_eq!(mp3.codec, "audio/mpeg");
        let pcm = describe(&caps("audio/x-raw, format=S16LE, rate=8000, channels=1"));
        assert_eq!((pcm.kind, pcm.codec.as_str()), (TrackKind::Audio, "audio/x-raw"));
    }

    #[test]
    fn other_streams() {
        let i = describe(&caps("application/x-subtitle-tx3g"));
        assert_eq!((i.kind, i.codec.as_str()), (TrackKind::Other, "application/x-subtitle-tx3g"));
        assert_eq!(describe(&gst::Caps::new_empty()), StreamInfo::unknown());
    }
}
