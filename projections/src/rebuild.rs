//! Blue/green rebuild of a read model. Version N keeps serving while N+1 is built from the
//! event store into shadow tables (schema `rebuild_<name>`, found first on the rebuilding
//! connection's search_path, so projections run unchanged). When the shadow has caught up, the
//! live projector is paused (advisory lock), the shadow catches up to the head, and the tables
//! are swapped in one transaction; the live projector resumes from the shadow's checkpoint.

use std::sync::Arc;

use deadpool_postgres::Pool;

use crate::runtime::{Projection, ProjectionError, Projector};

/// The tables each projection owns (besides the shared checkpoint and version tables).
pub fn tables_of(projection: &str) -> &'static [&'static str] {
    match projection {
        "listings" => &["listings_view"],
        "orders" => &["orders_view", "escrows_view"],
        "wallets" => &["wallets_view", "wallet_ledger", "withdrawals_view"],
        "users" => &["users_view"],
        "payments" => &["payments_view"],
        "timers" => &["timers"],
        _ => &[],
    }
}

/// Most batches a rebuild applies before it pauses the live projector to finish (bounded).
pub const BATCHES_MAX: usize = 1_000_000;

/// Rebuilds `projection` from the start of the event store. Returns the events applied.
pub async fn rebuild(pool: &Pool, projection: Arc<dyn Projection>) -> Result<u64, ProjectionError> {
    let name = projection.name();
    let tables = projection.tables();
    let schema = format!("rebuild_{name}");
    let mut client = pool.get().await?;
    client.execute("UPDATE projection_checkpoints SET state = 'rebuilding' WHERE projection = $1", &[&name]).await?;
    let mut ddl = format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};
         CREATE TABLE {schema}.projection_checkpoints (LIKE public.projection_checkpoints INCLUDING ALL);
         CREATE TABLE {schema}.projection_stream_versions (LIKE public.projection_stream_versions INCLUDING ALL);"
    );
    for t in tables {
        ddl.push_str(&format!("CREATE TABLE {schema}.{t} (LIKE public.{t} INCLUDING ALL);"));
    }
    client.batch_execute(&ddl).await?;
    client
        .execute(
            &format!("INSERT INTO {schema}.projection_checkpoints (projection, version, state) VALUES ($1, $2, 'rebuilding')"),
            &[&name, &projection.version()],
        )
        .await?;
    let result = build_and_swap(&mut client, pool, projection.clone(), &schema, tables).await;
    // The connection goes back to the pool: it must see the live tables again.
    client.statement_cache.clear();
    let reset =
        client.batch_execute("RESET search_path; RESET synchronous_commit; SELECT pg_advisory_unlock_all()").await;
    if result.is_err() {
        let _ =
            client.execute("UPDATE projection_checkpoints SET state = 'live' WHERE projection = $1", &[&name]).await;
    }
    reset?;
    result
}

/// Rebuilds `projection` when its read model was built by older code (its checkpoint's version
/// is below the code's): blue/green, the old model serving until the swap. One process claims
/// the rebuild; the others find it claimed and go on. Returns whether this call rebuilt.
pub async fn upgrade_if_stale(pool: &Pool, projection: Arc<dyn Projection>) -> Result<bool, ProjectionError> {
    let name = projection.name();
    let claimed = pool
        .get()
        .await?
        .execute(
            "UPDATE projection_checkpoints SET state = 'rebuilding'
             WHERE projection = $1 AND version < $2 AND state <> 'rebuilding'",
            &[&name, &projection.version()],
        )
        .await?;
    if claimed == 0 {
        return Ok(false);
    }
    tracing::info!(projection = name, version = projection.version(), "read model built by older code: rebuilding");
    let events = rebuild(pool, projection).await?;
    tracing::info!(projection = name, events, "read model rebuilt");
    Ok(true)
}

/// "DROP INDEX <schema>.<index>\n<create statement>" for one secondary index.
fn drop_then_create(def: String, schema: &str, index: &str) -> String {
    format!("DROP INDEX {schema}.{index}\n{def}")
}

async fn build_and_swap(
    client: &mut deadpool_postgres::Client,
    pool: &Pool,
    projection: Arc<dyn Projection>,
    schema: &str,
    tables: &[&str],
) -> Result<u64, ProjectionError> {
    let name = projection.name();
    client.statement_cache.clear();
    // Bulk-load the shadow: its secondary indexes are built once at the end, not row by row,
    // and its batches need not wait for the disk (a crash loses only shadow work, redone by
    // the next rebuild; the swap itself commits synchronously).
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname, indexdef FROM pg_indexes
             WHERE schemaname = $1 AND indexname NOT IN (
                 SELECT c.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conindid
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1)",
            &[&schema],
        )
        .await?
        .iter()
        .map(|r| {
            let (index, def): (String, String) = (r.get(0), r.get(1));
            drop_then_create(def, schema, &index)
        })
        .collect();
    for (drop, _) in indexes.iter().map(|s| s.split_once('\n').expect("drop and create")) {
        client.batch_execute(drop).await?;
    }
    client.batch_execute(&format!("SET search_path TO {schema}, public; SET synchronous_commit TO off")).await?;
    let types: Vec<&str> = projection.stream_types().to_vec();
    let shadow = Projector::new(pool.clone(), projection).ungated();
    let mut applied = 0u64;
    // Catch up while the live model keeps serving.
    for _ in 0..BATCHES_MAX {
        match shadow.step_with(client).await? {
            0 => break,
            n => applied += n as u64,
        }
    }
    for (_, create) in indexes.iter().map(|s| s.split_once('\n').expect("drop and create")) {
        client.batch_execute(create).await?;
    }
    // Fresh tables have no statistics: without them the first queries after the swap would
    // be planned for a few hundred rows.
    for t in tables {
        client.batch_execute(&format!("ANALYZE {schema}.{t}")).await?;
    }
    client.batch_execute("SET synchronous_commit TO on").await?;
    // Pause the live projector, reach the head, swap.
    client.execute("SELECT pg_advisory_lock(hashtext($1))", &[&name]).await?;
    loop {
        match shadow.step_with(client).await? {
            0 => break,
            n => applied += n as u64,
        }
    }
    // The versions the shadow applied, for the live projector's gate after the swap: the last
    // version of every stream of its types up to its checkpoint.
    client
        .execute(
            &format!(
                "INSERT INTO {schema}.projection_stream_versions (projection, stream_id, version)
                 SELECT $1, e.stream_id, max(e.version) FROM public.events e, {schema}.projection_checkpoints c
                 WHERE c.projection = $1 AND e.stream_type = ANY($2)
                   AND (e.tx_id, e.global_position) <= (c.tx_id, c.position)
                 GROUP BY e.stream_id"
            ),
            &[&name, &types],
        )
        .await?;
    client.statement_cache.clear();
    let mut swap = String::from("BEGIN; SET LOCAL search_path TO public;");
    for t in tables {
        swap.push_str(&format!("DROP TABLE public.{t}; ALTER TABLE {schema}.{t} SET SCHEMA public;"));
    }
    swap.push_str(&format!(
        "DELETE FROM public.projection_stream_versions WHERE projection = '{name}';
         INSERT INTO public.projection_stream_versions SELECT * FROM {schema}.projection_stream_versions;
         UPDATE public.projection_checkpoints p SET tx_id = s.tx_id, position = s.position, events = s.events,
             version = s.version, state = 'live', last_error = NULL, updated_at = now()
         FROM {schema}.projection_checkpoints s WHERE p.projection = '{name}' AND s.projection = '{name}';
         DROP SCHEMA {schema} CASCADE;
         COMMIT;"
    ));
    client.batch_execute(&swap).await?;
    Ok(applied)
}
