//! Order: fulfilment of a purchase of listings from one seller.
//!
//! Delivery: placed -> paid -> accepted by seller -> courier assigned -> picked up -> delivered
//! -> completed; cancelled before pick-up (refund in full); delivered -> return requested ->
//! returned (refund, restock). Digital (game accounts): placed -> paid -> credentials delivered
//! -> completed. A delivered order may be disputed; an admin resolves it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::context::{Context, Role};
use crate::error::{forbidden, invalid, DomainError};
use crate::escrow::Resolution;
use crate::money::{Money, Plan};

/// Most lines in one order.
pub const ORDER_LINES_MAX: usize = 50;
/// Most units of one line.
pub const LINE_QUANTITY_MAX: u32 = 1_000;

/// Districts couriers serve, with their delivery fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum District {
    Bektemir,
    Chilonzor,
    MirzoUlugbek,
    Mirobod,
    Olmazor,
    Sergeli,
    Shayxontohur,
    Uchtepa,
    Yakkasaroy,
    Yangihayot,
    Yashnobod,
    Yunusobod,
    /// Tashkent region outside the city.
    TashkentRegion,
}

impl District {
    /// The fee a buyer pays for delivery to this district (it goes to the courier).
    pub fn delivery_fee(self) -> Money {
        let sum = match self {
            District::TashkentRegion => 35_000,
            District::Bektemir | District::Sergeli | District::Yangihayot => 25_000,
            _ => 18_000,
        };
        Money::from_sum(sum).expect("constant fees are positive")
    }

    /// Every district, in the order of `name`.
    pub const ALL: [District; 13] = [
        District::Bektemir,
        District::Chilonzor,
        District::MirzoUlugbek,
        District::Mirobod,
        District::Olmazor,
        District::Sergeli,
        District::Shayxontohur,
        District::Uchtepa,
        District::Yakkasaroy,
        District::Yangihayot,
        District::Yashnobod,
        District::Yunusobod,
        District::TashkentRegion,
    ];

    /// The district's API name (`chilonzor`, `mirzo_ulugbek`, ...), the inverse of `parse`.
    pub fn name(self) -> &'static str {
        match self {
            District::Bektemir => "bektemir",
            District::Chilonzor => "chilonzor",
            District::MirzoUlugbek => "mirzo_ulugbek",
            District::Mirobod => "mirobod",
            District::Olmazor => "olmazor",
            District::Sergeli => "sergeli",
            District::Shayxontohur => "shayxontohur",
            District::Uchtepa => "uchtepa",
            District::Yakkasaroy => "yakkasaroy",
            District::Yangihayot => "yangihayot",
            District::Yashnobod => "yashnobod",
            District::Yunusobod => "yunusobod",
            District::TashkentRegion => "tashkent_region",
        }
    }

    /// Parses a district's API name (`chilonzor`, `mirzo_ulugbek`, ...).
    pub fn parse(s: &str) -> Option<District> {
        District::ALL.into_iter().find(|d| d.name() == s)
    }
}

/// One purchased line, snapshotted from the listing when the order was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub listing_id: Uuid,
    pub sku: String,
    pub title: String,
    pub unit_price: Money,
    pub quantity: u32,
}

/// Where the courier collects a delivery order: the seller's shop or warehouse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pickup {
    pub district: District,
    pub address: String,
}

/// How the order reaches the buyer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Fulfilment {
    /// A courier brings the goods.
    Delivery { district: District, address: String, fee: Money },
    /// The seller hands over credentials (game accounts).
    Digital,
}

impl Fulfilment {
    /// The delivery fee (zero for digital).
    pub fn fee(&self) -> Money {
        match self {
            Fulfilment::Delivery { fee, .. } => *fee,
            Fulfilment::Digital => Money::ZERO,
        }
    }
}

/// Where an order is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Placed,
    Paid,
    Accepted,
    CourierAssigned,
    PickedUp,
    Delivered,
    CredentialsDelivered,
    Completed,
    Cancelled,
    ReturnRequested,
    Returned,
    Disputed,
    /// A dispute ended with money back to the buyer.
    Refunded,
}

impl Status {
    /// The status's API name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Placed => "placed",
            Status::Paid => "paid",
            Status::Accepted => "accepted",
            Status::CourierAssigned => "courier_assigned",
            Status::PickedUp => "picked_up",
            Status::Delivered => "delivered",
            Status::CredentialsDelivered => "credentials_delivered",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::ReturnRequested => "return_requested",
            Status::Returned => "returned",
            Status::Disputed => "disputed",
            Status::Refunded => "refunded",
        }
    }
}

/// An order that exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub seller_plan: Plan,
    pub lines: Vec<Line>,
    pub fulfilment: Fulfilment,
    /// Sum of the lines.
    pub goods_total: Money,
    pub status: Status,
    pub escrow_id: Option<Uuid>,
    pub courier_id: Option<Uuid>,
    /// Where the courier collects the goods, set when the seller accepts (absent for orders
    /// accepted before sellers gave one).
    #[serde(default)]
    pub pickup: Option<Pickup>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub placed_at: DateTime<Utc>,
    /// A provider payment created for this order and not yet performed or cancelled: while it
    /// is, nothing else pays the order (no second charge of the buyer's card or wallet).
    #[serde(default)]
    pub awaiting_payment: Option<Uuid>,
    /// When that payment was created: after `PAYMENT_WAIT_MAX` it no longer blocks others.
    #[serde(default)]
    pub awaiting_since: Option<DateTime<Utc>>,
}

/// How long a created provider payment keeps an order for itself. A buyer pays within minutes;
/// a transaction someone started and abandoned must not lock the order for good. Another
/// payment may then take its place, and the abandoned one, should its provider perform it
/// after all, is refused and cancelled (the order is no longer waiting for it).
pub const PAYMENT_WAIT_MAX: chrono::Duration = chrono::Duration::minutes(30);

impl Order {
    /// The provider payment the order waits for at `now`, if one still holds it.
    pub fn pending_payment(&self, now: DateTime<Utc>) -> Option<Uuid> {
        let fresh = self.awaiting_since.is_none_or(|since| now - since < PAYMENT_WAIT_MAX);
        self.awaiting_payment.filter(|_| fresh)
    }
}

impl Order {
    /// What the buyer pays: goods and delivery.
    pub fn total(&self) -> Money {
        self.goods_total.checked_add(self.fulfilment.fee()).expect("checked when placed")
    }

    /// True for digital (game account) orders.
    pub fn is_digital(&self) -> bool {
        self.fulfilment == Fulfilment::Digital
    }

    /// The courier who earned the delivery fee: set once the goods were picked up.
    pub fn fee_earner(&self) -> Option<Uuid> {
        match self.status {
            Status::Placed | Status::Paid | Status::Accepted | Status::CourierAssigned | Status::Cancelled => None,
            _ => self.courier_id,
        }
    }
}

/// The state of an order stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Initial,
    Exists(Box<Order>),
}

/// Commands on an order.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Place {
        order_id: Uuid,
        seller_id: Uuid,
        seller_plan: Plan,
        lines: Vec<Line>,
        fulfilment: Fulfilment,
    },
    Pay {
        escrow_id: Uuid,
    },
    /// A payment provider created a transaction paying this order (the system role).
    AwaitPayment {
        payment_id: Uuid,
        amount: Money,
    },
    /// That transaction was cancelled before it was performed; a no-op for any other payment.
    AbandonPayment {
        payment_id: Uuid,
    },
    /// The scheduler cancels an order left unpaid for `unpaid_ttl` (none of its provider
    /// payments in progress).
    Expire {
        unpaid_ttl: chrono::Duration,
    },
    /// That transaction was performed: the order is paid.
    PayThroughProvider {
        escrow_id: Uuid,
        payment_id: Uuid,
    },
    /// The seller accepts a paid delivery order and says where the courier collects it.
    Accept {
        pickup: Pickup,
    },
    /// A courier takes an accepted order, or staff assign (or, before pick-up, reassign) one.
    /// `courier_district` is the district the user serves as a courier, as their user stream
    /// says: `None` when they are not a registered courier.
    AssignCourier {
        courier_id: Uuid,
        courier_district: Option<District>,
    },
    PickUp,
    Deliver,
    DeliverCredentials,
    Confirm,
    AutoComplete,
    Cancel {
        reason: String,
    },
    RequestReturn {
        reason: String,
    },
    Refund {
        amount: Money,
    },
    OpenDispute {
        reason: String,
    },
    ResolveDispute {
        resolution: Resolution,
    },
}

/// Events of an order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    OrderPlaced {
        order_id: Uuid,
        buyer_id: Uuid,
        seller_id: Uuid,
        seller_plan: Plan,
        lines: Vec<Line>,
        fulfilment: Fulfilment,
        goods_total: Money,
        at: DateTime<Utc>,
    },
    OrderPaid {
        escrow_id: Uuid,
        at: DateTime<Utc>,
    },
    PaymentAwaited {
        payment_id: Uuid,
        at: DateTime<Utc>,
    },
    PaymentAbandoned {
        payment_id: Uuid,
        at: DateTime<Utc>,
    },
    /// v2 adds `pickup` (v1: none).
    OrderAccepted {
        pickup: Option<Pickup>,
        at: DateTime<Utc>,
    },
    CourierAssigned {
        courier_id: Uuid,
        by: Uuid,
        at: DateTime<Utc>,
    },
    OrderPickedUp {
        at: DateTime<Utc>,
    },
    OrderDelivered {
        at: DateTime<Utc>,
    },
    CredentialsDelivered {
        at: DateTime<Utc>,
    },
    OrderCompleted {
        automatic: bool,
        at: DateTime<Utc>,
    },
    OrderCancelled {
        by: Uuid,
        reason: String,
        refunded: bool,
        at: DateTime<Utc>,
    },
    ReturnRequested {
        reason: String,
        at: DateTime<Utc>,
    },
    OrderReturned {
        refund: Money,
        at: DateTime<Utc>,
    },
    DisputeOpened {
        by: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    DisputeResolved {
        resolution: Resolution,
        at: DateTime<Utc>,
    },
}

/// The Order aggregate.
pub struct OrderAggregate;

impl Aggregate for OrderAggregate {
    const STREAM_TYPE: &'static str = "order";
    // 2: `Order::pickup`. 3: `Order::awaiting_payment`.
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

/// Decides an order command.
pub fn decide(state: &State, command: &Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    let o = match (state, command) {
        (State::Initial, Command::Place { order_id, seller_id, seller_plan, lines, fulfilment }) => {
            return place(*order_id, *seller_id, *seller_plan, lines, fulfilment, ctx)
        }
        (State::Exists(_), Command::Place { .. }) => return Err(DomainError::AlreadyExists { what: "order" }),
        (State::Initial, _) => return Err(DomainError::NotFound { what: "order" }),
        (State::Exists(o), _) => o,
    };
    let (at, me) = (ctx.now, ctx.actor.id);
    let delivery = !o.is_digital();
    match command {
        Command::Place { .. } => unreachable!("handled above"),
        Command::Pay { escrow_id } => {
            buyer(o, ctx)?;
            require(o, "pay", o.status == Status::Placed)?;
            if o.pending_payment(at).is_some() {
                return Err(DomainError::PaymentPending);
            }
            Ok(vec![Event::OrderPaid { escrow_id: *escrow_id, at }])
        }
        Command::AwaitPayment { payment_id, amount } => {
            system(ctx)?;
            require(o, "pay", o.status == Status::Placed)?;
            match o.pending_payment(at) {
                Some(p) if p == *payment_id => return Ok(vec![]),
                Some(_) => return Err(DomainError::PaymentPending),
                None => {}
            }
            if *amount != o.total() {
                return Err(DomainError::AmountMismatch { expected: o.total() });
            }
            Ok(vec![Event::PaymentAwaited { payment_id: *payment_id, at }])
        }
        Command::AbandonPayment { payment_id } => {
            system(ctx)?;
            if o.awaiting_payment != Some(*payment_id) {
                return Ok(vec![]);
            }
            Ok(vec![Event::PaymentAbandoned { payment_id: *payment_id, at }])
        }
        Command::Expire { unpaid_ttl } => {
            system(ctx)?;
            require(o, "expire", o.status == Status::Placed)?;
            if o.pending_payment(at).is_some() {
                return Err(DomainError::PaymentPending);
            }
            if at < o.placed_at + *unpaid_ttl {
                return Err(DomainError::NotDue);
            }
            let minutes = unpaid_ttl.num_minutes();
            let reason = format!("not paid within {minutes} minutes");
            Ok(vec![Event::OrderCancelled { by: me, reason, refunded: false, at }])
        }
        Command::PayThroughProvider { escrow_id, payment_id } => {
            system(ctx)?;
            require(o, "pay", o.status == Status::Placed && o.awaiting_payment == Some(*payment_id))?;
            Ok(vec![Event::OrderPaid { escrow_id: *escrow_id, at }])
        }
        Command::Accept { pickup } => {
            seller(o, ctx)?;
            require(o, "accept", delivery && o.status == Status::Paid)?;
            let address = pickup.address.trim();
            if address.is_empty() || address.chars().count() > 500 {
                return invalid("pickup", "the address must be 1 to 500 characters");
            }
            let pickup = Pickup { district: pickup.district, address: address.to_owned() };
            Ok(vec![Event::OrderAccepted { pickup: Some(pickup), at }])
        }
        Command::AssignCourier { courier_id, courier_district } => {
            assign_courier(o, *courier_id, *courier_district, ctx)
        }
        Command::PickUp => {
            courier(o, ctx)?;
            require(o, "pick up", o.status == Status::CourierAssigned)?;
            Ok(vec![Event::OrderPickedUp { at }])
        }
        Command::Deliver => {
            courier(o, ctx)?;
            require(o, "deliver", o.status == Status::PickedUp)?;
            Ok(vec![Event::OrderDelivered { at }])
        }
        Command::DeliverCredentials => {
            seller(o, ctx)?;
            require(o, "deliver credentials for", !delivery && o.status == Status::Paid)?;
            Ok(vec![Event::CredentialsDelivered { at }])
        }
        Command::Confirm => {
            buyer(o, ctx)?;
            require(o, "confirm", matches!(o.status, Status::Delivered | Status::CredentialsDelivered))?;
            Ok(vec![Event::OrderCompleted { automatic: false, at }])
        }
        Command::AutoComplete => {
            if !ctx.actor.has(Role::System) {
                return forbidden("only the scheduler completes orders automatically");
            }
            require(o, "complete", matches!(o.status, Status::Delivered | Status::CredentialsDelivered))?;
            Ok(vec![Event::OrderCompleted { automatic: true, at }])
        }
        Command::Cancel { reason } => cancel(o, reason, ctx),
        Command::RequestReturn { reason } => {
            buyer(o, ctx)?;
            require(o, "return", delivery && o.status == Status::Delivered)?;
            Ok(vec![Event::ReturnRequested { reason: reason_text(reason)?, at }])
        }
        Command::Refund { amount } => {
            if o.seller_id != me && !ctx.actor.is_staff(false) {
                return forbidden("only the seller or an admin refunds");
            }
            if o.buyer_id == me {
                return forbidden("a buyer does not refund their own order");
            }
            require(o, "refund", o.status == Status::ReturnRequested)?;
            if amount.is_zero() || *amount > o.goods_total {
                return invalid("amount", "must be positive and at most the goods total");
            }
            Ok(vec![Event::OrderReturned { refund: *amount, at }])
        }
        Command::OpenDispute { reason } => {
            if o.buyer_id != me && o.seller_id != me {
                return forbidden("only the buyer or the seller opens a dispute");
            }
            let open = matches!(o.status, Status::Delivered | Status::CredentialsDelivered | Status::ReturnRequested);
            require(o, "dispute", open)?;
            Ok(vec![Event::DisputeOpened { by: me, reason: reason_text(reason)?, at }])
        }
        Command::ResolveDispute { resolution } => {
            if !ctx.actor.is_staff(false) {
                return forbidden("only an admin resolves disputes");
            }
            if o.buyer_id == me || o.seller_id == me {
                return forbidden("nobody resolves a dispute they are party to");
            }
            require(o, "resolve", o.status == Status::Disputed)?;
            Ok(vec![Event::DisputeResolved { resolution: *resolution, at }])
        }
    }
}

fn place(
    order_id: Uuid,
    seller_id: Uuid,
    seller_plan: Plan,
    lines: &[Line],
    fulfilment: &Fulfilment,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    if seller_id == ctx.actor.id {
        return forbidden("sellers cannot buy their own listings");
    }
    if lines.is_empty() || lines.len() > ORDER_LINES_MAX {
        return invalid("items", "an order has 1 to 50 items");
    }
    if lines.iter().any(|l| l.quantity == 0 || l.quantity > LINE_QUANTITY_MAX) {
        return invalid("quantity", "must be 1 to 1000");
    }
    if let Fulfilment::Delivery { address, .. } = fulfilment {
        if address.trim().is_empty() || address.chars().count() > 500 {
            return invalid("address", "must be 1 to 500 characters");
        }
    }
    let mut total = Money::ZERO;
    for l in lines {
        let line_total = l.unit_price.checked_mul(l.quantity).ok_or(DomainError::AmountTooLarge)?;
        total = total.checked_add(line_total).ok_or(DomainError::AmountTooLarge)?;
    }
    // Goods and delivery together are what the buyer's wallet will hold: one amount.
    let with_fee = total.checked_add(fulfilment.fee()).ok_or(DomainError::AmountTooLarge)?;
    with_fee.within_limit()?;
    Ok(vec![Event::OrderPlaced {
        order_id,
        buyer_id: ctx.actor.id,
        seller_id,
        seller_plan,
        lines: lines.to_vec(),
        fulfilment: fulfilment.clone(),
        goods_total: total,
        at: ctx.now,
    }])
}

fn assign_courier(
    o: &Order,
    courier_id: Uuid,
    courier_district: Option<District>,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    let staff = ctx.actor.is_staff(true);
    let self_assign = ctx.actor.has(Role::Courier) && courier_id == ctx.actor.id;
    if !self_assign && !staff {
        return forbidden("couriers take orders for themselves; support assigns others");
    }
    if courier_id == o.buyer_id || courier_id == o.seller_id {
        return forbidden("the order's buyer or seller cannot be its courier");
    }
    // Staff may hand an order to another courier until it is picked up.
    let open = o.status == Status::Accepted || (staff && o.status == Status::CourierAssigned);
    let district = match o.fulfilment {
        Fulfilment::Delivery { district, .. } if open => district,
        _ => {
            return Err(DomainError::InvalidTransition {
                what: "order",
                action: "assign a courier to",
                status: o.status.name(),
            })
        }
    };
    if o.courier_id == Some(courier_id) {
        return invalid("courier_id", "is the order's courier already");
    }
    let serves = courier_district.ok_or(DomainError::NotACourier { user_id: courier_id })?;
    if serves != district {
        return Err(DomainError::CourierDistrictMismatch { courier: serves.name(), order: district.name() });
    }
    Ok(vec![Event::CourierAssigned { courier_id, by: ctx.actor.id, at: ctx.now }])
}

fn cancel(o: &Order, reason: &str, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    let me = ctx.actor.id;
    // The system cancels an order whose provider payment was cancelled after it was performed.
    if o.buyer_id != me && o.seller_id != me && !ctx.actor.is_staff(true) && !ctx.actor.has(Role::System) {
        return forbidden("only the buyer, the seller or support cancels an order");
    }
    let before_pick_up = match o.fulfilment {
        Fulfilment::Digital => matches!(o.status, Status::Placed | Status::Paid),
        Fulfilment::Delivery { .. } => {
            matches!(o.status, Status::Placed | Status::Paid | Status::Accepted | Status::CourierAssigned)
        }
    };
    require(o, "cancel", before_pick_up)?;
    let refunded = o.status != Status::Placed;
    Ok(vec![Event::OrderCancelled { by: me, reason: reason_text(reason)?, refunded, at: ctx.now }])
}

fn system(ctx: &Context) -> Result<(), DomainError> {
    if !ctx.actor.has(Role::System) {
        return forbidden("only payment provider callbacks do this");
    }
    Ok(())
}

fn buyer(o: &Order, ctx: &Context) -> Result<(), DomainError> {
    if o.buyer_id != ctx.actor.id {
        return forbidden("only the order's buyer may do this");
    }
    Ok(())
}

fn seller(o: &Order, ctx: &Context) -> Result<(), DomainError> {
    if o.seller_id != ctx.actor.id {
        return forbidden("only the order's seller may do this");
    }
    Ok(())
}

fn courier(o: &Order, ctx: &Context) -> Result<(), DomainError> {
    if o.courier_id != Some(ctx.actor.id) {
        return forbidden("only the assigned courier may do this");
    }
    Ok(())
}

fn require(o: &Order, action: &'static str, allowed: bool) -> Result<(), DomainError> {
    if allowed {
        return Ok(());
    }
    Err(DomainError::InvalidTransition { what: "order", action, status: o.status.name() })
}

fn reason_text(reason: &str) -> Result<String, DomainError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 2_000 {
        return invalid("reason", "must be 1 to 2000 characters");
    }
    Ok(reason.to_owned())
}

/// Applies an order event.
pub fn evolve(state: State, event: &Event) -> State {
    let mut o = match (state, event) {
        (
            State::Initial,
            Event::OrderPlaced { order_id, buyer_id, seller_id, seller_plan, lines, fulfilment, goods_total, at },
        ) => {
            return State::Exists(Box::new(Order {
                id: *order_id,
                buyer_id: *buyer_id,
                seller_id: *seller_id,
                seller_plan: *seller_plan,
                lines: lines.clone(),
                fulfilment: fulfilment.clone(),
                goods_total: *goods_total,
                status: Status::Placed,
                escrow_id: None,
                courier_id: None,
                pickup: None,
                delivered_at: None,
                placed_at: *at,
                awaiting_payment: None,
                awaiting_since: None,
            }))
        }
        (State::Initial, e) => panic!("order event {e:?} before OrderPlaced"),
        (State::Exists(o), Event::OrderPlaced { .. }) => panic!("order {} placed twice", o.id),
        (State::Exists(o), _) => o,
    };
    o.status = match event {
        Event::OrderPlaced { .. } => unreachable!("handled above"),
        Event::OrderPaid { escrow_id, .. } => {
            o.escrow_id = Some(*escrow_id);
            o.awaiting_payment = None;
            o.awaiting_since = None;
            Status::Paid
        }
        Event::PaymentAwaited { payment_id, at } => {
            o.awaiting_payment = Some(*payment_id);
            o.awaiting_since = Some(*at);
            o.status
        }
        Event::PaymentAbandoned { .. } => {
            o.awaiting_payment = None;
            o.awaiting_since = None;
            o.status
        }
        Event::OrderAccepted { pickup, .. } => {
            o.pickup = pickup.clone();
            Status::Accepted
        }
        Event::CourierAssigned { courier_id, .. } => {
            o.courier_id = Some(*courier_id);
            Status::CourierAssigned
        }
        Event::OrderPickedUp { .. } => Status::PickedUp,
        Event::OrderDelivered { at } => {
            o.delivered_at = Some(*at);
            Status::Delivered
        }
        Event::CredentialsDelivered { at } => {
            o.delivered_at = Some(*at);
            Status::CredentialsDelivered
        }
        Event::OrderCompleted { .. } => Status::Completed,
        Event::OrderCancelled { .. } => Status::Cancelled,
        Event::ReturnRequested { .. } => Status::ReturnRequested,
        Event::OrderReturned { .. } => Status::Returned,
        Event::DisputeOpened { .. } => Status::Disputed,
        Event::DisputeResolved { resolution, .. } => match resolution {
            Resolution::Refund => Status::Refunded,
            Resolution::Release | Resolution::Split { .. } => Status::Completed,
        },
    };
    State::Exists(o)
}
