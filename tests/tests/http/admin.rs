//! Admin: projection status and blue/green rebuilds.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{spawn, TestApp, User};

async fn statuses(app: &TestApp, admin: &User) -> Vec<Value> {
    let res = app
        .http
        .get(format!("{}/v1/admin/projections", app.base))
        .header("Authorization", &admin.header)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["items"].as_array().unwrap().clone()
}

async fn listing(app: &TestApp, seller: &User, i: usize) -> i64 {
    let body = json!({ "title": format!("Kitob {i}"), "category": "books", "price": 1_000 + i as i64,
                       "details": { "kind": "classified" } });
    let r = app.post(seller, "/v1/listings", body).await.ok();
    let id = r.id();
    app.post(seller, &format!("/v1/listings/{id}/submit"), json!({})).await.ok();
    let r = app.post(&User::new("support"), &format!("/v1/listings/{id}/approve"), json!({})).await.ok();
    r.body["position"].as_i64().unwrap()
}

#[tokio::test]
async fn admin_endpoints_are_for_admins() {
    let app = spawn().await;
    let admin = User::new("admin");
    let res = app
        .http
        .get(format!("{}/v1/admin/projections", app.base))
        .header("Authorization", &User::seller("pro").header)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let mut names = vec![];
    for _ in 0..200 {
        names = statuses(&app, &admin).await.iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect();
        if names.len() == bozor_api::read_models::all().len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(names, vec!["listings", "orders", "payments", "search", "timers", "users", "wallets"]);
    app.post(&User::seller("pro"), "/v1/admin/projections/listings/rebuild", json!({})).await.err(403, "forbidden");
    app.post(&admin, "/v1/admin/projections/nothing/rebuild", json!({})).await.err(404, "projection_not_found");
}

/// A blue/green rebuild while commands keep coming gives the same read model as replaying the
/// log from nothing, and queries are answered all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_under_concurrent_writes_equals_a_fresh_replay() {
    let app = spawn().await;
    let (seller, admin) = (User::seller("free"), User::new("admin"));
    for i in 0..15 {
        listing(&app, &seller, i).await;
    }
    let writer = {
        let (base, seller) = (app.base.clone(), seller.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut last = 0;
            for i in 15..45 {
                let body = json!({ "title": format!("Kitob {i}"), "category": "books", "price": 1_000 + i,
                                   "details": { "kind": "classified" } });
                let r = http
                    .post(format!("{base}/v1/listings"))
                    .header("Authorization", &seller.header)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                last = r.json::<Value>().await.unwrap()["position"].as_i64().unwrap();
                // Queries keep being answered while the rebuild runs.
                let q = http.get(format!("{base}/v1/listings?limit=5")).send().await.unwrap();
                assert_eq!(q.status(), 200);
            }
            last
        })
    };
    let started = app.post(&admin, "/v1/admin/projections/listings/rebuild", json!({})).await;
    assert_eq!(started.status.as_u16(), 202, "{}", started.body);
    let last = writer.await.unwrap();
    let mut live = false;
    for _ in 0..1_000 {
        let listings = statuses(&app, &admin).await.into_iter().find(|s| s["name"] == "listings").unwrap();
        if listings["state"] == "live" {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(live, "the rebuild finished");
    app.get(&format!("/v1/listings?min_position={last}")).await.ok();
    let rebuilt = app.listings_view().await;
    assert_eq!(rebuilt.len(), 45);

    let c = app.db.client().await;
    // The rebuild recorded the versions it applied: replaying over its model changes nothing.
    let before_replay = app.listings_view().await;
    c.execute("UPDATE projection_checkpoints SET tx_id = '0', position = 0 WHERE projection = 'listings'", &[])
        .await
        .unwrap();
    app.get(&format!("/v1/listings?min_position={last}")).await.ok();
    assert_eq!(app.listings_view().await, before_replay, "a replay over the rebuilt model changes nothing");

    c.batch_execute(
        "BEGIN; DELETE FROM listings_view; DELETE FROM projection_stream_versions WHERE projection = 'listings';
         UPDATE projection_checkpoints SET tx_id = '0', position = 0 WHERE projection = 'listings'; COMMIT;",
    )
    .await
    .unwrap();
    app.get(&format!("/v1/listings?min_position={last}")).await.ok();
    assert_eq!(app.listings_view().await, rebuilt, "blue/green rebuild == fresh replay");
}

#[tokio::test]
async fn readyz_names_the_dependency_that_is_not_ready() {
    let app = crate::support::spawn().await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status.as_u16(), 200, "{}", ready.body);
    assert_eq!(ready.body["checks"]["database"]["ok"], true);
    assert_eq!(ready.body["checks"]["projections"]["ok"], true);
    assert!(
        ready.body["checks"].get("search").is_none() && ready.body["checks"].get("broker").is_none(),
        "not configured"
    );
    let c = app.db.client().await;
    // The projectors register their checkpoints as they start, which may be after the first
    // answer: marked failed before its row exists, the projection would register as live.
    let registered = "SELECT count(*) FROM projection_checkpoints WHERE projection = 'users'";
    let client = &c;
    crate::support::wait_for("the users projection to register", 10, move || async move {
        client.query_one(registered, &[]).await.unwrap().get::<_, i64>(0) == 1
    })
    .await;
    let marked =
        c.execute("UPDATE projection_checkpoints SET state = 'failed' WHERE projection = 'users'", &[]).await.unwrap();
    assert_eq!(marked, 1);
    let not = app.get("/readyz").await;
    assert_eq!(not.status.as_u16(), 503);
    assert_eq!(not.body["status"], "not_ready");
    assert_eq!(not.body["checks"]["projections"]["detail"], "failed: users");
    // A search engine and a broker that do not answer.
    let db = bozor_commands::testing::fresh_database().await;
    let mut settings = bozor_api::configuration::Settings::development(&db.url);
    settings.meili = Some(bozor_api::configuration::MeiliSettings {
        url: "http://127.0.0.1:1".into(),
        key: None,
        index: "listings".into(),
    });
    settings.kafka = Some(bozor_commands::kafka::KafkaSettings::new("127.0.0.1:1"));
    let down = crate::support::spawn_on(db, settings, false).await;
    let not = down.get("/readyz").await;
    assert_eq!(not.status.as_u16(), 503, "{}", not.body);
    assert_eq!(
        (not.body["checks"]["search"]["ok"].clone(), not.body["checks"]["broker"]["ok"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(not.body["checks"]["database"]["ok"], true);
}
