//! Refresh tokens: 32 random bytes, stored only as SHA-256, valid 30 days. A login starts a
//! family; each refresh rotates the token (the old one is spent). A spent token presented
//! again means it leaked: the whole family is revoked, the thief's copy and the owner's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::REFRESH_TTL;
use crate::errors::ApiError;
use crate::routes::unavailable;

/// Longest refresh token accepted (ours are 43 characters).
pub const TOKEN_CHARS_MAX: usize = 128;

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn expires(now: DateTime<Utc>) -> DateTime<Utc> {
    now + chrono::Duration::from_std(REFRESH_TTL).expect("30 days fit")
}

/// Stores a new token of `family` for `user_id` and returns it.
async fn insert(
    client: &impl deadpool_postgres::GenericClient,
    user_id: Uuid,
    family: Uuid,
    now: DateTime<Utc>,
) -> Result<String, ApiError> {
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).expect("the operating system's random source works");
    let token = B64URL.encode(raw);
    client
        .execute(
            "INSERT INTO auth_refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&hash(&token), &family, &user_id, &now, &expires(now)],
        )
        .await
        .map_err(unavailable)?;
    Ok(token)
}

/// Starts a family for a fresh login and returns its first token.
pub async fn start(pool: &Pool, user_id: Uuid, now: DateTime<Utc>) -> Result<String, ApiError> {
    let client = pool.get().await.map_err(unavailable)?;
    insert(&client, user_id, Uuid::new_v4(), now).await
}

fn refused(code: &'static str, message: &'static str) -> ApiError {
    ApiError::new(code, message)
}

/// Spends `token` and returns its user with the family's next token. A spent token revokes
/// its family (401 `refresh_token_reused`); an unknown, revoked or expired one is 401
/// `invalid_refresh_token`.
pub async fn rotate(pool: &Pool, token: &str, now: DateTime<Utc>) -> Result<(Uuid, String), ApiError> {
    let mut client = pool.get().await.map_err(unavailable)?;
    let tx = client.transaction().await.map_err(unavailable)?;
    let spent = tx
        .query_opt(
            "UPDATE auth_refresh_tokens SET rotated_at = $2
             WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $2
             RETURNING family_id, user_id",
            &[&hash(token), &now],
        )
        .await
        .map_err(unavailable)?;
    if let Some(row) = spent {
        let (family, user_id): (Uuid, Uuid) = (row.get(0), row.get(1));
        let next = insert(&tx, user_id, family, now).await?;
        // Bounded storage: spent tokens are kept (to catch their reuse) until they expire.
        tx.execute("DELETE FROM auth_refresh_tokens WHERE family_id = $1 AND expires_at <= $2", &[&family, &now])
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        return Ok((user_id, next));
    }
    let known = tx
        .query_opt(
            "SELECT family_id, rotated_at IS NOT NULL AND revoked_at IS NULL FROM auth_refresh_tokens WHERE token_hash = $1",
            &[&hash(token)],
        )
        .await
        .map_err(unavailable)?;
    match known {
        Some(row) if row.get::<_, bool>(1) => {
            let family: Uuid = row.get(0);
            tx.execute(
                "UPDATE auth_refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
                &[&family, &now],
            )
            .await
            .map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            tracing::warn!(family_id = %family, "a spent refresh token was presented again; family revoked");
            Err(refused("refresh_token_reused", "this refresh token was used already; log in again"))
        }
        _ => Err(refused("invalid_refresh_token", "the refresh token is unknown, revoked or expired; log in again")),
    }
}

/// Revokes the family of `token` (logout everywhere that session reached). Unknown tokens are
/// ignored, so logging out twice is fine.
pub async fn revoke(pool: &Pool, token: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
    let client = pool.get().await.map_err(unavailable)?;
    client
        .execute(
            "UPDATE auth_refresh_tokens SET revoked_at = $2
             WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM auth_refresh_tokens WHERE token_hash = $1)",
            &[&hash(token), &now],
        )
        .await
        .map_err(unavailable)?;
    Ok(())
}
