//! The dead-letter queue, for a person: read what waits there and why, and replay a job once
//! its cause is fixed (`recvault dead-letters list | replay`).
//!
//! Reading takes every message unacknowledged on one channel and hands each back (nack with
//! requeue) when done, so a listing removes nothing. A replay publishes the original body with its
//! original properties (the station's `user_id` stays: the replaying user needs the
//! `impersonator` tag, like the worker) to the jobs exchange with the retry count reset and who
//! replayed it and why in headers, waits for the broker's confirm, and only then acknowledges the
//! dead letter: a crash in between leaves a duplicate (harmless, processing is idempotent), never
//! a loss.

use crate::delivery::headers;
use crate::topology::{BUNDLE_ROUTING_KEY, UPLOAD_ROUTING_KEY, long_string, short};
use crate::{Broker, QueueError, amqp};
use lapin::options::{BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation};
use recvault_core::text::escape_truncated;
use serde::Serialize;

/// Headers a replay drops: the retry count, the last fault, the dead-letter reason and the
/// broker's own death and delivery records. What is left is what the station sent.
const RESET_ON_REPLAY: [&str; 9] = [
    headers::RETRIES,
    headers::LAST_ERROR,
    headers::REASON,
    headers::DETAIL,
    headers::WAITS,
    headers::DELIVERY_COUNT,
    "x-death",
    "x-first-death-reason",
    "x-last-death-reason",
];

/// One message in the dead-letter queue.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub message_id: Option<String>,
    /// The broker user that published it (the station).
    pub user_id: Option<String>,
    /// Why it is here: `x-recvault-reason`, or the broker's own reason (`broker:delivery_limit`).
    pub reason: String,
    pub detail: Option<String>,
    /// Times it was replayed before.
    pub replays: u32,
    /// The lane it goes back to (`upload.v1`, `bundle.v1`).
    pub routing_key: String,
    #[serde(skip)]
    pub body: Vec<u8>,
    #[serde(skip)]
    properties: BasicProperties,
}

fn text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn uint(v: Option<&AMQPValue>) -> u32 {
    match v {
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

/// The reason a message was dead-lettered, from its headers.
fn reason_of(h: &FieldTable) -> String {
    if let Some(r) = h.inner().get(headers::REASON).and_then(text) {
        return r;
    }
    // Dead-lettered by the broker itself: the newest x-death entry says why.
    let broker = match h.inner().get("x-death") {
        Some(AMQPValue::FieldArray(deaths)) => deaths.as_slice().first().and_then(|d| match d {
            AMQPValue::FieldTable(t) => t.inner().get("reason").and_then(text),
            _ => None,
        }),
        _ => None,
    };
    format!("broker:{}", broker.unwrap_or_else(|| "unknown".into()))
}

impl DeadLetter {
    fn of(properties: BasicProperties, body: Vec<u8>) -> Self {
        let h = properties.headers().clone().unwrap_or_default();
        Self {
            message_id: properties.message_id().as_ref().map(|s| escape_truncated(s.as_str(), 200)),
            user_id: properties.user_id().as_ref().map(|s| escape_truncated(s.as_str(), 200)),
            reason: escape_truncated(&reason_of(&h), 200),
            detail: h.inner().get(headers::DETAIL).and_then(text).map(|d| escape_truncated(&d, 1000)),
            replays: uint(h.inner().get(headers::REPLAYS)),
            routing_key: h
                .inner()
                .get(headers::ROUTING_KEY)
                .and_then(text)
                .filter(|k| k == UPLOAD_ROUTING_KEY || k == BUNDLE_ROUTING_KEY)
                .unwrap_or_else(|| UPLOAD_ROUTING_KEY.to_string()),
            body,
            properties,
        }
    }
}

impl Broker {
    /// Every message in the dead-letter queue, left in place.
    pub async fn peek_dead(&self) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.scan_dead(|_| false, "", "").await?.0)
    }

    /// Replays the dead letters `pick` chooses (see the module documentation); returns them. The
    /// others stay in the queue.
    pub async fn replay_dead(
        &self,
        pick: impl Fn(&DeadLetter) -> bool,
        by: &str,
        why: &str,
    ) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.scan_dead(pick, by, why).await?.1)
    }

    /// Reads every dead letter, replays the picked ones, hands the rest back: (all, replayed).
    async fn scan_dead(
        &self,
        pick: impl Fn(&DeadLetter) -> bool,
        by: &str,
        why: &str,
    ) -> Result<(Vec<DeadLetter>, Vec<DeadLetter>), QueueError> {
        let t = self.topology();
        let ch = self.conn.create_channel().await.map_err(amqp("channel.open"))?;
        let publisher = self.conn.create_channel().await.map_err(amqp("channel.open"))?;
        publisher.confirm_select(ConfirmSelectOptions::default()).await.map_err(amqp("confirm.select"))?;
        let mut held = Vec::new();
        while let Some(m) =
            ch.basic_get(short(&t.dead_queue), BasicGetOptions { no_ack: false }).await.map_err(amqp("basic.get"))?
        {
            held.push(m.delivery);
        }
        let mut all = Vec::new();
        let mut replayed = Vec::new();
        let mut failure = None;
        for d in held {
            let letter = DeadLetter::of(d.properties.clone(), d.data.clone());
            all.push(letter.clone());
            let settle = if failure.is_none() && pick(&letter) {
                match self.republish(&publisher, &letter, by, why).await {
                    Ok(()) => {
                        replayed.push(letter);
                        d.acker.ack(BasicAckOptions::default()).await.map(drop)
                    }
                    Err(e) => {
                        failure = Some(e);
                        d.acker.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await.map(drop)
                    }
                }
            } else {
                d.acker.nack(BasicNackOptions { requeue: true, ..BasicNackOptions::default() }).await.map(drop)
            };
            settle.map_err(amqp("basic.ack/nack"))?;
        }
        let _ = ch.close(200, short("done")).await;
        let _ = publisher.close(200, short("done")).await;
        match failure {
            Some(e) => Err(e),
            None => Ok((all, replayed)),
        }
    }

    async fn republish(
        &self,
        publisher: &lapin::Channel,
        letter: &DeadLetter,
        by: &str,
        why: &str,
    ) -> Result<(), QueueError> {
        let old = letter.properties.headers().clone().unwrap_or_default();
        let mut h = FieldTable::default();
        for (k, v) in old.inner() {
            if !RESET_ON_REPLAY.contains(&k.as_str()) {
                h.insert(k.clone(), v.clone());
            }
        }
        h.insert(short(headers::REPLAYS), AMQPValue::LongUInt(letter.replays + 1));
        h.insert(short(headers::REPLAYED_BY), long_string(&escape_truncated(by, 200)));
        h.insert(short(headers::REPLAY_REASON), long_string(&escape_truncated(why, 1000)));
        let props = letter.properties.clone().with_headers(h).with_delivery_mode(2);
        let target = format!("{}/{}", self.topology().jobs_exchange, letter.routing_key);
        let confirm = publisher
            .basic_publish(
                short(&self.topology().jobs_exchange),
                short(&letter.routing_key),
                BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() },
                &letter.body,
                props,
            )
            .await
            .map_err(amqp("basic.publish"))?
            .await
            .map_err(amqp("publisher confirm"))?;
        match confirm {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable(target)),
            Confirmation::Nack(_) => Err(QueueError::Nacked(target)),
            Confirmation::NotRequested => unreachable!("the publisher channel is in confirm mode"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, LongString};

    #[test]
    fn the_reason_is_ours_or_the_brokers() {
        let mut h = FieldTable::default();
        h.insert(short(headers::REASON), long_string("too_large_for_spool"));
        assert_eq!(reason_of(&h), "too_large_for_spool");
        let mut death = FieldTable::default();
        death.insert(short("reason"), AMQPValue::LongString(LongString::from("delivery_limit")));
        let mut h = FieldTable::default();
        h.insert(short("x-death"), AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(death)])));
        assert_eq!(reason_of(&h), "broker:delivery_limit");
        assert_eq!(reason_of(&FieldTable::default()), "broker:unknown");
    }
}
