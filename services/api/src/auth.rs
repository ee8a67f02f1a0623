//! Bearer tokens: JWTs signed with EdDSA (Ed25519) or RS256 by whoever the deployment trusts
//! (its identity provider, or `recvault token issue` for the demo and tests), verified against
//! the configured public keys (a JWKS file or URL). A token names its subject, its roles and its
//! unit; the decision what that allows is `recvault_core::access`.
//!
//! Only asymmetric algorithms are accepted, and only the one a key is published for: a token
//! cannot pick `none`, an HMAC with the public key as secret, or another key's algorithm.

use crate::problem::ApiError;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use recvault_config::ApiConfig;
use recvault_core::access::{Principal, Role};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Seconds of clock difference tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no token keys configured: set api.jwks_file or api.jwks_url")]
    NoKeys,
    #[error("reading the JWKS: {0}")]
    Jwks(String),
    #[error("JWKS key {kid:?}: {detail}")]
    Key { kid: Option<String>, detail: String },
}

/// The claims recvault reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub unit: String,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Verifies tokens against a fixed set of keys.
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, (DecodingKey, Algorithm)>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("kids", &self.keys.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl Verifier {
    /// The keys of a JWKS; each needs a `kid` and is bound to the algorithm of its type
    /// (OKP/Ed25519: EdDSA; RSA: RS256).
    pub fn from_jwks(jwks: &JwkSet, issuer: &str, audience: &str) -> Result<Self, AuthError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let kid = jwk.common.key_id.clone();
            let err = |detail: &str| AuthError::Key { kid: kid.clone(), detail: detail.into() };
            let kid_s = kid.clone().ok_or_else(|| err("has no kid"))?;
            let alg = match &jwk.algorithm {
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => return Err(err("only Ed25519 (OKP) and RSA keys are accepted")),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| err(&e.to_string()))?;
            keys.insert(kid_s, (key, alg));
        }
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }
        Ok(Self { keys, issuer: issuer.into(), audience: audience.into() })
    }

    /// Loads the keys `[api]` names.
    pub async fn load(cfg: &ApiConfig) -> Result<Self, AuthError> {
        let text = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(f), _) => std::fs::read_to_string(f).map_err(|e| AuthError::Jwks(format!("{}: {e}", f.display())))?,
            (None, Some(u)) => reqwest::Client::builder()
                // An identity provider that does not answer must not hang the start-up forever.
                .timeout(std::time::Duration::from_secs(15))
                .build()
                .map_err(|e| AuthError::Jwks(format!("{u}: {e}")))?
                .get(u)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| AuthError::Jwks(format!("{u}: {e}")))?
                .text()
                .await
                .map_err(|e| AuthError::Jwks(format!("{u}: {e}")))?,
            (None, None) => return Err(AuthError::NoKeys),
        };
        let jwks: JwkSet = serde_json::from_str(&text).map_err(|e| AuthError::Jwks(e.to_string()))?;
        Self::from_jwks(&jwks, &cfg.issuer, &cfg.audience)
    }

    /// The principal a bearer token names, or why it names none.
    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let bad = |why: String| ApiError::Unauthenticated(format!("invalid token: {why}"));
        let header = decode_header(token).map_err(|e| bad(e.to_string()))?;
        let kid = header.kid.ok_or_else(|| bad("no kid in its header".into()))?;
        let (key, alg) = self.keys.get(&kid).ok_or_else(|| bad(format!("unknown key {kid:?}")))?;
        if header.alg != *alg {
            return Err(bad(format!("key {kid:?} signs with {alg:?}, not {:?}", header.alg)));
        }
        let mut v = Validation::new(*alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = decode::<Claims>(token, key, &v).map_err(|e| bad(e.to_string()))?;
        let c = data.claims;
        if recvault_core::job::check_identifier("unit", &c.unit).is_err() {
            return Err(bad("the unit claim is not a unit code".into()));
        }
        if c.sub.is_empty() || c.sub.len() > 256 || c.sub.chars().any(recvault_core::text::is_forbidden) {
            return Err(bad("the sub claim is not a subject".into()));
        }
        // Roles this version does not know give nothing (a newer identity provider may add some).
        let roles = c.roles.iter().filter_map(|r| Role::from_code(r)).collect();
        Ok(Principal { subject: c.sub, roles, unit: c.unit })
    }
}
