//! recvault-queue: the RabbitMQ adapter.
//!
//! # Topology (declared idempotently by [`Broker::declare`]; names from a configurable prefix `p`)
//! ```text
//! station ──publish (confirmed, persistent)──▶ exchange  p.jobs (direct) ──upload.v1──▶ queue p.jobs.work (quorum)
//!                                                   ▲                                         │ worker: manual ack,
//!                              TTL expiry           │                                         │ prefetch = concurrency
//! p.jobs.retry.<ms> (classic, x-message-ttl) ───────┘◀── retryable fault, attempt < max ───────┤
//!                                                                                              │
//! p.dead (fanout) ──▶ queue p.jobs.dead (quorum) ◀── invalid job, permanent fault, retries spent,
//!                                                    or x-delivery-limit reached (crash loops)
//! ```
//! A job is acknowledged only after its result is committed. A retry or dead-letter is published
//! with a publisher confirm first and the original acknowledged second, so a crash in between
//! duplicates a message (harmless: processing is idempotent) but never loses one.
//!
//! # Layout
//! - [`topology`]: queue and exchange names and arguments.
//! - [`broker`]: connection, declaration, publisher and consumer set-up.
//! - [`delivery`]: one received job and the ways to settle it.
//! - [`deadletters`]: reading and replaying the dead-letter queue.
//! - [`admin`]: station users and their permissions, through the management API.

pub mod admin;
mod broker;
pub mod deadletters;
mod delivery;
mod topology;

pub use broker::{Broker, JobConsumer, Publisher, QueueConfig};
pub use delivery::{JobDelivery, headers};
pub use topology::Topology;

/// Errors from the broker. All are transient from the worker's point of view (the broker or the
/// network is at fault, not the job), except a publish the broker explicitly refused.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("amqp connection failed: {0}")]
    Connect(#[source] lapin::Error),
    #[error("amqp {op} failed: {source}")]
    Amqp { op: &'static str, source: lapin::Error },
    #[error("broker refused to take the message published to {0}")]
    Nacked(String),
    #[error("message published to {0} was unroutable")]
    Unroutable(String),
    #[error("broker management: {0}")]
    Admin(String),
}

pub(crate) fn amqp(op: &'static str) -> impl FnOnce(lapin::Error) -> QueueError {
    move |source| QueueError::Amqp { op, source }
}
