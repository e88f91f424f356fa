//! What the person on call sees: Prometheus `/metrics`, and a request's id carried from its
//! `X-Request-Id` into the answer, the events it caused and the JSON log lines it wrote.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::support::{bozor_bin, spawn, spawn_on, spawn_with, wait_for, Proc, ReadSide, User};

/// The value of the series `line_start` (name and labels exactly) in a scrape.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_commands_appends_caches_pools_and_projection_lag() {
    let app = spawn().await;
    let seller = User::seller("free");
    let id = app
        .activate(
            &seller,
            json!({
                "title": "Chevrolet Cobalt 2022", "category": "cars", "price": 1_500_000_000i64,
                "details": { "kind": "classified", "contact_phone": "+998901112233" }
            }),
        )
        .await;
    // A refused command, a malformed one, a route that does not exist, two reads of one detail.
    app.post(&User::buyer(), &format!("/v1/listings/{id}/approve"), json!({})).await.err(403, "forbidden");
    let bad = app
        .raw("/v1/listings", &[("Authorization", &seller.header), ("Content-Type", "application/json")], b"{".to_vec())
        .await;
    bad.err(400, "malformed_json");
    app.get(&format!("/v1/nothing/{}", Uuid::new_v4())).await.err(404, "route_not_found");
    // Methods of a client's invention share one series.
    for made_up in ["BREW", "PROPFIND"] {
        let method = reqwest::Method::from_bytes(made_up.as_bytes()).unwrap();
        app.http.request(method, format!("{}/v1/listings", app.base)).send().await.unwrap();
    }
    wait_for("the listing to be readable", 20, || async {
        app.get(&format!("/v1/listings/{id}")).await.status.is_success()
    })
    .await;
    app.get(&format!("/v1/listings/{id}")).await.ok();

    let res = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    let at_least = |series: &str, n: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
        assert!(v >= n, "{series} = {v}, expected at least {n}");
    };
    // Requests by route pattern (never by path: no id appears), method and status.
    at_least(r#"bozor_http_request_seconds_count{route="/v1/listings",method="POST",status="201"}"#, 1.0);
    at_least(r#"bozor_http_request_seconds_count{route="/v1/listings/{id}/approve",method="POST",status="403"}"#, 1.0);
    at_least(
        r#"bozor_http_request_seconds_bucket{route="/v1/listings/{id}",method="GET",status="200",le="+Inf"}"#,
        1.0,
    );
    at_least(r#"bozor_http_request_seconds_count{route="unmatched",method="GET",status="404"}"#, 1.0);
    assert!(!text.contains(&id.to_string()), "an id made a series of its own");
    assert!(!text.contains("BREW") && !text.contains("PROPFIND"), "a made-up method made a series of its own");
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(text.contains("# TYPE bozor_http_request_seconds histogram"));
    // Commands by name and outcome.
    at_least(r#"bozor_commands_total{command="create_listing",outcome="ok"}"#, 1.0);
    at_least(r#"bozor_commands_total{command="approve_listing",outcome="forbidden"}"#, 1.0);
    at_least(r#"bozor_commands_total{command="create_listing",outcome="malformed_json"}"#, 1.0);
    // Appends, caches, pools, projections.
    at_least(r#"bozor_append_seconds_count{outcome="ok"}"#, 3.0);
    at_least(r#"bozor_cache_lookups_total{cache="listing_details",result="hit"}"#, 1.0);
    at_least(r#"bozor_cache_lookups_total{cache="listing_details",result="miss"}"#, 1.0);
    at_least(r#"bozor_db_pool_connections{pool="requests",state="max"}"#, 1.0);
    assert!(sample(&text, r#"bozor_db_pool_connections{pool="workers",state="in_use"}"#).is_some(), "{text}");
    assert_eq!(sample(&text, "bozor_metrics_database_up"), Some(1.0));
    assert_eq!(sample(&text, r#"bozor_projection_state{projection="listings",feed="store",state="live"}"#), Some(1.0));
    assert!(sample(&text, r#"bozor_projection_lag_events{projection="listings",feed="store"}"#).is_some(), "{text}");
    at_least(r#"bozor_projection_events_total{projection="listings",feed="store"}"#, 3.0);
    // Every sample line parses as `name{labels} value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok() || value == "NaN", "not a sample: {line}");
    }
}

#[tokio::test]
async fn a_request_id_comes_back_and_is_carried_into_the_events_it_caused() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    let seller = User::seller("free");
    let request_id = Uuid::new_v4();
    let body = json!({ "title": "iPhone 15 Pro", "category": "phones", "price": 1_200_000_000i64,
                       "details": { "kind": "classified", "contact_phone": "+998901112233" } });
    let res = app.post_with(&seller, "/v1/listings", body, &[("X-Request-Id", &request_id.to_string())]).await.ok();
    assert_eq!(res.headers["x-request-id"].to_str().unwrap(), request_id.to_string());
    let c = app.db.client().await;
    let metadata: serde_json::Value =
        c.query_one("SELECT metadata FROM events WHERE stream_id = $1", &[&res.id()]).await.unwrap().get(0);
    assert_eq!(metadata["request_id"], request_id.to_string(), "{metadata}");
    assert_eq!(metadata["correlation_id"], request_id.to_string(), "{metadata}");
    // A forged id that is not a random UUID (not one at all, nil, a derived v5) is replaced.
    for forged in [
        "'; DROP TABLE events; --",
        "00000000-0000-0000-0000-000000000000",
        &Uuid::new_v5(&Uuid::NAMESPACE_OID, b"x").to_string(),
    ] {
        let res = app.get_with("/healthz", &[("X-Request-Id", forged)]).await;
        let given = res.headers["x-request-id"].to_str().unwrap();
        assert!(Uuid::parse_str(given).is_ok_and(|g| g.get_version_num() == 4) && given != forged, "{forged}: {given}");
    }
}

#[tokio::test]
async fn json_log_lines_written_while_serving_a_request_carry_its_id() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    let child = Command::new(bozor_bin())
        .arg("serve")
        .env("BOZOR_DATABASE_URL", &app.db.url)
        .env("BOZOR_HTTP_ADDR", "127.0.0.1:0")
        .env("BOZOR_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("BOZOR_KAFKA_BROKERS")
        .env_remove("BOZOR_PAYME_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Proc(child);
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let port = loop {
        let line = lines_rx.recv_timeout(Duration::from_secs(30)).expect("bozor serve logs that it serves");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        seen.push(v.clone());
        if v["message"] == "serving" {
            break v["port"].as_u64().expect("the port is logged");
        }
    };
    // Payme is not configured here: the call is refused, and that is logged.
    let request_id = Uuid::new_v4();
    let res = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/payments/payme"))
        .header("X-Request-Id", request_id.to_string())
        .body(r#"{"id":1,"method":"CheckTransaction","params":{"id":"x"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"].to_str().unwrap(), request_id.to_string());
    let found = loop {
        let Ok(line) = lines_rx.recv_timeout(Duration::from_secs(10)) else { break false };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if v["message"] == "payme call refused" {
            assert_eq!(v["span"]["request_id"], request_id.to_string(), "{line}");
            break true;
        }
        seen.push(v);
    };
    let _ = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status();
    let _ = child.0.wait();
    assert!(found, "no log line for the refused call among {seen:?}");
}

#[tokio::test]
async fn with_a_metrics_token_only_its_bearer_may_scrape() {
    let db = bozor_commands::testing::fresh_database().await;
    let mut settings = bozor_api::configuration::Settings::development(&db.url);
    settings.metrics_token = Some("scrape-me-0123456789".into());
    let app = spawn_on(db, settings, false).await;
    let url = format!("{}/metrics", app.base);
    let none = app.http.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let body: serde_json::Value = none.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    let wrong = app.http.get(&url).bearer_auth("scrape-me-012345678X").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let right = app.http.get(&url).bearer_auth("scrape-me-0123456789").send().await.unwrap();
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("bozor_http_request_seconds"));
}

/// A worker role's status endpoint: /readyz names a failed projection of the role (and only
/// of the role), /metrics wants the token when one is set.
#[tokio::test]
async fn a_worker_roles_readiness_names_its_failed_projection() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (handle, port) = bozor_api::startup::status_server(
        addr,
        "search-sync",
        app.db.pool.clone(),
        Some("scrape-token-0123456789".into()),
        vec!["search"],
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let c = app.db.client().await;
    c.execute(
        "INSERT INTO projection_checkpoints (projection, version) VALUES ('search', 1), ('listings', 1)
         ON CONFLICT (projection) DO NOTHING",
        &[],
    )
    .await
    .unwrap();
    let ready = app.http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // Another role's projection failing is not this role's concern.
    c.execute("UPDATE projection_checkpoints SET state = 'failed' WHERE projection = 'listings'", &[]).await.unwrap();
    assert_eq!(app.http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    c.execute("UPDATE projection_checkpoints SET state = 'failed' WHERE projection = 'search'", &[]).await.unwrap();
    let not_ready = app.http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(not_ready.status(), 503);
    let body: serde_json::Value = not_ready.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    assert_eq!(body["checks"]["projections"]["detail"], "failed: search", "{body}");
    assert_eq!(app.http.get(format!("{base}/metrics")).send().await.unwrap().status(), 401);
    let scraped = app.http.get(format!("{base}/metrics")).bearer_auth("scrape-token-0123456789").send().await.unwrap();
    assert!(scraped.text().await.unwrap().contains(r#"bozor_role_info{role="search-sync"} 1"#));
    handle.stop(true).await;
}
