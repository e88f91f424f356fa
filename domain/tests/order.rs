//! Order: given / when / then for every branch of `decide`.

mod common;

use bozor_domain::escrow::Resolution;
use bozor_domain::order::{
    decide, Command as C, District, Event as E, Fulfilment, Line, OrderAggregate, Pickup, State, Status,
};
use bozor_domain::{Actor, Money, Plan, Role};
use common::*;
use uuid::Uuid;

fn m(t: i64) -> Money {
    Money::from_tiyin(t).unwrap()
}

struct W {
    id: Uuid,
    buyer: Actor,
    seller: Actor,
    courier: Actor,
    admin: Actor,
    system: Actor,
}

fn w() -> W {
    W {
        id: Uuid::new_v4(),
        buyer: actor(Uuid::new_v4(), &[Role::Buyer]),
        seller: seller(Plan::Free),
        courier: actor(Uuid::new_v4(), &[Role::Courier]),
        admin: actor(Uuid::new_v4(), &[Role::Admin]),
        system: Actor::system(),
    }
}

fn lines() -> Vec<Line> {
    vec![Line { listing_id: Uuid::nil(), sku: "std".into(), title: "Kettle".into(), unit_price: m(500), quantity: 2 }]
}

fn delivery() -> Fulfilment {
    Fulfilment::Delivery {
        district: District::Chilonzor,
        address: "Qatortol 5".into(),
        fee: District::Chilonzor.delivery_fee(),
    }
}

fn place(w: &W, fulfilment: Fulfilment) -> C {
    C::Place { order_id: w.id, seller_id: w.seller.id, seller_plan: Plan::Free, lines: lines(), fulfilment }
}

/// The order's history up to `status`.
fn history(w: &W, digital: bool, status: Status) -> Vec<E> {
    let f = if digital { Fulfilment::Digital } else { delivery() };
    let mut h = decide(&State::Initial, &place(w, f), &ctx(&w.buyer)).unwrap();
    let path: Vec<E> = if digital {
        vec![E::OrderPaid { escrow_id: Uuid::nil(), at: t0() }, E::CredentialsDelivered { at: t0() }]
    } else {
        vec![
            E::OrderPaid { escrow_id: Uuid::nil(), at: t0() },
            E::OrderAccepted { pickup: None, at: t0() },
            E::CourierAssigned { courier_id: w.courier.id, by: w.courier.id, at: t0() },
            E::OrderPickedUp { at: t0() },
            E::OrderDelivered { at: t0() },
        ]
    };
    let order = [Status::Paid, Status::Accepted, Status::CourierAssigned, Status::PickedUp, Status::Delivered];
    let digital_order = [Status::Paid, Status::CredentialsDelivered];
    let steps = if digital { &digital_order[..] } else { &order[..] };
    if status == Status::Placed {
        return h;
    }
    let n = steps.iter().position(|s| *s == status).expect("status on the happy path") + 1;
    h.extend(path.into_iter().take(n));
    h
}

fn accept() -> C {
    C::Accept { pickup: Pickup { district: District::Yunusobod, address: "Amir Temur 1".into() } }
}

/// The order's courier, as a registered courier of Chilonzor (where `delivery` goes).
fn assign(w: &W) -> C {
    C::AssignCourier { courier_id: w.courier.id, courier_district: Some(District::Chilonzor) }
}

fn state(w: &W, digital: bool, status: Status) -> State {
    given::<OrderAggregate>(&history(w, digital, status))
}

fn status_after(h: &[E], more: Vec<E>) -> Status {
    let mut h = h.to_vec();
    h.extend(more);
    match given::<OrderAggregate>(&h) {
        State::Exists(o) => o.status,
        State::Initial => panic!(),
    }
}

#[test]
fn place_snapshots_lines_and_totals() {
    let w = w();
    let events = decide(&State::Initial, &place(&w, delivery()), &ctx(&w.buyer)).unwrap();
    match &events[..] {
        [E::OrderPlaced { goods_total, buyer_id, lines: l, .. }] => {
            assert_eq!((*goods_total, *buyer_id, l.clone()), (m(1_000), w.buyer.id, lines()));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn place_fails_for_own_listings_existing_orders_and_bad_lines() {
    let w = w();
    assert_eq!(refused(decide(&State::Initial, &place(&w, delivery()), &ctx(&w.seller))), "forbidden");
    assert_eq!(
        refused(decide(&state(&w, false, Status::Placed), &place(&w, delivery()), &ctx(&w.buyer))),
        "already_exists"
    );
    let with = |lines: Vec<Line>, f: Fulfilment| C::Place {
        order_id: w.id,
        seller_id: w.seller.id,
        seller_plan: Plan::Free,
        lines,
        fulfilment: f,
    };
    let mut zero = lines();
    zero[0].quantity = 0;
    let mut huge = lines();
    huge[0].unit_price = m(i64::MAX / 2);
    let no_address = Fulfilment::Delivery { district: District::Sergeli, address: " ".into(), fee: m(1) };
    assert_eq!(refused(decide(&State::Initial, &with(vec![], delivery()), &ctx(&w.buyer))), "invalid_field");
    assert_eq!(refused(decide(&State::Initial, &with(zero, delivery()), &ctx(&w.buyer))), "invalid_field");
    assert_eq!(refused(decide(&State::Initial, &with(huge, delivery()), &ctx(&w.buyer))), "amount_too_large");
    assert_eq!(refused(decide(&State::Initial, &with(lines(), no_address), &ctx(&w.buyer))), "invalid_field");
}

#[test]
fn commands_on_a_missing_order_fail_with_not_found() {
    let w = w();
    assert_eq!(refused(decide(&State::Initial, &accept(), &ctx(&w.seller))), "order_not_found");
}

#[test]
fn the_delivery_path_runs_placed_to_completed() {
    let w = w();
    let steps: Vec<(C, &Actor, Status)> = vec![
        (C::Pay { escrow_id: Uuid::nil() }, &w.buyer, Status::Paid),
        (accept(), &w.seller, Status::Accepted),
        (assign(&w), &w.courier, Status::CourierAssigned),
        (C::PickUp, &w.courier, Status::PickedUp),
        (C::Deliver, &w.courier, Status::Delivered),
        (C::Confirm, &w.buyer, Status::Completed),
    ];
    let mut h = history(&w, false, Status::Placed);
    for (c, who, expected) in steps {
        let events = decide(&given::<OrderAggregate>(&h), &c, &ctx(who)).unwrap();
        assert_eq!(status_after(&h, events.clone()), expected, "{c:?}");
        h.extend(events);
    }
}

#[test]
fn the_digital_path_runs_placed_to_completed() {
    let w = w();
    let mut h = history(&w, true, Status::Placed);
    for (c, who) in
        [(C::Pay { escrow_id: Uuid::nil() }, &w.buyer), (C::DeliverCredentials, &w.seller), (C::Confirm, &w.buyer)]
    {
        h.extend(decide(&given::<OrderAggregate>(&h), &c, &ctx(who)).unwrap());
    }
    assert_eq!(status_after(&h, vec![]), Status::Completed);
}

#[test]
fn each_step_is_refused_to_the_wrong_party() {
    let w = w();
    let stranger = actor(Uuid::new_v4(), &[Role::Buyer, Role::Seller, Role::Courier]);
    let cases: Vec<(Status, bool, C)> = vec![
        (Status::Placed, false, C::Pay { escrow_id: Uuid::nil() }),
        (Status::Paid, false, accept()),
        (Status::Accepted, false, assign(&w)),
        (Status::CourierAssigned, false, C::PickUp),
        (Status::PickedUp, false, C::Deliver),
        (Status::Paid, true, C::DeliverCredentials),
        (Status::Delivered, false, C::Confirm),
        (Status::Delivered, false, C::AutoComplete),
        (Status::Paid, false, C::Cancel { reason: "x".into() }),
        (Status::Delivered, false, C::RequestReturn { reason: "x".into() }),
        (Status::Delivered, false, C::OpenDispute { reason: "x".into() }),
    ];
    for (status, digital, c) in cases {
        assert_eq!(refused(decide(&state(&w, digital, status), &c, &ctx(&stranger))), "forbidden", "{c:?}");
    }
    let mut h = history(&w, false, Status::Delivered);
    h.push(E::ReturnRequested { reason: "x".into(), at: t0() });
    assert_eq!(
        refused(decide(&given::<OrderAggregate>(&h), &C::Refund { amount: m(1) }, &ctx(&stranger))),
        "forbidden"
    );
    h.push(E::DisputeOpened { by: w.buyer.id, reason: "x".into(), at: t0() });
    let resolve = C::ResolveDispute { resolution: Resolution::Release };
    assert_eq!(refused(decide(&given::<OrderAggregate>(&h), &resolve, &ctx(&w.seller))), "forbidden");
}

#[test]
fn each_step_is_refused_out_of_order() {
    let w = w();
    let cases: Vec<(Status, bool, C, &Actor)> = vec![
        (Status::Paid, false, C::Pay { escrow_id: Uuid::nil() }, &w.buyer),
        (Status::Placed, false, accept(), &w.seller),
        (Status::Paid, true, accept(), &w.seller),
        (Status::Paid, false, assign(&w), &w.courier),
        (Status::PickedUp, false, C::PickUp, &w.courier),
        (Status::CourierAssigned, false, C::Deliver, &w.courier),
        (Status::Paid, false, C::DeliverCredentials, &w.seller),
        (Status::PickedUp, false, C::Confirm, &w.buyer),
        (Status::Paid, false, C::AutoComplete, &w.system),
        (Status::PickedUp, false, C::Cancel { reason: "x".into() }, &w.buyer),
        (Status::CredentialsDelivered, true, C::Cancel { reason: "x".into() }, &w.buyer),
        (Status::CredentialsDelivered, true, C::RequestReturn { reason: "x".into() }, &w.buyer),
        (Status::Delivered, false, C::Refund { amount: m(1) }, &w.seller),
        (Status::PickedUp, false, C::OpenDispute { reason: "x".into() }, &w.buyer),
        (Status::Delivered, false, C::ResolveDispute { resolution: Resolution::Refund }, &w.admin),
    ];
    for (status, digital, c, who) in cases {
        assert_eq!(
            refused(decide(&state(&w, digital, status), &c, &ctx(who))),
            "invalid_transition",
            "{c:?} in {status:?}"
        );
    }
}

#[test]
fn support_may_assign_any_courier_and_cancel() {
    let w = w();
    let support = actor(Uuid::new_v4(), &[Role::Support]);
    let c = assign(&w);
    assert!(decide(&state(&w, false, Status::Accepted), &c, &ctx(&support)).is_ok());
    assert!(decide(&state(&w, false, Status::Paid), &C::Cancel { reason: "x".into() }, &ctx(&support)).is_ok());
}

#[test]
fn cancel_of_an_unpaid_order_refunds_nothing_and_of_a_paid_one_refunds() {
    let w = w();
    let unpaid = decide(&state(&w, false, Status::Placed), &C::Cancel { reason: "x".into() }, &ctx(&w.seller)).unwrap();
    assert!(matches!(unpaid[..], [E::OrderCancelled { refunded: false, .. }]));
    let paid =
        decide(&state(&w, false, Status::CourierAssigned), &C::Cancel { reason: "x".into() }, &ctx(&w.buyer)).unwrap();
    assert!(matches!(paid[..], [E::OrderCancelled { refunded: true, .. }]));
    assert_eq!(
        refused(decide(&state(&w, false, Status::Paid), &C::Cancel { reason: "".into() }, &ctx(&w.buyer))),
        "invalid_field"
    );
}

#[test]
fn return_then_refund_ends_returned_and_refund_is_bounded() {
    let w = w();
    let h = history(&w, false, Status::Delivered);
    let ret =
        decide(&given::<OrderAggregate>(&h), &C::RequestReturn { reason: "broken".into() }, &ctx(&w.buyer)).unwrap();
    let mut h2 = h.clone();
    h2.extend(ret);
    let s = given::<OrderAggregate>(&h2);
    assert_eq!(refused(decide(&s, &C::Refund { amount: m(1_001) }, &ctx(&w.seller))), "invalid_field");
    assert_eq!(refused(decide(&s, &C::Refund { amount: m(0) }, &ctx(&w.seller))), "invalid_field");
    let done = decide(&s, &C::Refund { amount: m(400) }, &ctx(&w.admin)).unwrap();
    assert_eq!(done, vec![E::OrderReturned { refund: m(400), at: t0() }]);
    assert_eq!(status_after(&h2, done), Status::Returned);
    assert_eq!(
        refused(decide(&given::<OrderAggregate>(&h), &C::RequestReturn { reason: " ".into() }, &ctx(&w.buyer))),
        "invalid_field"
    );
}

#[test]
fn auto_complete_is_the_schedulers() {
    let w = w();
    let s = state(&w, false, Status::Delivered);
    assert_eq!(refused(decide(&s, &C::AutoComplete, &ctx(&w.buyer))), "forbidden");
    assert_eq!(
        decide(&s, &C::AutoComplete, &ctx(&w.system)).unwrap(),
        vec![E::OrderCompleted { automatic: true, at: t0() }]
    );
}

#[test]
fn disputes_are_opened_by_a_party_and_resolved_by_an_admin() {
    let w = w();
    for (opener, status) in [(&w.buyer, Status::Delivered), (&w.seller, Status::Delivered)] {
        let h = history(&w, false, status);
        let opened =
            decide(&given::<OrderAggregate>(&h), &C::OpenDispute { reason: "fake".into() }, &ctx(opener)).unwrap();
        let mut h = h;
        h.extend(opened);
        assert_eq!(status_after(&h, vec![]), Status::Disputed);
        for (resolution, end) in [
            (Resolution::Release, Status::Completed),
            (Resolution::Refund, Status::Refunded),
            (Resolution::Split { to_buyer: m(1) }, Status::Completed),
        ] {
            let r = decide(&given::<OrderAggregate>(&h), &C::ResolveDispute { resolution }, &ctx(&w.admin)).unwrap();
            assert_eq!(status_after(&h, r), end);
        }
    }
    let s = state(&w, false, Status::Delivered);
    assert_eq!(refused(decide(&s, &C::OpenDispute { reason: "".into() }, &ctx(&w.buyer))), "invalid_field");
}

#[test]
fn delivery_fees_depend_on_the_district() {
    assert_eq!(District::Chilonzor.delivery_fee(), m(1_800_000));
    assert_eq!(District::Sergeli.delivery_fee(), m(2_500_000));
    assert_eq!(District::TashkentRegion.delivery_fee(), m(3_500_000));
    assert_eq!(District::parse("mirzo_ulugbek"), Some(District::MirzoUlugbek));
    assert_eq!(District::parse("samarkand"), None);
}

#[test]
fn assign_fails_for_users_who_are_not_couriers_and_for_couriers_of_another_district() {
    let w = w();
    let s = state(&w, false, Status::Accepted);
    let support = actor(Uuid::new_v4(), &[Role::Support]);
    let nobody = Uuid::new_v4();
    let unregistered = C::AssignCourier { courier_id: nobody, courier_district: None };
    assert_eq!(refused(decide(&s, &unregistered, &ctx(&support))), "not_a_courier");
    let elsewhere = C::AssignCourier { courier_id: w.courier.id, courier_district: Some(District::Yunusobod) };
    assert_eq!(refused(decide(&s, &elsewhere, &ctx(&w.courier))), "courier_district_mismatch");
    assert_eq!(refused(decide(&s, &elsewhere, &ctx(&support))), "courier_district_mismatch");
    let digital = C::AssignCourier { courier_id: w.courier.id, courier_district: Some(District::Chilonzor) };
    assert_eq!(refused(decide(&state(&w, true, Status::Paid), &digital, &ctx(&support))), "invalid_transition");
}

#[test]
fn staff_reassign_before_pick_up_and_couriers_cannot_take_an_assigned_order() {
    let w = w();
    let support = actor(Uuid::new_v4(), &[Role::Support]);
    let other = actor(Uuid::new_v4(), &[Role::Courier]);
    let to_other = C::AssignCourier { courier_id: other.id, courier_district: Some(District::Chilonzor) };
    let assigned = state(&w, false, Status::CourierAssigned);
    assert_eq!(refused(decide(&assigned, &to_other, &ctx(&other))), "invalid_transition");
    let events = decide(&assigned, &to_other, &ctx(&support)).unwrap();
    assert!(matches!(events[..], [E::CourierAssigned { courier_id, .. }] if courier_id == other.id));
    assert_eq!(refused(decide(&assigned, &assign(&w), &ctx(&support))), "invalid_field");
    let picked = state(&w, false, Status::PickedUp);
    assert_eq!(refused(decide(&picked, &to_other, &ctx(&support))), "invalid_transition");
}

#[test]
fn place_fails_when_goods_and_delivery_exceed_the_amount_limit() {
    let w = w();
    let max = bozor_domain::money::AMOUNT_MAX;
    let line = |price: i64, quantity: u32| Line {
        listing_id: Uuid::nil(),
        sku: "std".into(),
        title: "t".into(),
        unit_price: m(price),
        quantity,
    };
    let place_with = |l: Line| C::Place {
        order_id: w.id,
        seller_id: w.seller.id,
        seller_plan: Plan::Free,
        lines: vec![l],
        fulfilment: delivery(),
    };
    let fee = District::Chilonzor.delivery_fee().tiyin();
    assert!(decide(&State::Initial, &place_with(line(max - fee, 1)), &ctx(&w.buyer)).is_ok());
    for l in [line(max - fee + 1, 1), line(max, 2), line(i64::MAX, 1_000)] {
        assert_eq!(refused(decide(&State::Initial, &place_with(l), &ctx(&w.buyer))), "amount_too_large");
    }
}

#[test]
fn accept_records_the_pickup_point_and_refuses_an_empty_address() {
    let w = w();
    let s = state(&w, false, Status::Paid);
    let events = decide(&s, &accept(), &ctx(&w.seller)).unwrap();
    let mut h = history(&w, false, Status::Paid);
    h.extend(events);
    match given::<OrderAggregate>(&h) {
        State::Exists(o) => assert_eq!(o.pickup.map(|p| p.district), Some(District::Yunusobod)),
        State::Initial => panic!("no order"),
    }
    let blank = C::Accept { pickup: Pickup { district: District::Yunusobod, address: "  ".into() } };
    assert_eq!(refused(decide(&s, &blank, &ctx(&w.seller))), "invalid_field");
}

#[test]
fn parties_neither_resolve_their_own_dispute_nor_deliver_their_own_order() {
    let w = w();
    let mut h = history(&w, false, Status::Delivered);
    h.push(E::DisputeOpened { by: w.buyer.id, reason: "x".into(), at: t0() });
    let s = given::<OrderAggregate>(&h);
    let admin_buyer = actor(w.buyer.id, &[Role::Buyer, Role::Admin]);
    let admin_seller = actor(w.seller.id, &[Role::Seller, Role::Admin]);
    let resolve = C::ResolveDispute { resolution: Resolution::Refund };
    assert_eq!(refused(decide(&s, &resolve, &ctx(&admin_buyer))), "forbidden");
    assert_eq!(refused(decide(&s, &resolve, &ctx(&admin_seller))), "forbidden");
    assert!(decide(&s, &resolve, &ctx(&w.admin)).is_ok());
    let courier_buyer = actor(w.buyer.id, &[Role::Buyer, Role::Courier]);
    let own = C::AssignCourier { courier_id: w.buyer.id, courier_district: Some(District::Chilonzor) };
    assert_eq!(refused(decide(&state(&w, false, Status::Accepted), &own, &ctx(&courier_buyer))), "forbidden");
}

#[test]
fn a_buyer_who_is_an_admin_does_not_refund_their_own_order() {
    let w = w();
    let mut h = history(&w, false, Status::Delivered);
    h.push(E::ReturnRequested { reason: "x".into(), at: t0() });
    let admin_buyer = actor(w.buyer.id, &[Role::Buyer, Role::Admin]);
    let s = given::<OrderAggregate>(&h);
    assert_eq!(refused(decide(&s, &C::Refund { amount: m(1) }, &ctx(&admin_buyer))), "forbidden");
    assert!(decide(&s, &C::Refund { amount: m(1) }, &ctx(&w.admin)).is_ok());
}

#[test]
fn expire_cancels_an_unpaid_order_once_its_time_is_up_and_never_a_paid_or_paying_one() {
    let w = w();
    let ttl = chrono::Duration::minutes(30);
    let expire = C::Expire { unpaid_ttl: ttl };
    let placed = state(&w, false, Status::Placed);
    assert_eq!(refused(decide(&placed, &expire, &ctx(&w.buyer))), "forbidden");
    let at = |minutes: i64| bozor_domain::Context {
        now: t0() + chrono::Duration::minutes(minutes),
        actor: w.system.clone(),
    };
    assert_eq!(refused(decide(&placed, &expire, &at(29))), "not_due");
    let events = decide(&placed, &expire, &at(30)).unwrap();
    assert!(matches!(&events[..], [E::OrderCancelled { refunded: false, .. }]));
    assert_eq!(refused(decide(&state(&w, false, Status::Paid), &expire, &at(60))), "invalid_transition");
    // A provider payment in progress holds it (for PAYMENT_WAIT_MAX at most).
    let mut h = history(&w, false, Status::Placed);
    h.push(E::PaymentAwaited { payment_id: Uuid::new_v4(), at: t0() + chrono::Duration::minutes(25) });
    let paying = given::<OrderAggregate>(&h);
    assert_eq!(refused(decide(&paying, &expire, &at(40))), "payment_pending");
    assert!(decide(&paying, &expire, &at(56)).is_ok());
}
