//! A local signing key and tokens made with it (`recvault token keygen | issue`), for the demo,
//! the tests and small deployments without an identity provider. Ed25519 (EdDSA); the private key
//! is PKCS#8 DER in a file only its owner reads, the public one a JWKS the API loads.

use crate::auth::Claims;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("key generation: {0}")]
    Keygen(String),
    #[error("the signing key is not an Ed25519 PKCS#8 key: {0}")]
    BadKey(String),
    #[error("signing: {0}")]
    Sign(String),
}

/// A new Ed25519 key: its PKCS#8 DER, and the JWKS of its public half under `kid`.
pub fn keygen(kid: &str) -> Result<(Vec<u8>, JwkSet), TokenError> {
    let pair = Ed25519KeyPair::generate().map_err(|e| TokenError::Keygen(e.to_string()))?;
    let pkcs8 = pair.to_pkcs8().map_err(|e| TokenError::Keygen(e.to_string()))?;
    let der = pkcs8.as_ref().to_vec();
    let jwks = jwks_of(&der, kid)?;
    Ok((der, jwks))
}

/// The JWKS of a signing key's public half.
pub fn jwks_of(pkcs8: &[u8], kid: &str) -> Result<JwkSet, TokenError> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| TokenError::BadKey(e.to_string()))?;
    let x = base64_url(pair.public_key().as_ref());
    Ok(JwkSet {
        keys: vec![Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(kid.into()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x,
            }),
        }],
    })
}

/// A token with these claims, signed with the PKCS#8 key under `kid`.
pub fn issue(pkcs8: &[u8], kid: &str, claims: &Claims) -> Result<String, TokenError> {
    Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| TokenError::BadKey(e.to_string()))?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    encode(&header, claims, &EncodingKey::from_ed_der(pkcs8)).map_err(|e| TokenError::Sign(e.to_string()))
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Verifier;
    use recvault_core::access::Role;

    fn claims(exp_in: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: "case-system-1".into(),
            roles: vec!["case_system".into(), "future_role".into()],
            unit: "zhidui".into(),
            iss: "recvault".into(),
            aud: "recvault-api".into(),
            exp: now + exp_in,
            iat: Some(now),
            nbf: None,
        }
    }

    #[test]
    fn base64url_without_padding() {
        assert_eq!(base64_url(b""), "");
        assert_eq!(base64_url(b"f"), "Zg");
        assert_eq!(base64_url(b"fo"), "Zm8");
        assert_eq!(base64_url(b"foo"), "Zm9v");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn an_issued_token_verifies_and_names_its_principal() {
        let (key, jwks) = keygen("k1").unwrap();
        let v = Verifier::from_jwks(&jwks, "recvault", "recvault-api").unwrap();
        let t = issue(&key, "k1", &claims(600)).unwrap();
        let p = v.verify(&t).unwrap();
        assert_eq!((p.subject.as_str(), p.unit.as_str()), ("case-system-1", "zhidui"));
        assert_eq!(p.roles, vec![Role::CaseSystem], "unknown roles give nothing");
    }

    #[test]
    fn forged_expired_or_misaddressed_tokens_are_refused() {
        let (key, jwks) = keygen("k1").unwrap();
        let (other, _) = keygen("k1").unwrap();
        let v = Verifier::from_jwks(&jwks, "recvault", "recvault-api").unwrap();
        let refused = |t: &str| v.verify(t).is_err();
        assert!(refused(&issue(&other, "k1", &claims(600)).unwrap()), "signed by another key");
        assert!(refused(&issue(&key, "k2", &claims(600)).unwrap()), "unknown kid");
        assert!(refused(&issue(&key, "k1", &claims(-120)).unwrap()), "expired");
        let mut c = claims(600);
        c.aud = "another-api".into();
        assert!(refused(&issue(&key, "k1", &c).unwrap()), "another audience");
        let mut c = claims(600);
        c.iss = "someone".into();
        assert!(refused(&issue(&key, "k1", &c).unwrap()), "another issuer");
        let mut c = claims(600);
        c.unit = "bad unit".into();
        assert!(refused(&issue(&key, "k1", &c).unwrap()), "not a unit code");
        // alg=none and HS256 with the public key as secret
        let t = issue(&key, "k1", &claims(600)).unwrap();
        let (_, rest) = t.split_once('.').unwrap();
        let none = format!("{}.{rest}", base64_url(br#"{"alg":"none","kid":"k1","typ":"JWT"}"#));
        assert!(refused(&none));
        let hs = format!("{}.{rest}", base64_url(br#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#));
        assert!(refused(&hs));
        assert!(refused("not a token"));
    }
}
