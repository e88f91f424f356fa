//! Wallet: a user's (or a platform account's) money, as available and held balances.
//!
//! Every event that moves money carries a journal id; its postings (see `postings`) across all
//! wallet streams of one journal sum to zero. User wallets never go negative. The provider
//! clearing account mirrors money held for us by Payme and Click: it is debited for every
//! deposit, so it is the one account whose balance is negative by design.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::context::{Context, Role};
use crate::error::{forbidden, invalid, DomainError};
use crate::money::{Money, BALANCE_MAX};

/// Namespace of wallet stream ids derived from user ids and platform account names.
const WALLET_NS: Uuid = Uuid::from_u128(0x6f1d_2a1e_9b7c_4c55_8a31_0d7e_b0a5_7a11);

/// The wallet stream of a user.
pub fn user_wallet_id(user_id: Uuid) -> Uuid {
    Uuid::new_v5(&WALLET_NS, user_id.as_bytes())
}

/// Platform accounts are split into this many wallet streams. Every deposit, sale and payout
/// touches a platform account; spread over shards, concurrent commands contend on one stream
/// in sixteen instead of queuing (and running out of retries) on a single one.
pub const PLATFORM_SHARDS: u8 = 16;

/// The provider clearing account takes every provider callback (two appends per payment), so
/// it is split finer: with 16 shards, 32 concurrent callbacks collided on a shard often enough
/// that about one in five appends retried. Shards 0 to 15 are the same streams as before.
pub const PROVIDER_CLEARING_SHARDS: u8 = 128;

/// How many wallet streams `account` is split into.
pub const fn shards(account: PlatformAccount) -> u8 {
    match account {
        PlatformAccount::ProviderClearing => PROVIDER_CLEARING_SHARDS,
        PlatformAccount::Revenue | PlatformAccount::PayoutClearing => PLATFORM_SHARDS,
    }
}

/// The wallet stream of one shard of a platform account (shard 0 has the unsharded name).
pub fn platform_wallet_id(account: PlatformAccount, shard: u8) -> Uuid {
    assert!(shard < shards(account), "platform shard {shard} out of range");
    if shard == 0 {
        return Uuid::new_v5(&WALLET_NS, account.name().as_bytes());
    }
    Uuid::new_v5(&WALLET_NS, format!("{}#{shard}", account.name()).as_bytes())
}

/// The shard of `account` a command about `key` (a user, order, listing or withdrawal) posts to.
pub fn platform_shard(account: PlatformAccount, key: Uuid) -> u8 {
    (key.as_u128() % u128::from(shards(account))) as u8
}

/// The platform wallet that a command about `key` posts to.
pub fn platform_owner(account: PlatformAccount, key: Uuid) -> Owner {
    Owner::Platform { account, shard: platform_shard(account, key) }
}

/// Every shard of a platform account, to sum its balance.
pub fn platform_wallet_ids(account: PlatformAccount) -> impl Iterator<Item = Uuid> {
    (0..shards(account)).map(move |shard| platform_wallet_id(account, shard))
}

/// The platform's own accounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformAccount {
    /// Commissions and promotion fees earned.
    Revenue,
    /// Money the payment providers hold for us: debited by each deposit (negative by design).
    ProviderClearing,
    /// Money paid out to cards.
    PayoutClearing,
}

impl PlatformAccount {
    /// Every platform account.
    pub const ALL: [PlatformAccount; 3] =
        [PlatformAccount::Revenue, PlatformAccount::ProviderClearing, PlatformAccount::PayoutClearing];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            PlatformAccount::Revenue => "platform:revenue",
            PlatformAccount::ProviderClearing => "platform:provider_clearing",
            PlatformAccount::PayoutClearing => "platform:payout_clearing",
        }
    }
}

/// Whose wallet it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "owner", rename_all = "snake_case")]
pub enum Owner {
    /// A user's wallet.
    User { user_id: Uuid },
    /// One shard of a platform account.
    Platform { account: PlatformAccount, shard: u8 },
}

impl Owner {
    /// The stream id of this owner's wallet.
    pub fn wallet_id(self) -> Uuid {
        match self {
            Owner::User { user_id } => user_wallet_id(user_id),
            Owner::Platform { account, shard } => platform_wallet_id(account, shard),
        }
    }

    fn may_go_negative(self) -> bool {
        matches!(self, Owner::Platform { account: PlatformAccount::ProviderClearing, .. })
    }
}

/// Where a deposit came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Payme,
    Click,
    /// An admin's manual credit.
    Manual,
}

impl Provider {
    /// The provider's API name: `payme`, `click` or `manual`.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Payme => "payme",
            Provider::Click => "click",
            Provider::Manual => "manual",
        }
    }

    /// Parses an API name (`payme`, `click`, `manual`).
    pub fn parse(s: &str) -> Option<Provider> {
        [Provider::Payme, Provider::Click, Provider::Manual].into_iter().find(|p| p.name() == s)
    }
}

/// Why money moved, for statements and audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// A top-up through a provider (clearing side).
    Deposit { wallet_id: Uuid },
    /// The seller's share of a sale.
    Sale { order_id: Uuid },
    /// The platform's commission on a sale.
    Commission { order_id: Uuid },
    /// The courier's delivery fee.
    DeliveryFee { order_id: Uuid },
    /// Money back to the buyer.
    Refund { order_id: Uuid },
    /// The buyer's money held by an escrow.
    Escrow { order_id: Uuid },
    /// A paid promotion of a listing.
    Promotion { listing_id: Uuid },
    /// A payout to a card: its masked number (first six and last four digits) and holder.
    Withdrawal {
        withdrawal_id: Uuid,
        card_mask: String,
        /// Absent on withdrawals requested before holders were asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        card_holder: Option<String>,
    },
    /// A provider payment cancelled after it was performed: the money goes back to the provider.
    ProviderRefund { payment_id: Uuid },
}

/// A wallet that exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    pub id: Uuid,
    pub owner: Owner,
    /// Spendable balance in tiyin (negative only for the provider clearing account).
    pub available: i64,
    /// Balance held by escrows and pending withdrawals.
    pub held: i64,
    /// Open holds by id (escrow id or withdrawal id).
    pub holds: BTreeMap<Uuid, Money>,
    /// Manual deposits seen, by `manual:transaction id`, to make them idempotent (a provider's
    /// transactions are idempotent through their payment streams; older states list them too).
    pub deposits: BTreeMap<String, Money>,
    /// Every withdrawal id this wallet has used: an id names one withdrawal for good.
    #[serde(default)]
    pub withdrawals: std::collections::BTreeSet<Uuid>,
    /// Withdrawals requested on one Tashkent calendar day, for the per-day limit.
    #[serde(default)]
    pub withdrawn: Option<DayTotal>,
}

/// Money withdrawn on one calendar day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotal {
    pub day: chrono::NaiveDate,
    pub tiyin: i64,
}

/// Tashkent is UTC+5 all year (no daylight saving): the day a withdrawal limit counts in.
pub fn tashkent_day(at: DateTime<Utc>) -> chrono::NaiveDate {
    (at + chrono::Duration::hours(5)).date_naive()
}

impl Wallet {
    /// Tiyin of withdrawals requested on `day` (failed ones included: the limit counts requests).
    pub fn withdrawn_on(&self, day: chrono::NaiveDate) -> i64 {
        self.withdrawn.filter(|d| d.day == day).map_or(0, |d| d.tiyin)
    }
}

/// The state of a wallet stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Initial,
    Open(Box<Wallet>),
}

impl State {
    /// The available balance (0 for a wallet never opened).
    pub fn available(&self) -> i64 {
        match self {
            State::Initial => 0,
            State::Open(w) => w.available,
        }
    }

    /// The held balance (0 for a wallet never opened).
    pub fn held(&self) -> i64 {
        match self {
            State::Initial => 0,
            State::Open(w) => w.held,
        }
    }
}

/// Commands on a wallet. Only flows (see `flows`) issue them, and they check who acts.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// A provider top-up of a user wallet; idempotent by provider transaction id.
    Deposit { owner: Owner, journal_id: Uuid, amount: Money, provider: Provider, provider_tx_id: String },
    /// A provider payment of an order: the money arrives straight into the held balance under
    /// `hold_id` (the order's escrow), never into the available one.
    DepositHeld {
        owner: Owner,
        journal_id: Uuid,
        hold_id: Uuid,
        amount: Money,
        provider: Provider,
        provider_tx_id: String,
        reason: Reason,
    },
    /// Money in; opens the wallet if needed.
    Credit { owner: Owner, journal_id: Uuid, amount: Money, reason: Reason },
    /// Money out of the available balance; opens the provider clearing account if needed.
    Debit { owner: Owner, journal_id: Uuid, amount: Money, reason: Reason },
    /// Moves money from available to held under `hold_id`.
    Hold { journal_id: Uuid, hold_id: Uuid, amount: Money, reason: Reason },
    /// Gives a hold back to the available balance.
    ReleaseHold { journal_id: Uuid, hold_id: Uuid },
    /// Takes a hold out of the wallet (it goes to other wallets in the same journal).
    CaptureHold { journal_id: Uuid, hold_id: Uuid },
}

/// Events of a wallet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    WalletOpened {
        wallet_id: Uuid,
        owner: Owner,
        at: DateTime<Utc>,
    },
    FundsDeposited {
        journal_id: Uuid,
        amount: Money,
        provider: Provider,
        provider_tx_id: String,
        at: DateTime<Utc>,
    },
    DepositHeld {
        journal_id: Uuid,
        hold_id: Uuid,
        amount: Money,
        provider: Provider,
        provider_tx_id: String,
        reason: Reason,
        at: DateTime<Utc>,
    },
    FundsCredited {
        journal_id: Uuid,
        amount: Money,
        reason: Reason,
        at: DateTime<Utc>,
    },
    FundsDebited {
        journal_id: Uuid,
        amount: Money,
        reason: Reason,
        at: DateTime<Utc>,
    },
    FundsHeld {
        journal_id: Uuid,
        hold_id: Uuid,
        amount: Money,
        reason: Reason,
        at: DateTime<Utc>,
    },
    HoldReleased {
        journal_id: Uuid,
        hold_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    },
    HoldCaptured {
        journal_id: Uuid,
        hold_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    },
}

/// One side of a journal entry: a signed change of one balance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posting {
    pub journal_id: Uuid,
    /// Change of the available balance, in tiyin.
    pub available: i64,
    /// Change of the held balance, in tiyin.
    pub held: i64,
}

impl Event {
    /// The balance changes this event makes, if it moves money.
    pub fn posting(&self) -> Option<Posting> {
        let p =
            |journal_id: &Uuid, available: i64, held: i64| Some(Posting { journal_id: *journal_id, available, held });
        match self {
            Event::WalletOpened { .. } => None,
            Event::FundsDeposited { journal_id, amount, .. } | Event::FundsCredited { journal_id, amount, .. } => {
                p(journal_id, amount.tiyin(), 0)
            }
            Event::DepositHeld { journal_id, amount, .. } => p(journal_id, 0, amount.tiyin()),
            Event::FundsDebited { journal_id, amount, .. } => p(journal_id, -amount.tiyin(), 0),
            Event::FundsHeld { journal_id, amount, .. } => p(journal_id, -amount.tiyin(), amount.tiyin()),
            Event::HoldReleased { journal_id, amount, .. } => p(journal_id, amount.tiyin(), -amount.tiyin()),
            Event::HoldCaptured { journal_id, amount, .. } => p(journal_id, 0, -amount.tiyin()),
        }
    }
}

/// The Wallet aggregate.
pub struct WalletAggregate;

impl Aggregate for WalletAggregate {
    const STREAM_TYPE: &'static str = "wallet";
    // 2: `Wallet::withdrawals`. 3: `Wallet::withdrawn`.
    const STATE_SCHEMA: i32 = 3;
    type State = State;
    type Event = Event;
    type Command = Command;

    fn initial() -> State {
        State::Initial
    }

    fn evolve(state: State, event: &Event) -> State {
        evolve(state, event)
    }

    fn decide(state: &State, command: &Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
        decide(state, command, ctx)
    }
}

/// Decides a wallet command.
pub fn decide(state: &State, command: &Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    let at = ctx.now;
    match command {
        Command::Deposit { owner, journal_id, amount, provider, provider_tx_id } => {
            if !deposit_allowed(state, ctx, *owner, *amount, *provider, provider_tx_id)? {
                return Ok(vec![]);
            }
            let mut events = open_if_needed(state, *owner, at);
            events.push(Event::FundsDeposited {
                journal_id: *journal_id,
                amount: *amount,
                provider: *provider,
                provider_tx_id: provider_tx_id.clone(),
                at,
            });
            Ok(events)
        }
        Command::DepositHeld { owner, journal_id, hold_id, amount, provider, provider_tx_id, reason } => {
            if !ctx.actor.has(Role::System) {
                return forbidden("only payment callbacks pay orders through a provider");
            }
            // Unlike a top-up, a repeat is an error: the caller's journal would debit clearing
            // with no hold behind it.
            if !deposit_allowed(state, ctx, *owner, *amount, *provider, provider_tx_id)? {
                return Err(DomainError::AlreadyExists { what: "deposit" });
            }
            if let State::Open(w) = state {
                if w.holds.contains_key(hold_id) {
                    return Err(DomainError::AlreadyExists { what: "hold" });
                }
            }
            let mut events = open_if_needed(state, *owner, at);
            events.push(Event::DepositHeld {
                journal_id: *journal_id,
                hold_id: *hold_id,
                amount: *amount,
                provider: *provider,
                provider_tx_id: provider_tx_id.clone(),
                reason: reason.clone(),
                at,
            });
            Ok(events)
        }
        Command::Credit { owner, journal_id, amount, reason } => {
            positive(*amount)?;
            fits(state, *amount)?;
            let mut events = open_if_needed(state, *owner, at);
            events.push(Event::FundsCredited { journal_id: *journal_id, amount: *amount, reason: reason.clone(), at });
            Ok(events)
        }
        Command::Debit { owner, journal_id, amount, reason } => {
            positive(*amount)?;
            let mut events = vec![];
            if owner.may_go_negative() {
                // The clearing account runs negative, down to -BALANCE_MAX.
                if state.available().checked_sub(amount.tiyin()).is_none_or(|left| left < -BALANCE_MAX) {
                    return Err(DomainError::AmountTooLarge);
                }
                events = open_if_needed(state, *owner, at);
            } else {
                cover(funded(state, *amount)?, *amount)?;
            }
            events.push(Event::FundsDebited { journal_id: *journal_id, amount: *amount, reason: reason.clone(), at });
            Ok(events)
        }
        Command::Hold { journal_id, hold_id, amount, reason } => {
            positive(*amount)?;
            let w = funded(state, *amount)?;
            let reused = matches!(reason, Reason::Withdrawal { .. }) && w.withdrawals.contains(hold_id);
            if w.holds.contains_key(hold_id) || reused {
                return Err(DomainError::AlreadyExists { what: "hold" });
            }
            cover(w, *amount)?;
            Ok(vec![Event::FundsHeld {
                journal_id: *journal_id,
                hold_id: *hold_id,
                amount: *amount,
                reason: reason.clone(),
                at,
            }])
        }
        Command::ReleaseHold { journal_id, hold_id } => {
            let amount = hold(state, *hold_id)?;
            Ok(vec![Event::HoldReleased { journal_id: *journal_id, hold_id: *hold_id, amount, at }])
        }
        Command::CaptureHold { journal_id, hold_id } => {
            let amount = hold(state, *hold_id)?;
            Ok(vec![Event::HoldCaptured { journal_id: *journal_id, hold_id: *hold_id, amount, at }])
        }
    }
}

/// Checks a deposit; false when this provider transaction was deposited before with the same
/// amount (a repeat that appends nothing).
fn deposit_allowed(
    state: &State,
    ctx: &Context,
    owner: Owner,
    amount: Money,
    provider: Provider,
    provider_tx_id: &str,
) -> Result<bool, DomainError> {
    if !(ctx.actor.is_staff(false) || ctx.actor.has(Role::System)) {
        return forbidden("only payment callbacks and admins deposit");
    }
    if !matches!(owner, Owner::User { .. }) {
        return invalid("wallet", "deposits go to user wallets");
    }
    positive(amount)?;
    if provider_tx_id.is_empty() || provider_tx_id.len() > 64 {
        return invalid("provider_tx_id", "must be 1 to 64 characters");
    }
    if let State::Open(w) = state {
        match w.deposits.get(&deposit_key(provider, provider_tx_id)) {
            Some(seen) if *seen == amount => return Ok(false),
            Some(_) => {
                return Err(DomainError::ProviderTransactionMismatch { provider_tx_id: provider_tx_id.to_owned() })
            }
            None => {}
        }
    }
    fits(state, amount)?;
    Ok(true)
}

fn deposit_key(provider: Provider, tx: &str) -> String {
    format!("{}:{tx}", provider.name())
}

/// Every amount a wallet command moves is positive and at most `AMOUNT_MAX`.
fn positive(amount: Money) -> Result<(), DomainError> {
    if amount.is_zero() {
        return invalid("amount", "must be positive");
    }
    amount.within_limit()?;
    Ok(())
}

/// Money coming in must leave the wallet's total (available and held) at most `BALANCE_MAX`.
fn fits(state: &State, amount: Money) -> Result<(), DomainError> {
    let total = state.available().checked_add(state.held()).and_then(|t| t.checked_add(amount.tiyin()));
    if total.is_none_or(|t| t > BALANCE_MAX) {
        return Err(DomainError::AmountTooLarge);
    }
    Ok(())
}

fn open(state: &State) -> Result<&Wallet, DomainError> {
    match state {
        State::Open(w) => Ok(w),
        State::Initial => Err(DomainError::NotFound { what: "wallet" }),
    }
}

/// The open wallet, or "insufficient funds" for a wallet that never received money.
fn funded(state: &State, requested: Money) -> Result<&Wallet, DomainError> {
    match state {
        State::Open(w) => Ok(w),
        State::Initial => Err(DomainError::InsufficientFunds { available: Money::ZERO, requested }),
    }
}

fn cover(w: &Wallet, amount: Money) -> Result<(), DomainError> {
    if w.available < amount.tiyin() {
        let available = Money::from_tiyin(w.available.max(0)).expect("clamped to zero");
        return Err(DomainError::InsufficientFunds { available, requested: amount });
    }
    Ok(())
}

fn hold(state: &State, hold_id: Uuid) -> Result<Money, DomainError> {
    open(state)?.holds.get(&hold_id).copied().ok_or(DomainError::HoldNotFound)
}

fn open_if_needed(state: &State, owner: Owner, at: DateTime<Utc>) -> Vec<Event> {
    match state {
        State::Initial => vec![Event::WalletOpened { wallet_id: owner.wallet_id(), owner, at }],
        State::Open(_) => vec![],
    }
}

/// Applies a wallet event.
pub fn evolve(state: State, event: &Event) -> State {
    let mut w = match (state, event) {
        (State::Initial, Event::WalletOpened { wallet_id, owner, .. }) => {
            return State::Open(Box::new(Wallet {
                id: *wallet_id,
                owner: *owner,
                available: 0,
                held: 0,
                holds: BTreeMap::new(),
                deposits: BTreeMap::new(),
                withdrawals: std::collections::BTreeSet::new(),
                withdrawn: None,
            }))
        }
        (State::Initial, e) => panic!("wallet event {e:?} before WalletOpened"),
        (State::Open(w), Event::WalletOpened { .. }) => panic!("wallet {} opened twice", w.id),
        (State::Open(w), _) => w,
    };
    let Some(posting) = event.posting() else { unreachable!("every event after WalletOpened moves money") };
    // `decide` keeps every balance within BALANCE_MAX, so these never saturate; saturating
    // rather than panicking keeps a stream loadable (and refusing) should one ever have.
    w.available = w.available.saturating_add(posting.available);
    w.held = w.held.saturating_add(posting.held);
    match event {
        // Payme's and Click's transactions are payment streams of their own, each performed
        // once: remembering them here too would grow every wallet's state (and snapshot, and
        // read-model row) with each top-up. Manual credits have no such stream.
        Event::FundsDeposited { amount, provider: Provider::Manual, provider_tx_id, .. } => {
            w.deposits.insert(deposit_key(Provider::Manual, provider_tx_id), *amount);
        }
        Event::DepositHeld { hold_id, amount, .. } => {
            w.holds.insert(*hold_id, *amount);
        }
        Event::FundsHeld { hold_id, amount, reason, at, .. } => {
            w.holds.insert(*hold_id, *amount);
            if matches!(reason, Reason::Withdrawal { .. }) {
                w.withdrawals.insert(*hold_id);
                let day = tashkent_day(*at);
                let before = w.withdrawn_on(day);
                w.withdrawn = Some(DayTotal { day, tiyin: before.saturating_add(amount.tiyin()) });
            }
        }
        Event::HoldReleased { hold_id, .. } | Event::HoldCaptured { hold_id, .. } => {
            w.holds.remove(hold_id).expect("released holds exist");
        }
        _ => {}
    }
    assert!(w.held >= 0, "wallet {} held balance went negative", w.id);
    assert!(w.available >= 0 || w.owner.may_go_negative(), "wallet {} went negative", w.id);
    State::Open(w)
}
