//! The read side: a projector runtime that feeds projections from the event store in tail
//! order or from Kafka, and the PostgreSQL read models with their queries.
//!
//! A projection applies an event and records, in the same transaction, the stream version it
//! applied and its checkpoint; a redelivered event is skipped, so replays change nothing.

pub mod fold;
pub mod kafka;
pub mod listings;
pub mod orders;
pub mod payments;
pub mod query;
pub mod rebuild;
pub mod runtime;
pub mod sql;
pub mod timers;
pub mod users;
pub mod wallets;

pub use runtime::{Projection, ProjectionError, Projector};

use std::sync::Arc;

/// Every read model's projection.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(listings::ListingsProjection),
        Arc::new(orders::OrdersProjection),
        Arc::new(wallets::WalletsProjection),
        Arc::new(users::UsersProjection),
        Arc::new(payments::PaymentsProjection),
    ]
}

/// The projection called `name`.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

/// Where a projection is, for admins.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ProjectionStatus)]
pub struct Status {
    pub name: String,
    pub version: i32,
    /// `store` (the event store's tail), `kafka` (a consumer group) or `search` (the
    /// Meilisearch sync, fed by the search projection's changes; its position is a change `seq`).
    pub feed: String,
    pub position: i64,
    pub events: i64,
    pub state: String,
    pub last_error: Option<String>,
    /// Fed from the store: events written after its checkpoint (counted up to
    /// `LAG_COUNT_MAX`). From Kafka: messages in its partitions not yet taken, as its consumer
    /// last saw them.
    pub lag_events: i64,
    /// Fed from the store: age of the oldest event it has not applied yet. From Kafka: age of
    /// the oldest event in the last batch it applied (0 once its consumer finds no lag).
    pub lag_seconds: f64,
}

/// Lag counts stop here, so the status query stays cheap when a projection is far behind.
pub const LAG_COUNT_MAX: i64 = 100_000;

/// Every projection's status.
pub async fn status(client: &tokio_postgres::Client) -> Result<Vec<Status>, ProjectionError> {
    let (lag_events, lag_seconds) = bozor_commands::store::lag_sql("c");
    let sql = format!(
        "SELECT c.projection, c.version, c.position, c.events, c.state, c.last_error,
                CASE WHEN c.feed <> 'store' THEN c.kafka_lag_events ELSE {lag_events} END,
                CASE WHEN c.feed <> 'store' THEN c.kafka_lag_seconds ELSE {lag_seconds} END,
                c.feed
         FROM projection_checkpoints c ORDER BY c.projection"
    );
    let rows = client.query(&sql, &[&LAG_COUNT_MAX]).await?;
    Ok(rows
        .iter()
        .map(|r| Status {
            name: r.get(0),
            version: r.get(1),
            position: r.get(2),
            events: r.get(3),
            state: r.get(4),
            last_error: r.get(5),
            lag_events: r.get(6),
            lag_seconds: r.get(7),
            feed: r.get(8),
        })
        .collect())
}
