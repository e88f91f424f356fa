//! What the API records for `GET /metrics`: every request's latency by route pattern, method and
//! status; every command by name and outcome; cache hits and misses. The registry itself is
//! `bozor_commands::metrics::METRICS`; the gauges read at scrape time are in `routes::health`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use bozor_commands::metrics::METRICS;

/// Put in a request's extensions by `request::command_input`: the request is this command.
#[derive(Clone, Copy)]
pub struct CommandName(pub &'static str);

/// Put in a response's extensions: the command's outcome when its status does not say it (a
/// provider's callback answers 200 with its error in the body), else the error code.
#[derive(Clone, Copy)]
pub struct Outcome(pub &'static str);

/// Middleware (`actix_web::middleware::from_fn`): times every request and counts commands.
///
/// # Errors
/// The inner service's, unchanged.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    // A client may send any token as a method: only the standard ones get series of their own.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    }
    .to_owned();
    // (The request must not be cloned here: routing needs it unshared.)
    let res = match next.call(req).await {
        Ok(res) => res,
        Err(e) => {
            // Refused before routing (a rate limit): counted too, under route "unrouted".
            let status = e.as_response_error().status_code();
            observe(Some("unrouted".to_owned()), method, status, started.elapsed());
            return Err(e);
        }
    };
    let status = res.status();
    observe(res.request().match_pattern(), method, status, started.elapsed());
    let command = res.request().extensions().get::<CommandName>().copied();
    if let Some(CommandName(command)) = command {
        let outcome = res.response().extensions().get::<Outcome>().map(|o| o.0);
        let outcome = match outcome {
            Some(o) => o,
            None if status.is_success() => "ok",
            None => "error",
        };
        count_command(command, outcome);
    }
    Ok(res.map_into_boxed_body())
}

/// One request's latency. The route is the pattern, never the path: ids in paths would make a
/// series per resource.
fn observe(route: Option<String>, method: String, status: actix_web::http::StatusCode, took: std::time::Duration) {
    METRICS.observe(
        "bozor_http_request_seconds",
        "HTTP requests, by route pattern, method and status: time to the response head.",
        vec![
            ("route", route.unwrap_or_else(|| "unmatched".to_owned())),
            ("method", method),
            ("status", status.as_u16().to_string()),
        ],
        took,
    );
}

/// Counts a command's outcome: `ok`, or its error code.
pub fn count_command(command: &'static str, outcome: &str) {
    METRICS.add(
        "bozor_commands_total",
        "Commands by name and outcome (ok, or the error code answered).",
        vec![("command", command.to_owned()), ("outcome", outcome.to_owned())],
        1,
    );
}

/// A cache lookup: `hit` true or false.
pub fn cache(cache: &'static str, hit: bool) {
    METRICS.add(
        "bozor_cache_lookups_total",
        "Lookups in the in-process caches, by cache and result (hit or miss).",
        vec![("cache", cache.to_owned()), ("result", if hit { "hit" } else { "miss" }.to_owned())],
        1,
    );
}
