//! Connection, idempotent declaration, the confirmed publisher and the manual-ack consumer.

use crate::delivery::{JobDelivery, headers};
use crate::topology::{BUNDLE_ROUTING_KEY, Topology, UPLOAD_ROUTING_KEY, long_string, short};
use crate::{QueueError, amqp};
use futures_util::StreamExt;
use lapin::Confirmation;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use recvault_core::text::escape_truncated;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `[amqp]` in `pipeline-config/recvault.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// AMQP URI; carries credentials, so it is a secret and never logged.
    pub url: SecretString,
    /// Prefix of every exchange and queue name.
    pub prefix: String,
    /// Delays of the successive delayed retries of a job that met a transient fault.
    pub retry_delays_ms: Vec<u64>,
    /// Deliveries after which the broker dead-letters a message on its own.
    pub delivery_limit: u32,
    /// RabbitMQ's management API, for `recvault station register` (station users) and the tests.
    pub management_url: String,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            prefix: "recvault".into(),
            // Rides out an outage of 2.7 hours before a job is dead-lettered (and replayable).
            retry_delays_ms: vec![5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 3_600_000],
            delivery_limit: 5,
            management_url: "http://127.0.0.1:15672".into(),
        }
    }
}

impl QueueConfig {
    pub fn topology(&self) -> Topology {
        Topology::new(&self.prefix, &self.retry_delays_ms, self.delivery_limit)
    }
}

/// One connection to the broker; channels are opened per role.
#[derive(Debug)]
pub struct Broker {
    pub(crate) conn: Connection,
    topology: Topology,
}

impl Broker {
    /// Connects with automatic connection recovery; `name` shows in the management UI.
    pub async fn connect(cfg: &QueueConfig, name: &str) -> Result<Self, QueueError> {
        let props = ConnectionProperties::default().enable_auto_recover().with_connection_name(LongString::from(name));
        let conn = Connection::connect(cfg.url.expose_secret(), props).await.map_err(QueueError::Connect)?;
        Ok(Self { conn, topology: cfg.topology() })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Declares every exchange, queue and binding. Safe to run from every worker at start-up: the
    /// broker accepts a re-declaration with identical arguments and refuses one with different
    /// arguments, which surfaces here as an error naming the queue.
    pub async fn declare(&self) -> Result<(), QueueError> {
        let t = &self.topology;
        let ch = self.conn.create_channel().await.map_err(amqp("channel.open"))?;
        let durable = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
        ch.exchange_declare(short(&t.jobs_exchange), ExchangeKind::Direct, durable, FieldTable::default())
            .await
            .map_err(amqp("exchange.declare jobs"))?;
        ch.exchange_declare(short(&t.dead_exchange), ExchangeKind::Fanout, durable, FieldTable::default())
            .await
            .map_err(amqp("exchange.declare dead"))?;
        let q = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        // A durable queue bound to an exchange by one routing key.
        let bound = async |queue: &str, args: FieldTable, exchange: &str, key: &str| -> Result<(), QueueError> {
            ch.queue_declare(short(queue), q, args).await.map_err(amqp("queue.declare"))?;
            ch.queue_bind(
                short(queue),
                short(exchange),
                short(key),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(amqp("queue.bind"))?;
            Ok(())
        };
        bound(&t.work_queue, t.work_queue_args(), &t.jobs_exchange, UPLOAD_ROUTING_KEY).await?;
        bound(&t.dead_queue, t.dead_queue_args(), &t.dead_exchange, "").await?;
        for (r, key) in t.all_retry_queues() {
            ch.queue_declare(short(&r.name), q, t.retry_queue_args(r, key))
                .await
                .map_err(amqp("queue.declare retry"))?;
        }
        // Bundle jobs: a lane of their own with the same guarantees as uploads.
        bound(&t.bundle_queue, t.work_queue_args(), &t.jobs_exchange, BUNDLE_ROUTING_KEY).await?;
        // Events for case systems, which bind their own queues.
        ch.exchange_declare(short(&t.events_exchange), ExchangeKind::Topic, durable, FieldTable::default())
            .await
            .map_err(amqp("exchange.declare events"))?;
        let _ = ch.close(200, short("declared")).await;
        Ok(())
    }

    /// A channel in confirm mode: every publish waits for the broker to take responsibility.
    pub async fn publisher(&self) -> Result<Publisher, QueueError> {
        let channel = self.conn.create_channel().await.map_err(amqp("channel.open"))?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(amqp("confirm.select"))?;
        Ok(Publisher { channel, topology: self.topology.clone() })
    }

    /// Starts consuming the work queue with manual acks and `prefetch` unacknowledged deliveries at
    /// most, which bounds the jobs a worker holds to its concurrency.
    pub async fn consume(&self, prefetch: u16, tag: &str) -> Result<JobConsumer, QueueError> {
        self.consume_from(&self.topology.work_queue.clone(), prefetch, tag).await
    }

    /// The same on another queue of the topology (the bundle queue).
    pub async fn consume_from(&self, queue: &str, prefetch: u16, tag: &str) -> Result<JobConsumer, QueueError> {
        let channel = self.conn.create_channel().await.map_err(amqp("channel.open"))?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await.map_err(amqp("basic.qos"))?;
        let inner = channel
            .basic_consume(
                short(queue),
                short(tag),
                BasicConsumeOptions { no_ack: false, ..BasicConsumeOptions::default() },
                FieldTable::default(),
            )
            .await
            .map_err(amqp("basic.consume"))?;
        Ok(JobConsumer { channel, inner, tag: tag.to_string() })
    }

    /// Whether this connection's user may publish with another user's `user_id` (RabbitMQ's
    /// `impersonator` tag), which the worker needs to re-publish a station's job for a retry or a
    /// dead letter without losing who posted it. Tried with a message nobody receives (an
    /// unbound routing key): a user without the tag gets its channel closed.
    pub async fn can_impersonate(&self) -> Result<bool, QueueError> {
        let ch = self.conn.create_channel().await.map_err(amqp("channel.open"))?;
        ch.confirm_select(ConfirmSelectOptions::default()).await.map_err(amqp("confirm.select"))?;
        let props = BasicProperties::default().with_user_id(short("recvault-impersonation-check"));
        let published = ch
            .basic_publish(
                short(&self.topology.jobs_exchange),
                short("recvault.impersonation-check"),
                BasicPublishOptions::default(),
                b"",
                props,
            )
            .await;
        let confirmed = match published {
            Ok(confirm) => confirm.await.is_ok_and(|c| c.is_ack()),
            Err(_) => false,
        };
        let _ = ch.close(200, short("checked")).await;
        Ok(confirmed)
    }

    /// Messages ready in a queue and its consumers (passive declare).
    pub async fn depth(&self, queue: &str) -> Result<(u32, u32), QueueError> {
        let ch = self.conn.create_channel().await.map_err(amqp("channel.open"))?;
        let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let q = ch
            .queue_declare(short(queue), passive, FieldTable::default())
            .await
            .map_err(amqp("queue.declare passive"))?;
        let _ = ch.close(200, short("depth")).await;
        Ok((q.message_count(), q.consumer_count()))
    }

    pub async fn close(&self) {
        let _ = self.conn.close(200, short("bye")).await;
    }
}

/// Publishes with confirms. Cheap to clone; shares one channel.
#[derive(Debug, Clone)]
pub struct Publisher {
    channel: Channel,
    topology: Topology,
}

impl Publisher {
    /// What a docking station does: a persistent job, identified by its job id, published as
    /// `station` (the AMQP `user_id`, which the broker checks against this connection's user and
    /// the worker against the job's `station_id`), confirmed by the broker before this returns.
    pub async fn publish_job(&self, job_id: &str, body: &[u8], station: Option<&str>) -> Result<(), QueueError> {
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(short("application/json"))
            .with_message_id(short(job_id));
        if let Some(user) = station {
            props = props.with_user_id(short(user));
        }
        self.confirmed(&self.topology.jobs_exchange, UPLOAD_ROUTING_KEY, body, props).await
    }

    /// A bundle job (R19.1(2)), identified by the bundle id, confirmed by the broker.
    pub async fn publish_bundle_job(&self, bundle_id: &str, body: &[u8]) -> Result<(), QueueError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(short("application/json"))
            .with_message_id(short(bundle_id));
        self.confirmed(&self.topology.jobs_exchange, BUNDLE_ROUTING_KEY, body, props).await
    }

    /// An event for case systems (`bundle.ready`, `bundle.failed`), persistent and confirmed. Not
    /// mandatory: an event nobody has bound a queue to yet is not an error.
    pub async fn publish_event(&self, routing_key: &str, message_id: &str, body: &[u8]) -> Result<(), QueueError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(short("application/json"))
            .with_message_id(short(message_id))
            .with_type(short(routing_key));
        let confirm = self
            .channel
            .basic_publish(
                short(&self.topology.events_exchange),
                short(routing_key),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .map_err(amqp("basic.publish"))?
            .await
            .map_err(amqp("publisher confirm"))?;
        match confirm {
            Confirmation::Nack(_) => {
                Err(QueueError::Nacked(format!("{}/{routing_key}", self.topology.events_exchange)))
            }
            _ => Ok(()),
        }
    }

    /// Sends a job to the delayed-retry queue for its `retry`th retry (0-based), counting it in a
    /// header; the retry queue is the one of the job's lane (uploads or bundles). The caller
    /// acknowledges the original afterwards.
    pub async fn publish_retry(&self, d: &JobDelivery, retry: u32, reason: &str) -> Result<(), QueueError> {
        let q = self
            .topology
            .retry_queue_for(d.routing_key(), retry)
            .ok_or_else(|| QueueError::Unroutable("retry queue (none configured)".into()))?;
        let mut h = d.headers().clone();
        h.insert(short(headers::RETRIES), AMQPValue::LongUInt(retry + 1));
        h.insert(short(headers::LAST_ERROR), long_string(&escape_truncated(reason, 1000)));
        let props = d.properties().clone().with_headers(h).with_delivery_mode(2);
        self.confirmed("", &q.name, d.body(), props).await
    }

    /// Sends a job to the shortest delayed-retry queue without spending a retry: it waits for
    /// something other than a fault (room in a worker's spool). Counts the waits in a header.
    pub async fn publish_wait(&self, d: &JobDelivery, reason: &str) -> Result<(), QueueError> {
        let q = self
            .topology
            .retry_queue_for(d.routing_key(), 0)
            .ok_or_else(|| QueueError::Unroutable("retry queue (none configured)".into()))?;
        let mut h = d.headers().clone();
        h.insert(short(headers::WAITS), AMQPValue::LongUInt(d.waits() + 1));
        h.insert(short(headers::LAST_ERROR), long_string(&escape_truncated(reason, 1000)));
        let props = d.properties().clone().with_headers(h).with_delivery_mode(2);
        self.confirmed("", &q.name, d.body(), props).await
    }

    /// Sends a job to the dead-letter queue with the reason in headers.
    pub async fn publish_dead(&self, d: &JobDelivery, code: &str, detail: &str) -> Result<(), QueueError> {
        let mut h = d.headers().clone();
        h.insert(short(headers::REASON), long_string(&escape_truncated(code, 100)));
        h.insert(short(headers::DETAIL), long_string(&escape_truncated(detail, 1000)));
        // A replay sends it back where it came from (uploads or bundles).
        if !h.contains_key(headers::ROUTING_KEY) {
            h.insert(short(headers::ROUTING_KEY), long_string(d.routing_key()));
        }
        let props = d.properties().clone().with_headers(h).with_delivery_mode(2);
        self.confirmed(&self.topology.dead_exchange, "", d.body(), props).await
    }

    async fn confirmed(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), QueueError> {
        let confirm = self
            .channel
            .basic_publish(
                short(exchange),
                short(key),
                BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                body,
                props,
            )
            .await
            .map_err(amqp("basic.publish"))?
            .await
            .map_err(amqp("publisher confirm"))?;
        let target = format!("{exchange}/{key}");
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable(target)),
            Confirmation::Nack(_) => Err(QueueError::Nacked(target)),
            Confirmation::NotRequested => unreachable!("the publisher channel is in confirm mode"),
        }
    }
}

/// The stream of deliveries from the work queue.
#[derive(Debug)]
pub struct JobConsumer {
    channel: Channel,
    inner: lapin::Consumer,
    tag: String,
}

impl JobConsumer {
    /// The next delivery; `None` once the consumer was cancelled or the channel closed.
    pub async fn next(&mut self) -> Option<Result<JobDelivery, QueueError>> {
        let d = self.inner.next().await?;
        Some(d.map(JobDelivery::new).map_err(amqp("basic.deliver")))
    }

    /// Stops new deliveries; deliveries already received stay ours to settle.
    pub async fn cancel(&self) -> Result<(), QueueError> {
        self.channel.basic_cancel(short(&self.tag), BasicCancelOptions::default()).await.map_err(amqp("basic.cancel"))
    }
}
