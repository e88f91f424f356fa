//! Admin: projection status, blue/green rebuilds and the scheduler's timers. Admins only.

use actix_web::{web, HttpResponse};
use bozor_domain::Role;
use serde_json::json;

use super::{unavailable, AppState};
use crate::actor::Actor;
use crate::errors::ApiError;

/// Registers the admin routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/projections", web::get().to(list))
        .route("/admin/projections/{name}/rebuild", web::post().to(rebuild))
        .route("/admin/timers", web::get().to(timers))
        .route("/admin/overview", web::get().to(overview));
}

/// `GET /v1/admin/overview`: what the scheduler settled (listings approved and escrows
/// released automatically) and how its timers stand.
#[utoipa::path(
    get,
    path = "/v1/admin/overview",
    tag = "admin",
    operation_id = "admin_overview",
    responses((status = 200, description = "Success", body = crate::openapi::Overview), crate::openapi::Refusals),
)]
pub(crate) async fn overview(state: web::Data<AppState>, actor: Actor) -> Result<HttpResponse, ApiError> {
    admin(&actor)?;
    let client = state.commands.store().pool().get().await.map_err(unavailable)?;
    let settled = bozor_projections::listings::settled(&client).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(json!({ "settled": settled })))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TimersQuery {
    /// `failing` (default: pending after a failed attempt), `pending`, `fired`, `cancelled`, `moot`.
    state: Option<String>,
    limit: Option<i64>,
}

/// `GET /v1/admin/timers?state=failing`: the scheduler's timers by state, each with its
/// attempts and last error.
#[utoipa::path(
    get,
    path = "/v1/admin/timers",
    tag = "admin",
    operation_id = "admin_timers",
    params(TimersQuery),
    responses((status = 200, description = "Success", body = crate::openapi::Items<bozor_projections::timers::Timer>), crate::openapi::Refusals),
)]
pub(crate) async fn timers(
    state: web::Data<AppState>,
    actor: Actor,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    admin(&actor)?;
    let q: TimersQuery = super::queries::query(&req)?;
    let which = q.state.as_deref().unwrap_or("failing");
    if !["failing", "pending", "fired", "cancelled", "moot"].contains(&which) {
        return Err(ApiError::new("invalid_query", "state is failing, pending, fired, cancelled or moot"));
    }
    let limit = q.limit.unwrap_or(50);
    if !(1..=bozor_projections::timers::PAGE_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::new("invalid_query", "limit is 1 to 100"));
    }
    let client = state.commands.store().pool().get().await.map_err(unavailable)?;
    let items = bozor_projections::timers::list(&client, which, limit).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

fn admin(actor: &Actor) -> Result<(), ApiError> {
    crate::authz::any_of(actor, &[Role::Admin], "admins only")
}

/// Every projection's state, position, lag and last error (admins).
#[utoipa::path(
    get,
    path = "/v1/admin/projections",
    tag = "admin",
    operation_id = "admin_list",
    responses((status = 200, description = "Success", body = crate::openapi::Items<bozor_projections::Status>), crate::openapi::Refusals),
)]
pub(crate) async fn list(state: web::Data<AppState>, actor: Actor) -> Result<HttpResponse, ApiError> {
    admin(&actor)?;
    let client = state.commands.store().pool().get().await.map_err(unavailable)?;
    let statuses = bozor_projections::status(&client).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(json!({ "items": statuses })))
}

/// Starts a rebuild in the background; its progress shows in the status list.
#[utoipa::path(
    post,
    path = "/v1/admin/projections/{name}/rebuild",
    tag = "admin",
    operation_id = "admin_rebuild",
    params(("name" = String, Path)),
    responses((status = 202, description = "The rebuild began", body = crate::openapi::RebuildStarted), crate::openapi::Refusals),
)]
pub(crate) async fn rebuild(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin(&actor)?;
    let projection = crate::read_models::by_name(&path)
        .ok_or_else(|| ApiError::new("projection_not_found", format!("no projection {:?}", path.as_str())))?;
    let pool = state.workers.clone();
    let client = pool.get().await.map_err(unavailable)?;
    let claimed = client
        .execute(
            "UPDATE projection_checkpoints SET state = 'rebuilding' WHERE projection = $1 AND state <> 'rebuilding'",
            &[&projection.name()],
        )
        .await
        .map_err(unavailable)?;
    if claimed == 0 {
        return Err(ApiError::new("rebuild_in_progress", "this projection is being rebuilt already"));
    }
    let name = projection.name();
    let meili = state.meili.clone().filter(|_| name == bozor_search_sync::projection::NAME);
    tokio::spawn(async move {
        match bozor_projections::rebuild::rebuild(&pool, projection).await {
            Ok(events) => tracing::info!(projection = name, events, "rebuild finished"),
            Err(e) => return tracing::error!(projection = name, error = %e, "rebuild failed"),
        }
        // Search on Meilisearch: a fresh index from the rebuilt documents, swapped in.
        if let Some(meili) = meili {
            match bozor_search_sync::meili::MeiliSync::new(pool, meili).reindex().await {
                Ok(documents) => tracing::info!(documents, "search index rebuilt and swapped in"),
                Err(e) => tracing::error!(error = %e, "search index rebuild failed"),
            }
        }
    });
    Ok(HttpResponse::Accepted().json(json!({ "projection": name, "state": "rebuilding" })))
}
