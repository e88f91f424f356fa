//! The read side: a projector runtime that feeds projections from the event store in tail
//! order, and the PostgreSQL read models with their queries.
//!
//! A projection applies an event and records, in the same transaction, the stream version it
//! applied and its checkpoint; a redelivered event is skipped, so replays change nothing.

pub mod fold;
pub mod listings;
pub mod orders;
pub mod runtime;
pub mod wallets;

pub use runtime::{Projection, ProjectionError, Projector};
