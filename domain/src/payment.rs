//! Payment: one transaction of a payment provider (Payme or Click), a stream of its own.
//!
//! The provider calls bozor to create the transaction, then to perform it (the card was charged)
//! or to cancel it. Each step is an event with the provider's ids and times, appended in the
//! same transaction as the journal that moves the money (see `flows::perform_payment`), so an
//! auditor follows a top-up from the provider's transaction id to the wallet lines.
//!
//! The stream id is derived from the provider and its transaction id: twenty identical
//! callbacks address one stream, and the event store's version check lets exactly one create it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::context::{Context, Role};
use crate::error::{forbidden, invalid, DomainError};
use crate::money::Money;
use crate::wallet::Provider;

/// Namespace of payment stream ids.
const PAYMENT_NS: Uuid = Uuid::from_u128(0x9a3c_51e2_7d44_4b8e_a1f0_63c2_d85e_0b19);

/// Longest provider transaction id (Payme's are 24 characters, Click's are numbers).
pub const PROVIDER_TX_ID_CHARS_MAX: usize = 64;

/// The stream of `provider`'s transaction `provider_tx_id`.
pub fn payment_id_for(provider: Provider, provider_tx_id: &str) -> Uuid {
    Uuid::new_v5(&PAYMENT_NS, format!("{}:{provider_tx_id}", provider.name()).as_bytes())
}

/// What a payment pays for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A top-up of a user's wallet (addressed by the user id, as the wallet routes are).
    Wallet { user_id: Uuid },
    /// An order: its escrow is funded directly, with no wallet balance in between.
    Order { order_id: Uuid },
}

impl Target {
    /// `wallet_id` or `order_id`: the account field a provider names the target with.
    pub fn field(self) -> &'static str {
        match self {
            Target::Wallet { .. } => "wallet_id",
            Target::Order { .. } => "order_id",
        }
    }

    /// The id the account field holds.
    pub fn id(self) -> Uuid {
        match self {
            Target::Wallet { user_id } => user_id,
            Target::Order { order_id } => order_id,
        }
    }
}

/// Where a payment is. Payme's numbers for these are `Status::payme_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created; the card is not charged yet.
    Created,
    /// The money arrived and went where the target says.
    Performed,
    /// Cancelled before it was performed.
    Cancelled,
    /// Cancelled after it was performed: the money went back to the provider.
    Refunded,
}

impl Status {
    /// Payme's transaction state: 1, 2, -1, -2.
    pub fn payme_state(self) -> i32 {
        match self {
            Status::Created => 1,
            Status::Performed => 2,
            Status::Cancelled => -1,
            Status::Refunded => -2,
        }
    }

    /// The status's API name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Performed => "performed",
            Status::Cancelled => "cancelled",
            Status::Refunded => "refunded",
        }
    }
}

/// Why a payment was cancelled, by Payme's numbers (Click's cancellations use them too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "i32", try_from = "i32")]
pub enum CancelReason {
    /// 1: the receiver was not found or is inactive.
    ReceiverNotFound,
    /// 2: the card could not be debited.
    DebitError,
    /// 3: the transaction could not be carried out.
    ExecutionError,
    /// 4: it stayed created past the provider's timeout.
    Timeout,
    /// 5: a refund.
    Refund,
    /// 10: unknown.
    Unknown,
}

impl From<CancelReason> for i32 {
    fn from(r: CancelReason) -> i32 {
        match r {
            CancelReason::ReceiverNotFound => 1,
            CancelReason::DebitError => 2,
            CancelReason::ExecutionError => 3,
            CancelReason::Timeout => 4,
            CancelReason::Refund => 5,
            CancelReason::Unknown => 10,
        }
    }
}

impl TryFrom<i32> for CancelReason {
    type Error = String;

    fn try_from(n: i32) -> Result<CancelReason, String> {
        Ok(match n {
            1 => CancelReason::ReceiverNotFound,
            2 => CancelReason::DebitError,
            3 => CancelReason::ExecutionError,
            4 => CancelReason::Timeout,
            5 => CancelReason::Refund,
            10 => CancelReason::Unknown,
            other => return Err(format!("{other} is not a cancel reason (1-5 or 10)")),
        })
    }
}

/// A payment that exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: Uuid,
    pub provider: Provider,
    pub provider_tx_id: String,
    pub target: Target,
    pub amount: Money,
    /// The provider's own time of the transaction, Unix milliseconds (Payme's `time`).
    pub provider_time_ms: i64,
    pub status: Status,
    pub created_at: DateTime<Utc>,
    pub performed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<CancelReason>,
    /// The journals that moved money for it: the perform, then a refund's.
    pub journals: Vec<Uuid>,
}

/// The state of a payment stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Initial,
    Exists(Box<Payment>),
}

/// Commands on a payment. Only provider callbacks (the system role) issue them.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Create {
        payment_id: Uuid,
        provider: Provider,
        provider_tx_id: String,
        target: Target,
        amount: Money,
        provider_time_ms: i64,
    },
    /// The money arrived; `journal_id` names the postings that put it where the target says.
    /// With `timeout_ms` (Payme's 12 h), a payment created longer ago than that by the
    /// provider's own time is refused as expired.
    Perform { journal_id: Uuid, timeout_ms: Option<i64> },
    /// Before perform nothing moves; after it, `journal_id` names the refund's postings.
    Cancel { reason: CancelReason, journal_id: Uuid },
}

/// Events of a payment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    PaymentCreated {
        payment_id: Uuid,
        provider: Provider,
        provider_tx_id: String,
        target: Target,
        amount: Money,
        provider_time_ms: i64,
        at: DateTime<Utc>,
    },
    PaymentPerformed {
        journal_id: Uuid,
        at: DateTime<Utc>,
    },
    PaymentCancelled {
        reason: CancelReason,
        /// True when it had been performed and its money went back.
        refunded: bool,
        journal_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
}

/// The Payment aggregate.
pub struct PaymentAggregate;

impl Aggregate for PaymentAggregate {
    const STREAM_TYPE: &'static str = "payment";
    const STATE_SCHEMA: i32 = 1;
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

/// Decides a payment command.
pub fn decide(state: &State, command: &Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    if !ctx.actor.has(Role::System) {
        return forbidden("only payment provider callbacks create, perform or cancel payments");
    }
    let at = ctx.now;
    let p = match (state, command) {
        (
            State::Initial,
            Command::Create { payment_id, provider, provider_tx_id, target, amount, provider_time_ms },
        ) => {
            if *provider == Provider::Manual {
                return invalid("provider", "payments come from Payme or Click");
            }
            let tx_ok = !provider_tx_id.is_empty()
                && provider_tx_id.len() <= PROVIDER_TX_ID_CHARS_MAX
                && provider_tx_id.bytes().all(|b| b.is_ascii_graphic());
            if !tx_ok {
                return invalid("provider_tx_id", "must be 1 to 64 visible ASCII characters");
            }
            if *payment_id != payment_id_for(*provider, provider_tx_id) {
                return invalid("payment_id", "is derived from the provider and its transaction id");
            }
            if amount.is_zero() {
                return invalid("amount", "must be positive");
            }
            amount.within_limit()?;
            if *provider_time_ms <= 0 {
                return invalid("time", "must be a positive Unix time in milliseconds");
            }
            return Ok(vec![Event::PaymentCreated {
                payment_id: *payment_id,
                provider: *provider,
                provider_tx_id: provider_tx_id.clone(),
                target: *target,
                amount: *amount,
                provider_time_ms: *provider_time_ms,
                at,
            }]);
        }
        (State::Exists(_), Command::Create { .. }) => return Err(DomainError::AlreadyExists { what: "payment" }),
        (State::Initial, _) => return Err(DomainError::NotFound { what: "payment" }),
        (State::Exists(p), _) => p,
    };
    match command {
        Command::Create { .. } => unreachable!("handled above"),
        Command::Perform { journal_id, timeout_ms } => {
            require(p, "perform", p.status == Status::Created)?;
            if timeout_ms.is_some_and(|t| ctx.now.timestamp_millis().saturating_sub(p.provider_time_ms) > t) {
                return Err(DomainError::PaymentExpired);
            }
            Ok(vec![Event::PaymentPerformed { journal_id: *journal_id, at }])
        }
        Command::Cancel { reason, journal_id } => {
            require(p, "cancel", matches!(p.status, Status::Created | Status::Performed))?;
            let refunded = p.status == Status::Performed;
            let journal_id = refunded.then_some(*journal_id);
            Ok(vec![Event::PaymentCancelled { reason: *reason, refunded, journal_id, at }])
        }
    }
}

fn require(p: &Payment, action: &'static str, allowed: bool) -> Result<(), DomainError> {
    if allowed {
        return Ok(());
    }
    Err(DomainError::InvalidTransition { what: "payment", action, status: p.status.name() })
}

/// Applies a payment event.
pub fn evolve(state: State, event: &Event) -> State {
    let mut p = match (state, event) {
        (
            State::Initial,
            Event::PaymentCreated { payment_id, provider, provider_tx_id, target, amount, provider_time_ms, at },
        ) => {
            return State::Exists(Box::new(Payment {
                id: *payment_id,
                provider: *provider,
                provider_tx_id: provider_tx_id.clone(),
                target: *target,
                amount: *amount,
                provider_time_ms: *provider_time_ms,
                status: Status::Created,
                created_at: *at,
                performed_at: None,
                cancelled_at: None,
                cancel_reason: None,
                journals: vec![],
            }))
        }
        (State::Initial, e) => panic!("payment event {e:?} before PaymentCreated"),
        (State::Exists(p), Event::PaymentCreated { .. }) => panic!("payment {} created twice", p.id),
        (State::Exists(p), _) => p,
    };
    match event {
        Event::PaymentCreated { .. } => unreachable!("handled above"),
        Event::PaymentPerformed { journal_id, at } => {
            p.status = Status::Performed;
            p.performed_at = Some(*at);
            p.journals.push(*journal_id);
        }
        Event::PaymentCancelled { reason, refunded, journal_id, at } => {
            p.status = if *refunded { Status::Refunded } else { Status::Cancelled };
            p.cancelled_at = Some(*at);
            p.cancel_reason = Some(*reason);
            p.journals.extend(journal_id);
        }
    }
    State::Exists(p)
}
