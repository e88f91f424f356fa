//! Shared by the state-keeping read models: a row holds its aggregate's folded state, and an
//! event is applied with the domain's own `evolve` (no second copy of the business rules).

use std::collections::BTreeMap;

use bozor_commands::store::StoredEvent;
use bozor_domain::aggregate::{self, Aggregate};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use crate::runtime::ProjectionError;

/// A row's stored state (column `idx`), straight from its JSON into the type without a `Value`
/// in between (a wallet with many holds, a listing with many reservations, is read by every
/// batch that touches it). One that does not decode is decoded again through a `Value`, for
/// serde's own error.
pub fn stored<S: serde::de::DeserializeOwned>(row: &tokio_postgres::Row, idx: usize) -> Result<S, ProjectionError> {
    match row.try_get::<_, tokio_postgres::types::Json<S>>(idx) {
        Ok(json) => Ok(json.0),
        Err(_) => Ok(serde_json::from_value(row.try_get(idx)?)?),
    }
}

/// Decodes `e`, loads the row's state with `select` (one `$1` id parameter, row locked), and
/// returns the state after the event together with the event.
pub async fn fold<A: Aggregate>(
    tx: &Transaction<'_>,
    select: &str,
    e: &StoredEvent,
) -> Result<(A::State, A::Event), ProjectionError> {
    let event: A::Event = aggregate::decode(&e.event_type, e.event_version, e.payload.clone())?;
    let state = match crate::sql::query_opt(tx, select, &[&e.stream_id]).await? {
        Some(row) => stored(&row, 0)?,
        None => A::initial(),
    };
    Ok((A::evolve(state, &event), event))
}

/// A stream's state after the last event of a batch that touched it, with that event.
pub struct Last<'e, S> {
    pub state: S,
    pub event: &'e StoredEvent,
}

/// `fold` for a whole batch in one read. `select` takes the batch's stream ids as `$1`
/// (`uuid[]`) and returns `(id, state)` rows, locked; they are locked in id order, so two
/// writers of overlapping batches cannot deadlock. `each` sees every event (in the batch's
/// order) with its stream's state right after it, and may return something to keep. Returns
/// what `each` kept, and each stream's state after its last event in the batch.
pub async fn fold_batch<'e, A: Aggregate, T>(
    tx: &Transaction<'_>,
    select: &str,
    events: &[&'e StoredEvent],
    mut each: impl FnMut(&'e StoredEvent, &A::Event, &A::State) -> Result<Option<T>, ProjectionError>,
) -> Result<(Vec<T>, BTreeMap<Uuid, Last<'e, A::State>>), ProjectionError> {
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.stream_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut loaded: BTreeMap<Uuid, A::State> = BTreeMap::new();
    for row in crate::sql::query(tx, select, &[&ids]).await? {
        loaded.insert(row.get(0), stored(&row, 1)?);
    }
    let mut last: BTreeMap<Uuid, Last<'e, A::State>> = BTreeMap::new();
    let mut kept = Vec::new();
    for e in events {
        let event: A::Event = aggregate::decode(&e.event_type, e.event_version, e.payload.clone())?;
        let before = match last.remove(&e.stream_id) {
            Some(l) => l.state,
            None => loaded.remove(&e.stream_id).unwrap_or_else(A::initial),
        };
        let state = A::evolve(before, &event);
        if let Some(t) = each(e, &event, &state)? {
            kept.push(t);
        }
        last.insert(e.stream_id, Last { state, event: e });
    }
    Ok((kept, last))
}
