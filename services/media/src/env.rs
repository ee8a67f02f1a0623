//! GStreamer start-up: `gst::init` once, then a check that every element the probe builds exists.

use crate::error::MediaError;
use gstreamer as gst;
use std::sync::OnceLock;

/// Elements the probe uses, with the Debian package that ships each.
pub(crate) const REQUIRED: &[(&str, &str)] =
    &[("filesrc", "libgstreamer1.0-0"), ("fakesink", "libgstreamer1.0-0"), ("qtdemux", "gstreamer1.0-plugins-good")];

/// Elements of the audio-decoding branch (speech analysis), checked only when it is on: a worker
/// without gstreamer1.0-libav can still verify files with speech analysis off.
pub(crate) const AUDIO: &[(&str, &str)] = &[
    ("avdec_aac", "gstreamer1.0-libav"),
    ("audioconvert", "gstreamer1.0-plugins-base"),
    ("audioresample", "gstreamer1.0-plugins-base"),
    ("appsink", "gstreamer1.0-plugins-base"),
];

/// Checks the audio branch's elements (after [`init`]).
pub(crate) fn require_audio() -> Result<(), MediaError> {
    init()?;
    match AUDIO.iter().find(|(element, _)| gst::ElementFactory::find(element).is_none()) {
        Some(&(element, package)) => Err(MediaError::MissingElement { element, package }),
        None => Ok(()),
    }
}

/// Cached outcome of the first [`init`]: `Clone`, unlike [`MediaError`].
#[derive(Debug, Clone)]
enum Failure {
    Init(String),
    Missing { element: &'static str, package: &'static str },
}

/// Initialises GStreamer and checks the required elements, once per process; later calls return
/// the first outcome. The first init on a machine scans the plugins (~1 s) and caches the registry.
pub fn init() -> Result<(), MediaError> {
    static READY: OnceLock<Result<(), Failure>> = OnceLock::new();
    let outcome = READY.get_or_init(|| {
        gst::init().map_err(|e| Failure::Init(e.to_string()))?;
        for &(element, package) in REQUIRED {
            if gst::ElementFactory::find(element).is_none() {
                return Err(Failure::Missing { element, package });
            }
        }
        Ok(())
    });
    outcome.clone().map_err(|f| match f {
        Failure::Init(e) => MediaError::Init(e),
        Failure::Missing { element, package } => MediaError::MissingElement { element, package },
    })
}
