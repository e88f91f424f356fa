//! Provider payments on the write side: which streams a payment's create, perform and cancel
//! load, and the flows that decide them (see `bozor_domain::flows::create_payment`).

use bozor_domain::escrow::EscrowAggregate;
use bozor_domain::flows;
use bozor_domain::order::OrderAggregate;
use bozor_domain::payment::{self, CancelReason, PaymentAggregate, Target};
use bozor_domain::user::UserAggregate;
use bozor_domain::wallet::{self, PlatformAccount, Provider, WalletAggregate};
use bozor_domain::Money;
use uuid::Uuid;

use crate::service::{CommandError, CommandMeta, CommandService, Loader, Outcome};
use crate::store::{StoreError, Want};

/// The stream a new payment's target is: the user of a top-up, or the order.
fn target_want(target: Target) -> Want {
    match target {
        Target::Wallet { user_id } => Want::of::<UserAggregate>(user_id),
        Target::Order { order_id } => Want::of::<OrderAggregate>(order_id),
    }
}

/// Loads a new payment's target: the user of a top-up, or the order.
async fn load_target(l: &mut Loader, target: Target) -> Result<(), CommandError> {
    match target {
        Target::Wallet { user_id } => l.user(user_id).await.map(|_| ()),
        Target::Order { order_id } => l.order(order_id).await.map(|_| ()),
    }
}

/// Provider clearing shards held by this process's payment commands, from load to append. Every
/// provider callback moves money against provider clearing; two commands on one shard at once
/// make one of them conflict and retry, which made most of a callback's tail. A command leases
/// a shard no other command of this process holds (any shard is as good as another: the
/// account's balance is the sum of its shards), so only commands of different processes can
/// still meet on one.
pub struct ClearingLeases {
    busy: std::sync::Mutex<Vec<bool>>,
    next: std::sync::atomic::AtomicUsize,
}

/// A leased shard, given back when dropped.
pub struct ClearingLease<'a> {
    leases: &'a ClearingLeases,
    shard: u8,
    held: bool,
}

impl ClearingLeases {
    pub fn new() -> ClearingLeases {
        let shards = usize::from(wallet::shards(PlatformAccount::ProviderClearing));
        // Processes start at different shards, so their leases seldom meet.
        let start = usize::from(Uuid::new_v4().as_bytes()[0]) % shards;
        ClearingLeases { busy: std::sync::Mutex::new(vec![false; shards]), next: start.into() }
    }

    /// A shard no other command of this process holds (the next free one after the last
    /// lease), or, when every shard is held, a shared one.
    pub fn lease(&self) -> ClearingLease<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = busy.len();
        let start = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n;
        for i in 0..n {
            let shard = (start + i) % n;
            if !busy[shard] {
                busy[shard] = true;
                return ClearingLease { leases: self, shard: shard as u8, held: true };
            }
        }
        ClearingLease { leases: self, shard: start as u8, held: false }
    }

    /// Shards held now.
    pub fn held(&self) -> usize {
        self.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().filter(|b| **b).count()
    }
}

impl Default for ClearingLeases {
    fn default() -> Self {
        ClearingLeases::new()
    }
}

impl ClearingLease<'_> {
    pub fn shard(&self) -> u8 {
        self.shard
    }
}

impl Drop for ClearingLease<'_> {
    fn drop(&mut self) {
        if self.held {
            let mut busy = self.leases.busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            busy[usize::from(self.shard)] = false;
        }
    }
}

/// A bounded memory of facts about ids that never change once true: the current generation
/// and the one before it. When the current one is full it becomes the older and the oldest is
/// dropped, so at most twice `per_generation` are kept.
struct Recent<V: Copy> {
    generations: std::sync::Mutex<[std::collections::HashMap<Uuid, V>; 2]>,
    per_generation: usize,
}

impl<V: Copy> Recent<V> {
    fn new(per_generation: usize) -> Recent<V> {
        Recent { generations: std::sync::Mutex::new(Default::default()), per_generation }
    }

    fn generations(&self) -> std::sync::MutexGuard<'_, [std::collections::HashMap<Uuid, V>; 2]> {
        self.generations.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, id: Uuid) -> Option<V> {
        let g = self.generations();
        g[0].get(&id).or_else(|| g[1].get(&id)).copied()
    }

    fn remember(&self, id: Uuid, value: V) {
        let mut g = self.generations();
        if g[0].len() >= self.per_generation {
            g[1] = std::mem::take(&mut g[0]);
        }
        g[0].insert(id, value);
    }

    /// Entries kept now (an id remembered again after its generation turned older counts in
    /// both).
    fn len(&self) -> usize {
        let g = self.generations();
        g[0].len() + g[1].len()
    }
}

/// The targets of payments this process created or read. A payment's target never changes
/// once it is created, so a perform or cancel that finds its payment here reads the payment
/// together with the streams its target moves, one round trip fewer; one not found here reads
/// the payment first, as it must. What is read never depends on this memory being right: the
/// flow decides on the payment as loaded, and a wrong guess only reads streams it then leaves.
pub struct PaymentTargets(Recent<Target>);

/// Payment targets kept per generation (about 40 bytes each).
pub const TARGETS_PER_GENERATION: usize = 50_000;

impl PaymentTargets {
    pub fn new() -> PaymentTargets {
        PaymentTargets(Recent::new(TARGETS_PER_GENERATION))
    }

    /// The target of `payment_id`, if this process has seen it.
    pub fn get(&self, payment_id: Uuid) -> Option<Target> {
        self.0.get(payment_id)
    }

    /// Remembers the target of a payment that exists.
    pub fn remember(&self, payment_id: Uuid, target: Target) {
        self.0.remember(payment_id, target);
    }

    /// Entries kept now.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for PaymentTargets {
    fn default() -> Self {
        PaymentTargets::new()
    }
}

/// Users this process has seen exist, through a payment's check or create. A user, once
/// registered, always exists (no event takes a user away), so a top-up's create for one of
/// them needs no read at all: nothing else of the user decides whether a top-up may be made.
pub struct ExistingUsers(Recent<()>);

/// Users kept per generation (about 24 bytes each).
pub const USERS_PER_GENERATION: usize = 50_000;

impl ExistingUsers {
    pub fn new() -> ExistingUsers {
        ExistingUsers(Recent::new(USERS_PER_GENERATION))
    }

    /// Whether this process has seen `user_id` exist.
    pub fn contains(&self, user_id: Uuid) -> bool {
        self.0.get(user_id).is_some()
    }

    /// Remembers a user that exists.
    pub fn remember(&self, user_id: Uuid) {
        self.0.remember(user_id, ());
    }
}

impl Default for ExistingUsers {
    fn default() -> Self {
        ExistingUsers::new()
    }
}

/// What a command on a payment reads of an order it pays.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OrderReads {
    /// A perform: the order, its escrow and its buyer's wallet (see `Loader::order_payment_and`).
    Payment,
    /// A cancel, which may cancel the order: everything a step of it may touch.
    World,
}

/// Loads a payment with every stream its perform or cancel may touch (`reads` says which),
/// provider clearing at `clearing_shard`. With the payment's target `known` (see
/// `PaymentTargets`), the payment is read together with the target's streams: a top-up in one
/// round trip, an order in two. Otherwise the payment is read first: a top-up takes two, an
/// order three.
async fn load_payment_world(
    l: &mut Loader,
    payment_id: Uuid,
    clearing_shard: u8,
    known: Option<Target>,
    targets: &PaymentTargets,
    reads: OrderReads,
) -> Result<(), CommandError> {
    let clearing = wallet::platform_wallet_id(PlatformAccount::ProviderClearing, clearing_shard);
    let clearing_want = Want::of::<WalletAggregate>(clearing);
    let payment_want = Want::of::<PaymentAggregate>(payment_id);
    match known {
        Some(Target::Wallet { user_id }) => {
            let user_wallet = Want::of::<WalletAggregate>(wallet::user_wallet_id(user_id));
            l.prefetch(&[payment_want, user_wallet, clearing_want]).await?;
        }
        Some(Target::Order { order_id }) => {
            let escrow = Want::of::<EscrowAggregate>(flows::escrow_id_for(order_id));
            l.prefetch(&[payment_want, Want::of::<OrderAggregate>(order_id), escrow]).await?;
        }
        None => {}
    }
    let payment::State::Exists(p) = l.payment(payment_id).await? else {
        return Ok(()); // the flow answers "payment not found"
    };
    targets.remember(payment_id, p.target);
    // Streams already read above are not read again. Provider clearing, the hottest stream, is
    // read in the last round trip the target needs: the shorter its read is from the append, the
    // less another process's command can move it in between.
    let payer = match p.target {
        Target::Wallet { user_id } => {
            let user_wallet = wallet::user_wallet_id(user_id);
            l.prefetch(&[Want::of::<WalletAggregate>(user_wallet), clearing_want]).await?;
            l.wallet(user_wallet).await?;
            user_id
        }
        Target::Order { order_id } => {
            // The payer is the order's buyer, one of its settlement wallets.
            match reads {
                OrderReads::Payment => l.order_payment_and(order_id, &[clearing_want]).await?,
                OrderReads::World => l.order_world_and(order_id, &[clearing_want]).await?,
            }
            match l.order(order_id).await? {
                bozor_domain::order::State::Exists(o) => o.buyer_id,
                bozor_domain::order::State::Initial => return Ok(()),
            }
        }
    };
    l.wallet(wallet::user_wallet_id(payer)).await?;
    l.wallet(clearing).await?;
    Ok(())
}

impl CommandService {
    /// The payment's current state, straight from its stream (`Initial` when it does not exist).
    pub async fn payment(&self, payment_id: Uuid) -> Result<payment::State, CommandError> {
        match self.store().load::<PaymentAggregate>(payment_id).await {
            Ok(loaded) => Ok(loaded.state),
            Err(StoreError::WrongStreamType { .. }) => Ok(payment::State::Initial),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a new payment of `amount` may pay `target` now; appends nothing.
    pub async fn check_payment(
        &self,
        meta: &CommandMeta,
        payment_id: Uuid,
        target: Target,
        amount: Money,
    ) -> Result<(), CommandError> {
        self.check(
            meta,
            move |mut l: Loader| async move {
                load_target(&mut l, target).await?;
                Ok(l)
            },
            |uow, ctx| flows::check_payment(uow, ctx, payment_id, target, amount),
        )
        .await?;
        if let Target::Wallet { user_id } = target {
            self.existing_users().remember(user_id);
        }
        Ok(())
    }

    /// A provider created a transaction. Refused with `already_exists` when it exists: the
    /// caller then answers from the stored state.
    ///
    /// A top-up of a user this process has seen exist reads nothing on its first attempt: the
    /// payment is presumed new (see `Loader::presume_new_payment`), and an append that finds it
    /// after all is retried with the payment read.
    pub async fn create_payment(
        &self,
        meta: &CommandMeta,
        provider: Provider,
        provider_tx_id: &str,
        target: Target,
        amount: Money,
        provider_time_ms: i64,
    ) -> Result<Outcome, CommandError> {
        let payment_id = payment::payment_id_for(provider, provider_tx_id);
        let existing_user = match target {
            Target::Wallet { user_id } if self.existing_users().contains(user_id) => Some(user_id),
            _ => None,
        };
        let created = self
            .run(
                meta,
                payment_id,
                move |mut l: Loader| async move {
                    if let Some(user_id) = existing_user {
                        if l.presume_new_payment(payment_id) {
                            l.known_to_exist(user_id);
                            return Ok(l);
                        }
                    }
                    l.prefetch(&[Want::of::<PaymentAggregate>(payment_id), target_want(target)]).await?;
                    l.payment(payment_id).await?;
                    load_target(&mut l, target).await?;
                    Ok(l)
                },
                |uow, ctx| {
                    flows::create_payment(
                        uow,
                        ctx,
                        payment_id,
                        provider,
                        provider_tx_id,
                        target,
                        amount,
                        provider_time_ms,
                    )
                },
            )
            .await?;
        self.payment_targets().remember(payment_id, target);
        if let Target::Wallet { user_id } = target {
            self.existing_users().remember(user_id);
        }
        Ok(created)
    }

    /// The provider charged the card: the money goes where the payment's target says. With
    /// `timeout_ms`, a payment older than that (by the provider's time) is refused as expired.
    pub async fn perform_payment(
        &self,
        meta: &CommandMeta,
        payment_id: Uuid,
        timeout_ms: Option<i64>,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        let flow = |uow: &mut flows::UnitOfWork, ctx: &bozor_domain::Context| {
            flows::perform_payment(uow, ctx, payment_id, journal, timeout_ms)
        };
        self.on_payment(meta, payment_id, OrderReads::Payment, &flow).await
    }

    /// Runs `flow` on a payment and every stream its perform or cancel may touch (`reads`).
    async fn on_payment(
        &self,
        meta: &CommandMeta,
        payment_id: Uuid,
        reads: OrderReads,
        flow: &(dyn Fn(&mut flows::UnitOfWork, &bozor_domain::Context) -> Result<(), bozor_domain::DomainError> + Sync),
    ) -> Result<Outcome, CommandError> {
        let lease = self.clearing_leases().lease();
        let shard = lease.shard();
        let targets = self.payment_targets();
        let known = targets.get(payment_id);
        self.run(
            meta,
            payment_id,
            move |mut l: Loader| async move {
                load_payment_world(&mut l, payment_id, shard, known, targets, reads).await?;
                Ok(l)
            },
            |uow: &mut flows::UnitOfWork, ctx: &bozor_domain::Context| {
                uow.clearing_shard = Some(shard);
                flow(uow, ctx)
            },
        )
        .await
    }

    /// The provider cancelled the transaction (after perform: its money goes back).
    pub async fn cancel_payment(
        &self,
        meta: &CommandMeta,
        payment_id: Uuid,
        reason: CancelReason,
    ) -> Result<Outcome, CommandError> {
        let journal = Uuid::new_v4();
        self.on_payment(meta, payment_id, OrderReads::World, &|uow, ctx| {
            flows::cancel_payment(uow, ctx, payment_id, reason, journal)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_distinct_while_held_and_given_back_when_dropped() {
        let leases = ClearingLeases::new();
        let shards = usize::from(wallet::shards(PlatformAccount::ProviderClearing));
        let held: Vec<_> = (0..shards).map(|_| leases.lease()).collect();
        let distinct: std::collections::BTreeSet<u8> = held.iter().map(ClearingLease::shard).collect();
        assert_eq!(distinct.len(), shards, "every lease its own shard while all are held");
        assert_eq!(leases.held(), shards);
        // Every shard held: the next command shares one rather than waiting.
        let shared = leases.lease();
        assert!(!shared.held && usize::from(shared.shard()) < shards);
        drop(shared);
        assert_eq!(leases.held(), shards, "a shared lease gives back nothing");
        drop(held);
        assert_eq!(leases.held(), 0);
        let again = leases.lease();
        assert!(again.held);
    }

    #[test]
    fn payment_targets_keep_two_generations_and_forget_the_oldest() {
        let targets = PaymentTargets::new();
        let first = Uuid::new_v4();
        let target = Target::Wallet { user_id: Uuid::new_v4() };
        targets.remember(first, target);
        assert_eq!(targets.get(first), Some(target));
        assert_eq!(targets.get(Uuid::new_v4()), None);
        // A full generation: `first` moves to the older one and is still known.
        for _ in 1..TARGETS_PER_GENERATION {
            targets.remember(Uuid::new_v4(), target);
        }
        targets.remember(Uuid::new_v4(), target);
        assert_eq!(targets.get(first), Some(target), "kept in the older generation");
        assert_eq!(targets.len(), TARGETS_PER_GENERATION + 1);
        // Another full generation drops it.
        for _ in 0..TARGETS_PER_GENERATION {
            targets.remember(Uuid::new_v4(), target);
        }
        assert_eq!(targets.get(first), None, "forgotten with the oldest generation");
        assert!(targets.len() <= 2 * TARGETS_PER_GENERATION);
    }
}
