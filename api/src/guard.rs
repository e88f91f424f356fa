//! The last line against a bug: a handler that panics answers 500 `internal` with the usual
//! error body and a request id, the panic is logged and counted, and the worker goes on
//! serving. Nothing is half-written: an append is one transaction, rolled back when the
//! panicking future drops it.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::ResponseError;
use futures_util::FutureExt;
use uuid::Uuid;

use crate::errors::ApiError;

static PANICS: AtomicU64 = AtomicU64::new(0);

/// Requests that panicked since the process started (`bozor_http_panics_total`).
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

/// A request's id: its `X-Request-Id` when that is a UUID, else a new one; kept in the
/// request's extensions by `catch_panics`, recorded in events' metadata and logs, and sent
/// back as `X-Request-Id`.
#[derive(Clone, Copy, Debug)]
pub struct RequestId(pub Uuid);

tokio::task_local! {
    /// The id of the request the current task serves (set by `catch_panics`).
    static CURRENT: Uuid;
}

/// The id of the request being served by this task, when there is one: for commands whose
/// metadata is not built from an `HttpRequest` (provider callbacks).
pub fn current_request_id() -> Option<Uuid> {
    CURRENT.try_with(|id| *id).ok()
}

/// The request's id (see `RequestId`).
pub fn request_id(req: &actix_web::HttpRequest) -> Uuid {
    use actix_web::HttpMessage;
    if let Some(id) = req.extensions().get::<RequestId>() {
        return id.0;
    }
    req.headers()
        .get("X-Request-Id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
        // A client's own id only when it is a random one (version 4 or 7), as a client-chosen
        // resource id must be: never nil, never one of the ids bozor derives.
        .filter(|id| matches!(id.get_version(), Some(uuid::Version::Random | uuid::Version::SortRand)))
        .unwrap_or_else(Uuid::new_v4)
}

fn with_request_id<B>(mut res: actix_web::HttpResponse<B>, id: Uuid) -> actix_web::HttpResponse<B> {
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&id.to_string()) {
        res.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), v);
    }
    res
}

/// The answer to a request whose handler panicked: 500 `internal` with the request id.
#[derive(Debug)]
struct Panicked(Uuid);

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request {} panicked", self.0)
    }
}

impl ResponseError for Panicked {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let error = ApiError::new("internal", "internal error; report the request id")
            .with_details(serde_json::json!({ "request_id": self.0 }));
        with_request_id(error.error_response(), self.0)
    }
}

/// Middleware (`actix_web::middleware::from_fn`) turning a panic into a 500 answer. The
/// request itself is gone with the panicking future, so the answer goes out as an error,
/// which actix turns into the response.
///
/// # Errors
/// Passes on the inner service's errors unchanged; a panic becomes the `Panicked` error.
pub async fn catch_panics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id(req.request());
    actix_web::HttpMessage::extensions_mut(&req).insert(RequestId(id));
    let (method, path) = (req.method().clone(), req.path().to_owned());
    // Every log line written while serving the request carries its id.
    let span = tracing::info_span!("request", request_id = %id);
    let served = tracing::Instrument::instrument(CURRENT.scope(id, next.call(req)), span);
    match std::panic::AssertUnwindSafe(served).catch_unwind().await {
        Ok(res) => res.map(|mut r| {
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&id.to_string()) {
                r.headers_mut().insert(actix_web::http::header::HeaderName::from_static("x-request-id"), v);
            }
            r.map_into_boxed_body()
        }),
        Err(panic) => {
            PANICS.fetch_add(1, Ordering::Relaxed);
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(request_id = %id, %method, path, panic = what, "request panicked");
            Err(Panicked(id).into())
        }
    }
}
