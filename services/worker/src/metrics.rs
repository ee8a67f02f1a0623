//! Every Prometheus metric of the worker, declared in one place. Label values come from fixed
//! sets (outcome, stage, finding kind, capability), never from IDs.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// How a job ended, for `recvault_jobs_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Archived, no critical finding.
    Archived,
    /// Archived with a critical finding (truncated, unfinalized).
    Flagged,
    /// The same bytes were already archived by another job.
    DuplicateContent,
    /// The job had already completed (redelivery).
    DuplicateDelivery,
    /// Bytes kept in quarantine, job dead-lettered with the reason.
    Quarantined,
    /// The job itself was malformed or invalid; dead-lettered.
    Invalid,
    /// A transient fault; sent to the delayed-retry queue.
    Retried,
    /// Transient faults outlasted the retries, or the staged object is gone; dead-lettered.
    DeadLettered,
    /// Handed back to the queue at shutdown.
    Requeued,
}

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Self::Archived,
        Self::Flagged,
        Self::DuplicateContent,
        Self::DuplicateDelivery,
        Self::Quarantined,
        Self::Invalid,
        Self::Retried,
        Self::DeadLettered,
        Self::Requeued,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Archived => "archived",
            Self::Flagged => "flagged",
            Self::DuplicateContent => "duplicate_content",
            Self::DuplicateDelivery => "duplicate_delivery",
            Self::Quarantined => "quarantined",
            Self::Invalid => "invalid",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
            Self::Requeued => "requeued",
        }
    }
}

/// Queue roles, for `recvault_queue_messages{queue}`.
pub const QUEUES: [&str; 3] = ["work", "retry", "dead"];

/// Pipeline stages, for `recvault_stage_duration_seconds{stage}`.
pub const STAGES: [&str; 5] = ["fetch", "verify", "archive", "record", "total"];

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub jobs: IntCounterVec,
    pub bytes: IntCounter,
    pub stage_seconds: HistogramVec,
    pub in_flight: IntGauge,
    pub upload_delay_seconds: Histogram,
    pub findings: IntCounterVec,
    pub findings_withdrawn: IntCounterVec,
    pub capability: IntGaugeVec,
    pub queue_messages: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let jobs =
            IntCounterVec::new(Opts::new("recvault_jobs_total", "upload jobs settled, by outcome"), &["outcome"])
                .expect("valid metric");
        let bytes = IntCounter::new("recvault_ingested_bytes_total", "bytes read from staging and hashed")
            .expect("valid metric");
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new("recvault_stage_duration_seconds", "time spent per pipeline stage")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 180.0, 600.0]),
            &["stage"],
        )
        .expect("valid metric");
        let in_flight = IntGauge::new("recvault_jobs_in_flight", "jobs being processed now").expect("valid metric");
        let upload_delay_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "recvault_upload_delay_seconds",
                "from the end of a recording (corrected clock) to its archiving; R17.1 allows 24 h",
            )
            .buckets(vec![
                60.0,
                600.0,
                3600.0,
                6.0 * 3600.0,
                12.0 * 3600.0,
                24.0 * 3600.0,
                48.0 * 3600.0,
                96.0 * 3600.0,
                7.0 * 86400.0,
            ]),
        )
        .expect("valid metric");
        let findings = IntCounterVec::new(Opts::new("recvault_findings_total", "findings raised, by kind"), &["kind"])
            .expect("valid metric");
        let findings_withdrawn = IntCounterVec::new(
            Opts::new(
                "recvault_findings_withdrawn_total",
                "activity findings that stopped holding when a late segment arrived, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let queue_messages = IntGaugeVec::new(
            Opts::new(
                "recvault_queue_messages",
                "messages waiting, by queue role (work, retry, dead), polled by the worker",
            ),
            &["queue"],
        )
        .expect("valid metric");
        let capability = IntGaugeVec::new(
            Opts::new("recvault_storage_capability", "1 if the object store showed the capability at start-up"),
            &["capability"],
        )
        .expect("valid metric");
        for c in [
            Box::new(jobs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(bytes.clone()),
            Box::new(stage_seconds.clone()),
            Box::new(in_flight.clone()),
            Box::new(upload_delay_seconds.clone()),
            Box::new(findings.clone()),
            Box::new(findings_withdrawn.clone()),
            Box::new(capability.clone()),
            Box::new(queue_messages.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        // Pre-create every label value so dashboards show zeros instead of gaps.
        for o in Outcome::ALL {
            jobs.with_label_values(&[o.label()]);
        }
        for s in STAGES {
            stage_seconds.with_label_values(&[s]);
        }
        for k in recvault_core::FindingKind::ALL {
            findings.with_label_values(&[k.code()]);
            findings_withdrawn.with_label_values(&[k.code()]);
        }
        for q in QUEUES {
            queue_messages.with_label_values(&[q]);
        }
        Self {
            registry,
            jobs,
            bytes,
            stage_seconds,
            in_flight,
            upload_delay_seconds,
            findings,
            findings_withdrawn,
            capability,
            queue_messages,
        }
    }

    pub fn outcome(&self, o: Outcome) {
        self.jobs.with_label_values(&[o.label()]).inc();
    }

    pub fn stage(&self, stage: &'static str) -> prometheus::HistogramTimer {
        self.stage_seconds.with_label_values(&[stage]).start_timer()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding cannot fail");
        String::from_utf8(buf).expect("exposition format is utf-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exposed_with_unit_suffixes() {
        let m = Metrics::new();
        m.outcome(Outcome::Archived);
        let text = m.render();
        for name in [
            "recvault_jobs_total{outcome=\"archived\"} 1",
            "recvault_ingested_bytes_total 0",
            "recvault_stage_duration_seconds_bucket{stage=\"fetch\"",
            "recvault_jobs_in_flight 0",
            "recvault_upload_delay_seconds_bucket",
            "recvault_findings_total{kind=\"truncated\"} 0",
            "recvault_findings_total{kind=\"interruption_unexplained\"} 0",
            "recvault_findings_withdrawn_total{kind=\"notification_missing\"} 0",
            "recvault_queue_messages{queue=\"dead\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
