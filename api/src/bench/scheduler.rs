//! `bozor bench scheduler --timers N`: on BOZOR_DATABASE_URL (best a database of its own),
//! submits N listings through the command side (untimed), lets the timers projection catch up,
//! moves a manual clock 49 hours on and times the scheduler firing every auto-approval. Then
//! checks that each listing was approved exactly once.

use std::sync::Arc;
use std::time::Instant;

use bozor_commands::{CommandMeta, CommandService, EventStore};
use bozor_domain::listing::{self, Content, Details};
use bozor_domain::{Actor, Money, Role};
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use crate::clock::ManualClock;
use crate::configuration::Settings;
use crate::scheduler::Scheduler;

#[derive(Debug, Serialize)]
pub struct SchedulerReport {
    pub timers: usize,
    pub setup_seconds: f64,
    pub projection_seconds: f64,
    pub fire_seconds: f64,
    pub commands_per_sec: f64,
    pub fired: usize,
    /// `ListingApproved` events written: equal to `fired` when none fired twice.
    pub approvals_written: i64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub async fn run(settings: &Settings, timers: usize) -> Result<SchedulerReport, String> {
    let pool = crate::startup::connect_and_migrate(settings).await.map_err(err)?;
    let svc = CommandService::new(EventStore::new(pool.clone(), settings.snapshot_every));
    let seller = Actor { id: Uuid::new_v4(), roles: vec![Role::Buyer, Role::Seller], plan: None };
    let started = Instant::now();
    let results: Vec<Result<(), String>> = futures_util::stream::iter(0..timers)
        .map(|n| {
            let (svc, seller) = (svc.clone(), seller.clone());
            async move {
                let id = Uuid::new_v4();
                let meta = |c| {
                    let mut m = CommandMeta::system(c, Utc::now());
                    m.actor = seller.clone();
                    m
                };
                let content = Content {
                    title: format!("Nexia 3, {n}"),
                    description: "Bench".into(),
                    category: "cars".into(),
                    images: vec![],
                    attributes: Default::default(),
                };
                let details = Details::Classified { contact_phone: None };
                let price = Money::from_tiyin(10_000_000).map_err(err)?;
                svc.create_listing(&meta("create_listing"), id, details, content, price).await.map_err(err)?;
                svc.listing_command(&meta("submit_listing"), id, listing::Command::Submit).await.map_err(err)?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    let setup_seconds = round(started.elapsed().as_secs_f64());

    let workers = crate::startup::worker_pool(settings).map_err(err)?;
    let projecting = Instant::now();
    let projector =
        bozor_projections::Projector::new(workers.clone(), Arc::new(bozor_projections::timers::TimersProjection));
    projector.register().await.map_err(err)?;
    while projector.step().await.map_err(err)? > 0 {}
    let projection_seconds = round(projecting.elapsed().as_secs_f64());

    let clock = Arc::new(ManualClock::at(Utc::now() + Duration::hours(49)));
    let scheduler = Scheduler::new(&settings.database_url, workers.clone(), svc, clock, settings.unpaid_ttl);
    let firing = Instant::now();
    let mut fired = 0;
    loop {
        let batch = scheduler.fire_due().await.map_err(err)?;
        if batch.total() == 0 {
            break;
        }
        if batch.failed > 0 || batch.moot > 0 {
            return Err(format!("a batch had failures: {batch:?}"));
        }
        fired += batch.fired;
    }
    let fire_seconds = firing.elapsed().as_secs_f64();
    let approvals_written: i64 = pool
        .get()
        .await
        .map_err(err)?
        .query_one(
            "SELECT count(*) FROM events WHERE event_type = 'ListingApproved' AND payload->>'automatic' = 'true'",
            &[],
        )
        .await
        .map_err(err)?
        .get(0);
    Ok(SchedulerReport {
        timers,
        setup_seconds,
        projection_seconds,
        fire_seconds: round(fire_seconds),
        commands_per_sec: (fired as f64 / fire_seconds).round(),
        fired,
        approvals_written,
    })
}
