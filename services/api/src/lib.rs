//! recvault-api: the HTTP API for case systems (案件系统) and people (R18.1, R19.1, R21.1).
//!
//! Every route under `/v1` needs a bearer token (`auth`) and checks the principal against the
//! core's decision table (`recvault_core::access`) before it touches data: no token → 401, a
//! role or unit that may not → 403. Errors are problem documents (RFC 9457) with stable codes.
//! The OpenAPI 3.1 document is generated from the code and served at `/openapi.json`.
//!
//! The API never builds a bundle inside a request: closing a case writes the closure and queues a
//! bundle job in one transaction's wake; a worker builds it (`recvault-bundles`).
//!
//! # Layout
//! - [`auth`]: JWKS, token verification → principal.
//! - [`tokens`]: a local Ed25519 key and tokens (`recvault token`), for the demo and tests.
//! - [`extract`]: extractors answering failures as problems.
//! - [`problem`]: the error type and its problem documents.
//! - [`dto`]: request and response bodies with their schemas.
//! - [`routes`]: the handlers.

pub mod auth;
pub mod dto;
pub mod extract;
pub mod problem;
pub mod routes;
pub mod tokens;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use recvault_config::Settings;
use recvault_db::Db;
use recvault_queue::{Broker, Publisher};
use recvault_store::Store;
use std::sync::Arc;
use std::time::Instant;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct App {
    pub db: Db,
    pub store: Store,
    pub broker: Arc<Broker>,
    pub publisher: Publisher,
    pub verifier: auth::Verifier,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
}

impl axum::extract::FromRef<App> for Metrics {
    fn from_ref(app: &App) -> Metrics {
        app.metrics.clone()
    }
}

/// The API's own metrics: requests by route template and status, and their durations. Label
/// values are route templates (`/v1/bundles/{id}`), never ids.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    seconds: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("recvault_api_requests_total", "API requests, by route template and status"),
            &["route", "status"],
        )
        .expect("valid metric");
        let seconds = HistogramVec::new(
            HistogramOpts::new("recvault_api_request_duration_seconds", "API request durations, by route template")
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["route"],
        )
        .expect("valid metric");
        registry.register(Box::new(requests.clone())).expect("registers once");
        registry.register(Box::new(seconds.clone())).expect("registers once");
        registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("registers once");
        Self { registry, requests, seconds }
    }

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

async fn observe(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let t = Instant::now();
    let resp = next.run(req).await;
    m.seconds.with_label_values(&[&route]).observe(t.elapsed().as_secs_f64());
    m.requests.with_label_values(&[&route, resp.status().as_str()]).inc();
    resp
}

/// The OpenAPI document (3.1), generated from the handlers and bodies.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "recvault API",
        description = "Case systems and people: search recordings (R18.1), close cases into BagIt case-file bundles (R19.1(2)), raise retention (R19.1). Bearer JWT (EdDSA or RS256) with `sub`, `roles` and `unit` claims.",
        license(name = "Apache-2.0")
    ),
    paths(
        routes::search_recordings,
        routes::get_recording,
        routes::raise_recording_retention,
        routes::close_case,
        routes::get_bundle,
        routes::download_bundle,
        routes::healthz,
        routes::readyz,
        routes::metrics,
    ),
    components(schemas(problem::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "recordings", description = "R18.1 search, details, R19.1 retention"),
        (name = "cases", description = "R19.1(2) case closure"),
        (name = "bundles", description = "Case-file bundles and their download links (R21.1)"),
        (name = "operations", description = "Health, readiness, metrics")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The OpenAPI document as JSON.
pub fn openapi_json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises")
}

/// Every route, with the metrics layer.
pub fn router(app: App) -> Router {
    let metrics = app.metrics.clone();
    Router::new()
        .route("/v1/recordings", get(routes::search_recordings))
        .route("/v1/recordings/{id}", get(routes::get_recording))
        .route("/v1/recordings/{id}/retention", post(routes::raise_recording_retention))
        .route("/v1/cases/{case_id}/closure", put(routes::close_case))
        .route("/v1/bundles/{id}", get(routes::get_bundle))
        .route("/v1/bundles/{id}/download", get(routes::download_bundle))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(|| async { axum::Json(openapi_json()) }))
        .fallback(|| async { problem::ApiError::NotFound("no such route".into()) })
        .layer(axum::middleware::from_fn_with_state(metrics, observe))
        .with_state(app)
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error(transparent)]
    Db(#[from] recvault_db::DbError),
    #[error(transparent)]
    Queue(#[from] recvault_queue::QueueError),
    #[error("listening on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
}

/// Connects what the API needs and builds its state.
pub async fn start(settings: Settings) -> Result<App, StartError> {
    let verifier = auth::Verifier::load(&settings.api).await?;
    let db = Db::connect(&settings.database).await?;
    db.check_schema().await?;
    let store = Store::connect(settings.s3.clone()).await;
    let broker = Broker::connect(&settings.amqp, "recvault-api").await?;
    broker.declare().await?;
    let publisher = broker.publisher().await?;
    Ok(App {
        db,
        store,
        broker: Arc::new(broker),
        publisher,
        verifier,
        settings: Arc::new(settings),
        metrics: Metrics::new(),
    })
}

/// Serves until `shutdown` is cancelled; returns the bound address through `bound`.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), std::io::Error> {
    axum::serve(listener, router(app)).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

#[cfg(test)]
mod tests {
    /// `pipeline-config/openapi.json` is what case-system vendors read and what
    /// `deploy/local/validate.sh` checks with openapi-spec-validator: it must be the code's.
    #[test]
    fn the_committed_openapi_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipeline-config/openapi.json");
        let current = serde_json::to_string_pretty(&super::openapi_json()).unwrap() + "\n";
        if std::env::var_os("RECVAULT_BLESS").is_some() {
            std::fs::write(path, &current).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == current,
            "pipeline-config/openapi.json is stale: RECVAULT_BLESS=1 cargo test -p recvault-api openapi"
        );
    }

    #[test]
    fn the_openapi_document_is_3_1_and_names_every_route() {
        let doc = super::openapi_json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
        for path in [
            "/v1/recordings",
            "/v1/recordings/{id}",
            "/v1/recordings/{id}/retention",
            "/v1/cases/{case_id}/closure",
            "/v1/bundles/{id}",
            "/v1/bundles/{id}/download",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }
}
