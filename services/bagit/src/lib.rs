//! BagIt (RFC 8493) bags packed as one tar stream: written in constant memory with fixity checked
//! on the fly, and verified offline.
//!
//! When a case closes, the bundle worker packs the case's recordings as a bag inside one tar and
//! streams it straight into an S3 multipart upload: the writer works on any `std::io::Write`,
//! never seeks and never holds a whole file. Each recording's SHA-256 is known from ingest and is
//! checked again while streaming; a mismatch fails the bag (the caller aborts the upload and
//! raises a fixity finding). Extracted, the bag validates with the Library of Congress `bagit`
//! tool (bagit-python); `recvault verify-bundle` checks a tar or a directory with
//! [`verify_tar`] / [`verify_dir`].
//!
//! # Layout
//!
//! - [`writer`]: [`BagWriter`], the tar stream: payload entries, then the tag files, then the end
//!   of the archive; the SHA-256 and size of the whole stream for the bundle record.
//! - [`verify`]: reading a tar once, or a directory, down to sizes, digests and tag files.
//! - `check`: the RFC 8493 §3 comparisons over what was read (pure).
//! - [`digest`]: the algorithms manifests name, and SHA-256 on threads of its own.
//! - [`path`]: which payload paths a bag may hold, and how manifests spell them.
//! - [`info`]: `bag-info.txt`, sanitised.
//! - `tagfile`: parsing tag files written by other tools.
//!
//! # The bag
//!
//! ```text
//! <bag_name>/                      every entry under one directory, mode 0644 (dirs 0755),
//! <bag_name>/data/...              uid/gid 0, mtime = bagging time, GNU long names
//! <bag_name>/bagit.txt             BagIt-Version: 1.0, UTF-8
//! <bag_name>/bag-info.txt          BagInfo + Bagging-Date, Payload-Oxum, Bag-Size
//! <bag_name>/manifest-sha256.txt   "<hex>  data/<path>"
//! <bag_name>/tagfile-blake3.txt    the same lines with BLAKE3 (recvault's content address)
//! <bag_name>/tagmanifest-sha256.txt  over the four files above
//! ```
//!
//! The BLAKE3 list is deliberately not named `manifest-blake3.txt`. RFC 8493 makes every
//! `manifest-<alg>.txt` a payload manifest that a validator must check, and BLAKE3 is in no
//! validator's list: bagit-python 1.9.0 only looks for `manifest-<alg>.txt` with `alg` in
//! `hashlib.algorithms_guaranteed`, so it would skip the file silently (leaving it unchecked
//! except through the tag manifest), and stricter validators reject a manifest of an unknown
//! algorithm outright. As an ordinary tag file it is covered by `tagmanifest-sha256.txt` and
//! checked line by line by this crate's verifier.

pub mod digest;
pub mod info;
pub mod path;
pub mod verify;
pub mod writer;

mod check;
mod error;
mod tagfile;

pub use digest::{Algorithm, FileDigests};
pub use error::{BagError, VerifyError};
pub use info::BagInfo;
pub use path::PayloadPath;
pub use verify::{Problem, ProblemKind, VerifyReport, verify_dir, verify_tar, verify_tar_seekable};
pub use writer::{BagSummary, BagWriter, CHUNK_SIZE};

/// The tag file listing every payload file's BLAKE3, in manifest format (see the crate docs).
pub const BLAKE3_TAG_FILE: &str = "tagfile-blake3.txt";
