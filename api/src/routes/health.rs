//! Liveness and readiness.

use actix_web::{web, HttpResponse};

use super::AppState;
use crate::errors::ApiError;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "not ready");
        ApiError::new("unavailable", "the database cannot be reached")
    };
    let client = state.commands.store().pool().get().await.map_err(|e| unavailable(&e))?;
    client.simple_query("SELECT 1").await.map_err(|e| unavailable(&e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" })))
}
