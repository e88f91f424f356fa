use serde_json::json;

use crate::support::{spawn, User};

fn listing() -> serde_json::Value {
    json!({ "title": "Nike Air Max 90", "category": "shoes", "price": 95_000_000,
            "details": { "kind": "product", "variants": [{ "sku": "42", "label": "42", "stock": 5 }] } })
}

#[tokio::test]
async fn a_retried_command_returns_the_stored_response_and_appends_once() {
    let app = spawn().await;
    let seller = User::seller("free");
    let key = [("Idempotency-Key", "create-nike-1")];
    let first = app.post_with(&seller, "/v1/listings", listing(), &key).await.ok();
    let again = app.post_with(&seller, "/v1/listings", listing(), &key).await.ok();
    assert_eq!(first.body, again.body, "same id, version and position");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(app.events().await, 1);

    let mut other = listing();
    other["price"] = json!(1);
    app.post_with(&seller, "/v1/listings", other, &key).await.err(422, "idempotency_key_reused");
    // Keys are per actor: another seller's identical key is a different request.
    app.post_with(&User::seller("free"), "/v1/listings", listing(), &key).await.ok();
    assert_eq!(app.events().await, 2);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_append_once() {
    let app = spawn().await;
    let (buyer, admin) = (User::buyer(), User::new("admin"));
    let path = format!("/v1/wallets/{}/deposit", buyer.id);
    // Eight clients race with the same key and body: one appends, the others get its answer.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (url, actor) = (format!("{}{path}", app.base), admin.header.clone());
            tokio::spawn(async move {
                let res = reqwest::Client::new()
                    .post(url)
                    .header("Authorization", actor)
                    .header("Idempotency-Key", "topup-1")
                    .json(&json!({ "amount": 1_000, "provider_tx_id": "click-1" }))
                    .send()
                    .await
                    .expect("request sent");
                (res.status().as_u16(), res.json::<serde_json::Value>().await.expect("json body"))
            })
        })
        .collect();
    let mut bodies = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        bodies.push(body);
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]), "every retry sees the one stored answer");
    assert_eq!(app.events().await, 4, "user wallet opened + credited, clearing opened + debited");
    assert_eq!(app.balance(buyer.id).await, (1_000, 0));
}

#[tokio::test]
async fn if_match_pins_the_version() {
    let app = spawn().await;
    let seller = User::seller("free");
    let id = app.post(&seller, "/v1/listings", listing()).await.ok().id();
    let path = format!("/v1/listings/{id}/update");
    let stale = app.post_with(&seller, &path, json!({ "title": "Nike Air Max 95" }), &[("If-Match", "\"0\"")]).await;
    stale.err(412, "version_mismatch");
    assert_eq!(stale.body["error"]["details"], json!({ "expected": 0, "actual": 1 }));
    app.post_with(&seller, &path, json!({ "title": "x" }), &[("If-Match", "soon")]).await.err(400, "invalid_header");
    assert_eq!(app.events().await, 1);
    let ok = app.post_with(&seller, &path, json!({ "title": "Nike Air Max 95" }), &[("If-Match", "\"1\"")]).await.ok();
    assert_eq!(ok.headers["etag"], "\"2\"");
    app.post_with(&seller, "/v1/listings", listing(), &[("Idempotency-Key", "")]).await.err(400, "invalid_header");
}
