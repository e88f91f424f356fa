//! Liveness, readiness and the process's counters.

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

/// Prometheus text: requests that panicked (each answered 500 and logged with its request id).
pub async fn metrics() -> HttpResponse {
    let body = format!(
        "# HELP bozor_http_panics_total Requests whose handler panicked, answered 500.\n\
         # TYPE bozor_http_panics_total counter\n\
         bozor_http_panics_total {}\n",
        crate::guard::panics()
    );
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}
