//! Why a recovery could not run. A recording from which little or nothing could be placed is not
//! an error: the [`crate::Recovery`] report says how much was placed and why the rest was not.

use std::path::PathBuf;

/// A recovery that could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The reference recording cannot serve as one.
    #[error("{} cannot serve as a reference: {why}", path.display())]
    Reference {
        /// The reference file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The damaged file is not one this recovers (it has an index, or no media data).
    #[error("{} {why}", path.display())]
    NotRecoverable {
        /// The damaged file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}
