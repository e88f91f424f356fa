//! Who may do what: every command and query tried by callers who must be refused (other
//! users, wrong roles, non-owners, no token at all), each refused with its code and nothing
//! appended; and the callers who may, allowed.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{spawn, TestApp, User};

/// Everyone in the world of the test.
struct World {
    seller: User,
    other_seller: User,
    buyer: User,
    other_buyer: User,
    courier: User,
    other_courier: User,
    support: User,
    admin: User,
    auditor: User,
    listing: Uuid,
    draft: Uuid,
    game: Uuid,
    /// A delivery order of `listing` by `buyer`, assigned to `courier`.
    order: Uuid,
    /// An order of `listing` by `buyer`, placed, not paid.
    placed: Uuid,
    /// An order of `game` by `buyer`, paid and delivered.
    game_order: Uuid,
    withdrawal: Uuid,
}

async fn world(app: &TestApp) -> World {
    let (seller, buyer, courier) = (User::seller("free"), User::buyer(), app.courier("chilonzor").await);
    let listing = app.active_product(&seller, 1_000_000, 10).await;
    let game = app.active_game_account(&seller, 2_000_000).await;
    let draft_body =
        json!({ "title": "Qoralama", "category": "misc", "price": 100, "details": { "kind": "classified" } });
    let draft = app.post(&seller, "/v1/listings", draft_body).await.ok().id();
    app.deposit(&buyer, 100_000_000).await;
    let place = |id: Uuid, delivery: bool| {
        let mut body = json!({ "items": [{ "listing_id": id, "quantity": 1 }] });
        if delivery {
            body["delivery"] = json!({ "district": "chilonzor", "address": "Qatortol 7" });
        }
        body
    };
    let order = app.post(&buyer, "/v1/orders", place(listing, true)).await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.accept(&seller, order).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.ok();
    let placed = app.post(&buyer, "/v1/orders", place(listing, true)).await.ok().id();
    let game_order = app.post(&buyer, "/v1/orders", place(game, false)).await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{game_order}/pay"), json!({})).await.ok();
    app.post(&seller, &format!("/v1/orders/{game_order}/deliver"), json!({})).await.ok();
    let withdrawal = app
        .post(
            &buyer,
            &format!("/v1/wallets/{}/withdrawals", buyer.id),
            json!({ "amount": 1_000, "card_last4": "4242" }),
        )
        .await
        .ok()
        .id();
    World {
        other_seller: User::seller("pro"),
        other_buyer: User::buyer(),
        other_courier: User::courier("yunusobod"),
        support: User::new("support"),
        admin: User::new("admin"),
        auditor: User::new("auditor"),
        seller,
        buyer,
        courier,
        listing,
        draft,
        game,
        order,
        placed,
        game_order,
        withdrawal,
    }
}

/// A command's path, body, and the callers it must refuse with 403.
type Case<'a> = (String, Value, Vec<&'a User>);

fn commands(w: &World) -> Vec<Case<'_>> {
    let (l, g, o, b) = (w.listing, w.game, w.order, w.buyer.id);
    let reason = json!({ "reason": "test" });
    let pickup = json!({ "pickup": { "district": "yunusobod", "address": "Amir Temur 108" } });
    vec![
        (
            "/v1/listings".into(),
            json!({ "title": "x", "category": "c", "price": 1, "details": { "kind": "classified" } }),
            vec![&w.other_buyer, &w.courier, &w.support, &w.auditor, &w.admin],
        ),
        (
            format!("/v1/listings/{l}/update"),
            json!({ "price": 5 }),
            vec![&w.other_seller, &w.buyer, &w.support, &w.admin],
        ),
        (format!("/v1/listings/{l}/submit"), json!({}), vec![&w.other_seller, &w.buyer]),
        (format!("/v1/listings/{l}/archive"), json!({}), vec![&w.other_seller, &w.buyer, &w.admin]),
        (format!("/v1/listings/{l}/promote"), json!({ "tier": "top", "days": 1 }), vec![&w.other_seller, &w.buyer]),
        (format!("/v1/listings/{l}/approve"), json!({}), vec![&w.seller, &w.buyer, &w.courier, &w.auditor]),
        (format!("/v1/listings/{l}/reject"), reason.clone(), vec![&w.seller, &w.buyer, &w.auditor]),
        (format!("/v1/listings/{l}/block"), reason.clone(), vec![&w.support, &w.seller, &w.buyer, &w.auditor]),
        (format!("/v1/listings/{l}/delete"), json!({}), vec![&w.other_seller, &w.buyer, &w.support, &w.auditor]),
        (
            format!("/v1/listings/{g}/credentials"),
            json!({ "login": "a", "password": "b" }),
            vec![&w.other_seller, &w.buyer, &w.admin],
        ),
        (
            format!("/v1/listings/{g}/credentials/reveal"),
            json!({ "order_id": w.game_order }),
            vec![&w.other_buyer, &w.seller, &w.other_seller, &w.support, &w.auditor, &w.courier],
        ),
        (
            format!("/v1/listings/{g}/credentials/erase"),
            json!({}),
            vec![&w.other_seller, &w.buyer, &w.support, &w.auditor],
        ),
        (format!("/v1/orders/{}/pay", w.placed), json!({}), vec![&w.other_buyer, &w.seller]),
        (format!("/v1/orders/{o}/accept"), pickup, vec![&w.other_seller, &w.buyer, &w.other_courier, &w.admin]),
        (format!("/v1/orders/{o}/assign-courier"), json!({}), vec![&w.buyer, &w.seller, &w.auditor]),
        (format!("/v1/orders/{o}/pick-up"), json!({}), vec![&w.other_courier, &w.buyer, &w.seller, &w.support]),
        (format!("/v1/orders/{o}/deliver"), json!({}), vec![&w.other_courier, &w.buyer, &w.seller]),
        (format!("/v1/orders/{o}/confirm"), json!({}), vec![&w.other_buyer, &w.seller, &w.courier]),
        (format!("/v1/orders/{o}/cancel"), reason.clone(), vec![&w.other_buyer, &w.other_courier, &w.auditor]),
        (format!("/v1/orders/{o}/return"), reason.clone(), vec![&w.other_buyer, &w.seller]),
        (format!("/v1/orders/{o}/refund"), json!({}), vec![&w.other_seller, &w.buyer, &w.support]),
        (format!("/v1/orders/{o}/dispute"), reason.clone(), vec![&w.other_buyer, &w.other_courier]),
        (format!("/v1/orders/{o}/resolve"), json!({ "outcome": "refund" }), vec![&w.support, &w.seller, &w.buyer]),
        (
            format!("/v1/wallets/{b}/deposit"),
            json!({ "amount": 1, "provider_tx_id": "t-1" }),
            vec![&w.support, &w.buyer, &w.auditor],
        ),
        (
            format!("/v1/wallets/{b}/withdrawals"),
            json!({ "amount": 1, "card_last4": "1234" }),
            vec![&w.other_buyer, &w.admin, &w.support],
        ),
        (
            format!("/v1/wallets/{b}/withdrawals/{}/complete", w.withdrawal),
            json!({}),
            vec![&w.support, &w.buyer, &w.auditor],
        ),
        (format!("/v1/wallets/{b}/withdrawals/{}/fail", w.withdrawal), json!({}), vec![&w.support, &w.buyer]),
        (format!("/v1/users/{b}/roles"), json!({ "role": "admin" }), vec![&w.buyer, &w.support, &w.auditor, &w.seller]),
        (format!("/v1/users/{b}/roles/seller/revoke"), json!({}), vec![&w.support, &w.buyer]),
        ("/v1/admin/projections/listings/rebuild".into(), json!({}), vec![&w.support, &w.auditor, &w.buyer]),
    ]
}

/// A query's path, the callers it refuses (403), and one it allows.
type Query<'a> = (String, Vec<&'a User>, &'a User);

fn queries(w: &World) -> Vec<Query<'_>> {
    let (o, b) = (w.order, w.buyer.id);
    vec![
        (
            format!("/v1/orders?buyer_id={b}"),
            vec![&w.other_buyer, &w.other_seller, &w.other_courier, &w.auditor],
            &w.support,
        ),
        (format!("/v1/orders?seller_id={}", w.seller.id), vec![&w.other_seller, &w.buyer], &w.seller),
        (format!("/v1/orders/{o}"), vec![&w.other_buyer, &w.other_seller, &w.other_courier], &w.courier),
        (format!("/v1/wallets/{b}"), vec![&w.other_buyer, &w.seller, &w.courier], &w.auditor),
        (format!("/v1/wallets/{b}/ledger"), vec![&w.other_buyer, &w.seller], &w.buyer),
        (format!("/v1/listings/{}", w.draft), vec![&w.other_buyer, &w.other_seller, &w.auditor], &w.seller),
        ("/v1/listings?status=pending".into(), vec![&w.buyer, &w.seller, &w.auditor], &w.support),
        ("/v1/orders?district=chilonzor".into(), vec![&w.other_courier, &w.buyer, &w.seller, &w.auditor], &w.courier),
        ("/v1/audit/events".into(), vec![&w.buyer, &w.seller, &w.support, &w.courier], &w.auditor),
        ("/v1/admin/projections".into(), vec![&w.support, &w.auditor, &w.buyer], &w.admin),
        (
            "/v1/users?role=courier&district=chilonzor".into(),
            vec![&w.buyer, &w.seller, &w.courier, &w.auditor],
            &w.support,
        ),
    ]
}

#[tokio::test]
async fn every_command_refuses_callers_it_does_not_allow_and_appends_nothing() {
    let app = spawn().await;
    let w = world(&app).await;
    let before = app.events().await;
    let cases = commands(&w);
    // Every command in the policy table but place_order (open to all), plus the admin rebuild.
    assert_eq!(cases.len(), bozor_api::authz::COMMANDS.len(), "a new command needs its row here");
    for (path, body, refused) in &cases {
        for user in refused {
            let r = app.post(user, path, body.clone()).await;
            assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"), "{path} by {}: {}", user.header, r.body);
        }
        let anonymous = app.raw(path, &[("Content-Type", "application/json")], body.to_string().into_bytes()).await;
        anonymous.err(401, "unauthenticated");
    }
    let anonymous_order = json!({ "items": [{ "listing_id": w.listing, "quantity": 1 }] });
    app.raw("/v1/orders", &[("Content-Type", "application/json")], anonymous_order.to_string().into_bytes())
        .await
        .err(401, "unauthenticated");
    assert_eq!(app.events().await, before, "no refused command appended anything");
}

#[tokio::test]
async fn every_query_refuses_callers_it_does_not_allow_and_serves_those_it_does() {
    let app = spawn().await;
    let w = world(&app).await;
    // The read models must hold the world first: a detail not projected yet answers 404 to
    // everyone, which would say nothing about who may read it.
    let c = app.db.client().await;
    crate::support::wait_for("the projectors", 30, || async { crate::support::behind(&c).await == 0 }).await;
    for (path, refused, allowed) in queries(&w) {
        for user in refused {
            let r = app.get_as(user, &path).await;
            assert_eq!((r.status.as_u16(), r.code()), (403, "forbidden"), "{path} by {}: {}", user.header, r.body);
        }
        let r = app.get_as(allowed, &path).await;
        assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
        app.get(&path).await.err(401, "unauthenticated");
    }
    // Public reads need no token: active listings, their detail, sellers' stats.
    app.get("/v1/listings").await.ok();
    app.get(&format!("/v1/listings/{}", w.listing)).await.ok();
    app.get(&format!("/v1/sellers/{}/stats", w.seller.id)).await.ok();
    let detail = app.get(&format!("/v1/listings/{}", w.game)).await.ok();
    assert_eq!(detail.body["has_credentials"], true);
    assert!(detail.body.get("credentials").is_none(), "sealed credentials never leave through queries");
}
