//! Black-box tests: the real server on a free port, a fresh database per test, requests over
//! HTTP. State is checked by loading streams from the event store, as the read side will.

mod admin;
mod admin_console;
mod attacker;
mod audit_ledger;
mod auth;
mod authz;
mod bad_input;
mod cli;
mod client_apps;
mod cluster;
mod credentials;
mod idempotency;
mod kafka;
mod listings;
mod observability;
mod openapi;
mod orders;
mod payments;
mod plans;
mod queries;
mod scale_out;
mod scheduler;
mod search;
mod shutdown;
mod support;
mod wallets;
