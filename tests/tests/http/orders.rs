use bozor_domain::escrow::{self, EscrowAggregate};
use bozor_domain::flows::escrow_id_for;
use bozor_domain::listing::{self, ListingAggregate};
use bozor_domain::order::{self, OrderAggregate};
use bozor_domain::wallet::PlatformAccount;
use serde_json::json;
use uuid::Uuid;

use crate::support::{spawn, TestApp, User};

const PRICE: i64 = 10_000_000; // 100 000 sum
const CHILONZOR_FEE: i64 = 1_800_000; // 18 000 sum

async fn order_status(app: &TestApp, id: Uuid) -> order::Status {
    match app.load::<OrderAggregate>(id).await {
        order::State::Exists(o) => o.status,
        order::State::Initial => panic!("order {id} does not exist"),
    }
}

async fn stock(app: &TestApp, listing: Uuid) -> u32 {
    match app.load::<ListingAggregate>(listing).await {
        listing::State::Exists(l) => l.available_of("std"),
        listing::State::Initial => panic!("listing missing"),
    }
}

async fn place_delivery(app: &TestApp, buyer: &User, listing: Uuid, quantity: u32) -> Uuid {
    let body = json!({
        "items": [{ "listing_id": listing, "quantity": quantity }],
        "delivery": { "district": "chilonzor", "address": "Bunyodkor ko'chasi 1, 12-xonadon" }
    });
    app.post(buyer, "/v1/orders", body).await.ok().id()
}

/// Seller, buyer, courier and an order paid and picked up.
async fn picked_up(app: &TestApp, plan: &str, quantity: u32) -> (User, User, User, Uuid, Uuid) {
    let (seller, buyer, courier) = (User::seller(plan), User::buyer(), app.courier("chilonzor").await);
    let listing = app.active_product(&seller, PRICE, 3).await;
    app.deposit(&buyer, 30_000_000).await;
    let order = place_delivery(app, &buyer, listing, quantity).await;
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.accept(&seller, order).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/pick-up"), json!({})).await.ok();
    (seller, buyer, courier, listing, order)
}

#[tokio::test]
async fn delivery_order_settles_with_commission_by_plan_and_fee_to_courier() {
    let app = spawn().await;
    let (seller, buyer, courier, listing, order) = picked_up(&app, "premium", 2).await;
    let total = 2 * PRICE + CHILONZOR_FEE;
    assert_eq!(app.balance(buyer.id).await, (30_000_000 - total, total), "paid money is held");
    assert_eq!(stock(&app, listing).await, 1);

    app.post(&courier, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    let escrow = match app.load::<EscrowAggregate>(escrow_id_for(order)).await {
        escrow::State::Exists(e) => e,
        _ => panic!("escrow opened"),
    };
    assert!(escrow.release_due_at.is_some(), "delivery starts the 24 h release clock");
    assert_eq!(escrow.commission.get(), 800);

    let done = app.post(&buyer, &format!("/v1/orders/{order}/confirm"), json!({})).await.ok();
    assert!(done.body["position"].as_i64().unwrap() > 0);
    let commission = 2 * PRICE * 8 / 100;
    assert_eq!(app.balance(buyer.id).await, (30_000_000 - total, 0));
    assert_eq!(app.balance(seller.id).await, (2 * PRICE - commission, 0));
    assert_eq!(app.balance(courier.id).await, (CHILONZOR_FEE, 0));
    assert_eq!(app.platform(PlatformAccount::Revenue).await, commission);
    assert_eq!(app.platform(PlatformAccount::ProviderClearing).await, -30_000_000);
    assert_eq!(order_status(&app, order).await, order::Status::Completed);
    assert_eq!(stock(&app, listing).await, 1, "sold stock stays sold");
    app.assert_books_balance().await;
}

#[tokio::test]
async fn cancel_before_pick_up_refunds_in_full_and_restocks() {
    let app = spawn().await;
    let (seller, buyer) = (User::seller("free"), User::buyer());
    let listing = app.active_product(&seller, PRICE, 3).await;
    app.deposit(&buyer, 30_000_000).await;
    let order = place_delivery(&app, &buyer, listing, 2).await;
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.accept(&seller, order).await.ok();
    assert_eq!(stock(&app, listing).await, 1);

    app.post(&buyer, &format!("/v1/orders/{order}/cancel"), json!({ "reason": "fikrimni o'zgartirdim" })).await.ok();
    assert_eq!(app.balance(buyer.id).await, (30_000_000, 0));
    assert_eq!(stock(&app, listing).await, 3);
    assert_eq!(order_status(&app, order).await, order::Status::Cancelled);
    app.assert_books_balance().await;

    // Once picked up, an order can no longer be cancelled.
    let (_, buyer2, _, _, order2) = picked_up(&app, "free", 1).await;
    let before = app.events().await;
    let r = app.post(&buyer2, &format!("/v1/orders/{order2}/cancel"), json!({ "reason": "late" })).await;
    r.err(409, "invalid_transition");
    assert_eq!(r.body["error"]["details"]["status"], "picked_up");
    assert_eq!(app.events().await, before);
}

#[tokio::test]
async fn return_with_partial_refund_splits_the_escrow_and_restocks() {
    let app = spawn().await;
    let (seller, buyer, courier, listing, order) = picked_up(&app, "premium", 1).await;
    app.post(&courier, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    app.post(&buyer, &format!("/v1/orders/{order}/return"), json!({ "reason": "ekrani singan" })).await.ok();
    // The buyer can no longer confirm; the seller refunds 60 000 sum of 100 000.
    app.post(&buyer, &format!("/v1/orders/{order}/confirm"), json!({})).await.err(409, "invalid_transition");
    app.post(&buyer, &format!("/v1/orders/{order}/refund"), json!({ "amount": 6_000_000 })).await.err(403, "forbidden");
    app.post(&seller, &format!("/v1/orders/{order}/refund"), json!({ "amount": 6_000_000 })).await.ok();

    let kept = PRICE - 6_000_000;
    let commission = kept * 8 / 100;
    assert_eq!(app.balance(buyer.id).await, (30_000_000 - PRICE - CHILONZOR_FEE + 6_000_000, 0));
    assert_eq!(app.balance(seller.id).await, (kept - commission, 0));
    assert_eq!(app.balance(courier.id).await, (CHILONZOR_FEE, 0), "the courier did deliver");
    assert_eq!(app.platform(PlatformAccount::Revenue).await, commission);
    assert_eq!(order_status(&app, order).await, order::Status::Returned);
    assert_eq!(stock(&app, listing).await, 3, "returned goods are back in stock");
    app.assert_books_balance().await;
}

#[tokio::test]
async fn game_account_deal_with_dispute_resolved_by_split() {
    let app = spawn().await;
    let (seller, buyer, admin) = (User::seller("pro"), User::buyer(), User::new("admin"));
    let listing = app.active_game_account(&seller, 50_000_000).await;
    app.deposit(&buyer, 50_000_000).await;
    let with_delivery = json!({
        "items": [{ "listing_id": listing, "quantity": 1 }],
        "delivery": { "district": "yunusobod", "address": "x" }
    });
    app.post(&buyer, "/v1/orders", with_delivery).await.err(422, "invalid_field");
    let order =
        app.post(&buyer, "/v1/orders", json!({ "items": [{ "listing_id": listing, "quantity": 1 }] })).await.ok().id();
    // Reserved: nobody else can order it.
    let other = User::buyer();
    let again = json!({ "items": [{ "listing_id": listing, "quantity": 1 }] });
    app.post(&other, "/v1/orders", again).await.err(409, "listing_not_active");

    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.post(&buyer, &format!("/v1/orders/{order}/deliver"), json!({})).await.err(403, "forbidden");
    app.post(&seller, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    assert_eq!(order_status(&app, order).await, order::Status::CredentialsDelivered);
    app.post(&buyer, &format!("/v1/orders/{order}/dispute"), json!({ "reason": "parol ishlamadi" })).await.ok();
    app.post(&buyer, &format!("/v1/orders/{order}/confirm"), json!({})).await.err(409, "invalid_transition");
    let split = json!({ "outcome": "split", "to_buyer": 20_000_000 });
    app.post(&seller, &format!("/v1/orders/{order}/resolve"), split.clone()).await.err(403, "forbidden");
    app.post(&admin, &format!("/v1/orders/{order}/resolve"), split).await.ok();

    let commission = 30_000_000 * 5 / 100;
    assert_eq!(app.balance(buyer.id).await, (20_000_000, 0));
    assert_eq!(app.balance(seller.id).await, (30_000_000 - commission, 0));
    assert_eq!(app.platform(PlatformAccount::Revenue).await, commission);
    assert_eq!(order_status(&app, order).await, order::Status::Completed);
    match app.load::<ListingAggregate>(listing).await {
        listing::State::Exists(l) => assert_eq!(l.status, listing::Status::Sold),
        _ => panic!(),
    }
    app.assert_books_balance().await;
}

#[tokio::test]
async fn orders_that_cannot_be_placed_or_paid_append_nothing() {
    let app = spawn().await;
    let (seller, other_seller, buyer) = (User::seller("free"), User::seller("free"), User::buyer());
    let product = app.active_product(&seller, PRICE, 3).await;
    let foreign = app.active_product(&other_seller, PRICE, 3).await;
    let classified = app
        .activate(
            &seller,
            json!({ "title": "Chevrolet Cobalt 2021", "category": "cars", "price": 13_000_000_000i64,
                    "attributes": { "year": "2021", "mileage_km": "40000" },
                    "details": { "kind": "classified", "contact_phone": "+998901234567" } }),
        )
        .await;
    let delivery = json!({ "district": "chilonzor", "address": "a" });
    let before = app.events().await;
    let cases = [
        (
            &buyer,
            json!({ "items": [{ "listing_id": classified, "quantity": 1 }], "delivery": delivery }),
            422,
            "listing_not_orderable",
        ),
        (
            &seller,
            json!({ "items": [{ "listing_id": product, "quantity": 1 }], "delivery": delivery }),
            403,
            "forbidden",
        ),
        (
            &buyer,
            json!({ "items": [{ "listing_id": product, "quantity": 5 }], "delivery": delivery }),
            409,
            "insufficient_stock",
        ),
        (
            &buyer,
            json!({ "items": [{ "listing_id": product, "quantity": 1 }, { "listing_id": foreign, "quantity": 1 }], "delivery": delivery }),
            422,
            "mixed_sellers",
        ),
        (
            &buyer,
            json!({ "items": [{ "listing_id": Uuid::new_v4(), "quantity": 1 }], "delivery": delivery }),
            404,
            "listing_not_found",
        ),
        (&buyer, json!({ "items": [{ "listing_id": product, "quantity": 1 }] }), 422, "invalid_field"),
        (
            &buyer,
            json!({ "items": [{ "listing_id": product, "quantity": 1 }], "delivery": { "district": "moscow", "address": "a" } }),
            422,
            "invalid_field",
        ),
        (
            &buyer,
            json!({ "items": [{ "listing_id": product, "quantity": 0 }], "delivery": delivery }),
            422,
            "invalid_field",
        ),
        (&buyer, json!({ "items": [], "delivery": delivery }), 422, "invalid_field"),
    ];
    for (who, body, status, code) in cases {
        app.post(who, "/v1/orders", body.clone()).await.err(status, code);
    }
    assert_eq!(app.events().await, before, "no refused order appended anything");

    let order = place_delivery(&app, &buyer, product, 1).await;
    let before = app.events().await;
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.err(409, "insufficient_funds");
    app.post(&User::buyer(), &format!("/v1/orders/{order}/pay"), json!({})).await.err(403, "forbidden");
    app.post(&buyer, &format!("/v1/orders/{}/pay", Uuid::new_v4()), json!({})).await.err(404, "order_not_found");
    app.accept(&seller, order).await.err(409, "invalid_transition");
    assert_eq!(app.events().await, before);
}

#[tokio::test]
async fn only_the_assigned_courier_moves_the_order() {
    let app = spawn().await;
    let (seller, buyer, courier) = (User::seller("free"), User::buyer(), app.courier("chilonzor").await);
    let listing = app.active_product(&seller, PRICE, 3).await;
    app.deposit(&buyer, 30_000_000).await;
    let order = place_delivery(&app, &buyer, listing, 1).await;
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.accept(&seller, order).await.ok();
    // A buyer cannot take the order as a courier; a courier cannot assign someone else.
    app.post(&buyer, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.err(403, "forbidden");
    let other = app.courier("chilonzor").await;
    let body = json!({ "courier_id": other.id });
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), body).await.err(403, "forbidden");
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.ok();
    let before = app.events().await;
    app.post(&other, &format!("/v1/orders/{order}/pick-up"), json!({})).await.err(403, "forbidden");
    app.post(&courier, &format!("/v1/orders/{order}/deliver"), json!({})).await.err(409, "invalid_transition");
    assert_eq!(app.events().await, before);
    app.post(&courier, &format!("/v1/orders/{order}/pick-up"), json!({})).await.ok();
    app.post(&other, &format!("/v1/orders/{order}/deliver"), json!({})).await.err(403, "forbidden");
    app.post(&courier, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    app.post(&seller, &format!("/v1/orders/{order}/confirm"), json!({})).await.err(403, "forbidden");
}

/// Paying an order and its steps up to the pick-up read the order, its escrow and the wallets
/// they move, not the order's listing: a listing holds every open order's reservation, one of
/// the largest states a command can read. Here the listing cannot be read, and they all still
/// succeed; a cancel, which gives the stock back, reads it and is refused.
#[tokio::test]
async fn paying_an_order_and_its_steps_to_the_pick_up_never_read_its_listing() {
    let app = spawn().await;
    let (seller, buyer, courier) = (User::seller("pro"), User::buyer(), app.courier("chilonzor").await);
    let listing = app.active_product(&seller, PRICE, 3).await;
    app.deposit(&buyer, 30_000_000).await;
    let order = place_delivery(&app, &buyer, listing, 1).await;
    app.unreadable_listing(listing).await;
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.accept(&seller, order).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/pick-up"), json!({})).await.ok();
    assert_eq!(order_status(&app, order).await, order::Status::PickedUp);
    let total = PRICE + CHILONZOR_FEE;
    assert_eq!(app.balance(buyer.id).await, (30_000_000 - total, total), "paid money is held");
    app.post(&buyer, &format!("/v1/orders/{order}/cancel"), json!({ "reason": "kech" })).await.err(500, "internal");
}
