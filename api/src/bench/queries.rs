//! `bozor bench queries --listings N --orders M`: fills the listings and orders read models
//! of `BOZOR_DATABASE_URL` with N listings (spread over kinds, categories, games, sellers,
//! statuses and prices) and M orders (over buyers, sellers, couriers, districts and statuses),
//! serves the API in this process with the page cache off, and has 32 clients issue the
//! catalogue's and the order lists' real query mix for `seconds` (`--clients`, default 32). Prints one JSON line: p50 and
//! p99 per query shape, deep cursor pages included.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bozor_domain::money::Money;
use bozor_domain::order::{self, District, Fulfilment, Line};
use bozor_domain::Plan;
use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use crate::configuration::Settings;

/// Latency samples kept per shape (bounded memory).
const SAMPLES_PER_SHAPE_MAX: usize = 1_000_000;

/// One query shape's latencies.
#[derive(Debug, serde::Serialize)]
pub struct ShapeReport {
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What one run measured.
#[derive(Debug, serde::Serialize)]
pub struct QueriesReport {
    pub listings: i64,
    pub orders: i64,
    pub seed_seconds: f64,
    pub clients: usize,
    pub seconds: f64,
    pub requests_per_sec: f64,
    pub shapes: BTreeMap<String, ShapeReport>,
}

/// The big seller whose listings and orders the seller shapes read (2 % of all listings,
/// a quarter of all orders).
const BIG_SELLER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0007);
const BIG_BUYER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0011);
const BIG_COURIER: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_a000_0000_0000_0011);

const SEED_LISTINGS: &str = "
INSERT INTO listings_view (listing_id, seller_id, kind, status, deleted, title, category, game, price, original_price,
                           has_images, promoted_until, sales, created_at, updated_at, last_position, state,
                           submitted_at, sold_out, available, version)
SELECT gen_random_uuid(),
       CASE WHEN i % 50 = 0 THEN $2::uuid
            ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(i % ($1 / 50 + 1)), 12, '0'))::uuid END,
       CASE WHEN i % 10 < 6 THEN 'product' WHEN i % 10 < 9 THEN 'classified' ELSE 'game_account' END,
       CASE WHEN i % 20 = 0 THEN 'pending' WHEN i % 33 = 1 THEN 'sold' WHEN i % 50 = 2 THEN 'archived' ELSE 'active' END,
       false, 'Listing ' || i, 'cat' || (i % 40),
       CASE WHEN i % 10 = 9 THEN 'game' || (i % 15) END,
       (i::bigint * 7919) % 100000000 + 100, (i::bigint * 7919) % 100000000 + 100,
       i % 3 <> 0,
       CASE WHEN i % 200 = 0 THEN now() + interval '7 days' END,
       (i::bigint * 31) % 1000,
       now() - i * interval '1 second', now(), i, '{}'::jsonb,
       CASE WHEN i % 20 = 0 THEN now() - i * interval '1 second' + interval '1 minute' END,
       i % 13 = 0, CASE WHEN i % 13 = 0 THEN 0 ELSE 1 + i % 9 END, 3
FROM generate_series(1, $1::bigint) i";

const SEED_ORDERS: &str = "
INSERT INTO orders_view (order_id, buyer_id, seller_id, status, digital, district, courier_id, goods_total,
                         delivery_fee, placed_at, updated_at, state, version)
SELECT o.id, o.buyer, o.seller, o.status, false, o.district, o.courier, 1000, 1800000, o.placed, o.updated,
       $3::jsonb || jsonb_build_object('id', o.id, 'buyer_id', o.buyer, 'seller_id', o.seller, 'status', o.status,
                                       'courier_id', o.courier, 'placed_at', o.placed,
                                       'fulfilment', jsonb_build_object('method', 'delivery', 'district', o.district,
                                                                        'address', 'Amir Temur 1', 'fee', 1800000)),
       3
FROM (
    SELECT gen_random_uuid() AS id,
           CASE WHEN i % 4 = 0 THEN $4::uuid ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(i % ($1 / 10 + 1)), 12, '0'))::uuid END AS buyer,
           CASE WHEN i % 4 = 1 THEN $2::uuid ELSE ('00000000-0000-4000-9000-' || lpad(to_hex(i % 2000), 12, '0'))::uuid END AS seller,
           (ARRAY['placed','paid','accepted','courier_assigned','picked_up','delivered','completed','completed',
                  'completed','cancelled','disputed','return_requested'])[1 + i % 12] AS status,
           (ARRAY['bektemir','chilonzor','mirzo_ulugbek','mirobod','olmazor','sergeli','shayxontohur','uchtepa',
                  'yakkasaroy','yangihayot','yashnobod','yunusobod','tashkent_region'])[1 + i % 13] AS district,
           CASE WHEN i % 12 BETWEEN 3 AND 8
                THEN (CASE WHEN i % 3 = 0 THEN $5::uuid
                           ELSE ('00000000-0000-4000-a000-' || lpad(to_hex(i % 500), 12, '0'))::uuid END) END AS courier,
           now() - i * interval '1 second' AS placed,
           now() - (i % 86400) * interval '1 second' AS updated
    FROM generate_series(1, $1::bigint) i
) o";

/// The order state every seeded order is made from (ids, status and places are set per row).
fn order_template() -> Value {
    let price = Money::from_tiyin(1_000).expect("positive");
    let o = order::Order {
        id: Uuid::nil(),
        buyer_id: Uuid::nil(),
        seller_id: Uuid::nil(),
        seller_plan: Plan::Free,
        lines: vec![Line {
            listing_id: Uuid::nil(),
            sku: "std".into(),
            title: "Choynak".into(),
            unit_price: price,
            quantity: 1,
        }],
        fulfilment: Fulfilment::Delivery {
            district: District::Chilonzor,
            address: "a".into(),
            fee: District::Chilonzor.delivery_fee(),
        },
        goods_total: price,
        status: order::Status::Placed,
        escrow_id: None,
        courier_id: None,
        pickup: None,
        delivered_at: None,
        placed_at: Utc::now(),
        awaiting_payment: None,
        awaiting_since: None,
    };
    serde_json::to_value(order::State::Exists(Box::new(o))).expect("an order serializes")
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn get(&self, path: &str, auth: &str) -> Result<Value, String> {
        let res = self.http.get(format!("{}{path}", self.base)).header("Authorization", auth).send().await;
        let res = res.map_err(|e| e.to_string())?;
        let status = res.status();
        let body: Value = res.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {body}"));
        }
        Ok(body)
    }

    /// GETs `path` and reads its whole body without parsing it: the timed loop's request, so
    /// the load generator spends the shared cores on as little as it can.
    async fn fetch(&self, path: &str, auth: &str) -> Result<(), String> {
        let res = self.http.get(format!("{}{path}", self.base)).header("Authorization", auth).send().await;
        let res = res.map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {}", String::from_utf8_lossy(&body)));
        }
        Ok(())
    }

    /// The cursor of page `page` (1-based) of `path`, walking the pages before it.
    async fn cursor_of_page(&self, path: &str, auth: &str, page: usize) -> Result<String, String> {
        let mut cursor = String::new();
        for _ in 1..page {
            let sep = if path.contains('?') { '&' } else { '?' };
            let at = if cursor.is_empty() { path.to_owned() } else { format!("{path}{sep}cursor={cursor}") };
            let body = self.get(&at, auth).await?;
            cursor = body["next_cursor"].as_str().ok_or(format!("{path} has fewer than {page} pages"))?.to_owned();
        }
        Ok(cursor)
    }
}

/// Seeds, serves and measures. Fails when the database is unreachable or a query fails.
pub async fn run(
    database_url: &str,
    listings: i64,
    orders: i64,
    clients: usize,
    seconds: u64,
    reuse: bool,
) -> Result<QueriesReport, String> {
    let mut settings = Settings::development(database_url);
    settings.list_page_cache = false;
    settings.db_pool_max = 32;
    settings.http_workers = 2;
    settings.auth.rate.queries_per_ip = 1_000_000;
    let pool = crate::startup::connect_and_migrate(&settings).await.map_err(|e| e.to_string())?;
    let seeded = Instant::now();
    if !reuse {
        let c = pool.get().await.map_err(|e| e.to_string())?;
        let events: i64 = c.query_one("SELECT count(*) FROM events", &[]).await.map_err(|e| e.to_string())?.get(0);
        if events > 0 {
            return Err(
                "bench queries replaces the read models: run it on a database of its own, without events".into()
            );
        }
        c.batch_execute("TRUNCATE listings_view, orders_view").await.map_err(|e| e.to_string())?;
        c.execute(SEED_LISTINGS, &[&listings, &BIG_SELLER]).await.map_err(|e| e.to_string())?;
        c.execute(SEED_ORDERS, &[&orders, &BIG_SELLER, &order_template(), &BIG_BUYER, &BIG_COURIER])
            .await
            .map_err(|e| e.to_string())?;
        c.batch_execute("ANALYZE listings_view; ANALYZE orders_view").await.map_err(|e| e.to_string())?;
    }
    let seed_seconds = seeded.elapsed().as_secs_f64();
    let app = crate::startup::Application::build(settings.clone(), false).await.map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let token = |id: Uuid, roles: &[&str], district: Option<&str>| -> Result<String, String> {
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        Ok(format!("Bearer {}", crate::cli::token(&settings, id, &roles, Some("free"), district, 60)?))
    };
    let anyone = token(Uuid::new_v4(), &[], None)?;
    let support = token(Uuid::new_v4(), &["support"], None)?;
    let buyer = token(BIG_BUYER, &[], None)?;
    let seller = token(BIG_SELLER, &["seller"], None)?;
    let courier = token(BIG_COURIER, &["courier"], Some("chilonzor"))?;
    let client = Client { http: reqwest::Client::new(), base };
    let page = |path: &str, n: usize| {
        let (client, path, anyone) = (&client, path.to_owned(), anyone.clone());
        async move {
            let cursor = client.cursor_of_page(&path, &anyone, n).await?;
            let sep = if path.contains('?') { '&' } else { '?' };
            Ok::<_, String>(format!("{path}{sep}cursor={cursor}"))
        }
    };
    let shapes: Vec<(&str, String, String)> = vec![
        ("home", "/v1/listings?limit=20".into(), anyone.clone()),
        ("home page 2", page("/v1/listings?limit=20", 2).await?, anyone.clone()),
        ("home page 50", page("/v1/listings?limit=20", 50).await?, anyone.clone()),
        ("category", "/v1/listings?category=cat7&limit=20".into(), anyone.clone()),
        ("category page 50", page("/v1/listings?category=cat7&limit=20", 50).await?, anyone.clone()),
        ("kind", "/v1/listings?kind=game_account&limit=20".into(), anyone.clone()),
        ("game", "/v1/listings?game=game3&limit=20".into(), anyone.clone()),
        ("price asc", "/v1/listings?sort=price_asc&limit=20".into(), anyone.clone()),
        ("category price desc", "/v1/listings?category=cat9&sort=price_desc&limit=20".into(), anyone.clone()),
        ("popular", "/v1/listings?sort=popular&limit=20".into(), anyone.clone()),
        ("in stock products", "/v1/listings?kind=product&in_stock=true&limit=20".into(), anyone.clone()),
        ("premium", "/v1/listings?premium=true&limit=20".into(), anyone.clone()),
        ("seller's listings", format!("/v1/listings?seller_id={BIG_SELLER}&limit=20"), anyone.clone()),
        ("moderation queue", "/v1/listings?status=pending&sort=submitted&limit=20".into(), support.clone()),
        ("buyer's orders", format!("/v1/orders?buyer_id={BIG_BUYER}&limit=20"), buyer.clone()),
        ("seller's orders", format!("/v1/orders?seller_id={BIG_SELLER}&limit=20"), seller.clone()),
        ("seller's completed", format!("/v1/orders?seller_id={BIG_SELLER}&status=completed&limit=20"), seller.clone()),
        ("courier's deliveries", "/v1/orders?courier_id=me&limit=20".into(), courier.clone()),
        ("open in district", "/v1/orders?district=chilonzor&limit=20".into(), courier.clone()),
        ("dispute queue", "/v1/orders?status=disputed&limit=20".into(), support.clone()),
    ];
    let shapes = std::sync::Arc::new(shapes);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (shapes, http, base) = (shapes.clone(), client.http.clone(), client.base.clone());
        tasks.push(tokio::spawn(async move {
            let client = Client { http, base };
            let mut samples: Vec<Vec<u32>> = vec![Vec::new(); shapes.len()];
            let mut i = c;
            while Instant::now() < deadline {
                let s = i % shapes.len();
                let (_, path, auth) = &shapes[s];
                let sent = Instant::now();
                client.fetch(path, auth).await?;
                if samples[s].len() < SAMPLES_PER_SHAPE_MAX {
                    samples[s].push(sent.elapsed().as_micros() as u32);
                }
                i += 1;
            }
            Ok::<_, String>(samples)
        }));
    }
    let mut all: Vec<Vec<u32>> = vec![Vec::new(); shapes.len()];
    for t in tasks {
        for (s, mut samples) in t.await.map_err(|e| e.to_string())??.into_iter().enumerate() {
            all[s].append(&mut samples);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: usize = all.iter().map(Vec::len).sum();
    let mut report = BTreeMap::new();
    for (s, mut samples) in all.into_iter().enumerate() {
        samples.sort_unstable();
        let pct = |p: f64| match samples.len() {
            0 => 0.0,
            n => f64::from(samples[((n as f64 * p) as usize).min(n - 1)]) / 1000.0,
        };
        report.insert(
            shapes[s].0.to_owned(),
            ShapeReport { requests: samples.len(), p50_ms: pct(0.50), p99_ms: pct(0.99) },
        );
    }
    Ok(QueriesReport {
        listings,
        orders,
        seed_seconds: (seed_seconds * 10.0).round() / 10.0,
        clients,
        seconds: (elapsed * 10.0).round() / 10.0,
        requests_per_sec: (total as f64 / elapsed).round(),
        shapes: report,
    })
}
