//! Connection pool to PostgreSQL.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::NoTls;

/// Why the database could not be reached or configured.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse.
    #[error("invalid database url: {0} (hint: postgres://user@host:port/db)")]
    Url(#[source] tokio_postgres::Error),
    /// The pool could not be built.
    #[error("cannot build the connection pool: {0}")]
    Build(String),
}

/// Builds a pool of at most `size_max` connections to `url`. Connections open lazily; a caller
/// waits for one as long as it takes (workers: relay, projectors, benchmarks).
pub fn pool(url: &str, size_max: usize) -> Result<Pool, DbError> {
    builder(url, size_max)?.build().map_err(|e| DbError::Build(e.to_string()))
}

/// `pool` for requests: a caller waits at most `wait` for a connection, then gets
/// `PoolError::Timeout`, so a burst cannot queue requests without bound.
pub fn pool_for_requests(url: &str, size_max: usize, wait: std::time::Duration) -> Result<Pool, DbError> {
    builder(url, size_max)?
        .wait_timeout(Some(wait))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| DbError::Build(e.to_string()))
}

/// `pool` for the read side: its commits do not wait for the WAL to reach the disk
/// (`synchronous_commit = off`). What it writes (read models, their checkpoints and applied
/// versions, together in each transaction) is derived from the event store: a crash can lose
/// the last few milliseconds of it, never half a transaction, and the projectors then apply
/// those events again from the older checkpoint. Every command would otherwise pay for one
/// disk flush per projector. The scheduler's notes on its timers are written here too: one
/// lost makes a timer fire again, which the domain refuses (the command is idempotent).
pub fn read_side_pool(url: &str, size_max: usize) -> Result<Pool, DbError> {
    let mut config = config(url)?;
    let options = format!("{} -c synchronous_commit=off", config.get_options().unwrap_or_default());
    config.options(&options);
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager).max_size(size_max).build().map_err(|e| DbError::Build(e.to_string()))
}

fn builder(url: &str, size_max: usize) -> Result<deadpool_postgres::PoolBuilder, DbError> {
    let config = config(url)?;
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager).max_size(size_max))
}

/// The connection settings of `url`, with PostgreSQL's JIT compiler off unless the URL's own
/// `options` turn it on again (they come after). bozor's statements are short, and the
/// planner's cost estimate is what starts the JIT: the projection status query, whose lag count
/// is estimated at its cap, spent about 90 ms compiling on every call (every metrics scrape)
/// to run for about 1 ms.
fn config(url: &str) -> Result<tokio_postgres::Config, DbError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(DbError::Url)?;
    let options = match config.get_options() {
        Some(o) if !o.trim().is_empty() => format!("-c jit=off {o}"),
        _ => "-c jit=off".to_owned(),
    };
    config.options(&options);
    Ok(config)
}
