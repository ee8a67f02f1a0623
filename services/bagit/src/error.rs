//! The errors of writing a bag and of reading one to verify it, with stable codes.
//!
//! Writing and verifying fail differently. A writer error ends the bag: whatever reached the sink
//! is not a bag and the caller aborts the upload. A verifier error means the input could not be
//! read at all; what is wrong *inside* a readable bag is not an error but a
//! [`Problem`](crate::Problem) in the report.

use std::io;

/// Why a bag could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BagError {
    /// A payload path the bag cannot hold safely (see [`PayloadPath`](crate::PayloadPath)).
    /// Nothing was written: the writer is still usable.
    #[error("invalid payload path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// The bag's name must be one safe path segment. Nothing was written.
    #[error("invalid bag name {name:?}: {reason}")]
    InvalidBagName { name: String, reason: &'static str },
    /// The same payload path twice, or a file where another entry needs a directory
    /// (`a` and `a/b`): extraction could not produce both. Nothing was written.
    #[error("payload path {path:?} conflicts with {other:?}")]
    PathConflict { path: String, other: String },
    /// A bag-info label that RFC 8493 §2.2.2 does not allow, or a required value that is empty.
    #[error("bag-info {label:?}: {reason}")]
    InvalidInfo { label: String, reason: &'static str },
    /// The reader ended before the declared size. The tar header already announced `expected`
    /// bytes, so the stream written so far is unusable.
    #[error("{path}: the reader ended after {actual} bytes, {expected} were declared")]
    ShortRead { path: String, expected: u64, actual: u64 },
    /// The reader had more bytes than the declared size. The stream is unusable.
    #[error("{path}: the reader has more than the {expected} bytes declared")]
    LongRead { path: String, expected: u64 },
    /// The bytes read do not have the SHA-256 known from ingest: the recording changed since it
    /// was archived, or the read was corrupted. The caller aborts the upload and raises a fixity
    /// finding; the entry is already in the stream, so the stream is unusable.
    #[error("{path}: fixity mismatch, expected sha-256 {}, read {}", hex::encode(.expected), hex::encode(.actual))]
    FixityMismatch { path: String, expected: [u8; 32], actual: [u8; 32] },
    /// Reading a payload source failed (an S3 body, a file).
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    /// Writing to the sink failed.
    #[error("writing the bag stream")]
    Write(#[source] io::Error),
    /// A hashing thread could not be started or stopped answering.
    #[error("hashing thread: {0}")]
    Hasher(&'static str),
    /// An earlier call failed after the stream had been written to; nothing more can be added.
    #[error("the bag writer failed earlier; the stream is unusable")]
    Unusable,
}

impl BagError {
    /// A stable machine code for logs, metrics labels and job results.
    pub fn code(&self) -> &'static str {
        match self {
            BagError::InvalidPath { .. } => "invalid_path",
            BagError::InvalidBagName { .. } => "invalid_bag_name",
            BagError::PathConflict { .. } => "path_conflict",
            BagError::InvalidInfo { .. } => "invalid_info",
            BagError::ShortRead { .. } => "short_read",
            BagError::LongRead { .. } => "long_read",
            BagError::FixityMismatch { .. } => "fixity_mismatch",
            BagError::Read { .. } => "read_failed",
            BagError::Write(_) => "write_failed",
            BagError::Hasher(_) => "hasher_failed",
            BagError::Unusable => "writer_unusable",
        }
    }

    /// Whether building the bag again from the start may succeed: a source or sink that failed
    /// on the way (network, store) may work next time; a path, a size or a hash that is wrong
    /// stays wrong.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BagError::Read { .. } | BagError::Write(_) | BagError::Hasher(_))
    }
}

/// Why a bag could not be verified at all (as opposed to a bag that was read and has problems).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The input could not be read: the reader of the tar failed, or a file of the bag directory
    /// could not be opened or read.
    #[error("reading {what}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    /// `verify_dir` was given something that is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(String),
    /// A hashing thread could not be started or stopped answering.
    #[error("hashing thread: {0}")]
    Hasher(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixity_mismatch_shows_both_hashes_in_hex() {
        let e = BagError::FixityMismatch { path: "a.mp4".into(), expected: [0xab; 32], actual: [0x01; 32] };
        let s = e.to_string();
        assert!(s.contains(&"ab".repeat(32)), "{s}");
        assert!(s.contains(&"01".repeat(32)), "{s}");
        assert_eq!(e.code(), "fixity_mismatch");
        assert!(!e.is_retryable());
    }
}
