//! Exports for finance staff, streamed row by row (memory stays flat whatever the range):
//! - `GET /v1/audit/journal?from=&to=&format=csv|ndjson` (auditors, admins): every journal
//!   line in `[from, to)`: time, journal, account, debit, credit, cause, order, provider
//!   transaction. An account is a wallet's balance bucket (`user:<id>:available`,
//!   `user:<id>:held`, `platform:revenue#3:available`), so a hold is a line out of one and a
//!   line into the other, and each journal's debits equal its credits.
//! - `GET /v1/wallets/{user_id}/statement?from=&to=&format=csv` (the owner, support, admins,
//!   auditors): the wallet's lines with the balances after each.
//!
//! Both read the wallets read model (`wallet_ledger`); the ledger audit replays the log itself.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{unavailable, AppState};
use crate::actor::Actor;
use crate::authz::{self, AUDIT_READERS, MONEY_READERS};
use crate::errors::ApiError;
use crate::request::path_id;

/// Longest an export may take to send: a reader that does not keep up loses the rest.
pub const EXPORT_SECONDS_MAX: std::time::Duration = std::time::Duration::from_secs(600);
/// Exports running at once in this process: each holds a pooled connection while it streams,
/// so a few stalled downloads can never take the pool from commands.
pub const EXPORTS_AT_ONCE: usize = 2;

fn turn(state: &AppState) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state
        .exports
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::new("unavailable", "other exports are running; retry shortly").retry_after(5))
}

/// Registers the export routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit/journal", web::get().to(journal)).route("/wallets/{user_id}/statement", web::get().to(statement));
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct RangeQuery {
    /// RFC 3339, inclusive (default: the beginning).
    from: Option<String>,
    /// RFC 3339, exclusive (default: now and on).
    to: Option<String>,
    /// `csv` (default) or `ndjson`.
    format: Option<String>,
}

struct Range {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    ndjson: bool,
}

fn range(q: &RangeQuery, ndjson_allowed: bool) -> Result<Range, ApiError> {
    let time = |field: &str, v: &Option<String>, default: DateTime<Utc>| -> Result<DateTime<Utc>, ApiError> {
        match v {
            None => Ok(default),
            Some(s) => DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                ApiError::new("invalid_query", format!("{field} is an RFC 3339 time, e.g. 2026-11-01T00:00:00Z"))
            }),
        }
    };
    let ndjson = match q.format.as_deref() {
        None | Some("csv") => false,
        Some("ndjson") if ndjson_allowed => true,
        Some(_) => {
            let formats = if ndjson_allowed { "csv or ndjson" } else { "csv" };
            return Err(ApiError::new("invalid_query", format!("format is {formats}")));
        }
    };
    let (from, to) = (time("from", &q.from, DateTime::UNIX_EPOCH)?, time("to", &q.to, DateTime::<Utc>::MAX_UTC)?);
    if from > to {
        return Err(ApiError::new("invalid_query", "from is after to"));
    }
    Ok(Range { from, to, ndjson })
}

/// One CSV field: quoted when it holds a separator, a quote or a line break, and kept from
/// being read as a formula by a spreadsheet (a leading `=`, `+`, `-` or `@` gets a `'`).
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Why money moved, the order and the provider's transaction, from a ledger line's event.
fn cause(event_type: &str, detail: &Value) -> (String, String, String) {
    let reason = detail.get("reason");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    let cause = match event_type {
        "FundsDeposited" => format!("deposit:{}", text(detail.get("provider"))),
        "DepositHeld" => format!("provider_payment:{}", text(detail.get("provider"))),
        "HoldReleased" => "hold_released".to_owned(),
        "HoldCaptured" => "hold_captured".to_owned(),
        _ => text(reason.and_then(|r| r.get("reason"))),
    };
    let order = text(reason.and_then(|r| r.get("order_id")));
    let provider = match detail.get("provider_tx_id") {
        Some(v) => text(Some(v)),
        None => text(reason.and_then(|r| r.get("payment_id"))),
    };
    (cause, order, provider)
}

/// The export's body. A failure or the time limit ends it with an error, so the client sees a
/// broken transfer, never a short file that looks whole.
fn stream_body<S>(
    rows: S,
    client: deadpool_postgres::Client,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::Error>>
where
    S: futures_util::Stream<Item = Result<(String, ()), tokio_postgres::Error>> + Unpin,
{
    let deadline = tokio::time::Instant::now() + EXPORT_SECONDS_MAX;
    let broken = |why: &str| actix_web::error::ErrorInternalServerError(why.to_owned());
    futures_util::stream::unfold(Some((client, rows, permit)), move |state| async move {
        let (client, mut rows, permit) = state?;
        match tokio::time::timeout_at(deadline, rows.next()).await {
            Ok(Some(Ok((text, ())))) => Some((Ok(web::Bytes::from(text)), Some((client, rows, permit)))),
            Ok(None) => None,
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "export broken off");
                Some((Err(broken("the export was broken off")), None))
            }
            Err(_) => {
                tracing::warn!("export cut at its time limit");
                Some((Err(broken("the export reached its time limit")), None))
            }
        }
    })
}

/// Export every journal line in a time range as CSV or NDJSON (auditors, admins).
#[utoipa::path(
    get,
    path = "/v1/audit/journal",
    tag = "audit",
    operation_id = "exports_journal",
    params(RangeQuery),
    responses((status = 200, description = "CSV or NDJSON, streamed: every journal line in the range"), crate::openapi::Refusals),
)]
pub(crate) async fn journal(
    state: web::Data<AppState>,
    req: HttpRequest,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    authz::any_of(&actor, AUDIT_READERS, "only auditors and admins export the journal")?;
    let q: RangeQuery = super::queries::query(&req)?;
    let r = range(&q, true)?;
    let permit = turn(&state)?;
    let client = state.commands.store().pool().get().await.map_err(unavailable)?;
    let rows = client
        .query_raw(
            "SELECT l.at, l.journal_id, l.wallet_id, w.user_id, w.account, w.state->'owner'->>'shard',
                    l.event_type, l.available, l.held, l.detail
             FROM wallet_ledger l LEFT JOIN wallets_view w ON w.wallet_id = l.wallet_id
             WHERE l.at >= $1 AND l.at < $2 ORDER BY l.at, l.position, l.wallet_id",
            [&r.from as &(dyn tokio_postgres::types::ToSql + Sync), &r.to],
        )
        .await
        .map_err(unavailable)?;
    let ndjson = r.ndjson;
    let header =
        (!ndjson).then(|| Ok(("time,journal_id,account,debit,credit,cause,order_id,provider_tx_id\n".to_owned(), ())));
    let lines = rows.map(move |row| {
        let row = row?;
        let (at, journal, wallet): (DateTime<Utc>, Uuid, Uuid) = (row.get(0), row.get(1), row.get(2));
        let (user, account, shard): (Option<Uuid>, Option<String>, Option<String>) =
            (row.get(3), row.get(4), row.get(5));
        let (event_type, available, held, detail): (String, i64, i64, Value) =
            (row.get(6), row.get(7), row.get(8), row.get(9));
        let owner = match (user, account) {
            (Some(u), _) => format!("user:{u}"),
            (None, Some(a)) => format!("{a}#{}", shard.unwrap_or_else(|| "0".into())),
            (None, None) => format!("wallet:{wallet}"),
        };
        let (cause, order, provider) = cause(&event_type, &detail);
        let mut out = String::new();
        for (bucket, delta) in [("available", available), ("held", held)] {
            if delta == 0 {
                continue;
            }
            let (debit, credit) = if delta < 0 { (-delta, 0) } else { (0, delta) };
            let account = format!("{owner}:{bucket}");
            if ndjson {
                let line = json!({ "time": at, "journal_id": journal, "account": account, "debit": debit,
                                   "credit": credit, "cause": cause, "order_id": order, "provider_tx_id": provider });
                out.push_str(&line.to_string());
                out.push('\n');
            } else {
                let time = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                out.push_str(&format!(
                    "{time},{journal},{},{debit},{credit},{},{},{}\n",
                    field(&account),
                    field(&cause),
                    field(&order),
                    field(&provider)
                ));
            }
        }
        Ok((out, ()))
    });
    let body = futures_util::stream::iter(header).chain(lines);
    let content_type = if ndjson { "application/x-ndjson" } else { "text/csv; charset=utf-8" };
    Ok(HttpResponse::Ok().content_type(content_type).streaming(stream_body(Box::pin(body), client, permit)))
}

/// Export a wallet's statement in a time range as CSV or NDJSON (its owner, or finance staff).
#[utoipa::path(
    get,
    path = "/v1/wallets/{user_id}/statement",
    tag = "audit",
    operation_id = "exports_statement",
    params(("user_id" = uuid::Uuid, Path), RangeQuery),
    responses((status = 200, description = "CSV or NDJSON, streamed: the wallet's lines in the range"), crate::openapi::Refusals),
)]
pub(crate) async fn statement(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    let user = path_id(&path)?;
    authz::owner_or(&actor, user, MONEY_READERS, "only the owner, support, admins and auditors see a wallet")?;
    let q: RangeQuery = super::queries::query(&req)?;
    let r = range(&q, false)?;
    let permit = turn(&state)?;
    let wallet = bozor_domain::wallet::user_wallet_id(user);
    let client = state.commands.store().pool().get().await.map_err(unavailable)?;
    let rows = client
        .query_raw(
            "SELECT at, journal_id, event_type, available, held, available_after, held_after, detail FROM (
                 SELECT at, version, journal_id, event_type, available, held, detail,
                        (sum(available) OVER (ORDER BY version))::bigint AS available_after,
                        (sum(held) OVER (ORDER BY version))::bigint AS held_after
                 FROM wallet_ledger WHERE wallet_id = $1) s
             WHERE at >= $2 AND at < $3 ORDER BY version",
            [&wallet as &(dyn tokio_postgres::types::ToSql + Sync), &r.from, &r.to],
        )
        .await
        .map_err(unavailable)?;
    let header = std::iter::once(Ok((
        "time,journal_id,event,available_change,held_change,available_after,held_after,cause,order_id,provider_tx_id\n"
            .to_owned(),
        (),
    )));
    let lines = rows.map(|row| {
        let row = row?;
        let (at, journal, event_type): (DateTime<Utc>, Uuid, String) = (row.get(0), row.get(1), row.get(2));
        let (available, held): (i64, i64) = (row.get(3), row.get(4));
        let (available_after, held_after): (i64, i64) = (row.get(5), row.get(6));
        let (cause, order, provider) = cause(&event_type, &row.get::<_, Value>(7));
        let time = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        Ok((
            format!(
                "{time},{journal},{event_type},{available},{held},{},{},{},{},{}\n",
                available_after,
                held_after,
                field(&cause),
                field(&order),
                field(&provider)
            ),
            (),
        ))
    });
    let body = futures_util::stream::iter(header).chain(lines);
    Ok(HttpResponse::Ok().content_type("text/csv; charset=utf-8").streaming(stream_body(
        Box::pin(body),
        client,
        permit,
    )))
}
