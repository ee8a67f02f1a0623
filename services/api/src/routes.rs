//! The handlers. Each one checks the principal against `recvault_core::access` before it reads or
//! changes anything, and answers errors as problem documents (`problem`).

use crate::dto::*;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Auth};
use crate::problem::{ApiError, Problem};
use crate::{App, Metrics};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use recvault_core::access::Action;
use recvault_core::cases::{BundleJobV1, BundleState, Closure};
use recvault_db::cases::Closed;
use recvault_db::queries::TimelineFilter;
use recvault_db::search::{Cursor, RecordingQuery};
use recvault_evidence::{EvidenceError, Raised, RetentionRaise, raise_retention};
use std::time::Duration;
use uuid::Uuid;

/// Search recordings (R18.1): by party, date, location, event type, device, officer, unit, case;
/// newest first; continue with `cursor`.
#[utoipa::path(get, path = "/v1/recordings", params(SearchParams), tag = "recordings",
    responses(
        (status = 200, description = "One page of recordings", body = RecordingPage),
        (status = 400, description = "Bad query or page size", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role or unit not allowed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn search_recordings(
    State(app): State<App>,
    Auth(p): Auth,
    ApiQuery(q): ApiQuery<SearchParams>,
) -> Result<Json<RecordingPage>, ApiError> {
    let unit = p.search_scope(q.unit.as_deref())?;
    let limit = q.limit.unwrap_or(app.settings.api.default_page);
    if limit == 0 || limit > app.settings.api.max_page {
        return Err(ApiError::PageTooLarge(format!("limit must be 1 to {}", app.settings.api.max_page)));
    }
    let after = match &q.cursor {
        Some(c) => Some(Cursor::decode(c).ok_or_else(|| ApiError::BadQuery("cursor is not one this API gave".into()))?),
        None => None,
    };
    if let (Some(f), Some(t)) = (q.from, q.to)
        && t <= f
    {
        return Err(ApiError::BadQuery("`to` must be after `from`".into()));
    }
    let query = RecordingQuery {
        unit,
        party: q.party,
        location: q.location,
        event_type: q.event_type,
        device_id: q.device,
        officer_id: q.officer,
        case_id: q.case_id,
        from: q.from,
        to: q.to,
        job_id: None,
        after,
        limit,
    };
    let page = app.db.search_recordings(&query).await?;
    Ok(Json(RecordingPage {
        items: page.items.iter().map(RecordingView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// One recording: metadata, findings and the activity timeline it belongs to.
#[utoipa::path(get, path = "/v1/recordings/{id}", tag = "recordings",
    params(("id" = i64, Path, description = "Recording id")),
    responses(
        (status = 200, description = "The recording", body = RecordingDetail),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role or unit not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such recording", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_recording(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<RecordingDetail>, ApiError> {
    p.may(Action::ReadRecording)?;
    let rec = app.db.recording(id).await?.ok_or_else(|| ApiError::NotFound(format!("no recording {id}")))?;
    p.may_on(Action::ReadRecording, &rec.unit)?;
    let timeline = app
        .db
        .timeline(&TimelineFilter { recording: Some(id), limit: 10, ..TimelineFilter::default() })
        .await?
        .into_iter()
        .map(|a| serde_json::to_value(a).unwrap_or_default())
        .collect();
    let recovery = app.db.recovery(id).await?.as_ref().map(RecoveryView::from);
    Ok(Json(RecordingDetail { recording: RecordingView::from(&rec), timeline, recovery }))
}

/// Raise a recording's retention class (R19.1); a lower class is refused.
#[utoipa::path(post, path = "/v1/recordings/{id}/retention", tag = "recordings",
    params(("id" = i64, Path, description = "Recording id")),
    request_body = RetentionRequest,
    responses(
        (status = 200, description = "Raised (or already at that class)", body = RetentionResponse),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role or unit not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such recording", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The class would be lowered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid reason", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn raise_recording_retention(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RetentionRequest>,
) -> Result<Json<RetentionResponse>, ApiError> {
    p.may(Action::RaiseRetention)?;
    recvault_core::job::check_free_text("reason", &body.reason).map_err(|e| ApiError::Invalid(e.to_string()))?;
    let rec = app.db.recording(id).await?.ok_or_else(|| ApiError::NotFound(format!("no recording {id}")))?;
    p.may_on(Action::RaiseRetention, &rec.unit)?;
    let actor = format!("api:{}@{}", p.subject, p.unit);
    let basis = format!("R19.1: raised by {actor}: {}", body.reason);
    let raise = RetentionRaise { recording_id: id, class: body.class.into(), basis: &basis, actor: &actor };
    let outcome = raise_retention(&app.store, &app.db, &raise).await.map_err(|e| match e {
        EvidenceError::NotFound(id) => ApiError::NotFound(format!("no recording {id}")),
        EvidenceError::Lowering(l) => ApiError::RetentionLowering(l.to_string()),
        EvidenceError::NoVersion(_) => ApiError::Internal(e.to_string()),
        EvidenceError::Store(s) => ApiError::from(s),
        EvidenceError::Db(d) => ApiError::from(d),
    })?;
    let (from, to, changed) = match outcome {
        Raised::Raised { from, to } => (from, to, true),
        Raised::Unchanged(c) => (c, c, false),
    };
    Ok(Json(RetentionResponse { recording_id: id, from: from.code().into(), to: to.code().into(), changed }))
}

/// Close a case (R19.1(2)): its recordings are bundled into the case file by a worker. The same
/// closure again answers with the same bundle.
#[utoipa::path(put, path = "/v1/cases/{case_id}/closure", tag = "cases",
    params(("case_id" = String, Path, description = "The case id, as the recordings' jobs carry it")),
    request_body = ClosureRequest,
    responses(
        (status = 202, description = "Bundle queued (or the same closure again)", body = ClosureResponse),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Another unit's case or recordings", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown case: no recording carries it and none is named", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Closed before with other terms", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid closure, or unknown recordings (named)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn close_case(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(case_id): ApiPath<String>,
    ApiJson(body): ApiJson<ClosureRequest>,
) -> Result<Response, ApiError> {
    p.may_on(Action::CloseCase, &body.unit)?;
    let closure = Closure::new(&case_id, &body.unit, body.closed_at, body.recordings.clone(), &body.reason, Utc::now())
        .and_then(|c| c.with_quarantined(body.quarantined.clone()))
        .map_err(|e| ApiError::Invalid(e.to_string()))?;
    let contents = app.db.case_contents(&case_id, &body.unit, &body.recordings, &body.quarantined).await?;
    if !contents.other_unit.is_empty() {
        return Err(ApiError::ForeignRecordings {
            detail: format!("recordings {:?} belong to another unit", contents.other_unit),
            ids: contents.other_unit,
        });
    }
    let mut unknown = contents.unknown_recordings.clone();
    unknown.extend(&contents.unknown_quarantined);
    if !unknown.is_empty() {
        return Err(ApiError::UnknownRecordings { detail: format!("no recordings {unknown:?}"), ids: unknown });
    }
    if contents.recording_ids.is_empty() && contents.quarantine_ids.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no recording of unit {} carries case {case_id}, and the closure names none",
            body.unit
        )));
    }
    let closed_by = format!("api:{}@{}", p.subject, p.unit);
    let bundle_id = match app.db.close_case(&closure, &closed_by, &contents).await? {
        Closed::New { bundle_id } | Closed::Same { bundle_id } => bundle_id,
        Closed::Conflict { closed_at } => {
            return Err(ApiError::CaseAlreadyClosed(format!(
                "case {case_id} was closed at {closed_at} with other terms; a closure is never changed"
            )));
        }
        Closed::OtherUnit => return Err(ApiError::Forbidden(format!("case {case_id} belongs to another unit"))),
    };
    let bundle = app.db.bundle(bundle_id).await?.ok_or_else(|| ApiError::Internal("bundle vanished".into()))?;
    // A closure repeated because the first answer was lost re-queues a bundle not yet built: a
    // job that was never published (or dead-lettered) is given again; a duplicate is harmless.
    if matches!(bundle.state, BundleState::Queued | BundleState::Failed) {
        let job = BundleJobV1 { schema_version: 1, bundle_id: bundle_id.to_string() };
        let body = serde_json::to_vec(&job).map_err(|e| ApiError::Internal(e.to_string()))?;
        app.publisher.publish_bundle_job(&bundle_id.to_string(), &body).await?;
    }
    let resp = ClosureResponse { bundle_id, case_id, state: bundle.state, deadline: bundle.deadline };
    Ok((StatusCode::ACCEPTED, Json(resp)).into_response())
}

/// A bundle's state, deadline, size and SHA-256.
#[utoipa::path(get, path = "/v1/bundles/{id}", tag = "bundles",
    params(("id" = Uuid, Path, description = "Bundle id")),
    responses(
        (status = 200, description = "The bundle", body = BundleView),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role or unit not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such bundle", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_bundle(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<BundleView>, ApiError> {
    p.may(Action::ReadBundle)?;
    let b = app.db.bundle(id).await?.ok_or_else(|| ApiError::NotFound(format!("no bundle {id}")))?;
    p.may_on(Action::ReadBundle, &b.unit)?;
    Ok(Json(BundleView::from(&b)))
}

/// A short-lived link to a ready bundle; each one handed out is recorded (R21.1).
#[utoipa::path(get, path = "/v1/bundles/{id}/download", tag = "bundles",
    params(("id" = Uuid, Path, description = "Bundle id")),
    responses(
        (status = 200, description = "A presigned link", body = DownloadLink),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Role or unit not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such bundle", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The bundle is not ready", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn download_bundle(
    State(app): State<App>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<DownloadLink>, ApiError> {
    p.may(Action::DownloadBundle)?;
    let b = app.db.bundle(id).await?.ok_or_else(|| ApiError::NotFound(format!("no bundle {id}")))?;
    p.may_on(Action::DownloadBundle, &b.unit)?;
    let (Some(bucket), Some(key), BundleState::Ready) = (&b.bucket, &b.key, b.state) else {
        return Err(ApiError::BundleNotReady(format!("bundle {id} is {}", b.state.code())));
    };
    let ttl = Duration::from_secs(app.settings.api.download_link_secs);
    let (url, expires_at) = app.store.presign_get(bucket, key, b.version_id.as_deref(), ttl).await?;
    // The link is recorded before it is handed out: a link nobody recorded never leaves.
    app.db.record_download(id, &p.subject, &p.unit, expires_at).await?;
    tracing::info!(bundle_id = %id, subject = p.subject, unit = p.unit, %expires_at, "download link handed out");
    Ok(Json(DownloadLink { bundle_id: id, url, expires_at, size_bytes: b.size_bytes, sha256: b.sha256.clone() }))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: Postgres, RabbitMQ and the object store answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "Not ready", body = Readiness)))]
pub async fn readyz(State(app): State<App>) -> Response {
    let database = app.db.ping().await.is_ok();
    let broker = app.broker.depth(&app.broker.topology().bundle_queue).await.is_ok();
    let store = app.store.head_bucket(&app.settings.s3.archive_bucket).await.is_ok();
    let r = Readiness { ready: database && broker && store, database, broker, store };
    let status = if r.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(r)).into_response()
}

/// Prometheus metrics of the API.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Text exposition format")))]
pub async fn metrics(State(m): State<Metrics>) -> String {
    m.render()
}
