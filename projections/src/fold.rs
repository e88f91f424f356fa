//! Shared by the state-keeping read models: a row holds its aggregate's folded state, and an
//! event is applied with the domain's own `evolve` (no second copy of the business rules).

use bozor_commands::store::StoredEvent;
use bozor_domain::aggregate::{self, Aggregate};
use deadpool_postgres::Transaction;

use crate::runtime::ProjectionError;

/// Decodes `e`, loads the row's state with `select` (one `$1` id parameter, row locked), and
/// returns the state after the event together with the event.
pub async fn fold<A: Aggregate>(
    tx: &Transaction<'_>,
    select: &str,
    e: &StoredEvent,
) -> Result<(A::State, A::Event), ProjectionError> {
    let event: A::Event = aggregate::decode(&e.event_type, e.event_version, e.payload.clone())?;
    let state = match tx.query_opt(select, &[&e.stream_id]).await? {
        Some(row) => serde_json::from_value(row.get(0))?,
        None => A::initial(),
    };
    Ok((A::evolve(state, &event), event))
}
