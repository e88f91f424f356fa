//! Liveness, readiness and the process's counters.

use actix_web::{web, HttpResponse};

use super::AppState;
use crate::errors::ApiError;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Each dependency gets a short, bounded look; the answer names the ones that failed.
    const LOOK: std::time::Duration = std::time::Duration::from_secs(2);
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    let mut note = |name: &str, result: Result<String, String>| {
        ready &= result.is_ok();
        let value = match result {
            Ok(ok) => serde_json::json!({ "ok": true, "detail": ok }),
            Err(e) => serde_json::json!({ "ok": false, "detail": e }),
        };
        checks.insert(name.to_owned(), value);
    };
    let database = tokio::time::timeout(LOOK, async {
        let client = state.commands.store().pool().get().await.map_err(|e| e.to_string())?;
        client.simple_query("SELECT 1").await.map_err(|e| e.to_string())?;
        let failed: Vec<String> = client
            .query("SELECT projection FROM projection_checkpoints WHERE state = 'failed' ORDER BY 1", &[])
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok::<_, String>(failed)
    })
    .await
    .unwrap_or_else(|_| Err("no answer within 2 s".into()));
    match database {
        Ok(failed) => {
            note("database", Ok("answers".into()));
            let projections = if failed.is_empty() {
                Ok("none failed".into())
            } else {
                Err(format!("failed: {}", failed.join(", ")))
            };
            note("projections", projections);
        }
        Err(e) => note("database", Err(e)),
    }
    if let Some(meili) = &state.meili {
        let health = tokio::time::timeout(LOOK, meili.health()).await;
        note(
            "search",
            health
                .map_err(|_| "no answer within 2 s".to_owned())
                .and_then(|r| r.map(|()| "answers".into()).map_err(|e| e.to_string())),
        );
    }
    if let Some(kafka) = &state.kafka {
        note("broker", kafka.reachable(LOOK).await.map(|()| "answers".into()));
    }
    let body = serde_json::json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": checks });
    Ok(if ready { HttpResponse::Ok().json(body) } else { HttpResponse::ServiceUnavailable().json(body) })
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
