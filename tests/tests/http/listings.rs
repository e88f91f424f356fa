use bozor_domain::listing::{self, ListingAggregate, Status};
use bozor_domain::wallet::PlatformAccount;
use serde_json::json;
use uuid::Uuid;

use crate::support::{spawn, TestApp, User};

async fn listing(app: &TestApp, id: Uuid) -> listing::Listing {
    match app.load::<ListingAggregate>(id).await {
        listing::State::Exists(l) => *l,
        listing::State::Initial => panic!("listing {id} missing"),
    }
}

fn draft() -> serde_json::Value {
    json!({
        "title": "2 xonali kvartira, Yunusobod", "description": "Kvartira sotiladi, 3-qavat",
        "category": "real_estate", "price": 6_500_000_000i64,
        "attributes": { "rooms": "2", "area_m2": "54", "floor": "3" },
        "details": { "kind": "classified", "contact_phone": "+998901112233" }
    })
}

#[tokio::test]
async fn listing_goes_through_moderation_edits_and_price_changes() {
    let app = spawn().await;
    let (seller, support) = (User::seller("free"), User::new("support"));
    let created = app.post(&seller, "/v1/listings", draft()).await.ok();
    assert_eq!(created.status.as_u16(), 201);
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.headers["etag"], "\"1\"");
    let id = created.id();
    assert_eq!(listing(&app, id).await.status, Status::Draft);

    app.post(&support, &format!("/v1/listings/{id}/approve"), json!({})).await.err(409, "invalid_transition");
    app.post(&seller, &format!("/v1/listings/{id}/submit"), json!({})).await.ok();
    app.post(&seller, &format!("/v1/listings/{id}/approve"), json!({})).await.err(403, "forbidden");
    app.post(&support, &format!("/v1/listings/{id}/reject"), json!({ "reason": "rasm yo'q" })).await.ok();
    assert_eq!(listing(&app, id).await.status, Status::Rejected { reason: "rasm yo'q".into() });

    // Editing a rejected listing sends it back to moderation.
    let edit = json!({ "images": ["img/flat-1.jpg"], "price": 6_300_000_000i64 });
    let r = app.post(&seller, &format!("/v1/listings/{id}/update"), edit).await.ok();
    assert_eq!(r.body["version"], 6, "update, resubmission and price change");
    let l = listing(&app, id).await;
    assert_eq!(l.status, Status::Pending);
    assert_eq!((l.price.tiyin(), l.original_price.tiyin()), (6_300_000_000, 6_500_000_000));
    app.post(&support, &format!("/v1/listings/{id}/approve"), json!({})).await.ok();

    // A price-only change keeps an active listing active and the original price.
    app.post(&seller, &format!("/v1/listings/{id}/update"), json!({ "price": 6_000_000_000i64 })).await.ok();
    let l = listing(&app, id).await;
    assert_eq!((l.status, l.price.tiyin(), l.original_price.tiyin()), (Status::Active, 6_000_000_000, 6_500_000_000));

    let stranger = User::seller("free");
    let before = app.events().await;
    app.post(&stranger, &format!("/v1/listings/{id}/update"), json!({ "title": "mine" })).await.err(403, "forbidden");
    app.post(&stranger, &format!("/v1/listings/{id}/archive"), json!({})).await.err(403, "forbidden");
    app.post(&seller, &format!("/v1/listings/{id}/update"), json!({})).await.err(422, "invalid_field");
    app.post(&seller, &format!("/v1/listings/{id}/update"), json!({ "title": " " })).await.err(422, "invalid_field");
    assert_eq!(app.events().await, before);

    app.post(&seller, &format!("/v1/listings/{id}/archive"), json!({})).await.ok();
    app.post(&seller, &format!("/v1/listings/{id}/archive"), json!({})).await.err(409, "invalid_transition");
    app.post(&seller, &format!("/v1/listings/{id}/delete"), json!({})).await.ok();
    app.post(&seller, &format!("/v1/listings/{id}/submit"), json!({})).await.err(404, "listing_not_found");
}

#[tokio::test]
async fn only_admins_block_and_any_status_can_be_blocked() {
    let app = spawn().await;
    let seller = User::seller("free");
    let id = app.post(&seller, "/v1/listings", draft()).await.ok().id();
    let before = app.events().await;
    for who in [&seller, &User::new("support"), &User::buyer()] {
        app.post(who, &format!("/v1/listings/{id}/block"), json!({ "reason": "spam" })).await.err(403, "forbidden");
    }
    assert_eq!(app.events().await, before);
    let admin = User::new("admin");
    app.post(&admin, &format!("/v1/listings/{id}/block"), json!({ "reason": "" })).await.err(422, "invalid_field");
    app.post(&admin, &format!("/v1/listings/{id}/block"), json!({ "reason": "spam" })).await.ok();
    assert_eq!(listing(&app, id).await.status, Status::Blocked { reason: "spam".into() });
    app.post(&admin, &format!("/v1/listings/{id}/block"), json!({ "reason": "x" }))
        .await
        .err(409, "invalid_transition");
}

#[tokio::test]
async fn creating_refuses_bad_content_and_non_sellers() {
    let app = spawn().await;
    let seller = User::seller("free");
    let mut no_title = draft();
    no_title["title"] = json!("");
    let mut zero = draft();
    zero["price"] = json!(0);
    let mut dup_skus = draft();
    dup_skus["details"] =
        json!({ "kind": "product", "variants": [{ "sku": "a", "stock": 1 }, { "sku": "a", "stock": 2 }] });
    let mut no_game = draft();
    no_game["details"] = json!({ "kind": "game_account", "game": "", "level": 1 });
    for body in [no_title, zero, dup_skus, no_game] {
        app.post(&seller, "/v1/listings", body).await.err(422, "invalid_field");
    }
    app.post(&User::buyer(), "/v1/listings", draft()).await.err(403, "forbidden");
    let mut fixed = draft();
    let id = Uuid::new_v4();
    fixed["id"] = json!(id);
    app.post(&seller, "/v1/listings", fixed.clone()).await.ok();
    app.post(&seller, "/v1/listings", fixed).await.err(409, "already_exists");
    assert_eq!(app.events().await, 1);
}

#[tokio::test]
async fn promotion_is_paid_from_the_sellers_wallet_to_revenue() {
    let app = spawn().await;
    let seller = User::seller("free");
    let id = app.activate(&seller, draft()).await;
    let path = format!("/v1/listings/{id}/promote");
    app.post(&seller, &path, json!({ "tier": "vip", "days": 3 })).await.err(409, "insufficient_funds");
    app.deposit(&seller, 5_000_000).await;
    app.post(&seller, &path, json!({ "tier": "vip", "days": 31 })).await.err(422, "invalid_field");
    app.post(&seller, &path, json!({ "tier": "gold", "days": 3 })).await.err(422, "invalid_body");
    app.post(&User::seller("free"), &path, json!({ "tier": "top", "days": 1 })).await.err(403, "forbidden");
    app.post(&seller, &path, json!({ "tier": "vip", "days": 3 })).await.ok();
    assert_eq!(app.balance(seller.id).await, (500_000, 0), "3 days of VIP at 15 000 sum");
    assert_eq!(app.platform(PlatformAccount::Revenue).await, 4_500_000);
    assert!(listing(&app, id).await.promoted.is_some());
    app.assert_books_balance().await;
}
