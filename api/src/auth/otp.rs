//! One-time login codes: six digits, sent by SMS, stored only as an HMAC, valid five minutes,
//! at most five attempts. Requests are limited in PostgreSQL, so the limits hold across
//! processes: per number and client address one a minute and `otp_per_phone_per_hour` an hour,
//! per number `PHONE_HOUR_CEILING_FACTOR` times that from all clients together (what bounds
//! the SMS bill); per IP by the caller. Limits per client keep a stranger who asks for codes to
//! someone's number from using up that number's allowance, or ending the code its owner holds.

use std::time::Duration;

use bozor_domain::user::Phone;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use uuid::Uuid;

use super::Auth;
use crate::errors::ApiError;
use crate::routes::unavailable;

/// How long a code stays valid.
pub const CODE_TTL: Duration = Duration::from_secs(5 * 60);
/// Wrong guesses allowed per code.
pub const ATTEMPTS_MAX: i32 = 5;
/// Shortest wait between two codes to one number from one client.
pub const RESEND_AFTER: Duration = Duration::from_secs(60);
/// A number gets at most this many times `otp_per_phone_per_hour` codes an hour, whoever asks.
pub const PHONE_HOUR_CEILING_FACTOR: i64 = 4;

/// A code was sent.
#[derive(Debug, serde::Serialize)]
pub struct Issued {
    pub expires_in: u64,
    pub resend_after: u64,
}

fn code_hash(key: &[u8], phone: &Phone, code: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key)
        .expect("HMAC takes keys of any length")
        .chain_update(phone.as_str().as_bytes())
        .chain_update(b":")
        .chain_update(code.as_bytes())
}

/// Six uniformly random digits from the operating system's generator.
fn new_code() -> String {
    loop {
        let mut b = [0u8; 4];
        getrandom::getrandom(&mut b).expect("the operating system's random source works");
        let n = u32::from_le_bytes(b);
        // Rejection sampling: 4 294 000 000 is the largest multiple of 10^6 below 2^32.
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

fn too_many(seconds: i64, message: &'static str) -> ApiError {
    ApiError::new("rate_limited", message).retry_after(seconds.max(1) as u64)
}

/// Issues a code for `phone` and sends it, unless the number was sent one within the last
/// minute or too many within the hour (429 with Retry-After). The check and the insert run
/// under a per-phone advisory lock, so concurrent requests cannot both pass.
pub async fn request(
    pool: &Pool,
    auth: &Auth,
    phone: &Phone,
    ip: &str,
    now: DateTime<Utc>,
) -> Result<Issued, ApiError> {
    let code = new_code();
    {
        let mut client = pool.get().await.map_err(unavailable)?;
        let tx = client.transaction().await.map_err(unavailable)?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('otp:' || $1))", &[&phone.as_str()])
            .await
            .map_err(unavailable)?;
        // Bounded storage: a number keeps at most a day of codes (the hour's limit needs less).
        tx.execute(
            "DELETE FROM auth_otp WHERE phone = $1 AND created_at < $2",
            &[&phone.as_str(), &(now - chrono::Duration::days(1))],
        )
        .await
        .map_err(unavailable)?;
        let hour_ago = now - chrono::Duration::hours(1);
        let row = tx
            .query_one(
                "SELECT count(*) FILTER (WHERE ip = $3), max(created_at) FILTER (WHERE ip = $3),
                        min(created_at) FILTER (WHERE ip = $3), count(*), min(created_at)
                 FROM auth_otp WHERE phone = $1 AND created_at > $2",
                &[&phone.as_str(), &hour_ago, &ip],
            )
            .await
            .map_err(unavailable)?;
        let (sent, last, first): (i64, Option<DateTime<Utc>>, Option<DateTime<Utc>>) =
            (row.get(0), row.get(1), row.get(2));
        let (sent_all, first_all): (i64, Option<DateTime<Utc>>) = (row.get(3), row.get(4));
        if let Some(last) = last {
            let wait = (last + chrono::Duration::from_std(RESEND_AFTER).expect("small") - now).num_seconds();
            if wait > 0 {
                return Err(too_many(wait, "a code was sent to this number a moment ago"));
            }
        }
        let per_client = i64::from(auth.rate.otp_per_phone_per_hour);
        if sent >= per_client || sent_all >= per_client * PHONE_HOUR_CEILING_FACTOR {
            let oldest = if sent >= per_client { first } else { first_all };
            let wait = oldest.map_or(3_600, |f| (f + chrono::Duration::hours(1) - now).num_seconds());
            return Err(too_many(wait, "too many codes for this number this hour"));
        }
        // A new code replaces the older ones this client asked for: only its newest logs in.
        tx.execute(
            "UPDATE auth_otp SET expires_at = least(expires_at, $2)
             WHERE phone = $1 AND ip = $3 AND consumed_at IS NULL",
            &[&phone.as_str(), &now, &ip],
        )
        .await
        .map_err(unavailable)?;
        let hash = code_hash(&auth.otp_key, phone, &code).finalize().into_bytes().to_vec();
        let expires = now + chrono::Duration::from_std(CODE_TTL).expect("small");
        tx.execute(
            "INSERT INTO auth_otp (otp_id, phone, code_hash, created_at, expires_at, ip) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&Uuid::new_v4(), &phone.as_str(), &hash, &now, &expires, &ip],
        )
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
    }
    let text = format!("bozor: kirish kodi {code}. Uni hech kimga aytmang. / Код входа {code}.");
    auth.sms.send(phone, &text).await.map_err(|e| {
        tracing::warn!(error = %e, "sms not sent");
        ApiError::new("sms_failed", "the code could not be sent; retry later")
    })?;
    Ok(Issued { expires_in: CODE_TTL.as_secs(), resend_after: RESEND_AFTER.as_secs() })
}

/// Live codes a number can have at once, at most (a bound on what `verify` compares).
const LIVE_CODES_MAX: i64 = 32;

/// Checks `code` against the live codes of `phone` (each client's newest; see `request`) and
/// consumes the one it matches, ending every other code of the number. Every guess counts
/// against every code it was tried on, right or wrong; a code tried `ATTEMPTS_MAX` times is dead
/// (429 `otp_attempts_exceeded` when no other is left).
pub async fn verify(pool: &Pool, auth: &Auth, phone: &Phone, code: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
    let invalid = |left: i32| {
        ApiError::new("otp_invalid", "the code is wrong or has expired; request a new one")
            .with_details(json!({ "attempts_left": left }))
    };
    let mut client = pool.get().await.map_err(unavailable)?;
    let tx = client.transaction().await.map_err(unavailable)?;
    let rows = tx
        .query(
            "SELECT otp_id, code_hash, attempts FROM auth_otp
             WHERE phone = $1 AND consumed_at IS NULL AND expires_at > $2
             ORDER BY created_at DESC LIMIT $3 FOR UPDATE",
            &[&phone.as_str(), &now, &LIVE_CODES_MAX],
        )
        .await
        .map_err(unavailable)?;
    if rows.is_empty() {
        return Err(invalid(0));
    }
    let usable: Vec<(Uuid, Vec<u8>, i32)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .filter(|(_, _, attempts)| *attempts < ATTEMPTS_MAX)
        .collect();
    if usable.is_empty() {
        return Err(ApiError::new("otp_attempts_exceeded", "too many wrong codes; request a new one"));
    }
    // Each comparison is constant time; stopping at a match tells nothing a success does not.
    let matched =
        usable.iter().find(|(_, stored, _)| code_hash(&auth.otp_key, phone, code).verify_slice(stored).is_ok());
    let tried: Vec<Uuid> = usable.iter().map(|(id, ..)| *id).collect();
    match matched {
        Some((otp_id, ..)) => {
            tx.execute(
                "UPDATE auth_otp SET attempts = attempts + 1, consumed_at = $2 WHERE otp_id = $1",
                &[otp_id, &now],
            )
            .await
            .map_err(unavailable)?;
            // A used code ends every code of the number.
            tx.execute(
                "UPDATE auth_otp SET expires_at = least(expires_at, $2) WHERE phone = $1 AND consumed_at IS NULL",
                &[&phone.as_str(), &now],
            )
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            Ok(())
        }
        None => {
            tx.execute("UPDATE auth_otp SET attempts = attempts + 1 WHERE otp_id = ANY($1)", &[&tried])
                .await
                .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            let left = usable.iter().map(|(.., attempts)| ATTEMPTS_MAX - attempts - 1).max().unwrap_or(0);
            Err(invalid(left))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::BTreeSet<String> = (0..50).map(|_| new_code()).collect();
        assert!(codes.iter().all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 40, "50 draws of a million values barely collide");
    }

    #[test]
    fn hashes_bind_the_code_to_its_phone_and_key() {
        let a = Phone::parse("+998901234567").unwrap();
        let b = Phone::parse("+998901234568").unwrap();
        let h = code_hash(b"k", &a, "123456").finalize().into_bytes();
        assert!(code_hash(b"k", &a, "123456").verify_slice(&h).is_ok());
        assert!(code_hash(b"k", &b, "123456").verify_slice(&h).is_err());
        assert!(code_hash(b"k", &a, "123457").verify_slice(&h).is_err());
        assert!(code_hash(b"other", &a, "123456").verify_slice(&h).is_err());
    }
}
