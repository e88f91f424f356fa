//! bozor's domain: the aggregates Listing, Order, Escrow, Wallet, User and Payment (a provider's
//! transaction) as pure deciders, the multi-stream flows that combine them, money, and the
//! upcasters of stored events.
//!
//! Nothing here does I/O, reads a clock or draws a random number: time, actor and ids come in
//! on the command and its `Context`.

pub mod aggregate;
pub mod context;
pub mod error;
pub mod escrow;
pub mod flows;
pub mod listing;
pub mod money;
pub mod order;
pub mod payment;
pub mod upcast;
pub mod user;
pub mod wallet;

pub use aggregate::{Aggregate, EncodedEvent};
pub use context::{Actor, Context, Role};
pub use error::DomainError;
pub use money::{BasisPoints, Money, Plan};
