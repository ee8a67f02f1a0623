//! One bundle job, from message to settlement, with the same guarantees as uploads: acknowledged
//! only after the bundle is recorded ready (or failed for good), delayed retries for faults of the
//! infrastructure (a missing source object included: it may be the store), dead letters with a
//! reason, and an event for case systems either way (`bundle.ready`, `bundle.failed`).

use crate::build::{BuildError, Builder, Built};
use chrono::Utc;
use prometheus::IntCounterVec;
use recvault_core::cases::{BundleEventV1, BundleJobV1, BundleState};
use recvault_db::cases::BundleRow;
use recvault_queue::{JobDelivery, Publisher};
use tracing::{Instrument, error, info, warn};
use uuid::Uuid;

/// How a bundle job ended, for `recvault_bundles_total{outcome}`.
/// `fixity_mismatch` is counted besides `failed` and `dead_lettered`: an archived recording that no
/// longer hashes to its recorded SHA-256 (R2.1) is an alert of its own.
pub const OUTCOMES: [&str; 7] =
    ["ready", "already_ready", "failed", "retried", "dead_lettered", "invalid", "fixity_mismatch"];

/// Everything a bundle job needs.
#[derive(Debug, Clone)]
pub struct BundleContext {
    pub builder: Builder,
    pub publisher: Publisher,
    pub max_retries: u32,
    pub worker_id: String,
    /// `recvault_bundles_total{outcome}`.
    pub outcomes: IntCounterVec,
}

fn event(b: &BundleRow, state: BundleState, reason: Option<String>) -> BundleEventV1 {
    BundleEventV1 {
        schema_version: 1,
        event: format!("bundle.{}", state.code()),
        bundle_id: b.id.to_string(),
        case_id: b.case_id.clone(),
        unit: b.unit.clone(),
        state,
        deadline: b.deadline,
        recordings: u32::try_from(b.recording_ids.len() + b.quarantine_ids.len()).unwrap_or(u32::MAX),
        size_bytes: b.size_bytes.and_then(|s| u64::try_from(s).ok()),
        sha256: b.sha256.clone(),
        reason,
        at: Utc::now(),
    }
}

async fn publish(ctx: &BundleContext, e: &BundleEventV1) {
    let body = serde_json::to_vec(e).unwrap_or_default();
    if let Err(err) = ctx.publisher.publish_event(&e.event, &e.bundle_id, &body).await {
        // The bundle's state is in Postgres (GET /v1/bundles/{id}); the event is a courtesy that a
        // redelivery of the job sends again.
        warn!(error = %err, event = e.event, "could not publish the event");
    }
}

/// Builds the bundle a delivery names and settles the delivery.
pub async fn handle(ctx: &BundleContext, d: &JobDelivery) {
    let job: Result<BundleJobV1, _> = serde_json::from_slice(d.body());
    let id = match job.as_ref().ok().filter(|j| j.schema_version == 1).and_then(|j| Uuid::parse_str(&j.bundle_id).ok())
    {
        Some(id) => id,
        None => {
            warn!("invalid bundle job, dead-lettering");
            settle_dead(ctx, d, "invalid_job", "not a bundle job v1").await;
            ctx.outcomes.with_label_values(&["invalid"]).inc();
            return;
        }
    };
    let actor = format!("bundle builder {}", ctx.worker_id);
    let span = tracing::info_span!("bundle", bundle_id = %id, delivery = d.retries() + d.redeliveries() + 1);
    settle(ctx, d, id, &actor).instrument(span).await;
}

async fn settle(ctx: &BundleContext, d: &JobDelivery, id: Uuid, actor: &str) {
    let actor = actor.to_string();
    let outcome = ctx.builder.build(id, &actor).await;
    match outcome {
        Ok(Built::New { bundle, summary }) => {
            info!(
                case_id = bundle.case_id,
                bytes = summary.tar_bytes_written,
                files = summary.payload_files,
                sha256 = summary.tar_sha256_hex(),
                "bundle ready"
            );
            publish(ctx, &event(&bundle, BundleState::Ready, None)).await;
            ack(d).await;
            ctx.outcomes.with_label_values(&["ready"]).inc();
        }
        Ok(Built::Already(bundle)) => {
            info!("bundle was ready before; event sent again");
            publish(ctx, &event(&bundle, BundleState::Ready, None)).await;
            ack(d).await;
            ctx.outcomes.with_label_values(&["already_ready"]).inc();
        }
        Err(BuildError::NotFound(_)) => {
            settle_dead(ctx, d, "unknown_bundle", &format!("no bundle {id}")).await;
            ctx.outcomes.with_label_values(&["invalid"]).inc();
        }
        Err(BuildError::Fixity { recording_id, expected, actual }) => {
            // R2.1: not a fault that passes: the bundle fails, the recording gets a finding.
            let reason =
                format!("recording {recording_id} does not hash to its recorded sha-256 {expected} (read {actual})");
            error!(recording_id, expected, actual, "fixity mismatch: bundle failed");
            let db = &ctx.builder.db;
            if let Err(e) = db.record_fixity_mismatch(recording_id, id, &expected, &actual).await {
                error!(error = %e, "could not record the fixity finding");
            }
            ctx.outcomes.with_label_values(&["fixity_mismatch"]).inc();
            fail(ctx, d, id, &reason, &actor).await;
            settle_dead(ctx, d, "fixity_mismatch", &reason).await;
        }
        Err(e @ (BuildError::SourceMissing { .. } | BuildError::Transient { .. })) => {
            let reason = e.to_string();
            let _ = ctx.builder.db.set_bundle_state(id, BundleState::Failed, Some(&reason), &actor).await;
            let retries = d.retries();
            if retries < ctx.max_retries {
                warn!(
                    error = reason,
                    retry = retries + 1,
                    of = ctx.max_retries,
                    "bundle failed for now, retrying later"
                );
                match ctx.publisher.publish_retry(d, retries, &reason).await {
                    Ok(()) => {
                        ack(d).await;
                        ctx.outcomes.with_label_values(&["retried"]).inc();
                    }
                    Err(err) => {
                        error!(error = %err, "could not schedule the retry; handing the job back");
                        let _ = d.requeue().await;
                    }
                }
            } else {
                error!(error = reason, "bundle failed after every retry");
                fail(ctx, d, id, &reason, &actor).await;
                settle_dead(ctx, d, "retries_exhausted", &reason).await;
            }
        }
    }
}

/// Records the bundle failed and tells the case systems.
async fn fail(ctx: &BundleContext, _d: &JobDelivery, id: Uuid, reason: &str, actor: &str) {
    let db = &ctx.builder.db;
    if let Err(e) = db.set_bundle_state(id, BundleState::Failed, Some(reason), actor).await {
        error!(error = %e, "could not record the failure");
    }
    if let Ok(Some(b)) = db.bundle(id).await {
        publish(ctx, &event(&b, BundleState::Failed, Some(reason.to_string()))).await;
    }
    ctx.outcomes.with_label_values(&["failed"]).inc();
}

async fn settle_dead(ctx: &BundleContext, d: &JobDelivery, code: &str, detail: &str) {
    match ctx.publisher.publish_dead(d, code, detail).await {
        Ok(()) => {
            ack(d).await;
            ctx.outcomes.with_label_values(&["dead_lettered"]).inc();
        }
        Err(e) => {
            error!(error = %e, "could not dead-letter; handing the job back");
            let _ = d.requeue().await;
        }
    }
}

async fn ack(d: &JobDelivery) {
    if let Err(e) = d.ack().await {
        warn!(error = %e, "ack failed (a redelivery finds the bundle as it is)");
    }
}
