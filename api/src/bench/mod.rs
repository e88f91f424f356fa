//! `bozor bench append`: single-event appends to new streams through the real append path
//! (hash chain, streams table, idempotency record) from concurrent writers, against
//! `BOZOR_DATABASE_URL`. Ends by printing one JSON line with throughput and latency.

pub mod audit;
pub mod payments;
pub mod queries;
pub mod scheduler;
pub mod search;

use std::time::{Duration, Instant};

use bozor_commands::hash::GENESIS;
use bozor_commands::store::{append_with, AppendRequest, IdempotencyWrite, StreamAppend};
use bozor_domain::aggregate::EncodedEvent;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

/// Latency samples kept per writer: beyond it the writer stops sampling (bounded memory).
const SAMPLES_PER_WRITER_MAX: usize = 2_000_000;

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct AppendReport {
    pub events_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub appends: usize,
    pub writers: usize,
    pub seconds: f64,
}

fn request(writer: usize) -> AppendRequest {
    let stream_id = Uuid::new_v4();
    let event = EncodedEvent {
        event_type: "BenchAppended".into(),
        event_version: 1,
        payload: json!({ "writer": writer, "title": "iPhone 15 Pro 256GB", "price": 1_450_000_000 }),
    };
    AppendRequest {
        streams: vec![StreamAppend {
            stream_id,
            stream_type: "bench",
            expected: 0,
            prev_hash: GENESIS,
            events: vec![event],
        }],
        metadata: json!({ "actor": Uuid::nil(), "command": "bench", "request_id": Uuid::new_v4() }),
        recorded_at: Utc::now(),
        idempotency: Some(IdempotencyWrite {
            scope: "bench".into(),
            key: stream_id.to_string(),
            request_hash: stream_id.as_bytes().to_vec(),
        }),
        response: json!({ "id": stream_id }),
    }
}

/// Runs `writers` connections appending for `seconds`. Fails when the database is unreachable.
pub async fn append(database_url: &str, writers: usize, seconds: u64) -> Result<AppendReport, String> {
    let pool = bozor_commands::db::pool(database_url, writers).map_err(|e| e.to_string())?;
    {
        let mut c = pool.get().await.map_err(|e| e.to_string())?;
        bozor_commands::migrate::migrate(&mut c).await.map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let client = pool.get().await.map_err(|e| e.to_string())?;
            let mut samples = Vec::with_capacity(65_536);
            while Instant::now() < deadline && samples.len() < SAMPLES_PER_WRITER_MAX {
                let req = request(w);
                let t = Instant::now();
                append_with(&client, &req).await.map_err(|e| e.to_string())?;
                samples.push(t.elapsed().as_micros() as u32);
            }
            Ok::<_, String>(samples)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    Ok(AppendReport {
        events_per_sec: (all.len() as f64 / elapsed * 10.0).round() / 10.0,
        p50_ms: f64::from(pct(0.50)) / 1000.0,
        p99_ms: f64::from(pct(0.99)) / 1000.0,
        appends: all.len(),
        writers,
        seconds: (elapsed * 100.0).round() / 100.0,
    })
}

/// What a rebuild run measured.
#[derive(Debug, serde::Serialize)]
pub struct RebuildReport {
    pub events: u64,
    pub seed_seconds: f64,
    pub rebuild_seconds: f64,
    pub events_per_sec: f64,
}

/// Seeds `events` listing events (streams of 5: created, submitted, approved, repriced,
/// promoted) through the real append path, then rebuilds the listings read model and times it.
pub async fn rebuild(database_url: &str, events: u64) -> Result<RebuildReport, String> {
    let pool = bozor_commands::db::pool(database_url, 4).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    {
        let mut c = pool.get().await.map_err(|e| e.to_string())?;
        bozor_commands::migrate::migrate(&mut c).await.map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    seed_listings(&client, events).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    let projection = bozor_projections::by_name("listings").expect("listings projection exists");
    client
        .execute(
            "INSERT INTO projection_checkpoints (projection, version) VALUES ('listings', 1) ON CONFLICT DO NOTHING",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let applied = bozor_projections::rebuild::rebuild(&pool, projection).await.map_err(|e| e.to_string())?;
    let rebuild_seconds = started.elapsed().as_secs_f64();
    Ok(RebuildReport {
        events: applied,
        seed_seconds: (seed_seconds * 100.0).round() / 100.0,
        rebuild_seconds: (rebuild_seconds * 100.0).round() / 100.0,
        events_per_sec: (applied as f64 / rebuild_seconds).round(),
    })
}

/// What a relay catch-up run measured.
#[derive(Debug, serde::Serialize)]
pub struct RelayReport {
    pub events: u64,
    pub seed_seconds: f64,
    pub relay_seconds: f64,
    pub events_per_sec: f64,
}

/// Seeds `events` listing events as `rebuild` does, then starts a relay from an empty
/// checkpoint to `kafka` (topics of a prefix of its own) and times how long it takes until
/// the broker has acknowledged every event: a backlog caught up.
pub async fn relay(
    database_url: &str,
    events: u64,
    mut kafka: bozor_commands::kafka::KafkaSettings,
) -> Result<RelayReport, String> {
    let pool = bozor_commands::db::pool(database_url, 2).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    {
        let mut c = pool.get().await.map_err(|e| e.to_string())?;
        bozor_commands::migrate::migrate(&mut c).await.map_err(|e| e.to_string())?;
    }
    let stored: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.map_err(|e| e.to_string())?.get(0);
    if stored > 0 {
        return Err("bench relay seeds its own backlog: run it on a database of its own, without events".into());
    }
    let started = Instant::now();
    seed_listings(&client, events).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    kafka.topic_prefix = format!("bench{}", &Uuid::new_v4().simple().to_string()[..8]);
    let relay = bozor_commands::relay::Relay::new(database_url, kafka);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let task = tokio::spawn(async move { relay.run(rx).await });
    let deadline = started + Duration::from_secs(1_800);
    loop {
        let row = client
            .query_opt("SELECT events FROM relay_checkpoints WHERE relay = 'main'", &[])
            .await
            .map_err(|e| e.to_string())?;
        if row.is_some_and(|r| r.get::<_, i64>(0) as u64 >= events) {
            break;
        }
        if Instant::now() > deadline {
            return Err("the relay did not catch up within 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let relay_seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = task.await;
    Ok(RelayReport {
        events,
        seed_seconds: (seed_seconds * 100.0).round() / 100.0,
        relay_seconds: (relay_seconds * 100.0).round() / 100.0,
        events_per_sec: (events as f64 / relay_seconds).round(),
    })
}

/// Appends `events` listing events (streams of 5) through the real append path, 200 streams
/// to an append.
async fn seed_listings(client: &deadpool_postgres::Client, events: u64) -> Result<(), String> {
    use bozor_domain::aggregate::encode;
    use bozor_domain::listing::{Content, Details, Event, PromotionTier, Variant};
    use bozor_domain::{Money, Plan};

    let money = |t: i64| Money::from_tiyin(t).expect("positive");
    let streams = events / 5;
    let per_append = 200;
    let mut done = 0;
    while done < streams {
        let mut appends = Vec::with_capacity(per_append);
        for _ in 0..per_append.min((streams - done) as usize) {
            let id = Uuid::new_v4();
            let now = Utc::now();
            let history = [
                Event::ListingCreated {
                    listing_id: id,
                    seller_id: Uuid::new_v4(),
                    seller_plan: Plan::Free,
                    details: Details::Product {
                        variants: vec![Variant { sku: "std".into(), label: "".into(), stock: 3 }],
                    },
                    content: Content {
                        title: "Samsung Galaxy A55".into(),
                        description: "Yangi".into(),
                        category: "phones".into(),
                        images: vec!["img/1.jpg".into()],
                        attributes: Default::default(),
                    },
                    price: money(450_000_000),
                    at: now,
                },
                Event::ListingSubmitted { at: now },
                Event::ListingApproved { by: Uuid::nil(), automatic: false, at: now },
                Event::ListingPriceChanged { price: money(430_000_000), previous_price: money(450_000_000), at: now },
                Event::ListingPromoted {
                    tier: PromotionTier::Top,
                    days: 1,
                    until: now,
                    price: money(500_000),
                    journal_id: id,
                },
            ];
            appends.push(StreamAppend {
                stream_id: id,
                stream_type: "listing",
                expected: 0,
                prev_hash: GENESIS,
                events: history.iter().map(encode).collect(),
            });
        }
        done += appends.len() as u64;
        let req = AppendRequest {
            streams: appends,
            metadata: json!({ "command": "bench_seed" }),
            recorded_at: Utc::now(),
            idempotency: None,
            response: json!({}),
        };
        append_with(client, &req).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What a lag run measured: command accepted -> visible in the listings read model.
#[derive(Debug, serde::Serialize)]
pub struct LagReport {
    pub commands: usize,
    pub commands_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Where each command's time went, p50 and p99 of each step (see `LagBreakdown`).
    pub breakdown: LagBreakdown,
}

/// The steps of a command's way to the read model, each as [p50, p99] in milliseconds.
#[derive(Debug, serde::Serialize)]
pub struct LagBreakdown {
    /// The command itself: load, decide, append and its commit, until it answered.
    pub command_ms: [f64; 2],
    /// From the answer until the projector began the batch that applied it: the wake-up, a
    /// batch already under way, and (from the store) waiting for the gap-safe horizon, or
    /// (through Kafka) the relay, the broker and the consumer's fetch.
    pub wait_ms: [f64; 2],
    /// Reading the batch: checkpoint and tail query (store), or taking what has arrived (Kafka).
    pub read_ms: [f64; 2],
    /// Applying the batch to the read model's rows.
    pub apply_ms: [f64; 2],
    /// The checkpoint update and the read model's commit.
    pub commit_ms: [f64; 2],
}

/// When the listings projection's batch that first applied a stream ran its steps.
#[derive(Clone, Copy)]
struct Steps {
    read_started: Instant,
    read_done: Instant,
    applied: Instant,
    committed: Instant,
}

/// One step's duration (microseconds) for a command (listing id, sent, answered) and the steps
/// of the batch that applied it.
type StepOf<'a> = dyn Fn(&(Uuid, Instant, Instant), &Steps) -> u64 + 'a;

/// [p50, p99] of `values` (microseconds) in milliseconds.
fn p50_p99(mut values: Vec<u64>) -> [f64; 2] {
    values.sort_unstable();
    let at = |p: f64| match values.len() {
        0 => 0.0,
        n => values[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0,
    };
    [at(0.50), at(0.99)]
}

/// Creates listings at `rate` per second for `seconds` through the command service, with the
/// projectors running in this process (the embedded default; with `kafka`, the relay and the
/// Kafka-fed projectors as `bozor up` runs them then), and measures for each command the time
/// from its accepted response until the listings projection has committed it.
pub async fn lag(
    database_url: &str,
    rate: u32,
    seconds: u64,
    kafka: Option<bozor_commands::kafka::KafkaSettings>,
) -> Result<LagReport, String> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use bozor_commands::{CommandService, EventStore};
    use bozor_domain::{Actor, Role};

    let pool = bozor_commands::db::pool(database_url, 24).map_err(|e| e.to_string())?;
    {
        let mut c = pool.get().await.map_err(|e| e.to_string())?;
        bozor_commands::migrate::migrate(&mut c).await.map_err(|e| e.to_string())?;
    }
    let svc = CommandService::new(EventStore::new(pool.clone(), 100));
    // When the listings projection committed each stream, and its batch's steps (first time only).
    let applied: Arc<Mutex<HashMap<Uuid, Steps>>> = Arc::default();
    let hook: bozor_projections::runtime::AppliedHook = {
        let applied = applied.clone();
        Arc::new(move |batch: &bozor_projections::runtime::Applied<'_>| {
            if batch.projection == "listings" {
                let steps = Steps {
                    read_started: batch.read_started,
                    read_done: batch.read_done,
                    applied: batch.applied,
                    committed: Instant::now(),
                };
                let mut a = applied.lock().expect("applied lock");
                for id in batch.streams {
                    a.entry(*id).or_insert(steps);
                }
            }
        })
    };
    let mut projectors =
        crate::startup::Projectors::start(&pool, bozor_projections::all(), kafka.as_ref(), Some(&svc), Some(hook));
    if let Some(k) = &kafka {
        projectors = projectors.with_relay(database_url, k, Some(svc.appended()));
    }
    let seller = Actor { id: Uuid::new_v4(), roles: vec![Role::Buyer, Role::Seller], plan: None };
    // Warm up: the first listing waits for the projectors to start (and consumer groups to
    // form); it is not measured.
    let first = create_listing(&svc, seller.clone()).await?.id;
    let warm_up = 1;
    let ready_by = Instant::now() + Duration::from_secs(60);
    while !applied.lock().expect("applied lock").contains_key(&first) {
        if Instant::now() > ready_by {
            return Err("the first listing was not projected within 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = rate as usize * seconds as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for _ in 0..total {
        ticker.tick().await;
        let (svc, seller) = (svc.clone(), seller.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let outcome = create_listing(&svc, seller).await?;
            Ok::<_, String>((outcome.id, sent, Instant::now()))
        }));
    }
    let mut accepted = Vec::with_capacity(total);
    for t in tasks {
        accepted.push(t.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(30);
    while applied.lock().expect("applied lock").len() < accepted.len() + warm_up {
        if Instant::now() > deadline {
            return Err("the projection did not catch up within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    projectors.stop().await;
    let applied = applied.lock().expect("applied lock");
    let since = |later: Instant, earlier: Instant| later.saturating_duration_since(earlier).as_micros() as u64;
    // Visible before the client had its answer counts as no lag.
    let mut all: Vec<u32> = accepted.iter().map(|(id, _, at)| since(applied[id].committed, *at) as u32).collect();
    all.sort_unstable();
    let pct = |p: f64| f64::from(all[((all.len() as f64 * p) as usize).min(all.len() - 1)]) / 1000.0;
    let steps = |f: &StepOf| p50_p99(accepted.iter().map(|c| f(c, &applied[&c.0])).collect());
    let breakdown = LagBreakdown {
        command_ms: steps(&|(_, sent, at), _| since(*at, *sent)),
        wait_ms: steps(&|(_, _, at), s| since(s.read_started, *at)),
        read_ms: steps(&|(_, _, at), s| since(s.read_done, s.read_started.max(*at))),
        apply_ms: steps(&|_, s| since(s.applied, s.read_done)),
        commit_ms: steps(&|_, s| since(s.committed, s.applied)),
    };
    Ok(LagReport {
        commands: all.len(),
        commands_per_sec: (all.len() as f64 / elapsed * 10.0).round() / 10.0,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: f64::from(*all.last().unwrap_or(&0)) / 1000.0,
        breakdown,
    })
}

/// One listing created as the lag benchmark creates them.
async fn create_listing(
    svc: &bozor_commands::CommandService,
    seller: bozor_domain::Actor,
) -> Result<bozor_commands::Outcome, String> {
    use bozor_commands::CommandMeta;
    use bozor_domain::listing::{Content, Details};
    use bozor_domain::Money;

    let meta = CommandMeta {
        actor: seller,
        now: Utc::now(),
        command: "bench_lag",
        request_id: Uuid::new_v4(),
        correlation_id: Uuid::new_v4(),
        idempotency: None,
        if_match: None,
    };
    let content = Content {
        title: "Noutbuk Lenovo".into(),
        description: String::new(),
        category: "laptops".into(),
        images: vec![],
        attributes: Default::default(),
    };
    let details = Details::Classified { contact_phone: None };
    let price = Money::from_tiyin(500_000_000).expect("positive");
    svc.create_listing(&meta, Uuid::new_v4(), details, content, price).await.map_err(|e| e.to_string())
}
