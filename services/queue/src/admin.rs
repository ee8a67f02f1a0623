//! Broker identities, through RabbitMQ's management API: one user per docking station, allowed
//! to publish to the jobs exchange and nothing else (R2.1: a station speaks only for itself).
//!
//! The worker checks a job's `station_id` against the message's `user_id` property, which
//! RabbitMQ checks against the publishing connection's user. The worker's own user re-publishes
//! retries and dead letters with the station's `user_id` intact, which RabbitMQ allows only to a
//! user tagged `impersonator`: [`BrokerAdmin::check_impersonator`] tells at start-up.

use crate::QueueError;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// Credentials and vhost taken from an AMQP URL, and the management API's base URL.
#[derive(Debug, Clone)]
pub struct BrokerAdmin {
    http: reqwest::Client,
    base: String,
    user: String,
    password: SecretString,
    vhost: String,
}

/// What a station user may do: publish to `<prefix>.jobs`; configure and read nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationPermissions {
    pub configure: String,
    pub write: String,
    pub read: String,
}

impl StationPermissions {
    pub fn for_prefix(prefix: &str) -> Self {
        Self {
            configure: "^$".into(),
            write: format!("^{}$", regex_escape(&format!("{prefix}.jobs"))),
            read: "^$".into(),
        }
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !c.is_ascii_alphanumeric() && c != '_' && c != '-' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// User name, password and vhost of an `amqp://user:pass@host:port/vhost` URL.
pub fn amqp_credentials(url: &str) -> Result<(String, SecretString, String), QueueError> {
    let bad = |what: &str| QueueError::Admin(format!("the AMQP URL has no {what}"));
    let rest = url.split_once("://").map(|(_, r)| r).ok_or_else(|| bad("scheme"))?;
    let (auth, host_path) = rest.rsplit_once('@').ok_or_else(|| bad("user"))?;
    let (user, pass) = auth.split_once(':').ok_or_else(|| bad("password"))?;
    let vhost = host_path.split_once('/').map(|(_, v)| v.split('?').next().unwrap_or("")).unwrap_or("");
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let vhost = if vhost.is_empty() { "/".to_string() } else { decode(vhost) };
    Ok((decode(user), SecretString::from(decode(pass)), vhost))
}

/// The same AMQP URL with another user and password (a station's connection).
pub fn amqp_url_as(url: &SecretString, user: &str, password: &SecretString) -> Result<SecretString, QueueError> {
    let url = url.expose_secret();
    let (scheme, rest) = url.split_once("://").ok_or_else(|| QueueError::Admin("the AMQP URL has no scheme".into()))?;
    let host_path = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    Ok(SecretString::from(format!("{scheme}://{}:{}@{host_path}", enc(user), enc(password.expose_secret()))))
}

impl BrokerAdmin {
    /// Administers the broker of `amqp_url` (whose user must be a management administrator)
    /// through the management API at `management_url`.
    pub fn new(amqp_url: &SecretString, management_url: &str) -> Result<Self, QueueError> {
        let (user, password, vhost) = amqp_credentials(amqp_url.expose_secret())?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| QueueError::Admin(e.to_string()))?;
        Ok(Self { http, base: management_url.trim_end_matches('/').to_string(), user, password, vhost })
    }

    fn url(&self, path: &[&str]) -> String {
        let mut u = format!("{}/api", self.base);
        for p in path {
            u.push('/');
            u.push_str(&utf8_percent_encode(p, NON_ALPHANUMERIC).to_string());
        }
        u
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<reqwest::Response, QueueError> {
        let resp = req
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .send()
            .await
            .map_err(|e| QueueError::Admin(format!("{what}: {e}")))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            Err(QueueError::Admin(format!("{what}: http {status}: {}", body.chars().take(300).collect::<String>())))
        }
    }

    /// Creates (or updates) the broker user of a docking station with `password`, allowed only
    /// to publish to the jobs exchange of `prefix`. Idempotent.
    pub async fn register_station(
        &self,
        station_id: &str,
        password: &SecretString,
        prefix: &str,
    ) -> Result<(), QueueError> {
        let user = json!({ "password": password.expose_secret(), "tags": "" });
        self.send(self.http.put(self.url(&["users", station_id])).json(&user), "creating the station user").await?;
        let p = StationPermissions::for_prefix(prefix);
        let perms = json!({ "configure": p.configure, "write": p.write, "read": p.read });
        self.send(
            self.http.put(self.url(&["permissions", &self.vhost, station_id])).json(&perms),
            "setting the station's permissions",
        )
        .await?;
        Ok(())
    }

    /// Removes a station's broker user (decommissioned station, or a test's).
    pub async fn remove_station(&self, station_id: &str) -> Result<(), QueueError> {
        self.send(self.http.delete(self.url(&["users", station_id])), "removing the station user").await?;
        Ok(())
    }

    /// The permissions the broker holds for `user` on this vhost, if any.
    pub async fn permissions(&self, user: &str) -> Result<Option<StationPermissions>, QueueError> {
        let resp = self
            .http
            .get(self.url(&["permissions", &self.vhost, user]))
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .send()
            .await
            .map_err(|e| QueueError::Admin(format!("reading permissions: {e}")))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: serde_json::Value =
            resp.json().await.map_err(|e| QueueError::Admin(format!("reading permissions: {e}")))?;
        let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        Ok(Some(StationPermissions { configure: field("configure"), write: field("write"), read: field("read") }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_vhost_come_from_the_url() {
        let (u, p, v) = amqp_credentials("amqp://guest:gu%40st@127.0.0.1:5672/%2f").unwrap();
        assert_eq!((u.as_str(), p.expose_secret(), v.as_str()), ("guest", "gu@st", "/"));
        let (_, _, v) = amqp_credentials("amqps://a:b@h/prod?heartbeat=10").unwrap();
        assert_eq!(v, "prod");
        let (_, _, v) = amqp_credentials("amqp://a:b@h:5672").unwrap();
        assert_eq!(v, "/");
        assert!(amqp_credentials("amqp://h:5672/x").is_err());
    }

    #[test]
    fn a_station_url_keeps_host_and_vhost() {
        let u = amqp_url_as(
            &SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "st-01",
            &SecretString::from("p@ss"),
        )
        .unwrap();
        assert_eq!(u.expose_secret(), "amqp://st%2D01:p%40ss@127.0.0.1:5672/%2f");
        let (user, pass, vhost) = amqp_credentials(u.expose_secret()).unwrap();
        assert_eq!((user.as_str(), pass.expose_secret(), vhost.as_str()), ("st-01", "p@ss", "/"));
    }

    #[test]
    fn a_station_may_publish_to_the_jobs_exchange_only() {
        let p = StationPermissions::for_prefix("rvtest.t1a2");
        assert_eq!(p.write, r"^rvtest\.t1a2\.jobs$");
        assert_eq!((p.configure.as_str(), p.read.as_str()), ("^$", "^$"));
    }
}
