//! The wallets read model: balances, one ledger line per money-moving event, withdrawals and
//! their state, and the platform's own accounts summed over their shards.

use bozor_commands::store::StoredEvent;
use bozor_domain::wallet::{self, Owner, PlatformAccount, Reason, WalletAggregate};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use uuid::Uuid;

use crate::fold::fold_batch;
use crate::query::{micros_to_time, ListQuery};
use crate::runtime::{BoxFuture, Projection, ProjectionError};

/// The wallets projection.
pub struct WalletsProjection;

impl Projection for WalletsProjection {
    fn name(&self) -> &'static str {
        "wallets"
    }

    fn version(&self) -> i32 {
        // 2: the `version` column and `withdrawals_view`. 3: `card_holder`, provider payments.
        3
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["wallet"]
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply_batch(tx, events))
    }
}

/// What an event of an open wallet adds besides its new balance: a ledger line when it moves
/// money, and a withdrawal's change when it holds, captures or releases a user's money.
struct Effect<'e> {
    wallet_id: Uuid,
    e: &'e StoredEvent,
    posting: Option<wallet::Posting>,
    withdrawal: Option<(Uuid, wallet::Event)>,
}

/// A batch in a few statements: the wallets' states read at once, each wallet's balance
/// written once, every ledger line in one insert (withdrawals, rare, one by one).
async fn apply_batch(tx: &Transaction<'_>, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
    let (effects, last) = fold_batch::<WalletAggregate, _>(
        tx,
        "SELECT wallet_id, state FROM wallets_view WHERE wallet_id = ANY($1) ORDER BY wallet_id FOR UPDATE",
        events,
        |e, event, state| {
            let wallet::State::Open(w) = state else { return Ok(None) };
            let withdrawal = match (w.owner, event) {
                (
                    Owner::User { user_id },
                    wallet::Event::FundsHeld { reason: Reason::Withdrawal { .. }, .. }
                    | wallet::Event::HoldCaptured { .. }
                    | wallet::Event::HoldReleased { .. },
                ) => Some((user_id, event.clone())),
                _ => None,
            };
            Ok(Some(Effect { wallet_id: w.id, e, posting: event.posting(), withdrawal }))
        },
    )
    .await?;
    let mut ledger = LedgerColumns::default();
    for effect in effects {
        if let Some(posting) = &effect.posting {
            ledger.push(effect.wallet_id, posting, effect.e);
        }
        if let Some((user_id, event)) = &effect.withdrawal {
            apply_withdrawal(tx, *user_id, event, effect.e.recorded_at).await?;
        }
    }
    if !ledger.wallet_id.is_empty() {
        crate::sql::execute(tx,
            "INSERT INTO wallet_ledger (wallet_id, version, journal_id, event_type, available, held, detail, at, position)
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $4::text[], $5::bigint[], $6::bigint[],
                                  $7::jsonb[], $8::timestamptz[], $9::bigint[])",
            &[
                &ledger.wallet_id,
                &ledger.version,
                &ledger.journal_id,
                &ledger.event_type,
                &ledger.available,
                &ledger.held,
                &ledger.detail,
                &ledger.at,
                &ledger.position,
            ],
        )
        .await?;
    }
    let mut w = WalletColumns::default();
    for (id, l) in &last {
        let wallet::State::Open(open) = &l.state else { continue };
        let (user_id, account) = match open.owner {
            Owner::User { user_id } => (Some(user_id), None),
            Owner::Platform { account, .. } => (None, Some(account.name().to_owned())),
        };
        w.wallet_id.push(*id);
        w.user_id.push(user_id);
        w.account.push(account);
        w.available.push(open.available);
        w.held.push(open.held);
        w.updated_at.push(l.event.recorded_at);
        w.state.push(tokio_postgres::types::Json(&l.state));
        w.version.push(l.event.version);
    }
    if !w.wallet_id.is_empty() {
        crate::sql::execute(
            tx,
            "INSERT INTO wallets_view (wallet_id, user_id, account, available, held, updated_at, state, version)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[],
                                  $7::jsonb[], $8::bigint[])
             ON CONFLICT (wallet_id) DO UPDATE SET available = excluded.available, held = excluded.held,
                 updated_at = excluded.updated_at, state = excluded.state, version = excluded.version",
            &[&w.wallet_id, &w.user_id, &w.account, &w.available, &w.held, &w.updated_at, &w.state, &w.version],
        )
        .await?;
    }
    Ok(())
}

/// Ledger lines, a column each.
#[derive(Default)]
struct LedgerColumns {
    wallet_id: Vec<Uuid>,
    version: Vec<i64>,
    journal_id: Vec<Uuid>,
    event_type: Vec<String>,
    available: Vec<i64>,
    held: Vec<i64>,
    detail: Vec<serde_json::Value>,
    at: Vec<DateTime<Utc>>,
    position: Vec<i64>,
}

impl LedgerColumns {
    fn push(&mut self, wallet_id: Uuid, p: &wallet::Posting, e: &StoredEvent) {
        self.wallet_id.push(wallet_id);
        self.version.push(e.version);
        self.journal_id.push(p.journal_id);
        self.event_type.push(e.event_type.clone());
        self.available.push(p.available);
        self.held.push(p.held);
        self.detail.push(e.payload.clone());
        self.at.push(e.recorded_at);
        self.position.push(e.global_position);
    }
}

/// Wallet rows, a column each.
#[derive(Default)]
struct WalletColumns<'a> {
    wallet_id: Vec<Uuid>,
    user_id: Vec<Option<Uuid>>,
    account: Vec<Option<String>>,
    available: Vec<i64>,
    held: Vec<i64>,
    updated_at: Vec<DateTime<Utc>>,
    state: Vec<tokio_postgres::types::Json<&'a wallet::State>>,
    version: Vec<i64>,
}

/// A withdrawal is requested by a hold with reason `withdrawal`, paid out when its hold is
/// captured and failed when its hold is released (escrow holds match no withdrawal row).
async fn apply_withdrawal(
    tx: &Transaction<'_>,
    user_id: Uuid,
    event: &wallet::Event,
    at: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    match event {
        wallet::Event::FundsHeld {
            hold_id, amount, reason: Reason::Withdrawal { card_mask, card_holder, .. }, ..
        } => {
            tx.execute(
                // A wallet stored before ids were refused for reuse may reuse one: the later
                // withdrawal replaces the earlier row rather than stopping the projection.
                "INSERT INTO withdrawals_view (withdrawal_id, user_id, amount, card_mask, card_holder, status, requested_at)
                 VALUES ($1, $2, $3, $4, $5, 'pending', $6)
                 ON CONFLICT (user_id, withdrawal_id) DO UPDATE SET amount = excluded.amount,
                     card_mask = excluded.card_mask, card_holder = excluded.card_holder, status = 'pending',
                     requested_at = excluded.requested_at, finished_at = NULL",
                &[hold_id, &user_id, &amount.tiyin(), card_mask, card_holder, &at],
            )
            .await?;
        }
        wallet::Event::HoldCaptured { hold_id, .. } | wallet::Event::HoldReleased { hold_id, .. } => {
            let status = if matches!(event, wallet::Event::HoldCaptured { .. }) { "completed" } else { "failed" };
            crate::sql::execute(
                tx,
                "UPDATE withdrawals_view SET status = $2, finished_at = $3 WHERE withdrawal_id = $1 AND user_id = $4",
                &[hold_id, &status, &at, &user_id],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// A wallet's balances.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Balance {
    pub wallet_id: Uuid,
    pub available: i64,
    pub held: i64,
    pub updated_at: Option<DateTime<Utc>>,
    /// The wallet stream's version (0 for a wallet never opened).
    pub version: i64,
}

/// A user's balances (zero for a wallet that never received money).
pub async fn balance(client: &tokio_postgres::Client, user_id: Uuid) -> Result<Balance, ProjectionError> {
    let wallet_id = wallet::user_wallet_id(user_id);
    let row = client
        .query_opt("SELECT available, held, updated_at, version FROM wallets_view WHERE wallet_id = $1", &[&wallet_id])
        .await?;
    Ok(match row {
        Some(r) => Balance { wallet_id, available: r.get(0), held: r.get(1), updated_at: r.get(2), version: r.get(3) },
        None => Balance { wallet_id, available: 0, held: 0, updated_at: None, version: 0 },
    })
}

/// A withdrawal and where it stands.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Withdrawal {
    pub id: Uuid,
    pub user_id: Uuid,
    pub amount: i64,
    /// First six and last four digits (older withdrawals: `**** 1234`).
    pub card_mask: String,
    pub card_holder: Option<String>,
    /// `pending`, `completed` or `failed`.
    pub status: String,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Withdrawals of one user (or of everyone, for staff), newest first, after the cursor
/// (requested_at micros, id) if given.
pub async fn withdrawals(
    client: &deadpool_postgres::Client,
    user_id: Option<Uuid>,
    status: Option<&str>,
    after: Option<(i64, Uuid)>,
    limit: i64,
) -> Result<(Vec<Withdrawal>, Option<(i64, Uuid)>), ProjectionError> {
    let q = withdrawals_query(user_id, status, after, limit);
    let stmt = client.prepare_cached(&q.sql).await?;
    let rows = client.query(&stmt, &q.refs()).await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<Withdrawal> = rows
        .iter()
        .take(limit as usize)
        .map(|r| Withdrawal {
            id: r.get(0),
            amount: r.get(1),
            card_mask: r.get(2),
            status: r.get(3),
            requested_at: r.get(4),
            finished_at: r.get(5),
            user_id: r.get(6),
            card_holder: r.get(7),
        })
        .collect();
    let next = if more {
        rows.get(limit as usize - 1).map(|r| (r.get::<_, DateTime<Utc>>(4).timestamp_micros(), r.get(0)))
    } else {
        None
    };
    Ok((items, next))
}

/// The query of one page of withdrawals (indexes `withdrawals_view_user`, `withdrawals_view_status`,
/// `withdrawals_view_requested`).
pub fn withdrawals_query(
    user_id: Option<Uuid>,
    status: Option<&str>,
    after: Option<(i64, Uuid)>,
    limit: i64,
) -> ListQuery {
    let mut q = ListQuery { sql: String::new(), params: Vec::new() };
    let mut clauses = vec!["true".to_owned()];
    if let Some(user_id) = user_id {
        clauses.push(format!("user_id = {}", q.bind(user_id)));
    }
    if let Some(s) = status {
        clauses.push(format!("status = {}", q.bind(s.to_owned())));
    }
    if let Some((k, id)) = after {
        let (key, id) = (q.bind(micros_to_time(k)), q.bind(id));
        clauses.push(format!("(requested_at, withdrawal_id) < ({key}, {id})"));
    }
    let limit = q.bind(limit + 1);
    q.sql = format!(
        "SELECT withdrawal_id, amount, card_mask, status, requested_at, finished_at, user_id, card_holder
         FROM withdrawals_view
         WHERE {} ORDER BY requested_at DESC, withdrawal_id DESC LIMIT {limit}",
        clauses.join(" AND ")
    );
    q
}

/// One of the platform's own accounts, summed over its shards.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlatformBalance {
    /// `platform:revenue`, `platform:provider_clearing` or `platform:payout_clearing`.
    pub account: &'static str,
    pub available: i64,
    pub held: i64,
    /// Shards that have moved money.
    pub shards: i64,
}

/// Every platform account (zero for one that has not moved money yet). Each shard's balance
/// is at most 10^17 either way, so the sums of 16 fit an i64.
pub async fn platform_accounts(client: &tokio_postgres::Client) -> Result<Vec<PlatformBalance>, ProjectionError> {
    let rows = client
        .query(
            "SELECT account, sum(available)::bigint, sum(held)::bigint, count(*) FROM wallets_view
             WHERE account IS NOT NULL GROUP BY account",
            &[],
        )
        .await?;
    Ok(PlatformAccount::ALL
        .iter()
        .map(|a| {
            let row = rows.iter().find(|r| r.get::<_, &str>(0) == a.name());
            PlatformBalance {
                account: a.name(),
                available: row.map_or(0, |r| r.get(1)),
                held: row.map_or(0, |r| r.get(2)),
                shards: row.map_or(0, |r| r.get(3)),
            }
        })
        .collect())
}

/// One line of a statement.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = LedgerLine)]
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
    client: &deadpool_postgres::Client,
    user_id: Uuid,
    before_version: Option<i64>,
    limit: i64,
) -> Result<(Vec<Line>, Option<i64>), ProjectionError> {
    let q = ledger_query(user_id, before_version, limit);
    let stmt = client.prepare_cached(&q.sql).await?;
    let rows = client.query(&stmt, &q.refs()).await?;
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

/// The query of one page of a user's ledger lines, newest first (the primary key walks).
pub fn ledger_query(user_id: Uuid, before_version: Option<i64>, limit: i64) -> ListQuery {
    let mut q = ListQuery { sql: String::new(), params: Vec::new() };
    let wallet = q.bind(wallet::user_wallet_id(user_id));
    let before = q.bind(before_version.unwrap_or(i64::MAX));
    let limit = q.bind(limit + 1);
    q.sql = format!(
        "SELECT version, journal_id, event_type, available, held, detail, at FROM wallet_ledger
         WHERE wallet_id = {wallet} AND version < {before} ORDER BY version DESC LIMIT {limit}"
    );
    q
}
