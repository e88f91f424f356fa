//! The hostile user's findings (issue 10), each replayed as it was found: stream ids chosen to
//! collide with derived ones, requests that held pooled connections, a replayed credentials
//! reveal, forged proxy headers, NUL bytes, self-moderation and expired idempotency keys.

use std::time::Duration;

use bozor_api::configuration::Settings;
use bozor_commands::testing::fresh_database;
use bozor_domain::flows::escrow_id_for;
use bozor_domain::wallet::{self, PlatformAccount};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{spawn, spawn_on, token_for, Reply, TestApp, User};

const PRICE: i64 = 2_000_000;

async fn order_of(app: &TestApp, buyer: &User, listing: Uuid, id: Option<Uuid>) -> Reply {
    let mut body = json!({ "items": [{ "listing_id": listing, "quantity": 1 }],
                           "delivery": { "district": "chilonzor", "address": "Qatortol 7" } });
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    app.post(buyer, "/v1/orders", body).await
}

/// Ids derived by bozor (wallets, escrows, platform shards) are version 5: a client cannot
/// create a stream there. A client id that belongs to a stream of another type is taken
/// (409), and commands addressed to it see no such resource (404). The victims' money flows
/// keep working afterwards.
#[tokio::test]
async fn client_chosen_ids_cannot_create_block_or_shadow_another_stream() {
    let app = spawn().await;
    let (seller, victim, attacker) = (User::seller("free"), User::buyer(), User::buyer());
    let listing = app.active_product(&seller, PRICE, 10).await;
    app.deposit(&victim, 10 * PRICE).await;
    app.deposit(&attacker, 10 * PRICE).await;
    let victims_order = order_of(&app, &victim, listing, None).await.ok().id();
    app.post(&victim, &format!("/v1/orders/{victims_order}/pay"), json!({})).await.ok();

    let before = app.events().await;
    let derived = [
        wallet::user_wallet_id(seller.id),
        escrow_id_for(victims_order),
        wallet::platform_wallet_id(PlatformAccount::ProviderClearing, 3),
        wallet::platform_wallet_id(PlatformAccount::PayoutClearing, 0),
        wallet::platform_wallet_id(PlatformAccount::Revenue, 7),
        Uuid::nil(),
        Uuid::from_u128(0x0000_0000_0000_1000_8000_0000_0000_0001), // version 1
    ];
    for id in derived {
        let r = order_of(&app, &attacker, listing, Some(id)).await;
        r.err(422, "invalid_field");
        assert_eq!(r.body["error"]["details"]["field"], "id");
        let listing_body =
            json!({ "id": id, "title": "x", "category": "c", "price": 1, "details": { "kind": "classified" } });
        app.post(&seller, "/v1/listings", listing_body).await.err(422, "invalid_field");
        let withdrawal = json!({ "id": id, "amount": 100, "card_last4": "4242" });
        app.post(&attacker, &format!("/v1/wallets/{}/withdrawals", attacker.id), withdrawal)
            .await
            .err(422, "invalid_field");
    }
    // Random ids that are another type's stream: taken, and not that resource.
    order_of(&app, &attacker, listing, Some(listing)).await.err(409, "already_exists");
    let shadow =
        json!({ "id": victims_order, "title": "x", "category": "c", "price": 1, "details": { "kind": "classified" } });
    app.post(&seller, "/v1/listings", shadow).await.err(409, "already_exists");
    app.post(&attacker, &format!("/v1/orders/{listing}/pay"), json!({})).await.err(404, "order_not_found");
    app.post(&seller, &format!("/v1/listings/{victims_order}/submit"), json!({})).await.err(404, "listing_not_found");
    assert_eq!(app.events().await, before, "none of it wrote anything");

    // The victims' streams still work: a deposit to the seller, a cancel, a new sale.
    app.deposit(&seller, 1_000).await;
    let r = app.post(&victim, &format!("/v1/orders/{victims_order}/cancel"), json!({ "reason": "later" })).await;
    r.ok();
    assert_eq!(app.balance(victim.id).await, (10 * PRICE, 0));
    let next = order_of(&app, &attacker, listing, Some(Uuid::new_v4())).await.ok().id();
    app.post(&attacker, &format!("/v1/orders/{next}/pay"), json!({})).await.ok();
    // A time-ordered random id (version 7) is a random id too.
    let mut v7 = *Uuid::new_v4().as_bytes();
    v7[6] = (v7[6] & 0x0f) | 0x70;
    let w = json!({ "id": Uuid::from_bytes(v7), "amount": 100, "card_last4": "4242" });
    app.post(&attacker, &format!("/v1/wallets/{}/withdrawals", attacker.id), w).await.ok();
    app.assert_books_balance().await;
}

/// Waiting for `min_position` holds no pooled connection, a position beyond the store's head
/// answers at once, and a full pool answers 503 with Retry-After instead of queueing.
#[tokio::test]
async fn waiting_queries_hold_no_connection_and_a_full_pool_answers_503() {
    let db = fresh_database().await;
    let mut settings = Settings::development(&db.url);
    settings.db_pool_max = 2;
    settings.db_pool_wait = Duration::from_millis(300);
    // No projectors: every read model stays behind, so queries wait their full 2 s.
    let app = spawn_on(db, settings, false).await;
    let seller = User::seller("free");
    let body = json!({ "title": "Stol", "category": "furniture", "price": PRICE, "details": { "kind": "classified" } });
    let created = app.post(&seller, "/v1/listings", body.clone()).await.ok();
    let pos = created.body["position"].as_i64().unwrap();

    app.get(&format!("/v1/listings?min_position={}", 9_000_000_000_000_000_000i64)).await.err(400, "invalid_query");
    let waiting: Vec<_> = (0..16)
        .map(|_| {
            let (http, url) =
                (app.http.clone(), format!("{}/v1/listings?min_position={pos}&kind=classified", app.base));
            tokio::spawn(async move { http.get(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 16 queries wait on a pool of 2; the pool still serves others.
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status.as_u16(), 200, "{}", ready.body);
    app.post(&seller, "/v1/listings", body).await.ok();
    for w in waiting {
        assert_eq!(w.await.unwrap(), 409, "each answered projection_behind after its wait");
    }

    // A pool that stays full answers 503 with Retry-After.
    let pool = bozor_commands::db::pool_for_requests(&app.db.url, 1, Duration::from_millis(100)).unwrap();
    let held = pool.get().await.unwrap();
    let timeout = pool.get().await.expect_err("the only connection is held");
    let answer = bozor_api::routes::unavailable(timeout);
    assert_eq!((answer.code, answer.retry_after_seconds), ("unavailable", Some(1)));
    drop(held);
}

/// Queries are limited per client address, signed in or not.
#[tokio::test]
async fn queries_are_limited_per_address() {
    let db = fresh_database().await;
    let mut settings = Settings::development(&db.url);
    settings.auth.rate.queries_per_ip = 3;
    let app = spawn_on(db, settings, true).await;
    for _ in 0..3 {
        app.get("/v1/listings").await.ok();
    }
    let r = app.get("/v1/listings?kind=product").await;
    r.err(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(app.get("/healthz").await.status.as_u16(), 200, "health checks are not queries");
}

/// Behind one trusted proxy, the client is the last `X-Forwarded-For` hop: rotating the first
/// hop or a `Forwarded` header does not buy a fresh bucket; another last hop does.
#[tokio::test]
async fn forged_forwarding_headers_do_not_escape_the_limits() {
    let db = fresh_database().await;
    let mut settings = Settings::development(&db.url);
    settings.auth.rate.queries_per_ip = 2;
    settings.auth.trust_proxy_hops = 1;
    let app = spawn_on(db, settings, true).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let forged = format!("10.9.{i}.1, 203.0.113.7");
        let forwarded = format!("for=198.51.100.{i}");
        let r = app
            .get_with("/v1/listings", &[("X-Forwarded-For", forged.as_str()), ("Forwarded", forwarded.as_str())])
            .await;
        statuses.push(r.status.as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    let other = app.get_with("/v1/listings", &[("X-Forwarded-For", "203.0.113.8")]).await;
    assert_eq!(other.status.as_u16(), 200, "another client behind the proxy has its own bucket");
    // IPv6 clients count by their /64.
    let a = app.get_with("/v1/listings", &[("X-Forwarded-For", "2001:db8:1:2::a")]).await;
    let b = app.get_with("/v1/listings", &[("X-Forwarded-For", "2001:db8:1:2::b")]).await;
    let c = app.get_with("/v1/listings", &[("X-Forwarded-For", "2001:db8:1:2:ffff::c")]).await;
    assert_eq!([a.status.as_u16(), b.status.as_u16(), c.status.as_u16()], [200, 200, 429]);
}

async fn reveals(app: &TestApp, listing: Uuid) -> i64 {
    app.db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'CredentialsRevealed'",
            &[&listing],
        )
        .await
        .unwrap()
        .get(0)
}

/// A reveal replayed with its Idempotency-Key is decided and recorded anew: a caller who may
/// no longer read gets 403, and a caller who may reads the current credentials, recorded.
#[tokio::test]
async fn a_replayed_reveal_is_checked_and_recorded_again() {
    let app = spawn().await;
    let seller = User::seller("free");
    let listing = app.active_game_account(&seller, PRICE).await;
    let person = Uuid::new_v4();
    let as_admin = User { id: person, header: format!("Bearer {}", token_for(person, "admin", None, None)) };
    let path = format!("/v1/listings/{listing}/credentials/reveal");
    let key = [("Idempotency-Key", "reveal-1")];
    let first = app.post_with(&as_admin, &path, json!({}), &key).await.ok();
    assert_eq!(first.body["login"], crate::support::GAME_LOGIN);
    assert_eq!(reveals(&app, listing).await, 1);

    let replaced = json!({ "login": "new_owner", "password": "N3w-Pa55" });
    app.post(&seller, &format!("/v1/listings/{listing}/credentials"), replaced).await.ok();
    let as_buyer = User { id: person, header: format!("Bearer {}", token_for(person, "buyer", None, None)) };
    app.post_with(&as_buyer, &path, json!({}), &key).await.err(403, "forbidden");
    assert_eq!(reveals(&app, listing).await, 1, "a refused reveal records nothing");

    let again = app.post_with(&as_admin, &path, json!({}), &key).await.ok();
    assert_eq!(again.body["login"], "new_owner", "what the recorded reveal decided on");
    assert!(again.headers.get("idempotent-replayed").is_none());
    assert_eq!(reveals(&app, listing).await, 2, "every reveal that returns a secret is recorded");
}

/// NUL characters, which PostgreSQL cannot store in text, are refused at the edge with 4xx.
#[tokio::test]
async fn nul_bytes_are_refused_at_the_edge() {
    let app = spawn().await;
    let (seller, admin) = (User::seller("free"), User::new("admin"));
    let before = app.events().await;
    let nul = |field: &str| {
        let mut body = json!({ "title": "Stol", "description": "d", "category": "furniture", "price": 100,
                               "details": { "kind": "classified" } });
        body[field] = json!("bad\u{0}text");
        body
    };
    for field in ["title", "description", "category"] {
        app.post(&seller, "/v1/listings", nul(field)).await.err(422, "invalid_body");
    }
    let deposit = json!({ "amount": 100, "provider_tx_id": "tx\u{0}1" });
    app.post(&admin, &format!("/v1/wallets/{}/deposit", seller.id), deposit).await.err(422, "invalid_body");
    let headers = [("Authorization", seller.header.as_str()), ("Content-Type", "application/json")];
    let key_nul = app.raw("/v1/listings", &headers, br#"{"ti\u0000tle": "x"}"#.to_vec()).await;
    key_nul.err(422, "invalid_body");
    assert_eq!(app.events().await, before);
    for q in ["/v1/listings?category=%00", "/v1/listings?game=a%00b", "/v1/listings?status=%00"] {
        app.get(q).await.err(400, "invalid_query");
    }
    let support = User::new("support");
    app.get_as(&support, "/v1/orders?status=%00").await.err(400, "invalid_query");
}

/// Nobody moderates their own listing or resolves a dispute they are party to.
#[tokio::test]
async fn staff_cannot_moderate_or_judge_their_own_business() {
    let app = spawn().await;
    let id = Uuid::new_v4();
    let staff_seller =
        User { id, header: format!("Bearer {}", token_for(id, "seller,support,admin", Some("free"), None)) };
    let body = json!({ "title": "Stol", "category": "furniture", "price": 100, "details": { "kind": "classified" } });
    let listing = app.post(&staff_seller, "/v1/listings", body).await.ok().id();
    app.post(&staff_seller, &format!("/v1/listings/{listing}/submit"), json!({})).await.ok();
    app.post(&staff_seller, &format!("/v1/listings/{listing}/approve"), json!({})).await.err(403, "forbidden");
    let reject = json!({ "reason": "mine" });
    app.post(&staff_seller, &format!("/v1/listings/{listing}/reject"), reject).await.err(403, "forbidden");
    app.post(&User::new("support"), &format!("/v1/listings/{listing}/approve"), json!({})).await.ok();

    let game = app.active_game_account(&staff_seller, PRICE).await;
    let buyer = User::buyer();
    app.deposit(&buyer, 2 * PRICE).await;
    let order =
        app.post(&buyer, "/v1/orders", json!({ "items": [{ "listing_id": game, "quantity": 1 }] })).await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.post(&staff_seller, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    app.post(&buyer, &format!("/v1/orders/{order}/dispute"), json!({ "reason": "wrong rank" })).await.ok();
    let resolve = json!({ "outcome": "release" });
    app.post(&staff_seller, &format!("/v1/orders/{order}/resolve"), resolve.clone()).await.err(403, "forbidden");
    app.post(&User::new("admin"), &format!("/v1/orders/{order}/resolve"), json!({ "outcome": "refund" })).await.ok();
}

/// An idempotency record answers retries for 24 hours; after that the key is a new request,
/// and the server prunes expired records.
#[tokio::test]
async fn idempotency_records_expire_after_a_day_and_are_pruned() {
    let app = spawn().await;
    let seller = User::seller("free");
    let body = |title: &str| -> Value {
        json!({ "title": title, "category": "furniture", "price": 100, "details": { "kind": "classified" } })
    };
    let key = [("Idempotency-Key", "create-1")];
    let first = app.post_with(&seller, "/v1/listings", body("Stol"), &key).await.ok();
    app.post_with(&seller, "/v1/listings", body("Stul"), &key).await.err(422, "idempotency_key_reused");
    let c = app.db.client().await;
    c.execute("UPDATE idempotency_keys SET created_at = created_at - interval '25 hours'", &[]).await.unwrap();
    let fresh = app.post_with(&seller, "/v1/listings", body("Stul"), &key).await.ok();
    assert_ne!(fresh.id(), first.id(), "an expired key is a new request");
    let replay = app.post_with(&seller, "/v1/listings", body("Stul"), &key).await.ok();
    assert_eq!(replay.id(), fresh.id(), "and its new record answers retries again");

    let other = [("Idempotency-Key", "create-2")];
    app.post_with(&seller, "/v1/listings", body("Shkaf"), &other).await.ok();
    c.execute("UPDATE idempotency_keys SET created_at = created_at - interval '25 hours' WHERE key = 'create-2'", &[])
        .await
        .unwrap();
    assert_eq!(app.store.prune_idempotency(1_000).await.unwrap(), 1);
    let left: i64 = c.query_one("SELECT count(*) FROM idempotency_keys", &[]).await.unwrap().get(0);
    assert_eq!(left, 1);
}

/// A withdrawal id is the client's choice: two users may pick the same one, and neither stops
/// the wallets read model for anyone; one user cannot use an id twice.
#[tokio::test]
async fn a_shared_withdrawal_id_stops_nothing_and_an_id_is_used_once() {
    let app = spawn().await;
    let (a, b, admin) = (User::buyer(), User::buyer(), User::new("admin"));
    app.deposit(&a, 10_000).await;
    app.deposit(&b, 10_000).await;
    let id = Uuid::new_v4();
    let body = json!({ "id": id, "amount": 100, "card_last4": "4242" });
    app.post(&a, &format!("/v1/wallets/{}/withdrawals", a.id), body.clone()).await.ok();
    let r = app.post(&b, &format!("/v1/wallets/{}/withdrawals", b.id), body.clone()).await.ok();
    let done = app.post(&admin, &format!("/v1/wallets/{}/withdrawals/{id}/complete", a.id), json!({})).await.ok();
    app.post(&a, &format!("/v1/wallets/{}/withdrawals", a.id), body).await.err(409, "already_exists");
    let after = done.body["position"].as_i64().unwrap().max(r.body["position"].as_i64().unwrap());
    let mine = app.get_as(&a, &format!("/v1/wallets/{}/withdrawals?min_position={after}", a.id)).await.ok();
    let theirs = app.get_as(&b, &format!("/v1/wallets/{}/withdrawals?min_position={after}", b.id)).await.ok();
    assert_eq!(
        (mine.body["items"][0]["status"].as_str(), theirs.body["items"][0]["status"].as_str()),
        (Some("completed"), Some("pending"))
    );
    let state: String = app
        .db
        .client()
        .await
        .query_one("SELECT state FROM projection_checkpoints WHERE projection = 'wallets'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "live");
}

/// A courier whose token names no district sees no district's open orders.
#[tokio::test]
async fn a_courier_without_a_district_sees_no_open_orders() {
    let app = spawn().await;
    let courier = User::new("courier");
    app.get_as(&courier, "/v1/orders?district=chilonzor").await.err(403, "forbidden");
    app.get_as(&app.courier("chilonzor").await, "/v1/orders?district=chilonzor").await.ok();
}
