//! Game-account credentials end to end: sealed before they reach the log, readable only by the
//! buyer of a delivered order and admins, every read recorded, and crypto-shredded on erasure
//! while the log stays whole.

use serde_json::json;

use crate::support::{spawn, TestApp, User, GAME_LOGIN, GAME_PASSWORD};

async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db.client().await.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn credentials_are_sealed_revealed_on_record_and_shredded_on_erasure() {
    let app = spawn().await;
    let (seller, buyer, admin) = (User::seller("premium"), User::buyer(), User::new("admin"));
    let game = app.active_game_account(&seller, 30_000_000).await;

    // Only ciphertext in the log: neither the login nor the password appear anywhere in it.
    let leaks = format!(
        "SELECT count(*) FROM events WHERE payload::text LIKE '%{GAME_LOGIN}%' OR payload::text LIKE '%{GAME_PASSWORD}%'
            OR metadata::text LIKE '%{GAME_PASSWORD}%'"
    );
    assert_eq!(count(&app, &leaks).await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM events WHERE event_type = 'CredentialsSet'").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM data_keys").await, 1);

    app.deposit(&buyer, 40_000_000).await;
    let order =
        app.post(&buyer, "/v1/orders", json!({ "items": [{ "listing_id": game, "quantity": 1 }] })).await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    let reveal = format!("/v1/listings/{game}/credentials/reveal");
    app.post(&buyer, &reveal, json!({ "order_id": order })).await.err(403, "forbidden");
    // The seller may not replace or shred them while the deal runs.
    app.post(&seller, &format!("/v1/listings/{game}/credentials/erase"), json!({}))
        .await
        .err(409, "invalid_transition");
    app.post(&seller, &format!("/v1/listings/{game}/credentials"), json!({ "login": "x", "password": "y" }))
        .await
        .err(409, "invalid_transition");

    app.post(&seller, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    let read = app.post(&buyer, &reveal, json!({ "order_id": order })).await.ok();
    assert_eq!((read.body["login"].as_str(), read.body["password"].as_str()), (Some(GAME_LOGIN), Some(GAME_PASSWORD)));
    assert_eq!(read.headers["cache-control"], "no-store");
    let by_admin = app.post(&admin, &reveal, json!({})).await.ok();
    assert_eq!(by_admin.body["password"], GAME_PASSWORD);
    let recorded = app
        .db
        .client()
        .await
        .query("SELECT payload FROM events WHERE event_type = 'CredentialsRevealed' ORDER BY global_position", &[])
        .await
        .unwrap();
    let to: Vec<String> =
        recorded.iter().map(|r| r.get::<_, serde_json::Value>(0)["to"].as_str().unwrap().to_owned()).collect();
    assert_eq!(to, vec![buyer.id.to_string(), admin.id.to_string()], "every read is an event");

    app.post(&buyer, &format!("/v1/orders/{order}/confirm"), json!({})).await.ok();
    let events_before = app.events().await;
    app.post(&seller, &format!("/v1/listings/{game}/credentials/erase"), json!({})).await.ok();
    assert_eq!(count(&app, "SELECT count(*) FROM data_keys").await, 0, "the data key is gone");
    app.post(&buyer, &reveal, json!({ "order_id": order })).await.err(410, "credentials_erased");
    app.post(&admin, &reveal, json!({})).await.err(410, "credentials_erased");
    // Erasing again changes nothing; the log kept every event, ciphertext included, and its
    // hash chain still verifies.
    app.post(&admin, &format!("/v1/listings/{game}/credentials/erase"), json!({})).await.ok();
    assert_eq!(app.events().await, events_before + 1);
    assert_eq!(count(&app, "SELECT count(*) FROM events WHERE event_type = 'CredentialsSet'").await, 1);
    let stream = app.store.read_stream(game).await.unwrap();
    bozor_commands::store::verify_chain(&stream).expect("the log is intact");
}

#[tokio::test]
async fn a_game_account_without_credentials_cannot_be_delivered_and_bad_credentials_are_refused() {
    let app = spawn().await;
    let (seller, buyer) = (User::seller("free"), User::buyer());
    let body = json!({ "title": "Standoff 2 akkaunt", "category": "game_accounts", "price": 5_000_000,
                       "details": { "kind": "game_account", "game": "Standoff 2", "level": 30 } });
    let game = app.activate(&seller, body).await;
    app.deposit(&buyer, 10_000_000).await;
    let order =
        app.post(&buyer, "/v1/orders", json!({ "items": [{ "listing_id": game, "quantity": 1 }] })).await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    let before = app.events().await;
    app.post(&seller, &format!("/v1/orders/{order}/deliver"), json!({})).await.err(409, "credentials_missing");
    app.post(&User::new("admin"), &format!("/v1/listings/{game}/credentials/reveal"), json!({}))
        .await
        .err(409, "credentials_missing");
    assert_eq!(app.events().await, before, "refused deliveries and reads append nothing");

    let product = app.active_product(&seller, 1_000, 1).await;
    let before = app.events().await;
    let set = |id| format!("/v1/listings/{id}/credentials");
    app.post(&seller, &set(product), json!({ "login": "a", "password": "b" })).await.err(422, "invalid_field");
    let draft = app
        .post(
            &seller,
            "/v1/listings",
            json!({ "title": "CS2 Prime", "category": "game_accounts", "price": 9,
              "details": { "kind": "game_account", "game": "CS2", "level": 10 } }),
        )
        .await
        .ok()
        .id();
    app.post(&seller, &set(draft), json!({ "login": "", "password": "b" })).await.err(422, "invalid_field");
    app.post(&seller, &set(draft), json!({ "login": "a", "password": "p".repeat(257) }))
        .await
        .err(422, "invalid_field");
    app.post(&seller, &set(draft), json!({ "login": "a" })).await.err(422, "invalid_body");
    app.post(&seller, &set(draft), json!({ "login": "a", "password": "b", "pin": "1" })).await.err(422, "invalid_body");
    assert_eq!(app.events().await, before + 1, "only the draft was written");
    assert_eq!(count(&app, "SELECT count(*) FROM data_keys").await, 0, "no key was made for refused credentials");

    // Replacing credentials reuses the listing's one data key; the newest are what opens.
    app.post(&seller, &set(draft), json!({ "login": "first", "password": "one" })).await.ok();
    app.post(&seller, &set(draft), json!({ "login": "second", "password": "two" })).await.ok();
    assert_eq!(count(&app, "SELECT count(*) FROM data_keys").await, 1);
    let read = app.post(&User::new("admin"), &format!("/v1/listings/{draft}/credentials/reveal"), json!({})).await.ok();
    assert_eq!((read.body["login"].as_str(), read.body["password"].as_str()), (Some("second"), Some("two")));
}
