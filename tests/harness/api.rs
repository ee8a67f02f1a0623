//! The HTTP API of a [`TestEnv`], served in the test process on a port of its own, with a signing
//! key of its own: tokens for any role and unit, and a plain HTTP client (what a case system uses).

use crate::TestEnv;
use recvault_api::auth::{Claims, Verifier};
use recvault_api::{App, Metrics, tokens};
use recvault_core::access::Role;
use recvault_db::Db;
use recvault_queue::Broker;
use reqwest::Method;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const KID: &str = "test-key";

/// A running API.
#[derive(Debug)]
pub struct RunningApi {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub metrics: Metrics,
    key: Vec<u8>,
    issuer: String,
    audience: String,
    shutdown: CancellationToken,
    handle: JoinHandle<()>,
}

/// An answer: the status and the body as JSON (`Value::Null` when the body is empty or not JSON),
/// with its content type.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
}

impl Answer {
    /// The problem code of an error answer.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestEnv {
    /// Starts the API on this deployment (the service database role, as in production).
    pub async fn start_api(&self) -> RunningApi {
        let (key, jwks) = tokens::keygen(KID).expect("keygen");
        let api = &self.settings.api;
        let verifier = Verifier::from_jwks(&jwks, &api.issuer, &api.audience).expect("verifier");
        let broker = Broker::connect(&self.settings.amqp, "recvault-api-test").await.expect("broker");
        let publisher = broker.publisher().await.expect("publisher");
        let db = Db::connect(&self.settings.database).await.expect("db");
        let metrics = Metrics::new();
        let app = App {
            db,
            store: self.store.clone(),
            broker: Arc::new(broker),
            publisher,
            verifier,
            settings: Arc::new(self.settings.clone()),
            metrics: metrics.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let handle = tokio::spawn(async move {
            recvault_api::serve(app, listener, token).await.expect("api serves");
        });
        RunningApi {
            addr,
            http: reqwest::Client::new(),
            metrics,
            key,
            issuer: api.issuer.clone(),
            audience: api.audience.clone(),
            shutdown,
            handle,
        }
    }
}

impl RunningApi {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A valid token for `roles` acting for `unit`.
    pub fn token(&self, roles: &[Role], unit: &str) -> String {
        self.token_with(roles, unit, |_| {})
    }

    /// A token whose claims `tweak` changes after they are filled in (expired, another audience).
    pub fn token_with(&self, roles: &[Role], unit: &str, tweak: impl FnOnce(&mut Claims)) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = Claims {
            sub: format!("{}-client", roles.first().map_or("nobody", |r| r.code())),
            roles: roles.iter().map(|r| r.code().to_string()).collect(),
            unit: unit.into(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            exp: now + 600,
            iat: Some(now),
            nbf: None,
        };
        tweak(&mut claims);
        tokens::issue(&self.key, KID, &claims).expect("token")
    }

    /// One request; `body` is sent as JSON.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::answer(req.send().await.expect("request")).await
    }

    /// A request with a raw body (malformed JSON, a wrong content type).
    pub async fn call_raw(&self, method: Method, path: &str, token: &str, content_type: &str, body: &str) -> Answer {
        let req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body.to_string());
        Self::answer(req.send().await.expect("request")).await
    }

    async fn answer(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, content_type, body }
    }

    /// `GET /v1/recordings` with these query parameters (encoded by the client).
    pub async fn search(&self, token: &str, query: &[(&str, &str)]) -> Answer {
        let req = self.http.get(self.url("/v1/recordings")).bearer_auth(token).query(query);
        Self::answer(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.handle).await;
    }
}
