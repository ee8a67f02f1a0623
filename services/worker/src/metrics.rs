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
    /// The job reused a completed job's id for another body; dead-lettered, bytes kept (R2.1).
    IdConflict,
    /// The file is larger than the whole spool; dead-lettered, bytes kept.
    TooLargeForSpool,
    /// Delivered as often as the queue allows without being settled (it may crash workers);
    /// dead-lettered with that reason, bytes kept.
    DeliveryLimit,
    /// Waits for room in the spool (a delayed retry that spends no retry).
    WaitingForSpool,
}

impl Outcome {
    pub const ALL: [Outcome; 13] = [
        Self::Archived,
        Self::Flagged,
        Self::DuplicateContent,
        Self::DuplicateDelivery,
        Self::Quarantined,
        Self::Invalid,
        Self::Retried,
        Self::DeadLettered,
        Self::Requeued,
        Self::IdConflict,
        Self::TooLargeForSpool,
        Self::DeliveryLimit,
        Self::WaitingForSpool,
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
            Self::IdConflict => "job_id_conflict",
            Self::TooLargeForSpool => "too_large_for_spool",
            Self::DeliveryLimit => "delivery_limit",
            Self::WaitingForSpool => "waiting_for_spool",
        }
    }
}

/// Queue roles, for `recvault_queue_messages{queue}`.
pub const QUEUES: [&str; 4] = ["work", "retry", "dead", "bundles"];

/// Pipeline stages, for `recvault_stage_duration_seconds{stage}`. The probe runs alongside the
/// download: `verify` is what is left of it once the download (`fetch`) has ended.
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
    /// How archive versions came to be (copied, uploaded, found, recorded).
    pub archive_writes: IntCounterVec,
    /// Versions at an archive key that did not hold the bytes the key names (R2.1).
    pub archive_mismatches: IntCounter,
    /// Live archive-drift findings (R21.1), polled from Postgres.
    pub archive_drift: IntGauge,
    /// When `recvault reconcile` last finished (Unix seconds; 0: never), polled from Postgres.
    pub reconcile_last_run: IntGauge,
    /// R17.1: days until the working-day calendar runs out.
    pub calendar_days_remaining: IntGauge,
    /// Bundle jobs by how they ended (R19.1(2)).
    pub bundles: IntCounterVec,
    /// R19.1(2): cases closed more than 30 days ago without a ready bundle.
    pub bundles_overdue: IntGauge,
    /// R2.1: recoveries of unfinalized recordings, by how a try ended.
    pub recoveries: IntCounterVec,
}

/// How a recovery try ended, for `recvault_recoveries_total{outcome}`.
pub const RECOVERY_OUTCOMES: [&str; 5] = ["recovered", "awaiting_reference", "retried", "failed", "superseded"];

/// How an archive version came to be, for `recvault_archive_writes_total{placement}`.
pub const PLACEMENTS: [&str; 4] = ["recorded", "found", "copied", "uploaded"];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let jobs =
            IntCounterVec::new(Opts::new("recvault_jobs_total", "upload jobs settled, by outcome"), &["outcome"])
                .expect("valid metric");
        let bytes = IntCounter::new("recvault_ingested_bytes_total", "bytes read from staging and hashed")
            .expect("valid metric");
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new(
                "recvault_stage_duration_seconds",
                "time spent per pipeline stage (verify: the part of the probe left once fetch ends)",
            )
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
                "messages waiting, by queue role (work, retry, dead, bundles), polled by the worker",
            ),
            &["queue"],
        )
        .expect("valid metric");
        let capability = IntGaugeVec::new(
            Opts::new("recvault_storage_capability", "1 if the object store showed the capability at start-up"),
            &["capability"],
        )
        .expect("valid metric");
        let archive_writes = IntCounterVec::new(
            Opts::new(
                "recvault_archive_writes_total",
                "archive and quarantine writes, by how the version holding the verified bytes came to be",
            ),
            &["placement"],
        )
        .expect("valid metric");
        let archive_mismatches = IntCounter::new(
            "recvault_archive_mismatches_total",
            "versions at an archive key found not to hold the bytes the key names (left unlocked and unrecorded)",
        )
        .expect("valid metric");
        let archive_drift = IntGauge::new(
            "recvault_archive_drift_findings",
            "open findings of drift between the archive and Postgres (recvault reconcile, R21.1)",
        )
        .expect("valid metric");
        let reconcile_last_run = IntGauge::new(
            "recvault_reconcile_last_run_timestamp_seconds",
            "when recvault reconcile last finished, Unix time (0: never)",
        )
        .expect("valid metric");
        let calendar_days_remaining = IntGauge::new(
            "recvault_calendar_days_remaining",
            "days until the working-day calendar used for R17.1 deadlines runs out (negative: it has)",
        )
        .expect("valid metric");
        let bundles = IntCounterVec::new(
            Opts::new("recvault_bundles_total", "case-file bundle jobs (R19.1(2)), by how they ended"),
            &["outcome"],
        )
        .expect("valid metric");
        let bundles_overdue = IntGauge::new(
            "recvault_bundles_overdue",
            "cases closed more than 30 days ago whose case-file bundle is not ready (R19.1(2))",
        )
        .expect("valid metric");
        for o in recvault_bundles::OUTCOMES {
            bundles.with_label_values(&[o]);
        }
        let recoveries = IntCounterVec::new(
            Opts::new(
                "recvault_recoveries_total",
                "recoveries of unfinalized recordings from a reference of the same device (R2.1), by how a try ended",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        for o in RECOVERY_OUTCOMES {
            recoveries.with_label_values(&[o]);
        }
        let build_info = IntGaugeVec::new(
            Opts::new("recvault_build_info", "the running build; the value is always 1"),
            &["version"],
        )
        .expect("valid metric");
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("process metrics register once");
        for c in [
            Box::new(jobs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(calendar_days_remaining.clone()),
            Box::new(bundles.clone()),
            Box::new(bundles_overdue.clone()),
            Box::new(recoveries.clone()),
            Box::new(build_info),
            Box::new(archive_drift.clone()),
            Box::new(reconcile_last_run.clone()),
            Box::new(archive_writes.clone()),
            Box::new(archive_mismatches.clone()),
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
        for p in PLACEMENTS {
            archive_writes.with_label_values(&[p]);
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
            archive_writes,
            archive_mismatches,
            archive_drift,
            reconcile_last_run,
            calendar_days_remaining,
            bundles,
            bundles_overdue,
            recoveries,
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
            "recvault_build_info{version=",
            "recvault_calendar_days_remaining 0",
            "recvault_archive_drift_findings 0",
            "recvault_jobs_total{outcome=\"job_id_conflict\"} 0",
            "process_resident_memory_bytes ",
            "process_open_fds ",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
