//! bozor's HTTP API (actix-web) and the `bozor` binary's subcommands.

pub mod actor;
pub mod auth;
pub mod authz;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod configuration;
pub mod errors;
pub mod guard;
pub mod metrics;
pub mod openapi;
pub mod read_models;
pub mod request;
pub mod routes;
pub mod scheduler;
pub mod seed;
pub mod startup;
pub mod telemetry;
