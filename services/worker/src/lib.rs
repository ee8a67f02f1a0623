//! recvault-worker: the ingest pipeline and the worker that runs it.
//!
//! A job goes through four stages, each in its own module, each timed in
//! `recvault_stage_duration_seconds{stage}`:
//!
//! 1. [`fetch`]: stream the staged object once, hashing it with BLAKE3 and SHA-256 while spooling
//!    it to local disk (hashing and writing on a blocking thread).
//! 2. [`verify`]: probe the spooled file with GStreamer and assess it
//!    (`recvault_core::probe::assess`), on a blocking thread. The probe starts with the download
//!    and reads the spool file as it grows, so a faststart or fragmented file is probed alongside
//!    its download; the station's claims (size, hash) are checked once the download ends, and the
//!    stage's time is what is left of the probe then.
//! 3. [`archive`]: server-side copy into the archive (or quarantine) under the content-addressed
//!    key, with R19.1 retention tags, hash metadata and Object Lock.
//! 4. record: one Postgres transaction (`recvault_db`), then the queue message is acknowledged,
//!    and only then the staged object is deleted.
//!
//! [`job`] runs the stages for one delivery and decides how to settle it; [`run`] is the consumer
//! loop with bounded concurrency and graceful shutdown; [`metrics`] declares every metric;
//! the configuration comes from `recvault-config`; [`http`] serves `/metrics` and health checks; [`spool`]
//! owns the local copies (locked, so workers can share a spool directory) and [`budget`] the room
//! for them; [`sweep`] removes
//! staged copies of completed jobs that a worker killed after its ack left behind; [`reconcile`]
//! checks the archive against Postgres (R21.1).

pub mod archive;
pub mod budget;
pub mod fetch;
pub mod http;
pub mod job;
pub mod metrics;
pub mod reconcile;
pub mod recovery;
pub mod run;
pub mod spool;
pub mod sweep;
pub mod verify;

pub use metrics::Metrics;
pub use recvault_config::{Settings, WorkerConfig};
pub use run::{Worker, WorkerDeps};
