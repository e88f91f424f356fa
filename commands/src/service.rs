//! Command handling: load the streams a command needs, run a pure flow from the domain, append
//! every changed stream in one transaction. Conflicts are retried a bounded number of times
//! unless the client pinned a version with `If-Match`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use bozor_domain::aggregate::{self, Aggregate};
use bozor_domain::escrow::EscrowAggregate;
use bozor_domain::flows::{self, Streams, UnitOfWork};
use bozor_domain::listing::ListingAggregate;
use bozor_domain::order::{self, OrderAggregate};
use bozor_domain::payment::PaymentAggregate;
use bozor_domain::user::UserAggregate;
use bozor_domain::wallet::WalletAggregate;
use bozor_domain::{Actor, Context, DomainError};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::store::{
    AppendRequest, EventStore, Fetched, IdempotencyWrite, StoreError, StreamAppend, StreamVersion, Want,
};

/// Attempts of a command whose append meets a version conflict. With the growing, jittered
/// backoff between them, a command waits at most about 0.6 s in all before answering 409.
pub const ATTEMPTS_MAX: u32 = 16;

/// Wallet streams are snapshotted at least every this many events (see `request`).
pub const WALLET_SNAPSHOT_EVERY_MAX: i64 = 20;

/// Who sends a command, when, and under which client guarantees.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    pub actor: Actor,
    pub now: DateTime<Utc>,
    /// The command's name, recorded in the events' metadata.
    pub command: &'static str,
    pub request_id: Uuid,
    pub correlation_id: Uuid,
    /// `Idempotency-Key` with the hash of the request it came with.
    pub idempotency: Option<(String, Vec<u8>)>,
    /// `If-Match`: the version the addressed stream must be at.
    pub if_match: Option<i64>,
}

/// Why a command was not carried out. Nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// `If-Match` named another version than the stream's.
    #[error("stream is at version {actual}, not {expected}")]
    VersionMismatch { expected: i64, actual: i64 },
    /// Another command changed a stream first (with `If-Match`, or after every retry).
    #[error("another command changed the stream first; reload and retry")]
    Conflict,
    /// The idempotency key was used before with another request.
    #[error("idempotency key was used with another request")]
    IdempotencyKeyReused,
    /// The event store failed.
    #[error(transparent)]
    Store(StoreError),
    /// Sealing or opening credentials failed.
    #[error(transparent)]
    Vault(crate::vault::VaultError),
    /// No turn came within the wait: more commands at once than this process runs.
    #[error("too many commands at once; retry later")]
    Busy,
}

impl From<crate::vault::VaultError> for CommandError {
    fn from(e: crate::vault::VaultError) -> Self {
        match e {
            crate::vault::VaultError::KeyShredded(_) => CommandError::Domain(DomainError::CredentialsErased),
            other => CommandError::Vault(other),
        }
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::Store(e)
    }
}

/// What a command wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Outcome {
    /// The addressed resource.
    pub id: Uuid,
    /// Its stream's version after the command.
    pub version: i64,
    /// Global position of the last event written (none when the command changed nothing).
    pub position: Option<i64>,
    /// Every stream written, with its new version.
    pub streams: Vec<StreamVersion>,
    /// True when this is the stored answer to an earlier request with the same idempotency key.
    #[serde(skip)]
    pub replayed: bool,
}

/// Loads streams into a unit of work and remembers each one's head. Owned, so a command's
/// loading code is a plain `move |mut l| async move { ...; Ok(l) }` whose future is `Send`.
///
/// A stream's identity includes its type: an id that belongs to a stream of another type
/// loads as a stream that does not exist (the command then answers "not found"), and a
/// command that would create a stream there is refused as `already_exists`.
pub struct Loader {
    store: EventStore,
    uow: UnitOfWork,
    heads: BTreeMap<Uuid, (i64, [u8; 32])>,
    /// Ids taken by a stream of another type than the one they were loaded as.
    foreign: BTreeMap<Uuid, &'static str>,
    /// Streams read ahead by `prefetch`, not loaded into the unit of work yet.
    fetched: Fetched,
    /// Whether a stream may be presumed new without reading it: on a command's first attempt,
    /// when no `If-Match` turns a conflict into the answer.
    may_presume: bool,
    /// Whether a stream was presumed new.
    presumed: bool,
}

impl Loader {
    async fn load<A: Aggregate>(
        &mut self,
        id: Uuid,
        pick: fn(&mut UnitOfWork) -> &mut Streams<A>,
    ) -> Result<A::State, CommandError> {
        let streams = pick(&mut self.uow);
        if streams.has(id) {
            return Ok(streams.state(id).clone());
        }
        let loaded = match self.fetched.take::<A>(id) {
            Some(loaded) => loaded,
            None => self.store.load::<A>(id).await,
        };
        let loaded = match loaded {
            Err(StoreError::WrongStreamType { .. }) => {
                self.foreign.insert(id, A::STREAM_TYPE);
                self.heads.insert(id, (0, crate::hash::GENESIS));
                pick(&mut self.uow).load(id, A::initial());
                return Ok(A::initial());
            }
            other => other?,
        };
        self.heads.insert(id, (loaded.version, loaded.hash));
        pick(&mut self.uow).load(id, loaded.state.clone());
        Ok(loaded.state)
    }

    /// On a command's first attempt, takes the stream `id` of `A` as one that does not exist,
    /// without reading it. Its append then expects version 0, which the store refuses as a
    /// conflict when the stream exists after all (of any type): the command is retried, and on
    /// a retry nothing is presumed, so the stream is read. Answers whether it presumed; when it
    /// did not, the caller loads as usual. For streams that almost never exist yet (a provider's
    /// new transaction), so the read is saved far more often than the retry is paid.
    fn presume_new<A: Aggregate>(&mut self, id: Uuid, pick: fn(&mut UnitOfWork) -> &mut Streams<A>) -> bool {
        if !self.may_presume || self.heads.contains_key(&id) || self.fetched.has(id) || pick(&mut self.uow).has(id) {
            return false;
        }
        self.heads.insert(id, (0, crate::hash::GENESIS));
        pick(&mut self.uow).load(id, A::initial());
        self.presumed = true;
        true
    }

    /// `presume_new` for a payment stream.
    pub(crate) fn presume_new_payment(&mut self, id: Uuid) -> bool {
        self.presume_new::<PaymentAggregate>(id, |u| &mut u.payments)
    }

    /// Tells the flow that `user_id` exists without loading the user's stream (a user, once
    /// registered, always exists; see `UnitOfWork::existing_users`). Only for users this
    /// process has loaded and seen exist (`payments::ExistingUsers`), never for an id a request
    /// names.
    pub(crate) fn known_to_exist(&mut self, user_id: Uuid) {
        self.uow.existing_users.insert(user_id);
    }

    /// Reads the streams of `wants` not loaded yet in one statement; each then loads from what
    /// was read when the command asks for it (as the type it was wanted as). A command whose
    /// next streams are known before it looks at any of them reads them in one round trip
    /// instead of one each.
    pub async fn prefetch(&mut self, wants: &[Want]) -> Result<(), CommandError> {
        let wants: Vec<Want> = wants
            .iter()
            .filter(|w| !self.heads.contains_key(&w.stream_id) && !self.fetched.has(w.stream_id))
            .copied()
            .collect();
        if !wants.is_empty() {
            self.fetched.extend(self.store.load_many(&wants).await?);
        }
        Ok(())
    }

    /// Loads a listing stream.
    pub async fn listing(&mut self, id: Uuid) -> Result<bozor_domain::listing::State, CommandError> {
        self.load::<ListingAggregate>(id, |u| &mut u.listings).await
    }

    /// Loads an order stream.
    pub async fn order(&mut self, id: Uuid) -> Result<order::State, CommandError> {
        self.load::<OrderAggregate>(id, |u| &mut u.orders).await
    }

    /// Loads an escrow stream.
    pub async fn escrow(&mut self, id: Uuid) -> Result<bozor_domain::escrow::State, CommandError> {
        self.load::<EscrowAggregate>(id, |u| &mut u.escrows).await
    }

    /// Loads a wallet stream.
    pub async fn wallet(&mut self, id: Uuid) -> Result<bozor_domain::wallet::State, CommandError> {
        self.load::<WalletAggregate>(id, |u| &mut u.wallets).await
    }

    /// Loads a user stream.
    pub async fn user(&mut self, id: Uuid) -> Result<bozor_domain::user::State, CommandError> {
        self.load::<UserAggregate>(id, |u| &mut u.users).await
    }

    /// Loads a payment stream.
    pub async fn payment(&mut self, id: Uuid) -> Result<bozor_domain::payment::State, CommandError> {
        self.load::<PaymentAggregate>(id, |u| &mut u.payments).await
    }

    /// Loads an order with what paying it touches: the order and its escrow in one round trip,
    /// then its buyer's wallet together with `also`. Not its listings or its other settlement
    /// wallets: a payment changes none of them, and a listing with many orders open is one of
    /// the largest states a command can read.
    pub async fn order_payment_and(&mut self, order_id: Uuid, also: &[Want]) -> Result<(), CommandError> {
        let escrow_id = flows::escrow_id_for(order_id);
        self.prefetch(&[Want::of::<OrderAggregate>(order_id), Want::of::<EscrowAggregate>(escrow_id)]).await?;
        let order::State::Exists(o) = self.order(order_id).await? else {
            return Ok(()); // the flow answers "order not found"
        };
        let buyer_wallet = bozor_domain::wallet::user_wallet_id(o.buyer_id);
        let mut wants: Vec<Want> = also.to_vec();
        wants.push(Want::of::<WalletAggregate>(buyer_wallet));
        self.prefetch(&wants).await?;
        self.escrow(escrow_id).await?;
        self.wallet(buyer_wallet).await?;
        Ok(())
    }

    /// Loads an order with everything a step of it may touch: escrow, listings, wallets.
    pub async fn order_world(&mut self, order_id: Uuid) -> Result<(), CommandError> {
        self.order_world_and(order_id, &[]).await
    }

    /// `order_world`, with `also` read in the same round trip as the order's escrow, listings
    /// and wallets.
    pub async fn order_world_and(&mut self, order_id: Uuid, also: &[Want]) -> Result<(), CommandError> {
        let escrow_id = flows::escrow_id_for(order_id);
        self.prefetch(&[Want::of::<OrderAggregate>(order_id), Want::of::<EscrowAggregate>(escrow_id)]).await?;
        let order::State::Exists(o) = self.order(order_id).await? else {
            return Ok(()); // the flow answers "order not found"
        };
        let (listings, wallets) = (flows::order_listings(&o), flows::settlement_wallets(&o));
        let mut wants: Vec<Want> = also.to_vec();
        wants.extend(listings.iter().copied().map(Want::of::<ListingAggregate>));
        wants.extend(wallets.iter().copied().map(Want::of::<WalletAggregate>));
        self.prefetch(&wants).await?;
        self.escrow(escrow_id).await?;
        for id in listings {
            self.listing(id).await?;
        }
        for id in wallets {
            self.wallet(id).await?;
        }
        Ok(())
    }
}

/// The write side's entry point.
#[derive(Clone)]
pub struct CommandService {
    store: EventStore,
    appended: Arc<watch::Sender<Appends>>,
    clearing: Arc<crate::payments::ClearingLeases>,
    payment_targets: Arc<crate::payments::PaymentTargets>,
    existing_users: Arc<crate::payments::ExistingUsers>,
    turns: Option<Turns>,
}

/// How many commands may be between their first read and their append at once, and how long
/// one waits for its turn.
#[derive(Clone)]
struct Turns {
    at_once: Arc<tokio::sync::Semaphore>,
    wait: Duration,
    waiting: CommandsWaiting,
}

/// How many commands of this process are waiting for a turn now (see
/// `CommandService::with_turns`). While any are, the machine is saturated by commands: the
/// in-process projectors then let bigger batches gather, which takes less of the machine than
/// many small ones (see `bozor_projections::runtime::COALESCE_WAIT`).
#[derive(Clone, Debug, Default)]
pub struct CommandsWaiting(Arc<std::sync::atomic::AtomicUsize>);

impl CommandsWaiting {
    /// Whether any command is waiting for a turn now.
    pub fn any(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) > 0
    }
}

/// Counts one waiting command while it lives (a request given up drops it too).
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl CommandService {
    /// A service appending to `store`.
    pub fn new(store: EventStore) -> CommandService {
        CommandService {
            store,
            appended: Arc::new(watch::channel(Appends::default()).0),
            clearing: Arc::new(crate::payments::ClearingLeases::new()),
            payment_targets: Arc::new(crate::payments::PaymentTargets::new()),
            existing_users: Arc::new(crate::payments::ExistingUsers::new()),
            turns: None,
        }
    }

    /// Lets at most `at_once` commands of this service read and append at a time; the others
    /// wait their turn in arrival order, at most `wait`, then fail with `Busy`. On a saturated
    /// machine the waiting is done here, first come first served, instead of by the database's
    /// backends contending for its cores (which stretched the slowest answers).
    pub fn with_turns(mut self, at_once: usize, wait: Duration) -> CommandService {
        let at_once = Arc::new(tokio::sync::Semaphore::new(at_once.max(1)));
        self.turns = Some(Turns { at_once, wait, waiting: CommandsWaiting::default() });
        self
    }

    /// Counts the commands waiting for a turn (never any when turns are not limited).
    pub fn commands_waiting(&self) -> CommandsWaiting {
        self.turns.as_ref().map(|t| t.waiting.clone()).unwrap_or_default()
    }

    /// A turn to run (see `with_turns`): `None` when turns are not limited.
    async fn turn(&self) -> Result<Option<tokio::sync::SemaphorePermit<'_>>, CommandError> {
        let Some(t) = &self.turns else { return Ok(None) };
        // A free turn is taken at once. None is free while others wait (a turn given back goes
        // to the first in line), so this keeps arrival order.
        if let Ok(permit) = t.at_once.try_acquire() {
            return Ok(Some(permit));
        }
        t.waiting.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _waiting = Waiting(&t.waiting.0);
        match tokio::time::timeout(t.wait, t.at_once.acquire()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(CommandError::Busy),
        }
    }

    /// The provider clearing shards this process's payment commands hold.
    pub(crate) fn clearing_leases(&self) -> &crate::payments::ClearingLeases {
        &self.clearing
    }

    /// The targets of payments this process has seen (see `PaymentTargets`).
    pub fn payment_targets(&self) -> &crate::payments::PaymentTargets {
        &self.payment_targets
    }

    /// The users this process has seen exist (see `ExistingUsers`).
    pub fn existing_users(&self) -> &crate::payments::ExistingUsers {
        &self.existing_users
    }

    /// Counts appends: projectors in the same process wait for it to change instead of polling
    /// (the embedded mode). A receiver remembers what it has seen, so no append is missed.
    pub fn appended(&self) -> watch::Receiver<Appends> {
        self.appended.subscribe()
    }

    /// The store.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Runs a command: `load` fills the unit of work, `flow` decides on it, and the result is
    /// appended atomically. `primary` is the stream the client addresses (checked by If-Match)
    /// and the resource the outcome names.
    pub async fn run<L, Fut, F>(
        &self,
        meta: &CommandMeta,
        primary: Uuid,
        load: L,
        flow: F,
    ) -> Result<Outcome, CommandError>
    where
        L: Fn(Loader) -> Fut,
        Fut: std::future::Future<Output = Result<Loader, CommandError>>,
        F: Fn(&mut UnitOfWork, &Context) -> Result<(), DomainError>,
    {
        self.run_for(meta, primary, primary, load, flow).await
    }

    /// `run` for a resource that is not itself a stream (a withdrawal lives in a wallet stream):
    /// the outcome, and every replay of it, names `resource`.
    pub async fn run_for<L, Fut, F>(
        &self,
        meta: &CommandMeta,
        primary: Uuid,
        resource: Uuid,
        load: L,
        flow: F,
    ) -> Result<Outcome, CommandError>
    where
        L: Fn(Loader) -> Fut,
        Fut: std::future::Future<Output = Result<Loader, CommandError>>,
        F: Fn(&mut UnitOfWork, &Context) -> Result<(), DomainError>,
    {
        let ctx = Context { now: meta.now, actor: meta.actor.clone() };
        // A turn kept for the next attempt (see the conflict of a presumed stream below).
        let mut kept = None;
        for attempt in 0..ATTEMPTS_MAX {
            let turn = match kept.take() {
                Some(turn) => turn,
                None => self.turn().await?,
            };
            // Checked on every attempt: the conflict that caused a retry may have been this
            // request's own twin, whose stored answer is then ours.
            if let Some(outcome) = self.replay(meta).await? {
                return Ok(outcome);
            }
            let fresh = Loader {
                store: self.store.clone(),
                uow: UnitOfWork::default(),
                heads: BTreeMap::new(),
                foreign: BTreeMap::new(),
                fetched: Fetched::default(),
                may_presume: attempt == 0 && meta.if_match.is_none(),
                presumed: false,
            };
            let loader = load(fresh).await?;
            let presumed = loader.presumed;
            let current = loader.heads.get(&primary).map_or(0, |h| h.0);
            if let Some(expected) = meta.if_match {
                if expected != current {
                    return Err(CommandError::VersionMismatch { expected, actual: current });
                }
            }
            let mut uow = loader.uow;
            // A twin request with the same key may have committed after the replay check and
            // before the load, turning this decision into a refusal or a no-op. Its commit stored
            // the answer in the same transaction, so it is visible now: answer with it.
            if let Err(e) = flow(&mut uow, &ctx) {
                return match self.replay(meta).await? {
                    Some(outcome) => Ok(outcome),
                    None => Err(e.into()),
                };
            }
            if crate::fault::armed("command_panic") {
                panic!("BOZOR_FAULT=command_panic: a command panics before its append");
            }
            let (req, snapshots) = self.request(&uow, &loader.heads, meta, primary, resource);
            if let Some(what) = req.streams.iter().find_map(|s| loader.foreign.get(&s.stream_id)) {
                return Err(DomainError::AlreadyExists { what }.into());
            }
            if req.streams.is_empty() {
                if let Some(outcome) = self.replay(meta).await? {
                    return Ok(outcome);
                }
                return Ok(Outcome {
                    id: resource,
                    version: current,
                    position: None,
                    streams: vec![],
                    replayed: false,
                });
            }
            match self.store.append(&req).await {
                Ok(appended) => {
                    self.appended.send_modify(|n| n.count(req.streams.iter().map(|s| s.stream_type)));
                    self.save_snapshots(&uow, &snapshots, &req, &appended.heads).await;
                    return Ok(outcome(resource, primary, current, appended.outcome));
                }
                Err(e) if e.is_conflict() && meta.if_match.is_none() && presumed => {
                    // Most likely the stream presumed new exists (a repeated callback): decided
                    // again at once, with reads, in the same turn; nothing to spread out.
                    tracing::debug!(attempt, error = %e, "a stream presumed new exists, deciding again");
                    kept = Some(turn);
                }
                Err(e) if e.is_conflict() && meta.if_match.is_none() => {
                    tracing::debug!(attempt, error = %e, "append conflict, retrying");
                    drop(turn);
                    // Back off a little, longer each time, so contenders spread out.
                    let jitter = u64::from(Uuid::new_v4().as_bytes()[0] % 8);
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 4 + jitter)).await;
                }
                Err(e) if e.is_conflict() => return Err(CommandError::Conflict),
                Err(StoreError::IdempotencyRace) => {
                    return self.replay(meta).await?.ok_or(CommandError::Conflict);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommandError::Conflict)
    }

    /// Loads what `load` names and runs `flow` on it without appending anything: the answer a
    /// command would get now (a provider's "may this be paid?" question).
    pub async fn check<L, Fut, F>(&self, meta: &CommandMeta, load: L, flow: F) -> Result<(), CommandError>
    where
        L: FnOnce(Loader) -> Fut,
        Fut: std::future::Future<Output = Result<Loader, CommandError>>,
        F: FnOnce(&mut UnitOfWork, &Context) -> Result<(), DomainError>,
    {
        let ctx = Context { now: meta.now, actor: meta.actor.clone() };
        let _turn = self.turn().await?;
        let fresh = Loader {
            store: self.store.clone(),
            uow: UnitOfWork::default(),
            heads: BTreeMap::new(),
            foreign: BTreeMap::new(),
            fetched: Fetched::default(),
            // A check appends nothing, so a presumption would never be put to the test.
            may_presume: false,
            presumed: false,
        };
        let mut loader = load(fresh).await?;
        flow(&mut loader.uow, &ctx).map_err(CommandError::from)
    }

    /// The stored outcome for a repeated idempotency key; refuses a key reused with another request.
    async fn replay(&self, meta: &CommandMeta) -> Result<Option<Outcome>, CommandError> {
        let Some((key, hash)) = &meta.idempotency else { return Ok(None) };
        let Some((stored_hash, response)) = self.store.idempotency_record(&meta.actor.id.to_string(), key).await?
        else {
            return Ok(None);
        };
        if &stored_hash != hash {
            return Err(CommandError::IdempotencyKeyReused);
        }
        let stored: crate::store::AppendOutcome = serde_json::from_value(response).map_err(StoreError::from)?;
        let field = |name: &str| -> Uuid {
            stored.response.get(name).and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or_default()
        };
        let (id, stream) = (field("id"), field("stream_id"));
        let mut o = outcome(id, stream, 0, stored);
        o.replayed = true;
        Ok(Some(o))
    }

    fn request(
        &self,
        uow: &UnitOfWork,
        heads: &BTreeMap<Uuid, (i64, [u8; 32])>,
        meta: &CommandMeta,
        primary: Uuid,
        resource: Uuid,
    ) -> (AppendRequest, Vec<Uuid>) {
        let mut streams = Vec::new();
        collect(&uow.listings, heads, &mut streams);
        collect(&uow.orders, heads, &mut streams);
        collect(&uow.escrows, heads, &mut streams);
        collect(&uow.wallets, heads, &mut streams);
        collect(&uow.users, heads, &mut streams);
        collect(&uow.payments, heads, &mut streams);
        // One order of row locks for every command, so concurrent multi-stream appends queue
        // behind each other instead of deadlocking.
        streams.sort_by_key(|s| s.stream_id);
        let every = self.store.snapshot_every();
        let snapshots = streams
            .iter()
            .filter(|s| {
                // Wallets are the hot streams (platform shards take a posting in every payment)
                // and their state is small: snapshotted more often, a load reads fewer events.
                let every = if s.stream_type == "wallet" { every.min(WALLET_SNAPSHOT_EVERY_MAX) } else { every };
                (s.expected + s.events.len() as i64) / every > s.expected / every
            })
            .map(|s| s.stream_id)
            .collect();
        let metadata = json!({
            "actor": meta.actor.id,
            "roles": meta.actor.roles,
            "command": meta.command,
            "command_id": Uuid::new_v4(),
            "request_id": meta.request_id,
            "correlation_id": meta.correlation_id,
        });
        let idempotency = meta.idempotency.as_ref().map(|(key, hash)| IdempotencyWrite {
            scope: meta.actor.id.to_string(),
            key: key.clone(),
            request_hash: hash.clone(),
        });
        let req = AppendRequest {
            streams,
            metadata,
            recorded_at: meta.now,
            idempotency,
            response: json!({ "id": resource, "stream_id": primary }),
        };
        (req, snapshots)
    }

    async fn save_snapshots(&self, uow: &UnitOfWork, due: &[Uuid], req: &AppendRequest, heads: &[[u8; 32]]) {
        for (s, head) in req.streams.iter().zip(heads) {
            if !due.contains(&s.stream_id) {
                continue;
            }
            let version = s.expected + s.events.len() as i64;
            let saved = match s.stream_type {
                "listing" => self.snapshot::<ListingAggregate>(&uow.listings, s.stream_id, version, head).await,
                "order" => self.snapshot::<OrderAggregate>(&uow.orders, s.stream_id, version, head).await,
                "escrow" => self.snapshot::<EscrowAggregate>(&uow.escrows, s.stream_id, version, head).await,
                "user" => self.snapshot::<UserAggregate>(&uow.users, s.stream_id, version, head).await,
                "payment" => self.snapshot::<PaymentAggregate>(&uow.payments, s.stream_id, version, head).await,
                _ => self.snapshot::<WalletAggregate>(&uow.wallets, s.stream_id, version, head).await,
            };
            // A missing snapshot only makes the next load read more events.
            if let Err(e) = saved {
                tracing::warn!(stream_id = %s.stream_id, error = %e, "snapshot not saved");
            }
        }
    }

    async fn snapshot<A: Aggregate>(
        &self,
        streams: &Streams<A>,
        id: Uuid,
        version: i64,
        head: &[u8; 32],
    ) -> Result<(), StoreError> {
        self.store.save_snapshot::<A>(id, version, head, streams.state(id)).await
    }
}

fn collect<A: Aggregate>(streams: &Streams<A>, heads: &BTreeMap<Uuid, (i64, [u8; 32])>, out: &mut Vec<StreamAppend>) {
    for (id, events, _) in streams.changes() {
        let (expected, prev_hash) = *heads.get(&id).expect("changed streams were loaded");
        out.push(StreamAppend {
            stream_id: id,
            stream_type: A::STREAM_TYPE,
            expected,
            prev_hash,
            events: events.iter().map(aggregate::encode).collect(),
        });
    }
}

fn outcome(resource: Uuid, primary: Uuid, current: i64, stored: crate::store::AppendOutcome) -> Outcome {
    let version = stored.streams.iter().find(|s| s.stream_id == primary).map_or(current, |s| s.version);
    Outcome { id: resource, version, position: Some(stored.position), streams: stored.streams, replayed: false }
}

/// The stream types of the event store, in the order `Appends` counts them.
pub const STREAM_TYPES: [&str; 6] = [
    ListingAggregate::STREAM_TYPE,
    OrderAggregate::STREAM_TYPE,
    EscrowAggregate::STREAM_TYPE,
    WalletAggregate::STREAM_TYPE,
    UserAggregate::STREAM_TYPE,
    PaymentAggregate::STREAM_TYPE,
];

/// Appends this process committed, counted per stream type: an append to several streams
/// counts once for each type it wrote. Projectors in the process watch it to wake as soon as
/// something they read was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Appends([u64; STREAM_TYPES.len()]);

impl Appends {
    /// Counts one append that wrote streams of `types` (each type once, however many streams).
    pub fn count<'a>(&mut self, types: impl Iterator<Item = &'a str>) {
        let mut wrote = [false; STREAM_TYPES.len()];
        for t in types {
            if let Some(i) = STREAM_TYPES.iter().position(|known| *known == t) {
                wrote[i] = true;
            }
        }
        for (n, w) in self.0.iter_mut().zip(wrote) {
            *n = n.wrapping_add(u64::from(w));
        }
    }

    /// Whether an append to one of `types` was counted since `before`.
    pub fn wrote_since(&self, before: &Appends, types: &[&str]) -> bool {
        STREAM_TYPES.iter().zip(self.0.iter().zip(before.0)).any(|(t, (now, then))| *now != then && types.contains(t))
    }
}

/// Resolves when the next append is counted on `appended`; never when there is no counter or
/// it has closed (a closed channel must not turn a waiting loop into a busy spin).
pub async fn next_append(appended: Option<&mut watch::Receiver<Appends>>) {
    if let Some(rx) = appended {
        if rx.changed().await.is_ok() {
            return;
        }
    }
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(at_once: usize, wait: Duration) -> CommandService {
        // Turns are taken before any connection: this pool is never asked for one.
        let pool = crate::db::pool("postgres://nobody@127.0.0.1:1/none", 1).expect("a pool");
        CommandService::new(EventStore::new(pool, 100)).with_turns(at_once, wait)
    }

    #[tokio::test]
    async fn a_command_waits_its_turn_and_is_told_busy_when_none_comes() {
        let svc = service(2, Duration::from_millis(50));
        let (a, b) = (svc.turn().await.unwrap(), svc.turn().await.unwrap());
        assert!(a.is_some() && b.is_some());
        assert!(matches!(svc.turn().await, Err(CommandError::Busy)), "a third waits 50 ms, then is busy");
        // A turn given back goes to the next in line.
        let waiting = tokio::spawn({
            let svc = svc.clone();
            async move { svc.turn().await.map(|t| t.is_some()) }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(a);
        assert!(waiting.await.unwrap().unwrap());
        drop(b);
    }

    #[tokio::test]
    async fn commands_waiting_for_a_turn_are_counted_while_they_wait() {
        let svc = service(1, Duration::from_secs(5));
        let waiting = svc.commands_waiting();
        let held = svc.turn().await.unwrap();
        assert!(!waiting.any(), "a free turn is taken without waiting");
        let queued = tokio::spawn({
            let svc = svc.clone();
            async move { svc.turn().await.map(|t| t.is_some()) }
        });
        let given_up = tokio::spawn({
            let svc = svc.clone();
            async move { svc.turn().await.map(|t| t.is_some()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(waiting.0.load(std::sync::atomic::Ordering::Relaxed), 2);
        // A request given up while it waits stops counting.
        given_up.abort();
        let _ = given_up.await;
        assert_eq!(waiting.0.load(std::sync::atomic::Ordering::Relaxed), 1);
        drop(held);
        assert!(queued.await.unwrap().unwrap());
        assert!(!waiting.any());
    }

    fn loader(may_presume: bool) -> Loader {
        // Nothing is read: this pool is never asked for a connection.
        let pool = crate::db::pool("postgres://nobody@127.0.0.1:1/none", 1).expect("a pool");
        Loader {
            store: EventStore::new(pool, 100),
            uow: UnitOfWork::default(),
            heads: BTreeMap::new(),
            foreign: BTreeMap::new(),
            fetched: Fetched::default(),
            may_presume,
            presumed: false,
        }
    }

    #[test]
    fn a_top_up_of_a_known_user_is_decided_without_reading_on_its_first_attempt() {
        use bozor_domain::payment::{self, Target};
        use bozor_domain::wallet::Provider;
        let (user, payment_id) = (Uuid::new_v4(), payment::payment_id_for(Provider::Payme, "t1"));
        let mut l = loader(true);
        assert!(l.presume_new_payment(payment_id));
        assert!(!l.presume_new_payment(payment_id), "presumed once");
        l.known_to_exist(user);
        assert_eq!(l.heads.get(&payment_id), Some(&(0, crate::hash::GENESIS)), "its append expects a new stream");
        let ctx = Context { now: Utc::now(), actor: Actor::system() };
        let amount = bozor_domain::Money::from_tiyin(1_000).unwrap();
        let target = Target::Wallet { user_id: user };
        flows::create_payment(&mut l.uow, &ctx, payment_id, Provider::Payme, "t1", target, amount, 1).expect("decided");
        assert!(matches!(l.uow.payments.state(payment_id), payment::State::Exists(_)));
        // Another user is not known to exist: the flow would need the user's stream.
        let mut l = loader(true);
        assert!(l.presume_new_payment(payment_id));
        let stranger = Target::Wallet { user_id: Uuid::new_v4() };
        let unread = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flows::check_payment(&mut l.uow, &ctx, payment_id, stranger, amount)
        }));
        assert!(unread.is_err(), "an unknown user is not taken to exist");
        // A retry, or a command with If-Match, presumes nothing: the caller reads.
        assert!(!loader(false).presume_new_payment(payment_id));
    }

    #[tokio::test]
    async fn without_turns_nothing_waits() {
        let pool = crate::db::pool("postgres://nobody@127.0.0.1:1/none", 1).expect("a pool");
        let svc = CommandService::new(EventStore::new(pool, 100));
        for _ in 0..100 {
            assert!(svc.turn().await.unwrap().is_none());
        }
    }
}
