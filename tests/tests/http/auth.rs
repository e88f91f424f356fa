//! Login by phone and one-time code through a local stand-in for Eskiz (the SMS gateway),
//! refresh-token rotation and reuse detection, roles granted by admins, the operator CLI, rate
//! limits, and the refusal to run production on development secrets.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpResponse, HttpServer};
use bozor_api::auth::sms::EskizSettings;
use bozor_api::auth::SmsSettings;
use bozor_api::configuration::Settings;
use bozor_commands::testing::fresh_database;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{bozor_bin, spawn_on, TestApp, User};

/// What the Eskiz stand-in saw: logins and the messages it accepted.
#[derive(Default)]
pub(crate) struct Gateway {
    logins: usize,
    sent: Vec<(String, String, String)>,
}

impl Gateway {
    /// The code in the last message sent to `digits`.
    fn code_for(&self, digits: &str) -> String {
        self.code_sent_to(digits).expect("a message with a six-digit code was sent")
    }

    /// The code in the last message sent to `digits`, if one was.
    pub(crate) fn code_sent_to(&self, digits: &str) -> Option<String> {
        let (_, text, _) = self.sent.iter().rev().find(|(to, ..)| to == digits)?;
        text.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).map(str::to_owned)
    }
}

/// Eskiz's two calls on loopback. Its first token is treated as expired on first use, so the
/// sender's renew-once path runs too.
async fn eskiz_stub() -> (String, Arc<Mutex<Gateway>>) {
    let seen = Arc::new(Mutex::new(Gateway::default()));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = web::Data::new(seen.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route(
                "/api/auth/login",
                web::post().to(|g: web::Data<Arc<Mutex<Gateway>>>, f: web::Form<Vec<(String, String)>>| async move {
                    let ok = f.iter().any(|(k, v)| k == "email" && v == "ops@bozor.uz");
                    if !ok {
                        return HttpResponse::Unauthorized().finish();
                    }
                    let mut g = g.lock().unwrap();
                    g.logins += 1;
                    HttpResponse::Ok().json(json!({ "data": { "token": format!("tok-{}", g.logins) } }))
                }),
            )
            .route(
                "/api/message/sms/send",
                web::post().to(
                    |g: web::Data<Arc<Mutex<Gateway>>>,
                     r: actix_web::HttpRequest,
                     f: web::Form<Vec<(String, String)>>| async move {
                        let auth = r.headers().get("Authorization").and_then(|h| h.to_str().ok()).unwrap_or("");
                        if auth != "Bearer tok-2" {
                            return HttpResponse::Unauthorized().finish();
                        }
                        let field =
                            |name: &str| f.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
                        let mut g = g.lock().unwrap();
                        g.sent.push((field("mobile_phone"), field("message"), field("from")));
                        HttpResponse::Ok().json(json!({ "id": "4f1c", "status": "waiting" }))
                    },
                ),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (url, seen)
}

/// The app with SMS through the stand-in, and `tune` applied to its settings.
pub(crate) async fn app_with_sms(tune: impl FnOnce(&mut Settings)) -> (TestApp, Arc<Mutex<Gateway>>) {
    let (url, gateway) = eskiz_stub().await;
    let db = fresh_database().await;
    let mut settings = Settings::development(&db.url);
    settings.auth.sms = SmsSettings::Eskiz(EskizSettings {
        base_url: url,
        email: "ops@bozor.uz".into(),
        password: "secret".into(),
        from: "4546".into(),
    });
    tune(&mut settings);
    (spawn_on(db, settings, true).await, gateway)
}

async fn public_post(app: &TestApp, path: &str, body: Value) -> crate::support::Reply {
    app.raw(path, &[("Content-Type", "application/json")], serde_json::to_vec(&body).unwrap()).await
}

/// Asks for a code and logs in with it: the session's JSON.
async fn login(app: &TestApp, gateway: &Mutex<Gateway>, phone: &str) -> Value {
    public_post(app, "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let code = gateway.lock().unwrap().code_for(&digits);
    public_post(app, "/v1/auth/otp/verify", json!({ "phone": phone, "code": code })).await.ok().body
}

fn bearer(session: &Value) -> User {
    let id = session["user"]["id"].as_str().unwrap().parse().unwrap();
    User { id, header: format!("Bearer {}", session["access_token"].as_str().unwrap()) }
}

fn other_code(code: &str) -> String {
    format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[tokio::test]
async fn a_phone_logs_in_with_the_code_it_was_sent_and_gets_working_tokens() {
    let (app, gateway) = app_with_sms(|_| {}).await;
    let sent = public_post(&app, "/v1/auth/otp/request", json!({ "phone": "+998 90 123-45-67" })).await.ok();
    assert_eq!((sent.status.as_u16(), sent.body["expires_in"].as_i64()), (202, Some(300)));
    assert_eq!(sent.headers["cache-control"], "no-store");
    let code = {
        let g = gateway.lock().unwrap();
        assert_eq!(g.logins, 2, "the stale first token was renewed once");
        assert_eq!((g.sent[0].0.as_str(), g.sent[0].2.as_str()), ("998901234567", "4546"));
        g.code_for("998901234567")
    };
    let codes: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM auth_otp WHERE code_hash = $1", &[&code.as_bytes()])
        .await
        .unwrap()
        .get(0);
    assert_eq!(codes, 0, "codes are stored hashed");

    let wrong =
        public_post(&app, "/v1/auth/otp/verify", json!({ "phone": "+998901234567", "code": other_code(&code) })).await;
    wrong.err(401, "otp_invalid");
    assert_eq!(wrong.body["error"]["details"]["attempts_left"], 4);
    let session = public_post(&app, "/v1/auth/otp/verify", json!({ "phone": "998901234567", "code": code })).await.ok();
    let s = &session.body;
    assert_eq!((s["token_type"].as_str(), s["expires_in"].as_i64()), (Some("Bearer"), Some(900)));
    assert_eq!(s["user"]["roles"], json!(["buyer"]));
    assert_eq!(s["user"]["phone"], "+998901234567");
    let me = bearer(s);
    let profile = app.get_as(&me, &format!("/v1/users/me?min_position={}", s["position"])).await.ok();
    assert_eq!(
        (profile.body["phone"].as_str(), profile.body["roles"].clone()),
        (Some("+998901234567"), json!(["buyer"]))
    );
    app.get_as(&me, &format!("/v1/wallets/{}", me.id)).await.ok();
    app.get_as(&me, &format!("/v1/wallets/{}", Uuid::new_v4())).await.err(403, "forbidden");
    let registered: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'UserRegistered'", &[&me.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(registered, 1, "the user is an event stream");

    public_post(&app, "/v1/auth/otp/verify", json!({ "phone": "+998901234567", "code": code }))
        .await
        .err(401, "otp_invalid");
    // The same number logs in as the same user (once the resend gap has passed).
    app.db
        .client()
        .await
        .execute("UPDATE auth_otp SET created_at = created_at - interval '2 minutes'", &[])
        .await
        .unwrap();
    let again = login(&app, &gateway, "+998901234567").await;
    assert_eq!(again["user"]["id"], s["user"]["id"]);
    // A number keeps at most a day of codes.
    let c = app.db.client().await;
    c.execute("UPDATE auth_otp SET created_at = created_at - interval '2 days'", &[]).await.unwrap();
    public_post(&app, "/v1/auth/otp/request", json!({ "phone": "+998901234567" })).await.ok();
    let kept: i64 = c.query_one("SELECT count(*) FROM auth_otp", &[]).await.unwrap().get(0);
    assert_eq!(kept, 1, "older codes were pruned");
}

#[tokio::test]
async fn codes_die_after_five_wrong_guesses_or_five_minutes_and_numbers_are_limited() {
    let (app, gateway) = app_with_sms(|s| s.auth.rate.auth_per_ip = 1_000).await;
    let phone = "+998935550011";
    let before = app.events().await;
    public_post(&app, "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
    let again = public_post(&app, "/v1/auth/otp/request", json!({ "phone": phone })).await;
    again.err(429, "rate_limited");
    let wait: u64 = again.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");

    let code = gateway.lock().unwrap().code_for("998935550011");
    for left in (0..5).rev() {
        let r = public_post(&app, "/v1/auth/otp/verify", json!({ "phone": phone, "code": other_code(&code) })).await;
        r.err(401, "otp_invalid");
        assert_eq!(r.body["error"]["details"]["attempts_left"], left);
    }
    let r = public_post(&app, "/v1/auth/otp/verify", json!({ "phone": phone, "code": code })).await;
    r.err(429, "otp_attempts_exceeded");

    // A fresh code that has expired is refused too.
    let c = app.db.client().await;
    c.execute("UPDATE auth_otp SET created_at = created_at - interval '2 minutes'", &[]).await.unwrap();
    public_post(&app, "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
    let code = gateway.lock().unwrap().code_for("998935550011");
    c.execute("UPDATE auth_otp SET expires_at = now() - interval '1 second'", &[]).await.unwrap();
    public_post(&app, "/v1/auth/otp/verify", json!({ "phone": phone, "code": code })).await.err(401, "otp_invalid");

    // Five codes an hour per number: three more pass (gaps backdated), the sixth is refused.
    for _ in 0..3 {
        c.execute("UPDATE auth_otp SET created_at = created_at - interval '2 minutes'", &[]).await.unwrap();
        public_post(&app, "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
    }
    c.execute("UPDATE auth_otp SET created_at = created_at - interval '2 minutes'", &[]).await.unwrap();
    let sixth = public_post(&app, "/v1/auth/otp/request", json!({ "phone": phone })).await;
    sixth.err(429, "rate_limited");
    let wait: u64 = sixth.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 60 && wait <= 3_600, "until the oldest code of the hour ages out: {wait}");
    assert_eq!(gateway.lock().unwrap().sent.len(), 5);
    assert_eq!(app.events().await, before, "failed logins register no one");

    for bad in [json!({ "phone": "+79031234567" }), json!({ "phone": "+99890" }), json!({ "phone": 998901234567i64 })] {
        let r = public_post(&app, "/v1/auth/otp/request", bad.clone()).await;
        assert!(r.status.as_u16() == 422, "{bad}: {}", r.body);
    }
    let r = public_post(&app, "/v1/auth/otp/verify", json!({ "phone": phone, "code": "12a456" })).await;
    r.err(422, "invalid_field");
}

#[tokio::test]
async fn refresh_rotates_and_a_reused_refresh_token_revokes_its_family() {
    let (app, gateway) = app_with_sms(|_| {}).await;
    let first = login(&app, &gateway, "+998971112233").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": r1 })).await.ok().body;
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "each refresh rotates");
    app.get_as(&bearer(&second), &format!("/v1/wallets/{}", second["user"]["id"].as_str().unwrap())).await.ok();

    // r1 again: a replay or a thief. Both copies die.
    public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": r1 })).await.err(401, "refresh_token_reused");
    public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": r2 })).await.err(401, "invalid_refresh_token");

    // Logout revokes; unknown and malformed tokens are refused.
    let c = app.db.client().await;
    c.execute("UPDATE auth_otp SET created_at = created_at - interval '2 minutes'", &[]).await.unwrap();
    let third = login(&app, &gateway, "+998971112233").await;
    let r3 = third["refresh_token"].as_str().unwrap().to_owned();
    let out = public_post(&app, "/v1/auth/logout", json!({ "refresh_token": r3 })).await;
    assert_eq!(out.status.as_u16(), 204);
    public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": r3 })).await.err(401, "invalid_refresh_token");
    public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": "x".repeat(43) }))
        .await
        .err(401, "invalid_refresh_token");
    public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": "x".repeat(500) }))
        .await
        .err(401, "invalid_refresh_token");
    public_post(&app, "/v1/auth/refresh", json!({ "token": r3 })).await.err(422, "invalid_body");
    // An expired one too.
    c.execute("UPDATE auth_otp SET created_at = created_at - interval '2 minutes'", &[]).await.unwrap();
    let fourth = login(&app, &gateway, "+998971112233").await;
    c.execute("UPDATE auth_refresh_tokens SET expires_at = now() - interval '1 second'", &[]).await.unwrap();
    let r4 = fourth["refresh_token"].as_str().unwrap();
    public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": r4 })).await.err(401, "invalid_refresh_token");
}

#[tokio::test]
async fn the_cli_bootstraps_an_admin_whose_grants_reach_tokens_at_refresh() {
    let (app, gateway) = app_with_sms(|_| {}).await;
    let out = std::process::Command::new(bozor_bin())
        .args(["admin", "grant", "--phone", "+998900000001", "--role", "admin"])
        .env("BOZOR_DATABASE_URL", &app.db.url)
        .output()
        .expect("bozor runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let admin = bearer(&login(&app, &gateway, "+998900000001").await);
    let seller_session = login(&app, &gateway, "+998900000002").await;
    let seller = bearer(&seller_session);
    let listing = json!({ "title": "Nexia 3", "category": "cars", "price": 9_000_000_000i64,
                          "details": { "kind": "classified" } });
    app.post(&seller, "/v1/listings", listing.clone()).await.err(403, "forbidden");

    let grant = json!({ "role": "seller", "plan": "pro" });
    app.post(&seller, &format!("/v1/users/{}/roles", seller.id), grant.clone()).await.err(403, "forbidden");
    let granted = app.post(&admin, &format!("/v1/users/{}/roles", seller.id), grant).await.ok();
    app.post(&admin, &format!("/v1/users/{}/roles", seller.id), json!({ "role": "god" }))
        .await
        .err(422, "invalid_field");
    app.post(&admin, &format!("/v1/users/{}/roles", Uuid::new_v4()), json!({ "role": "support" }))
        .await
        .err(404, "user_not_found");
    // The old token still says buyer; a refresh reads the grant.
    app.post(&seller, "/v1/listings", listing.clone()).await.err(403, "forbidden");
    let refreshed =
        public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": seller_session["refresh_token"] })).await.ok();
    assert_eq!(refreshed.body["user"]["roles"], json!(["buyer", "seller"]));
    assert_eq!(refreshed.body["user"]["plan"], "pro");
    let seller = bearer(&refreshed.body);
    let me = app.get_as(&seller, &format!("/v1/users/me?min_position={}", granted.body["position"])).await.ok().body;
    assert_eq!((me["id"].as_str(), me["plan"].as_str()), (Some(seller.id.to_string().as_str()), Some("pro")));
    assert_eq!(me["roles"], json!(["buyer", "seller"]));
    let sellers = app.get_as(&admin, "/v1/users?role=seller").await.ok().body;
    assert_eq!(sellers["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(sellers["items"][0]["phone"], "+998900000002");
    app.get_as(&admin, &format!("/v1/users/{}", seller.id)).await.ok();
    app.get_as(&seller, &format!("/v1/users/{}", admin.id)).await.err(403, "forbidden");
    app.get_as(&seller, "/v1/users?role=seller").await.err(403, "forbidden");
    app.get_as(&admin, "/v1/users?role=wizard").await.err(400, "invalid_query");
    app.get_as(&admin, &format!("/v1/users/{}", Uuid::new_v4())).await.err(404, "user_not_found");
    // Staff find one user by the number they log in with, written any way a person writes it.
    let by_phone = app.get_as(&admin, "/v1/users?phone=%2B998%2090%20000-00-02").await.ok().body;
    assert_eq!(by_phone["items"].as_array().map(Vec::len), Some(1), "{by_phone}");
    assert_eq!(by_phone["items"][0]["id"], seller.id.to_string());
    let nobody = app.get_as(&admin, "/v1/users?phone=%2B998901234000").await.ok().body;
    assert_eq!(nobody["items"], json!([]));
    app.get_as(&seller, "/v1/users?phone=%2B998900000002").await.err(403, "forbidden");
    app.get_as(&admin, "/v1/users?phone=12").await.err(400, "invalid_query");
    app.get_as(&admin, "/v1/users?phone=%2B998900000002&role=seller").await.err(400, "invalid_query");
    app.get_as(&admin, "/v1/users").await.err(400, "invalid_query");
    let id = app.post(&seller, "/v1/listings", listing).await.ok().id();
    let state = app.load::<bozor_domain::listing::ListingAggregate>(id).await;
    match state {
        bozor_domain::listing::State::Exists(l) => assert_eq!(l.seller_plan, bozor_domain::Plan::Pro),
        other => panic!("{other:?}"),
    }

    // `bozor token` mints with the configured secret: an auditor reads the log with it.
    let out = std::process::Command::new(bozor_bin())
        .args(["token", "--user", &Uuid::new_v4().to_string(), "--role", "auditor"])
        .output()
        .expect("bozor runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let auditor =
        User { id: Uuid::new_v4(), header: format!("Bearer {}", String::from_utf8_lossy(&out.stdout).trim()) };
    let log = app.get_as(&auditor, "/v1/audit/events?after=0&limit=1000").await.ok();
    assert_eq!(log.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = log.body.as_str().unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.iter().any(|e| e["event_type"] == "RoleGranted"), "the grant is in the log");
    let last = lines.last().unwrap()["global_position"].as_i64().unwrap();
    let rest = app.get_as(&auditor, &format!("/v1/audit/events?after={last}")).await.ok();
    assert_eq!(rest.body.as_str().unwrap_or(""), "", "nothing after the last line");
    app.get_as(&admin, "/v1/audit/events?limit=5000").await.err(400, "invalid_query");
}

#[tokio::test]
async fn auth_calls_are_limited_per_ip_and_commands_per_user() {
    let (app, _gateway) = app_with_sms(|s| {
        s.auth.rate.auth_per_ip = 3;
        s.auth.rate.commands_per_user = 2;
    })
    .await;
    for i in 0..3 {
        let r = public_post(&app, "/v1/auth/refresh", json!({ "refresh_token": format!("unknown-{i}") })).await;
        r.err(401, "invalid_refresh_token");
    }
    let limited = public_post(&app, "/v1/auth/otp/request", json!({ "phone": "+998901112233" })).await;
    limited.err(429, "rate_limited");
    assert!(limited.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);

    let (seller, other) = (User::seller("free"), User::seller("free"));
    let body = json!({ "title": "Divan", "category": "home", "price": 100, "details": { "kind": "classified" } });
    for _ in 0..2 {
        app.post(&seller, "/v1/listings", body.clone()).await.ok();
    }
    let before = app.events().await;
    let r = app.post(&seller, "/v1/listings", body.clone()).await;
    r.err(429, "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(app.events().await, before, "a limited command appends nothing");
    app.post(&other, "/v1/listings", body).await.ok();
}

#[tokio::test]
async fn answers_carry_security_headers_and_cors_follows_configuration() {
    let db = fresh_database().await;
    let mut settings = Settings::development(&db.url);
    settings.cors_origins = vec!["https://bozor.uz".into()];
    let app = spawn_on(db, settings, false).await;
    let r = app.get("/healthz").await;
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
    ] {
        assert_eq!(r.headers[name], value, "{name}");
    }
    let allowed = app.get_with("/v1/listings", &[("Origin", "https://bozor.uz")]).await;
    assert_eq!(allowed.headers["access-control-allow-origin"], "https://bozor.uz");
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/v1/listings", app.base))
        .header("Origin", "https://bozor.uz")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://bozor.uz");
    let foreign = app.get_with("/v1/listings", &[("Origin", "https://evil.example")]).await;
    assert!(!foreign.headers.contains_key("access-control-allow-origin"), "other origins get no CORS grant");
}

/// Production will not start on the published development secrets, a short JWT secret, or
/// with login codes going to the log.
#[tokio::test]
async fn production_refuses_to_start_with_default_or_short_secrets() {
    let good_secret = "0123456789abcdef0123456789abcdef-production";
    let good_key = "cHJvZHVjdGlvbi1tYXN0ZXIta2V5LTMyLWJ5dGVzISE=";
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "BOZOR_JWT_SECRET"),
        (&[("BOZOR_JWT_SECRET", "too-short-secret")], "BOZOR_JWT_SECRET"),
        (&[("BOZOR_JWT_SECRET", good_secret)], "BOZOR_MASTER_KEY"),
        (&[("BOZOR_JWT_SECRET", good_secret), ("BOZOR_MASTER_KEY", good_key)], "BOZOR_SMS"),
    ];
    for (env, refused) in cases {
        let out = std::process::Command::new(bozor_bin())
            .arg("serve")
            .env("BOZOR_ENV", "production")
            .env("BOZOR_HTTP_ADDR", "127.0.0.1:0")
            .env_remove("BOZOR_JWT_SECRET")
            .env_remove("BOZOR_MASTER_KEY")
            .env_remove("BOZOR_SMS")
            .envs(env.iter().copied())
            .output()
            .expect("bozor runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(refused), "{env:?}: {stderr}");
        assert!(!stderr.contains("too-short-secret"), "secrets are never echoed");
    }
}

/// A newer code replaces the older ones, and a used code ends every code of the number:
/// request A, a minute later B, log in with B, then A answers 401.
#[tokio::test]
async fn an_older_code_dies_when_a_newer_one_is_sent_or_used() {
    let (app, gateway) = app_with_sms(|s| s.auth.rate.auth_per_ip = 1_000).await;
    let phone = "+998935550077";
    public_post(&app, "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
    let a = gateway.lock().unwrap().code_for("998935550077");
    let c = app.db.client().await;
    c.execute("UPDATE auth_otp SET created_at = created_at - interval '61 seconds'", &[]).await.unwrap();
    public_post(&app, "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
    let b = gateway.lock().unwrap().code_for("998935550077");
    if a != b {
        // The older code no longer logs in even before the newer one is used.
        public_post(&app, "/v1/auth/otp/verify", json!({ "phone": phone, "code": a })).await.err(401, "otp_invalid");
    }
    public_post(&app, "/v1/auth/otp/verify", json!({ "phone": phone, "code": b })).await.ok();
    public_post(&app, "/v1/auth/otp/verify", json!({ "phone": phone, "code": a })).await.err(401, "otp_invalid");
    let live: i64 = c
        .query_one("SELECT count(*) FROM auth_otp WHERE consumed_at IS NULL AND expires_at > now()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 0, "no code of the number is left to log in with");
}

/// A stranger asking for codes to someone's number neither ends the code its owner holds nor
/// uses up the owner's allowance: limits and replacement go by number and client address.
#[tokio::test]
async fn a_stranger_cannot_lock_a_number_out_of_logging_in() {
    let (app, gateway) = app_with_sms(|s| {
        s.auth.rate.auth_per_ip = 1_000;
        s.auth.trust_proxy_hops = 1;
    })
    .await;
    let phone = "+998935550088";
    let from = |ip: &'static str, path: &'static str, body: Value| {
        let app = &app;
        async move {
            let headers = [("Content-Type", "application/json"), ("X-Forwarded-For", ip)];
            app.raw(path, &headers, serde_json::to_vec(&body).unwrap()).await
        }
    };
    from("198.51.100.1", "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
    let owners = gateway.lock().unwrap().code_for("998935550088");
    // The stranger asks for five codes in the hour, every one they may.
    let c = app.db.client().await;
    for _ in 0..5 {
        from("203.0.113.9", "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
        c.execute("UPDATE auth_otp SET created_at = created_at - interval '61 seconds' WHERE ip = '203.0.113.9'", &[])
            .await
            .unwrap();
    }
    from("203.0.113.9", "/v1/auth/otp/request", json!({ "phone": phone })).await.err(429, "rate_limited");
    // The owner's code still logs in, and the owner may still ask for codes.
    from("198.51.100.1", "/v1/auth/otp/verify", json!({ "phone": phone, "code": owners })).await.ok();
    c.execute("UPDATE auth_otp SET created_at = created_at - interval '61 seconds'", &[]).await.unwrap();
    from("198.51.100.1", "/v1/auth/otp/request", json!({ "phone": phone })).await.ok();
}
