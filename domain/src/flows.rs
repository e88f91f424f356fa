//! Commands that span several streams, as pure functions over a unit of work.
//!
//! A flow decides each aggregate's command on the state left by the previous one, so several
//! postings to one wallet compose. The command side loads the streams a flow needs, runs it, and
//! appends every stream's new events in one transaction with per-stream expected versions. If a
//! flow fails, the unit of work is dropped and nothing is appended.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::context::{Context, Role};
use crate::error::{forbidden, invalid, DomainError};
use crate::escrow::{self, EscrowAggregate, Resolution, Settlement};
use crate::listing::{self, Details, ItemQuantity, ListingAggregate, PromotionTier, GAME_ACCOUNT_SKU};
use crate::money::Money;
use crate::order::{self, District, Fulfilment, Line, OrderAggregate};
use crate::payment::{self, CancelReason, PaymentAggregate, Target};
use crate::user::UserAggregate;
use crate::wallet::{self, Owner, PlatformAccount, Provider, Reason, WalletAggregate};

/// Namespace of escrow ids derived from order ids (one escrow per order).
const ESCROW_NS: Uuid = Uuid::from_u128(0x2c4b_7e90_11d3_4f6a_9e2b_5c8d_0f1a_e3b7);

/// The escrow stream of an order.
pub fn escrow_id_for(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&ESCROW_NS, order_id.as_bytes())
}

/// The streams of one aggregate type in a unit of work: loaded states and new events.
pub struct Streams<A: Aggregate> {
    states: BTreeMap<Uuid, A::State>,
    new: BTreeMap<Uuid, Vec<A::Event>>,
}

impl<A: Aggregate> Default for Streams<A> {
    fn default() -> Self {
        Streams { states: BTreeMap::new(), new: BTreeMap::new() }
    }
}

impl<A: Aggregate> Streams<A> {
    /// Adds a loaded stream.
    pub fn load(&mut self, id: Uuid, state: A::State) {
        self.states.insert(id, state);
    }

    /// True when `id` was loaded.
    pub fn has(&self, id: Uuid) -> bool {
        self.states.contains_key(&id)
    }

    /// The current state of a loaded stream. Panics when the caller did not load it: a flow's
    /// needs are known before it runs.
    pub fn state(&self, id: Uuid) -> &A::State {
        self.states.get(&id).unwrap_or_else(|| panic!("{} stream {id} was not loaded", A::STREAM_TYPE))
    }

    /// Decides `command` on the stream's current state, applies and records the events.
    pub fn exec(&mut self, id: Uuid, command: &A::Command, ctx: &Context) -> Result<Vec<A::Event>, DomainError> {
        let events = A::decide(self.state(id), command, ctx)?;
        let state = self.states.remove(&id).expect("checked by state()");
        let state = events.iter().fold(state, A::evolve);
        self.states.insert(id, state);
        self.new.entry(id).or_default().extend(events.iter().cloned());
        Ok(events)
    }

    /// Streams with new events: id, the events in order, and the state after them.
    pub fn changes(&self) -> impl Iterator<Item = (Uuid, &[A::Event], &A::State)> {
        self.new
            .iter()
            .filter(|(_, e)| !e.is_empty())
            .map(|(id, e)| (*id, e.as_slice(), self.states.get(id).expect("changed streams are loaded")))
    }
}

/// Every stream a multi-stream command reads or writes.
#[derive(Default)]
pub struct UnitOfWork {
    pub listings: Streams<ListingAggregate>,
    pub orders: Streams<OrderAggregate>,
    pub escrows: Streams<EscrowAggregate>,
    pub wallets: Streams<WalletAggregate>,
    pub users: Streams<UserAggregate>,
    pub payments: Streams<PaymentAggregate>,
    /// The provider clearing shard this command posts to, when the caller chose one (any shard
    /// of the account is as good as another: a balance is the sum of them all). Unset, the
    /// shard follows the user, as `wallet::platform_owner` picks it.
    pub clearing_shard: Option<u8>,
    /// Users the command side knows exist without having loaded their streams: a user, once
    /// registered, always exists. A flow that needs nothing of a user but that it exists takes
    /// these as it takes a loaded user that exists.
    pub existing_users: std::collections::BTreeSet<Uuid>,
}

impl UnitOfWork {
    /// The provider clearing wallet a money movement about `key` posts to.
    pub fn clearing_owner(&self, key: Uuid) -> Owner {
        match self.clearing_shard {
            Some(shard) if shard < wallet::shards(PlatformAccount::ProviderClearing) => {
                Owner::Platform { account: PlatformAccount::ProviderClearing, shard }
            }
            _ => wallet::platform_owner(PlatformAccount::ProviderClearing, key),
        }
    }
}

/// One line of a new order, as the buyer asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct LineRequest {
    pub listing_id: Uuid,
    /// The product variant; optional for single-variant products and game accounts.
    pub sku: Option<String>,
    pub quantity: u32,
}

/// Where a delivery goes.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryRequest {
    pub district: District,
    pub address: String,
}

fn order_data(uow: &UnitOfWork, order_id: Uuid) -> Result<order::Order, DomainError> {
    match uow.orders.state(order_id) {
        order::State::Exists(o) => Ok((**o).clone()),
        order::State::Initial => Err(DomainError::NotFound { what: "order" }),
    }
}

fn escrow_data(uow: &UnitOfWork, escrow_id: Uuid) -> Result<escrow::Escrow, DomainError> {
    match uow.escrows.state(escrow_id) {
        escrow::State::Exists(e) => Ok((**e).clone()),
        escrow::State::Initial => Err(DomainError::NotFound { what: "escrow" }),
    }
}

/// The distinct listings of an order's lines.
pub fn order_listings(o: &order::Order) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = o.lines.iter().map(|l| l.listing_id).collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The wallets a settlement of `o` may touch: buyer, seller, courier and platform revenue.
pub fn settlement_wallets(o: &order::Order) -> Vec<Uuid> {
    let mut ids = vec![
        wallet::user_wallet_id(o.buyer_id),
        wallet::user_wallet_id(o.seller_id),
        wallet::platform_owner(PlatformAccount::Revenue, o.id).wallet_id(),
    ];
    ids.extend(o.courier_id.map(wallet::user_wallet_id));
    ids.sort();
    ids.dedup();
    ids
}

/// Places an order: snapshots the listings' titles and prices, reserves stock or the game
/// account, and fixes the delivery fee from the district. Needs the listings loaded.
pub fn place_order(
    uow: &mut UnitOfWork,
    ctx: &Context,
    order_id: Uuid,
    requested: &[LineRequest],
    delivery: Option<DeliveryRequest>,
) -> Result<(), DomainError> {
    if requested.is_empty() || requested.len() > order::ORDER_LINES_MAX {
        return invalid("items", "an order has 1 to 50 items");
    }
    let mut lines = Vec::with_capacity(requested.len());
    let mut seller: Option<(Uuid, crate::money::Plan)> = None;
    let mut digital = None;
    for r in requested {
        let l = match uow.listings.state(r.listing_id) {
            listing::State::Exists(l) if !l.deleted => l,
            _ => return Err(DomainError::NotFound { what: "listing" }),
        };
        if l.status != listing::Status::Active {
            return Err(DomainError::ListingNotActive);
        }
        let (is_digital, sku) = match (&l.details, &r.sku) {
            (Details::Classified { .. }, _) => {
                return Err(DomainError::ListingNotOrderable { reason: "classified ads are contact-only" })
            }
            (Details::GameAccount { .. }, _) => (true, GAME_ACCOUNT_SKU.to_owned()),
            (Details::Product { .. }, Some(sku)) => (false, sku.clone()),
            (Details::Product { variants }, None) if variants.len() == 1 => (false, variants[0].sku.clone()),
            (Details::Product { .. }, None) => return invalid("sku", "required for products with several variants"),
        };
        if *digital.get_or_insert(is_digital) != is_digital {
            return invalid("items", "game accounts are ordered alone, not with goods");
        }
        if seller.get_or_insert((l.seller_id, l.seller_plan)).0 != l.seller_id {
            return Err(DomainError::MixedSellers);
        }
        lines.push(Line {
            listing_id: r.listing_id,
            sku,
            title: l.title.clone(),
            unit_price: l.price,
            quantity: r.quantity,
        });
    }
    let (seller_id, seller_plan) = seller.expect("at least one line");
    let fulfilment = match (digital, delivery) {
        (Some(true), None) => Fulfilment::Digital,
        (Some(true), Some(_)) => return invalid("delivery", "game accounts are delivered digitally"),
        (_, Some(d)) => {
            Fulfilment::Delivery { district: d.district, address: d.address, fee: d.district.delivery_fee() }
        }
        (_, None) => return invalid("delivery", "goods need a delivery district and address"),
    };
    let place = order::Command::Place { order_id, seller_id, seller_plan, lines: lines.clone(), fulfilment };
    uow.orders.exec(order_id, &place, ctx)?;
    let mut by_listing: BTreeMap<Uuid, Vec<ItemQuantity>> = BTreeMap::new();
    for l in &lines {
        by_listing.entry(l.listing_id).or_default().push(ItemQuantity { sku: l.sku.clone(), quantity: l.quantity });
    }
    for (listing_id, items) in by_listing {
        uow.listings.exec(listing_id, &listing::Command::Reserve { order_id, items }, ctx)?;
    }
    Ok(())
}

/// Pays an order from the buyer's wallet: opens and funds its escrow and holds the money.
/// Needs the order, its escrow (`escrow_id_for`) and the buyer's wallet loaded.
pub fn pay_order(uow: &mut UnitOfWork, ctx: &Context, order_id: Uuid, journal_id: Uuid) -> Result<(), DomainError> {
    let o = order_data(uow, order_id)?;
    let escrow_id = escrow_id_for(order_id);
    uow.orders.exec(order_id, &order::Command::Pay { escrow_id }, ctx)?;
    let total = open_funded_escrow(uow, ctx, &o, journal_id)?;
    let hold =
        wallet::Command::Hold { journal_id, hold_id: escrow_id, amount: total, reason: Reason::Escrow { order_id } };
    uow.wallets.exec(wallet::user_wallet_id(o.buyer_id), &hold, ctx)?;
    Ok(())
}

/// Opens and funds the escrow of a paid order; answers the amount it holds.
fn open_funded_escrow(
    uow: &mut UnitOfWork,
    ctx: &Context,
    o: &order::Order,
    journal_id: Uuid,
) -> Result<Money, DomainError> {
    let (order_id, escrow_id) = (o.id, escrow_id_for(o.id));
    let open = escrow::Command::Open {
        escrow_id,
        order_id,
        buyer_id: o.buyer_id,
        seller_id: o.seller_id,
        amount: o.goods_total,
        commission: o.seller_plan.commission(),
        delivery_fee: o.fulfilment.fee(),
    };
    uow.escrows.exec(escrow_id, &open, ctx)?;
    uow.escrows.exec(escrow_id, &escrow::Command::Fund { journal_id }, ctx)?;
    Ok(escrow_data(uow, escrow_id)?.total())
}

/// A command that touches the order alone (accept, pick up).
pub fn order_step(
    uow: &mut UnitOfWork,
    ctx: &Context,
    order_id: Uuid,
    command: &order::Command,
) -> Result<(), DomainError> {
    uow.orders.exec(order_id, command, ctx).map(|_| ())
}

/// A courier takes an accepted order, or staff assign (or reassign, before pick-up) one. The
/// courier must be registered and serve the order's district, as their user stream says now
/// (not as a token minted before a revocation says). Needs the order and the courier's user
/// stream loaded.
pub fn assign_courier(
    uow: &mut UnitOfWork,
    ctx: &Context,
    order_id: Uuid,
    courier_id: Uuid,
) -> Result<(), DomainError> {
    let courier_district = match uow.users.state(courier_id) {
        crate::user::State::Exists(u) => u.district(),
        crate::user::State::Initial => None,
    };
    let command = order::Command::AssignCourier { courier_id, courier_district };
    uow.orders.exec(order_id, &command, ctx).map(|_| ())
}

/// The courier delivered (or the seller handed over credentials): start the 24 h release clock.
pub fn deliver(uow: &mut UnitOfWork, ctx: &Context, order_id: Uuid) -> Result<(), DomainError> {
    let o = order_data(uow, order_id)?;
    let command = if o.is_digital() { order::Command::DeliverCredentials } else { order::Command::Deliver };
    if o.is_digital() {
        // Handing over a game account is handing over readable credentials.
        for id in order_listings(&o) {
            if let listing::State::Exists(l) = uow.listings.state(id) {
                l.sealed_credentials()?;
            }
        }
    }
    uow.orders.exec(order_id, &command, ctx)?;
    uow.escrows.exec(escrow_id_for(order_id), &escrow::Command::ScheduleRelease, ctx)?;
    Ok(())
}

/// The buyer confirms (or the scheduler, when due, with `automatic`): the escrow is released to
/// the seller, the platform and the courier. Needs order, escrow, listings and
/// `settlement_wallets` loaded.
pub fn complete(
    uow: &mut UnitOfWork,
    ctx: &Context,
    order_id: Uuid,
    journal_id: Uuid,
    automatic: bool,
) -> Result<(), DomainError> {
    let o = order_data(uow, order_id)?;
    let escrow_id = escrow_id_for(order_id);
    if automatic {
        // Check the escrow's clock first so an early timer says "not due", not "forbidden".
        let release = escrow::Command::Release { journal_id, courier_id: o.fee_earner(), automatic };
        let events = uow.escrows.exec(escrow_id, &release, ctx)?;
        uow.orders.exec(order_id, &order::Command::AutoComplete, ctx)?;
        settle_released(uow, ctx, &o, &events, journal_id)?;
    } else {
        uow.orders.exec(order_id, &order::Command::Confirm, ctx)?;
        let release = escrow::Command::Release { journal_id, courier_id: o.fee_earner(), automatic };
        let events = uow.escrows.exec(escrow_id, &release, ctx)?;
        settle_released(uow, ctx, &o, &events, journal_id)?;
    }
    for listing_id in order_listings(&o) {
        uow.listings.exec(listing_id, &listing::Command::CompleteSale { order_id }, ctx)?;
    }
    Ok(())
}

fn settle_released(
    uow: &mut UnitOfWork,
    ctx: &Context,
    o: &order::Order,
    events: &[escrow::Event],
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let settlement = events
        .iter()
        .find_map(|e| match e {
            escrow::Event::EscrowReleased { settlement, .. }
            | escrow::Event::EscrowRefunded { settlement, .. }
            | escrow::Event::EscrowResolved { settlement, .. } => Some(*settlement),
            _ => None,
        })
        .expect("a settling escrow command yields a settlement");
    pay_out(uow, ctx, o, &settlement, journal_id)
}

/// Moves an escrow's held money out of the buyer's wallet to everyone the settlement names.
fn pay_out(
    uow: &mut UnitOfWork,
    ctx: &Context,
    o: &order::Order,
    s: &Settlement,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let escrow_id = escrow_id_for(o.id);
    let order_id = o.id;
    uow.wallets.exec(
        wallet::user_wallet_id(o.buyer_id),
        &wallet::Command::CaptureHold { journal_id, hold_id: escrow_id },
        ctx,
    )?;
    let credits = [
        (Owner::User { user_id: o.buyer_id }, s.to_buyer, Reason::Refund { order_id }),
        (Owner::User { user_id: o.seller_id }, s.to_seller, Reason::Sale { order_id }),
        (wallet::platform_owner(PlatformAccount::Revenue, order_id), s.commission, Reason::Commission { order_id }),
    ];
    let courier = s.courier_id.map(|c| (Owner::User { user_id: c }, s.to_courier, Reason::DeliveryFee { order_id }));
    for (owner, amount, reason) in credits.into_iter().chain(courier) {
        if !amount.is_zero() {
            let credit = wallet::Command::Credit { owner, journal_id, amount, reason };
            uow.wallets.exec(owner.wallet_id(), &credit, ctx)?;
        }
    }
    Ok(())
}

/// Cancels an order before pick-up: reservations go back and a paid order is refunded in full
/// (the buyer's hold is released). Needs order, listings, and if paid escrow and buyer wallet.
pub fn cancel(
    uow: &mut UnitOfWork,
    ctx: &Context,
    order_id: Uuid,
    reason: &str,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let o = order_data(uow, order_id)?;
    let events = uow.orders.exec(order_id, &order::Command::Cancel { reason: reason.to_owned() }, ctx)?;
    let refunded = matches!(events.first(), Some(order::Event::OrderCancelled { refunded: true, .. }));
    if refunded {
        let escrow_id = escrow_id_for(order_id);
        let e = escrow_data(uow, escrow_id)?;
        let refund = escrow::Command::Refund { journal_id, to_buyer: e.amount, courier_id: None };
        uow.escrows.exec(escrow_id, &refund, ctx)?;
        let release = wallet::Command::ReleaseHold { journal_id, hold_id: escrow_id };
        uow.wallets.exec(wallet::user_wallet_id(o.buyer_id), &release, ctx)?;
    }
    for listing_id in order_listings(&o) {
        uow.listings.exec(listing_id, &listing::Command::ReleaseReservation { order_id }, ctx)?;
    }
    Ok(())
}

/// The scheduler cancels an order left unpaid for `unpaid_ttl`: its reservations go back.
/// Needs the order and its listings loaded.
pub fn expire_unpaid(
    uow: &mut UnitOfWork,
    ctx: &Context,
    order_id: Uuid,
    unpaid_ttl: chrono::Duration,
) -> Result<(), DomainError> {
    let o = order_data(uow, order_id)?;
    uow.orders.exec(order_id, &order::Command::Expire { unpaid_ttl }, ctx)?;
    for listing_id in order_listings(&o) {
        uow.listings.exec(listing_id, &listing::Command::ReleaseReservation { order_id }, ctx)?;
    }
    Ok(())
}

/// The buyer asks to return delivered goods: the automatic release stops.
pub fn request_return(uow: &mut UnitOfWork, ctx: &Context, order_id: Uuid, reason: &str) -> Result<(), DomainError> {
    uow.orders.exec(order_id, &order::Command::RequestReturn { reason: reason.to_owned() }, ctx)?;
    uow.escrows.exec(escrow_id_for(order_id), &escrow::Command::SuspendRelease, ctx)?;
    Ok(())
}

/// The seller (or an admin) takes returned goods back: `amount` (default: the goods total) goes
/// back to the buyer, the rest to the seller less commission, the fee to the courier; the stock
/// is restored. Needs order, escrow, listings and `settlement_wallets` loaded.
pub fn refund(
    uow: &mut UnitOfWork,
    ctx: &Context,
    order_id: Uuid,
    amount: Option<Money>,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let o = order_data(uow, order_id)?;
    let amount = amount.unwrap_or(o.goods_total);
    uow.orders.exec(order_id, &order::Command::Refund { amount }, ctx)?;
    let refund = escrow::Command::Refund { journal_id, to_buyer: amount, courier_id: o.fee_earner() };
    let events = uow.escrows.exec(escrow_id_for(order_id), &refund, ctx)?;
    settle_released(uow, ctx, &o, &events, journal_id)?;
    for listing_id in order_listings(&o) {
        uow.listings.exec(listing_id, &listing::Command::ReleaseReservation { order_id }, ctx)?;
    }
    Ok(())
}

/// The buyer or seller disputes a delivered order: the escrow stops its clock and waits for an admin.
pub fn open_dispute(uow: &mut UnitOfWork, ctx: &Context, order_id: Uuid, reason: &str) -> Result<(), DomainError> {
    uow.orders.exec(order_id, &order::Command::OpenDispute { reason: reason.to_owned() }, ctx)?;
    uow.escrows.exec(escrow_id_for(order_id), &escrow::Command::Dispute { reason: reason.to_owned() }, ctx)?;
    Ok(())
}

/// An admin resolves a dispute by release, refund or split. The goods are not restocked (they
/// stayed with the buyer); a game account is sold either way since its credentials were shown.
pub fn resolve_dispute(
    uow: &mut UnitOfWork,
    ctx: &Context,
    order_id: Uuid,
    resolution: Resolution,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let o = order_data(uow, order_id)?;
    uow.orders.exec(order_id, &order::Command::ResolveDispute { resolution }, ctx)?;
    let resolve = escrow::Command::Resolve { journal_id, resolution, courier_id: o.fee_earner() };
    let events = uow.escrows.exec(escrow_id_for(order_id), &resolve, ctx)?;
    settle_released(uow, ctx, &o, &events, journal_id)?;
    for listing_id in order_listings(&o) {
        uow.listings.exec(listing_id, &listing::Command::CompleteSale { order_id }, ctx)?;
    }
    Ok(())
}

/// The seller buys a promotion, paid from their wallet to platform revenue. Needs the listing,
/// the seller's wallet and the revenue wallet loaded.
pub fn promote(
    uow: &mut UnitOfWork,
    ctx: &Context,
    listing_id: Uuid,
    tier: PromotionTier,
    days: u32,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let events = uow.listings.exec(listing_id, &listing::Command::Promote { tier, days, journal_id }, ctx)?;
    let price = match events.first() {
        Some(listing::Event::ListingPromoted { price, .. }) => *price,
        other => panic!("Promote yields ListingPromoted, got {other:?}"),
    };
    let seller = Owner::User { user_id: ctx.actor.id };
    let reason = Reason::Promotion { listing_id };
    let debit = wallet::Command::Debit { owner: seller, journal_id, amount: price, reason: reason.clone() };
    uow.wallets.exec(seller.wallet_id(), &debit, ctx)?;
    let revenue = wallet::platform_owner(PlatformAccount::Revenue, listing_id);
    uow.wallets.exec(
        revenue.wallet_id(),
        &wallet::Command::Credit { owner: revenue, journal_id, amount: price, reason },
        ctx,
    )?;
    Ok(())
}

/// A top-up of a user's wallet, balanced against the provider clearing account. Idempotent by
/// provider transaction id: a repeat appends nothing. Needs both wallets loaded.
pub fn deposit(
    uow: &mut UnitOfWork,
    ctx: &Context,
    user_id: Uuid,
    amount: Money,
    provider: Provider,
    provider_tx_id: &str,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    if ctx.actor.id == user_id {
        return forbidden("nobody credits their own wallet by hand");
    }
    let user = Owner::User { user_id };
    let deposit = wallet::Command::Deposit {
        owner: user,
        journal_id,
        amount,
        provider,
        provider_tx_id: provider_tx_id.to_owned(),
    };
    let events = uow.wallets.exec(user.wallet_id(), &deposit, ctx)?;
    if events.is_empty() {
        return Ok(());
    }
    let clearing = uow.clearing_owner(user_id);
    let debit = wallet::Command::Debit {
        owner: clearing,
        journal_id,
        amount,
        reason: Reason::Deposit { wallet_id: user.wallet_id() },
    };
    uow.wallets.exec(clearing.wallet_id(), &debit, ctx)?;
    Ok(())
}

/// The bounds of withdrawals, from configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WithdrawalLimits {
    /// The smallest withdrawal.
    pub min: Money,
    /// The most one user withdraws in a Tashkent calendar day (requests, failed ones included).
    pub per_day_max: Money,
}

/// A card to pay out to. Built only by `Card::parse` (or `Card::last4` for clients that send
/// only the last four digits), which keep the masked number: the full one is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    mask: String,
    holder: String,
}

impl Card {
    /// A 16-digit card number (spaces allowed) passing the Luhn check, and its holder's name
    /// (1 to 100 characters). Fails with `invalid_field` naming the field.
    pub fn parse(number: &str, holder: &str) -> Result<Card, DomainError> {
        let digits: Vec<u32> = number.chars().filter(|c| *c != ' ').map(|c| c.to_digit(10).unwrap_or(99)).collect();
        if digits.len() != 16 || digits.iter().any(|d| *d > 9) || !luhn(&digits) {
            return invalid("card_number", "must be a card's 16 digits (the Luhn check fails otherwise)");
        }
        let holder = holder.trim();
        if holder.is_empty() || holder.chars().count() > 100 || holder.chars().any(char::is_control) {
            return invalid("card_holder", "must be 1 to 100 characters");
        }
        let d = |r: std::ops::Range<usize>| {
            digits[r].iter().map(|d| char::from_digit(*d, 10).expect("a digit")).collect::<String>()
        };
        let mask = format!("{} {}** **** {}", d(0..4), d(4..6), d(12..16));
        Ok(Card { mask, holder: holder.to_owned() })
    }

    /// A card known by its last four digits only (the API's older form): no holder.
    pub fn last4(last4: &str) -> Result<Card, DomainError> {
        if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("card_last4", "must be the card's last 4 digits");
        }
        Ok(Card { mask: format!("**** {last4}"), holder: String::new() })
    }

    /// First six and last four digits: `8600 12** **** 3456`.
    pub fn mask(&self) -> &str {
        &self.mask
    }

    /// The holder's name as given.
    pub fn holder(&self) -> &str {
        &self.holder
    }
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 {
                    d * 2 - 9
                } else {
                    d * 2
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A user asks for a payout to a card: the amount is held until the payout completes or fails.
#[allow(clippy::too_many_arguments)]
pub fn request_withdrawal(
    uow: &mut UnitOfWork,
    ctx: &Context,
    user_id: Uuid,
    withdrawal_id: Uuid,
    amount: Money,
    card: &Card,
    limits: WithdrawalLimits,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    if ctx.actor.id != user_id {
        return forbidden("only the wallet's owner withdraws");
    }
    if amount.is_zero() {
        return invalid("amount", "must be positive");
    }
    amount.within_limit()?;
    if amount < limits.min {
        return Err(DomainError::WithdrawalBelowMinimum { min: limits.min });
    }
    let wallet_id = wallet::user_wallet_id(user_id);
    if let wallet::State::Open(w) = uow.wallets.state(wallet_id) {
        let left = limits.per_day_max.tiyin().saturating_sub(w.withdrawn_on(wallet::tashkent_day(ctx.now))).max(0);
        if amount.tiyin() > left {
            return Err(DomainError::WithdrawalDailyLimit { left: Money::from_tiyin(left).expect("clamped to zero") });
        }
    } else if amount > limits.per_day_max {
        return Err(DomainError::WithdrawalDailyLimit { left: limits.per_day_max });
    }
    let reason = Reason::Withdrawal {
        withdrawal_id,
        card_mask: card.mask.clone(),
        card_holder: (!card.holder.is_empty()).then(|| card.holder.clone()),
    };
    let hold = wallet::Command::Hold { journal_id, hold_id: withdrawal_id, amount, reason };
    uow.wallets.exec(wallet_id, &hold, ctx)?;
    Ok(())
}

/// The payout went through (admin or payout callback): the held money leaves to payout clearing.
pub fn complete_withdrawal(
    uow: &mut UnitOfWork,
    ctx: &Context,
    user_id: Uuid,
    withdrawal_id: Uuid,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    if !(ctx.actor.is_staff(false) || ctx.actor.has(Role::System)) {
        return forbidden("only an admin or the payout callback completes withdrawals");
    }
    let wallet_id = wallet::user_wallet_id(user_id);
    let amount = match uow.wallets.state(wallet_id) {
        wallet::State::Open(w) => w.holds.get(&withdrawal_id).copied().ok_or(DomainError::HoldNotFound)?,
        wallet::State::Initial => return Err(DomainError::NotFound { what: "wallet" }),
    };
    uow.wallets.exec(wallet_id, &wallet::Command::CaptureHold { journal_id, hold_id: withdrawal_id }, ctx)?;
    let payout = wallet::platform_owner(PlatformAccount::PayoutClearing, withdrawal_id);
    let reason = Reason::Withdrawal { withdrawal_id, card_mask: String::new(), card_holder: None };
    uow.wallets.exec(
        payout.wallet_id(),
        &wallet::Command::Credit { owner: payout, journal_id, amount, reason },
        ctx,
    )?;
    Ok(())
}

/// The payout failed: the held money goes back to the user's available balance.
pub fn fail_withdrawal(
    uow: &mut UnitOfWork,
    ctx: &Context,
    user_id: Uuid,
    withdrawal_id: Uuid,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    if !(ctx.actor.is_staff(false) || ctx.actor.has(Role::System)) {
        return forbidden("only an admin or the payout callback fails withdrawals");
    }
    let release = wallet::Command::ReleaseHold { journal_id, hold_id: withdrawal_id };
    uow.wallets.exec(wallet::user_wallet_id(user_id), &release, ctx)?;
    Ok(())
}

/// Someone reads a game account's credentials: the buyer of `order_id` once the seller has
/// delivered, or an admin (with or without an order). Records the read on the listing. Needs
/// the listing and, when given, the order loaded.
pub fn reveal_credentials(
    uow: &mut UnitOfWork,
    ctx: &Context,
    listing_id: Uuid,
    order_id: Option<Uuid>,
) -> Result<(), DomainError> {
    let purchase = match order_id {
        None => None,
        Some(order_id) => {
            let o = order_data(uow, order_id)?;
            if !o.lines.iter().any(|l| l.listing_id == listing_id) {
                return invalid("order_id", "the order did not buy this listing");
            }
            let delivered = matches!(
                o.status,
                order::Status::CredentialsDelivered | order::Status::Completed | order::Status::Disputed
            );
            Some(listing::Purchase { order_id, buyer_id: o.buyer_id, delivered })
        }
    };
    uow.listings.exec(listing_id, &listing::Command::RevealCredentials { purchase }, ctx)?;
    Ok(())
}

fn payment_data(uow: &UnitOfWork, payment_id: Uuid) -> Result<payment::Payment, DomainError> {
    match uow.payments.state(payment_id) {
        payment::State::Exists(p) => Ok((**p).clone()),
        payment::State::Initial => Err(DomainError::NotFound { what: "payment" }),
    }
}

/// Checks that a new payment of `amount` may pay `target`, appending nothing: the user exists
/// (a top-up), or the order is placed, unpaid, awaits no other payment and costs exactly
/// `amount`. Needs the user loaded (or among `existing_users`) or the order loaded.
pub fn check_payment(
    uow: &mut UnitOfWork,
    ctx: &Context,
    payment_id: Uuid,
    target: Target,
    amount: Money,
) -> Result<(), DomainError> {
    if amount.is_zero() {
        return invalid("amount", "must be positive");
    }
    amount.within_limit()?;
    match target {
        Target::Wallet { user_id } if uow.existing_users.contains(&user_id) => Ok(()),
        Target::Wallet { user_id } => match uow.users.state(user_id) {
            crate::user::State::Exists(_) => Ok(()),
            crate::user::State::Initial => Err(DomainError::NotFound { what: "user" }),
        },
        Target::Order { order_id } => {
            uow.orders.exec(order_id, &order::Command::AwaitPayment { payment_id, amount }, ctx).map(|_| ())
        }
    }
}

/// A provider created a transaction: the payment stream starts, and an order it pays waits for
/// it (nothing else pays the order meanwhile). Needs the payment and the user or order loaded.
#[allow(clippy::too_many_arguments)]
pub fn create_payment(
    uow: &mut UnitOfWork,
    ctx: &Context,
    payment_id: Uuid,
    provider: Provider,
    provider_tx_id: &str,
    target: Target,
    amount: Money,
    provider_time_ms: i64,
) -> Result<(), DomainError> {
    if let payment::State::Exists(_) = uow.payments.state(payment_id) {
        return Err(DomainError::AlreadyExists { what: "payment" });
    }
    check_payment(uow, ctx, payment_id, target, amount)?;
    let create = payment::Command::Create {
        payment_id,
        provider,
        provider_tx_id: provider_tx_id.to_owned(),
        target,
        amount,
        provider_time_ms,
    };
    uow.payments.exec(payment_id, &create, ctx).map(|_| ())
}

/// The provider charged the card: a top-up credits the user's wallet against provider
/// clearing; an order payment opens and funds the order's escrow, the money arriving straight
/// into the buyer's held balance. One journal, appended with the payment's event. Needs the
/// payment, the target's streams and the provider clearing wallet of the paying user loaded.
pub fn perform_payment(
    uow: &mut UnitOfWork,
    ctx: &Context,
    payment_id: Uuid,
    journal_id: Uuid,
    timeout_ms: Option<i64>,
) -> Result<(), DomainError> {
    let p = payment_data(uow, payment_id)?;
    uow.payments.exec(payment_id, &payment::Command::Perform { journal_id, timeout_ms }, ctx)?;
    let order_id = match p.target {
        Target::Wallet { user_id } => {
            return deposit(uow, ctx, user_id, p.amount, p.provider, &p.provider_tx_id, journal_id);
        }
        Target::Order { order_id } => order_id,
    };
    let o = order_data(uow, order_id)?;
    let escrow_id = escrow_id_for(order_id);
    uow.orders.exec(order_id, &order::Command::PayThroughProvider { escrow_id, payment_id }, ctx)?;
    let total = open_funded_escrow(uow, ctx, &o, journal_id)?;
    if total != p.amount {
        return Err(DomainError::AmountMismatch { expected: total });
    }
    let buyer = Owner::User { user_id: o.buyer_id };
    let held = wallet::Command::DepositHeld {
        owner: buyer,
        journal_id,
        hold_id: escrow_id,
        amount: total,
        provider: p.provider,
        provider_tx_id: p.provider_tx_id.clone(),
        reason: Reason::Escrow { order_id },
    };
    uow.wallets.exec(buyer.wallet_id(), &held, ctx)?;
    let clearing = uow.clearing_owner(o.buyer_id);
    let reason = Reason::Deposit { wallet_id: buyer.wallet_id() };
    let debit = wallet::Command::Debit { owner: clearing, journal_id, amount: total, reason };
    uow.wallets.exec(clearing.wallet_id(), &debit, ctx)?;
    Ok(())
}

/// The provider cancels a transaction. Before perform nothing moved: an order it paid stops
/// waiting for it. After perform the money goes back to provider clearing, in one journal:
/// out of the top-up's wallet, or out of the order's escrow (the order is cancelled and its
/// reservations released). Refused with `payment_not_reversible`, moving nothing, when the
/// wallet's balance was spent or the order was picked up or delivered.
pub fn cancel_payment(
    uow: &mut UnitOfWork,
    ctx: &Context,
    payment_id: Uuid,
    reason: CancelReason,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let p = payment_data(uow, payment_id)?;
    uow.payments.exec(payment_id, &payment::Command::Cancel { reason, journal_id }, ctx)?;
    match (p.status, p.target) {
        (payment::Status::Created, Target::Order { order_id }) => {
            uow.orders.exec(order_id, &order::Command::AbandonPayment { payment_id }, ctx)?;
        }
        (payment::Status::Created, Target::Wallet { .. }) => {}
        (_, Target::Wallet { user_id }) => take_back_from_wallet(uow, ctx, &p, user_id, journal_id)?,
        (_, Target::Order { order_id }) => {
            let o = order_data(uow, order_id)?;
            if o.status == order::Status::Cancelled {
                // Cancelled after payment: the refund went to the buyer's available balance.
                take_back_from_wallet(uow, ctx, &p, o.buyer_id, journal_id)?;
            } else {
                take_back_from_escrow(uow, ctx, &p, &o, journal_id)?;
            }
        }
    }
    Ok(())
}

fn take_back_from_wallet(
    uow: &mut UnitOfWork,
    ctx: &Context,
    p: &payment::Payment,
    user_id: Uuid,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let user = Owner::User { user_id };
    let reason = Reason::ProviderRefund { payment_id: p.id };
    let debit = wallet::Command::Debit { owner: user, journal_id, amount: p.amount, reason: reason.clone() };
    uow.wallets.exec(user.wallet_id(), &debit, ctx).map_err(|e| match e {
        DomainError::InsufficientFunds { .. } => {
            DomainError::PaymentNotReversible { reason: "the wallet's balance was spent" }
        }
        other => other,
    })?;
    let clearing = uow.clearing_owner(user_id);
    let credit = wallet::Command::Credit { owner: clearing, journal_id, amount: p.amount, reason };
    uow.wallets.exec(clearing.wallet_id(), &credit, ctx)?;
    Ok(())
}

fn take_back_from_escrow(
    uow: &mut UnitOfWork,
    ctx: &Context,
    p: &payment::Payment,
    o: &order::Order,
    journal_id: Uuid,
) -> Result<(), DomainError> {
    let cancel = order::Command::Cancel { reason: format!("the {} payment was cancelled", p.provider.name()) };
    uow.orders.exec(o.id, &cancel, ctx).map_err(|e| match e {
        DomainError::InvalidTransition { .. } => {
            DomainError::PaymentNotReversible { reason: "the order was picked up, delivered or settled" }
        }
        other => other,
    })?;
    let escrow_id = escrow_id_for(o.id);
    let e = escrow_data(uow, escrow_id)?;
    let refund = escrow::Command::Refund { journal_id, to_buyer: e.amount, courier_id: None };
    uow.escrows.exec(escrow_id, &refund, ctx)?;
    let buyer = wallet::user_wallet_id(o.buyer_id);
    uow.wallets.exec(buyer, &wallet::Command::CaptureHold { journal_id, hold_id: escrow_id }, ctx)?;
    let clearing = uow.clearing_owner(o.buyer_id);
    let reason = Reason::ProviderRefund { payment_id: p.id };
    let credit = wallet::Command::Credit { owner: clearing, journal_id, amount: e.total(), reason };
    uow.wallets.exec(clearing.wallet_id(), &credit, ctx)?;
    for listing_id in order_listings(o) {
        uow.listings.exec(listing_id, &listing::Command::ReleaseReservation { order_id: o.id }, ctx)?;
    }
    Ok(())
}
