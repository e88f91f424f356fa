//! Escrow: given / when / then for every branch of `decide`, and the settlement arithmetic.

mod common;

use bozor_domain::escrow::{decide, Command as C, EscrowAggregate, Event as E, Resolution, Settlement, State, Status};
use bozor_domain::{Actor, BasisPoints, Money, Plan, Role};
use chrono::Duration;
use common::*;
use uuid::Uuid;

fn m(t: i64) -> Money {
    Money::from_tiyin(t).unwrap()
}

struct W {
    id: Uuid,
    buyer: Actor,
    seller: Actor,
    admin: Actor,
    system: Actor,
    j: Uuid,
}

fn w() -> W {
    W {
        id: Uuid::new_v4(),
        buyer: actor(Uuid::new_v4(), &[Role::Buyer]),
        seller: seller(Plan::Premium),
        admin: actor(Uuid::new_v4(), &[Role::Admin]),
        system: Actor::system(),
        j: Uuid::new_v4(),
    }
}

fn open(w: &W, amount: i64, fee: i64) -> C {
    C::Open {
        escrow_id: w.id,
        order_id: Uuid::nil(),
        buyer_id: w.buyer.id,
        seller_id: w.seller.id,
        amount: m(amount),
        commission: Plan::Premium.commission(),
        delivery_fee: m(fee),
    }
}

fn funded(w: &W) -> Vec<E> {
    let mut h = decide(&State::Initial, &open(w, 10_000, 1_800), &ctx(&w.buyer)).unwrap();
    h.extend(decide(&given::<EscrowAggregate>(&h), &C::Fund { journal_id: w.j }, &ctx(&w.buyer)).unwrap());
    h
}

fn with(h: &[E], more: &[E]) -> State {
    let mut h = h.to_vec();
    h.extend_from_slice(more);
    given::<EscrowAggregate>(&h)
}

fn status(s: &State) -> Status {
    match s {
        State::Exists(e) => e.status,
        State::Initial => panic!(),
    }
}

#[test]
fn open_and_fund_hold_amount_plus_fee() {
    let w = w();
    let h = funded(&w);
    assert!(matches!(h[1], E::EscrowFunded { amount, .. } if amount == m(11_800)));
    assert_eq!(status(&given::<EscrowAggregate>(&h)), Status::Funded);
}

#[test]
fn open_fails_on_zero_amount_existing_escrow_and_overflow() {
    let w = w();
    assert_eq!(refused(decide(&State::Initial, &open(&w, 0, 0), &ctx(&w.buyer))), "invalid_field");
    assert_eq!(refused(decide(&State::Initial, &open(&w, i64::MAX, 1), &ctx(&w.buyer))), "amount_too_large");
    assert_eq!(
        refused(decide(&given::<EscrowAggregate>(&funded(&w)), &open(&w, 1, 0), &ctx(&w.buyer))),
        "already_exists"
    );
    assert_eq!(refused(decide(&State::Initial, &C::Fund { journal_id: w.j }, &ctx(&w.buyer))), "escrow_not_found");
}

#[test]
fn fund_twice_is_refused() {
    let w = w();
    assert_eq!(
        refused(decide(&given::<EscrowAggregate>(&funded(&w)), &C::Fund { journal_id: w.j }, &ctx(&w.buyer))),
        "invalid_transition"
    );
}

#[test]
fn release_pays_seller_less_commission_and_courier_the_fee() {
    let w = w();
    let courier = Uuid::new_v4();
    let s = given::<EscrowAggregate>(&funded(&w));
    let events =
        decide(&s, &C::Release { journal_id: w.j, courier_id: Some(courier), automatic: false }, &ctx(&w.buyer))
            .unwrap();
    let expected = Settlement {
        to_buyer: m(0),
        to_seller: m(9_200),
        commission: m(800),
        to_courier: m(1_800),
        courier_id: Some(courier),
    };
    assert_eq!(events, vec![E::EscrowReleased { journal_id: w.j, settlement: expected, automatic: false, at: t0() }]);
    assert_eq!(status(&with(&funded(&w), &events)), Status::Released);
}

#[test]
fn release_fails_for_others_and_when_not_funded() {
    let w = w();
    let s = given::<EscrowAggregate>(&funded(&w));
    let rel = C::Release { journal_id: w.j, courier_id: None, automatic: false };
    assert_eq!(refused(decide(&s, &rel, &ctx(&w.seller))), "forbidden");
    let disputed = with(&funded(&w), &[E::EscrowDisputed { by: w.buyer.id, reason: "x".into(), at: t0() }]);
    assert_eq!(refused(decide(&disputed, &rel, &ctx(&w.buyer))), "invalid_transition");
}

#[test]
fn auto_release_waits_24_hours_after_delivery() {
    let w = w();
    let h = funded(&w);
    let auto = C::Release { journal_id: w.j, courier_id: None, automatic: true };
    assert_eq!(
        refused(decide(&given::<EscrowAggregate>(&h), &auto, &ctx_at(&w.system, 100))),
        "not_due",
        "never delivered"
    );
    let scheduled = decide(&given::<EscrowAggregate>(&h), &C::ScheduleRelease, &ctx(&w.system)).unwrap();
    assert_eq!(scheduled, vec![E::EscrowReleaseScheduled { due_at: t0() + Duration::hours(24) }]);
    let s = with(&h, &scheduled);
    assert_eq!(refused(decide(&s, &C::ScheduleRelease, &ctx(&w.system))), "invalid_transition");
    assert_eq!(refused(decide(&s, &auto, &ctx_at(&w.system, 23))), "not_due");
    assert_eq!(refused(decide(&s, &auto, &ctx_at(&w.admin, 25))), "forbidden");
    assert!(matches!(
        decide(&s, &auto, &ctx_at(&w.system, 24)).unwrap()[..],
        [E::EscrowReleased { automatic: true, .. }]
    ));
}

#[test]
fn suspend_stops_the_clock() {
    let w = w();
    let h = funded(&w);
    assert_eq!(
        refused(decide(&given::<EscrowAggregate>(&h), &C::SuspendRelease, &ctx(&w.buyer))),
        "invalid_transition"
    );
    let s = with(&h, &[E::EscrowReleaseScheduled { due_at: at(24) }, E::EscrowReleaseSuspended { at: t0() }]);
    let auto = C::Release { journal_id: w.j, courier_id: None, automatic: true };
    assert_eq!(refused(decide(&s, &auto, &ctx_at(&w.system, 30))), "not_due");
}

#[test]
fn refund_in_full_before_pick_up_returns_the_fee_too() {
    let w = w();
    let s = given::<EscrowAggregate>(&funded(&w));
    let e = decide(&s, &C::Refund { journal_id: w.j, to_buyer: m(10_000), courier_id: None }, &ctx(&w.buyer)).unwrap();
    let expected =
        Settlement { to_buyer: m(11_800), to_seller: m(0), commission: m(0), to_courier: m(0), courier_id: None };
    assert_eq!(e, vec![E::EscrowRefunded { journal_id: w.j, settlement: expected, at: t0() }]);
}

#[test]
fn partial_refund_charges_commission_on_what_the_seller_keeps() {
    let w = w();
    let s = given::<EscrowAggregate>(&funded(&w));
    let c = Uuid::new_v4();
    let e =
        decide(&s, &C::Refund { journal_id: w.j, to_buyer: m(2_501), courier_id: Some(c) }, &ctx(&w.seller)).unwrap();
    // 8 % of 7 499 = 599.92 -> 600
    let expected = Settlement {
        to_buyer: m(2_501),
        to_seller: m(6_899),
        commission: m(600),
        to_courier: m(1_800),
        courier_id: Some(c),
    };
    assert_eq!(e, vec![E::EscrowRefunded { journal_id: w.j, settlement: expected, at: t0() }]);
    assert_eq!(
        refused(decide(&s, &C::Refund { journal_id: w.j, to_buyer: m(10_001), courier_id: None }, &ctx(&w.seller))),
        "invalid_field"
    );
    let released =
        with(&funded(&w), &[E::EscrowReleased { journal_id: w.j, settlement: expected, automatic: false, at: t0() }]);
    assert_eq!(
        refused(decide(&released, &C::Refund { journal_id: w.j, to_buyer: m(1), courier_id: None }, &ctx(&w.seller))),
        "invalid_transition"
    );
}

#[test]
fn disputes_are_opened_by_parties_and_resolved_by_admins() {
    let w = w();
    let s = given::<EscrowAggregate>(&funded(&w));
    let d = |r: &str| C::Dispute { reason: r.into() };
    assert_eq!(refused(decide(&s, &d("x"), &ctx(&w.admin))), "forbidden");
    assert_eq!(refused(decide(&s, &d(" "), &ctx(&w.buyer))), "invalid_field");
    let opened = decide(&s, &d("scam"), &ctx(&w.seller)).unwrap();
    let disputed = with(&funded(&w), &opened);
    assert_eq!(refused(decide(&disputed, &d("again"), &ctx(&w.buyer))), "invalid_transition");
    let resolve = |r| C::Resolve { journal_id: w.j, resolution: r, courier_id: None };
    assert_eq!(refused(decide(&disputed, &resolve(Resolution::Release), &ctx(&w.buyer))), "forbidden");
    assert_eq!(refused(decide(&s, &resolve(Resolution::Release), &ctx(&w.admin))), "invalid_transition");
    assert_eq!(
        refused(decide(&disputed, &resolve(Resolution::Split { to_buyer: m(10_001) }), &ctx(&w.admin))),
        "invalid_field"
    );
    for (r, to_buyer, to_seller) in [
        (Resolution::Release, 1_800, 9_200), // no courier: the fee goes back to the buyer
        (Resolution::Refund, 11_800, 0),
        (Resolution::Split { to_buyer: m(5_000) }, 6_800, 4_600),
    ] {
        let e = decide(&disputed, &resolve(r), &ctx(&w.admin)).unwrap();
        match &e[..] {
            [E::EscrowResolved { settlement, .. }] => {
                assert_eq!((settlement.to_buyer.tiyin(), settlement.to_seller.tiyin()), (to_buyer, to_seller), "{r:?}");
                let total = settlement.to_buyer.tiyin()
                    + settlement.to_seller.tiyin()
                    + settlement.commission.tiyin()
                    + settlement.to_courier.tiyin();
                assert_eq!(total, 11_800, "settlements divide exactly what is held");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(status(&with(&funded(&w), &[opened.clone(), e].concat())), Status::Resolved);
    }
}

#[test]
fn basis_points_reject_more_than_all() {
    assert!(BasisPoints::new(10_001).is_none());
}
