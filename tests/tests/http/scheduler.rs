//! The scheduler: timers derived from events, fired as commands of the system actor when an
//! injected clock says they are due. In process with a clock the test moves, and as the
//! binary with a clock offset, an active scheduler and a standby that takes over.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use bozor_api::clock::ManualClock;
use bozor_api::scheduler::{Fired, Scheduler};
use bozor_domain::listing::{self, ListingAggregate};
use bozor_domain::order::{self, OrderAggregate};
use bozor_domain::wallet::PlatformAccount;
use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::support::{bozor_bin, spawn_with, wait_for, ReadSide, TestApp, User};

const PRICE: i64 = 10_000_000;

/// The app with its projectors (timers included) but a scheduler of the test's own: the
/// embedded one runs on the system clock and never finds these deadlines due.
async fn app_and_scheduler() -> (TestApp, Scheduler, Arc<ManualClock>) {
    let app = spawn_with(ReadSide::Embedded).await;
    let clock = Arc::new(ManualClock::at(Utc::now()));
    let commands = bozor_commands::CommandService::new(app.store.clone());
    let scheduler = Scheduler::new(&app.db.url, app.db.pool.clone(), commands, clock.clone(), Duration::minutes(30));
    (app, scheduler, clock)
}

async fn timer_state(app: &TestApp, id: &str) -> Option<(String, i32, Option<String>)> {
    let c = app.db.client().await;
    c.query_opt("SELECT state, attempts, last_error FROM timers WHERE timer_id = $1", &[&id])
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
}

async fn until_timer(app: &TestApp, id: &str, state: &str) {
    wait_for(&format!("timer {id} {state}"), 15, || async move {
        timer_state(app, id).await.is_some_and(|(s, _, _)| s == state)
    })
    .await;
}

async fn listing_status(app: &TestApp, id: Uuid) -> listing::Status {
    match app.load::<ListingAggregate>(id).await {
        listing::State::Exists(l) => l.status,
        listing::State::Initial => panic!("no listing"),
    }
}

async fn order_status(app: &TestApp, id: Uuid) -> order::Status {
    match app.load::<OrderAggregate>(id).await {
        order::State::Exists(o) => o.status,
        order::State::Initial => panic!("no order"),
    }
}

async fn submitted(app: &TestApp, seller: &User) -> Uuid {
    let body = json!({ "title": "Damas 2019", "description": "Yaxshi holatda", "category": "cars", "price": PRICE,
                       "details": { "kind": "classified" } });
    let id = app.post(seller, "/v1/listings", body).await.ok().id();
    app.post(seller, &format!("/v1/listings/{id}/submit"), json!({})).await.ok();
    id
}

#[tokio::test]
async fn a_listing_nobody_moderates_is_approved_after_48_hours_once() {
    let (app, scheduler, clock) = app_and_scheduler().await;
    let seller = User::seller("free");
    let (id, moderated) = (submitted(&app, &seller).await, submitted(&app, &seller).await);
    app.post(&User::new("support"), &format!("/v1/listings/{moderated}/reject"), json!({ "reason": "blurry" }))
        .await
        .ok();
    until_timer(&app, &format!("listing_approval:{id}"), "pending").await;
    until_timer(&app, &format!("listing_approval:{moderated}"), "cancelled").await;
    assert_eq!(scheduler.fire_due().await.unwrap(), Fired::default(), "nothing is due yet");
    clock.advance(Duration::hours(47));
    assert_eq!(scheduler.fire_due().await.unwrap().total(), 0);
    clock.advance(Duration::hours(1) + Duration::seconds(1));
    assert_eq!(scheduler.fire_due().await.unwrap(), Fired { fired: 1, ..Default::default() });
    assert_eq!(listing_status(&app, id).await, listing::Status::Active);
    assert!(matches!(listing_status(&app, moderated).await, listing::Status::Rejected { .. }));
    let events = app.events().await;
    assert_eq!(scheduler.fire_due().await.unwrap().total(), 0, "fired once");
    assert_eq!(app.events().await, events);
    assert_eq!(timer_state(&app, &format!("listing_approval:{id}")).await.unwrap().0, "fired");
    // Seller stats and the admin overview count what the scheduler settled.
    let path = format!("/v1/sellers/{}/stats", seller.id);
    wait_for("the stats to count the automatic approval", 10, || async {
        app.get_as(&seller, &path).await.ok().body["listings_approved_automatically"] == 1
    })
    .await;
    let overview = app.get_as(&User::new("admin"), "/v1/admin/overview").await.ok();
    assert_eq!(overview.body["settled"]["listings_approved_automatically"], 1);
    app.get_as(&seller, "/v1/admin/overview").await.err(403, "forbidden");
}

#[tokio::test]
async fn a_silent_buyers_escrow_is_released_24_hours_after_delivery() {
    let (app, scheduler, clock) = app_and_scheduler().await;
    let (seller, buyer, courier) = (User::seller("pro"), User::buyer(), app.courier("chilonzor").await);
    let listing = app.active_product(&seller, PRICE, 2).await;
    app.deposit(&buyer, 30_000_000).await;
    let body = json!({ "items": [{ "listing_id": listing, "quantity": 1 }],
                       "delivery": { "district": "chilonzor", "address": "Bunyodkor 1" } });
    let order = app.post(&buyer, "/v1/orders", body).await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.accept(&seller, order).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/pick-up"), json!({})).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    let escrow = bozor_domain::flows::escrow_id_for(order);
    until_timer(&app, &format!("escrow_release:{escrow}"), "pending").await;
    clock.advance(Duration::hours(23));
    assert_eq!(scheduler.fire_due().await.unwrap().total(), 0);
    clock.advance(Duration::hours(1) + Duration::seconds(1));
    assert_eq!(scheduler.fire_due().await.unwrap().fired, 1);
    assert_eq!(order_status(&app, order).await, order::Status::Completed);
    // Pro plan: 5 % commission on the goods; the courier gets the Chilonzor fee.
    assert_eq!(app.balance(seller.id).await, (PRICE - PRICE / 20, 0));
    assert_eq!(app.platform(PlatformAccount::Revenue).await, PRICE / 20);
    app.assert_books_balance().await;
    let path = format!("/v1/sellers/{}/stats", seller.id);
    wait_for("the stats to count the automatic release", 10, || async {
        let stats = app.get_as(&seller, &path).await.ok().body;
        stats["completed_automatically"] == 1 && stats["released_automatically_tiyin"] == PRICE
    })
    .await;
    let overview = app.get_as(&User::new("admin"), "/v1/admin/overview").await.ok();
    assert_eq!(overview.body["settled"]["orders_completed_automatically"], 1);
    // Fired once: nothing is due any more.
    assert_eq!(scheduler.fire_due().await.unwrap().total(), 0);
}

#[tokio::test]
async fn an_unpaid_order_expires_and_its_stock_comes_back_unless_a_payment_is_in_progress() {
    let (app, scheduler, clock) = app_and_scheduler().await;
    let (seller, buyer) = (User::seller("free"), User::buyer());
    let listing = app.active_product(&seller, PRICE, 2).await;
    let body = json!({ "items": [{ "listing_id": listing, "quantity": 2 }],
                       "delivery": { "district": "chilonzor", "address": "Bunyodkor 1" } });
    let order = app.post(&buyer, "/v1/orders", body.clone()).await.ok().id();
    let paid = app
        .post(
            &buyer,
            "/v1/orders",
            json!({ "items": [{ "listing_id": app.active_product(&seller, PRICE, 1).await, "quantity": 1 }],
        "delivery": { "district": "chilonzor", "address": "Bunyodkor 1" } }),
        )
        .await
        .ok()
        .id();
    app.deposit(&buyer, 30_000_000).await;
    app.post(&buyer, &format!("/v1/orders/{paid}/pay"), json!({})).await.ok();
    until_timer(&app, &format!("order_unpaid:{order}"), "pending").await;
    until_timer(&app, &format!("order_unpaid:{paid}"), "cancelled").await;
    // A provider payment started 25 minutes in holds the order past the TTL.
    clock.advance(Duration::minutes(25));
    let commands = bozor_commands::CommandService::new(app.store.clone());
    let meta = bozor_commands::CommandMeta::system("payme_create_transaction", clock_now(&clock));
    let total = PRICE * 2 + 1_800_000;
    let target = bozor_domain::payment::Target::Order { order_id: order };
    let amount = bozor_domain::Money::from_tiyin(total).unwrap();
    commands
        .create_payment(&meta, bozor_domain::wallet::Provider::Payme, "abc", target, amount, 1_800_000_000_000)
        .await
        .unwrap();
    clock.advance(Duration::minutes(6));
    assert_eq!(scheduler.fire_due().await.unwrap().later, 1, "a payment is in progress");
    assert_eq!(order_status(&app, order).await, order::Status::Placed);
    let (_, _, why) = timer_state(&app, &format!("order_unpaid:{order}")).await.unwrap();
    assert!(why.unwrap().contains("payment"));
    // Abandoned: 30 minutes after it started, the order expires after all.
    clock.advance(Duration::minutes(30));
    assert_eq!(scheduler.fire_due().await.unwrap().fired, 1);
    assert_eq!(order_status(&app, order).await, order::Status::Cancelled);
    let stock = match app.load::<ListingAggregate>(listing).await {
        listing::State::Exists(l) => l.available_of("std"),
        listing::State::Initial => panic!(),
    };
    assert_eq!(stock, 2, "the reservation came back");
    assert_eq!(order_status(&app, paid).await, order::Status::Paid);
    let _ = body;
}

fn clock_now(clock: &ManualClock) -> chrono::DateTime<Utc> {
    use bozor_api::clock::Clock;
    clock.now()
}

#[tokio::test]
async fn a_timer_that_fails_is_retried_with_backoff_and_shown_with_its_error() {
    let (app, _, clock) = app_and_scheduler().await;
    let seller = User::seller("free");
    let id = submitted(&app, &seller).await;
    let timer = format!("listing_approval:{id}");
    until_timer(&app, &timer, "pending").await;
    // Commands go to a database that is not there; the timers are read from the real one.
    let dead = bozor_commands::db::pool("postgres://postgres@127.0.0.1:1/nowhere", 2).unwrap();
    let broken = bozor_commands::CommandService::new(bozor_commands::EventStore::new(dead, 100));
    let failing = Scheduler::new(&app.db.url, app.db.pool.clone(), broken, clock.clone(), Duration::minutes(30));
    clock.advance(Duration::hours(49));
    assert_eq!(failing.fire_due().await.unwrap().failed, 1);
    let (state, attempts, error) = timer_state(&app, &timer).await.unwrap();
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    assert!(error.is_some());
    assert_eq!(failing.fire_due().await.unwrap().total(), 0, "not before its backoff");
    clock.advance(Duration::seconds(3));
    assert_eq!(failing.fire_due().await.unwrap().failed, 1);
    assert_eq!(timer_state(&app, &timer).await.unwrap().1, 2);
    let admin = User::new("admin");
    let failing_list = app.get_as(&admin, "/v1/admin/timers?state=failing").await.ok();
    assert_eq!(failing_list.body["items"][0]["timer_id"], timer.as_str());
    assert!(failing_list.body["items"][0]["last_error"].is_string());
    // The database is back: the next attempt fires it.
    let commands = bozor_commands::CommandService::new(app.store.clone());
    let healthy = Scheduler::new(&app.db.url, app.db.pool.clone(), commands, clock.clone(), Duration::minutes(30));
    clock.advance(Duration::seconds(5));
    assert_eq!(healthy.fire_due().await.unwrap().fired, 1);
    assert_eq!(listing_status(&app, id).await, listing::Status::Active);
    app.get_as(&User::seller("free"), "/v1/admin/timers").await.err(403, "forbidden");
    app.get_as(&admin, "/v1/admin/timers?state=soon").await.err(400, "invalid_query");
}

struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scheduler_process(db_url: &str, offset_secs: i64) -> Proc {
    let child = Command::new(bozor_bin())
        .arg("scheduler")
        .env("BOZOR_DATABASE_URL", db_url)
        .env("BOZOR_TEST_CLOCK_OFFSET_SECONDS", offset_secs.to_string())
        .env("BOZOR_DB_POOL_MAX", "4")
        .env("RUST_LOG", "warn")
        .env_remove("BOZOR_KAFKA_BROKERS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("bozor starts");
    Proc(child)
}

#[tokio::test]
async fn the_scheduler_binary_fires_with_a_test_clock_and_a_standby_takes_over() {
    let app = spawn_with(ReadSide::Elsewhere).await;
    let seller = User::seller("free");
    let first = submitted(&app, &seller).await;
    let three_days = 3 * 24 * 3600;
    let mut active = scheduler_process(&app.db.url, three_days);
    wait_for("the first scheduler to approve the listing", 30, || async {
        listing_status(&app, first).await == listing::Status::Active
    })
    .await;
    let _standby = scheduler_process(&app.db.url, three_days);
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    active.0.kill().unwrap();
    let _ = active.0.wait();
    let second = submitted(&app, &seller).await;
    let started = std::time::Instant::now();
    wait_for("the standby to take over and approve", 20, || async {
        listing_status(&app, second).await == listing::Status::Active
    })
    .await;
    assert!(started.elapsed() < StdDuration::from_secs(10), "took over in {:?}", started.elapsed());
    // Production refuses a moved clock, naming the variable.
    let out = Command::new(bozor_bin())
        .arg("scheduler")
        .env("BOZOR_DATABASE_URL", &app.db.url)
        .env("BOZOR_ENV", "production")
        .env("BOZOR_TEST_CLOCK_OFFSET_SECONDS", "60")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("BOZOR_TEST_CLOCK_OFFSET_SECONDS"));
    let _ = Uuid::nil();
}
