//! recvault-bundles: R19.1(2) case-file bundles. Within 30 days of a case's closure its
//! recordings join the case file: the worker packs them as one BagIt bag in a tar
//! (`recvault-bagit`), streamed into the archive bucket in constant memory, locked and held like
//! the case file, and raises each recording to the case-file class.
//!
//! # Layout
//! - [`build`]: one bundle, from its row to a ready, locked object.
//! - [`consume`]: one bundle job on the queue, settled like an upload job; the events.

pub mod build;
pub mod consume;

pub use build::{BuildError, Builder, Built};
pub use consume::{BundleContext, OUTCOMES, handle};
