//! The payments read model: one row per provider payment (Payme, Click), for Payme's
//! GetStatement and for finance staff reconciling a provider's report with bozor's journal.

use bozor_commands::store::StoredEvent;
use bozor_domain::payment::{self, PaymentAggregate, Target};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use uuid::Uuid;

use crate::fold::fold_batch;
use crate::query::{micros_to_time, ListQuery};
use crate::runtime::{BoxFuture, Projection, ProjectionError};

/// Most payments one GetStatement answer lists: Payme asks for a day or so at a time, and has
/// no paging. A range holding more is answered with the first ones (and a warning logged).
pub const STATEMENT_ROWS_MAX: i64 = 10_000;

/// The payments projection.
pub struct PaymentsProjection;

impl Projection for PaymentsProjection {
    fn name(&self) -> &'static str {
        "payments"
    }

    fn version(&self) -> i32 {
        1
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["payment"]
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply_batch(tx, events))
    }
}

/// A batch in two statements: the payments' states read at once, each payment's row written
/// once.
async fn apply_batch(tx: &Transaction<'_>, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
    let (_, last) = fold_batch::<PaymentAggregate, ()>(
        tx,
        "SELECT payment_id, state FROM payments_view WHERE payment_id = ANY($1) ORDER BY payment_id FOR UPDATE",
        events,
        |_, _, _| Ok(None),
    )
    .await?;
    let mut c = Columns::default();
    for l in last.values() {
        let payment::State::Exists(p) = &l.state else { continue };
        c.id.push(p.id);
        c.provider.push(p.provider.name());
        c.provider_tx_id.push(p.provider_tx_id.clone());
        c.target_kind.push(match p.target {
            Target::Wallet { .. } => "wallet",
            Target::Order { .. } => "order",
        });
        c.target_id.push(p.target.id());
        c.amount.push(p.amount.tiyin());
        c.status.push(p.status.name());
        c.cancel_reason.push(p.cancel_reason.map(i32::from));
        c.provider_time_ms.push(p.provider_time_ms);
        c.created_at.push(p.created_at);
        c.performed_at.push(p.performed_at);
        c.cancelled_at.push(p.cancelled_at);
        c.journals.push(serde_json::to_value(&p.journals)?);
        c.version.push(l.event.version);
        c.state.push(tokio_postgres::types::Json(&l.state));
    }
    if c.id.is_empty() {
        return Ok(());
    }
    crate::sql::execute(tx,
        "INSERT INTO payments_view (payment_id, provider, provider_tx_id, target_kind, target_id, amount, status,
             cancel_reason, provider_time_ms, created_at, performed_at, cancelled_at, journals, version, state)
         SELECT t.id, t.provider, t.provider_tx_id, t.target_kind, t.target_id, t.amount, t.status, t.cancel_reason,
                t.provider_time_ms, t.created_at, t.performed_at, t.cancelled_at,
                ARRAY(SELECT j FROM jsonb_array_elements_text(t.journals) WITH ORDINALITY AS a(j, n) ORDER BY n)::uuid[], t.version, t.state
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[], $6::bigint[], $7::text[],
                     $8::int[], $9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
                     $13::jsonb[], $14::bigint[], $15::jsonb[])
              AS t(id, provider, provider_tx_id, target_kind, target_id, amount, status, cancel_reason,
                   provider_time_ms, created_at, performed_at, cancelled_at, journals, version, state)
         ON CONFLICT (payment_id) DO UPDATE SET status = excluded.status, cancel_reason = excluded.cancel_reason,
             performed_at = excluded.performed_at, cancelled_at = excluded.cancelled_at,
             journals = excluded.journals, version = excluded.version, state = excluded.state",
        &[
            &c.id,
            &c.provider,
            &c.provider_tx_id,
            &c.target_kind,
            &c.target_id,
            &c.amount,
            &c.status,
            &c.cancel_reason,
            &c.provider_time_ms,
            &c.created_at,
            &c.performed_at,
            &c.cancelled_at,
            &c.journals,
            &c.version,
            &c.state,
        ],
    )
    .await?;
    Ok(())
}

/// Payment rows, a column each.
#[derive(Default)]
struct Columns<'a> {
    id: Vec<Uuid>,
    provider: Vec<&'static str>,
    provider_tx_id: Vec<String>,
    target_kind: Vec<&'static str>,
    target_id: Vec<Uuid>,
    amount: Vec<i64>,
    status: Vec<&'static str>,
    cancel_reason: Vec<Option<i32>>,
    provider_time_ms: Vec<i64>,
    created_at: Vec<DateTime<Utc>>,
    performed_at: Vec<Option<DateTime<Utc>>>,
    cancelled_at: Vec<Option<DateTime<Utc>>>,
    /// Each payment's journal ids as a JSON array (an array column cannot be unnested whole).
    journals: Vec<serde_json::Value>,
    version: Vec<i64>,
    state: Vec<tokio_postgres::types::Json<&'a payment::State>>,
}

/// Payme's transactions whose own time is in `[from_ms, to_ms]`, oldest first (at most
/// `STATEMENT_ROWS_MAX`).
pub async fn statement(
    client: &tokio_postgres::Client,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<payment::Payment>, ProjectionError> {
    let rows = client
        .query(
            "SELECT state FROM payments_view WHERE provider = 'payme' AND provider_time_ms BETWEEN $1 AND $2
             ORDER BY provider_time_ms, payment_id LIMIT $3",
            &[&from_ms, &to_ms, &STATEMENT_ROWS_MAX],
        )
        .await?;
    if rows.len() as i64 == STATEMENT_ROWS_MAX {
        tracing::warn!(from_ms, to_ms, "GetStatement range holds more payments than one answer lists");
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        if let payment::State::Exists(p) = serde_json::from_value(r.get(0))? {
            out.push(*p);
        }
    }
    Ok(out)
}

/// One wallet line a payment's journal wrote.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JournalLine {
    pub journal_id: Uuid,
    pub wallet_id: Uuid,
    /// The user whose wallet it is, or the platform account (`platform:provider_clearing`).
    pub user_id: Option<Uuid>,
    pub account: Option<String>,
    pub event_type: String,
    /// Signed change of the available balance, tiyin.
    pub available: i64,
    /// Signed change of the held balance, tiyin.
    pub held: i64,
    pub at: DateTime<Utc>,
}

/// A provider payment with the journal lines it produced.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProviderTransaction {
    pub payment_id: Uuid,
    pub provider: String,
    pub provider_tx_id: String,
    /// `wallet` (a top-up; `target_id` is the user) or `order`.
    pub target_kind: String,
    pub target_id: Uuid,
    pub amount: i64,
    /// `created`, `performed`, `cancelled` or `refunded`.
    pub status: String,
    pub cancel_reason: Option<i32>,
    pub provider_time_ms: i64,
    pub created_at: DateTime<Utc>,
    pub performed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub journal: Vec<JournalLine>,
}

/// A reconciliation page's filter: provider, and bozor's creation time in `[from, to)`.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub provider: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// After this (created_at micros, payment id), oldest first.
    pub after: Option<(i64, Uuid)>,
}

/// The query of one page of payments (index `payments_view_created`).
pub fn transactions_query(f: &TransactionFilter, limit: i64) -> ListQuery {
    let mut q = ListQuery { sql: String::new(), params: Vec::new() };
    let mut clauses = vec!["true".to_owned()];
    if let Some(p) = &f.provider {
        clauses.push(format!("provider = {}", q.bind(p.clone())));
    }
    if let Some(from) = f.from {
        clauses.push(format!("created_at >= {}", q.bind(from)));
    }
    if let Some(to) = f.to {
        clauses.push(format!("created_at < {}", q.bind(to)));
    }
    if let Some((k, id)) = f.after {
        let (key, id) = (q.bind(micros_to_time(k)), q.bind(id));
        clauses.push(format!("(created_at, payment_id) > ({key}, {id})"));
    }
    let limit = q.bind(limit + 1);
    q.sql = format!(
        "SELECT payment_id, provider, provider_tx_id, target_kind, target_id, amount, status, cancel_reason,
                provider_time_ms, created_at, performed_at, cancelled_at, journals
         FROM payments_view WHERE {} ORDER BY created_at, payment_id LIMIT {limit}",
        clauses.join(" AND ")
    );
    q
}

/// One page of payments with their journal lines, and the cursor of the next page.
pub async fn transactions(
    client: &deadpool_postgres::Client,
    filter: &TransactionFilter,
    limit: i64,
) -> Result<(Vec<ProviderTransaction>, Option<(i64, Uuid)>), ProjectionError> {
    let q = transactions_query(filter, limit);
    let stmt = client.prepare_cached(&q.sql).await?;
    let rows = client.query(&stmt, &q.refs()).await?;
    let more = rows.len() as i64 > limit;
    let mut items: Vec<ProviderTransaction> = rows
        .iter()
        .take(limit as usize)
        .map(|r| ProviderTransaction {
            payment_id: r.get(0),
            provider: r.get(1),
            provider_tx_id: r.get(2),
            target_kind: r.get(3),
            target_id: r.get(4),
            amount: r.get(5),
            status: r.get(6),
            cancel_reason: r.get(7),
            provider_time_ms: r.get(8),
            created_at: r.get(9),
            performed_at: r.get(10),
            cancelled_at: r.get(11),
            journal: vec![],
        })
        .collect();
    let journals: Vec<Uuid> = rows.iter().take(limit as usize).flat_map(|r| r.get::<_, Vec<Uuid>>(12)).collect();
    let lines = client
        .query(
            "SELECT l.journal_id, l.wallet_id, w.user_id, w.account, l.event_type, l.available, l.held, l.at
             FROM wallet_ledger l LEFT JOIN wallets_view w ON w.wallet_id = l.wallet_id
             WHERE l.journal_id = ANY($1) ORDER BY l.position, l.wallet_id",
            &[&journals],
        )
        .await?;
    for (item, row) in items.iter_mut().zip(rows.iter()) {
        let mine: Vec<Uuid> = row.get(12);
        item.journal = lines
            .iter()
            .filter(|l| mine.contains(&l.get::<_, Uuid>(0)))
            .map(|l| JournalLine {
                journal_id: l.get(0),
                wallet_id: l.get(1),
                user_id: l.get(2),
                account: l.get(3),
                event_type: l.get(4),
                available: l.get(5),
                held: l.get(6),
                at: l.get(7),
            })
            .collect();
    }
    let next = if more { items.last().map(|t| (t.created_at.timestamp_micros(), t.payment_id)) } else { None };
    Ok((items, next))
}
