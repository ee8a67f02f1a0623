//! Names and arguments of every exchange and queue, derived from one prefix so that several
//! deployments (or parallel test runs) can share a broker without seeing each other's jobs.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

/// The routing key of upload jobs, versioned with the job contract.
pub const UPLOAD_ROUTING_KEY: &str = "upload.v1";
/// The routing key of bundle jobs (R19.1(2) case files).
pub use recvault_core::cases::BUNDLE_ROUTING_KEY;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub jobs_exchange: String,
    pub work_queue: String,
    /// Bundle jobs: same guarantees as uploads (quorum, delivery limit, dead letters), own retries.
    pub bundle_queue: String,
    pub bundle_retry_queues: Vec<RetryQueue>,
    /// Events for case systems (`bundle.ready`, `bundle.failed`): a topic exchange they bind to.
    pub events_exchange: String,
    pub dead_exchange: String,
    pub dead_queue: String,
    /// Delayed-retry queues, shortest delay first.
    pub retry_queues: Vec<RetryQueue>,
    /// Deliveries after which the broker dead-letters a message by itself (`x-delivery-limit`):
    /// the guard against a job that kills every worker that takes it.
    pub delivery_limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryQueue {
    pub name: String,
    pub delay_ms: u64,
}

impl Topology {
    pub fn new(prefix: &str, retry_delays_ms: &[u64], delivery_limit: u32) -> Self {
        Self {
            jobs_exchange: format!("{prefix}.jobs"),
            work_queue: format!("{prefix}.jobs.work"),
            dead_exchange: format!("{prefix}.dead"),
            dead_queue: format!("{prefix}.jobs.dead"),
            retry_queues: retry_delays_ms
                .iter()
                .map(|&delay_ms| RetryQueue { name: format!("{prefix}.jobs.retry.{delay_ms}ms"), delay_ms })
                .collect(),
            bundle_queue: format!("{prefix}.bundles.work"),
            bundle_retry_queues: retry_delays_ms
                .iter()
                .map(|&delay_ms| RetryQueue { name: format!("{prefix}.bundles.retry.{delay_ms}ms"), delay_ms })
                .collect(),
            events_exchange: format!("{prefix}.events"),
            delivery_limit,
        }
    }

    /// The retry queues of the lane a routing key belongs to.
    pub fn retry_lane(&self, routing_key: &str) -> &[RetryQueue] {
        if routing_key == BUNDLE_ROUTING_KEY { &self.bundle_retry_queues } else { &self.retry_queues }
    }

    /// Every retry queue to declare, with the routing key its messages go back with.
    pub fn all_retry_queues(&self) -> Vec<(&RetryQueue, &'static str)> {
        let mut out: Vec<(&RetryQueue, &'static str)> = Vec::new();
        for (lane, key) in [(&self.retry_queues, UPLOAD_ROUTING_KEY), (&self.bundle_retry_queues, BUNDLE_ROUTING_KEY)] {
            for q in lane {
                if !out.iter().any(|(o, _)| o.name == q.name) {
                    out.push((q, key));
                }
            }
        }
        out
    }

    /// Every retry queue of every lane, once each (a schedule may repeat a delay): what is
    /// counted as waiting for a retry.
    pub fn distinct_retry_queues(&self) -> Vec<&RetryQueue> {
        self.all_retry_queues().into_iter().map(|(q, _)| q).collect()
    }

    /// How many delayed retries a job gets before it is dead-lettered.
    pub fn max_retries(&self) -> u32 {
        u32::try_from(self.retry_queues.len()).unwrap_or(u32::MAX)
    }

    /// The retry queue for the `n`th retry (0-based): the delay grows with each retry and stays at
    /// the longest once the list runs out.
    pub fn retry_queue(&self, n: u32) -> Option<&RetryQueue> {
        self.retry_queue_for(UPLOAD_ROUTING_KEY, n)
    }

    /// The same, in the lane of `routing_key`.
    pub fn retry_queue_for(&self, routing_key: &str, n: u32) -> Option<&RetryQueue> {
        let lane = self.retry_lane(routing_key);
        let last = lane.len().checked_sub(1)?;
        lane.get((n as usize).min(last))
    }

    pub(crate) fn work_queue_args(&self) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert("x-queue-type".into(), long_string("quorum"));
        t.insert("x-delivery-limit".into(), AMQPValue::LongInt(i32::try_from(self.delivery_limit).unwrap_or(i32::MAX)));
        t.insert("x-dead-letter-exchange".into(), long_string(&self.dead_exchange));
        t
    }

    pub(crate) fn dead_queue_args(&self) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert("x-queue-type".into(), long_string("quorum"));
        t
    }

    pub(crate) fn retry_queue_args(&self, q: &RetryQueue, routing_key: &str) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert("x-queue-type".into(), long_string("classic"));
        t.insert("x-message-ttl".into(), AMQPValue::LongLongInt(i64::try_from(q.delay_ms).unwrap_or(i64::MAX)));
        t.insert("x-dead-letter-exchange".into(), long_string(&self.jobs_exchange));
        t.insert("x-dead-letter-routing-key".into(), long_string(routing_key));
        t
    }
}

pub(crate) fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

pub(crate) fn short(s: &str) -> ShortString {
    ShortString::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_prefix() {
        let t = Topology::new("rv", &[1000, 5000], 5);
        assert_eq!(t.jobs_exchange, "rv.jobs");
        assert_eq!(t.work_queue, "rv.jobs.work");
        assert_eq!(t.dead_queue, "rv.jobs.dead");
        assert_eq!(t.retry_queues[1].name, "rv.jobs.retry.5000ms");
        assert_eq!(t.max_retries(), 2);
        let repeated = Topology::new("rv", &[1000, 5000, 5000], 5);
        assert_eq!(repeated.max_retries(), 3);
        assert_eq!(repeated.distinct_retry_queues().len(), 4, "two delays, two lanes");
    }

    #[test]
    fn bundles_have_a_lane_of_their_own() {
        let t = Topology::new("rv", &[1000, 5000], 5);
        assert_eq!(t.bundle_queue, "rv.bundles.work");
        assert_eq!(t.retry_queue_for(BUNDLE_ROUTING_KEY, 0).unwrap().name, "rv.bundles.retry.1000ms");
        assert_eq!(t.retry_queue_for(UPLOAD_ROUTING_KEY, 9).unwrap().name, "rv.jobs.retry.5000ms");
        let all = t.all_retry_queues();
        assert_eq!(all.len(), 4);
        assert_eq!(t.distinct_retry_queues().len(), 4, "bundle retries are counted and drained too");
        assert!(all.iter().any(|(q, k)| q.name == "rv.bundles.retry.5000ms" && *k == BUNDLE_ROUTING_KEY));
        assert_eq!(t.events_exchange, "rv.events");
    }

    #[test]
    fn the_default_retries_ride_out_an_hour_long_outage() {
        let cfg = crate::QueueConfig::default();
        let t = cfg.topology();
        let total_ms: u64 = t.retry_queues.iter().map(|q| q.delay_ms).sum();
        assert!(total_ms >= 3_600_000, "{total_ms} ms");
        assert!(t.retry_queues.windows(2).all(|w| w[0].delay_ms <= w[1].delay_ms));
    }

    #[test]
    fn retry_delay_grows_then_stays_at_the_longest() {
        let t = Topology::new("rv", &[1000, 5000], 5);
        assert_eq!(t.retry_queue(0).unwrap().delay_ms, 1000);
        assert_eq!(t.retry_queue(1).unwrap().delay_ms, 5000);
        assert_eq!(t.retry_queue(7).unwrap().delay_ms, 5000);
        assert!(Topology::new("rv", &[], 5).retry_queue(0).is_none());
    }

    #[test]
    fn the_work_queue_is_quorum_with_a_delivery_limit_and_dead_letters() {
        let t = Topology::new("rv", &[1000], 7);
        let a = t.work_queue_args();
        assert_eq!(a.inner().get("x-delivery-limit"), Some(&AMQPValue::LongInt(7)));
        assert_eq!(a.inner().get("x-queue-type"), Some(&long_string("quorum")));
        assert_eq!(a.inner().get("x-dead-letter-exchange"), Some(&long_string("rv.dead")));
        let r = t.retry_queue_args(&t.retry_queues[0], UPLOAD_ROUTING_KEY);
        assert_eq!(r.inner().get("x-dead-letter-exchange"), Some(&long_string("rv.jobs")));
        assert_eq!(r.inner().get("x-message-ttl"), Some(&AMQPValue::LongLongInt(1000)));
    }
}
