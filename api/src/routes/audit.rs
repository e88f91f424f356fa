//! The raw event log for auditors: `GET /v1/audit/events?after=<position>&limit=<n>` as NDJSON,
//! one event per line, in the gap-safe tail order (transaction, then position). `after` is the
//! `global_position` of the last line read; reading on from it never skips an event whose
//! transaction committed late. Auditors and admins only.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_commands::store::{tail_rows, StoredEvent, TailPosition};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use super::{unavailable, AppState};
use crate::actor::Actor;
use crate::authz;
use crate::errors::ApiError;

/// Most events one page returns.
pub const PAGE_LIMIT_MAX: i64 = 1_000;
/// Longest one page may take to send.
pub const PAGE_SECONDS_MAX: std::time::Duration = std::time::Duration::from_secs(30);

/// Registers the audit routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit/events", web::get().to(events)).route("/audit/ledger", web::get().to(ledger));
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LedgerQuery {
    /// A global position, or an RFC 3339 time.
    as_of: Option<String>,
    /// `true`: every wallet's replayed balances too.
    balances: Option<bool>,
}

/// `GET /v1/audit/ledger?as_of=`: the ledger replayed from the event store and checked (see
/// `bozor_commands::audit`), as JSON. Auditors and admins; one at a time (409 otherwise).
#[utoipa::path(
    get,
    path = "/v1/audit/ledger",
    tag = "audit",
    operation_id = "audit_ledger",
    params(LedgerQuery),
    responses((status = 200, description = "Success", body = bozor_commands::audit::LedgerReport), crate::openapi::Refusals),
)]
pub(crate) async fn ledger(
    state: web::Data<AppState>,
    req: HttpRequest,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    authz::any_of(&actor, authz::AUDIT_READERS, "only auditors and admins audit the ledger")?;
    let q: LedgerQuery = super::queries::query(&req)?;
    let as_of = match q.as_of.as_deref() {
        None => None,
        Some(s) => Some(
            bozor_commands::audit::AsOf::parse(s)
                .ok_or_else(|| ApiError::new("invalid_query", "as_of is a global position or an RFC 3339 time"))?,
        ),
    };
    let _turn = state.audits.try_acquire().map_err(|_| {
        ApiError::new("audit_in_progress", "a ledger audit is running; retry when it ends").retry_after(5)
    })?;
    // Connections of its own: a long replay must not take the projectors' or the requests' pool.
    let connect = || async {
        let (client, conn) =
            tokio_postgres::connect(&state.database_url, tokio_postgres::NoTls).await.map_err(unavailable)?;
        tokio::spawn(conn);
        Ok::<_, ApiError>(client)
    };
    let (mut first, mut second) = (connect().await?, connect().await?);
    let options = bozor_commands::audit::Options { as_of, balances: q.balances.unwrap_or(false) };
    let report = bozor_commands::audit::ledger(&mut first, &mut second, options).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(report))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Events after this global position (default 0: from the start).
    after: Option<i64>,
    /// Events, 1 to 1000 (default 1000).
    limit: Option<i64>,
}

/// The raw event log after a global position, as NDJSON (auditors, admins).
#[utoipa::path(
    get,
    path = "/v1/audit/events",
    tag = "audit",
    operation_id = "audit_events",
    params(EventsQuery),
    responses((status = 200, description = "NDJSON: one stored event per line, in global order"), crate::openapi::Refusals),
)]
pub(crate) async fn events(
    state: web::Data<AppState>,
    req: HttpRequest,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    authz::any_of(&actor, authz::AUDIT_READERS, "only auditors and admins read the event log")?;
    let q: EventsQuery = super::queries::query(&req)?;
    let limit = q.limit.unwrap_or(PAGE_LIMIT_MAX);
    if !(1..=PAGE_LIMIT_MAX).contains(&limit) || q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::new("invalid_query", "limit is 1 to 1000 and after a position, 0 or more"));
    }
    let client = state.commands.store().pool().get().await.map_err(unavailable)?;
    let after = match q.after.unwrap_or(0) {
        0 => TailPosition::default(),
        position => {
            let row = client
                .query_opt("SELECT tx_id::text FROM events WHERE global_position = $1", &[&position])
                .await
                .map_err(unavailable)?
                .ok_or_else(|| ApiError::new("invalid_query", "after is not the position of an event"))?;
            let tx: String = row.get(0);
            TailPosition { tx_id: tx.parse().map_err(unavailable)?, global_position: position }
        }
    };
    // Streamed line by line: a page is never built in memory. The connection stays with the
    // stream until its last row; a failure mid-page ends the page early, and the auditor
    // resumes after the last line read.
    // A reader that does not keep up loses the rest of the page at `PAGE_SECONDS_MAX`, so no
    // one holds a pooled connection (and its snapshot) for longer.
    let rows = tail_rows(&client, after, limit).await.map_err(unavailable)?;
    let deadline = tokio::time::Instant::now() + PAGE_SECONDS_MAX;
    let lines = futures_util::stream::unfold((client, Box::pin(rows)), move |(client, mut rows)| async move {
        match tokio::time::timeout_at(deadline, rows.next()).await {
            Ok(Some(Ok(row))) => Some((Ok::<_, actix_web::Error>(line(&StoredEvent::from_row(&row))), (client, rows))),
            Ok(None) => None,
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "audit page ended early");
                None
            }
            Err(_) => {
                tracing::warn!("audit page cut at its time limit");
                None
            }
        }
    });
    Ok(HttpResponse::Ok().content_type("application/x-ndjson").streaming(lines))
}

fn line(e: &StoredEvent) -> web::Bytes {
    let mut line = json!({
        "global_position": e.global_position, "stream_type": e.stream_type, "stream_id": e.stream_id,
        "version": e.version, "event_id": e.event_id, "event_type": e.event_type,
        "event_version": e.event_version, "payload": e.payload, "metadata": e.metadata,
        "recorded_at": e.recorded_at, "hash": hex::encode(&e.hash),
    })
    .to_string();
    line.push('\n');
    web::Bytes::from(line)
}
