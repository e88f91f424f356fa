//! Payment: given / when / then for the provider transaction's `decide`, the order's payment
//! commands, and the flows that move the money (top-up, order payment, cancel and reversal).

mod common;

use bozor_domain::flows::{self, Card, UnitOfWork, WithdrawalLimits};
use bozor_domain::order::{self, District, Fulfilment, Line, OrderAggregate};
use bozor_domain::payment::{
    decide, payment_id_for, CancelReason, Command as C, Event as E, PaymentAggregate, State, Status, Target,
};
use bozor_domain::user::{self, Phone, UserAggregate};
use bozor_domain::wallet::{self, Owner, PlatformAccount, Provider};
use bozor_domain::{Actor, Context, Money, Plan, Role};
use common::*;
use uuid::Uuid;

fn m(t: i64) -> Money {
    Money::from_tiyin(t).unwrap()
}

fn payme() -> Actor {
    actor(Uuid::new_v4(), &[Role::System])
}

fn create(tx: &str, target: Target, amount: i64) -> C {
    C::Create {
        payment_id: payment_id_for(Provider::Payme, tx),
        provider: Provider::Payme,
        provider_tx_id: tx.into(),
        target,
        amount: m(amount),
        provider_time_ms: 1_761_989_400_000,
    }
}

fn wallet_target() -> Target {
    Target::Wallet { user_id: Uuid::new_v4() }
}

fn created(tx: &str) -> Vec<E> {
    decide(&State::Initial, &create(tx, wallet_target(), 500), &ctx(&payme())).unwrap()
}

fn status(h: &[E]) -> Status {
    match given::<PaymentAggregate>(h) {
        State::Exists(p) => p.status,
        State::Initial => panic!("no payment"),
    }
}

#[test]
fn create_perform_and_cancel_walk_payme_states() {
    let mut h = created("a1");
    assert_eq!(status(&h), Status::Created);
    assert_eq!(Status::Created.payme_state(), 1);
    let s = given::<PaymentAggregate>(&h);
    h.extend(decide(&s, &C::Perform { journal_id: Uuid::new_v4(), timeout_ms: None }, &ctx(&payme())).unwrap());
    assert_eq!(status(&h), Status::Performed);
    let s = given::<PaymentAggregate>(&h);
    let cancel = C::Cancel { reason: CancelReason::Refund, journal_id: Uuid::new_v4() };
    h.extend(decide(&s, &cancel, &ctx(&payme())).unwrap());
    assert_eq!(status(&h), Status::Refunded);
    assert_eq!(Status::Refunded.payme_state(), -2);
    let State::Exists(p) = given::<PaymentAggregate>(&h) else { panic!() };
    assert_eq!(p.journals.len(), 2, "the perform's journal and the refund's");
    assert_eq!(p.cancel_reason, Some(CancelReason::Refund));
}

#[test]
fn cancel_before_perform_moves_nothing_and_ends_cancelled() {
    let h = created("a2");
    let cancel = C::Cancel { reason: CancelReason::Timeout, journal_id: Uuid::new_v4() };
    let events = decide(&given::<PaymentAggregate>(&h), &cancel, &ctx(&payme())).unwrap();
    assert!(matches!(events[..], [E::PaymentCancelled { refunded: false, journal_id: None, .. }]));
}

#[test]
fn create_fails_for_people_bad_ids_amounts_and_twice() {
    let buyer = actor(Uuid::new_v4(), &[Role::Buyer, Role::Admin]);
    assert_eq!(refused(decide(&State::Initial, &create("a", wallet_target(), 5), &ctx(&buyer))), "forbidden");
    let sys = ctx(&payme());
    assert_eq!(refused(decide(&State::Initial, &create("a", wallet_target(), 0), &sys)), "invalid_field");
    assert_eq!(refused(decide(&State::Initial, &create("a", wallet_target(), 1 << 62), &sys)), "amount_too_large");
    assert_eq!(refused(decide(&State::Initial, &create("", wallet_target(), 5), &sys)), "invalid_field");
    assert_eq!(refused(decide(&State::Initial, &create("a b", wallet_target(), 5), &sys)), "invalid_field");
    let mut wrong_id = create("a", wallet_target(), 5);
    if let C::Create { payment_id, .. } = &mut wrong_id {
        *payment_id = Uuid::new_v4();
    }
    assert_eq!(refused(decide(&State::Initial, &wrong_id, &sys)), "invalid_field");
    let h = created("a3");
    assert_eq!(
        refused(decide(&given::<PaymentAggregate>(&h), &create("a3", wallet_target(), 5), &sys)),
        "already_exists"
    );
}

#[test]
fn perform_and_cancel_fail_when_missing_or_finished() {
    let sys = ctx(&payme());
    let perform = C::Perform { journal_id: Uuid::new_v4(), timeout_ms: None };
    let cancel = C::Cancel { reason: CancelReason::Unknown, journal_id: Uuid::new_v4() };
    assert_eq!(refused(decide(&State::Initial, &perform, &sys)), "payment_not_found");
    let mut h = created("a4");
    h.extend(decide(&given::<PaymentAggregate>(&h), &cancel, &sys).unwrap());
    assert_eq!(refused(decide(&given::<PaymentAggregate>(&h), &perform, &sys)), "invalid_transition");
    assert_eq!(refused(decide(&given::<PaymentAggregate>(&h), &cancel, &sys)), "invalid_transition");
}

// ---- flows ----

struct World {
    uow: UnitOfWork,
    buyer: Actor,
    order_id: Uuid,
    total: i64,
}

/// A placed delivery order of 2 x 500 tiyin plus the Chilonzor fee, with every stream a payment
/// of it touches loaded.
fn world() -> World {
    let buyer = actor(Uuid::new_v4(), &[Role::Buyer]);
    let seller = seller(Plan::Free);
    let order_id = Uuid::new_v4();
    let line =
        Line { listing_id: Uuid::new_v4(), sku: "std".into(), title: "Kettle".into(), unit_price: m(500), quantity: 2 };
    let fee = District::Chilonzor.delivery_fee();
    let place = order::Command::Place {
        order_id,
        seller_id: seller.id,
        seller_plan: Plan::Free,
        lines: vec![line.clone()],
        fulfilment: Fulfilment::Delivery { district: District::Chilonzor, address: "Qatortol 5".into(), fee },
    };
    let placed = order::decide(&order::State::Initial, &place, &ctx(&buyer)).unwrap();
    let mut uow = UnitOfWork::default();
    uow.orders.load(order_id, given::<OrderAggregate>(&placed));
    uow.escrows.load(flows::escrow_id_for(order_id), bozor_domain::escrow::State::Initial);
    let registered = vec![user::Event::UserRegistered {
        user_id: buyer.id,
        phone: Phone::parse("+998901234567").unwrap(),
        at: t0(),
    }];
    uow.users.load(buyer.id, given::<UserAggregate>(&registered));
    for id in [
        wallet::user_wallet_id(buyer.id),
        wallet::user_wallet_id(seller.id),
        wallet::platform_owner(PlatformAccount::ProviderClearing, buyer.id).wallet_id(),
        wallet::platform_owner(PlatformAccount::Revenue, order_id).wallet_id(),
    ] {
        uow.wallets.load(id, wallet::State::Initial);
    }
    let listing = bozor_domain::listing::State::Initial;
    uow.listings.load(line.listing_id, listing);
    World { uow, buyer, order_id, total: 1_000 + fee.tiyin() }
}

fn sys() -> Context {
    ctx(&payme())
}

fn start(w: &mut World, tx: &str, target: Target, amount: i64) -> Uuid {
    let id = payment_id_for(Provider::Payme, tx);
    w.uow.payments.load(id, State::Initial);
    flows::create_payment(&mut w.uow, &sys(), id, Provider::Payme, tx, target, m(amount), 1)
        .map(|_| id)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn balances(w: &World, owner: Owner) -> (i64, i64) {
    let s = w.uow.wallets.state(owner.wallet_id());
    (s.available(), s.held())
}

#[test]
fn an_order_payment_funds_the_escrow_straight_into_held_money() {
    let mut w = world();
    let target = Target::Order { order_id: w.order_id };
    let id = {
        let total = w.total;
        start(&mut w, "o1", target, total)
    };
    flows::perform_payment(&mut w.uow, &sys(), id, Uuid::new_v4(), None).unwrap();
    let buyer = Owner::User { user_id: w.buyer.id };
    assert_eq!(balances(&w, buyer), (0, w.total), "never available, held by the escrow");
    let clearing = wallet::platform_owner(PlatformAccount::ProviderClearing, w.buyer.id);
    assert_eq!(balances(&w, clearing), (-w.total, 0));
    let order::State::Exists(o) = w.uow.orders.state(w.order_id) else { panic!() };
    assert_eq!((o.status, o.awaiting_payment), (order::Status::Paid, None));
}

#[test]
fn an_order_takes_one_payment_of_exactly_its_total() {
    let mut w = world();
    let target = Target::Order { order_id: w.order_id };
    let wrong = payment_id_for(Provider::Payme, "o2");
    w.uow.payments.load(wrong, State::Initial);
    let r = flows::create_payment(&mut w.uow, &sys(), wrong, Provider::Payme, "o2", target, m(w.total - 1), 1);
    assert_eq!(refused(r), "amount_mismatch");
    {
        let total = w.total;
        start(&mut w, "o3", target, total)
    };
    let other = payment_id_for(Provider::Click, "77");
    w.uow.payments.load(other, State::Initial);
    let r = flows::create_payment(&mut w.uow, &sys(), other, Provider::Click, "77", target, m(w.total), 1);
    assert_eq!(refused(r), "payment_pending");
    // Nor does the buyer pay from the wallet meanwhile.
    let r = flows::pay_order(&mut w.uow, &ctx(&w.buyer), w.order_id, Uuid::new_v4());
    assert_eq!(refused(r), "payment_pending");
}

#[test]
fn a_cancel_before_perform_frees_the_order_for_another_payment() {
    let mut w = world();
    let target = Target::Order { order_id: w.order_id };
    let id = {
        let total = w.total;
        start(&mut w, "o4", target, total)
    };
    flows::cancel_payment(&mut w.uow, &sys(), id, CancelReason::Timeout, Uuid::new_v4()).unwrap();
    let order::State::Exists(o) = w.uow.orders.state(w.order_id) else { panic!() };
    assert_eq!((o.status, o.awaiting_payment), (order::Status::Placed, None));
    {
        let total = w.total;
        start(&mut w, "o5", target, total)
    };
}

/// A world whose buyer topped up 5 000 tiyin through Payme; answers the payment id.
fn topped_up() -> (World, Uuid) {
    let mut w = world();
    let target = Target::Wallet { user_id: w.buyer.id };
    let id = start(&mut w, "t1", target, 5_000);
    flows::perform_payment(&mut w.uow, &sys(), id, Uuid::new_v4(), None).unwrap();
    assert_eq!(balances(&w, Owner::User { user_id: w.buyer.id }), (5_000, 0));
    (w, id)
}

#[test]
fn a_top_up_reversal_takes_the_money_back() {
    let (mut w, id) = topped_up();
    flows::cancel_payment(&mut w.uow, &sys(), id, CancelReason::Refund, Uuid::new_v4()).unwrap();
    assert_eq!(balances(&w, Owner::User { user_id: w.buyer.id }), (0, 0));
    let clearing = wallet::platform_owner(PlatformAccount::ProviderClearing, w.buyer.id);
    assert_eq!(balances(&w, clearing), (0, 0), "clearing is square again");
}

#[test]
fn a_top_up_reversal_is_refused_once_the_money_was_spent() {
    let (mut w, id) = topped_up();
    let buyer = Owner::User { user_id: w.buyer.id };
    let hold = wallet::Command::Hold {
        journal_id: Uuid::new_v4(),
        hold_id: Uuid::new_v4(),
        amount: m(1),
        reason: wallet::Reason::Escrow { order_id: w.order_id },
    };
    w.uow.wallets.exec(buyer.wallet_id(), &hold, &ctx(&w.buyer)).unwrap();
    let r = flows::cancel_payment(&mut w.uow, &sys(), id, CancelReason::Refund, Uuid::new_v4());
    assert_eq!(refused(r), "payment_not_reversible");
}

#[test]
fn a_top_up_of_a_user_who_does_not_exist_is_refused() {
    let mut w = world();
    let ghost = Uuid::new_v4();
    w.uow.users.load(ghost, user::State::Initial);
    let id = payment_id_for(Provider::Payme, "g1");
    w.uow.payments.load(id, State::Initial);
    let r = flows::create_payment(
        &mut w.uow,
        &sys(),
        id,
        Provider::Payme,
        "g1",
        Target::Wallet { user_id: ghost },
        m(5),
        1,
    );
    assert_eq!(refused(r), "user_not_found");
}

#[test]
fn withdrawals_keep_the_minimum_and_the_daily_limit() {
    let mut w = world();
    let user = w.buyer.clone();
    let target = Target::Wallet { user_id: user.id };
    let id = start(&mut w, "t2", target, 100_000);
    flows::perform_payment(&mut w.uow, &sys(), id, Uuid::new_v4(), None).unwrap();
    let card = Card::parse("8600 1234 5678 9012", "Ali Valiyev").unwrap();
    assert_eq!(card.mask(), "8600 12** **** 9012");
    let limits = WithdrawalLimits { min: m(1_000), per_day_max: m(30_000) };
    let mut ask = |amount: i64, hours: i64| {
        let c = ctx_at(&user, hours);
        flows::request_withdrawal(&mut w.uow, &c, user.id, Uuid::new_v4(), m(amount), &card, limits, Uuid::new_v4())
    };
    assert_eq!(refused(ask(999, 0)), "withdrawal_below_minimum");
    ask(20_000, 0).unwrap();
    assert_eq!(refused(ask(10_001, 1)), "withdrawal_daily_limit");
    ask(10_000, 2).unwrap();
    // The next Tashkent day (t0 is 14:00 there) starts a new allowance.
    ask(30_000, 11).unwrap();
}

#[test]
fn cards_must_be_sixteen_digits_that_pass_luhn_and_have_a_holder() {
    assert!(Card::parse("8600123456789012", "A").is_ok());
    for bad in ["8600123456789013", "860012345678901", "86001234567890123", "8600-1234-5678-9013", "x"] {
        assert_eq!(Card::parse(bad, "A").unwrap_err().code(), "invalid_field", "{bad}");
    }
    assert!(Card::parse("8600123456789012", " ").is_err());
    assert_eq!(Card::last4("4242").unwrap().mask(), "**** 4242");
}

#[test]
fn an_abandoned_payment_stops_holding_the_order_after_thirty_minutes() {
    let mut w = world();
    let target = Target::Order { order_id: w.order_id };
    let total = w.total;
    start(&mut w, "a1", target, total);
    let later = payment_id_for(Provider::Click, "88");
    w.uow.payments.load(later, State::Initial);
    let at = |minutes: i64| Context { now: t0() + chrono::Duration::minutes(minutes), actor: payme() };
    let r = flows::create_payment(&mut w.uow, &at(29), later, Provider::Click, "88", target, m(total), 1);
    assert_eq!(refused(r), "payment_pending");
    flows::create_payment(&mut w.uow, &at(31), later, Provider::Click, "88", target, m(total), 1).unwrap();
    // The first one, performed late after all, no longer pays the order.
    let first = payment_id_for(Provider::Payme, "a1");
    let r = flows::perform_payment(&mut w.uow, &at(40), first, Uuid::new_v4(), None);
    assert_eq!(refused(r), "invalid_transition");
}

#[test]
fn an_escrow_is_funded_by_one_held_deposit_only() {
    let owner = Owner::User { user_id: Uuid::new_v4() };
    let held = |hold: Uuid| wallet::Command::DepositHeld {
        owner,
        journal_id: Uuid::new_v4(),
        hold_id: hold,
        amount: m(100),
        provider: Provider::Click,
        provider_tx_id: "9".into(),
        reason: wallet::Reason::Escrow { order_id: Uuid::nil() },
    };
    let escrow = Uuid::new_v4();
    let h = wallet::decide(&wallet::State::Initial, &held(escrow), &sys()).unwrap();
    let s = given::<bozor_domain::wallet::WalletAggregate>(&h);
    assert_eq!(s.held(), 100);
    assert_eq!(refused(wallet::decide(&s, &held(escrow), &sys())), "already_exists", "one escrow, one hold");
    let buyer = actor(Uuid::new_v4(), &[Role::Admin]);
    assert_eq!(refused(wallet::decide(&wallet::State::Initial, &held(Uuid::new_v4()), &ctx(&buyer))), "forbidden");
}

#[test]
fn perform_with_a_timeout_refuses_a_payment_created_longer_ago_by_the_providers_time() {
    let h = created("late"); // provider time 1 761 989 400 000 ms
    let s = given::<PaymentAggregate>(&h);
    let State::Exists(p) = &s else { panic!() };
    let at_ms = |ms: i64| Context { now: chrono::DateTime::from_timestamp_millis(ms).unwrap(), actor: payme() };
    let perform = |timeout_ms| C::Perform { journal_id: Uuid::new_v4(), timeout_ms };
    let twelve_hours = 43_200_000;
    let edge = at_ms(p.provider_time_ms + twelve_hours);
    assert!(decide(&s, &perform(Some(twelve_hours)), &edge).is_ok(), "12 h exactly is still in time");
    let past = at_ms(p.provider_time_ms + twelve_hours + 1);
    assert_eq!(refused(decide(&s, &perform(Some(twelve_hours)), &past)), "payment_expired");
    assert!(decide(&s, &perform(None), &past).is_ok(), "no timeout: Click's");
}
