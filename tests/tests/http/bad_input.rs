//! Bad input of every kind answers a 4xx with a stable code and appends nothing.

use serde_json::json;
use uuid::Uuid;

use bozor_api::auth::jwt::{Claims, Keys, ISSUER};
use bozor_api::auth::DEV_JWT_SECRET;
use bozor_domain::Role;

use crate::support::{spawn, User};

fn claims(id: Uuid, exp: i64) -> Claims {
    let iat = exp - 900;
    Claims { sub: id, roles: vec![Role::Buyer, Role::Seller], plan: None, district: None, iat, exp, iss: ISSUER.into() }
}

fn forged_token(id: Uuid) -> String {
    Keys::new(b"a key that is not the server's at all").mint(&claims(id, chrono_now() + 900))
}

fn expired_token(id: Uuid) -> String {
    Keys::new(DEV_JWT_SECRET.as_bytes()).mint(&claims(id, chrono_now() - 1))
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Path, headers, body, expected status and code.
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);

#[tokio::test]
async fn every_kind_of_bad_request_is_refused_with_its_code_and_changes_nothing() {
    let app = spawn().await;
    let seller = User::seller("free");
    let valid =
        json!({ "title": "Kitob", "category": "books", "price": 5_000_000, "details": { "kind": "classified" } });
    let listing = app.post(&seller, "/v1/listings", valid.clone()).await.ok().id();
    let before = app.events().await;

    let json_ct = ("Content-Type", "application/json");
    let actor = ("Authorization", seller.header.as_str());
    let support = User::new("support");
    let moderator = ("Authorization", support.header.as_str());
    // Signed with another secret, and one of ours that expired.
    let forged = format!("Bearer {}", forged_token(seller.id));
    let expired = format!("Bearer {}", expired_token(seller.id));
    let huge = serde_json::to_vec(&json!({ "title": "a".repeat(70_000) })).unwrap();
    let cases: Vec<Case> = vec![
        ("/v1/listings", vec![actor, json_ct], b"{\"title\": ".to_vec(), 400, "malformed_json"),
        ("/v1/listings", vec![actor, json_ct], b"[1, 2".to_vec(), 400, "malformed_json"),
        (
            "/v1/listings",
            vec![actor, json_ct],
            b"{\"title\":\"a\",\"category\":\"b\",\"price\":1,\"details\":{\"kind\":\"classified\"},\"admin\":true}"
                .to_vec(),
            422,
            "invalid_body",
        ),
        (
            "/v1/listings",
            vec![actor, json_ct],
            b"{\"title\":\"a\",\"category\":\"b\",\"price\":\"100\",\"details\":{\"kind\":\"classified\"}}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "/v1/listings",
            vec![actor, json_ct],
            b"{\"title\":\"a\",\"category\":\"b\",\"price\":1.5,\"details\":{\"kind\":\"classified\"}}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "/v1/listings",
            vec![actor, json_ct],
            b"{\"title\":\"a\",\"category\":\"b\",\"price\":1,\"details\":{\"kind\":\"spaceship\"}}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "/v1/listings",
            vec![actor, json_ct],
            b"{\"title\":\"a\",\"category\":\"b\",\"price\":-100,\"details\":{\"kind\":\"classified\"}}".to_vec(),
            422,
            "invalid_field",
        ),
        ("/v1/listings", vec![actor, json_ct], huge, 413, "body_too_large"),
        (
            "/v1/listings",
            vec![actor, ("Content-Type", "text/plain")],
            serde_json::to_vec(&valid).unwrap(),
            415,
            "unsupported_media_type",
        ),
        ("/v1/listings", vec![json_ct], serde_json::to_vec(&valid).unwrap(), 401, "unauthenticated"),
        (
            "/v1/listings",
            vec![("Authorization", "Bearer not-a-token"), json_ct],
            serde_json::to_vec(&valid).unwrap(),
            401,
            "invalid_token",
        ),
        (
            "/v1/listings",
            vec![("Authorization", "Basic dXNlcjpwYXNz"), json_ct],
            serde_json::to_vec(&valid).unwrap(),
            401,
            "invalid_token",
        ),
        ("/v1/listings", vec![("Authorization", forged.as_str()), json_ct], b"{}".to_vec(), 401, "invalid_token"),
        ("/v1/listings", vec![("Authorization", expired.as_str()), json_ct], b"{}".to_vec(), 401, "token_expired"),
        ("/v1/listings/not-a-uuid/submit", vec![actor, json_ct], b"{}".to_vec(), 400, "invalid_id"),
        ("/v1/orders/123/pay", vec![actor, json_ct], b"{}".to_vec(), 400, "invalid_id"),
        ("/v1/listings/{listing}/submit", vec![actor, json_ct], b"{\"now\": true}".to_vec(), 422, "invalid_body"),
        ("/v1/listings/{listing}/reject", vec![moderator, json_ct], b"{}".to_vec(), 422, "invalid_body"),
        ("/v1/listings/{random}/submit", vec![actor, json_ct], b"{}".to_vec(), 404, "listing_not_found"),
        ("/v1/nothing-here", vec![actor, json_ct], b"{}".to_vec(), 404, "route_not_found"),
        (
            "/v1/orders",
            vec![actor, json_ct],
            b"{\"items\":[{\"listing_id\":\"x\",\"quantity\":1}]}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "/v1/orders",
            vec![actor, json_ct],
            b"{\"items\":[{\"listing_id\":\"00000000-0000-0000-0000-000000000000\",\"quantity\":-1}]}".to_vec(),
            422,
            "invalid_body",
        ),
        (
            "/v1/wallets/{user}/withdrawals",
            vec![actor, json_ct],
            b"{\"amount\":0,\"card_last4\":\"1234\"}".to_vec(),
            422,
            "invalid_field",
        ),
        (
            "/v1/wallets/{user}/withdrawals",
            vec![actor, json_ct],
            b"{\"amount\":99999999999999999999,\"card_last4\":\"1234\"}".to_vec(),
            422,
            "invalid_body",
        ),
    ];
    let random = Uuid::new_v4().to_string();
    let user = seller.id.to_string();
    for (path, headers, body, status, code) in cases {
        let path =
            path.replace("{listing}", &listing.to_string()).replace("{random}", &random).replace("{user}", &user);
        let reply = app.raw(&path, &headers, body).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (status, code), "{path}: {}", reply.body);
        assert!(reply.body["error"]["message"].is_string(), "{path}: errors carry a message");
    }
    assert_eq!(app.events().await, before, "no bad request appended anything");
}
