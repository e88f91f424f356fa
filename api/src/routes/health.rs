//! Liveness and readiness.

use actix_web::{web, HttpResponse};

use super::{unavailable, AppState};
use crate::errors::ApiError;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client = state.commands.store().pool().get().await.map_err(unavailable)?;
    client.simple_query("SELECT 1").await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}
