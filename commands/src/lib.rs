//! bozor's write side: the PostgreSQL event store client, migrations, and command handling.

pub mod db;
pub mod handlers;
pub mod hash;
pub mod migrate;
pub mod service;
pub mod store;
pub mod testing;

pub use service::{CommandError, CommandMeta, CommandService, Outcome};
pub use store::{EventStore, StoreError};
