//! Applies `bozor_eventstore_schema::MIGRATIONS` that a database has not seen, in order, in one
//! transaction under an advisory lock, so concurrent starts do not race.

use bozor_eventstore_schema::MIGRATIONS;
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// Advisory lock key held while migrating ("bozor" in ASCII).
const MIGRATION_LOCK: i64 = 0x0062_6f7a_6f72;

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A statement failed.
    #[error("migration failed: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// A migration's SQL changed after it was applied to this database.
    #[error("migration {version} was edited after it was applied (hint: add a new migration instead)")]
    Edited { version: i32 },
    /// The database has a migration this binary does not know: it is older than the schema.
    #[error("database has migration {version}, unknown to this binary (hint: run a newer bozor)")]
    Unknown { version: i32 },
}

fn checksum(sql: &str) -> Vec<u8> {
    Sha256::digest(sql.as_bytes()).to_vec()
}

/// Brings the schema up to date. Returns the versions applied now (empty when up to date).
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, MigrateError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            name text NOT NULL,
            checksum bytea NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let rows = tx.query("SELECT version, checksum FROM schema_migrations ORDER BY version", &[]).await?;
    let mut applied = Vec::new();
    for row in &rows {
        let version: i32 = row.get(0);
        let sum: Vec<u8> = row.get(1);
        match MIGRATIONS.iter().find(|m| m.version == version) {
            Some(m) if checksum(m.sql) == sum => {}
            Some(_) => return Err(MigrateError::Edited { version }),
            None => return Err(MigrateError::Unknown { version }),
        }
    }
    for m in MIGRATIONS {
        if rows.iter().any(|r| r.get::<_, i32>(0) == m.version) {
            continue;
        }
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .await?;
        applied.push(m.version);
    }
    tx.commit().await?;
    Ok(applied)
}
