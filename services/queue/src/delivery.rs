//! One job delivery and how it is settled.

use crate::{QueueError, amqp};
use lapin::BasicProperties;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::types::{AMQPValue, FieldTable};

/// Header names recvault sets or reads.
pub mod headers {
    /// Delayed retries this job has had (set by the worker).
    pub const RETRIES: &str = "x-recvault-retries";
    /// The transient fault that caused the last retry.
    pub const LAST_ERROR: &str = "x-recvault-last-error";
    /// Stable code of the reason a job was dead-lettered (`hash_mismatch`, `invalid_job`, ...).
    pub const REASON: &str = "x-recvault-reason";
    /// Human-readable detail of that reason.
    pub const DETAIL: &str = "x-recvault-detail";
    /// Set by quorum queues on redelivery: earlier deliveries that were returned unacknowledged.
    pub const DELIVERY_COUNT: &str = "x-delivery-count";
    /// Times a job waited for room in a worker's spool (waits spend no retry).
    pub const WAITS: &str = "x-recvault-waits";
    /// Who replayed a dead-lettered job, and why (`recvault dead-letters replay`).
    pub const REPLAYED_BY: &str = "x-recvault-replayed-by";
    pub const REPLAY_REASON: &str = "x-recvault-replay-reason";
    /// Times a job was replayed from the dead-letter queue.
    pub const REPLAYS: &str = "x-recvault-replays";
    /// The routing key a dead-lettered job came with (its lane), so a replay sends it back there.
    pub const ROUTING_KEY: &str = "x-recvault-routing-key";
}

/// A job received from the work queue. Dropping it without settling leaves it unacknowledged
/// until the channel closes, when the broker redelivers it.
#[derive(Debug)]
pub struct JobDelivery {
    inner: Delivery,
    empty: FieldTable,
}

impl JobDelivery {
    pub(crate) fn new(inner: Delivery) -> Self {
        Self { inner, empty: FieldTable::default() }
    }

    pub fn body(&self) -> &[u8] {
        &self.inner.data
    }

    pub fn properties(&self) -> &BasicProperties {
        &self.inner.properties
    }

    pub fn headers(&self) -> &FieldTable {
        self.inner.properties.headers().as_ref().unwrap_or(&self.empty)
    }

    /// The routing key it was published with (a retried job keeps its lane's key).
    pub fn routing_key(&self) -> &str {
        self.inner.routing_key.as_str()
    }

    pub fn message_id(&self) -> Option<&str> {
        self.inner.properties.message_id().as_ref().map(|s| s.as_str())
    }

    /// The broker user that published the message: RabbitMQ refuses a publish whose `user_id`
    /// property is not the publishing connection's user (unless that user may impersonate), so a
    /// station cannot speak for another.
    pub fn user_id(&self) -> Option<&str> {
        self.inner.properties.user_id().as_ref().map(|s| s.as_str())
    }

    /// Delayed retries already spent on this job.
    pub fn retries(&self) -> u32 {
        self.int_header(headers::RETRIES)
    }

    /// Times the broker handed this message out before and got it back unacknowledged (a worker
    /// died or shut down mid-job).
    pub fn redeliveries(&self) -> u32 {
        self.int_header(headers::DELIVERY_COUNT)
    }

    /// Times this job waited for spool room.
    pub fn waits(&self) -> u32 {
        self.int_header(headers::WAITS)
    }

    pub fn redelivered(&self) -> bool {
        self.inner.redelivered
    }

    fn int_header(&self, name: &str) -> u32 {
        let v = match self.headers().inner().get(name) {
            Some(AMQPValue::LongUInt(v)) => i64::from(*v),
            Some(AMQPValue::LongInt(v)) => i64::from(*v),
            Some(AMQPValue::LongLongInt(v)) => *v,
            Some(AMQPValue::ShortUInt(v)) => i64::from(*v),
            Some(AMQPValue::ShortInt(v)) => i64::from(*v),
            _ => 0,
        };
        u32::try_from(v.max(0)).unwrap_or(u32::MAX)
    }

    /// Done: the result is committed (or the job was forwarded to retry or dead-letter).
    pub async fn ack(&self) -> Result<(), QueueError> {
        self.inner.acker.ack(BasicAckOptions::default()).await.map(drop).map_err(amqp("basic.ack"))
    }

    /// Give it back to the queue now, e.g. at shutdown.
    pub async fn requeue(&self) -> Result<(), QueueError> {
        self.inner
            .acker
            .nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() })
            .await
            .map(drop)
            .map_err(amqp("basic.nack"))
    }
}
