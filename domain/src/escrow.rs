//! Escrow: custody of the buyer's money for one order.
//!
//! Opened with the goods amount, the seller's commission rate (snapshotted from the seller's
//! plan) and the delivery fee; funded -> released (seller gets amount - commission, platform the
//! commission, courier the fee) | refunded (full or partial) | disputed -> resolved by an admin
//! (release, refund or split). Released automatically 24 h after delivery unless the buyer
//! confirmed, disputed or asked for a return first.
//!
//! The money itself moves in wallet streams, in the same append and under the same journal id;
//! the escrow records custody and the settlement's arithmetic.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::context::{Context, Role};
use crate::error::{forbidden, invalid, DomainError};
use crate::money::{BasisPoints, Money};

/// Hours after delivery before funds are released automatically.
pub const AUTO_RELEASE_AFTER_HOURS: i64 = 24;

/// Where an escrow is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Opened,
    Funded,
    Disputed,
    Released,
    Refunded,
    Resolved,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Status::Opened => "opened",
            Status::Funded => "funded",
            Status::Disputed => "disputed",
            Status::Released => "released",
            Status::Refunded => "refunded",
            Status::Resolved => "resolved",
        }
    }
}

/// An escrow that exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    /// The goods amount.
    pub amount: Money,
    pub commission: BasisPoints,
    pub delivery_fee: Money,
    pub status: Status,
    /// When the funds are released automatically, once delivery happened.
    pub release_due_at: Option<DateTime<Utc>>,
}

impl Escrow {
    /// Everything the escrow holds: goods amount plus delivery fee.
    pub fn total(&self) -> Money {
        self.amount.checked_add(self.delivery_fee).expect("checked when opened")
    }

    /// Splits the held money: `to_buyer` of the goods amount back to the buyer, the rest to the
    /// seller less commission; the delivery fee to the courier if one delivered, else to the buyer.
    /// Fails when `to_buyer` exceeds the goods amount.
    pub fn settle(&self, to_buyer: Money, courier_id: Option<Uuid>) -> Result<Settlement, DomainError> {
        let seller_gross = self
            .amount
            .checked_sub(to_buyer)
            .ok_or(DomainError::Invalid { field: "amount", reason: "exceeds the escrowed amount" })?;
        let commission = self.commission.of(seller_gross);
        let to_seller = seller_gross.checked_sub(commission).expect("commission never exceeds the amount");
        let (to_buyer, to_courier) = match courier_id {
            Some(_) => (to_buyer, self.delivery_fee),
            None => (to_buyer.checked_add(self.delivery_fee).expect("bounded by total"), Money::ZERO),
        };
        Ok(Settlement { to_buyer, to_seller, commission, to_courier, courier_id })
    }
}

/// How an escrow's money was divided. The four amounts sum to the escrow's total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub to_buyer: Money,
    pub to_seller: Money,
    pub commission: Money,
    pub to_courier: Money,
    pub courier_id: Option<Uuid>,
}

/// How an admin resolves a dispute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Resolution {
    /// Everything to the seller (and courier).
    Release,
    /// The goods amount back to the buyer.
    Refund,
    /// `to_buyer` back to the buyer, the rest to the seller.
    Split { to_buyer: Money },
}

/// The state of an escrow stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Initial,
    Exists(Box<Escrow>),
}

/// Commands on an escrow.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Open {
        escrow_id: Uuid,
        order_id: Uuid,
        buyer_id: Uuid,
        seller_id: Uuid,
        amount: Money,
        commission: BasisPoints,
        delivery_fee: Money,
    },
    Fund {
        journal_id: Uuid,
    },
    /// Delivery happened: start the 24 h clock.
    ScheduleRelease,
    /// A return was requested: stop the clock.
    SuspendRelease,
    /// The buyer confirms, or the scheduler releases when due (`automatic`).
    Release {
        journal_id: Uuid,
        courier_id: Option<Uuid>,
        automatic: bool,
    },
    /// Money back to the buyer: `to_buyer` of the goods amount (the fee goes to the courier if any).
    Refund {
        journal_id: Uuid,
        to_buyer: Money,
        courier_id: Option<Uuid>,
    },
    Dispute {
        reason: String,
    },
    Resolve {
        journal_id: Uuid,
        resolution: Resolution,
        courier_id: Option<Uuid>,
    },
}

/// Events of an escrow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    EscrowOpened {
        escrow_id: Uuid,
        order_id: Uuid,
        buyer_id: Uuid,
        seller_id: Uuid,
        amount: Money,
        commission: BasisPoints,
        delivery_fee: Money,
        at: DateTime<Utc>,
    },
    EscrowFunded {
        journal_id: Uuid,
        amount: Money,
        at: DateTime<Utc>,
    },
    EscrowReleaseScheduled {
        due_at: DateTime<Utc>,
    },
    EscrowReleaseSuspended {
        at: DateTime<Utc>,
    },
    EscrowReleased {
        journal_id: Uuid,
        settlement: Settlement,
        automatic: bool,
        at: DateTime<Utc>,
    },
    EscrowRefunded {
        journal_id: Uuid,
        settlement: Settlement,
        at: DateTime<Utc>,
    },
    EscrowDisputed {
        by: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    EscrowResolved {
        journal_id: Uuid,
        by: Uuid,
        resolution: Resolution,
        settlement: Settlement,
        at: DateTime<Utc>,
    },
}

/// The Escrow aggregate.
pub struct EscrowAggregate;

impl Aggregate for EscrowAggregate {
    const STREAM_TYPE: &'static str = "escrow";
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

/// Decides an escrow command.
pub fn decide(state: &State, command: &Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    let e = match (state, command) {
        (
            State::Initial,
            Command::Open { escrow_id, order_id, buyer_id, seller_id, amount, commission, delivery_fee },
        ) => {
            if amount.is_zero() {
                return invalid("amount", "must be positive");
            }
            amount.checked_add(*delivery_fee).ok_or(DomainError::AmountTooLarge)?;
            return Ok(vec![Event::EscrowOpened {
                escrow_id: *escrow_id,
                order_id: *order_id,
                buyer_id: *buyer_id,
                seller_id: *seller_id,
                amount: *amount,
                commission: *commission,
                delivery_fee: *delivery_fee,
                at: ctx.now,
            }]);
        }
        (State::Exists(_), Command::Open { .. }) => return Err(DomainError::AlreadyExists { what: "escrow" }),
        (State::Initial, _) => return Err(DomainError::NotFound { what: "escrow" }),
        (State::Exists(e), _) => e,
    };
    let at = ctx.now;
    match command {
        Command::Open { .. } => unreachable!("handled above"),
        Command::Fund { journal_id } => {
            require(e, "fund", e.status == Status::Opened)?;
            Ok(vec![Event::EscrowFunded { journal_id: *journal_id, amount: e.total(), at }])
        }
        Command::ScheduleRelease => {
            require(e, "schedule the release of", e.status == Status::Funded && e.release_due_at.is_none())?;
            Ok(vec![Event::EscrowReleaseScheduled { due_at: at + Duration::hours(AUTO_RELEASE_AFTER_HOURS) }])
        }
        Command::SuspendRelease => {
            require(e, "suspend the release of", e.status == Status::Funded && e.release_due_at.is_some())?;
            Ok(vec![Event::EscrowReleaseSuspended { at }])
        }
        Command::Release { journal_id, courier_id, automatic } => release(e, *journal_id, *courier_id, *automatic, ctx),
        Command::Refund { journal_id, to_buyer, courier_id } => {
            require(e, "refund", e.status == Status::Funded)?;
            let settlement = e.settle(*to_buyer, *courier_id)?;
            Ok(vec![Event::EscrowRefunded { journal_id: *journal_id, settlement, at }])
        }
        Command::Dispute { reason } => {
            if ctx.actor.id != e.buyer_id && ctx.actor.id != e.seller_id {
                return forbidden("only the buyer or the seller opens a dispute");
            }
            require(e, "dispute", e.status == Status::Funded)?;
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 2_000 {
                return invalid("reason", "must be 1 to 2000 characters");
            }
            Ok(vec![Event::EscrowDisputed { by: ctx.actor.id, reason: reason.to_owned(), at }])
        }
        Command::Resolve { journal_id, resolution, courier_id } => {
            if !ctx.actor.is_staff(false) {
                return forbidden("only an admin resolves disputes");
            }
            if ctx.actor.id == e.buyer_id || ctx.actor.id == e.seller_id {
                return forbidden("nobody resolves a dispute they are party to");
            }
            require(e, "resolve", e.status == Status::Disputed)?;
            let to_buyer = match resolution {
                Resolution::Release => Money::ZERO,
                Resolution::Refund => e.amount,
                Resolution::Split { to_buyer } => *to_buyer,
            };
            let settlement = e.settle(to_buyer, *courier_id)?;
            Ok(vec![Event::EscrowResolved {
                journal_id: *journal_id,
                by: ctx.actor.id,
                resolution: *resolution,
                settlement,
                at,
            }])
        }
    }
}

fn release(
    e: &Escrow,
    journal_id: Uuid,
    courier_id: Option<Uuid>,
    automatic: bool,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    if automatic {
        if !ctx.actor.has(Role::System) {
            return forbidden("only the scheduler releases automatically");
        }
        require(e, "release", e.status == Status::Funded)?;
        match e.release_due_at {
            Some(due) if ctx.now >= due => {}
            _ => return Err(DomainError::NotDue),
        }
    } else {
        if ctx.actor.id != e.buyer_id {
            return forbidden("only the buyer confirms and releases the money");
        }
        require(e, "release", e.status == Status::Funded)?;
    }
    let settlement = e.settle(Money::ZERO, courier_id)?;
    Ok(vec![Event::EscrowReleased { journal_id, settlement, automatic, at: ctx.now }])
}

fn require(e: &Escrow, action: &'static str, allowed: bool) -> Result<(), DomainError> {
    if allowed {
        return Ok(());
    }
    Err(DomainError::InvalidTransition { what: "escrow", action, status: e.status.name() })
}

/// Applies an escrow event.
pub fn evolve(state: State, event: &Event) -> State {
    let mut e = match (state, event) {
        (
            State::Initial,
            Event::EscrowOpened { escrow_id, order_id, buyer_id, seller_id, amount, commission, delivery_fee, .. },
        ) => {
            return State::Exists(Box::new(Escrow {
                id: *escrow_id,
                order_id: *order_id,
                buyer_id: *buyer_id,
                seller_id: *seller_id,
                amount: *amount,
                commission: *commission,
                delivery_fee: *delivery_fee,
                status: Status::Opened,
                release_due_at: None,
            }))
        }
        (State::Initial, ev) => panic!("escrow event {ev:?} before EscrowOpened"),
        (State::Exists(e), Event::EscrowOpened { .. }) => panic!("escrow {} opened twice", e.id),
        (State::Exists(e), _) => e,
    };
    match event {
        Event::EscrowOpened { .. } => unreachable!("handled above"),
        Event::EscrowFunded { .. } => e.status = Status::Funded,
        Event::EscrowReleaseScheduled { due_at } => e.release_due_at = Some(*due_at),
        Event::EscrowReleaseSuspended { .. } => e.release_due_at = None,
        Event::EscrowReleased { .. } => e.status = Status::Released,
        Event::EscrowRefunded { .. } => e.status = Status::Refunded,
        Event::EscrowDisputed { .. } => {
            e.status = Status::Disputed;
            e.release_due_at = None;
        }
        Event::EscrowResolved { .. } => e.status = Status::Resolved,
    }
    State::Exists(e)
}
