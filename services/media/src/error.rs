//! Environment failures of the probe. A damaged or foreign file is never an error: it is a
//! [`recvault_core::probe::ProbeReport`] whose facts make `assess` reject or flag it.

use std::path::PathBuf;

/// Why the probe could not read a file at all.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// `gst::init` failed (no usable GStreamer installation).
    #[error("gstreamer init failed: {0}")]
    Init(String),
    /// A GStreamer element the probe needs is not installed.
    #[error("gstreamer element {element} is missing (install the debian package {package})")]
    MissingElement {
        /// GStreamer element factory name.
        element: &'static str,
        /// Debian package that ships it.
        package: &'static str,
    },
    /// The file could not be opened or its size read.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Reading the file failed part-way (an I/O error, not the end of the file).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The demux pipeline could not be built or driven (element refused to link, no bus).
    #[error("demux pipeline: {0}")]
    Pipeline(String),
}

impl MediaError {
    /// I/O failures may clear on a retry (a busy disk, a spool file being replaced). A missing or
    /// broken GStreamer will not: the worker should report itself unhealthy instead of requeuing.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Open { .. } | Self::Read { .. })
    }
}
