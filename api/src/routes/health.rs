//! Liveness, readiness and the process's counters.

use actix_web::{web, HttpResponse};

use super::AppState;
use crate::errors::ApiError;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "health_healthz",
    responses((status = 200, description = "The process is up", body = crate::openapi::Health)), security(()))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "health_readyz",
    responses((status = 200, description = "Ready", body = crate::openapi::Readiness),
              (status = 503, description = "A dependency is not ready", body = crate::openapi::Readiness)),
    security(()))]
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

/// Longest a scrape's database gauges are reused: scrapes from several collectors (or a
/// client hammering `/metrics`) cost the database one read per second at most.
const GAUGES_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// Prometheus text: the registry's counters and histograms (HTTP requests, commands, appends,
/// cache lookups, panics), then gauges read now: projection state, position and lag, relay lag,
/// and the database pools' use.
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "health_metrics",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain")), security(()))]
pub async fn metrics(state: web::Data<AppState>, req: actix_web::HttpRequest) -> HttpResponse {
    if !may_scrape(&req, state.metrics_token.as_deref()) {
        return scrape_refused();
    }
    let mut body = bozor_commands::metrics::METRICS.render();
    body.push_str(&format!(
        "# HELP bozor_http_panics_total Requests whose handler panicked, answered 500.\n\
         # TYPE bozor_http_panics_total counter\n\
         bozor_http_panics_total {}\n",
        crate::guard::panics()
    ));
    pool_gauges(&mut body, &[("requests", state.commands.store().pool()), ("workers", &state.workers)]);
    let mut cached = state.metrics_gauges.lock().await;
    let fresh = cached.as_ref().filter(|(at, _)| at.elapsed() < GAUGES_FRESH).map(|(_, text)| text.clone());
    let gauges = match fresh {
        Some(text) => text,
        None => {
            let text = read_side_gauges(&state).await;
            *cached = Some((std::time::Instant::now(), text.clone()));
            text
        }
    };
    drop(cached);
    body.push_str(&gauges);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

/// True when no `BOZOR_METRICS_TOKEN` is set, or the request bears it (compared in constant time).
pub(crate) fn may_scrape(req: &actix_web::HttpRequest, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    crate::routes::payments::same_secret(token.as_bytes(), given.as_bytes())
}

/// 401 `unauthenticated` for a scrape without the metrics token.
pub(crate) fn scrape_refused() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::new(
        "unauthenticated",
        "send Authorization: Bearer <BOZOR_METRICS_TOKEN>",
    ))
}

pub(crate) fn pool_gauges(out: &mut String, pools: &[(&str, &deadpool_postgres::Pool)]) {
    out.push_str(
        "# HELP bozor_db_pool_connections Database pool connections, by pool and state (in_use, idle, max).\n\
         # TYPE bozor_db_pool_connections gauge\n",
    );
    for (name, pool) in pools {
        let s = pool.status();
        let in_use = s.size.saturating_sub(s.available);
        for (state, n) in [("in_use", in_use), ("idle", s.available), ("max", s.max_size)] {
            out.push_str(&format!("bozor_db_pool_connections{{pool=\"{name}\",state=\"{state}\"}} {n}\n"));
        }
    }
    out.push_str(
        "# HELP bozor_db_pool_waiting Requests waiting for a pooled connection, by pool.\n\
         # TYPE bozor_db_pool_waiting gauge\n",
    );
    for (name, pool) in pools {
        out.push_str(&format!("bozor_db_pool_waiting{{pool=\"{name}\"}} {}\n", pool.status().waiting));
    }
}

/// Projection and relay gauges from the database; `bozor_metrics_database_up 0` when it cannot
/// be read (the rest of the scrape still answers).
async fn read_side_gauges(state: &AppState) -> String {
    use bozor_commands::metrics::escape;
    let read = async {
        let client = state.workers.get().await.map_err(|e| e.to_string())?;
        let projections = bozor_projections::status(&client).await.map_err(|e| e.to_string())?;
        let relays =
            bozor_commands::relay::lag(&client, bozor_projections::LAG_COUNT_MAX).await.map_err(|e| e.to_string())?;
        Ok::<_, String>((projections, relays))
    };
    let mut out = String::from("# HELP bozor_metrics_database_up 1 when this scrape could read the database.\n# TYPE bozor_metrics_database_up gauge\n");
    let (projections, relays) = match tokio::time::timeout(std::time::Duration::from_secs(2), read).await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: the read side's gauges were not read");
            out.push_str("bozor_metrics_database_up 0\n");
            return out;
        }
        Err(_) => {
            out.push_str("bozor_metrics_database_up 0\n");
            return out;
        }
    };
    out.push_str("bozor_metrics_database_up 1\n");
    let families: [(&str, &str, &str); 5] = [
        ("bozor_projection_lag_events", "gauge", "Events written that a projection has not applied (counted up to 100000; from Kafka, as its consumer last saw)."),
        ("bozor_projection_lag_seconds", "gauge", "Age of the oldest event a projection has not applied."),
        ("bozor_projection_position", "gauge", "The global position a projection applied last."),
        ("bozor_projection_events_total", "counter", "Events a projection applied."),
        ("bozor_projection_state", "gauge", "1 for a projection's current state (live, rebuilding, failed)."),
    ];
    for (i, (name, kind, help)) in families.iter().enumerate() {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for p in &projections {
            let labels = format!("projection=\"{}\",feed=\"{}\"", escape(&p.name), escape(&p.feed));
            let line = match i {
                0 => format!("{name}{{{labels}}} {}\n", p.lag_events),
                1 => format!("{name}{{{labels}}} {}\n", p.lag_seconds),
                2 => format!("{name}{{{labels}}} {}\n", p.position),
                3 => format!("{name}{{{labels}}} {}\n", p.events),
                _ => format!("{name}{{{labels},state=\"{}\"}} 1\n", escape(&p.state)),
            };
            out.push_str(&line);
        }
    }
    out.push_str(
        "# HELP bozor_relay_lag_events Events the relay has not yet produced to Kafka (counted up to 100000).\n\
         # TYPE bozor_relay_lag_events gauge\n",
    );
    for r in &relays {
        out.push_str(&format!("bozor_relay_lag_events{{relay=\"{}\"}} {}\n", escape(&r.relay), r.lag_events));
    }
    out.push_str(
        "# HELP bozor_relay_lag_seconds Age of the oldest event the relay has not produced.\n\
         # TYPE bozor_relay_lag_seconds gauge\n",
    );
    for r in &relays {
        out.push_str(&format!("bozor_relay_lag_seconds{{relay=\"{}\"}} {}\n", escape(&r.relay), r.lag_seconds));
    }
    out.push_str(
        "# HELP bozor_relay_events_total Events the relay produced.\n# TYPE bozor_relay_events_total counter\n",
    );
    for r in &relays {
        out.push_str(&format!("bozor_relay_events_total{{relay=\"{}\"}} {}\n", escape(&r.relay), r.events));
    }
    out
}
