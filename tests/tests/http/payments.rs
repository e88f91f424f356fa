//! Money in and out through the providers' own protocols (shared/specs/payments-uz.md): Payme's
//! JSON-RPC and Click's prepare/complete, black-box over HTTP against a real PostgreSQL, with
//! balances checked from the event store. Then checkout links, payouts and reconciliation.

use base64::Engine;
use bozor_api::configuration::{ClickSettings, PaymeSettings, Settings};
use bozor_domain::order::{self, OrderAggregate};
use bozor_domain::payment::{self, payment_id_for, PaymentAggregate};
use bozor_domain::wallet::{PlatformAccount, Provider};
use serde_json::{json, Value};
use uuid::Uuid;

use bozor_commands::testing::fresh_database;
use md5::{Digest, Md5};

use crate::support::{spawn_on, TestApp, User};

const PAYME_KEY: &str = "payme-test-key-0123456789";
const CLICK_SECRET: &str = "click-test-secret";
const SERVICE_ID: &str = "67890";
const PRICE: i64 = 10_000_000;
const CHILONZOR_FEE: i64 = 1_800_000;
const ORDER_TOTAL: i64 = PRICE + CHILONZOR_FEE;

async fn app() -> TestApp {
    let db = fresh_database().await;
    let mut settings = Settings::development(&db.url);
    settings.payments.payme =
        Some(PaymeSettings { merchant_id: "5e730e8e0b852a417aa49ceb".into(), key: PAYME_KEY.into() });
    settings.payments.click =
        Some(ClickSettings { service_id: SERVICE_ID.into(), merchant_id: "11111".into(), secret: CLICK_SECRET.into() });
    settings.payments.withdraw_min = 100_000;
    settings.payments.withdraw_daily_max = 1_000_000;
    spawn_on(db, settings, true).await
}

fn basic(login: &str, key: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{login}:{key}")))
}

/// Posts raw bytes to Payme's endpoint; answers (status, body text).
async fn payme_raw(app: &TestApp, auth: Option<&str>, body: &[u8]) -> (u16, String) {
    let mut req = app.http.post(format!("{}/v1/payments/payme", app.base)).body(body.to_vec());
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let res = req.header("Content-Type", "application/json").send().await.expect("sent");
    (res.status().as_u16(), res.text().await.expect("text"))
}

/// Calls a Payme method as Payme does; answers the body text (always HTTP 200).
async fn payme_text(app: &TestApp, method: &str, params: Value) -> String {
    let body = json!({ "method": method, "params": params, "id": 4711 });
    let (status, text) = payme_raw(app, Some(&basic("Paycom", PAYME_KEY)), body.to_string().as_bytes()).await;
    assert_eq!(status, 200, "Payme is always answered 200: {text}");
    text
}

async fn payme(app: &TestApp, method: &str, params: Value) -> Value {
    let v: Value = serde_json::from_str(&payme_text(app, method, params).await).expect("JSON");
    assert_eq!(v["id"], 4711, "the id is echoed");
    v
}

/// The error code of a Payme answer (panics on a result).
fn code(v: &Value) -> i64 {
    v["error"]["code"].as_i64().unwrap_or_else(|| panic!("expected an error, got {v}"))
}

/// Polls `f` until it answers a value, failing after 10 s (read models follow the log).
async fn eventually<F, Fut>(what: &str, mut f: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn create_params(tx: &str, amount: i64, account: Value) -> Value {
    json!({ "id": tx, "time": now_ms(), "amount": amount, "account": account })
}

/// A user registered through the command side, as a first login does (top-ups need one).
async fn registered(app: &TestApp) -> User {
    let commands = bozor_commands::CommandService::new(app.store.clone());
    let digits = Uuid::new_v4().as_u128() % 1_000_000_000;
    let phone = bozor_domain::user::Phone::parse(&format!("+998{digits:09}")).expect("a valid number");
    let (id, _) = commands.user_for_phone(&phone, chrono::Utc::now()).await.expect("registers");
    User { id, header: format!("Bearer {}", crate::support::token_for(id, "buyer", None, None)) }
}

async fn stock(app: &TestApp, listing: Uuid) -> u32 {
    match app.load::<bozor_domain::listing::ListingAggregate>(listing).await {
        bozor_domain::listing::State::Exists(l) => l.available_of("std"),
        bozor_domain::listing::State::Initial => panic!("no listing {listing}"),
    }
}

async fn placed_order(app: &TestApp, buyer: &User) -> (Uuid, Uuid) {
    let seller = User::seller("free");
    let listing = app.active_product(&seller, PRICE, 3).await;
    let body = json!({
        "items": [{ "listing_id": listing, "quantity": 1 }],
        "delivery": { "district": "chilonzor", "address": "Bunyodkor 1" }
    });
    (app.post(buyer, "/v1/orders", body).await.ok().id(), listing)
}

async fn order_of(app: &TestApp, id: Uuid) -> order::Order {
    match app.load::<OrderAggregate>(id).await {
        order::State::Exists(o) => *o,
        order::State::Initial => panic!("no order {id}"),
    }
}

async fn payment_of(app: &TestApp, provider: Provider, tx: &str) -> payment::Payment {
    match app.load::<PaymentAggregate>(payment_id_for(provider, tx)).await {
        payment::State::Exists(p) => *p,
        payment::State::Initial => panic!("no payment {tx}"),
    }
}

#[tokio::test]
async fn payme_refuses_bad_credentials_and_bad_rpc_with_its_codes_and_writes_nothing() {
    let app = app().await;
    let before = app.events().await;
    let call = json!({ "method": "CheckTransaction", "params": { "id": "x" }, "id": 7 }).to_string();
    for auth in [None, Some(basic("Paycom", "wrong")), Some(basic("Payme", PAYME_KEY)), Some("Bearer x".into())] {
        let (status, text) = payme_raw(&app, auth.as_deref(), call.as_bytes()).await;
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!((status, code(&v), v["id"].clone()), (200, -32504, json!(7)), "{auth:?}");
        assert!(v["error"]["message"]["ru"].is_string() && v["error"]["message"]["uz"].is_string());
    }
    let ok = basic("Paycom", PAYME_KEY);
    let (_, text) = payme_raw(&app, Some(&ok), b"{\"method\": ").await;
    assert_eq!(code(&serde_json::from_str(&text).unwrap()), -32700);
    let (_, text) = payme_raw(&app, Some(&ok), br#"{"params": {}, "id": 1}"#).await;
    assert_eq!(code(&serde_json::from_str(&text).unwrap()), -32600);
    let v = payme(&app, "PayEverything", json!({})).await;
    assert_eq!((code(&v), v["error"]["data"].clone()), (-32601, json!("PayEverything")));
    let v = payme(&app, "CreateTransaction", json!({ "id": 5, "time": now_ms(), "amount": 100, "account": {} })).await;
    assert_eq!(code(&v), -32600, "an id that is not a string");
    let v = payme(&app, "CreateTransaction", json!({ "id": "t", "time": 1_000, "amount": 100, "account": {} })).await;
    assert_eq!(code(&v), -32600, "a time that is not 13-digit milliseconds");
    let v = payme(&app, "CancelTransaction", json!({ "id": "abc", "reason": 77 })).await;
    assert_eq!(code(&v), -32600, "a reason Payme does not have");
    for method in ["PerformTransaction", "CheckTransaction"] {
        assert_eq!(code(&payme(&app, method, json!({ "id": "never-created" })).await), -31003, "{method}");
    }
    assert_eq!(code(&payme(&app, "CancelTransaction", json!({ "id": "never-created", "reason": 1 })).await), -31003);
    assert_eq!(app.events().await, before, "nothing was written");
}

#[tokio::test]
async fn payme_account_and_amount_errors_name_the_field() {
    let app = app().await;
    let buyer = registered(&app).await;
    let (order, _) = placed_order(&app, &buyer).await;
    let check = |amount: Value, account: Value| {
        let app = &app;
        async move { payme(app, "CheckPerformTransaction", json!({ "amount": amount, "account": account })).await }
    };
    let v = check(json!(100_000), json!({ "wallet_id": Uuid::new_v4() })).await;
    assert_eq!((code(&v), v["error"]["data"].clone()), (-31050, json!("wallet_id")));
    let v = check(json!(100_000), json!({ "order_id": Uuid::new_v4() })).await;
    assert_eq!((code(&v), v["error"]["data"].clone()), (-31050, json!("order_id")));
    let v = check(json!(100_000), json!({ "order_id": "not-a-uuid" })).await;
    assert_eq!((code(&v), v["error"]["data"].clone()), (-31050, json!("order_id")));
    for account in [json!({}), json!({ "wallet_id": buyer.id, "order_id": order }), json!("x")] {
        assert_eq!(code(&check(json!(100_000), account).await), -31050);
    }
    for amount in [json!(0), json!(-5), json!(100.5), json!("100"), json!(i64::MAX)] {
        assert_eq!(code(&check(amount.clone(), json!({ "wallet_id": buyer.id })).await), -31001, "{amount}");
    }
    assert_eq!(code(&check(json!(ORDER_TOTAL - 1), json!({ "order_id": order })).await), -31001);
    assert_eq!(check(json!(ORDER_TOTAL), json!({ "order_id": order })).await["result"], json!({ "allow": true }));
    assert_eq!(check(json!(5_000), json!({ "wallet_id": buyer.id })).await["result"], json!({ "allow": true }));
    // One transaction per order at a time.
    let v = payme(&app, "CreateTransaction", create_params("tx-a", ORDER_TOTAL, json!({ "order_id": order }))).await;
    assert_eq!(v["result"]["state"], 1);
    let v = payme(&app, "CreateTransaction", create_params("tx-b", ORDER_TOTAL, json!({ "order_id": order }))).await;
    assert_eq!((code(&v), v["error"]["data"].clone()), (-31052, json!("order_id")));
    assert_eq!(code(&check(json!(ORDER_TOTAL), json!({ "order_id": order })).await), -31052);
    // Nor from the wallet meanwhile.
    app.deposit(&buyer, ORDER_TOTAL).await;
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.err(409, "payment_pending");
    // A paid order takes no more.
    payme(&app, "PerformTransaction", json!({ "id": "tx-a" })).await;
    let v = check(json!(ORDER_TOTAL), json!({ "order_id": order })).await;
    assert_eq!((code(&v), v["error"]["data"].clone()), (-31051, json!("order_id")));
}

#[tokio::test]
async fn a_payme_top_up_runs_create_perform_cancel_with_byte_identical_repeats() {
    let app = app().await;
    let buyer = registered(&app).await;
    let (tx, amount) = ("63f1c2a9e8d7b6a5c4d3e2f1", 2_500_000);
    let account = json!({ "wallet_id": buyer.id });
    let params = create_params(tx, amount, account.clone());
    let first = payme_text(&app, "CreateTransaction", params.clone()).await;
    let v: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["result"]["state"], 1);
    assert_eq!(v["result"]["transaction"], payment_id_for(Provider::Payme, tx).to_string());
    assert_eq!(payme_text(&app, "CreateTransaction", params).await, first, "Payme's sandbox repeats: same bytes");
    assert_eq!(app.balance(buyer.id).await, (0, 0), "nothing moves before perform");
    let performed = payme_text(&app, "PerformTransaction", json!({ "id": tx })).await;
    let v: Value = serde_json::from_str(&performed).unwrap();
    assert_eq!(v["result"]["state"], 2);
    assert!(v["result"]["perform_time"].as_i64().unwrap() >= v["result"]["perform_time"].as_i64().unwrap());
    assert_eq!(payme_text(&app, "PerformTransaction", json!({ "id": tx })).await, performed);
    assert_eq!(app.balance(buyer.id).await, (amount, 0));
    assert_eq!(app.platform(PlatformAccount::ProviderClearing).await, -amount);
    let check = payme(&app, "CheckTransaction", json!({ "id": tx })).await["result"].clone();
    assert_eq!(
        (check["state"].clone(), check["reason"].clone(), check["cancel_time"].clone()),
        (json!(2), json!(null), json!(0))
    );
    assert!(check["create_time"].as_i64().unwrap() <= check["perform_time"].as_i64().unwrap());
    // The provider's transaction leads to the wallet lines: one journal, balanced.
    let p = payment_of(&app, Provider::Payme, tx).await;
    assert_eq!(p.journals.len(), 1);
    app.assert_books_balance().await;
    // A refund before the money was spent takes it back.
    let cancelled = payme_text(&app, "CancelTransaction", json!({ "id": tx, "reason": 5 })).await;
    let v: Value = serde_json::from_str(&cancelled).unwrap();
    assert_eq!(v["result"]["state"], -2);
    assert_eq!(payme_text(&app, "CancelTransaction", json!({ "id": tx, "reason": 5 })).await, cancelled);
    assert_eq!(app.balance(buyer.id).await, (0, 0));
    assert_eq!(app.platform(PlatformAccount::ProviderClearing).await, 0);
    assert_eq!(payme(&app, "CheckTransaction", json!({ "id": tx })).await["result"]["reason"], 5);
    assert_eq!(code(&payme(&app, "PerformTransaction", json!({ "id": tx })).await), -31008);
    app.assert_books_balance().await;
    // GetStatement lists it by Payme's time, from the read model.
    let t = p.provider_time_ms;
    let listed = eventually("the statement to list the transaction", || {
        let app = &app;
        async move {
            let v = payme(app, "GetStatement", json!({ "from": t - 1_000, "to": t + 1_000 })).await;
            let listed = v["result"]["transactions"].clone();
            (listed[0]["state"] == -2).then_some(listed)
        }
    })
    .await;
    assert_eq!(listed[0]["id"], tx);
    assert_eq!(listed[0]["account"], account);
    assert_eq!(listed[0]["amount"], amount);
    let empty = payme(&app, "GetStatement", json!({ "from": t + 1, "to": t + 1_000 })).await;
    assert_eq!(empty["result"]["transactions"], json!([]));
}

#[tokio::test]
async fn a_payme_order_payment_funds_the_escrow_and_its_cancel_refunds_to_the_card() {
    let app = app().await;
    let buyer = User::buyer();
    let (order, listing) = placed_order(&app, &buyer).await;
    let account = json!({ "order_id": order });
    payme(&app, "CreateTransaction", create_params("ord-1", ORDER_TOTAL, account)).await;
    assert!(order_of(&app, order).await.awaiting_payment.is_some());
    assert_eq!(payme(&app, "PerformTransaction", json!({ "id": "ord-1" })).await["result"]["state"], 2);
    let o = order_of(&app, order).await;
    assert_eq!(o.status, order::Status::Paid);
    assert_eq!(app.balance(buyer.id).await, (0, ORDER_TOTAL), "held by the escrow, never available");
    assert_eq!(app.platform(PlatformAccount::ProviderClearing).await, -ORDER_TOTAL);
    assert_eq!(stock(&app, listing).await, 2);
    assert_eq!(payme(&app, "CancelTransaction", json!({ "id": "ord-1", "reason": 5 })).await["result"]["state"], -2);
    assert_eq!(order_of(&app, order).await.status, order::Status::Cancelled);
    assert_eq!(app.balance(buyer.id).await, (0, 0));
    assert_eq!(app.platform(PlatformAccount::ProviderClearing).await, 0);
    assert_eq!(stock(&app, listing).await, 3, "the reservation went back");
    app.assert_books_balance().await;
}

/// A Payme order payment's create and perform read the order, its escrow, the buyer's wallet
/// and clearing, never the order's listing (which holds every open order's reservation). Its
/// cancel after perform gives the stock back: that one reads the listing.
#[tokio::test]
async fn a_payme_order_payment_never_reads_the_listing_until_its_cancel() {
    let app = app().await;
    let buyer = User::buyer();
    let (order, listing) = placed_order(&app, &buyer).await;
    app.unreadable_listing(listing).await;
    let account = json!({ "order_id": order });
    assert_eq!(
        payme(&app, "CheckPerformTransaction", json!({ "amount": ORDER_TOTAL, "account": account })).await["result"],
        json!({ "allow": true })
    );
    payme(&app, "CreateTransaction", create_params("ord-unread", ORDER_TOTAL, account)).await;
    assert_eq!(payme(&app, "PerformTransaction", json!({ "id": "ord-unread" })).await["result"]["state"], 2);
    assert_eq!(order_of(&app, order).await.status, order::Status::Paid);
    assert_eq!(app.balance(buyer.id).await, (0, ORDER_TOTAL));
    let refused = payme(&app, "CancelTransaction", json!({ "id": "ord-unread", "reason": 5 })).await;
    assert_eq!(code(&refused), -32400, "a cancel reads the listing it gives the stock back to: {refused}");
    assert_eq!(order_of(&app, order).await.status, order::Status::Paid, "and changes nothing");
    assert_eq!(app.balance(buyer.id).await, (0, ORDER_TOTAL));
}

/// A process remembers the targets of the payments it created, to read a perform's streams in
/// fewer round trips. The money must still go where the payment itself says: here a perform
/// runs in a process that never saw the payment (another one created it, or this one
/// restarted), and in one whose memory names the wrong target, for a top-up and for an order.
#[tokio::test]
async fn a_perform_pays_the_payments_own_target_whatever_the_process_remembers() {
    use bozor_commands::{CommandMeta, CommandService};
    use bozor_domain::payment::Target;
    let app = app().await;
    let (payer, other) = (registered(&app).await, registered(&app).await);
    let meta = || CommandMeta::system("payme_perform_transaction", chrono::Utc::now());
    let money = |tiyin| bozor_domain::Money::from_tiyin(tiyin).expect("an amount");
    let create = |svc: &CommandService, tx: &'static str, target: Target, tiyin: i64| {
        let (svc, meta) = (svc.clone(), meta());
        async move {
            svc.create_payment(&meta, Provider::Payme, tx, target, money(tiyin), now_ms()).await.expect("created");
            payment_id_for(Provider::Payme, tx)
        }
    };
    let top_up = Target::Wallet { user_id: payer.id };

    // Created by one process, performed by another that has not seen it.
    let creator = CommandService::new(app.store.clone());
    let first = create(&creator, "remember-1", top_up, 1_000).await;
    assert_eq!(creator.payment_targets().get(first), Some(top_up), "the creator remembers it");
    let stranger = CommandService::new(app.store.clone());
    assert_eq!(stranger.payment_targets().get(first), None);
    stranger.perform_payment(&meta(), first, None).await.expect("performed");
    assert_eq!(stranger.payment_targets().get(first), Some(top_up), "learnt from the payment it read");
    assert_eq!(app.balance(payer.id).await, (1_000, 0));

    // Remembered as another user's top-up: the payer is credited, the other user is not.
    let second = create(&creator, "remember-2", top_up, 2_000).await;
    creator.payment_targets().remember(second, Target::Wallet { user_id: other.id });
    creator.perform_payment(&meta(), second, None).await.expect("performed");
    assert_eq!(app.balance(payer.id).await, (3_000, 0));
    assert_eq!(app.balance(other.id).await, (0, 0));

    // Remembered as an order: the order is left as it was.
    let (order, _) = placed_order(&app, &other).await;
    let third = create(&creator, "remember-3", top_up, 4_000).await;
    creator.payment_targets().remember(third, Target::Order { order_id: order });
    creator.perform_payment(&meta(), third, None).await.expect("performed");
    assert_eq!(app.balance(payer.id).await, (7_000, 0));
    assert_eq!(order_of(&app, order).await.status, order::Status::Placed);

    // An order payment remembered as a top-up: the order is paid, the wallet gets nothing.
    let paid = create(&creator, "remember-4", Target::Order { order_id: order }, ORDER_TOTAL).await;
    creator.payment_targets().remember(paid, top_up);
    creator.perform_payment(&meta(), paid, None).await.expect("performed");
    assert_eq!(order_of(&app, order).await.status, order::Status::Paid);
    assert_eq!(app.balance(other.id).await, (0, ORDER_TOTAL), "held by the escrow");
    assert_eq!(app.balance(payer.id).await, (7_000, 0));
    assert_eq!(app.platform(PlatformAccount::ProviderClearing).await, -(7_000 + ORDER_TOTAL));
    app.assert_books_balance().await;
}

/// A top-up's create for a user this process has seen exist reads nothing on its first try:
/// the transaction is taken as new and its append expects a new stream. A transaction that
/// exists after all (a repeat), or an id that another stream holds, must still be refused,
/// with nothing written twice.
#[tokio::test]
async fn a_create_for_a_known_user_is_still_refused_when_its_transaction_exists() {
    use bozor_commands::{CommandError, CommandMeta, CommandService};
    use bozor_domain::listing::{Content, Details, Variant};
    use bozor_domain::payment::Target;
    use bozor_domain::{Actor, DomainError, Money, Role};
    let app = app().await;
    let payer = registered(&app).await;
    let svc = CommandService::new(app.store.clone());
    let meta = || CommandMeta::system("payme_create_transaction", chrono::Utc::now());
    let money = Money::from_tiyin(5_000).expect("an amount");
    let top_up = Target::Wallet { user_id: payer.id };
    let create = |tx: &'static str| {
        let (svc, meta) = (svc.clone(), meta());
        async move { svc.create_payment(&meta, Provider::Payme, tx, top_up, money, now_ms()).await }
    };
    let already_exists =
        |r: Result<_, CommandError>| matches!(r, Err(CommandError::Domain(DomainError::AlreadyExists { .. })));

    assert!(!svc.existing_users().contains(payer.id));
    create("known-1").await.expect("created");
    assert!(svc.existing_users().contains(payer.id), "the create saw the user exist");
    // The repeat is presumed new, meets the stream at its append, and is refused on the retry.
    assert!(already_exists(create("known-1").await), "a repeat is refused");
    let id = payment_id_for(Provider::Payme, "known-1");
    let loaded = app.store.load::<PaymentAggregate>(id).await.expect("the payment");
    assert_eq!(loaded.version, 1, "one created event");

    // The payment's id taken by a listing: refused, and the listing is left as it was.
    let taken = payment_id_for(Provider::Payme, "known-2");
    let seller = Actor::new(Uuid::new_v4(), &[Role::Seller]);
    let mut m = meta();
    m.actor = seller;
    let details = Details::Product { variants: vec![Variant { sku: "a".into(), label: "a".into(), stock: 1 }] };
    let content = Content {
        title: "Choynak".into(),
        description: "Bir".into(),
        category: "appliances".into(),
        images: vec![],
        attributes: Default::default(),
    };
    svc.create_listing(&m, taken, details, content, money).await.expect("a listing");
    assert!(already_exists(create("known-2").await), "an id another stream holds is refused");
    let listing = app.store.load::<bozor_domain::listing::ListingAggregate>(taken).await.expect("the listing");
    assert_eq!(listing.version, 1);

    // Twenty repeats at once: one effect.
    let repeats: Vec<_> = (0..20).map(|_| tokio::spawn(create("known-3"))).collect();
    let mut created = 0;
    for r in repeats {
        match r.await.expect("no panic") {
            Ok(_) => created += 1,
            other => assert!(already_exists(other), "a repeat is refused, not failed"),
        }
    }
    assert_eq!(created, 1);
    let loaded = app.store.load::<PaymentAggregate>(payment_id_for(Provider::Payme, "known-3")).await.unwrap();
    assert_eq!(loaded.version, 1);
}

#[tokio::test]
async fn a_cancel_after_the_money_was_spent_or_the_goods_delivered_answers_31007_and_moves_nothing() {
    let app = app().await;
    let buyer = registered(&app).await;
    // A top-up spent on an order.
    payme(&app, "CreateTransaction", create_params("spent", ORDER_TOTAL, json!({ "wallet_id": buyer.id }))).await;
    payme(&app, "PerformTransaction", json!({ "id": "spent" })).await;
    let (order, _) = placed_order(&app, &buyer).await;
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    let events = app.events().await;
    let v = payme(&app, "CancelTransaction", json!({ "id": "spent", "reason": 5 })).await;
    assert_eq!(code(&v), -31007);
    assert_eq!(app.events().await, events, "nothing appended");
    assert_eq!(app.balance(buyer.id).await, (0, ORDER_TOTAL));
    assert_eq!(payme(&app, "CheckTransaction", json!({ "id": "spent" })).await["result"]["state"], 2);
    // An order paid through Payme and delivered.
    let (seller, other) = (User::seller("free"), User::buyer());
    let listing = app.active_product(&seller, PRICE, 1).await;
    let body = json!({ "items": [{ "listing_id": listing, "quantity": 1 }],
                       "delivery": { "district": "chilonzor", "address": "Bunyodkor 1" } });
    let order = app.post(&other, "/v1/orders", body).await.ok().id();
    payme(&app, "CreateTransaction", create_params("delivered", ORDER_TOTAL, json!({ "order_id": order }))).await;
    payme(&app, "PerformTransaction", json!({ "id": "delivered" })).await;
    let courier = app.courier("chilonzor").await;
    app.accept(&seller, order).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/pick-up"), json!({})).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    let events = app.events().await;
    assert_eq!(code(&payme(&app, "CancelTransaction", json!({ "id": "delivered", "reason": 5 })).await), -31007);
    assert_eq!(app.events().await, events);
    assert_eq!(order_of(&app, order).await.status, order::Status::Delivered);
}

#[tokio::test]
async fn a_transaction_left_created_past_twelve_hours_is_cancelled_with_reason_4() {
    let app = app().await;
    let buyer = registered(&app).await;
    let thirteen_hours_ago = now_ms() - 13 * 3_600_000;
    let params =
        json!({ "id": "late", "time": thirteen_hours_ago, "amount": 50_000, "account": { "wallet_id": buyer.id } });
    assert_eq!(payme(&app, "CreateTransaction", params.clone()).await["result"]["state"], 1);
    assert_eq!(code(&payme(&app, "PerformTransaction", json!({ "id": "late" })).await), -31008);
    let check = payme(&app, "CheckTransaction", json!({ "id": "late" })).await["result"].clone();
    assert_eq!((check["state"].clone(), check["reason"].clone()), (json!(-1), json!(4)));
    assert_eq!(code(&payme(&app, "CreateTransaction", params).await), -31008);
    assert_eq!(app.balance(buyer.id).await, (0, 0));
    // The same through a repeated create.
    let params =
        json!({ "id": "late-2", "time": thirteen_hours_ago, "amount": 50_000, "account": { "wallet_id": buyer.id } });
    payme(&app, "CreateTransaction", params.clone()).await;
    assert_eq!(code(&payme(&app, "CreateTransaction", params).await), -31008);
    assert_eq!(payme(&app, "CheckTransaction", json!({ "id": "late-2" })).await["result"]["reason"], 4);
}

#[tokio::test]
async fn twenty_concurrent_identical_callbacks_have_one_effect() {
    let app = app().await;
    let buyer = registered(&app).await;
    let params = create_params("storm", 700_000, json!({ "wallet_id": buyer.id }));
    // Payme checks first, as it does: the process has then seen the user exist, and every Create
    // of the storm is presumed new (one append wins, the others are decided again with reads).
    let check = json!({ "amount": 700_000, "account": { "wallet_id": buyer.id } });
    assert_eq!(payme(&app, "CheckPerformTransaction", check).await["result"]["allow"], true);
    for method in ["CreateTransaction", "PerformTransaction"] {
        let calls = (0..20).map(|_| payme_text(&app, method, params.clone()));
        let answers = futures_util::future::join_all(calls).await;
        assert!(answers.iter().all(|a| a == &answers[0]), "{method}: {answers:?}");
        assert!(answers[0].contains("\"result\""), "{}", answers[0]);
    }
    assert_eq!(app.balance(buyer.id).await, (700_000, 0), "credited once");
    let c = app.db.client().await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM events WHERE stream_id = $1", &[&payment_id_for(Provider::Payme, "storm")])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "created and performed, once each");
    // Click's callbacks too.
    let order_buyer = User::buyer();
    let (order, _) = placed_order(&app, &order_buyer).await;
    let prepare = click_fields("900001", &order.to_string(), "118000.00", 0, None);
    let answers = futures_util::future::join_all((0..20).map(|_| click(&app, "prepare", &prepare))).await;
    assert!(answers.iter().all(|a| a == &answers[0] && a["error"] == 0), "{answers:?}");
    let prepare_id = answers[0]["merchant_prepare_id"].to_string();
    let complete = click_fields("900001", &order.to_string(), "118000.00", 1, Some(&prepare_id));
    let answers = futures_util::future::join_all((0..20).map(|_| click(&app, "complete", &complete))).await;
    assert!(answers.iter().all(|a| a == &answers[0] && a["error"] == 0), "{answers:?}");
    assert_eq!(app.balance(order_buyer.id).await, (0, ORDER_TOTAL), "paid once");
    app.assert_books_balance().await;
}

/// Click's fields for a callback, signed with the test secret.
fn click_fields(
    tx: &str,
    merchant_trans_id: &str,
    amount: &str,
    action: u8,
    prepare_id: Option<&str>,
) -> Vec<(String, String)> {
    let sign_time = "2026-11-29 12:30:45";
    let mut plain = format!("{tx}{SERVICE_ID}{CLICK_SECRET}{merchant_trans_id}");
    if let Some(p) = prepare_id {
        plain.push_str(p);
    }
    plain.push_str(&format!("{amount}{action}{sign_time}"));
    let sign: String = Md5::digest(plain.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let mut f = vec![
        ("click_trans_id", tx.to_owned()),
        ("service_id", SERVICE_ID.to_owned()),
        ("click_paydoc_id", "3344556".to_owned()),
        ("merchant_trans_id", merchant_trans_id.to_owned()),
        ("amount", amount.to_owned()),
        ("action", action.to_string()),
        ("error", "0".to_owned()),
        ("error_note", "Success".to_owned()),
        ("sign_time", sign_time.to_owned()),
        ("sign_string", sign),
    ];
    if let Some(p) = prepare_id {
        f.push(("merchant_prepare_id", p.to_owned()));
    }
    f.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn set(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    fields.iter().map(|(k, v)| (k.clone(), if k == name { value.to_owned() } else { v.clone() })).collect()
}

async fn click(app: &TestApp, action: &str, fields: &[(String, String)]) -> Value {
    let res =
        app.http.post(format!("{}/v1/payments/click/{action}", app.base)).form(fields).send().await.expect("sent");
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.expect("JSON")
}

#[tokio::test]
async fn click_checks_fields_signature_action_target_and_prepare_id_in_order() {
    let app = app().await;
    let buyer = registered(&app).await;
    let wallet = buyer.id.to_string();
    let good = click_fields("5001", &wallet, "1500.00", 0, None);
    let before = app.events().await;
    let missing: Vec<_> = good.iter().filter(|(k, _)| k != "sign_time").cloned().collect();
    assert_eq!(click(&app, "prepare", &missing).await["error"], -8);
    assert_eq!(click(&app, "prepare", &set(&good, "click_trans_id", "abc")).await["error"], -8);
    assert_eq!(click(&app, "prepare", &set(&good, "sign_time", "yesterday")).await["error"], -8);
    let off_by_a_tiyin = click_fields("5001", &wallet, "1500.005", 0, None);
    assert_eq!(click(&app, "prepare", &off_by_a_tiyin).await["error"], -2);
    let v = click(&app, "prepare", &set(&good, "sign_string", "0123456789abcdef0123456789abcdef")).await;
    assert_eq!((v["error"].clone(), v["error_note"].clone()), (json!(-1), json!("SIGN CHECK FAILED!")));
    assert_eq!(click(&app, "prepare", &set(&good, "amount", "1500.01")).await["error"], -1, "the amount is signed");
    assert_eq!(click(&app, "prepare", &click_fields("5001", &wallet, "1500.00", 1, None)).await["error"], -3);
    assert_eq!(
        click(&app, "prepare", &click_fields("5001", &Uuid::new_v4().to_string(), "1.00", 0, None)).await["error"],
        -5
    );
    assert_eq!(click(&app, "prepare", &click_fields("5001", "order-42", "1.00", 0, None)).await["error"], -5);
    assert_eq!(click(&app, "prepare", &click_fields("5001", &wallet, "0.00", 0, None)).await["error"], -2);
    assert_eq!(app.events().await, before, "refusals write nothing");
    // A top-up: prepare, then complete; repeats answer alike.
    let v = click(&app, "prepare", &good).await;
    assert_eq!(
        (v["error"].clone(), v["click_trans_id"].clone(), v["merchant_trans_id"].clone()),
        (json!(0), json!(5001), json!(wallet))
    );
    let prepare_id = v["merchant_prepare_id"].as_i64().expect("a number").to_string();
    assert_eq!(click(&app, "prepare", &good).await, v);
    let complete = click_fields("5001", &wallet, "1500.00", 1, Some(&prepare_id));
    assert_eq!(click(&app, "complete", &click_fields("5001", &wallet, "1500.00", 1, Some("12345"))).await["error"], -6);
    assert_eq!(
        click(&app, "complete", &click_fields("5001", &wallet, "1499.00", 1, Some(&prepare_id))).await["error"],
        -2
    );
    let done = click(&app, "complete", &complete).await;
    assert_eq!(done["error"], 0, "{done}");
    assert_eq!(done["merchant_confirm_id"].to_string(), prepare_id);
    assert_eq!(click(&app, "complete", &complete).await, done);
    assert_eq!(app.balance(buyer.id).await, (150_000, 0));
    assert_eq!(click(&app, "prepare", &good).await["error"], -4, "already paid");
    assert_eq!(
        click(&app, "complete", &click_fields("5002", &wallet, "1500.00", 1, Some(&prepare_id))).await["error"],
        -6
    );
    app.assert_books_balance().await;
}

#[tokio::test]
async fn click_error_below_zero_cancels_a_waiting_transaction_with_9_and_moves_nothing_once_paid() {
    let app = app().await;
    let buyer = User::buyer();
    let (order, _) = placed_order(&app, &buyer).await;
    let id = order.to_string();
    assert_eq!(click(&app, "prepare", &click_fields("7001", &id, "117999.00", 0, None)).await["error"], -2);
    let v = click(&app, "prepare", &click_fields("7001", &id, "118000.00", 0, None)).await;
    assert_eq!(v["error"], 0);
    let prepare_id = v["merchant_prepare_id"].to_string();
    let failed = set(&click_fields("7001", &id, "118000.00", 1, Some(&prepare_id)), "error", "-5017");
    let v = click(&app, "complete", &failed).await;
    assert_eq!((v["error"].clone(), v["error_note"].clone()), (json!(-9), json!("Transaction cancelled")));
    assert_eq!(payment_of(&app, Provider::Click, "7001").await.status, payment::Status::Cancelled);
    assert_eq!(click(&app, "complete", &failed).await["error"], -9);
    let ok = click_fields("7001", &id, "118000.00", 1, Some(&prepare_id));
    assert_eq!(click(&app, "complete", &ok).await["error"], -9, "a cancelled transaction stays cancelled");
    assert_eq!(app.balance(buyer.id).await, (0, 0));
    // The order is free for a new payment; once paid, a failure report after it reverses it.
    let v = click(&app, "prepare", &click_fields("7002", &id, "118000.00", 0, None)).await;
    let prepare_id = v["merchant_prepare_id"].to_string();
    assert_eq!(
        click(&app, "complete", &click_fields("7002", &id, "118000.00", 1, Some(&prepare_id))).await["error"],
        0
    );
    assert_eq!(app.balance(buyer.id).await, (0, ORDER_TOTAL));
    // `error` is not signed: a replayed success with a forged failure moves nothing.
    let events = app.events().await;
    let failed = set(&click_fields("7002", &id, "118000.00", 1, Some(&prepare_id)), "error", "-1");
    assert_eq!(click(&app, "complete", &failed).await["error"], -4);
    assert_eq!(app.events().await, events);
    assert_eq!(app.balance(buyer.id).await, (0, ORDER_TOTAL));
    assert_eq!(order_of(&app, order).await.status, order::Status::Paid);
    // A failed prepare repeated for a waiting transaction cancels it too.
    let (order2, _) = placed_order(&app, &buyer).await;
    let id2 = order2.to_string();
    let v = click(&app, "prepare", &click_fields("7003", &id2, "118000.00", 0, None)).await;
    assert_eq!(v["error"], 0);
    let failed = set(&click_fields("7003", &id2, "118000.00", 0, None), "error", "-1");
    assert_eq!(click(&app, "prepare", &failed).await["error"], -9);
    assert_eq!(payment_of(&app, Provider::Click, "7003").await.status, payment::Status::Cancelled);
    assert_eq!(order_of(&app, order2).await.awaiting_payment, None);
    app.assert_books_balance().await;
}

#[tokio::test]
async fn checkout_links_follow_each_providers_format() {
    let app = app().await;
    let buyer = registered(&app).await;
    let (order, _) = placed_order(&app, &buyer).await;
    let r = app.post(&buyer, "/v1/payments/checkout", json!({ "provider": "payme", "order_id": order })).await.ok();
    let url = r.body["url"].as_str().unwrap();
    let encoded = url.strip_prefix("https://checkout.paycom.uz/").expect("Payme's checkout host");
    let plain = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap()).unwrap();
    assert_eq!(plain, format!("m=5e730e8e0b852a417aa49ceb;ac.order_id={order};a={ORDER_TOTAL}"));
    let body =
        json!({ "provider": "click", "wallet_id": buyer.id, "amount": 250_050, "return_url": "https://shop.uz/ok" });
    let r = app.post(&buyer, "/v1/payments/checkout", body).await.ok();
    assert_eq!(
        r.body["url"],
        format!("https://my.click.uz/services/pay?service_id={SERVICE_ID}&merchant_id=11111&amount=2500.50&transaction_param={}&return_url=https%3A%2F%2Fshop.uz%2Fok", buyer.id)
    );
    let post = |body: Value| {
        let (app, buyer) = (&app, &buyer);
        async move { app.post(buyer, "/v1/payments/checkout", body).await }
    };
    post(json!({ "provider": "paypal", "order_id": order })).await.err(422, "invalid_field");
    post(json!({ "provider": "payme", "order_id": order, "amount": 1 })).await.err(422, "amount_mismatch");
    post(json!({ "provider": "payme", "wallet_id": buyer.id })).await.err(422, "invalid_field");
    post(json!({ "provider": "payme", "wallet_id": buyer.id, "amount": 5, "return_url": "javascript:x" }))
        .await
        .err(422, "invalid_field");
    post(json!({ "provider": "payme", "wallet_id": Uuid::new_v4(), "amount": 5 })).await.err(403, "forbidden");
    post(json!({ "provider": "payme", "order_id": Uuid::new_v4() })).await.err(404, "order_not_found");
    post(json!({ "provider": "payme" })).await.err(422, "invalid_field");
    app.post(&User::buyer(), "/v1/payments/checkout", json!({ "provider": "payme", "order_id": order }))
        .await
        .err(403, "forbidden");
    let bare = crate::support::spawn().await;
    let r = bare
        .post(&buyer, "/v1/payments/checkout", json!({ "provider": "payme", "wallet_id": buyer.id, "amount": 5 }))
        .await;
    r.err(503, "provider_not_configured");
}

#[tokio::test]
async fn payouts_keep_only_the_masked_card_and_stay_within_the_limits() {
    let app = app().await;
    let seller = registered(&app).await;
    app.deposit(&seller, 5_000_000).await;
    let path = format!("/v1/wallets/{}/withdrawals", seller.id);
    let card =
        |amount: i64| json!({ "amount": amount, "card_number": "8600 1234 5678 9012", "card_holder": "ALI VALIYEV" });
    app.post(&seller, &path, card(99_999)).await.err(422, "withdrawal_below_minimum");
    let bad = json!({ "amount": 200_000, "card_number": "8600123456789013", "card_holder": "A" });
    app.post(&seller, &path, bad).await.err(422, "invalid_field");
    let no_holder = json!({ "amount": 200_000, "card_number": "8600123456789012" });
    app.post(&seller, &path, no_holder).await.err(422, "invalid_field");
    let w = app.post(&seller, &path, card(600_000)).await.ok().id();
    app.post(&seller, &path, card(400_001)).await.err(422, "withdrawal_daily_limit");
    app.post(&seller, &path, card(400_000)).await.ok();
    assert_eq!(app.balance(seller.id).await, (4_000_000, 1_000_000));
    let c = app.db.client().await;
    let leaked: i64 =
        c.query_one("SELECT count(*) FROM events WHERE payload::text LIKE '%5678%'", &[]).await.unwrap().get(0);
    assert_eq!(leaked, 0, "the full card number is stored nowhere");
    let admin = User::new("admin");
    app.post(&admin, &format!("/v1/wallets/{}/withdrawals/{w}/complete", seller.id), json!({})).await.ok();
    let items = eventually("the staff's list to show the payout", || {
        let (app, admin) = (&app, &admin);
        async move {
            let items = app.get_as(admin, "/v1/withdrawals?status=completed").await.ok().body["items"].clone();
            items.as_array().is_some_and(|a| a.len() == 1).then_some(items)
        }
    })
    .await;
    assert_eq!(items[0]["card_mask"], "8600 12** **** 9012");
    assert_eq!(items[0]["card_holder"], "ALI VALIYEV");
    assert_eq!(items[0]["user_id"], json!(seller.id));
    app.get_as(&seller, "/v1/withdrawals").await.err(403, "forbidden");
    app.get_as(&admin, "/v1/withdrawals?status=lost").await.err(400, "invalid_query");
}

#[tokio::test]
async fn reconciliation_lists_provider_transactions_with_their_journal_lines() {
    let app = app().await;
    let buyer = registered(&app).await;
    payme(&app, "CreateTransaction", create_params("rec-1", 300_000, json!({ "wallet_id": buyer.id }))).await;
    payme(&app, "PerformTransaction", json!({ "id": "rec-1" })).await;
    payme(&app, "CreateTransaction", create_params("rec-2", 100_000, json!({ "wallet_id": buyer.id }))).await;
    let auditor = User::new("auditor");
    let items = eventually("both transactions and their journal", || {
        let (app, auditor) = (&app, &auditor);
        async move {
            let items =
                app.get_as(auditor, "/v1/payments/transactions?provider=payme").await.ok().body["items"].clone();
            let done = items
                .as_array()
                .is_some_and(|a| a.len() == 2 && a[0]["journal"].as_array().is_some_and(|j| j.len() == 2));
            done.then_some(items)
        }
    })
    .await;
    assert_eq!((items[0]["provider_tx_id"].clone(), items[0]["status"].clone()), (json!("rec-1"), json!("performed")));
    let lines = items[0]["journal"].as_array().unwrap();
    let sum: i64 = lines.iter().map(|l| l["available"].as_i64().unwrap() + l["held"].as_i64().unwrap()).sum();
    assert_eq!(sum, 0, "the journal balances");
    assert!(lines.iter().any(|l| l["account"] == "platform:provider_clearing" && l["available"] == -300_000));
    assert!(lines.iter().any(|l| l["user_id"] == json!(buyer.id) && l["available"] == 300_000));
    assert_eq!((items[1]["status"].clone(), items[1]["journal"].clone()), (json!("created"), json!([])));
    let page = app.get_as(&auditor, "/v1/payments/transactions?limit=1").await.ok();
    let cursor = page.body["next_cursor"].as_str().expect("a second page").to_owned();
    let next = app.get_as(&auditor, &format!("/v1/payments/transactions?limit=1&cursor={cursor}")).await.ok();
    assert_eq!(next.body["items"][0]["provider_tx_id"], "rec-2");
    let none = app.get_as(&auditor, "/v1/payments/transactions?provider=click").await.ok();
    assert_eq!(none.body["items"], json!([]));
    let future = app.get_as(&auditor, "/v1/payments/transactions?from=2100-01-01T00:00:00Z").await.ok();
    assert_eq!(future.body["items"], json!([]));
    app.get_as(&buyer, "/v1/payments/transactions").await.err(403, "forbidden");
    app.get_as(&auditor, "/v1/payments/transactions?provider=visa").await.err(400, "invalid_query");
    app.get_as(&auditor, "/v1/payments/transactions?from=yesterday").await.err(400, "invalid_query");
}

#[tokio::test]
async fn odd_bodies_and_a_database_that_went_away_get_the_providers_own_errors() {
    let app = app().await;
    // Larger than BOZOR_BODY_BYTES_MAX: still HTTP 200, an invalid request.
    let big = format!(r#"{{"method": "CheckTransaction", "params": {{"id": "{}"}}, "id": 1}}"#, "x".repeat(70_000));
    let (status, text) = payme_raw(&app, Some(&basic("Paycom", PAYME_KEY)), big.as_bytes()).await;
    assert_eq!((status, code(&serde_json::from_str(&text).unwrap())), (200, -32600));
    let (_, text) = payme_raw(&app, Some(&basic("Paycom", PAYME_KEY)), b"\xff\xfe{").await;
    assert_eq!(code(&serde_json::from_str(&text).unwrap()), -32700);
    for body in [&b"\xff\xfe=%%&&=="[..], b"", b"click_trans_id=1&click_trans_id=2"] {
        let res =
            app.http.post(format!("{}/v1/payments/click/prepare", app.base)).body(body.to_vec()).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], -8, "{body:?}");
    }
    // The database goes away: Payme hears -32400 (a system error), still with HTTP 200.
    let admin = tokio_postgres::connect(&bozor_commands::testing::admin_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(admin.1);
    let name = app.db.name.clone();
    admin.0.batch_execute(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")).await.unwrap();
    admin
        .0
        .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&name])
        .await
        .unwrap();
    let params = json!({ "id": "down", "time": now_ms(), "amount": 100, "account": { "wallet_id": Uuid::new_v4() } });
    assert_eq!(code(&payme(&app, "CreateTransaction", params).await), -32400);
    assert_eq!(code(&payme(&app, "CheckTransaction", json!({ "id": "down" })).await), -32400);
    admin.0.batch_execute(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")).await.unwrap();
}
