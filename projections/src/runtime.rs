//! The projector runtime: tail the event store from a projection's checkpoint, apply bounded
//! batches in one transaction each (read model, per-stream versions, checkpoint), and stop on
//! an event it cannot apply, recording the error: a poison event is never skipped silently.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bozor_commands::service::{Appends, CommandsWaiting};
use bozor_commands::store::{read_tail_after_checkpoint, StoredEvent};
use deadpool_postgres::{Pool, Transaction};
use tokio::sync::watch;

/// A boxed future, so projections can be kept as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most events applied in one transaction.
pub const BATCH_SIZE_MAX: i64 = 2_000;
/// How long an idle projector waits before it looks at the tail again, unless an append in
/// this process wakes it first (see `Projector::wake_on`).
pub const IDLE_POLL: Duration = Duration::from_millis(50);
/// How soon after its last read a projector woken by appends looks at the tail again when the
/// appends were of stream types it does not read, or when its last batch was not full (see
/// `wait_for_appends` and `Projector::run`).
pub const OTHER_TYPES_WAKE: Duration = Duration::from_millis(10);
/// A batch with at least this many events of the projection's own types may be followed by a
/// wait (see `COALESCE_WAIT`).
pub const COALESCE_FROM: usize = 16;
/// How long after the start of a batch of at least `COALESCE_FROM` events of its own types a
/// projector reads again when commands of its process are waiting for a turn (see
/// `Projector::yield_to`). Much of a batch's cost is per batch (its transaction, the lock, the
/// version gate, the checkpoint, the commit), not per event: when commands fill the machine, a
/// projector that re-read at once ran many small batches and took the cores from the commands.
/// Waiting lets bigger batches gather. Without commands waiting, or after a smaller batch, it
/// waits as it would anyway (see `Projector::run`). Only projectors fed from the store in the
/// commands' process do this; Kafka-fed ones take what their consumer has.
pub const COALESCE_WAIT: Duration = Duration::from_millis(20);
/// How long a failed projector waits before it tries the same event again.
pub const FAILED_RETRY: Duration = Duration::from_secs(2);

/// Why a projection could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database error: {}", db_message(.0))]
    Db(#[from] tokio_postgres::Error),
    #[error("database unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("event store: {0}")]
    Store(#[from] bozor_commands::StoreError),
    #[error("cannot decode event: {0}")]
    Decode(#[from] bozor_domain::aggregate::DecodeError),
    #[error("cannot decode read model json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stream {stream}: version {got} arrived after version {applied}; an event was lost on the way")]
    Gap { stream: uuid::Uuid, applied: i64, got: i64 },
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Wire(#[from] bozor_commands::kafka::WireError),
}

/// The server's message of a database error (tokio-postgres prints just "db error").
fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// A read model: its name, version, the stream types it reads, and how it applies an event.
/// Its statements find their rows by key: they run with sequential scans off (see `apply_in`),
/// which nothing else checks.
pub trait Projection: Send + Sync + 'static {
    /// Unique name, also the checkpoint's key.
    fn name(&self) -> &'static str;
    /// Bumped when the read model's shape or logic changes (a rebuild is then due).
    fn version(&self) -> i32;
    /// The stream types whose events it applies; others only move its checkpoint.
    fn stream_types(&self) -> &'static [&'static str];
    /// The tables it owns, which a blue/green rebuild builds anew and swaps in.
    fn tables(&self) -> &'static [&'static str] {
        crate::rebuild::tables_of(self.name())
    }
    /// Applies a batch of new events (in tail order) inside the batch's transaction: event by
    /// event (see `one_by_one`), or reading and writing the read model's rows in bulk.
    fn apply_batch<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>>;
}

/// `Projection::apply_batch` for a read model written event by event: `apply` on each, in order.
pub fn one_by_one<'a, F, Fut>(events: &'a [&'a StoredEvent], apply: F) -> BoxFuture<'a, Result<(), ProjectionError>>
where
    F: Fn(&'a StoredEvent) -> Fut + Send + 'a,
    Fut: Future<Output = Result<(), ProjectionError>> + Send + 'a,
{
    Box::pin(async move {
        for e in events {
            apply(e).await?;
        }
        Ok(())
    })
}

/// Moves a projection's checkpoint to the end of a batch it applied. Never backwards: another
/// projector of the same projection (scale-out) may have committed a later batch meanwhile;
/// this batch's events were then skipped.
const CHECKPOINT_SQL: &str = "UPDATE projection_checkpoints
     SET tx_id = CASE WHEN (tx_id, position) < ($2::text::xid8, $3) THEN $2::text::xid8 ELSE tx_id END,
         position = CASE WHEN (tx_id, position) < ($2::text::xid8, $3) THEN $3 ELSE position END,
         events = events + $4, updated_at = now(),
         state = CASE WHEN state = 'failed' THEN 'live' ELSE state END, last_error = NULL
     WHERE projection = $1";

/// Feeds one projection from the event store.
pub struct Projector {
    pool: Pool,
    projection: Arc<dyn Projection>,
    wake: Option<watch::Receiver<Appends>>,
    waiting: Option<CommandsWaiting>,
    on_applied: Option<AppliedHook>,
    gated: bool,
}

/// Called after a batch commits with the projection's name and the streams it changed (to
/// invalidate caches of the read model).
pub type AppliedHook = Arc<dyn Fn(&Applied<'_>) + Send + Sync>;

/// A committed batch, as an `AppliedHook` sees it (called right after the commit): the
/// projection, the streams it changed, and when its steps happened, for lag breakdowns.
pub struct Applied<'a> {
    pub projection: &'a str,
    pub streams: &'a [uuid::Uuid],
    /// The projector began the batch: woken, it asks for its checkpoint and the tail (from the
    /// store), or took the batch's first message (from Kafka).
    pub read_started: std::time::Instant,
    /// The batch's events are in hand.
    pub read_done: std::time::Instant,
    /// The read model's rows are written; the checkpoint and commit follow.
    pub applied: std::time::Instant,
}

impl Projector {
    /// A projector for `projection` over `pool`.
    pub fn new(pool: Pool, projection: Arc<dyn Projection>) -> Projector {
        Projector { pool, projection, wake: None, waiting: None, on_applied: None, gated: true }
    }

    /// Skips the per-stream version gate: for a rebuild's shadow, fed once in tail order from the
    /// start, whose checkpoint commits with its rows (a failed batch rolls back whole). The
    /// rebuild records the versions in bulk before the swap instead.
    pub fn ungated(mut self) -> Projector {
        self.gated = false;
        self
    }

    /// Calls `hook` after every committed batch with the streams it changed.
    pub fn on_applied(mut self, hook: AppliedHook) -> Projector {
        self.on_applied = Some(hook);
        self
    }

    /// Wakes the idle projector on appends in this process (see `wait_for_appends`).
    pub fn wake_on(mut self, appended: watch::Receiver<Appends>) -> Projector {
        self.wake = Some(appended);
        self
    }

    /// Lets bigger batches gather while commands of this process wait for a turn (see
    /// `COALESCE_WAIT`).
    pub fn yield_to(mut self, waiting: CommandsWaiting) -> Projector {
        self.waiting = Some(waiting);
        self
    }

    /// Registers the projection's checkpoint if it has none.
    pub async fn register(&self) -> Result<(), ProjectionError> {
        self.register_on(&self.pool.get().await?).await
    }

    async fn register_on(&self, client: &deadpool_postgres::Client) -> Result<(), ProjectionError> {
        client
            .execute(
                "INSERT INTO projection_checkpoints (projection, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&self.projection.name(), &self.projection.version()],
            )
            .await?;
        Ok(())
    }

    /// Applies the next batch, if any. Returns how many events it read (0: caught up).
    pub async fn step(&self) -> Result<usize, ProjectionError> {
        let mut client = self.pool.get().await?;
        self.step_with(&mut client).await
    }

    /// `step` on a given connection (a rebuild's, whose search_path points at shadow tables).
    pub async fn step_with(&self, client: &mut deadpool_postgres::Client) -> Result<usize, ProjectionError> {
        Ok(self.step_counted(client).await?.read)
    }

    /// `step_with`, answering also how many of the events read were of the projection's types.
    async fn step_counted(&self, client: &mut deadpool_postgres::Client) -> Result<Stepped, ProjectionError> {
        let read_started = std::time::Instant::now();
        let name = self.projection.name();
        let Some(events) =
            read_tail_after_checkpoint(&*client, name, self.projection.stream_types(), BATCH_SIZE_MAX).await?
        else {
            // Not registered (yet, or its row was removed): register and start from the beginning.
            self.register_on(client).await?;
            return Ok(Stepped { read: 1, own: 0 });
        };
        let Some(last) = events.last().map(StoredEvent::tail_position) else { return Ok(Stepped { read: 0, own: 0 }) };
        let read_done = std::time::Instant::now();
        let checkpoint_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&name, &last.tx_id.to_string(), &last.global_position, &(events.len() as i64)];
        let types = self.projection.stream_types();
        let own = events.iter().filter(|e| types.contains(&e.stream_type.as_str())).count();
        if own == 0 {
            // Nothing here for this projection: only its checkpoint moves, in one statement. No
            // transaction or lock is needed. The update never moves the checkpoint backwards; a
            // rebuild's swap may (it sets the shadow's checkpoint), but only over events like
            // these, which are then read again and skipped again.
            let stmt = client.prepare_cached(CHECKPOINT_SQL).await?;
            client.execute(&stmt, &checkpoint_params).await?;
            return Ok(Stepped { read: events.len(), own });
        }
        let tx = client.transaction().await?;
        let fresh = apply_in(&tx, &*self.projection, &events, self.gated).await?;
        let applied = std::time::Instant::now();
        let stmt = tx.prepare_cached(CHECKPOINT_SQL).await?;
        tx.execute(&stmt, &checkpoint_params).await?;
        tx.commit().await?;
        if let Some(hook) = &self.on_applied {
            if !fresh.is_empty() {
                hook(&Applied { projection: name, streams: &fresh, read_started, read_done, applied });
            }
        }
        Ok(Stepped { read: events.len(), own })
    }

    /// Runs until `stop` turns true: applies batches, polls when idle, and on failure records
    /// the error, marks the projection failed and retries the same event later. Woken by
    /// appends, a batch smaller than the most a batch holds means the projector caught up with
    /// what it could see: it then waits for the next append of its types (one during the batch
    /// wakes it at once), `OTHER_TYPES_WAKE` at most, rather than reading the tail again at once.
    /// After a batch with `COALESCE_FROM` events of its types or more, while commands wait for a
    /// turn, it reads again `COALESCE_WAIT` after that batch began, whatever is appended
    /// meanwhile.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let mut wake = self.wake.clone();
        let types = self.projection.stream_types();
        if let Err(e) = self.register().await {
            tracing::error!(projection = self.projection.name(), error = %e, "cannot register projection");
        }
        while !*stop.borrow() {
            let seen = wake.as_mut().map(|w| *w.borrow_and_update());
            let read_at = tokio::time::Instant::now();
            let stepped = match self.pool.get().await {
                Ok(mut client) => self.step_counted(&mut client).await,
                Err(e) => Err(e.into()),
            };
            // How long to wait, and whether appends may end the wait early (a failed projector
            // waits out its pause).
            let (pause, wakeable) = match stepped {
                Ok(stepped) => {
                    let commands_wait = self.waiting.as_ref().is_some_and(CommandsWaiting::any);
                    next_pause(stepped, seen.is_some(), commands_wait, read_at.elapsed())
                }
                Err(e) => {
                    tracing::error!(projection = self.projection.name(), error = %e, "projection failed");
                    self.mark_failed(&e).await;
                    (FAILED_RETRY, false)
                }
            };
            if pause.is_zero() {
                continue;
            }
            match (wake.as_mut(), seen) {
                (Some(rx), Some(seen)) if wakeable => {
                    tokio::select! {
                        _ = wait_for_appends(rx, seen, types, read_at, pause) => {}
                        _ = stop.changed() => {}
                    }
                }
                _ => {
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }

    async fn mark_failed(&self, e: &ProjectionError) {
        mark_failed(&self.pool, self.projection.name(), e).await;
    }
}

/// How long a projector waits after a step that read `stepped`, `took` after it began, and
/// whether appends may end the wait early; `woken` tells that appends in its process wake it,
/// `commands_wait` that commands of its process are waiting for a turn.
fn next_pause(stepped: Stepped, woken: bool, commands_wait: bool, took: Duration) -> (Duration, bool) {
    match stepped {
        Stepped { read: 0, .. } => (IDLE_POLL, true),
        // Commands fill the machine: the next batch gathers.
        Stepped { own, .. } if own >= COALESCE_FROM && commands_wait => (COALESCE_WAIT.saturating_sub(took), false),
        // Caught up with what it could see. An open transaction that is not an append (another
        // projector's batch) may have cut the read short, and its end counts no append: the
        // projector looks again soon in any case.
        Stepped { read, .. } if woken && (read as i64) < BATCH_SIZE_MAX => (OTHER_TYPES_WAKE, true),
        Stepped { .. } => (Duration::ZERO, false),
    }
}

/// What one step read: events in all, and those of the projection's own types.
#[derive(Clone, Copy, Debug)]
struct Stepped {
    read: usize,
    own: usize,
}

/// Marks `projection` failed with the error, for the status (best effort: the database may
/// be what failed).
pub(crate) async fn mark_failed(pool: &Pool, projection: &str, e: &ProjectionError) {
    let Ok(client) = pool.get().await else { return };
    let _ = client
        .execute(
            "UPDATE projection_checkpoints SET state = 'failed', last_error = $2, updated_at = now() WHERE projection = $1",
            &[&projection, &e.to_string()],
        )
        .await;
}

/// Waits until appends in this process (counted on `rx`, `seen` when the last read began at
/// `read_at`) may have given a projection of `types` something to read, or `pause` passes:
/// - an append to one of `types` wakes it at once;
/// - appends of other types wake it `OTHER_TYPES_WAKE` after its last read. Its checkpoint
///   still moves past them, and they may make visible an event of its own types that the last
///   read could not see yet (the tail stops at the oldest transaction still open, and that one
///   may be an append of another type). A burst of other types' appends costs it one read,
///   not one each.
pub async fn wait_for_appends(
    rx: &mut watch::Receiver<Appends>,
    seen: Appends,
    types: &[&str],
    read_at: tokio::time::Instant,
    pause: Duration,
) {
    let deadline = tokio::time::Instant::now() + pause;
    loop {
        let now = *rx.borrow_and_update();
        if now.wrote_since(&seen, types) {
            return;
        }
        let until = if now == seen { deadline } else { deadline.min(read_at + OTHER_TYPES_WAKE) };
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return,
            changed = rx.changed() => {
                if changed.is_err() {
                    // No more appends will be counted: only the pause is left.
                    tokio::time::sleep_until(until).await;
                    return;
                }
            }
        }
    }
}

/// Applies the events of `events` that `projection` reads, in `tx`, under the shared side of
/// the projection's advisory lock (a rebuild's swap takes it exclusively, pausing this). With
/// `gated`, only events not applied before (see `first_time`). Returns the streams changed.
pub(crate) async fn apply_in<'e>(
    tx: &Transaction<'_>,
    projection: &dyn Projection,
    events: impl IntoIterator<Item = &'e StoredEvent>,
    gated: bool,
) -> Result<Vec<uuid::Uuid>, ProjectionError> {
    let name = projection.name();
    let types = projection.stream_types();
    let relevant: Vec<&StoredEvent> = events.into_iter().filter(|e| types.contains(&e.stream_type.as_str())).collect();
    // With the lock, for this transaction only: no sequential scan where an index serves. Every
    // statement a projection runs finds its rows by key. A statement's generic plan is made at
    // its sixth run on a connection and kept until the table is next analysed; made while a
    // read model was still small (a fresh store, a rebuild's shadow tables), it was a scan of
    // the whole table, which then grew with each row applied (`payments_view`'s row locks:
    // 0.41 ms a batch at 6 000 payments against 0.03 ms by its primary key).
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock_shared(hashtext($1)), set_config('enable_seqscan', 'off', true)")
        .await?;
    tx.execute(&lock, &[&name]).await?;
    let fresh = if gated { first_time(tx, name, &relevant).await? } else { relevant };
    if !fresh.is_empty() {
        projection.apply_batch(tx, &fresh).await?;
    }
    let mut changed: Vec<uuid::Uuid> = fresh.iter().map(|e| e.stream_id).collect();
    changed.sort_unstable();
    changed.dedup();
    Ok(changed)
}

/// The events of `events` not applied before (a stream's version above the one recorded), and
/// records the batch's versions. The version rows are created or locked first, so two
/// transactions applying the same stream (a Kafka rebalance, two projector processes) take
/// turns and the second sees what the first applied. A version beyond the next one means an
/// event was lost on the way: that is an error, never skipped.
async fn first_time<'e>(
    tx: &Transaction<'_>,
    projection: &str,
    events: &[&'e StoredEvent],
) -> Result<Vec<&'e StoredEvent>, ProjectionError> {
    if events.is_empty() {
        return Ok(vec![]);
    }
    let mut ids: Vec<uuid::Uuid> = events.iter().map(|e| e.stream_id).collect();
    ids.sort_unstable();
    ids.dedup();
    // One statement creates the missing rows and locks the others; after waiting for a
    // concurrent writer of the same row it returns that writer's committed version.
    let rows = crate::sql::query(
        tx,
        "INSERT INTO projection_stream_versions AS v (projection, stream_id, version)
         SELECT $1, s, 0 FROM unnest($2::uuid[]) AS t(s) ORDER BY s
         ON CONFLICT (projection, stream_id) DO UPDATE SET version = v.version
         RETURNING stream_id, version",
        &[&projection, &ids],
    )
    .await?;
    let mut applied: std::collections::HashMap<uuid::Uuid, i64> =
        rows.iter().map(|r| (r.get::<_, uuid::Uuid>(0), r.get::<_, i64>(1))).collect();
    let mut fresh = Vec::with_capacity(events.len());
    for e in events {
        let seen = applied.entry(e.stream_id).or_insert(0);
        if e.version == *seen + 1 {
            *seen = e.version;
            fresh.push(*e);
        } else if e.version > *seen + 1 {
            return Err(ProjectionError::Gap { stream: e.stream_id, applied: *seen, got: e.version });
        }
    }
    let (streams, versions): (Vec<uuid::Uuid>, Vec<i64>) = applied.into_iter().unzip();
    crate::sql::execute(
        tx,
        // Every row exists and is locked (above). An upsert finds each through the primary key
        // whatever the statistics say. An `UPDATE ... FROM unnest(...)` did not: its generic
        // plan, made while the table was small and not yet analysed, scanned every row of the
        // projection (1.7 ms a batch at 10 000 streams, growing with each stream applied).
        "INSERT INTO projection_stream_versions AS v (projection, stream_id, version)
         SELECT $1, s, n FROM unnest($2::uuid[], $3::bigint[]) AS t(s, n)
         ON CONFLICT (projection, stream_id) DO UPDATE SET version = excluded.version
         WHERE v.version < excluded.version",
        &[&projection, &streams, &versions],
    )
    .await?;
    Ok(fresh)
}

/// Whether `projection` has applied the command that wrote `position`, and the position of
/// its checkpoint. Fed from the store, the tail is one order: the checkpoint at or past that
/// event means everything up to it is applied. So does a checkpoint behind an event of another
/// type with no event of the projection's types in between, once every transaction before that
/// event's has ended (a projector moves its checkpoint past other types' events only when it
/// next reads): fewer than `REACHED_LOOK` events in between are looked through, more answer
/// "not yet". A projection whose types are not known here waits for its checkpoint. Fed from Kafka, partitions have no common
/// order, so it means every event that command's transaction wrote up to `position` to a
/// stream the projection reads is applied (and so, per stream, everything before it).
pub async fn reached(
    client: &tokio_postgres::Client,
    projection: &str,
    position: i64,
) -> Result<(bool, i64), ProjectionError> {
    let types: Vec<&str> = crate::by_name(projection).map(|p| p.stream_types().to_vec()).unwrap_or_default();
    let row = client
        .query_opt(
            "SELECT c.position,
                    CASE WHEN c.feed = 'store' THEN
                        (SELECT (e.tx_id, e.global_position) <= (c.tx_id, c.position)
                                OR (cardinality($3::text[]) > 0
                                    AND NOT (e.stream_type = ANY($3))
                                    AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
                                    AND (SELECT count(*) < $4 AND NOT coalesce(bool_or(b.stream_type = ANY($3)), false)
                                         FROM (SELECT o.stream_type FROM events o
                                               WHERE (o.tx_id, o.global_position) > (c.tx_id, c.position)
                                                 AND (o.tx_id, o.global_position) <= (e.tx_id, e.global_position)
                                               ORDER BY o.tx_id, o.global_position LIMIT $4) b))
                         FROM events e WHERE e.global_position = $2)
                    ELSE
                        EXISTS (SELECT 1 FROM events p WHERE p.global_position = $2)
                        AND NOT EXISTS (
                            SELECT 1 FROM events p JOIN events e ON e.tx_id = p.tx_id AND e.global_position <= p.global_position
                            WHERE p.global_position = $2 AND e.stream_type = ANY($3)
                              AND NOT EXISTS (SELECT 1 FROM projection_stream_versions v
                                              WHERE v.projection = c.projection AND v.stream_id = e.stream_id
                                                AND v.version >= e.version))
                    END
             FROM projection_checkpoints c WHERE c.projection = $1",
            &[&projection, &position, &types, &REACHED_LOOK],
        )
        .await?;
    // No checkpoint yet (the projector is starting) is position 0; a position no event has
    // (yet) is not reached.
    Ok(match row {
        Some(row) => (row.get::<_, Option<bool>>(1).unwrap_or(false), row.get(0)),
        None => (false, 0),
    })
}

/// Events between a store-fed checkpoint and a position that `reached` looks through for one of
/// the projection's types.
pub const REACHED_LOOK: i64 = 200;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[test]
    fn a_big_batch_lets_the_next_one_gather_only_while_commands_wait() {
        let big = Stepped { read: 40, own: COALESCE_FROM };
        let took = Duration::from_millis(5);
        assert_eq!(next_pause(big, true, true, took), (COALESCE_WAIT - took, false), "counted from the batch's start");
        assert_eq!(
            next_pause(big, true, true, COALESCE_WAIT * 2),
            (Duration::ZERO, false),
            "a slow batch waits no more"
        );
        assert_eq!(next_pause(big, true, false, took), (OTHER_TYPES_WAKE, true), "no command waits: as before");
        let small = Stepped { read: 40, own: COALESCE_FROM - 1 };
        assert_eq!(next_pause(small, true, true, took), (OTHER_TYPES_WAKE, true));
        // Other types' events do not count toward a big batch.
        let others = Stepped { read: 1_000, own: 0 };
        assert_eq!(next_pause(others, true, true, took), (OTHER_TYPES_WAKE, true));
        assert_eq!(next_pause(Stepped { read: 0, own: 0 }, true, true, took), (IDLE_POLL, true));
        let full = Stepped { read: BATCH_SIZE_MAX as usize, own: 0 };
        assert_eq!(next_pause(full, true, false, took), (Duration::ZERO, false), "a full batch reads on at once");
        assert_eq!(next_pause(others, false, false, took), (Duration::ZERO, false), "a polling projector reads on");
    }

    fn after(before: Appends, types: &[&'static str]) -> Appends {
        let mut a = before;
        a.count(types.iter().copied());
        a
    }

    /// Runs `wait_for_appends` for a projection of wallets (last read at the start, a pause of
    /// `IDLE_POLL`) while `appends` are sent at their offsets; answers when it returned.
    async fn woken_after(appends: Vec<(u64, &'static [&'static str])>) -> Duration {
        let (tx, mut rx) = watch::channel(Appends::default());
        let seen = *rx.borrow_and_update();
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for (at, types) in appends {
                tokio::time::sleep_until(start + Duration::from_millis(at)).await;
                tx.send_modify(|a| *a = after(*a, types));
            }
            tx // kept open until the end
        });
        wait_for_appends(&mut rx, seen, &["wallet"], start, IDLE_POLL).await;
        let woken = start.elapsed();
        sender.abort();
        woken
    }

    #[test]
    fn appends_count_each_type_once_per_append() {
        let none = Appends::default();
        let one = after(none, &["wallet", "wallet", "payment"]);
        assert!(one.wrote_since(&none, &["wallet"]));
        assert!(one.wrote_since(&none, &["listing", "payment"]));
        assert!(!one.wrote_since(&none, &["listing", "order"]));
        assert!(!one.wrote_since(&one, &["wallet"]));
        let unknown = after(one, &["no-such-type"]);
        assert_eq!(unknown, one, "a type the store does not have counts nowhere");
    }

    /// An append of a type missing from the counter would wake nobody early.
    #[test]
    fn every_stream_type_a_projection_reads_is_counted() {
        let mut projections = crate::all();
        projections.push(std::sync::Arc::new(crate::timers::TimersProjection));
        for p in projections {
            for t in p.stream_types() {
                assert!(bozor_commands::service::STREAM_TYPES.contains(t), "{} reads {t}", p.name());
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_append_of_its_own_type_wakes_a_projector_at_once() {
        assert_eq!(woken_after(vec![(3, &["payment", "wallet"])]).await, Duration::from_millis(3));
    }

    #[tokio::test(start_paused = true)]
    async fn appends_of_other_types_wake_it_once_after_a_short_wait() {
        let burst = (1..=9).map(|ms| (ms, &["listing"][..])).collect();
        assert_eq!(woken_after(burst).await, OTHER_TYPES_WAKE);
        // An append of its own type during the wait ends it.
        assert_eq!(woken_after(vec![(1, &["order"]), (4, &["wallet"])]).await, Duration::from_millis(4));
        // Appends of other types long after the last read wake it at once.
        assert_eq!(woken_after(vec![(30, &["order"])]).await, Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn without_appends_it_waits_out_the_pause() {
        assert_eq!(woken_after(vec![]).await, IDLE_POLL);
        let (tx, mut rx) = watch::channel(Appends::default());
        let seen = *rx.borrow_and_update();
        drop(tx);
        let start = Instant::now();
        wait_for_appends(&mut rx, seen, &["wallet"], start, IDLE_POLL).await;
        assert_eq!(start.elapsed(), IDLE_POLL, "a closed counter does not spin");
    }
}
