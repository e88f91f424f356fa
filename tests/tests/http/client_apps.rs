//! What the client apps hit (issue 9): a cancel after the seller replaced variants, amounts at
//! the edges of i64, a panicking handler, courier assignment, stock and sold-out listings, and
//! the reads a courier, a seller, a buyer, staff and auditors need, with ETags.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use bozor_domain::wallet::PlatformAccount;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{bozor_bin, spawn, token_for, wait_for, Reply, TestApp, User};

const PRICE: i64 = 5_000_000;

fn product(stock: u32) -> Value {
    json!({
        "title": "iPhone 15", "category": "phones", "price": PRICE,
        "details": { "kind": "product", "variants": [{ "sku": "std", "label": "128GB", "stock": stock }] }
    })
}

async fn place(app: &TestApp, buyer: &User, listing: Uuid, quantity: u32, district: &str) -> Reply {
    let body = json!({ "items": [{ "listing_id": listing, "quantity": quantity }],
                       "delivery": { "district": district, "address": "Bunyodkor 12, 4-xonadon" } });
    app.post(buyer, "/v1/orders", body).await
}

fn position(r: &Reply) -> i64 {
    r.body["position"].as_i64().expect("a command answer has a position")
}

async fn listing_detail(app: &TestApp, who: &User, id: Uuid, after: i64) -> Reply {
    app.get_as(who, &format!("/v1/listings/{id}?min_position={after}")).await.ok()
}

/// The exact report: a seller replaces the reserved variant, then the buyer cancels. The
/// replacement is refused, the cancel answers, and stock means units on hand throughout.
#[tokio::test]
async fn a_cancel_after_the_seller_edits_variants_answers_and_stock_stays_consistent() {
    let app = spawn().await;
    let (seller, buyer) = (User::seller("free"), User::buyer());
    let listing = app.activate(&seller, product(3)).await;
    let order = place(&app, &buyer, listing, 1, "chilonzor").await.ok().id();

    let before = app.events().await;
    let replace = json!({ "variants": [{ "sku": "v2", "label": "256GB", "stock": 4 }] });
    let r = app.post(&seller, &format!("/v1/listings/{listing}/update"), replace).await;
    r.err(409, "variant_reserved");
    assert_eq!(r.body["error"]["details"]["sku"], "std");
    let cut = json!({ "variants": [{ "sku": "std", "label": "128GB", "stock": 0 }] });
    app.post(&seller, &format!("/v1/listings/{listing}/update"), cut).await.err(409, "stock_below_reserved");
    assert_eq!(app.events().await, before, "refused edits append nothing");

    // The seller counts 10 on the shelf, one of them held by the order: 9 can be ordered.
    let restock = json!({ "variants": [{ "sku": "std", "label": "128GB", "stock": 10 }] });
    let r = app.post(&seller, &format!("/v1/listings/{listing}/update"), restock).await.ok();
    let d = listing_detail(&app, &seller, listing, position(&r)).await;
    let v = &d.body["details"]["variants"][0];
    assert_eq!((v["stock"].as_i64(), v["reserved"].as_i64(), v["available"].as_i64()), (Some(10), Some(1), Some(9)));

    let r = app.post(&buyer, &format!("/v1/orders/{order}/cancel"), json!({ "reason": "changed my mind" })).await.ok();
    let d = listing_detail(&app, &seller, listing, position(&r)).await;
    let v = &d.body["details"]["variants"][0];
    assert_eq!((v["stock"].as_i64(), v["reserved"].as_i64(), v["available"].as_i64()), (Some(10), Some(0), Some(10)));
    // With nothing held, the variant may go.
    app.post(
        &seller,
        &format!("/v1/listings/{listing}/update"),
        json!({ "variants": [{ "sku": "v2", "label": "", "stock": 1 }] }),
    )
    .await
    .ok();
    app.post(&seller, &format!("/v1/listings/{listing}/delete"), json!({})).await.ok();
}

/// Amounts at the edges of i64 are refused with 422 `amount_too_large` and write nothing;
/// the shard of the platform account the big deposit would have hit keeps working.
#[tokio::test]
async fn amounts_at_the_edges_of_i64_are_refused_and_change_nothing() {
    let app = spawn().await;
    let (admin, seller, buyer) = (User::new("admin"), User::seller("free"), User::buyer());
    let before = app.events().await;
    for amount in [i64::MAX, i64::MAX - 1, 1_000_000_000_000_001] {
        let body = json!({ "amount": amount, "provider_tx_id": Uuid::new_v4().to_string() });
        app.post(&admin, &format!("/v1/wallets/{}/deposit", buyer.id), body).await.err(422, "amount_too_large");
    }
    let mut huge = product(1);
    huge["price"] = json!(i64::MAX);
    app.post(&seller, "/v1/listings", huge).await.err(422, "amount_too_large");
    assert_eq!(app.events().await, before, "nothing was written");

    // The largest amount goes through, and deposits to the same shard keep working.
    let body = json!({ "amount": 1_000_000_000_000_000i64, "provider_tx_id": "max" });
    app.post(&admin, &format!("/v1/wallets/{}/deposit", buyer.id), body).await.ok();
    app.deposit(&buyer, 500).await;
    assert_eq!(app.balance(buyer.id).await, (1_000_000_000_000_500, 0));
    assert_eq!(app.platform(PlatformAccount::ProviderClearing).await, -1_000_000_000_000_500);

    let withdraw = json!({ "amount": i64::MAX, "card_last4": "4242" });
    app.post(&buyer, &format!("/v1/wallets/{}/withdrawals", buyer.id), withdraw).await.err(422, "amount_too_large");
    let listing = app.activate(&seller, product(2_000)).await;
    let price = json!({ "price": 1_000_000_000_000_000i64 });
    app.post(&seller, &format!("/v1/listings/{listing}/update"), price).await.ok();
    place(&app, &buyer, listing, 1_000, "chilonzor").await.err(422, "amount_too_large");
    place(&app, &buyer, listing, u32::MAX, "chilonzor").await.err(422, "invalid_field");
    app.post(&seller, &format!("/v1/listings/{listing}/update"), json!({ "price": i64::MAX }))
        .await
        .err(422, "amount_too_large");
    app.assert_books_balance().await;
}

/// A free port on loopback for a server process of the test's own.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A handler that panics (the `command_panic` crash point makes every command panic after its
/// decision) answers 500 with the error body and the request id, writes nothing, is counted,
/// and the server goes on answering on the same workers.
#[tokio::test]
async fn a_panicking_handler_answers_500_with_its_request_id_and_writes_nothing() {
    let db = bozor_commands::testing::fresh_database().await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("bozor-panic-{port}.log"));
    let _server = Proc(
        Command::new(bozor_bin())
            .arg("up")
            .env("BOZOR_FAULT", "command_panic")
            .env("BOZOR_DATABASE_URL", &db.url)
            .env("BOZOR_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("BOZOR_HTTP_WORKERS", "1")
            .env("RUST_LOG", "warn")
            .env_remove("BOZOR_ENV")
            .env_remove("BOZOR_JWT_SECRET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("bozor starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for("the server", 60, || {
        let (http, url) = (http.clone(), format!("{base}/healthz"));
        async move { http.get(url).send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    let seller = Uuid::new_v4();
    let auth = format!("Bearer {}", token_for(seller, "seller", Some("free"), None));
    for _ in 0..3 {
        let request_id = Uuid::new_v4();
        let res = http
            .post(format!("{base}/v1/listings"))
            .header("Authorization", &auth)
            .header("X-Request-Id", request_id.to_string())
            .json(&product(1))
            .send()
            .await
            .expect("the server answers instead of closing the connection");
        assert_eq!(res.status().as_u16(), 500);
        assert_eq!(res.headers()["x-request-id"].to_str().unwrap(), request_id.to_string());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["details"]["request_id"], request_id.to_string());
    }
    let events: i64 = db.client().await.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0);
    assert_eq!(events, 0, "a panicking command writes nothing");
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "bozor_http_panics_total 3"), "{metrics}");
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert!(ready.status().is_success(), "the one worker still serves");
    let logged = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(logged.contains("published development keys are in use"), "one clear warning: {logged}");
    assert_eq!(logged.matches("request panicked").count(), 3, "each panic logged with its request id");
}

/// Couriers are checked against their user stream and the order's district; staff reassign
/// before pick-up, never after.
#[tokio::test]
async fn couriers_must_be_registered_for_the_district_and_staff_reassign_before_pick_up() {
    let app = spawn().await;
    let (seller, buyer, support) = (User::seller("free"), User::buyer(), User::new("support"));
    let listing = app.activate(&seller, product(5)).await;
    app.deposit(&buyer, 50_000_000).await;
    let order = place(&app, &buyer, listing, 1, "chilonzor").await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.accept(&seller, order).await.ok();
    let path = format!("/v1/orders/{order}/assign-courier");

    let elsewhere = app.courier("yunusobod").await;
    let before = app.events().await;
    app.post(&elsewhere, &path, json!({})).await.err(422, "courier_district_mismatch");
    let unregistered = User::courier("chilonzor"); // a token, but no courier on record
    app.post(&unregistered, &path, json!({})).await.err(422, "not_a_courier");
    app.post(&support, &path, json!({ "courier_id": Uuid::new_v4() })).await.err(422, "not_a_courier");
    app.post(&support, &path, json!({ "courier_id": User::buyer().id })).await.err(422, "not_a_courier");
    app.post(&support, &path, json!({ "courier_id": buyer.id })).await.err(403, "forbidden");
    assert_eq!(app.events().await, before, "refused assignments append nothing");

    let (a, b) = (app.courier("chilonzor").await, app.courier("chilonzor").await);
    app.post(&a, &path, json!({})).await.ok();
    app.post(&b, &path, json!({})).await.err(409, "invalid_transition");
    app.post(&support, &path, json!({ "courier_id": b.id })).await.ok();
    app.post(&a, &format!("/v1/orders/{order}/pick-up"), json!({})).await.err(403, "forbidden");
    app.post(&b, &format!("/v1/orders/{order}/pick-up"), json!({})).await.ok();
    app.post(&support, &path, json!({ "courier_id": a.id })).await.err(409, "invalid_transition");
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
}

/// A listing whose every unit is held shows as sold out, in lists and detail, and the
/// `in_stock` filter hides it; a cancel brings it back.
#[tokio::test]
async fn listings_show_availability_and_sold_out_ones_can_be_filtered() {
    let app = spawn().await;
    let (seller, buyer) = (User::seller("free"), User::buyer());
    let listing = app.activate(&seller, product(2)).await;
    let other = app.activate(&seller, product(5)).await;
    let order = place(&app, &buyer, listing, 2, "chilonzor").await.ok();
    let pos = position(&order);
    let all = app.get(&format!("/v1/listings?seller_id={}&min_position={pos}", seller.id)).await.ok();
    let item = all.body["items"].as_array().unwrap().iter().find(|i| i["id"] == listing.to_string()).unwrap().clone();
    assert_eq!((item["sold_out"].as_bool(), item["available"].as_i64()), (Some(true), Some(0)));
    let in_stock = app.get(&format!("/v1/listings?seller_id={}&in_stock=true", seller.id)).await.ok();
    assert_eq!(ids(&in_stock.body), vec![other.to_string()]);
    let sold_out = app.get(&format!("/v1/listings?seller_id={}&in_stock=false", seller.id)).await.ok();
    assert_eq!(ids(&sold_out.body), vec![listing.to_string()]);
    assert_eq!(listing_detail(&app, &buyer, listing, pos).await.body["sold_out"], true);
    place(&app, &buyer, listing, 1, "chilonzor").await.err(409, "insufficient_stock");

    let r = app.post(&buyer, &format!("/v1/orders/{}/cancel", order.id()), json!({ "reason": "later" })).await.ok();
    let d = listing_detail(&app, &buyer, listing, position(&r)).await;
    assert_eq!((d.body["sold_out"].as_bool(), d.body["available"].as_i64()), (Some(false), Some(2)));
    app.get("/v1/listings?in_stock=maybe").await.err(400, "invalid_query");
}

/// The courier app: open orders of the district carry what a courier decides on, the offered
/// courier may read the detail, and `courier_id=me` lists their deliveries.
#[tokio::test]
async fn couriers_see_what_they_decide_on_and_their_own_deliveries() {
    let app = spawn().await;
    let (seller, buyer) = (User::seller("premium"), User::buyer());
    let (courier, elsewhere) = (app.courier("sergeli").await, app.courier("chilonzor").await);
    let listing = app.activate(&seller, product(5)).await;
    app.deposit(&buyer, 50_000_000).await;
    let order = place(&app, &buyer, listing, 3, "sergeli").await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    let pos = position(&app.accept(&seller, order).await.ok());

    let open = app.get_as(&courier, &format!("/v1/orders?district=sergeli&min_position={pos}")).await.ok();
    let item = &open.body["items"][0];
    assert_eq!(item["id"], order.to_string());
    assert_eq!(item["pickup"]["district"], "yunusobod");
    assert_eq!(item["pickup"]["address"], "Amir Temur 108");
    assert_eq!(
        (item["district"].as_str(), item["address"].as_str()),
        (Some("sergeli"), Some("Bunyodkor 12, 4-xonadon"))
    );
    assert_eq!((item["item_count"].as_i64(), item["delivery_fee"].as_i64()), (Some(3), Some(2_500_000)));
    assert_eq!(item["total"].as_i64(), Some(3 * PRICE + 2_500_000));

    app.get_as(&courier, &format!("/v1/orders/{order}")).await.ok();
    app.get_as(&elsewhere, &format!("/v1/orders/{order}")).await.err(403, "forbidden");
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.ok();
    let pos = position(&app.post(&courier, &format!("/v1/orders/{order}/pick-up"), json!({})).await.ok());

    let mine = app.get_as(&courier, &format!("/v1/orders?courier_id=me&min_position={pos}")).await.ok();
    assert_eq!(ids(&mine.body), vec![order.to_string()]);
    assert_eq!(mine.body["items"][0]["status"], "picked_up");
    let by_status = app.get_as(&courier, "/v1/orders?courier_id=me&status=delivered").await.ok();
    assert!(ids(&by_status.body).is_empty());
    app.get_as(&elsewhere, &format!("/v1/orders?courier_id={}", courier.id)).await.err(403, "forbidden");
    app.get_as(&courier, "/v1/orders?courier_id=someone").await.err(400, "invalid_query");
}

/// "My orders" is one request: items carry their lines and totals. Sellers see their
/// withdrawals and where each stands.
#[tokio::test]
async fn buyers_see_lines_and_totals_and_sellers_see_their_withdrawals() {
    let app = spawn().await;
    let (seller, buyer, admin) = (User::seller("free"), User::buyer(), User::new("admin"));
    let listing = app.activate(&seller, product(5)).await;
    let r = place(&app, &buyer, listing, 2, "chilonzor").await.ok();
    let mine =
        app.get_as(&buyer, &format!("/v1/orders?buyer_id={}&min_position={}", buyer.id, position(&r))).await.ok();
    let item = &mine.body["items"][0];
    assert_eq!(item["lines"][0]["title"], "iPhone 15");
    assert_eq!(item["lines"][0]["listing_id"], listing.to_string());
    assert_eq!(
        (item["lines"][0]["quantity"].as_i64(), item["lines"][0]["unit_price"].as_i64()),
        (Some(2), Some(PRICE))
    );
    assert_eq!((item["goods_total"].as_i64(), item["total"].as_i64()), (Some(2 * PRICE), Some(2 * PRICE + 1_800_000)));

    app.deposit(&seller, 3_000_000).await;
    let path = format!("/v1/wallets/{}/withdrawals", seller.id);
    let mut ids_in_order = Vec::new();
    for amount in [100_000, 200_000, 300_000] {
        let body = json!({ "amount": amount, "card_last4": "8600" });
        ids_in_order.push(app.post(&seller, &path, body).await.ok().id());
    }
    app.post(&admin, &format!("{path}/{}/complete", ids_in_order[0]), json!({})).await.ok();
    let r = app.post(&admin, &format!("{path}/{}/fail", ids_in_order[1]), json!({})).await.ok();
    let list = app.get_as(&seller, &format!("{path}?min_position={}", position(&r))).await.ok();
    let statuses: Vec<(String, String)> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["id"].as_str().unwrap().to_owned(), w["status"].as_str().unwrap().to_owned()))
        .collect();
    let expected = vec![
        (ids_in_order[2].to_string(), "pending".to_owned()),
        (ids_in_order[1].to_string(), "failed".to_owned()),
        (ids_in_order[0].to_string(), "completed".to_owned()),
    ];
    assert_eq!(statuses, expected, "newest first, each with its state");
    assert_eq!(list.body["items"][2]["card_mask"], "**** 8600");
    let page = app.get_as(&seller, &format!("{path}?limit=2")).await.ok();
    let next = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = app.get_as(&seller, &format!("{path}?limit=2&cursor={next}")).await.ok();
    assert_eq!(ids(&rest.body), vec![ids_in_order[0].to_string()]);
    let pending = app.get_as(&seller, &format!("{path}?status=pending")).await.ok();
    assert_eq!(ids(&pending.body), vec![ids_in_order[2].to_string()]);
    app.get_as(&buyer, &path).await.err(403, "forbidden");
    app.get_as(&seller, &format!("{path}?status=lost")).await.err(400, "invalid_query");
}

/// Support's dispute queue: every disputed order, longest waiting first, staff only; and
/// auditors read the platform's own accounts, equal to the sums of their wallet streams.
#[tokio::test]
async fn staff_see_the_dispute_queue_and_auditors_the_platform_accounts() {
    let app = spawn().await;
    let (seller, support, auditor) = (User::seller("free"), User::new("support"), User::new("auditor"));
    let game = |n: usize| {
        json!({ "title": format!("Akkaunt {n}"), "category": "game_accounts", "price": PRICE,
                "details": { "kind": "game_account", "game": "PUBG Mobile", "level": 50 } })
    };
    let mut disputed = Vec::new();
    let mut last = 0;
    for n in 0..3 {
        let buyer = User::buyer();
        app.deposit(&buyer, 2 * PRICE).await;
        let listing = app.post(&seller, "/v1/listings", game(n)).await.ok().id();
        let credentials = json!({ "login": "l", "password": "p" });
        app.post(&seller, &format!("/v1/listings/{listing}/credentials"), credentials).await.ok();
        app.post(&seller, &format!("/v1/listings/{listing}/submit"), json!({})).await.ok();
        app.post(&support, &format!("/v1/listings/{listing}/approve"), json!({})).await.ok();
        let body = json!({ "items": [{ "listing_id": listing, "quantity": 1 }] });
        let order = app.post(&buyer, "/v1/orders", body).await.ok().id();
        app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
        app.post(&seller, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
        if n < 2 {
            let r = app.post(&buyer, &format!("/v1/orders/{order}/dispute"), json!({ "reason": "wrong rank" })).await;
            last = position(&r.ok());
            disputed.push(order.to_string());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let queue = app.get_as(&support, &format!("/v1/orders?status=disputed&min_position={last}")).await.ok();
    assert_eq!(ids(&queue.body), disputed, "oldest dispute first");
    let page = app.get_as(&support, "/v1/orders?status=disputed&limit=1").await.ok();
    let next = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = app.get_as(&support, &format!("/v1/orders?status=disputed&limit=1&cursor={next}")).await.ok();
    assert_eq!(ids(&rest.body), vec![disputed[1].clone()]);
    app.get_as(&seller, "/v1/orders?status=disputed").await.err(403, "forbidden");
    app.get_as(&support, "/v1/orders?status=%00").await.err(400, "invalid_query");

    // Every money movement so far is in the read model (the last deposit came after `last`).
    let c = app.db.client().await;
    wait_for("the projectors", 30, || async { crate::support::behind(&c).await == 0 }).await;
    let accounts = app.get_as(&auditor, "/v1/platform/accounts").await.ok();
    for account in PlatformAccount::ALL {
        let row = accounts.body["items"].as_array().unwrap().iter().find(|a| a["account"] == account.name()).unwrap();
        assert_eq!(row["available"].as_i64(), Some(app.platform(account).await), "{}", account.name());
    }
    app.get_as(&seller, "/v1/platform/accounts").await.err(403, "forbidden");
}

/// Details carry their stream's version as ETag: a client sends it back as If-Match without
/// having issued the last command itself, and If-None-Match saves the body.
#[tokio::test]
async fn details_carry_the_stream_version_as_etag() {
    let app = spawn().await;
    let (seller, buyer) = (User::seller("free"), User::buyer());
    let listing = app.activate(&seller, product(5)).await;
    app.deposit(&buyer, 50_000_000).await;
    let placed = place(&app, &buyer, listing, 1, "chilonzor").await.ok();
    let order = placed.id();

    let d = listing_detail(&app, &seller, listing, position(&placed)).await;
    let etag = d.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", d.body["version"]));
    assert_eq!(etag, "\"4\"", "created, submitted, approved, stock reserved");
    let stale = [("If-Match", "\"3\"")];
    let price = json!({ "price": 4_000_000 });
    app.post_with(&seller, &format!("/v1/listings/{listing}/update"), price.clone(), &stale)
        .await
        .err(412, "version_mismatch");
    app.post_with(&seller, &format!("/v1/listings/{listing}/update"), price, &[("If-Match", etag.as_str())]).await.ok();
    let not_modified = app
        .get_with(
            &format!("/v1/listings/{listing}"),
            &[("Authorization", seller.header.as_str()), ("If-None-Match", "\"1\"")],
        )
        .await;
    assert_eq!(not_modified.status.as_u16(), 200, "another version: the body");

    let o = app.get_as(&buyer, &format!("/v1/orders/{order}?min_position={}", position(&placed))).await.ok();
    let etag = o.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    let same = app
        .get_with(
            &format!("/v1/orders/{order}"),
            &[("Authorization", buyer.header.as_str()), ("If-None-Match", "\"1\"")],
        )
        .await;
    assert_eq!(same.status.as_u16(), 304);
    let paid =
        app.post_with(&buyer, &format!("/v1/orders/{order}/pay"), json!({}), &[("If-Match", etag.as_str())]).await.ok();

    let w = app.get_as(&buyer, &format!("/v1/wallets/{}?min_position={}", buyer.id, position(&paid))).await.ok();
    assert_eq!(w.headers["etag"].to_str().unwrap(), format!("\"{}\"", w.body["version"]));
    assert_eq!(w.body["version"].as_i64(), Some(3), "opened, deposited, held for the order");
}

/// A read model built by older code (its checkpoint's version below the code's) is rebuilt
/// blue/green by `upgrade_if_stale`, which every projector runs at start: the rows come back
/// equal to what the current code builds, the new columns filled.
#[tokio::test]
async fn a_read_model_built_by_older_code_is_rebuilt_to_what_the_code_builds() {
    let app = spawn().await;
    let (seller, buyer) = (User::seller("free"), User::buyer());
    let listing = app.activate(&seller, product(3)).await;
    app.deposit(&buyer, 50_000_000).await;
    let order = place(&app, &buyer, listing, 1, "chilonzor").await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.post(
        &buyer,
        &format!("/v1/wallets/{}/withdrawals", buyer.id),
        json!({ "amount": 1_000, "card_last4": "4242" }),
    )
    .await
    .ok();
    let c = app.db.client().await;
    wait_for("the projectors", 30, || async { crate::support::behind(&c).await == 0 }).await;
    let built = crate::support::read_models(&c).await;

    // What version 1 left behind: no availability, no versions, no withdrawals.
    c.batch_execute(
        "UPDATE projection_checkpoints SET version = 1 WHERE projection IN ('listings', 'orders', 'wallets');
         UPDATE listings_view SET sold_out = NOT sold_out, available = NULL, version = 0;
         UPDATE orders_view SET version = 0; DELETE FROM withdrawals_view;",
    )
    .await
    .unwrap();
    assert_ne!(crate::support::read_models(&c).await, built);
    let pool = app.store.pool().clone();
    for name in ["listings", "orders", "wallets", "users"] {
        let p = bozor_projections::by_name(name).unwrap();
        let rebuilt = bozor_projections::rebuild::upgrade_if_stale(&pool, p.clone()).await.unwrap();
        assert_eq!(rebuilt, name != "users", "{name}");
        assert!(!bozor_projections::rebuild::upgrade_if_stale(&pool, p).await.unwrap(), "{name} once only");
    }
    assert_eq!(crate::support::read_models(&c).await, built);
    // The swapped-in tables come with column statistics, which only ANALYZE takes.
    for table in ["listings_view", "orders_view", "wallets_view", "withdrawals_view"] {
        let columns: i64 = c
            .query_one("SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = $1", &[&table])
            .await
            .unwrap()
            .get(0);
        assert!(columns > 0, "{table} was analyzed before the swap");
    }
    let versions: Vec<(String, i32)> = c
        .query(
            "SELECT projection, version FROM projection_checkpoints
             WHERE projection IN ('listings', 'orders', 'wallets') ORDER BY projection",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let code: Vec<(String, i32)> = ["listings", "orders", "wallets"]
        .iter()
        .map(|n| (n.to_string(), bozor_projections::by_name(n).unwrap().version()))
        .collect();
    assert_eq!(versions, code, "each read model is at its code's version after the upgrade");
}
