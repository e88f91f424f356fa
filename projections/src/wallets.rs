//! The wallets read model: balances, and one ledger line per money-moving event.

use bozor_commands::store::StoredEvent;
use bozor_domain::wallet::{self, Owner, WalletAggregate};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use uuid::Uuid;

use crate::fold::fold;
use crate::runtime::{BoxFuture, Projection, ProjectionError};

/// The wallets projection.
pub struct WalletsProjection;

impl Projection for WalletsProjection {
    fn name(&self) -> &'static str {
        "wallets"
    }

    fn version(&self) -> i32 {
        1
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["wallet"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply(tx, event))
    }
}

async fn apply(tx: &Transaction<'_>, e: &StoredEvent) -> Result<(), ProjectionError> {
    let (state, event) =
        fold::<WalletAggregate>(tx, "SELECT state FROM wallets_view WHERE wallet_id = $1 FOR UPDATE", e).await?;
    let wallet::State::Open(w) = &state else { return Ok(()) };
    let (user_id, account) = match w.owner {
        Owner::User { user_id } => (Some(user_id), None),
        Owner::Platform { account, .. } => (None, Some(account.name())),
    };
    tx.execute(
        "INSERT INTO wallets_view (wallet_id, user_id, account, available, held, updated_at, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (wallet_id) DO UPDATE SET available = excluded.available, held = excluded.held,
             updated_at = excluded.updated_at, state = excluded.state",
        &[&w.id, &user_id, &account, &w.available, &w.held, &e.recorded_at, &serde_json::to_value(&state)?],
    )
    .await?;
    if let Some(p) = event.posting() {
        tx.execute(
            "INSERT INTO wallet_ledger (wallet_id, version, journal_id, event_type, available, held, detail, at, position)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&w.id, &e.version, &p.journal_id, &e.event_type, &p.available, &p.held, &e.payload, &e.recorded_at, &e.global_position],
        )
        .await?;
    }
    Ok(())
}

/// A wallet's balances.
#[derive(Debug, Clone, Serialize)]
pub struct Balance {
    pub wallet_id: Uuid,
    pub available: i64,
    pub held: i64,
    pub updated_at: Option<DateTime<Utc>>,
}

/// A user's balances (zero for a wallet that never received money).
pub async fn balance(client: &tokio_postgres::Client, user_id: Uuid) -> Result<Balance, ProjectionError> {
    let wallet_id = wallet::user_wallet_id(user_id);
    let row = client
        .query_opt("SELECT available, held, updated_at FROM wallets_view WHERE wallet_id = $1", &[&wallet_id])
        .await?;
    Ok(match row {
        Some(r) => Balance { wallet_id, available: r.get(0), held: r.get(1), updated_at: r.get(2) },
        None => Balance { wallet_id, available: 0, held: 0, updated_at: None },
    })
}

/// One line of a statement.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub version: i64,
    pub journal_id: Uuid,
    pub event_type: String,
    pub available: i64,
    pub held: i64,
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

/// A user's ledger lines, newest first, before `before_version` if given.
pub async fn ledger(
    client: &tokio_postgres::Client,
    user_id: Uuid,
    before_version: Option<i64>,
    limit: i64,
) -> Result<(Vec<Line>, Option<i64>), ProjectionError> {
    let wallet_id = wallet::user_wallet_id(user_id);
    let rows = client
        .query(
            "SELECT version, journal_id, event_type, available, held, detail, at FROM wallet_ledger
             WHERE wallet_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
            &[&wallet_id, &before_version.unwrap_or(i64::MAX), &(limit + 1)],
        )
        .await?;
    let more = rows.len() as i64 > limit;
    let lines: Vec<Line> = rows
        .iter()
        .take(limit as usize)
        .map(|r| Line {
            version: r.get(0),
            journal_id: r.get(1),
            event_type: r.get(2),
            available: r.get(3),
            held: r.get(4),
            detail: r.get(5),
            at: r.get(6),
        })
        .collect();
    let next = if more { lines.last().map(|l| l.version) } else { None };
    Ok((lines, next))
}
