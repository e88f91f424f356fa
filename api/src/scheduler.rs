//! The scheduler: fires due timers (see `bozor_projections::timers`) as ordinary idempotent
//! commands of the system actor, in bounded batches. One scheduler is active at a time: it
//! holds a session advisory lock on a connection of its own; a standby polls for the lock
//! every second and takes over within seconds of the active one's death (its connection, and
//! so its lock, goes with it).
//!
//! What a fire leads to is recorded on the timer:
//! - the command was carried out: `fired`;
//! - the domain says it is not due yet (or a provider payment of the order is in progress):
//!   tried again later;
//! - the domain refuses it for good (the escrow was released, the listing approved meanwhile,
//!   and the event that cancels the timer has not reached the projection yet): `moot`;
//! - anything else (the database, a conflict): attempts + 1, the error, and a retry after a
//!   backoff that doubles up to ten minutes. A timer is never dropped.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use bozor_commands::{CommandError, CommandMeta, CommandService};
use bozor_domain::escrow::{self, EscrowAggregate};
use bozor_domain::listing;
use bozor_domain::DomainError;
use chrono::{DateTime, Duration, Utc};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::Clock;

/// Timers taken per batch.
pub const BATCH_MAX: i64 = 500;
/// Commands a batch runs at once.
pub const CONCURRENCY: usize = 16;
/// Longest wait between two retries of a failing timer.
pub const BACKOFF_MAX_SECS: i64 = 600;
/// How often the active scheduler looks for due timers when the last look found none.
pub const IDLE_POLL: StdDuration = StdDuration::from_millis(250);
/// How often a standby tries to take over.
pub const STANDBY_POLL: StdDuration = StdDuration::from_secs(1);
/// The advisory lock the active scheduler holds.
const LOCK_KEY: i64 = 0x7363_6865_6475_6c72;

/// A scheduler over a database.
#[derive(Clone)]
pub struct Scheduler {
    database_url: String,
    pool: deadpool_postgres::Pool,
    commands: CommandService,
    clock: Arc<dyn Clock>,
    unpaid_ttl: Duration,
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Fired {
    pub fired: usize,
    pub moot: usize,
    pub later: usize,
    pub failed: usize,
}

impl Fired {
    /// Timers the batch took.
    pub fn total(&self) -> usize {
        self.fired + self.moot + self.later + self.failed
    }
}

enum Outcome {
    Fired,
    Moot(String),
    Later(Duration, String),
    Failed(String),
}

impl Scheduler {
    /// A scheduler firing through `commands`, reading timers on `pool` (`database_url` is for
    /// its lock's own connection), with time from `clock` and the unpaid-order TTL.
    pub fn new(
        database_url: &str,
        pool: deadpool_postgres::Pool,
        commands: CommandService,
        clock: Arc<dyn Clock>,
        unpaid_ttl: Duration,
    ) -> Scheduler {
        Scheduler { database_url: database_url.to_owned(), pool, commands, clock, unpaid_ttl }
    }

    /// Runs until `stop` turns true: standby until it holds the lock, then active.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self.lead(&mut stop).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "scheduler: lost its connection or the database; standing by"),
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_POLL) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Takes the lock (waiting as a standby) and fires due timers while it holds it. Returns
    /// Ok when told to stop.
    async fn lead(&self, stop: &mut watch::Receiver<bool>) -> Result<(), String> {
        // Keepalives end a dead peer's session (and free its lock) in seconds, not hours.
        let mut config: tokio_postgres::Config =
            self.database_url.parse().map_err(|e: tokio_postgres::Error| e.to_string())?;
        config
            .keepalives(true)
            .keepalives_idle(StdDuration::from_secs(5))
            .keepalives_interval(StdDuration::from_secs(2));
        config.keepalives_retries(3);
        let (lock, conn) = config.connect(tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
        let mut conn = tokio::spawn(conn);
        loop {
            let held: bool = lock
                .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            if held {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_POLL) => {}
                _ = stop.changed() => return Ok(()),
                _ = &mut conn => return Err("the lock's connection closed".into()),
            }
        }
        tracing::info!("scheduler active");
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            // Still the leader? A lock session that died makes this fail before a batch fires.
            lock.simple_query("SELECT 1").await.map_err(|e| e.to_string())?;
            let batch = self.fire_due().await.map_err(|e| e.to_string())?;
            if batch.total() == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stop.changed() => return Ok(()),
                    _ = &mut conn => return Err("the lock's connection closed".into()),
                }
            }
        }
    }

    /// Fires one batch of due timers (at most `BATCH_MAX`). Fails when the database does.
    pub async fn fire_due(&self) -> Result<Fired, SchedulerError> {
        let now = self.clock.now();
        let client = self.pool.get().await?;
        let ttl_secs = self.unpaid_ttl.num_seconds() as f64;
        let rows = client
            .query(
                "SELECT timer_id, kind, stream_id, due_at, attempts FROM timers
                 WHERE state = 'pending' AND next_attempt_at <= $1
                   AND due_at <= $1 - CASE WHEN kind = 'order_unpaid' THEN make_interval(secs => $2) ELSE interval '0' END
                 ORDER BY due_at, timer_id LIMIT $3",
                &[&now, &ttl_secs, &BATCH_MAX],
            )
            .await?;
        drop(client);
        let jobs: Vec<(String, String, Uuid, DateTime<Utc>, i32)> =
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))).collect();
        // Each outcome is written as soon as its command returns, for the deadline it fired:
        // a timer the projection re-armed meanwhile (a new due time) is left as it is.
        let outcomes: Vec<Result<Outcome, SchedulerError>> = futures_util::stream::iter(jobs)
            .map(|(id, kind, stream, due, attempts)| async move {
                // A task of its own: a command that panics (a bug) fails this timer, not the scheduler.
                let me = self.clone();
                let (timer, k) = (id.clone(), kind.clone());
                let fired = tokio::spawn(async move { me.fire(&timer, &k, stream, due, now).await }).await;
                let outcome = fired.unwrap_or_else(|e| Outcome::Failed(format!("the command panicked: {e}")));
                self.record(&id, due, attempts, &outcome, now).await?;
                Ok(outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut fired = Fired::default();
        for outcome in outcomes {
            match outcome? {
                Outcome::Fired => fired.fired += 1,
                Outcome::Moot(_) => fired.moot += 1,
                Outcome::Later(..) => fired.later += 1,
                Outcome::Failed(_) => fired.failed += 1,
            }
        }
        Ok(fired)
    }

    /// Records what firing a timer led to. A fired timer is marked so even when the
    /// projection already cancelled it on the command's own event; a re-armed one (another due
    /// time) is left alone.
    async fn record(
        &self,
        id: &str,
        due: DateTime<Utc>,
        attempts: i32,
        outcome: &Outcome,
        now: DateTime<Utc>,
    ) -> Result<(), SchedulerError> {
        let (state, error, retry_at, attempts) = match outcome {
            Outcome::Fired => ("fired", None, None, attempts),
            Outcome::Moot(e) => ("moot", Some(e.clone()), None, attempts),
            Outcome::Later(after, why) => ("pending", Some(why.clone()), Some(now + *after), attempts),
            Outcome::Failed(e) => {
                let backoff = (1i64 << attempts.clamp(0, 10)).min(BACKOFF_MAX_SECS);
                tracing::warn!(timer = %id, attempts = attempts + 1, error = %e, "timer failed; will retry");
                ("pending", Some(e.clone()), Some(now + Duration::seconds(backoff)), attempts + 1)
            }
        };
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE timers SET state = $3, last_error = $4, attempts = $5,
                     next_attempt_at = coalesce($6, next_attempt_at),
                     fired_at = CASE WHEN $3 = 'fired' THEN $7 ELSE fired_at END, updated_at = now()
                 WHERE timer_id = $1 AND due_at = $2
                   AND (state = 'pending' OR (state = 'cancelled' AND $3 = 'fired'))",
                &[&id, &due, &state, &error, &attempts, &retry_at, &now],
            )
            .await?;
        Ok(())
    }

    /// Issues the command a timer stands for.
    async fn fire(&self, timer_id: &str, kind: &str, stream: Uuid, due: DateTime<Utc>, now: DateTime<Utc>) -> Outcome {
        let key = format!("timer:{timer_id}:{}", due.timestamp_micros());
        let hash = Sha256::digest(key.as_bytes()).to_vec();
        let meta = |command: &'static str| {
            let mut m = CommandMeta::system(command, now);
            m.idempotency = Some((key.clone(), hash.clone()));
            m
        };
        let result = match kind {
            "listing_approval" => {
                self.commands
                    .listing_command(&meta("auto_approve_listing"), stream, listing::Command::AutoApprove)
                    .await
            }
            "order_unpaid" => self.commands.expire_order(&meta("expire_order"), stream, self.unpaid_ttl).await,
            "escrow_release" => match self.commands.store().load::<EscrowAggregate>(stream).await {
                Ok(loaded) => match loaded.state {
                    escrow::State::Exists(e) => {
                        self.commands.complete_order(&meta("auto_release"), e.order_id, true).await
                    }
                    escrow::State::Initial => return Outcome::Moot("no such escrow".into()),
                },
                Err(e) => return Outcome::Failed(e.to_string()),
            },
            other => return Outcome::Moot(format!("unknown timer kind {other}")),
        };
        match result {
            Ok(_) => Outcome::Fired,
            Err(CommandError::Domain(DomainError::NotDue)) => {
                Outcome::Later(Duration::seconds(60), "not due yet".into())
            }
            Err(CommandError::Domain(DomainError::PaymentPending)) => {
                Outcome::Later(Duration::minutes(5), "a provider payment of the order is in progress".into())
            }
            Err(CommandError::Domain(e)) => Outcome::Moot(e.to_string()),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

/// Why a batch could not be taken or recorded.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
}
