//! The read side fanned out through a real Kafka-protocol broker (tansu, started by the test
//! command, at `BOZOR_TEST_KAFKA_BROKERS`): `bozor relay` and `bozor project` as separate
//! processes, killed with SIGKILL and restarted while commands keep coming.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bozor_commands::kafka::KafkaSettings;
use serde_json::json;
use uuid::Uuid;

use crate::support::{behind, bozor_bin, read_models, shop_round, spawn_with, wait_for, Proc, ReadSide, User};

/// The broker, or `None` (the test then says it is skipped: run the README's test command).
fn broker() -> Option<KafkaSettings> {
    match std::env::var("BOZOR_TEST_KAFKA_BROKERS") {
        Ok(b) if !b.is_empty() => {
            let mut k = KafkaSettings::new(b);
            // Topics and consumer groups of one's own, on a shared broker.
            k.topic_prefix = format!("t{}", &Uuid::new_v4().simple().to_string()[..12]);
            k.partitions = 3;
            // Fetch settings as the processes the tests start read them (tansu wants others).
            let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
            k.fetch_wait_ms = env("BOZOR_KAFKA_FETCH_WAIT_MS").unwrap_or(k.fetch_wait_ms);
            k.fetch_partition_bytes = env("BOZOR_KAFKA_FETCH_PARTITION_BYTES").unwrap_or(k.fetch_partition_bytes);
            Some(k)
        }
        _ => {
            eprintln!("SKIPPED: BOZOR_TEST_KAFKA_BROKERS is not set (./dev test starts Apache Kafka and sets it)");
            None
        }
    }
}

/// Starts `bozor <role>` on the test's database and topics; `name` shows in pg_stat_activity.
fn start(role: &str, name: &str, db_url: &str, kafka: &KafkaSettings) -> Proc {
    start_with(role, name, db_url, kafka, "")
}

/// `start`, crashing at the crash point `fault` (see `bozor_commands::fault`).
fn start_with(role: &str, name: &str, db_url: &str, kafka: &KafkaSettings, fault: &str) -> Proc {
    let child = Command::new(bozor_bin())
        .arg(role)
        .env("BOZOR_FAULT", fault)
        .env("BOZOR_DATABASE_URL", format!("{db_url}?application_name={name}"))
        .env("BOZOR_KAFKA_BROKERS", &kafka.brokers)
        .env("BOZOR_KAFKA_TOPIC_PREFIX", &kafka.topic_prefix)
        .env("BOZOR_KAFKA_PARTITIONS", kafka.partitions.to_string())
        .env("BOZOR_DB_POOL_MAX", "4")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("bozor starts");
    Proc(child)
}

/// The application name of the process holding the relay lock, if any. Only that lock counts:
/// a relay starting up also holds the migrations' lock for a moment.
async fn active_relay(c: &tokio_postgres::Client) -> Option<String> {
    c.query_opt(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'relay%'
           AND l.objid::text::bigint = hashtext('bozor.relay.main')::bigint & 4294967295",
        &[],
    )
    .await
    .unwrap()
    .map(|r| r.get(0))
}

/// Events each projection has taken (applied or skipped as seen before).
async fn consumed(c: &tokio_postgres::Client) -> BTreeMap<String, i64> {
    c.query("SELECT projection, events FROM projection_checkpoints ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1)))
        .collect()
}

/// Every event reaches every projection exactly once although relays and projectors are
/// killed mid-stream, a standby relay takes over, the relay re-sends everything from the
/// start, and read models are rebuilt under writes: the Kafka-fed read models end equal to a
/// fresh replay of the event store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_relays_and_projectors_lose_and_double_nothing() {
    let Some(kafka) = broker() else { return };
    let app = std::sync::Arc::new(spawn_with(ReadSide::Elsewhere).await);
    let c = app.db.client().await;
    let url = app.db.url.clone();

    // The first relay and the first projector crash at their worst moments: the relay after
    // the broker acknowledged its first batch but before its checkpoint, the projector after
    // its first batch committed to the read model but before the offsets did.
    let mut relay_a = start_with("relay", "relay_a", &url, &kafka, "relay_after_ack");
    wait_for("relay_a to take the lock", 30, || async { active_relay(&c).await.as_deref() == Some("relay_a") }).await;
    let mut relay_b = Some(start("relay", "relay_b", &url, &kafka));
    let mut projector = start_with("project", "projector_1", &url, &kafka, "projector_after_commit");

    let writer = {
        let app = app.clone();
        tokio::spawn(async move {
            let seller = User::seller("premium");
            for _ in 0..24 {
                shop_round(&app, &seller).await;
            }
        })
    };
    wait_for("relay_b to take over from the crashed relay_a", 30, || async {
        active_relay(&c).await.as_deref() == Some("relay_b")
    })
    .await;
    let crashed = relay_a.0.try_wait().unwrap();
    assert!(crashed.is_some_and(|s| !s.success()), "relay_a crashed: {crashed:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while projector.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "projector_1 did not reach its crash point");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    projector = start("project", "projector_2", &url, &kafka);
    // Then SIGKILLs mid-stream: a third relay joins as standby, the active one and the
    // projector are killed, and another projector comes back.
    let _relay_c = start("relay", "relay_c", &url, &kafka);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    drop(relay_b.take());
    drop(projector);
    projector = start("project", "projector_3", &url, &kafka);
    writer.await.unwrap();
    wait_for("every projection to apply every stream", 90, || async { behind(&c).await == 0 }).await;
    let events: i64 = c.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0);
    assert!(events > 200, "the writer wrote {events} events");

    // Everything again: the relay forgets its checkpoint and re-sends every event.
    let before = consumed(&c).await;
    // Each event belongs to one projection's topics: events taken beyond the events written
    // are redeliveries, which the gate skipped.
    let taken: i64 = before.values().sum();
    eprintln!("after the crashes: {events} events written; taken per projection: {before:?}");
    assert!(taken > events, "the crashes made Kafka deliver events again ({taken} taken, {events} written)");
    let model = read_models(&c).await;
    c.execute("UPDATE relay_checkpoints SET tx_id = '0', position = 0", &[]).await.unwrap();
    drop(_relay_c);
    let _relay_d = start("relay", "relay_d", &url, &kafka);
    let per_projection: BTreeMap<String, i64> = {
        let mut m = BTreeMap::new();
        for p in bozor_projections::all() {
            let types: Vec<&str> = p.stream_types().to_vec();
            let n: i64 =
                c.query_one("SELECT count(*) FROM events WHERE stream_type = ANY($1)", &[&types]).await.unwrap().get(0);
            m.insert(p.name().to_owned(), n);
        }
        m
    };
    wait_for("every projection to see every event again", 90, || async {
        let now = consumed(&c).await;
        per_projection.iter().all(|(p, n)| now[p] >= before[p] + n)
    })
    .await;
    assert_eq!(read_models(&c).await, model, "a second delivery of every event changes nothing");

    // Rebuilds while commands keep coming and the Kafka-fed projector keeps running.
    let writer = {
        let app = app.clone();
        tokio::spawn(async move {
            let seller = User::seller("pro");
            for _ in 0..8 {
                shop_round(&app, &seller).await;
            }
        })
    };
    for p in bozor_projections::all() {
        bozor_projections::rebuild::rebuild(&app.db.pool, p).await.unwrap();
    }
    writer.await.unwrap();
    wait_for("the projector to catch up after the rebuilds", 90, || async { behind(&c).await == 0 }).await;
    let live = read_models(&c).await;
    drop(projector);

    // A fresh replay of the store, at rest, for comparison.
    for p in bozor_projections::all() {
        bozor_projections::rebuild::rebuild(&app.db.pool, p).await.unwrap();
    }
    let replay = read_models(&c).await;
    assert_eq!(live.keys().collect::<Vec<_>>(), replay.keys().collect::<Vec<_>>());
    for (table, rows) in &replay {
        assert!(!rows.is_empty(), "{table} has rows");
        assert_eq!(&live[table], rows, "{table}: Kafka-fed rows equal a fresh replay");
    }
    let states: Vec<String> = c
        .query("SELECT feed || ':' || state FROM projection_checkpoints ORDER BY projection", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(states, vec!["kafka:live"; bozor_projections::all().len()]);
}

/// `bozor up` with Kafka: a command's effects are readable with `min_position` through the
/// relay and the consumer groups; the status shows the Kafka feed; a poison event stops the
/// listings projection with the error, and nothing after it is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_fed_reads_your_writes_and_stops_at_a_poison_event() {
    let Some(kafka) = broker() else { return };
    let app = spawn_with(ReadSide::Kafka(kafka)).await;
    let seller = User::seller("free");
    let id = app.active_product(&seller, 5_000_000, 2).await;
    let changed = app.post(&seller, &format!("/v1/listings/{id}/update"), json!({ "price": 4_500_000 })).await.ok();
    let pos = changed.body["position"].as_i64().unwrap();
    // Consumer groups form on the first fetch: allow for that once.
    let mut got = None;
    for _ in 0..30 {
        let r = app.get(&format!("/v1/listings/{id}?min_position={pos}")).await;
        if r.status == 200 {
            got = Some(r.body);
            break;
        }
        r.err(409, "projection_behind");
    }
    let got = got.expect("the listing becomes readable through Kafka");
    assert_eq!((got["status"]["status"].as_str(), got["price"].as_i64()), (Some("active"), Some(4_500_000)), "{got}");
    // Right after a command, a query that waits for it sees it.
    let again = app.post(&seller, &format!("/v1/listings/{id}/update"), json!({ "price": 4_000_000 })).await.ok();
    let r = app.get(&format!("/v1/listings/{id}?min_position={}", again.body["position"])).await.ok();
    assert_eq!(r.body["price"], 4_000_000);

    // Idle for longer than the consumer's status tick: still live, nothing failed, no lag.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let status: serde_json::Value = app
        .http
        .get(format!("{}/v1/admin/projections", app.base))
        .header("Authorization", &User::new("admin").header)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listings = status["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "listings")
        .cloned()
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!((listings["feed"].as_str(), listings["state"].as_str()), (Some("kafka"), Some("live")), "{listings}");
    for p in status["items"].as_array().unwrap() {
        assert_eq!((&p["state"], &p["last_error"], &p["lag_events"]), (&json!("live"), &json!(null), &json!(0)), "{p}");
    }

    // A poison event, then a later event of the same stream (same key, same partition).
    let c = app.db.client().await;
    let poisoned = Uuid::new_v4();
    for (version, payload) in [(1i64, "{\"nonsense\": true}"), (2, "{}")] {
        c.execute(
            "INSERT INTO events (stream_type, stream_id, version, event_id, event_type, event_version, payload,
                                 metadata, recorded_at, hash)
             VALUES ('listing', $1, $2, $3, 'ListingCreated', 1, $4::text::jsonb, '{}', now(), $5)",
            &[&poisoned, &version, &Uuid::new_v4(), &payload, &vec![0u8; 32]],
        )
        .await
        .unwrap();
    }
    wait_for("the listings projection to fail", 30, || async {
        let row =
            c.query_one("SELECT state FROM projection_checkpoints WHERE projection = 'listings'", &[]).await.unwrap();
        row.get::<_, String>(0) == "failed"
    })
    .await;
    let error: Option<String> = c
        .query_one("SELECT last_error FROM projection_checkpoints WHERE projection = 'listings'", &[])
        .await
        .unwrap()
        .get(0);
    let error = error.expect("the error is recorded");
    assert!(error.contains("ListingCreated"), "{error}");
    // Not skipped: after retries it is still failed, and neither the poison nor what follows it
    // in its partition is applied.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let row = c
        .query_one(
            "SELECT state, (SELECT coalesce(max(version), 0) FROM projection_stream_versions
                            WHERE projection = 'listings' AND stream_id = $1)
             FROM projection_checkpoints WHERE projection = 'listings'",
            &[&poisoned],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, String>(0), row.get::<_, i64>(1)), ("failed".to_owned(), 0));
    let r = app.get(&format!("/v1/listings/{poisoned}")).await;
    r.err(404, "listing_not_found");
}

/// `bozor search-sync` as a process of its own feeds search, from Kafka (with `bozor relay`) and
/// from the event store, while the API runs apart (`bozor serve`): a listing approved through
/// the API is then found by a query in the other script.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn search_sync_runs_as_a_process_of_its_own() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    let url = app.db.url.clone();
    let seller = User::seller("free");
    let listing = |title: &str| {
        json!({
            "title": title, "category": "appliances", "price": 45_000_000,
            "details": { "kind": "product", "variants": [{ "sku": "std", "label": "0.48 l", "stock": 2 }] }
        })
    };
    let found = |q: &'static str| {
        let app = &app;
        async move {
            let body = app.get(&format!("/v1/search/suggest?q={q}")).await.ok().body;
            body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
        }
    };

    // From the event store.
    let store_fed = Proc(
        Command::new(bozor_bin())
            .arg("search-sync")
            .env("BOZOR_DATABASE_URL", format!("{url}?application_name=search_sync_store"))
            .env_remove("BOZOR_KAFKA_BROKERS")
            .env_remove("BOZOR_MEILI_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("bozor starts"),
    );
    let id = app.activate(&seller, listing("Termos Zojirushi")).await.to_string();
    wait_for("search-sync (store) to index the listing", 60, || async {
        found("%D0%B7%D0%BE%D0%B6%D0%B8%D1%80%D1%83%D1%88%D0%B8").await == vec![id.clone()]
    })
    .await;
    drop(store_fed);

    // From Kafka: the checkpoint's feed says so.
    let Some(kafka) = broker() else { return };
    let c = app.db.client().await;
    c.execute("DELETE FROM projection_checkpoints WHERE projection = 'search'", &[]).await.unwrap();
    let _relay = start("relay", "relay_search", &url, &kafka);
    let _search = start("search-sync", "search_sync_kafka", &url, &kafka);
    let id = app.activate(&seller, listing("Termos Thermos King")).await.to_string();
    wait_for("search-sync (Kafka) to index the listing", 90, || async {
        found("%D1%82%D0%B5%D1%80%D0%BC%D0%BE%D1%81%20%D0%BA%D0%B8%D0%BD%D0%B3").await == vec![id.clone()]
    })
    .await;
    let feed: String =
        c.query_one("SELECT feed FROM projection_checkpoints WHERE projection = 'search'", &[]).await.unwrap().get(0);
    assert_eq!(feed, "kafka");
}

/// Fed from Kafka, an order's escrow (another topic) may be applied before the order's first
/// event: the order's row, created later, still gets its escrow's status. Applied here in that
/// order by hand, against the order a store-order replay gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_escrow_applied_before_its_order_still_reaches_the_order_row() {
    use bozor_projections::Projection;
    let app = spawn_with(ReadSide::Elsewhere).await;
    shop_round(&app, &User::seller("free")).await;
    // By stream, not from the tail: the tail may still be waiting for other tests' transactions.
    let c = app.db.client().await;
    let (mut escrows, mut orders) = (Vec::new(), Vec::new());
    let streams = c.query("SELECT stream_id, stream_type FROM streams WHERE stream_type IN ('order', 'escrow')", &[]);
    for row in streams.await.unwrap() {
        let events = app.store.read_stream(row.get(0)).await.unwrap();
        match row.get::<_, String>(1).as_str() {
            "escrow" => escrows.extend(events),
            _ => orders.extend(events),
        }
    }
    assert!(!escrows.is_empty() && !orders.is_empty());
    let projection = bozor_projections::orders::OrdersProjection;
    let mut client = app.db.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let batch: Vec<&bozor_commands::store::StoredEvent> = escrows.iter().chain(orders.iter()).collect();
    projection.apply_batch(&tx, &batch).await.unwrap();
    tx.commit().await.unwrap();
    let row = client.query_one("SELECT escrow_status FROM orders_view", &[]).await.unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("funded"));
}
