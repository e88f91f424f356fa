//! The event store client: atomic multi-stream appends with expected versions and the hash
//! chain, stream loads from the latest snapshot, a gap-safe tail, and idempotency records.

use std::marker::PhantomData;

use bozor_domain::aggregate::{self, Aggregate, DecodeError};
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde_json::Value;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::hash::{event_hash, to_micros, HashInput, GENESIS};

/// Largest page a tail read returns.
pub const TAIL_BATCH_MAX: i64 = 10_000;

/// How long an `Idempotency-Key` answers retries with its stored outcome. After that the key
/// is forgotten (and pruned): a request with it is a new request.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Why an event store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A stream's version was not the expected one: someone else appended first.
    #[error("version conflict on stream {stream_id}")]
    Conflict { stream_id: String },
    /// An idempotency key was stored by a concurrent request in the meantime.
    #[error("idempotency key stored concurrently")]
    IdempotencyRace,
    /// A stream id is used by a stream of another type.
    #[error("stream {stream_id} is a {actual}, not a {expected}")]
    WrongStreamType { stream_id: Uuid, expected: &'static str, actual: String },
    /// A stored event cannot be decoded: a schema change without an upcaster.
    #[error("stored event cannot be decoded: {0}")]
    Decode(#[from] DecodeError),
    /// A snapshot or payload is not valid JSON for its type.
    #[error("stored json cannot be decoded: {0}")]
    Json(#[from] serde_json::Error),
    /// No connection could be had from the pool.
    #[error("database unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("database error: {0}")]
    Db(#[from] tokio_postgres::Error),
}

impl StoreError {
    /// True for errors a retry may cure: version conflicts and deadlocks.
    pub fn is_conflict(&self) -> bool {
        match self {
            StoreError::Conflict { .. } => true,
            StoreError::Db(e) => matches!(e.code(), Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED),
            _ => false,
        }
    }
}

fn map_append_error(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        if db.code().code() == "BZ409" {
            let stream_id = db.detail().unwrap_or("").split(' ').next().unwrap_or("").to_owned();
            return StoreError::Conflict { stream_id };
        }
        if db.code() == &SqlState::UNIQUE_VIOLATION {
            match db.constraint() {
                Some("idempotency_keys_pkey") => return StoreError::IdempotencyRace,
                Some("events_stream_id_version_key") | Some("streams_pkey") => {
                    return StoreError::Conflict { stream_id: String::new() }
                }
                _ => {}
            }
        }
    }
    StoreError::Db(e)
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs a statement through the connection's statement cache: parsed and planned once per
/// connection, not once per call.
async fn rows<C: GenericClient>(client: &C, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(sql).await?;
    client.query(&stmt, params).await
}

async fn row_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(sql).await?;
    client.query_opt(&stmt, params).await
}

/// An event as stored, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub global_position: i64,
    pub tx_id: u64,
    pub stream_type: String,
    pub stream_id: Uuid,
    pub version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: i32,
    pub payload: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    pub hash: Vec<u8>,
}

// `tx_id` goes out as text under another name: an output column named `tx_id` would capture
// `ORDER BY tx_id` and sort transaction ids as text ("1000" before "998"), skipping events.
const EVENT_COLUMNS: &str =
    "global_position, tx_id::text AS tx_id_text, stream_type, stream_id, version, event_id, event_type, \
     event_version, payload, metadata, recorded_at, hash";

impl StoredEvent {
    /// An event from a row of `EVENT_COLUMNS` (as `tail_rows` streams them).
    pub fn from_row(row: &Row) -> StoredEvent {
        let tx: String = row.get(1);
        StoredEvent {
            global_position: row.get(0),
            tx_id: tx.parse().expect("xid8 prints as an unsigned integer"),
            stream_type: row.get(2),
            stream_id: row.get(3),
            version: row.get(4),
            event_id: row.get(5),
            event_type: row.get(6),
            event_version: row.get(7),
            payload: row.get(8),
            metadata: row.get(9),
            recorded_at: row.get(10),
            hash: row.get(11),
        }
    }

    /// Recomputes this event's hash from its stored fields on top of `prev`.
    pub fn recompute_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        event_hash(
            prev,
            &HashInput {
                stream_id: self.stream_id,
                stream_type: &self.stream_type,
                version: self.version,
                event_id: self.event_id,
                event_type: &self.event_type,
                event_version: self.event_version,
                payload: &self.payload,
                metadata: &self.metadata,
                recorded_at: self.recorded_at,
            },
        )
    }
}

/// Checks a whole stream's hash chain from genesis. Returns the first version that fails.
pub fn verify_chain(events: &[StoredEvent]) -> Result<(), i64> {
    let mut prev = GENESIS;
    for (i, e) in events.iter().enumerate() {
        let expected = e.recompute_hash(&prev);
        if e.version != i as i64 + 1 || e.hash.as_slice() != expected {
            return Err(e.version);
        }
        prev = expected;
    }
    Ok(())
}

/// Where a gap-safe reader is: after this (transaction id, position) pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct TailPosition {
    pub tx_id: u64,
    pub global_position: i64,
}

impl StoredEvent {
    /// The tail position just after this event.
    pub fn tail_position(&self) -> TailPosition {
        TailPosition { tx_id: self.tx_id, global_position: self.global_position }
    }
}

/// A stream loaded into an aggregate's state.
#[derive(Debug, Clone)]
pub struct Loaded<A: Aggregate> {
    pub stream_id: Uuid,
    pub state: A::State,
    /// Version of the last event (0: the stream does not exist).
    pub version: i64,
    /// Hash of the last event (GENESIS for a new stream).
    pub hash: [u8; 32],
    /// Version of the snapshot the load started from, if any.
    pub snapshot_version: Option<i64>,
    /// Events read after the snapshot.
    pub events_read: usize,
    _aggregate: PhantomData<A>,
}

/// One stream's part of an append.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    pub stream_id: Uuid,
    pub stream_type: &'static str,
    /// The version the stream must be at (0: it must not exist).
    pub expected: i64,
    /// Hash of the event at `expected` (GENESIS for 0).
    pub prev_hash: [u8; 32],
    pub events: Vec<aggregate::EncodedEvent>,
}

/// An idempotency record to store with the append.
#[derive(Debug, Clone)]
pub struct IdempotencyWrite {
    pub scope: String,
    pub key: String,
    pub request_hash: Vec<u8>,
}

/// Everything one command appends, in one transaction.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub streams: Vec<StreamAppend>,
    /// Actor, roles, correlation, causation, command and request ids.
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
    pub idempotency: Option<IdempotencyWrite>,
    /// Extra fields of the stored outcome (e.g. the resource id).
    pub response: Value,
}

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AppendOutcome {
    /// Global position of the last event written.
    pub position: i64,
    pub streams: Vec<StreamVersion>,
    /// The extra response fields given with the request.
    #[serde(flatten)]
    pub response: serde_json::Map<String, Value>,
}

/// The outcome of an append and each stream's new head hash, in request order.
#[derive(Debug, Clone)]
pub struct Appended {
    pub outcome: AppendOutcome,
    pub heads: Vec<[u8; 32]>,
}

/// A stream and the version it is at after the append.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct StreamVersion {
    pub stream_id: Uuid,
    pub stream_type: String,
    pub version: i64,
}

/// The event store over a connection pool.
#[derive(Clone)]
pub struct EventStore {
    pool: Pool,
    snapshot_every: i64,
}

impl EventStore {
    /// A store that snapshots a stream every `snapshot_every` events.
    pub fn new(pool: Pool, snapshot_every: i64) -> EventStore {
        assert!(snapshot_every > 0, "snapshot interval must be positive");
        EventStore { pool, snapshot_every }
    }

    /// The pool, for callers that run their own statements.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Events between snapshots.
    pub fn snapshot_every(&self) -> i64 {
        self.snapshot_every
    }

    /// Appends in a transaction of its own. Fails with `Conflict` when a stream moved on.
    pub async fn append(&self, req: &AppendRequest) -> Result<Appended, StoreError> {
        let client = self.pool.get().await?;
        append_with(&client, req).await
    }

    /// Loads a stream: the latest snapshot of the current state schema, then the events after it.
    pub async fn load<A: Aggregate>(&self, stream_id: Uuid) -> Result<Loaded<A>, StoreError> {
        let client = self.pool.get().await?;
        load_with::<A, _>(&client, stream_id).await
    }

    /// Reads several streams in one statement; each is folded when taken out of the answer.
    pub async fn load_many(&self, wants: &[Want]) -> Result<Fetched, StoreError> {
        let client = self.pool.get().await?;
        load_many_with(&client, wants).await
    }

    /// Stores a snapshot of a stream's state at `version`, replacing an older one.
    pub async fn save_snapshot<A: Aggregate>(
        &self,
        stream_id: Uuid,
        version: i64,
        hash: &[u8; 32],
        state: &A::State,
    ) -> Result<(), StoreError> {
        let state = serde_json::to_value(state)?;
        let client = self.pool.get().await?;
        let stmt = client
            .prepare_cached(
                "INSERT INTO snapshots (stream_id, stream_type, schema_version, version, hash, state)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (stream_id) DO UPDATE SET schema_version = excluded.schema_version,
                     version = excluded.version, hash = excluded.hash, state = excluded.state, taken_at = now()
                 WHERE snapshots.version < excluded.version OR snapshots.schema_version <> excluded.schema_version",
            )
            .await?;
        client
            .execute(&stmt, &[&stream_id, &A::STREAM_TYPE, &A::STATE_SCHEMA, &version, &hash.as_slice(), &state])
            .await?;
        Ok(())
    }

    /// Every event of one stream, in version order.
    pub async fn read_stream(&self, stream_id: Uuid) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.pool.get().await?;
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version");
        let rows = rows(&client, &sql, &[&stream_id]).await?;
        Ok(rows.iter().map(StoredEvent::from_row).collect())
    }

    /// Up to `limit` events after `after`, in (transaction id, position) order, only from
    /// transactions older than every running one: an event whose transaction commits late is
    /// read after the ones already returned, never skipped.
    pub async fn read_tail(&self, after: TailPosition, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.pool.get().await?;
        read_tail_with(&client, after, limit).await
    }

    /// The stored outcome and request hash of an idempotency key, if any younger than
    /// `IDEMPOTENCY_TTL`. An older record is deleted here, so the key starts afresh.
    pub async fn idempotency_record(&self, scope: &str, key: &str) -> Result<Option<(Vec<u8>, Value)>, StoreError> {
        let client = self.pool.get().await?;
        let sql = "SELECT request_hash, response, created_at > now() - make_interval(secs => $3) FROM idempotency_keys
                   WHERE scope = $1 AND key = $2";
        let ttl = IDEMPOTENCY_TTL.as_secs_f64();
        let Some(row) = row_opt(&client, sql, &[&scope, &key, &ttl]).await? else { return Ok(None) };
        if row.get::<_, bool>(2) {
            return Ok(Some((row.get(0), row.get(1))));
        }
        let expired = "DELETE FROM idempotency_keys
                       WHERE scope = $1 AND key = $2 AND created_at <= now() - make_interval(secs => $3)";
        client.execute(expired, &[&scope, &key, &ttl]).await?;
        Ok(None)
    }

    /// Deletes up to `batch` idempotency records older than `IDEMPOTENCY_TTL`. Returns how
    /// many went.
    pub async fn prune_idempotency(&self, batch: i64) -> Result<u64, StoreError> {
        let client = self.pool.get().await?;
        let sql = "DELETE FROM idempotency_keys WHERE (scope, key) IN (
                       SELECT scope, key FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)
                       LIMIT $2)";
        Ok(client.execute(sql, &[&IDEMPOTENCY_TTL.as_secs_f64(), &batch]).await?)
    }
}

/// The tail's visible end: events of transactions older than every one still running (a
/// transaction that commits later cannot then add an event before one already read).
const TAIL_VISIBLE: &str = "events.tx_id < pg_snapshot_xmin(pg_current_snapshot())";

fn tail_sql() -> String {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE (tx_id, global_position) > ($1::text::xid8, $2)
           AND {TAIL_VISIBLE}
         ORDER BY events.tx_id, events.global_position LIMIT $3"
    )
}

/// `read_tail_after_checkpoint`'s statement, built once (projectors run it after every append).
/// An event of a stream type not in `$3` comes with a JSON null for its payload and metadata:
/// the projection only moves its checkpoint past it, and most of a projector's reads are of
/// other projections' events.
static TAIL_AFTER_CHECKPOINT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    // The checkpoint row has a `tx_id` and a `version` too: every event column is qualified.
    let columns: Vec<String> = EVENT_COLUMNS
        .split(", ")
        .map(|c| match c.trim() {
            body @ ("payload" | "metadata") => {
                format!("CASE WHEN e.stream_type = ANY($3) THEN e.{body} ELSE 'null'::jsonb END AS {body}")
            }
            c => format!("e.{c}"),
        })
        .collect();
    format!(
        "SELECT {columns}, c.projection FROM projection_checkpoints c
         LEFT JOIN LATERAL (
             SELECT * FROM events
             WHERE (events.tx_id, events.global_position) > (c.tx_id, c.position) AND {TAIL_VISIBLE}
             ORDER BY events.tx_id, events.global_position LIMIT $2
         ) e ON true
         WHERE c.projection = $1
         ORDER BY e.tx_id, e.global_position",
        columns = columns.join(", ")
    )
});

/// A reader's lag, as two SQL expressions over `alias`, a row holding its checkpoint
/// (`tx_id`, `position`): the events in the tail after it, counted up to the statement's `$1`,
/// and the age in seconds of the first of them (0 when there is none).
pub fn lag_sql(alias: &str) -> (String, String) {
    let after = format!("(e.tx_id, e.global_position) > ({alias}.tx_id, {alias}.position)");
    (
        format!("(SELECT count(*) FROM (SELECT 1 FROM events e WHERE {after} LIMIT $1) lag)"),
        format!(
            "coalesce(extract(epoch FROM now() - (SELECT e.recorded_at FROM events e WHERE {after}
                 ORDER BY e.tx_id, e.global_position LIMIT 1))::float8, 0)"
        ),
    )
}

/// `read_tail` on a given client.
pub async fn read_tail_with<C: GenericClient>(
    client: &C,
    after: TailPosition,
    limit: i64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let tx = after.tx_id.to_string();
    let rows = rows(client, &tail_sql(), &[&tx, &after.global_position, &limit.clamp(1, TAIL_BATCH_MAX)]).await?;
    Ok(rows.iter().map(StoredEvent::from_row).collect())
}

/// A projection's next batch, read with its checkpoint in one round trip (a projector asks
/// after every append in its process, and under load most asks find nothing new yet): the
/// events after the checkpoint of `projection` in tail order, or `None` when it has no
/// checkpoint row. Events of streams not of `stream_types` (the ones the projection reads) come
/// with JSON nulls for their payload and metadata.
pub async fn read_tail_after_checkpoint<C: GenericClient>(
    client: &C,
    projection: &str,
    stream_types: &[&str],
    limit: i64,
) -> Result<Option<Vec<StoredEvent>>, StoreError> {
    let limit = limit.clamp(1, TAIL_BATCH_MAX);
    let rows = rows(client, &TAIL_AFTER_CHECKPOINT_SQL, &[&projection, &limit, &stream_types]).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(rows.iter().filter(|r| r.get::<_, Option<i64>>(0).is_some()).map(StoredEvent::from_row).collect()))
}

/// `read_tail` as a stream of rows (see `StoredEvent::from_row`), for answers that should not
/// hold a whole page in memory. The rows come through `client`'s connection: keep it alive
/// until the stream ends.
pub async fn tail_rows(
    client: &deadpool_postgres::Client,
    after: TailPosition,
    limit: i64,
) -> Result<tokio_postgres::RowStream, StoreError> {
    let stmt = client.prepare_cached(&tail_sql()).await?;
    let tx = after.tx_id.to_string();
    let limit = limit.clamp(1, TAIL_BATCH_MAX);
    let params: [&(dyn ToSql + Sync); 3] = [&tx, &after.global_position, &limit];
    Ok(client.query_raw(&stmt, params).await?)
}

/// `load` on a given client: the snapshot (if one of the current state schema exists) and the
/// events after it, in one round trip (the statement that reads many streams, for one).
pub async fn load_with<A: Aggregate, C: GenericClient>(client: &C, stream_id: Uuid) -> Result<Loaded<A>, StoreError> {
    let rows = rows(client, &LOAD_MANY_SQL[1], &[&stream_id, &A::STATE_SCHEMA, &A::STREAM_TYPE]).await?;
    fold_rows(stream_id, &rows)
}

/// Folds one stream's rows of `LOAD_MANY_SQL`: its snapshot first (`is_snapshot`), if any, then
/// its events in version order. The statement does not order its rows (a sort there cost more
/// to set up than it sorted): they are put in that order here.
fn fold_rows<A: Aggregate>(stream_id: Uuid, rows: &[Row]) -> Result<Loaded<A>, StoreError> {
    let (mut state, mut version, mut hash, mut snapshot_version) = (A::initial(), 0, GENESIS, None);
    let mut events_read = 0;
    let keys: Vec<(bool, i64)> = rows.iter().map(|r| (r.get::<_, bool>(0), r.get::<_, i64>(1))).collect();
    for row in fold_order(&keys).into_iter().map(|i| &rows[i]) {
        if row.get::<_, bool>(0) {
            // Straight from the stored JSON into the state, without a `Value` in between; one
            // that does not decode is decoded again through a `Value`, for serde's own error.
            state = match row.try_get::<_, tokio_postgres::types::Json<A::State>>(3) {
                Ok(json) => json.0,
                Err(_) => serde_json::from_value(row.try_get(3)?)?,
            };
            version = row.get(1);
            hash = to_hash(row.get(2));
            snapshot_version = Some(version);
            continue;
        }
        let stream_type: &str = row.get(6);
        if stream_type != A::STREAM_TYPE {
            return Err(StoreError::WrongStreamType {
                stream_id,
                expected: A::STREAM_TYPE,
                actual: stream_type.into(),
            });
        }
        let event: A::Event = aggregate::decode(row.get(4), row.get(5), row.get(3))?;
        state = A::evolve(state, &event);
        version = row.get(1);
        hash = to_hash(row.get(2));
        events_read += 1;
    }
    Ok(Loaded { stream_id, state, version, hash, snapshot_version, events_read, _aggregate: PhantomData })
}

/// The order to fold a stream's rows in, given each row's `(is_snapshot, version)`: the
/// snapshot first, then the events by version.
fn fold_order(keys: &[(bool, i64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_unstable_by_key(|&i| (!keys[i].0, keys[i].1));
    order
}

/// A stream to load with others in one statement (`EventStore::load_many`): its id, and the
/// type and state schema it is loaded as (whose snapshots it may start from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    pub stream_id: Uuid,
    pub stream_type: &'static str,
    pub schema: i32,
}

impl Want {
    /// `stream_id` loaded as a stream of `A`.
    pub fn of<A: Aggregate>(stream_id: Uuid) -> Want {
        Want { stream_id, stream_type: A::STREAM_TYPE, schema: A::STATE_SCHEMA }
    }
}

/// Several streams read in one statement (`EventStore::load_many`), each folded on demand.
#[derive(Debug, Default)]
pub struct Fetched {
    streams: std::collections::HashMap<Uuid, (Want, Vec<Row>)>,
}

impl Fetched {
    /// Takes `stream_id` out, folded into `A`'s state: `None` when it was not fetched, or was
    /// fetched as another type (the caller then loads it alone).
    pub fn take<A: Aggregate>(&mut self, stream_id: Uuid) -> Option<Result<Loaded<A>, StoreError>> {
        if self.streams.get(&stream_id)?.0 != Want::of::<A>(stream_id) {
            return None;
        }
        let (_, rows) = self.streams.remove(&stream_id)?;
        Some(fold_rows(stream_id, &rows))
    }

    /// Whether `stream_id` was fetched and not taken yet.
    pub fn has(&self, stream_id: Uuid) -> bool {
        self.streams.contains_key(&stream_id)
    }

    /// Adds what another fetch read.
    pub fn extend(&mut self, other: Fetched) {
        self.streams.extend(other.streams);
    }
}

/// Most streams one `LOAD_MANY_SQL` statement reads; more take several.
const LOAD_MANY_MAX: usize = 16;

/// The statement reading `n` streams (`LOAD_MANY_SQL[n]`): per stream, its snapshot of the
/// wanted type and schema and the events after it, by their primary keys (with the parameters
/// `stream_id`, `schema_version`, `stream_type` of the stream's place), tagged with that place,
/// in no promised order (`fold_rows` orders a stream's rows).
/// Written out per stream rather than joined to arrays: with an array, the planner cannot know
/// how many streams a generic plan is for, so it planned the statement again on every call,
/// which cost more than the round trips saved.
static LOAD_MANY_SQL: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (0..=LOAD_MANY_MAX)
        .map(|n| {
            let parts: Vec<String> = (0..n)
                .map(|i| {
                    let (id, schema, ty) = (3 * i + 1, 3 * i + 2, 3 * i + 3);
                    let snap = format!("stream_id = ${id} AND schema_version = ${schema} AND stream_type = ${ty}");
                    format!(
                        "(SELECT true AS is_snapshot, version, hash, state AS body, NULL::text AS event_type,
                                 NULL::int AS event_version, NULL::text AS stream_type, {i} AS place
                          FROM snapshots WHERE {snap})
                         UNION ALL
                         (SELECT false, e.version, e.hash, e.payload, e.event_type, e.event_version, e.stream_type, {i}
                          FROM events e WHERE e.stream_id = ${id}
                            AND e.version > coalesce((SELECT version FROM snapshots WHERE {snap}), 0))"
                    )
                })
                .collect();
            parts.join(" UNION ALL ")
        })
        .collect()
});

/// `load_many` on a given client.
pub async fn load_many_with<C: GenericClient>(client: &C, wants: &[Want]) -> Result<Fetched, StoreError> {
    let mut fetched = Fetched::default();
    let mut distinct: Vec<Want> = Vec::with_capacity(wants.len());
    for w in wants {
        // A stream wanted twice is read once, as first wanted.
        if let std::collections::hash_map::Entry::Vacant(slot) = fetched.streams.entry(w.stream_id) {
            slot.insert((*w, Vec::new()));
            distinct.push(*w);
        }
    }
    for chunk in distinct.chunks(LOAD_MANY_MAX) {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(3 * chunk.len());
        for w in chunk {
            params.extend([&w.stream_id as &(dyn ToSql + Sync), &w.schema, &w.stream_type]);
        }
        for row in rows(client, &LOAD_MANY_SQL[chunk.len()], &params).await? {
            let place: i32 = row.get(7);
            let stream_id = usize::try_from(place).ok().and_then(|p| chunk.get(p)).map(|w| w.stream_id);
            if let Some((_, rows)) = stream_id.and_then(|id| fetched.streams.get_mut(&id)) {
                rows.push(row);
            }
        }
    }
    Ok(fetched)
}

fn to_hash(bytes: Vec<u8>) -> [u8; 32] {
    bytes.try_into().expect("hashes are 32 bytes (checked by the schema)")
}

/// `append` on a given client, e.g. inside a caller's transaction.
pub async fn append_with<C: GenericClient>(client: &C, req: &AppendRequest) -> Result<Appended, StoreError> {
    let started = std::time::Instant::now();
    let result = append_timed(client, req).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(StoreError::Conflict { .. } | StoreError::IdempotencyRace) => "conflict",
        Err(_) => "error",
    };
    crate::metrics::appended(started.elapsed(), outcome);
    result
}

async fn append_timed<C: GenericClient>(client: &C, req: &AppendRequest) -> Result<Appended, StoreError> {
    let recorded_at = to_micros(req.recorded_at);
    let n_streams = req.streams.len();
    let mut ids = Vec::with_capacity(n_streams);
    let mut types = Vec::with_capacity(n_streams);
    let mut expected = Vec::with_capacity(n_streams);
    let mut new_versions = Vec::with_capacity(n_streams);
    let mut heads: Vec<Vec<u8>> = Vec::with_capacity(n_streams);
    let mut ev = EventColumns::default();
    for (idx, s) in req.streams.iter().enumerate() {
        assert!(!s.events.is_empty(), "a stream in an append has events");
        let mut prev = s.prev_hash;
        let mut version = s.expected;
        for e in &s.events {
            version += 1;
            let event_id = Uuid::new_v4();
            let hash = event_hash(
                &prev,
                &HashInput {
                    stream_id: s.stream_id,
                    stream_type: s.stream_type,
                    version,
                    event_id,
                    event_type: &e.event_type,
                    event_version: e.event_version,
                    payload: &e.payload,
                    metadata: &req.metadata,
                    recorded_at,
                },
            );
            ev.push(idx as i32 + 1, version, event_id, e, &req.metadata, hash);
            prev = hash;
        }
        ids.push(s.stream_id);
        types.push(s.stream_type);
        expected.push(s.expected);
        new_versions.push(version);
        heads.push(prev.to_vec());
    }
    let idem = req.idempotency.as_ref();
    // The caller knows every stream's new version: the outcome is built here, and the
    // function only adds the position to the stored idempotency response.
    let streams: Vec<StreamVersion> = ids
        .iter()
        .zip(&types)
        .zip(&new_versions)
        .map(|((id, t), v)| StreamVersion { stream_id: *id, stream_type: (*t).to_owned(), version: *v })
        .collect();
    let mut response = match &req.response {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    let stored_response = {
        let mut r = response.clone();
        r.insert("streams".into(), serde_json::to_value(&streams)?);
        Value::Object(r)
    };
    let stmt = client
        .prepare_cached(
            "SELECT bozor_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .await
        .map_err(map_append_error)?;
    let position: i64 = client
        .query_one(
            &stmt,
            &[
                &ids,
                &types,
                &expected,
                &new_versions,
                &heads,
                &ev.stream_idx,
                &ev.versions,
                &ev.event_ids,
                &ev.event_types,
                &ev.event_versions,
                &ev.payloads,
                &ev.metadata,
                &ev.hashes,
                &recorded_at,
                &idem.map(|i| i.scope.as_str()),
                &idem.map(|i| i.key.as_str()),
                &idem.map(|i| i.request_hash.as_slice()),
                &stored_response,
            ],
        )
        .await
        .map_err(map_append_error)?
        .get(0);
    response.remove("streams");
    let heads = heads.into_iter().map(to_hash).collect();
    Ok(Appended { outcome: AppendOutcome { position, streams, response }, heads })
}

#[derive(Default)]
struct EventColumns {
    stream_idx: Vec<i32>,
    versions: Vec<i64>,
    event_ids: Vec<Uuid>,
    event_types: Vec<String>,
    event_versions: Vec<i32>,
    payloads: Vec<Value>,
    metadata: Vec<Value>,
    hashes: Vec<Vec<u8>>,
}

impl EventColumns {
    fn push(&mut self, idx: i32, version: i64, id: Uuid, e: &aggregate::EncodedEvent, meta: &Value, hash: [u8; 32]) {
        self.stream_idx.push(idx);
        self.versions.push(version);
        self.event_ids.push(id);
        self.event_types.push(e.event_type.clone());
        self.event_versions.push(e.event_version);
        self.payloads.push(e.payload.clone());
        self.metadata.push(meta.clone());
        self.hashes.push(hash.to_vec());
    }
}

#[cfg(test)]
mod tests {
    use super::fold_order;

    #[test]
    fn a_streams_rows_fold_snapshot_first_then_by_version_whatever_order_they_came_in() {
        // (is_snapshot, version) as a statement might return them.
        let keys = [(false, 12), (false, 11), (true, 10), (false, 13)];
        assert_eq!(fold_order(&keys), vec![2, 1, 0, 3]);
        assert_eq!(fold_order(&[(false, 2), (false, 1)]), vec![1, 0], "no snapshot");
        assert_eq!(fold_order(&[(true, 5)]), vec![0], "a snapshot alone");
        assert!(fold_order(&[]).is_empty());
    }
}
