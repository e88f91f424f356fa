//! Listing: given / when / then for every branch of `decide`.

mod common;

use std::collections::BTreeMap;

use bozor_domain::listing::{
    decide, Command as C, Content, ContentPatch, Details, Event as E, ItemQuantity, ListingAggregate, PromotionTier,
    State, Status, Variant,
};
use bozor_domain::{Actor, Money, Plan, Role};
use common::*;
use uuid::Uuid;

fn m(t: i64) -> Money {
    Money::from_tiyin(t).unwrap()
}

fn content() -> Content {
    Content {
        title: "Chevrolet Gentra 2020".into(),
        description: "Oq rang, 60 000 km".into(),
        category: "cars".into(),
        images: vec!["img/1.jpg".into()],
        attributes: BTreeMap::from([("year".into(), "2020".into())]),
    }
}

fn product(stock: u32) -> Details {
    Details::Product { variants: vec![Variant { sku: "std".into(), label: "".into(), stock }] }
}

fn game() -> Details {
    Details::GameAccount { game: "Standoff 2".into(), level: 40, rank: Some("Legend".into()) }
}

struct World {
    id: Uuid,
    seller: Actor,
    support: Actor,
    admin: Actor,
    system: Actor,
}

fn world() -> World {
    World {
        id: Uuid::new_v4(),
        seller: seller(Plan::Premium),
        support: actor(Uuid::new_v4(), &[Role::Support]),
        admin: actor(Uuid::new_v4(), &[Role::Admin]),
        system: Actor::system(),
    }
}

fn created(w: &World, details: Details) -> E {
    E::ListingCreated {
        listing_id: w.id,
        seller_id: w.seller.id,
        seller_plan: Plan::Premium,
        details,
        content: content(),
        price: m(1_000),
        at: t0(),
    }
}

fn history(w: &World, details: Details, status: &str) -> Vec<E> {
    let mut h = vec![created(w, details)];
    let by = w.support.id;
    let steps: &[E] = match status {
        "draft" => &[],
        "pending" => &[E::ListingSubmitted { at: t0() }],
        "active" => &[E::ListingSubmitted { at: t0() }, E::ListingApproved { by, automatic: false, at: t0() }],
        "rejected" => &[E::ListingSubmitted { at: t0() }, E::ListingRejected { by, reason: "blurry".into(), at: t0() }],
        "archived" => &[
            E::ListingSubmitted { at: t0() },
            E::ListingApproved { by, automatic: false, at: t0() },
            E::ListingArchived { at: t0() },
        ],
        other => panic!("no history for {other}"),
    };
    h.extend(steps.iter().cloned());
    h
}

fn state(w: &World, details: Details, status: &str) -> State {
    given::<ListingAggregate>(&history(w, details, status))
}

fn listing(s: &State) -> &bozor_domain::listing::Listing {
    match s {
        State::Exists(l) => l,
        State::Initial => panic!("no listing"),
    }
}

fn create(w: &World, details: Details, content: Content, price: i64) -> C {
    C::Create { listing_id: w.id, details, content, price: m(price) }
}

#[test]
fn create_records_a_draft_with_the_sellers_plan() {
    let w = world();
    let events = decide(&State::Initial, &create(&w, product(3), content(), 1_000), &ctx(&w.seller)).unwrap();
    assert_eq!(events, vec![created(&w, product(3))]);
    assert_eq!(listing(&given::<ListingAggregate>(&events)).status, Status::Draft);
}

#[test]
fn create_fails_when_the_listing_exists() {
    let w = world();
    let s = state(&w, product(1), "draft");
    assert_eq!(refused(decide(&s, &create(&w, product(1), content(), 1), &ctx(&w.seller))), "already_exists");
}

#[test]
fn create_fails_for_non_sellers() {
    let w = world();
    let buyer = actor(Uuid::new_v4(), &[Role::Buyer]);
    assert_eq!(refused(decide(&State::Initial, &create(&w, product(1), content(), 1), &ctx(&buyer))), "forbidden");
}

#[test]
fn create_fails_on_invalid_content_price_or_details() {
    let w = world();
    let mut no_title = content();
    no_title.title = "   ".into();
    let mut long_title = content();
    long_title.title = "x".repeat(201);
    let mut no_category = content();
    no_category.category = "".into();
    let mut many_images = content();
    many_images.images = vec!["i".into(); 21];
    let dup = Details::Product {
        variants: vec![
            Variant { sku: "a".into(), label: "".into(), stock: 1 },
            Variant { sku: "a".into(), label: "".into(), stock: 1 },
        ],
    };
    let cases = [
        create(&w, product(1), no_title, 1),
        create(&w, product(1), long_title, 1),
        create(&w, product(1), no_category, 1),
        create(&w, product(1), many_images, 1),
        create(&w, product(1), content(), 0),
        create(&w, Details::Product { variants: vec![] }, content(), 1),
        create(&w, dup, content(), 1),
        create(&w, Details::GameAccount { game: "".into(), level: 1, rank: None }, content(), 1),
        create(&w, Details::Classified { contact_phone: Some("9".repeat(40)) }, content(), 1),
    ];
    for c in cases {
        assert_eq!(refused(decide(&State::Initial, &c, &ctx(&w.seller))), "invalid_field", "{c:?}");
    }
}

#[test]
fn commands_on_a_missing_or_deleted_listing_fail_with_not_found() {
    let w = world();
    assert_eq!(refused(decide(&State::Initial, &C::Submit, &ctx(&w.seller))), "listing_not_found");
    let mut h = history(&w, product(1), "draft");
    h.push(E::ListingDeleted { by: w.seller.id, at: t0() });
    let s = given::<ListingAggregate>(&h);
    assert_eq!(refused(decide(&s, &C::Submit, &ctx(&w.seller))), "listing_not_found");
}

#[test]
fn update_of_a_draft_keeps_it_a_draft() {
    let w = world();
    let patch = ContentPatch { title: Some("Gentra 2021".into()), ..Default::default() };
    let events = decide(&state(&w, product(1), "draft"), &C::Update { patch: patch.clone() }, &ctx(&w.seller)).unwrap();
    assert_eq!(events, vec![E::ListingUpdated { patch, at: t0() }]);
}

#[test]
fn update_of_an_active_listing_sends_it_back_to_moderation() {
    let w = world();
    let patch = ContentPatch { description: Some("yangi".into()), ..Default::default() };
    let s = state(&w, product(1), "active");
    let events = decide(&s, &C::Update { patch }, &ctx(&w.seller)).unwrap();
    assert!(matches!(events[..], [E::ListingUpdated { .. }, E::ListingSubmitted { .. }]));
    let mut h = history(&w, product(1), "active");
    h.extend(events);
    assert_eq!(listing(&given::<ListingAggregate>(&h)).status, Status::Pending);
}

#[test]
fn update_changes_product_variants() {
    let w = world();
    let patch = ContentPatch {
        variants: Some(vec![Variant { sku: "x".into(), label: "".into(), stock: 9 }]),
        ..Default::default()
    };
    let mut h = history(&w, product(1), "draft");
    h.extend(decide(&given::<ListingAggregate>(&h), &C::Update { patch }, &ctx(&w.seller)).unwrap());
    assert_eq!(listing(&given::<ListingAggregate>(&h)).available_of("x"), 9);
}

#[test]
fn update_fails_for_others_for_closed_listings_and_for_bad_patches() {
    let w = world();
    let patch = ContentPatch { title: Some("t".into()), ..Default::default() };
    let other = seller(Plan::Free);
    assert_eq!(
        refused(decide(&state(&w, product(1), "draft"), &C::Update { patch: patch.clone() }, &ctx(&other))),
        "forbidden"
    );
    let s = state(&w, product(1), "archived");
    assert_eq!(refused(decide(&s, &C::Update { patch }, &ctx(&w.seller))), "invalid_transition");
    let s = state(&w, product(1), "draft");
    let empty = C::Update { patch: ContentPatch::default() };
    assert_eq!(refused(decide(&s, &empty, &ctx(&w.seller))), "invalid_field");
    let blank = C::Update { patch: ContentPatch { title: Some(" ".into()), ..Default::default() } };
    assert_eq!(refused(decide(&s, &blank, &ctx(&w.seller))), "invalid_field");
    let s = state(&w, game(), "draft");
    let variants = C::Update { patch: ContentPatch { variants: Some(vec![]), ..Default::default() } };
    assert_eq!(refused(decide(&s, &variants, &ctx(&w.seller))), "invalid_field");
}

#[test]
fn change_price_keeps_the_original_price() {
    let w = world();
    let mut h = history(&w, product(1), "active");
    let events = decide(&given::<ListingAggregate>(&h), &C::ChangePrice { price: m(800) }, &ctx(&w.seller)).unwrap();
    assert_eq!(events, vec![E::ListingPriceChanged { price: m(800), previous_price: m(1_000), at: t0() }]);
    h.extend(events);
    let l = given::<ListingAggregate>(&h);
    assert_eq!(
        (listing(&l).price, listing(&l).original_price, listing(&l).status.clone()),
        (m(800), m(1_000), Status::Active)
    );
}

#[test]
fn change_price_fails_on_zero_same_price_other_seller_or_closed_listing() {
    let w = world();
    let s = state(&w, product(1), "active");
    assert_eq!(refused(decide(&s, &C::ChangePrice { price: m(0) }, &ctx(&w.seller))), "invalid_field");
    assert_eq!(refused(decide(&s, &C::ChangePrice { price: m(1_000) }, &ctx(&w.seller))), "invalid_field");
    assert_eq!(refused(decide(&s, &C::ChangePrice { price: m(5) }, &ctx(&seller(Plan::Free)))), "forbidden");
    let s = state(&w, product(1), "archived");
    assert_eq!(refused(decide(&s, &C::ChangePrice { price: m(5) }, &ctx(&w.seller))), "invalid_transition");
}

#[test]
fn submit_moves_drafts_and_rejected_listings_to_pending() {
    let w = world();
    for from in ["draft", "rejected"] {
        let events = decide(&state(&w, product(1), from), &C::Submit, &ctx(&w.seller)).unwrap();
        assert_eq!(events, vec![E::ListingSubmitted { at: t0() }], "{from}");
    }
}

#[test]
fn submit_fails_for_others_and_from_other_statuses() {
    let w = world();
    assert_eq!(refused(decide(&state(&w, product(1), "draft"), &C::Submit, &ctx(&w.admin))), "forbidden");
    for from in ["pending", "active", "archived"] {
        assert_eq!(refused(decide(&state(&w, product(1), from), &C::Submit, &ctx(&w.seller))), "invalid_transition");
    }
}

#[test]
fn approve_by_a_moderator_activates_a_pending_listing() {
    let w = world();
    for moderator in [&w.support, &w.admin] {
        let events = decide(&state(&w, product(1), "pending"), &C::Approve, &ctx(moderator)).unwrap();
        assert_eq!(events, vec![E::ListingApproved { by: moderator.id, automatic: false, at: t0() }]);
    }
}

#[test]
fn approve_fails_for_sellers_and_for_listings_not_pending() {
    let w = world();
    assert_eq!(refused(decide(&state(&w, product(1), "pending"), &C::Approve, &ctx(&w.seller))), "forbidden");
    assert_eq!(refused(decide(&state(&w, product(1), "draft"), &C::Approve, &ctx(&w.support))), "invalid_transition");
}

#[test]
fn auto_approve_happens_48_hours_after_submission() {
    let w = world();
    let s = state(&w, product(1), "pending");
    assert_eq!(refused(decide(&s, &C::AutoApprove, &ctx_at(&w.system, 47))), "not_due");
    let events = decide(&s, &C::AutoApprove, &ctx_at(&w.system, 48)).unwrap();
    assert_eq!(events, vec![E::ListingApproved { by: w.system.id, automatic: true, at: at(48) }]);
}

#[test]
fn auto_approve_is_the_schedulers_alone_and_needs_a_pending_listing() {
    let w = world();
    assert_eq!(refused(decide(&state(&w, product(1), "pending"), &C::AutoApprove, &ctx_at(&w.admin, 50))), "forbidden");
    let s = state(&w, product(1), "rejected");
    assert_eq!(refused(decide(&s, &C::AutoApprove, &ctx_at(&w.system, 50))), "invalid_transition");
}

#[test]
fn reject_records_the_reason() {
    let w = world();
    let events =
        decide(&state(&w, product(1), "pending"), &C::Reject { reason: " no photos ".into() }, &ctx(&w.support))
            .unwrap();
    assert_eq!(events, vec![E::ListingRejected { by: w.support.id, reason: "no photos".into(), at: t0() }]);
}

#[test]
fn reject_fails_without_reason_for_sellers_and_when_not_pending() {
    let w = world();
    let s = state(&w, product(1), "pending");
    assert_eq!(refused(decide(&s, &C::Reject { reason: " ".into() }, &ctx(&w.support))), "invalid_field");
    assert_eq!(refused(decide(&s, &C::Reject { reason: "x".into() }, &ctx(&w.seller))), "forbidden");
    let s = state(&w, product(1), "active");
    assert_eq!(refused(decide(&s, &C::Reject { reason: "x".into() }, &ctx(&w.support))), "invalid_transition");
}

#[test]
fn archive_takes_active_and_rejected_listings() {
    let w = world();
    for from in ["active", "rejected"] {
        assert_eq!(
            decide(&state(&w, product(1), from), &C::Archive, &ctx(&w.seller)).unwrap(),
            vec![E::ListingArchived { at: t0() }]
        );
    }
}

#[test]
fn archive_fails_for_others_and_from_draft() {
    let w = world();
    assert_eq!(refused(decide(&state(&w, product(1), "active"), &C::Archive, &ctx(&w.admin))), "forbidden");
    assert_eq!(refused(decide(&state(&w, product(1), "draft"), &C::Archive, &ctx(&w.seller))), "invalid_transition");
}

#[test]
fn block_by_an_admin_works_from_any_status() {
    let w = world();
    for from in ["draft", "pending", "active", "rejected", "archived"] {
        let events =
            decide(&state(&w, product(1), from), &C::Block { reason: "fraud".into() }, &ctx(&w.admin)).unwrap();
        assert_eq!(events, vec![E::ListingBlocked { by: w.admin.id, reason: "fraud".into(), at: t0() }]);
    }
}

#[test]
fn block_fails_for_non_admins_twice_and_without_reason() {
    let w = world();
    let s = state(&w, product(1), "active");
    assert_eq!(refused(decide(&s, &C::Block { reason: "x".into() }, &ctx(&w.support))), "forbidden");
    assert_eq!(refused(decide(&s, &C::Block { reason: "".into() }, &ctx(&w.admin))), "invalid_field");
    let mut h = history(&w, product(1), "active");
    h.push(E::ListingBlocked { by: w.admin.id, reason: "x".into(), at: t0() });
    let s = given::<ListingAggregate>(&h);
    assert_eq!(refused(decide(&s, &C::Block { reason: "x".into() }, &ctx(&w.admin))), "invalid_transition");
}

#[test]
fn delete_is_soft_and_allowed_to_seller_and_admin() {
    let w = world();
    for who in [&w.seller, &w.admin] {
        let events = decide(&state(&w, product(1), "active"), &C::Delete, &ctx(who)).unwrap();
        assert_eq!(events, vec![E::ListingDeleted { by: who.id, at: t0() }]);
        let mut h = history(&w, product(1), "active");
        h.extend(events);
        assert!(listing(&given::<ListingAggregate>(&h)).deleted);
    }
}

#[test]
fn delete_fails_for_others_and_during_a_deal() {
    let w = world();
    assert_eq!(refused(decide(&state(&w, product(1), "active"), &C::Delete, &ctx(&w.support))), "forbidden");
    let mut h = history(&w, game(), "active");
    h.push(E::ListingReserved { order_id: Uuid::new_v4() });
    assert_eq!(refused(decide(&given::<ListingAggregate>(&h), &C::Delete, &ctx(&w.seller))), "invalid_transition");
}

fn items(sku: &str, quantity: u32) -> Vec<ItemQuantity> {
    vec![ItemQuantity { sku: sku.into(), quantity }]
}

#[test]
fn reserve_takes_product_stock_and_release_gives_it_back() {
    let w = world();
    let order = Uuid::new_v4();
    let mut h = history(&w, product(3), "active");
    let events = decide(
        &given::<ListingAggregate>(&h),
        &C::Reserve { order_id: order, items: items("std", 2) },
        &ctx(&w.system),
    )
    .unwrap();
    assert_eq!(events, vec![E::ListingStockReserved { order_id: order, items: items("std", 2) }]);
    h.extend(events);
    assert_eq!(listing(&given::<ListingAggregate>(&h)).available_of("std"), 1);
    let released =
        decide(&given::<ListingAggregate>(&h), &C::ReleaseReservation { order_id: order }, &ctx(&w.system)).unwrap();
    h.extend(released);
    let l = given::<ListingAggregate>(&h);
    assert_eq!((listing(&l).available_of("std"), listing(&l).status.clone()), (3, Status::Active));
}

#[test]
fn reserve_fails_on_stock_sku_quantity_kind_status_and_duplicates() {
    let w = world();
    let s = state(&w, product(3), "active");
    let r = |s: &State, items| decide(s, &C::Reserve { order_id: Uuid::new_v4(), items }, &ctx(&w.system));
    assert_eq!(refused(r(&s, items("std", 4))), "insufficient_stock");
    let twice = vec![ItemQuantity { sku: "std".into(), quantity: 2 }, ItemQuantity { sku: "std".into(), quantity: 2 }];
    assert_eq!(refused(r(&s, twice)), "insufficient_stock");
    assert_eq!(refused(r(&s, items("nope", 1))), "invalid_field");
    assert_eq!(refused(r(&s, items("std", 0))), "invalid_field");
    assert_eq!(refused(r(&s, vec![])), "invalid_field");
    assert_eq!(refused(r(&state(&w, product(3), "pending"), items("std", 1))), "listing_not_active");
    let classified = state(&w, Details::Classified { contact_phone: None }, "active");
    assert_eq!(refused(r(&classified, items("std", 1))), "listing_not_orderable");
    assert_eq!(refused(r(&state(&w, game(), "active"), items("account", 2))), "invalid_field");
    let order = Uuid::new_v4();
    let mut h = history(&w, product(3), "active");
    h.push(E::ListingStockReserved { order_id: order, items: items("std", 1) });
    let again = decide(
        &given::<ListingAggregate>(&h),
        &C::Reserve { order_id: order, items: items("std", 1) },
        &ctx(&w.system),
    );
    assert_eq!(refused(again), "already_exists");
}

#[test]
fn a_game_account_is_reserved_then_sold_or_released() {
    let w = world();
    let order = Uuid::new_v4();
    let mut h = history(&w, game(), "active");
    let events = decide(
        &given::<ListingAggregate>(&h),
        &C::Reserve { order_id: order, items: items("account", 1) },
        &ctx(&w.system),
    )
    .unwrap();
    assert_eq!(events, vec![E::ListingReserved { order_id: order }]);
    h.extend(events);
    assert_eq!(listing(&given::<ListingAggregate>(&h)).status, Status::Reserved { order_id: order });
    let reserved = given::<ListingAggregate>(&h);
    let other =
        decide(&reserved, &C::Reserve { order_id: Uuid::new_v4(), items: items("account", 1) }, &ctx(&w.system));
    assert_eq!(refused(other), "listing_not_active");

    let mut sold = h.clone();
    sold.extend(decide(&reserved, &C::CompleteSale { order_id: order }, &ctx(&w.system)).unwrap());
    assert_eq!(listing(&given::<ListingAggregate>(&sold)).status, Status::Sold);
    let mut back = h;
    back.extend(decide(&reserved, &C::ReleaseReservation { order_id: order }, &ctx(&w.system)).unwrap());
    assert_eq!(listing(&given::<ListingAggregate>(&back)).status, Status::Active);
}

#[test]
fn a_blocked_listing_stays_blocked_when_its_deal_ends() {
    let w = world();
    let order = Uuid::new_v4();
    let mut h = history(&w, game(), "active");
    h.push(E::ListingReserved { order_id: order });
    h.push(E::ListingBlocked { by: w.admin.id, reason: "x".into(), at: t0() });
    h.extend(
        decide(&given::<ListingAggregate>(&h), &C::ReleaseReservation { order_id: order }, &ctx(&w.system)).unwrap(),
    );
    assert!(matches!(listing(&given::<ListingAggregate>(&h)).status, Status::Blocked { .. }));
}

#[test]
fn release_and_complete_fail_for_unknown_orders() {
    let w = world();
    let s = state(&w, product(3), "active");
    let o = Uuid::new_v4();
    assert_eq!(refused(decide(&s, &C::ReleaseReservation { order_id: o }, &ctx(&w.system))), "invalid_transition");
    assert_eq!(refused(decide(&s, &C::CompleteSale { order_id: o }, &ctx(&w.system))), "invalid_transition");
}

#[test]
fn complete_sale_of_a_product_keeps_stock_taken() {
    let w = world();
    let order = Uuid::new_v4();
    let mut h = history(&w, product(3), "active");
    h.push(E::ListingStockReserved { order_id: order, items: items("std", 2) });
    h.extend(decide(&given::<ListingAggregate>(&h), &C::CompleteSale { order_id: order }, &ctx(&w.system)).unwrap());
    let l = given::<ListingAggregate>(&h);
    assert_eq!((listing(&l).available_of("std"), listing(&l).reservations.len()), (1, 0));
}

#[test]
fn promote_prices_by_tier_and_extends_a_running_promotion() {
    let w = world();
    let j = Uuid::new_v4();
    let mut h = history(&w, product(1), "active");
    let events = decide(
        &given::<ListingAggregate>(&h),
        &C::Promote { tier: PromotionTier::Top, days: 2, journal_id: j },
        &ctx(&w.seller),
    )
    .unwrap();
    assert_eq!(
        events,
        vec![E::ListingPromoted {
            tier: PromotionTier::Top,
            days: 2,
            until: at(48),
            price: m(1_000_000),
            journal_id: j
        }]
    );
    h.extend(events);
    let more = decide(
        &given::<ListingAggregate>(&h),
        &C::Promote { tier: PromotionTier::Vip, days: 1, journal_id: j },
        &ctx(&w.seller),
    )
    .unwrap();
    assert_eq!(
        more,
        vec![E::ListingPromoted {
            tier: PromotionTier::Vip,
            days: 1,
            until: at(72),
            price: m(1_500_000),
            journal_id: j
        }]
    );
}

#[test]
fn promote_fails_for_inactive_listings_bad_days_and_other_sellers() {
    let w = world();
    let j = Uuid::new_v4();
    let p = |days| C::Promote { tier: PromotionTier::Top, days, journal_id: j };
    let s = state(&w, product(1), "active");
    assert_eq!(refused(decide(&s, &p(0), &ctx(&w.seller))), "invalid_field");
    assert_eq!(refused(decide(&s, &p(31), &ctx(&w.seller))), "invalid_field");
    assert_eq!(refused(decide(&s, &p(1), &ctx(&seller(Plan::Free)))), "forbidden");
    assert_eq!(refused(decide(&state(&w, product(1), "draft"), &p(1), &ctx(&w.seller))), "listing_not_active");
}

fn sealed(key: u128) -> bozor_domain::listing::SealedCredentials {
    bozor_domain::listing::SealedCredentials {
        key_id: Uuid::from_u128(key),
        nonce: "bm9uY2Vub25jZTEy".into(),
        ciphertext: "c2VhbGVk".into(),
    }
}

fn with_credentials(w: &World, status: &str) -> Vec<E> {
    let mut h = history(w, game(), status);
    h.push(E::CredentialsSet { sealed: sealed(1), at: t0() });
    h
}

fn purchase(buyer: &Actor, delivered: bool) -> Option<bozor_domain::listing::Purchase> {
    Some(bozor_domain::listing::Purchase { order_id: Uuid::from_u128(9), buyer_id: buyer.id, delivered })
}

#[test]
fn set_credentials_seals_a_game_account_and_may_replace_them() {
    let w = world();
    let s = state(&w, game(), "active");
    let events = decide(&s, &C::SetCredentials { sealed: sealed(1) }, &ctx(&w.seller)).unwrap();
    assert_eq!(events, vec![E::CredentialsSet { sealed: sealed(1), at: t0() }]);
    let s = given::<ListingAggregate>(&with_credentials(&w, "draft"));
    assert!(decide(&s, &C::SetCredentials { sealed: sealed(1) }, &ctx(&w.seller)).is_ok());
}

#[test]
fn set_credentials_fails_for_others_products_closed_listings_and_empty_fields() {
    let w = world();
    let set = C::SetCredentials { sealed: sealed(1) };
    assert_eq!(refused(decide(&state(&w, game(), "draft"), &set, &ctx(&w.admin))), "forbidden");
    assert_eq!(refused(decide(&state(&w, product(1), "draft"), &set, &ctx(&w.seller))), "invalid_field");
    assert_eq!(refused(decide(&state(&w, game(), "archived"), &set, &ctx(&w.seller))), "invalid_transition");
    let mut empty = sealed(1);
    empty.ciphertext.clear();
    let s = state(&w, game(), "draft");
    assert_eq!(refused(decide(&s, &C::SetCredentials { sealed: empty }, &ctx(&w.seller))), "invalid_field");
}

#[test]
fn reveal_is_recorded_for_the_buyer_of_a_delivered_order_and_for_admins() {
    let w = world();
    let buyer = actor(Uuid::new_v4(), &[Role::Buyer]);
    let s = given::<ListingAggregate>(&with_credentials(&w, "active"));
    let by_buyer = decide(&s, &C::RevealCredentials { purchase: purchase(&buyer, true) }, &ctx(&buyer)).unwrap();
    assert_eq!(by_buyer, vec![E::CredentialsRevealed { to: buyer.id, order_id: Some(Uuid::from_u128(9)), at: t0() }]);
    let by_admin = decide(&s, &C::RevealCredentials { purchase: None }, &ctx(&w.admin)).unwrap();
    assert_eq!(by_admin, vec![E::CredentialsRevealed { to: w.admin.id, order_id: None, at: t0() }]);
}

#[test]
fn reveal_fails_before_delivery_for_other_users_and_without_credentials() {
    let w = world();
    let buyer = actor(Uuid::new_v4(), &[Role::Buyer]);
    let s = given::<ListingAggregate>(&with_credentials(&w, "active"));
    let early = C::RevealCredentials { purchase: purchase(&buyer, false) };
    assert_eq!(refused(decide(&s, &early, &ctx(&buyer))), "forbidden");
    let someone_elses = C::RevealCredentials { purchase: purchase(&buyer, true) };
    for other in [&w.seller, &w.support] {
        assert_eq!(refused(decide(&s, &someone_elses, &ctx(other))), "forbidden");
    }
    let bare = state(&w, game(), "active");
    assert_eq!(refused(decide(&bare, &C::RevealCredentials { purchase: None }, &ctx(&w.admin))), "credentials_missing");
}

#[test]
fn erase_shreds_the_key_once_and_later_reveals_fail() {
    let w = world();
    let mut h = with_credentials(&w, "active");
    let events = decide(&given::<ListingAggregate>(&h), &C::EraseCredentials, &ctx(&w.seller)).unwrap();
    assert_eq!(events, vec![E::CredentialsErased { key_id: Uuid::from_u128(1), by: w.seller.id, at: t0() }]);
    h.extend(events);
    let s = given::<ListingAggregate>(&h);
    assert_eq!(decide(&s, &C::EraseCredentials, &ctx(&w.admin)).unwrap(), vec![], "erasing twice is a no-op");
    assert_eq!(refused(decide(&s, &C::RevealCredentials { purchase: None }, &ctx(&w.admin))), "credentials_erased");
}

#[test]
fn erase_fails_for_others_without_credentials_and_for_the_seller_during_a_deal() {
    let w = world();
    let s = given::<ListingAggregate>(&with_credentials(&w, "active"));
    let buyer = actor(Uuid::new_v4(), &[Role::Buyer]);
    assert_eq!(refused(decide(&s, &C::EraseCredentials, &ctx(&buyer))), "forbidden");
    assert_eq!(
        refused(decide(&state(&w, game(), "active"), &C::EraseCredentials, &ctx(&w.seller))),
        "credentials_missing"
    );
    let mut h = with_credentials(&w, "active");
    h.push(E::ListingReserved { order_id: Uuid::from_u128(9) });
    let reserved = given::<ListingAggregate>(&h);
    assert_eq!(refused(decide(&reserved, &C::EraseCredentials, &ctx(&w.seller))), "invalid_transition");
    assert!(decide(&reserved, &C::EraseCredentials, &ctx(&w.admin)).is_ok(), "an admin may shred during a deal");
}

fn listing_state(h: &[E]) -> bozor_domain::listing::Listing {
    match given::<ListingAggregate>(h) {
        State::Exists(l) => *l,
        State::Initial => panic!("no listing"),
    }
}

fn variants(list: &[(&str, u32)]) -> ContentPatch {
    let v = list.iter().map(|(sku, stock)| Variant { sku: (*sku).into(), label: "".into(), stock: *stock }).collect();
    ContentPatch { variants: Some(v), ..Default::default() }
}

#[test]
fn update_fails_when_it_removes_a_variant_open_orders_hold_or_sets_stock_below_their_units() {
    let w = world();
    let mut h = history(&w, product(3), "active");
    h.push(E::ListingStockReserved { order_id: Uuid::new_v4(), items: items("std", 2) });
    let s = given::<ListingAggregate>(&h);
    let update = |list: &[(&str, u32)]| C::Update { patch: variants(list) };
    assert_eq!(refused(decide(&s, &update(&[("v2", 4)]), &ctx(&w.seller))), "variant_reserved");
    assert_eq!(refused(decide(&s, &update(&[("std", 1), ("v2", 4)]), &ctx(&w.seller))), "stock_below_reserved");
    assert!(decide(&s, &update(&[("std", 2), ("v2", 4)]), &ctx(&w.seller)).is_ok());
}

#[test]
fn stock_counts_units_on_hand_so_a_cancel_after_a_restock_gives_back_nothing_extra() {
    // The seller counts 10 on the shelf while an order holds 1: 9 can be ordered, and the
    // cancel puts the held unit back among the 10, not on top of them.
    let w = world();
    let order = Uuid::new_v4();
    let mut h = history(&w, product(3), "draft");
    h.extend([E::ListingSubmitted { at: t0() }, E::ListingApproved { by: w.support.id, automatic: false, at: t0() }]);
    h.push(E::ListingStockReserved { order_id: order, items: items("std", 1) });
    assert_eq!(listing_state(&h).available_of("std"), 2);
    h.extend(
        decide(&given::<ListingAggregate>(&h), &C::Update { patch: variants(&[("std", 10)]) }, &ctx(&w.seller))
            .unwrap(),
    );
    assert_eq!((listing_state(&h).available_of("std"), listing_state(&h).reserved_of("std")), (9, 1));
    h.extend(
        decide(&given::<ListingAggregate>(&h), &C::ReleaseReservation { order_id: order }, &ctx(&w.system)).unwrap(),
    );
    assert_eq!(listing_state(&h).available_of("std"), 10);
}

#[test]
fn a_product_whose_every_unit_is_held_or_sold_is_sold_out() {
    let w = world();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut h = history(&w, product(2), "active");
    assert!(!listing_state(&h).sold_out());
    h.push(E::ListingStockReserved { order_id: a, items: items("std", 1) });
    h.push(E::ListingStockReserved { order_id: b, items: items("std", 1) });
    assert!(listing_state(&h).sold_out());
    let s = given::<ListingAggregate>(&h);
    let more = C::Reserve { order_id: Uuid::new_v4(), items: items("std", 1) };
    assert_eq!(refused(decide(&s, &more, &ctx(&w.system))), "insufficient_stock");
    h.push(E::ListingSaleCompleted { order_id: a });
    h.push(E::ListingReservationReleased { order_id: b });
    let l = listing_state(&h);
    assert_eq!((l.sold_out(), l.available_of("std"), l.reserved_of("std")), (false, 1, 0));
    assert!(!listing_state(&history(&w, Details::Classified { contact_phone: None }, "active")).sold_out());
}

#[test]
fn a_history_that_removed_a_held_variant_still_loads_and_settles() {
    // Stored before removals were refused: the sale of a vanished variant takes nothing.
    let w = world();
    let order = Uuid::new_v4();
    let mut h = history(&w, product(3), "active");
    h.push(E::ListingStockReserved { order_id: order, items: items("std", 1) });
    h.push(E::ListingUpdated { patch: variants(&[("v2", 4)]), at: t0() });
    let s = given::<ListingAggregate>(&h);
    h.extend(decide(&s, &C::ReleaseReservation { order_id: order }, &ctx(&w.system)).unwrap());
    assert_eq!((listing_state(&h).available_of("v2"), listing_state(&h).reservations.len()), (4, 0));
}

#[test]
fn prices_above_the_amount_limit_are_refused() {
    let w = world();
    let max = bozor_domain::money::AMOUNT_MAX;
    let create = |price: i64| C::Create { listing_id: w.id, details: product(1), content: content(), price: m(price) };
    assert!(decide(&State::Initial, &create(max), &ctx(&w.seller)).is_ok());
    assert_eq!(refused(decide(&State::Initial, &create(max + 1), &ctx(&w.seller))), "amount_too_large");
    assert_eq!(refused(decide(&State::Initial, &create(i64::MAX), &ctx(&w.seller))), "amount_too_large");
    let s = given::<ListingAggregate>(&history(&w, product(1), "active"));
    assert_eq!(refused(decide(&s, &C::ChangePrice { price: m(i64::MAX) }, &ctx(&w.seller))), "amount_too_large");
}

#[test]
fn nobody_moderates_their_own_listing() {
    let w = world();
    let staff_seller = actor(w.seller.id, &[Role::Seller, Role::Support, Role::Admin]);
    let s = given::<ListingAggregate>(&history(&w, product(1), "pending"));
    assert_eq!(refused(decide(&s, &C::Approve, &ctx(&staff_seller))), "forbidden");
    assert_eq!(refused(decide(&s, &C::Reject { reason: "x".into() }, &ctx(&staff_seller))), "forbidden");
    assert!(decide(&s, &C::Approve, &ctx(&w.support)).is_ok());
}
