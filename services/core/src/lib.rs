//! recvault-core: the rules of the Fuzhou recorder regulation as pure functions and types.
//!
//! Nothing here does I/O, spawns tasks or reads the clock: every decision the system makes about a
//! recording is taken here, from plain data, so it can be tested exhaustively and explained.
//!
//! # Layout
//! - [`access`]: roles, principals and the decision table every API route checks.
//! - [`cases`]: R19.1(2) case closures, bundle states and deadlines, bundle jobs and events.
//! - [`job`]: upload job contract v1, what a docking station posts (checking constructors only).
//! - [`contract`]: worked examples of the contract, valid and refused, for vendors and tests.
//! - [`taxonomy`]: the R7.1 event types and their categories.
//! - [`retention`]: the R19.1 retention class of a recording, and the "only ever raised" rule.
//! - [`probe`]: the facts the media probe reads from a file, and [`probe::assess`], which turns them
//!   into a verdict (accept, accept flagged, reject) with defects.
//! - [`speech`]: speech segments found in the audio, and how frame decisions become segments.
//! - [`speaker`]: who spoke each segment, the wearer or someone else (R13.1, R15.1).
//! - [`hash`]: content hashes and the station's claims about them.
//! - [`finding`]: findings with their requirement ID and severity, as stored and shown.
//! - [`keys`]: the content-addressed object keys of the archive and the quarantine.
//! - [`reconcile`]: what the database records against what the archive shows (R21.1).
//! - [`text`]: escaping of untrusted text on its way to logs and message headers.

pub mod access;
pub mod analysis;
pub mod calendar;
pub mod cases;
pub mod contract;
pub mod deadlines;
pub mod finding;
pub mod hash;
pub mod job;
pub mod keys;
pub mod probe;
pub mod reconcile;
pub mod retention;
pub mod speaker;
pub mod speech;
pub mod taxonomy;
pub mod text;

pub use finding::{Finding, FindingKind, Rejection, Severity};
pub use hash::{Blake3Hash, ClaimedHash, ContentHashes, Sha256Hash, check_claims};
pub use job::{JobError, Provenance, UploadJob};
pub use retention::{RetentionClass, RetentionDecision};
pub use taxonomy::{EventCategory, EventType};
