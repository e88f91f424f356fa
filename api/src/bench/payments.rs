//! `bozor bench payments`: provider callbacks against order payments from a wallet, through
//! the HTTP API of an in-process server on BOZOR_DATABASE_URL (best a database of its own).
//!
//! Set-up, untimed, through the command side: one seller, one buyer and one listing per client,
//! each buyer's wallet funded and `per_client` orders placed. Then, timed, `clients` concurrent
//! clients each run, one phase after the other:
//! - `wallet_pay`: `POST /v1/orders/{id}/pay` of each placed order (the buyer's wallet holds the
//!   money for the escrow);
//! - `payme_top_up`: Payme CreateTransaction + PerformTransaction pairs, each a new
//!   transaction topping up the client's buyer;
//! - `payme_order`: the same pairs paying fresh orders (placed untimed before the phase).
//!
//! `--phase` runs one of them alone (with only the set-up it needs), for a longer or profiled
//! look at it.
//!
//! Each phase begins with `--warm-up` untimed payments of each client (20 by default), made
//! like the timed ones: a fresh server's first requests open its database connections and
//! prepare its statements on each, which cost the first seconds of a short phase more than the
//! phase itself (see bench/README.md). Before each phase, and after its warm-up, the in-process
//! projectors catch up with everything written so far (the set-up's events, the phase before),
//! so a phase is measured with the read-side work it causes itself and not the backlog of what
//! came before. Each phase reports requests (or pairs) per
//! second and the latency of single calls.

use std::time::{Duration, Instant};

use base64::Engine;
use bozor_commands::{CommandMeta, CommandService, EventStore};
use bozor_domain::flows::{DeliveryRequest, LineRequest};
use bozor_domain::listing::{self, Content, Details, Variant};
use bozor_domain::order::District;
use bozor_domain::user::{Grant, Phone};
use bozor_domain::wallet::Provider;
use bozor_domain::{Actor, Money, Plan, Role};
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::configuration::{PaymeSettings, Settings};

const PRICE: i64 = 5_000_000;

/// The phases, in the order they run.
pub const PHASES: [&str; 3] = ["wallet_pay", "payme_top_up", "payme_order"];
const BENCH_KEY: &str = "bench-payme-key";

#[derive(Debug, Serialize)]
pub struct PaymentsReport {
    pub clients: usize,
    pub per_client: usize,
    /// Payments each client made untimed before each phase.
    pub warm_up: usize,
    pub setup_seconds: f64,
    pub phases: Vec<Phase>,
}

#[derive(Debug, Serialize)]
pub struct Phase {
    pub name: &'static str,
    /// Payments completed (a pay, or a Create+Perform pair).
    pub payments: usize,
    pub payments_per_sec: f64,
    /// Latency of one HTTP call (each of a pair's two calls counts once).
    pub call_p50_ms: f64,
    pub call_p99_ms: f64,
    /// p99 of each call of a payment by its place (a pair: Create, then Perform).
    pub call_p99_ms_by_step: Vec<f64>,
    /// Latency of a whole payment (one call, or a pair).
    pub payment_p99_ms: f64,
    /// Appends refused because a stream moved first (each retried), and appends in all.
    pub append_conflicts: u64,
    pub appends: u64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn meta(actor: &Actor, command: &'static str) -> CommandMeta {
    let mut m = CommandMeta::system(command, Utc::now());
    m.actor = actor.clone();
    m
}

async fn registered(svc: &CommandService, grant: Option<(Role, Grant)>) -> Result<Actor, String> {
    let digits = Uuid::new_v4().as_u128() % 1_000_000_000;
    let phone = Phone::parse(&format!("+99890{:07}", digits % 10_000_000)).map_err(err)?;
    let (id, _) = svc.user_for_phone(&phone, Utc::now()).await.map_err(err)?;
    let mut actor = Actor::new(id, &[Role::Buyer]);
    if let Some((role, grant)) = grant {
        svc.grant_role(&CommandMeta::system("grant_role", Utc::now()), id, role, grant.clone()).await.map_err(err)?;
        actor.roles.push(role);
        actor.plan = grant.plan;
    }
    Ok(actor)
}

/// A client's world: its buyer (with a token) and its own listing, so clients contend on nothing
/// but the platform's shards.
struct World {
    buyer: Actor,
    token: String,
    listing: Uuid,
}

async fn world(svc: &CommandService, settings: &Settings, seller: &Actor, stock: u32) -> Result<World, String> {
    let buyer = registered(svc, None).await?;
    let token = crate::cli::token(settings, buyer.id, &[], None, None, 600)?;
    let listing = Uuid::new_v4();
    let details = Details::Product { variants: vec![Variant { sku: "std".into(), label: "std".into(), stock }] };
    let content = Content {
        title: "Choynak Artel".into(),
        description: "Bench".into(),
        category: "appliances".into(),
        images: vec![],
        attributes: Default::default(),
    };
    let price = Money::from_tiyin(PRICE).map_err(err)?;
    svc.create_listing(&meta(seller, "create_listing"), listing, details, content, price).await.map_err(err)?;
    svc.listing_command(&meta(seller, "submit_listing"), listing, listing::Command::Submit).await.map_err(err)?;
    let admin = Actor::new(Uuid::new_v4(), &[Role::Admin]);
    svc.listing_command(&meta(&admin, "approve_listing"), listing, listing::Command::Approve).await.map_err(err)?;
    Ok(World { buyer, token, listing })
}

async fn place(svc: &CommandService, w: &World) -> Result<Uuid, String> {
    let id = Uuid::new_v4();
    let lines = vec![LineRequest { listing_id: w.listing, sku: None, quantity: 1 }];
    let delivery = DeliveryRequest { district: District::Chilonzor, address: "Bunyodkor 1".into() };
    svc.place_order(&meta(&w.buyer, "place_order"), id, lines, Some(delivery)).await.map_err(err)?;
    Ok(id)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    (f64::from(sorted[i]) / 10.0).round() / 100.0
}

async fn check(r: reqwest::Response, what: &str) -> Result<(), String> {
    let status = r.status();
    let body = r.text().await.map_err(err)?;
    if !status.is_success() || body.contains("\"error\"") {
        return Err(format!("{what} failed: {status} {body}"));
    }
    Ok(())
}

/// Runs `per_client` payments on each of `jobs`' clients at once; `pay` makes one payment and
/// answers each call's latency in microseconds.
async fn phase<F, Fut>(name: &'static str, jobs: Vec<Vec<Uuid>>, pay: F) -> Result<Phase, String>
where
    F: Fn(usize, Uuid) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<u32>, String>> + Send,
{
    let appends = || bozor_commands::metrics::METRICS.observations("bozor_append_seconds", &[]);
    let conflicts =
        || bozor_commands::metrics::METRICS.observations("bozor_append_seconds", &[("outcome", "conflict")]);
    let (appends_before, conflicts_before) = (appends(), conflicts());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client, ids) in jobs.into_iter().enumerate() {
        let pay = pay.clone();
        tasks.push(tokio::spawn(async move {
            let (mut steps, mut whole) = (Vec::<Vec<u32>>::new(), Vec::new());
            for id in ids {
                let t = Instant::now();
                by_step(&mut steps, pay(client, id).await?.into_iter().map(|call| vec![call]));
                whole.push(t.elapsed().as_micros() as u32);
            }
            Ok::<_, String>((steps, whole))
        }));
    }
    let (mut steps, mut whole) = (Vec::<Vec<u32>>::new(), Vec::new());
    for t in tasks {
        let (s, w) = t.await.map_err(err)??;
        by_step(&mut steps, s);
        whole.extend(w);
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut calls: Vec<u32> = steps.iter().flatten().copied().collect();
    calls.sort_unstable();
    whole.sort_unstable();
    for s in &mut steps {
        s.sort_unstable();
    }
    Ok(Phase {
        name,
        payments: whole.len(),
        payments_per_sec: (whole.len() as f64 / seconds).round(),
        call_p50_ms: percentile(&calls, 0.50),
        call_p99_ms: percentile(&calls, 0.99),
        call_p99_ms_by_step: steps.iter().map(|s| percentile(s, 0.99)).collect(),
        payment_p99_ms: percentile(&whole, 0.99),
        append_conflicts: conflicts() - conflicts_before,
        appends: appends() - appends_before,
    })
}

/// Adds each of `calls` (a payment's calls, or a client's, in their order) to its step's.
fn by_step(steps: &mut Vec<Vec<u32>>, calls: impl IntoIterator<Item = Vec<u32>>) {
    for (step, c) in calls.into_iter().enumerate() {
        match steps.get_mut(step) {
            Some(s) => s.extend(c),
            None => steps.push(c),
        }
    }
}

/// `phase` after an untimed one of the first `warm_up` payments of each client (the rest are
/// timed), and the projectors' catching up with it: the server's first requests open its
/// database connections, prepare its statements on each and fill PostgreSQL's caches for them,
/// which a server that has been up for a while has done long ago.
async fn warmed<F, Fut>(
    name: &'static str,
    warm_up: usize,
    mut jobs: Vec<Vec<Uuid>>,
    pay: F,
    pool: &deadpool_postgres::Pool,
) -> Result<Phase, String>
where
    F: Fn(usize, Uuid) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<Vec<u32>, String>> + Send,
{
    let warm: Vec<Vec<Uuid>> = jobs.iter_mut().map(|ids| ids.drain(..warm_up.min(ids.len())).collect()).collect();
    if warm_up > 0 {
        phase(name, warm, pay.clone()).await?;
        settle(pool).await?;
    }
    phase(name, jobs, pay).await
}

/// Runs the benchmark: every phase, or only the one named, each after `warm_up` untimed
/// payments of each client. Fails when the database is unreachable or a payment is refused.
pub async fn run(
    settings: &Settings,
    clients: usize,
    per_client: usize,
    warm_up: usize,
    only: Option<&str>,
) -> Result<PaymentsReport, String> {
    let made = per_client + warm_up;
    let runs = |phase: &str| only.is_none_or(|o| o == phase);
    let mut settings = settings.clone();
    settings.db_pool_max = 48;
    settings.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    settings.auth.rate.commands_per_user = 1_000_000;
    settings.auth.rate.commands_per_ip = 1_000_000;
    settings.payments.payme = Some(PaymeSettings { merchant_id: "bench".into(), key: BENCH_KEY.into() });
    let pool = crate::startup::connect_and_migrate(&settings).await.map_err(err)?;
    let svc = CommandService::new(EventStore::new(pool.clone(), settings.snapshot_every));

    let setup = Instant::now();
    let seller_grant = Grant { plan: Some(Plan::Premium), district: None };
    let seller = registered(&svc, Some((Role::Seller, seller_grant))).await?;
    let stock = u32::try_from(made * 2).map_err(err)?;
    let mut worlds = Vec::with_capacity(clients);
    for _ in 0..clients {
        worlds.push(world(&svc, &settings, &seller, stock).await?);
    }
    let worlds = std::sync::Arc::new(worlds);
    let order_total = PRICE + District::Chilonzor.delivery_fee().tiyin();
    let admin = Actor::new(Uuid::new_v4(), &[Role::Admin]);
    let mut wallet_orders = Vec::with_capacity(clients);
    for w in worlds.iter().filter(|_| runs("wallet_pay")) {
        let amount = Money::from_tiyin(order_total * made as i64).map_err(err)?;
        svc.deposit(&meta(&admin, "deposit"), w.buyer.id, amount, Provider::Manual, Uuid::new_v4().to_string())
            .await
            .map_err(err)?;
        let mut ids = Vec::with_capacity(made);
        for _ in 0..made {
            ids.push(place(&svc, w).await?);
        }
        wallet_orders.push(ids);
    }
    let setup_seconds = (setup.elapsed().as_secs_f64() * 10.0).round() / 10.0;

    let app = crate::startup::Application::build(settings.clone(), true).await.map_err(err)?;
    let base = std::sync::Arc::new(format!("http://127.0.0.1:{}", app.port()));
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().map_err(err)?;
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("Paycom:{BENCH_KEY}")));
    let mut phases = Vec::new();

    settle(&pool).await?;
    let (h, b, ws) = (http.clone(), base.clone(), worlds.clone());
    if runs("wallet_pay") {
        phases.push(
            warmed(
                "wallet_pay",
                warm_up,
                wallet_orders,
                move |client, order| {
                    let (h, b, ws) = (h.clone(), b.clone(), ws.clone());
                    async move {
                        let t = Instant::now();
                        let r = h
                            .post(format!("{b}/v1/orders/{order}/pay"))
                            .bearer_auth(&ws[client].token)
                            .json(&json!({}))
                            .send()
                            .await
                            .map_err(err)?;
                        check(r, "pay").await?;
                        Ok(vec![t.elapsed().as_micros() as u32])
                    }
                },
                &pool,
            )
            .await?,
        );
    }

    let pair = move |h: reqwest::Client, b: std::sync::Arc<String>, auth: String, tx: Uuid, amount: i64, account| async move {
        let mut calls = Vec::with_capacity(2);
        let create = json!({ "method": "CreateTransaction", "id": 1, "params": {
            "id": tx.simple().to_string(), "time": Utc::now().timestamp_millis(), "amount": amount, "account": account } });
        let perform = json!({ "method": "PerformTransaction", "id": 2, "params": { "id": tx.simple().to_string() } });
        for body in [create, perform] {
            let t = Instant::now();
            let r = h.post(format!("{b}/v1/payments/payme")).header("Authorization", &auth).json(&body).send().await;
            check(r.map_err(err)?, "payme").await?;
            calls.push(t.elapsed().as_micros() as u32);
        }
        Ok::<_, String>(calls)
    };

    settle(&pool).await?;
    let top_ups: Vec<Vec<Uuid>> = (0..clients).map(|_| (0..made).map(|_| Uuid::new_v4()).collect()).collect();
    let (h, b, ws, a) = (http.clone(), base.clone(), worlds.clone(), auth.clone());
    if runs("payme_top_up") {
        phases.push(
            warmed(
                "payme_top_up",
                warm_up,
                top_ups,
                move |client, tx| {
                    let account = json!({ "wallet_id": ws[client].buyer.id });
                    pair(h.clone(), b.clone(), a.clone(), tx, 100_000, account)
                },
                &pool,
            )
            .await?,
        );
    }

    if !runs("payme_order") {
        // Let the in-process projectors finish before the runtime goes away.
        settle(&pool).await?;
        return Ok(PaymentsReport { clients, per_client, warm_up, setup_seconds, phases });
    }
    let mut payme_orders = Vec::with_capacity(clients);
    for w in worlds.iter() {
        let mut ids = Vec::with_capacity(made);
        for _ in 0..made {
            ids.push(place(&svc, w).await?);
        }
        payme_orders.push(ids);
    }
    settle(&pool).await?;
    let (h, b, a) = (http.clone(), base.clone(), auth.clone());
    phases.push(
        warmed(
            "payme_order",
            warm_up,
            payme_orders,
            move |_, order| {
                pair(h.clone(), b.clone(), a.clone(), Uuid::new_v4(), order_total, json!({ "order_id": order }))
            },
            &pool,
        )
        .await?,
    );
    // Let the in-process projectors finish before the runtime goes away.
    settle(&pool).await?;
    Ok(PaymentsReport { clients, per_client, warm_up, setup_seconds, phases })
}

/// Waits until every projection fed from the event store has applied every event written so
/// far; fails at once when one has failed, and after 2 minutes naming those still behind.
async fn settle(pool: &deadpool_postgres::Pool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let client = pool.get().await.map_err(err)?;
        let statuses = bozor_projections::status(&client).await.map_err(err)?;
        drop(client);
        let store_fed = statuses.iter().filter(|s| s.feed == "store");
        if let Some(failed) = store_fed.clone().find(|s| s.state == "failed") {
            return Err(format!("projection {} failed: {}", failed.name, failed.last_error.as_deref().unwrap_or("")));
        }
        let behind: Vec<String> =
            store_fed.filter(|s| s.lag_events > 0).map(|s| format!("{} ({} events)", s.name, s.lag_events)).collect();
        if behind.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("projections still behind after 2 minutes: {}", behind.join(", ")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
