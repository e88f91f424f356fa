//! `GET /v1/payments/transactions?provider=&from=&to=`: provider payments with their state and
//! the journal lines they produced, for auditors and admins comparing a provider's report with
//! bozor's books. Oldest first, by bozor's time of creation; cursor-paged.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_projections::listings::Cursor;
use bozor_projections::payments::{self, TransactionFilter};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::actor::Actor;
use crate::authz::{self, AUDIT_READERS};
use crate::errors::ApiError;
use crate::routes::queries::{client, cursor_of, limit_of, query, wait_for};
use crate::routes::{unavailable, AppState};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TransactionsQuery {
    /// `payme` or `click`.
    provider: Option<String>,
    /// RFC 3339, inclusive.
    from: Option<String>,
    /// RFC 3339, exclusive.
    to: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    limit: Option<i64>,
    /// Wait (up to 2 s) until the read model has applied this global position (a command's
    /// `position`), to read your own write; else 409 `projection_behind`.
    min_position: Option<i64>,
}

fn time(field: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| {
            ApiError::new("invalid_query", format!("{field} is an RFC 3339 time, e.g. 2026-11-29T00:00:00Z"))
        })
    })
    .transpose()
}

/// `GET /v1/payments/transactions`.
#[utoipa::path(
    get,
    path = "/v1/payments/transactions",
    tag = "payments",
    operation_id = "transactions_list",
    params(TransactionsQuery),
    responses((status = 200, description = "Success", body = crate::openapi::Page<bozor_projections::payments::ProviderTransaction>), crate::openapi::Refusals),
)]
pub async fn list(s: web::Data<AppState>, r: HttpRequest, a: Actor) -> Result<HttpResponse, ApiError> {
    authz::any_of(&a, AUDIT_READERS, "only auditors and admins reconcile provider transactions")?;
    let q: TransactionsQuery = query(&r)?;
    if q.provider.as_deref().is_some_and(|p| !["payme", "click"].contains(&p)) {
        return Err(ApiError::new("invalid_query", "provider is payme or click"));
    }
    let filter = TransactionFilter {
        provider: q.provider.clone(),
        from: time("from", q.from.as_deref())?,
        to: time("to", q.to.as_deref())?,
        after: cursor_of(q.cursor.as_deref())?.map(|c| (c.key, c.id)),
    };
    let limit = limit_of(q.limit)?;
    wait_for(&s, "payments", q.min_position).await?;
    wait_for(&s, "wallets", q.min_position).await?;
    let client = client(&s).await?;
    let (items, next) = payments::transactions(&client, &filter, limit).await.map_err(unavailable)?;
    let next_cursor = next.map(|(key, id)| Cursor { key, id }.encode());
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": next_cursor })))
}
