//! The timers projection: durable deadlines derived from events, which the scheduler fires as
//! commands of the system actor.
//!
//! | kind | starts at | due | cancelled by |
//! |---|---|---|---|
//! | `escrow_release` | `EscrowReleaseScheduled` | its `due_at` (24 h after delivery) | suspended, released, refunded, disputed, resolved |
//! | `listing_approval` | `ListingSubmitted` | 48 h after submission | approved, rejected, archived, blocked, deleted |
//! | `order_unpaid` | `OrderPlaced` | placed + `BOZOR_ORDER_UNPAID_TTL` (the scheduler adds it) | paid, cancelled |
//!
//! A cancel only touches a timer still pending: one the scheduler fired stays `fired`.

use bozor_commands::store::StoredEvent;
use bozor_domain::aggregate::decode;
use bozor_domain::{escrow, listing, order};
use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use uuid::Uuid;

use crate::runtime::{one_by_one, BoxFuture, Projection, ProjectionError};

/// The timers projection.
pub struct TimersProjection;

/// Its name.
pub const NAME: &str = "timers";

impl Projection for TimersProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        1
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["listing", "escrow", "order"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["timers"]
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        one_by_one(events, move |e| apply(tx, e))
    }
}

/// What an event does to its stream's timer.
enum Change {
    Start { kind: &'static str, due_at: DateTime<Utc> },
    Cancel { kind: &'static str },
    Nothing,
}

fn change(e: &StoredEvent) -> Result<Change, ProjectionError> {
    let (t, v, p) = (e.event_type.as_str(), e.event_version, e.payload.clone());
    Ok(match e.stream_type.as_str() {
        "escrow" => match decode::<escrow::Event>(t, v, p)? {
            escrow::Event::EscrowReleaseScheduled { due_at } => Change::Start { kind: "escrow_release", due_at },
            escrow::Event::EscrowReleaseSuspended { .. }
            | escrow::Event::EscrowReleased { .. }
            | escrow::Event::EscrowRefunded { .. }
            | escrow::Event::EscrowDisputed { .. }
            | escrow::Event::EscrowResolved { .. } => Change::Cancel { kind: "escrow_release" },
            _ => Change::Nothing,
        },
        "listing" => match decode::<listing::Event>(t, v, p)? {
            listing::Event::ListingSubmitted { at, .. } => Change::Start {
                kind: "listing_approval",
                due_at: at + Duration::hours(listing::AUTO_APPROVE_AFTER_HOURS),
            },
            listing::Event::ListingApproved { .. }
            | listing::Event::ListingRejected { .. }
            | listing::Event::ListingArchived { .. }
            | listing::Event::ListingBlocked { .. }
            | listing::Event::ListingDeleted { .. } => Change::Cancel { kind: "listing_approval" },
            _ => Change::Nothing,
        },
        "order" => match decode::<order::Event>(t, v, p)? {
            order::Event::OrderPlaced { at, .. } => Change::Start { kind: "order_unpaid", due_at: at },
            order::Event::OrderPaid { .. } | order::Event::OrderCancelled { .. } => {
                Change::Cancel { kind: "order_unpaid" }
            }
            _ => Change::Nothing,
        },
        _ => Change::Nothing,
    })
}

async fn apply(tx: &Transaction<'_>, e: &StoredEvent) -> Result<(), ProjectionError> {
    match change(e)? {
        Change::Start { kind, due_at } => {
            crate::sql::execute(tx,
                "INSERT INTO timers (timer_id, kind, stream_id, due_at, state, updated_at)
                 VALUES ($1, $2, $3, $4, 'pending', $5)
                 ON CONFLICT (timer_id) DO UPDATE SET due_at = excluded.due_at, state = 'pending', attempts = 0,
                     next_attempt_at = '-infinity', last_error = NULL, fired_at = NULL, updated_at = excluded.updated_at",
                &[&format!("{kind}:{}", e.stream_id), &kind, &e.stream_id, &due_at, &e.recorded_at],
            )
            .await?;
        }
        Change::Cancel { kind } => {
            crate::sql::execute(
                tx,
                "UPDATE timers SET state = 'cancelled', updated_at = $2 WHERE timer_id = $1 AND state = 'pending'",
                &[&format!("{kind}:{}", e.stream_id), &e.recorded_at],
            )
            .await?;
        }
        Change::Nothing => {}
    }
    Ok(())
}

/// A timer as admins see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Timer {
    pub timer_id: String,
    pub kind: String,
    pub stream_id: Uuid,
    pub due_at: DateTime<Utc>,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub fired_at: Option<DateTime<Utc>>,
}

/// Most timers one admin page lists.
pub const PAGE_LIMIT_MAX: i64 = 100;

/// Timers by state, for admins: `failing` (pending after a failed attempt, newest first),
/// `pending` (soonest first), or `fired`, `cancelled`, `moot` (latest first).
pub async fn list(client: &tokio_postgres::Client, state: &str, limit: i64) -> Result<Vec<Timer>, ProjectionError> {
    let columns = "timer_id, kind, stream_id, due_at, state, attempts,
                   CASE WHEN next_attempt_at = '-infinity' THEN NULL ELSE next_attempt_at END, last_error, fired_at";
    let sql = match state {
        "failing" => format!(
            "SELECT {columns} FROM timers WHERE state = 'pending' AND attempts > 0 ORDER BY updated_at DESC LIMIT $1"
        ),
        "pending" => format!("SELECT {columns} FROM timers WHERE state = 'pending' ORDER BY due_at, timer_id LIMIT $1"),
        _ => format!("SELECT {columns} FROM timers WHERE state = $2 ORDER BY updated_at DESC LIMIT $1"),
    };
    let rows = if matches!(state, "failing" | "pending") {
        client.query(&sql, &[&limit]).await?
    } else {
        client.query(&sql, &[&limit, &state]).await?
    };
    Ok(rows
        .iter()
        .map(|r| Timer {
            timer_id: r.get(0),
            kind: r.get(1),
            stream_id: r.get(2),
            due_at: r.get(3),
            state: r.get(4),
            attempts: r.get(5),
            next_attempt_at: r.get(6),
            last_error: r.get(7),
            fired_at: r.get(8),
        })
        .collect())
}
