use bozor_domain::wallet::PlatformAccount;
use serde_json::json;
use uuid::Uuid;

use crate::support::{spawn, User};

#[tokio::test]
async fn deposits_are_admin_only_and_idempotent_by_provider_transaction() {
    let app = spawn().await;
    let (user, admin) = (User::buyer(), User::new("admin"));
    let path = format!("/v1/wallets/{}/deposit", user.id);
    let body = json!({ "amount": 2_500_000, "provider_tx_id": "payme-63f1c2" });
    app.post(&user, &path, body.clone()).await.err(403, "forbidden");
    let first = app.post(&admin, &path, body.clone()).await.ok();
    assert_eq!(first.body["version"], 2, "opened and credited");
    let events = app.events().await;
    // The provider retries: no second credit, no new events.
    let again = app.post(&admin, &path, body).await.ok();
    assert_eq!(again.body["position"], json!(null));
    assert_eq!(again.body["version"], 2);
    assert_eq!(app.events().await, events);
    let other_amount = json!({ "amount": 9, "provider_tx_id": "payme-63f1c2" });
    app.post(&admin, &path, other_amount).await.err(409, "provider_transaction_mismatch");
    for bad in [json!({ "amount": 0, "provider_tx_id": "a" }), json!({ "amount": -1, "provider_tx_id": "a" })] {
        app.post(&admin, &path, bad).await.err(422, "invalid_field");
    }
    assert_eq!(app.events().await, events);
    assert_eq!(app.balance(user.id).await, (2_500_000, 0));
    assert_eq!(app.platform(PlatformAccount::ProviderClearing).await, -2_500_000);
}

#[tokio::test]
async fn withdrawals_hold_then_pay_out_or_return() {
    let app = spawn().await;
    let (user, admin) = (User::buyer(), User::new("admin"));
    app.deposit(&user, 1_000_000).await;
    let path = format!("/v1/wallets/{}/withdrawals", user.id);
    let before = app.events().await;
    app.post(&user, &path, json!({ "amount": 1_000_001, "card_last4": "1234" })).await.err(409, "insufficient_funds");
    app.post(&user, &path, json!({ "amount": 100, "card_last4": "12a4" })).await.err(422, "invalid_field");
    app.post(&User::buyer(), &path, json!({ "amount": 100, "card_last4": "1234" })).await.err(403, "forbidden");
    assert_eq!(app.events().await, before);

    let w1 = app.post(&user, &path, json!({ "amount": 600_000, "card_last4": "1234" })).await.ok();
    assert_eq!(w1.status.as_u16(), 201);
    assert_eq!(app.balance(user.id).await, (400_000, 600_000));
    let w2 = app.post(&user, &path, json!({ "amount": 300_000, "card_last4": "1234" })).await.ok();
    let done = |w: Uuid, what: &str| format!("/v1/wallets/{}/withdrawals/{w}/{what}", user.id);
    app.post(&user, &done(w1.id(), "complete"), json!({})).await.err(403, "forbidden");
    app.post(&admin, &done(w1.id(), "complete"), json!({})).await.ok();
    app.post(&admin, &done(w2.id(), "fail"), json!({})).await.ok();
    app.post(&admin, &done(w2.id(), "fail"), json!({})).await.err(404, "hold_not_found");
    assert_eq!(app.balance(user.id).await, (400_000 - 300_000 + 300_000, 0));
    assert_eq!(app.platform(PlatformAccount::PayoutClearing).await, 600_000);
    app.assert_books_balance().await;
}
