//! Test support: a fresh, migrated database per test, cloned from a template database that is
//! migrated once per schema. Used by this crate's tests, the API's and the black-box tests.
//!
//! `BOZOR_TEST_ADMIN_URL` (default `postgres://postgres@127.0.0.1:55432/postgres`, the cluster `./dev` starts) names a role
//! that may create databases. The test command drops the `bozor_t_*` databases of earlier runs.

use std::str::FromStr;

use deadpool_postgres::Pool;
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;

use crate::store::EventStore;

/// Advisory lock key serializing template creation and cloning across test processes.
const TEMPLATE_LOCK: i64 = 0x626f_7a6f_7254_i64;

/// A database of one's own.
pub struct TestDb {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name.
    pub name: String,
    /// A pool of up to 24 connections to it.
    pub pool: Pool,
}

impl TestDb {
    /// An event store on this database snapshotting every `snapshot_every` events.
    pub fn store(&self, snapshot_every: i64) -> EventStore {
        EventStore::new(self.pool.clone(), snapshot_every)
    }

    /// A plain client for assertions.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

/// The admin URL tests create databases with.
pub fn admin_url() -> String {
    std::env::var("BOZOR_TEST_ADMIN_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into())
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e} (hint: run the README's test command)"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

fn url_for(db: &str) -> String {
    let mut cfg = tokio_postgres::Config::from_str(&admin_url()).expect("BOZOR_TEST_ADMIN_URL parses");
    cfg.dbname(db);
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres");
    format!("postgres://{user}@{host}:{port}/{db}")
}

fn template_name() -> String {
    let mut h = Sha256::new();
    for m in bozor_eventstore_schema::MIGRATIONS {
        h.update(m.sql.as_bytes());
    }
    format!("bozor_tmpl_{}", &hex::encode(h.finalize())[..12])
}

/// Creates a new database with the current schema. Panics when PostgreSQL is unreachable.
pub async fn fresh_database() -> TestDb {
    let admin = connect(&admin_url()).await;
    admin.execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK]).await.expect("advisory lock");
    let template = template_name();
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .expect("query pg_database")
        .is_some();
    if !exists {
        admin.batch_execute(&format!("CREATE DATABASE {template}")).await.expect("create template database");
        let mut client = connect(&url_for(&template)).await;
        crate::migrate::migrate(&mut client).await.expect("migrate template database");
        drop(client);
    }
    let name = format!("bozor_t_{}", uuid::Uuid::new_v4().simple());
    let created = admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}")).await;
    admin.execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK]).await.expect("advisory unlock");
    created.expect("create test database from template");
    let url = url_for(&name);
    let pool = crate::db::pool(&url, 24).expect("pool for test database");
    TestDb { url, name, pool }
}
