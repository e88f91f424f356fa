//! Access tokens: JWTs signed with HMAC-SHA256 (HS256) under `BOZOR_JWT_SECRET`.
//!
//! Only HS256 is accepted: the header's `alg` must say so, which closes the `none` and
//! algorithm-confusion holes. Signatures are compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bozor_domain::order::District;
use bozor_domain::{Plan, Role};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// Who issues (and accepts) bozor's tokens.
pub const ISSUER: &str = "bozor";
/// Longest token accepted, in bytes: bounds the work an attacker can ask for.
pub const TOKEN_BYTES_MAX: usize = 4_096;
/// Clock skew tolerated on `iat`, in seconds.
const SKEW_SECONDS: i64 = 30;

/// What an access token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// Every role held when the token was minted, buyer included.
    pub roles: Vec<Role>,
    /// A seller's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// A courier's district.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<District>,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    pub iss: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, bad JSON, or too long.
    #[error("the token is malformed")]
    Malformed,
    /// The header names another algorithm than HS256.
    #[error("the token's algorithm is not HS256")]
    Algorithm,
    /// The signature does not match: forged, or signed with another secret.
    #[error("the token's signature is invalid")]
    Signature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// Another issuer, a future `iat`, or a role tokens never carry.
    #[error("the token's claims are invalid")]
    Claims,
}

/// The signing key.
#[derive(Clone)]
pub struct Keys {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys { <secret> }")
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
}

impl Keys {
    /// Keys from a secret (production demands at least 32 bytes; see configuration).
    pub fn new(secret: &[u8]) -> Keys {
        Keys { secret: secret.to_vec() }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any length")
    }

    /// Signs `claims` into a compact JWS.
    pub fn mint(&self, claims: &Claims) -> String {
        let header = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = B64URL.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let signing_input = format!("{header}.{payload}");
        let signature = B64URL.encode(self.mac().chain_update(signing_input.as_bytes()).finalize().into_bytes());
        format!("{signing_input}.{signature}")
    }

    /// Checks a token's form, algorithm and signature; returns its payload bytes.
    pub fn verify_signature(&self, token: &str) -> Result<Vec<u8>, TokenError> {
        if token.len() > TOKEN_BYTES_MAX {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let header: Header =
            B64URL.decode(h).ok().and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Malformed)?;
        if header.alg != "HS256" || header.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
            return Err(TokenError::Algorithm);
        }
        let signature = B64URL.decode(s).map_err(|_| TokenError::Malformed)?;
        let signing_input = &token[..h.len() + 1 + p.len()];
        self.mac()
            .chain_update(signing_input.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| TokenError::Signature)?;
        B64URL.decode(p).map_err(|_| TokenError::Malformed)
    }

    /// Verifies a token at `now` (Unix seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let payload = self.verify_signature(token)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.iss != ISSUER || claims.iat > now + SKEW_SECONDS || claims.roles.contains(&Role::System) {
            return Err(TokenError::Claims);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            sub: Uuid::from_u128(7),
            roles: vec![Role::Buyer, Role::Seller],
            plan: Some(Plan::Pro),
            district: None,
            iat: now,
            exp: now + 900,
            iss: ISSUER.into(),
        }
    }

    /// RFC 7515, appendix A.1: the HS256 example JWS verifies under its key.
    #[test]
    fn verifies_the_rfc_7515_example() {
        let key = B64URL
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9\
            .eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ\
            .dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let payload = Keys::new(&key).verify_signature(token).unwrap();
        assert!(String::from_utf8(payload).unwrap().contains("\"iss\":\"joe\""));
        assert_eq!(Keys::new(b"another key").verify_signature(token), Err(TokenError::Signature));
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys.mint(&claims(1_000));
        assert_eq!(keys.verify(&token, 1_000).unwrap(), claims(1_000));
        assert_eq!(keys.verify(&token, 1_900), Err(TokenError::Expired));
        assert_eq!(Keys::new(b"other").verify(&token, 1_000), Err(TokenError::Signature));
    }

    #[test]
    fn refuses_other_algorithms_tampering_and_bad_claims() {
        let keys = Keys::new(b"0123456789abcdef0123456789abcdef");
        let token = keys.mint(&claims(1_000));
        let (_, rest) = token.split_once('.').unwrap();
        let none = format!("{}.{rest}", B64URL.encode(br#"{"alg":"none","typ":"JWT"}"#));
        assert_eq!(keys.verify(&none, 1_000), Err(TokenError::Algorithm));
        let mut admin = claims(1_000);
        admin.roles.push(Role::Admin);
        let forged_payload = B64URL.encode(serde_json::to_vec(&admin).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{forged_payload}.{}", parts[0], parts[2]);
        assert_eq!(keys.verify(&forged, 1_000), Err(TokenError::Signature));
        for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(keys.verify(bad, 1_000), Err(TokenError::Malformed), "{bad}");
        }
        let mut system = claims(1_000);
        system.roles.push(Role::System);
        assert_eq!(keys.verify(&keys.mint(&system), 1_000), Err(TokenError::Claims));
        let mut foreign = claims(1_000);
        foreign.iss = "elsewhere".into();
        assert_eq!(keys.verify(&keys.mint(&foreign), 1_000), Err(TokenError::Claims));
    }
}
