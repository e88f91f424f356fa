//! given / when / then helpers for the deciders.
#![allow(dead_code)]

use bozor_domain::aggregate::Aggregate;
use bozor_domain::{Actor, Context, DomainError, Plan, Role};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

pub fn at(hours: i64) -> DateTime<Utc> {
    t0() + Duration::hours(hours)
}

pub fn actor(id: Uuid, roles: &[Role]) -> Actor {
    Actor::new(id, roles)
}

pub fn ctx(actor: &Actor) -> Context {
    Context { now: t0(), actor: actor.clone() }
}

pub fn ctx_at(actor: &Actor, hours: i64) -> Context {
    Context { now: at(hours), actor: actor.clone() }
}

pub fn seller(plan: Plan) -> Actor {
    Actor { id: Uuid::new_v4(), roles: vec![Role::Buyer, Role::Seller], plan: Some(plan) }
}

pub fn given<A: Aggregate>(events: &[A::Event]) -> A::State {
    A::fold(events)
}

/// The code of a refusal, for `then` assertions.
#[track_caller]
pub fn refused<T: std::fmt::Debug>(r: Result<T, DomainError>) -> &'static str {
    r.expect_err("expected the command to be refused").code()
}
