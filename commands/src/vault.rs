//! Game-account credentials at rest: AES-256-GCM under a per-listing data key, data keys
//! wrapped by the master key from the environment (`BOZOR_MASTER_KEY`).
//!
//! Only ciphertext reaches the event log. The wrapped data keys live in `data_keys`, outside
//! the log, so deleting a listing's key (an erasure request) makes every copy of its
//! credentials unreadable while the log stays intact: crypto-shredding.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bozor_domain::listing::SealedCredentials;
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const NONCE_BYTES: usize = 12;

/// A game account's login and password, in the clear: only ever in memory.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { <redacted> }") // never in a log line
    }
}

/// Longest login or password accepted, in bytes.
pub const CREDENTIAL_FIELD_BYTES_MAX: usize = 256;

/// Why credentials could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The data key is gone: erased (crypto-shredded), or never committed.
    #[error("the data key {0} no longer exists (the credentials were erased)")]
    KeyShredded(Uuid),
    /// The key was wrapped by another master key than the configured one.
    #[error("data key {0} was wrapped by another master key (hint: check BOZOR_MASTER_KEY)")]
    WrongMasterKey(Uuid),
    /// Authentication of a ciphertext failed: tampered with, or bound to another listing.
    #[error("the sealed data does not authenticate")]
    Corrupt,
    /// The database failed.
    #[error("data key storage: {0}")]
    Db(String),
}

/// The master key and the data keys it wraps.
#[derive(Clone)]
pub struct Vault {
    pool: Pool,
    master: Aes256Gcm,
    master_id: Vec<u8>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("master_id", &hex::encode(&self.master_id)).finish_non_exhaustive()
    }
}

fn db(e: impl std::fmt::Display) -> VaultError {
    VaultError::Db(e.to_string())
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the operating system's random source works");
    b
}

fn seal_with(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> ([u8; NONCE_BYTES], Vec<u8>) {
    let nonce = random::<NONCE_BYTES>();
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad })
        .expect("AES-GCM encrypts any message under 64 GiB");
    (nonce, sealed)
}

fn open_with(cipher: &Aes256Gcm, nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    if nonce.len() != NONCE_BYTES {
        return Err(VaultError::Corrupt);
    }
    cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad }).map_err(|_| VaultError::Corrupt)
}

/// What a credentials ciphertext is bound to: its listing and its key, so a ciphertext copied
/// onto another listing does not open.
fn credentials_aad(listing_id: Uuid, key_id: Uuid) -> Vec<u8> {
    [listing_id.as_bytes().as_slice(), key_id.as_bytes().as_slice()].concat()
}

impl Vault {
    /// A vault over `data_keys` in `pool`'s database, with a 32-byte master key.
    pub fn new(pool: Pool, master_key: &[u8; 32]) -> Vault {
        let master_id = Sha256::new().chain_update(b"bozor master key id\0").chain_update(master_key).finalize();
        Vault {
            pool,
            master: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(master_key)),
            master_id: master_id[..8].to_vec(),
        }
    }

    /// Seals `credentials` for `listing_id` under the listing's data key, creating the key on
    /// first use. Fails when the database does.
    pub async fn seal(&self, listing_id: Uuid, credentials: &Credentials) -> Result<SealedCredentials, VaultError> {
        let (key_id, key) = self.data_key(listing_id).await?;
        let plaintext = serde_json::to_vec(credentials).expect("credentials serialize");
        let (nonce, ciphertext) = seal_with(&key, &plaintext, &credentials_aad(listing_id, key_id));
        Ok(SealedCredentials { key_id, nonce: B64.encode(nonce), ciphertext: B64.encode(ciphertext) })
    }

    /// Opens sealed credentials of `listing_id`. Fails with `KeyShredded` once the key is gone.
    pub async fn open(&self, listing_id: Uuid, sealed: &SealedCredentials) -> Result<Credentials, VaultError> {
        let key = self.unwrap_key(sealed.key_id).await?;
        let nonce = B64.decode(&sealed.nonce).map_err(|_| VaultError::Corrupt)?;
        let ciphertext = B64.decode(&sealed.ciphertext).map_err(|_| VaultError::Corrupt)?;
        let plaintext = open_with(&key, &nonce, &ciphertext, &credentials_aad(listing_id, sealed.key_id))?;
        serde_json::from_slice(&plaintext).map_err(|_| VaultError::Corrupt)
    }

    /// Deletes `listing_id`'s data key: its credentials become unreadable for good.
    /// Returns whether a key was deleted. Fails when the database does.
    pub async fn shred(&self, listing_id: Uuid) -> Result<bool, VaultError> {
        let client = self.pool.get().await.map_err(db)?;
        let n = client.execute("DELETE FROM data_keys WHERE listing_id = $1", &[&listing_id]).await.map_err(db)?;
        Ok(n > 0)
    }

    /// The listing's data key, created (and wrapped) if it has none, in one round trip. Two
    /// concurrent first uses agree: the second insert yields to the first's row. (A key is
    /// drawn and wrapped on every call: one AES block operation, cheaper than a second trip.)
    async fn data_key(&self, listing_id: Uuid) -> Result<(Uuid, Aes256Gcm), VaultError> {
        let client = self.pool.get().await.map_err(db)?;
        let key_id = Uuid::new_v4();
        let (nonce, wrapped) = seal_with(&self.master, &random::<32>(), key_id.as_bytes());
        let stored = [nonce.as_slice(), &wrapped].concat();
        // The inserted row is not visible to the statement's own SELECT: exactly one row comes
        // back, the new key or the one the listing had.
        let row = client
            .query_one(
                "WITH made AS (INSERT INTO data_keys (key_id, listing_id, master_key_id, wrapped)
                               VALUES ($1, $2, $3, $4) ON CONFLICT (listing_id) DO NOTHING
                               RETURNING key_id, master_key_id, wrapped)
                 SELECT key_id, master_key_id, wrapped FROM made
                 UNION ALL SELECT key_id, master_key_id, wrapped FROM data_keys WHERE listing_id = $2",
                &[&key_id, &listing_id, &self.master_id, &stored],
            )
            .await
            .map_err(db)?;
        let key_id: Uuid = row.get(0);
        Ok((key_id, self.unwrap_row(key_id, row.get(1), row.get(2))?))
    }

    async fn unwrap_key(&self, key_id: Uuid) -> Result<Aes256Gcm, VaultError> {
        let client = self.pool.get().await.map_err(db)?;
        let row = client
            .query_opt("SELECT master_key_id, wrapped FROM data_keys WHERE key_id = $1", &[&key_id])
            .await
            .map_err(db)?
            .ok_or(VaultError::KeyShredded(key_id))?;
        self.unwrap_row(key_id, row.get(0), row.get(1))
    }

    /// Opens a stored data key with the master key. Fails when another master key wrapped it.
    fn unwrap_row(&self, key_id: Uuid, master_id: Vec<u8>, stored: Vec<u8>) -> Result<Aes256Gcm, VaultError> {
        if master_id != self.master_id {
            return Err(VaultError::WrongMasterKey(key_id));
        }
        let (nonce, wrapped) = stored.split_at(NONCE_BYTES.min(stored.len()));
        let raw = open_with(&self.master, nonce, wrapped, key_id.as_bytes())?;
        Ok(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&raw)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_only_with_its_key_nonce_and_binding() {
        let key = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[7u8; 32]));
        let (nonce, sealed) = seal_with(&key, b"login:password", b"listing-a");
        assert!(!sealed.windows(5).any(|w| w == b"login"), "no plaintext in the ciphertext");
        assert_eq!(open_with(&key, &nonce, &sealed, b"listing-a").unwrap(), b"login:password");
        assert!(open_with(&key, &nonce, &sealed, b"listing-b").is_err(), "bound to its listing");
        let other = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&[8u8; 32]));
        assert!(open_with(&other, &nonce, &sealed, b"listing-a").is_err(), "another key fails");
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(open_with(&key, &nonce, &tampered, b"listing-a").is_err(), "tampering is detected");
        let (nonce2, sealed2) = seal_with(&key, b"login:password", b"listing-a");
        assert_ne!((nonce, &sealed), (nonce2, &sealed2), "a fresh nonce each time");
    }

    #[test]
    fn credentials_never_print() {
        let c = Credentials { login: "gamer".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
