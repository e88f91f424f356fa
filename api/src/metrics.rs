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
    let method = req.method().as_str().to_owned();
    let res = next.call(req).await?;
    // The pattern, never the path: ids in paths would make a series per resource.
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status();
    METRICS.observe(
        "bozor_http_request_seconds",
        "HTTP requests, by route pattern, method and status: time to the response head.",
        vec![("route", route), ("method", method), ("status", status.as_u16().to_string())],
        started.elapsed(),
    );
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
