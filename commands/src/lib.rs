//! bozor's write side: the PostgreSQL event store client, migrations, command handling, and the
//! relay that fans the store out to Kafka.

pub mod accounts;
pub mod audit;
pub mod db;
pub mod fault;
pub mod handlers;
pub mod hash;
pub mod kafka;
pub mod metrics;
pub mod migrate;
pub mod payments;
pub mod relay;
pub mod service;
pub mod store;
pub mod testing;
pub mod vault;

pub use service::{CommandError, CommandMeta, CommandService, Outcome};
pub use store::{EventStore, StoreError};
