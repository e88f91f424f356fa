//! Reading a command request: a bounded JSON body, `Idempotency-Key`, `If-Match`, and the
//! command's metadata. Bad input becomes a 4xx `ApiError` before anything is decided.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_commands::{CommandMeta, Outcome};
use chrono::Utc;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::actor::Actor;
use crate::errors::ApiError;

/// Longest accepted `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;

/// A command's parsed body and metadata.
pub struct CommandInput<B> {
    pub body: B,
    pub meta: CommandMeta,
}

/// Parses a path id. Fails with `invalid_id`.
pub fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::new("invalid_id", format!("{raw:?} is not a UUID")))
}

/// The id of a resource a client creates: theirs when they chose one, else a new one. A client
/// may choose only random UUIDs (version 4 or 7): the ids bozor derives itself (wallets,
/// escrows, platform accounts) are version 5, so no client id can ever name, block or shadow
/// one of them. Fails with 422 `invalid_field` otherwise.
pub fn new_id(chosen: Option<Uuid>) -> Result<Uuid, ApiError> {
    let Some(id) = chosen else { return Ok(Uuid::new_v4()) };
    let random = matches!(id.get_version(), Some(uuid::Version::Random | uuid::Version::SortRand));
    if !random || id.get_variant() != uuid::Variant::RFC4122 {
        let reason = "a client-chosen id must be a random UUID (version 4 or 7)";
        return Err(bozor_domain::DomainError::Invalid { field: "id", reason }.into());
    }
    Ok(id)
}

/// Reads at most `limit` bytes of body. Fails with `body_too_large` past it.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let too_large = || ApiError::new("body_too_large", format!("the body exceeds {limit} bytes"));
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match e {
            actix_web::error::PayloadError::Overflow => too_large(),
            other => ApiError::new("malformed_json", format!("cannot read the body: {other}")),
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a JSON body. Syntax errors are `malformed_json`; well-formed JSON that does not fit
/// (unknown field, wrong type, missing field) is `invalid_body`. An empty body reads as `{}`.
pub fn parse_json<B: DeserializeOwned>(bytes: &[u8]) -> Result<B, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    // Syntax first, so truncated JSON is `malformed_json` even where its start fits the type.
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::new("malformed_json", e.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::new("invalid_body", "the body must be a JSON object"));
    }
    if has_nul(&value) {
        return Err(ApiError::new("invalid_body", "text must not contain NUL characters (\\u0000)"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::new("invalid_body", e.to_string()))
}

/// True when a string or key anywhere in `v` holds a NUL character, which PostgreSQL cannot
/// store in text. The walk is bounded by the body, itself bounded by BOZOR_BODY_BYTES_MAX.
fn has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(has_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Result<Option<&'a str>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| ApiError::new("invalid_header", format!("{name} is not ASCII"))),
    }
}

/// `If-Match: 3`, `"3"` or `W/"3"`: the version the addressed stream must be at.
fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(v) = header(req, "If-Match")? else { return Ok(None) };
    let v = v.trim().trim_start_matches("W/").trim_matches('"');
    v.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| ApiError::new("invalid_header", "If-Match must be a stream version, e.g. \"3\""))
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(k) = header(req, "Idempotency-Key")? else { return Ok(None) };
    let ok = !k.is_empty() && k.len() <= IDEMPOTENCY_KEY_CHARS_MAX && k.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        return Err(ApiError::new("invalid_header", "Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
    Ok(Some(k.to_owned()))
}

/// Reads a JSON body of at most `limit` bytes sent as `application/json` (or without a
/// content type). Fails with the same 4xx codes as commands.
pub async fn json_body<B: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<B, ApiError> {
    check_content_type(req)?;
    parse_json(&read_body(payload, limit).await?)
}

fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    if let Some(ct) = header(req, "Content-Type")? {
        if !ct.trim().to_ascii_lowercase().starts_with("application/json") {
            return Err(ApiError::new("unsupported_media_type", "send the body as application/json"));
        }
    }
    Ok(())
}

/// Reads and checks everything a command needs before it is decided.
pub async fn command_input<B: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    actor: &Actor,
    command: &'static str,
    limit: usize,
) -> Result<CommandInput<B>, ApiError> {
    check_content_type(req)?;
    let idempotency_key = idempotency_key(req)?;
    let if_match = if_match(req)?;
    let bytes = read_body(payload, limit).await?;
    let body = parse_json(&bytes)?;
    let idempotency = idempotency_key.map(|key| {
        let mut h = Sha256::new();
        h.update(req.method().as_str().as_bytes());
        h.update(b" ");
        h.update(req.path().as_bytes());
        h.update(b"\n");
        h.update(&bytes);
        (key, h.finalize().to_vec())
    });
    let request_id = crate::guard::request_id(req);
    let meta = CommandMeta {
        actor: actor.user.clone(),
        now: Utc::now(),
        command,
        request_id,
        correlation_id: request_id,
        idempotency,
        if_match,
    };
    Ok(CommandInput { body, meta })
}

/// The response to a command: 200 (or 201 for creations) with the outcome and an ETag of the
/// addressed stream's version.
pub fn respond(outcome: Outcome, created: bool) -> HttpResponse {
    let mut res = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    res.insert_header(("ETag", format!("\"{}\"", outcome.version)));
    if outcome.replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    res.json(outcome)
}
