//! Statements a projection runs in its batch's transaction, each prepared once per connection
//! (the pool's statement cache) rather than on every call: a statement prepared on the spot
//! costs a round trip of its own and is parsed and planned every time. Only for fixed SQL
//! texts: every distinct text stays in the connection's cache.

use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

/// Runs `sql`; answers the rows it changed.
pub async fn execute(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> Result<u64, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.execute(&stmt, params).await
}

/// Runs `sql`; answers its rows.
pub async fn query(tx: &Transaction<'_>, sql: &str, params: Params<'_>) -> Result<Vec<Row>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query(&stmt, params).await
}

/// Runs `sql`; answers its row, if any (more than one is an error).
pub async fn query_opt(
    tx: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query_opt(&stmt, params).await
}
