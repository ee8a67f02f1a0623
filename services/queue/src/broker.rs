//! Connection, idempotent declaration, the confirmed publisher and the manual-ack consumer.

use crate::delivery::{JobDelivery, headers};
use crate::topology::{Topology, UPLOAD_ROUTING_KEY, long_string, short};
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
        ch.queue_declare(short(&t.work_queue), q, t.work_queue_args()).await.map_err(amqp("queue.declare work"))?;
        ch.queue_bind(
            short(&t.work_queue),
            short(&t.jobs_exchange),
            short(UPLOAD_ROUTING_KEY),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp("queue.bind work"))?;
        ch.queue_declare(short(&t.dead_queue), q, t.dead_queue_args()).await.map_err(amqp("queue.declare dead"))?;
        ch.queue_bind(
            short(&t.dead_queue),
            short(&t.dead_exchange),
            short(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(amqp("queue.bind dead"))?;
        for r in t.distinct_retry_queues() {
            ch.queue_declare(short(&r.name), q, t.retry_queue_args(r)).await.map_err(amqp("queue.declare retry"))?;
        }
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
        let channel = self.conn.create_channel().await.map_err(amqp("channel.open"))?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await.map_err(amqp("basic.qos"))?;
        let inner = channel
            .basic_consume(
                short(&self.topology.work_queue),
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

    /// Sends a job to the delayed-retry queue for its `retry`th retry (0-based), counting it in a
    /// header. The caller acknowledges the original afterwards.
    pub async fn publish_retry(&self, d: &JobDelivery, retry: u32, reason: &str) -> Result<(), QueueError> {
        let q = self
            .topology
            .retry_queue(retry)
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
            .retry_queue(0)
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
