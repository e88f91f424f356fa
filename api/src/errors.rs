//! The one table of error codes and their HTTP statuses, and the JSON error body:
//! `{"error": {"code": "...", "message": "...", "details": {...}}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use bozor_commands::{CommandError, StoreError};
use bozor_domain::DomainError;
use serde_json::{json, Value};

/// Every code the API answers with: (code, HTTP status, what it means).
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    // Requests the API cannot read.
    ("malformed_json", 400, "the body is not valid JSON"),
    ("invalid_body", 422, "the JSON does not fit the command: unknown field, wrong type, missing field"),
    ("body_too_large", 413, "the body is larger than BOZOR_BODY_BYTES_MAX"),
    ("unsupported_media_type", 415, "a body must be application/json"),
    ("invalid_id", 400, "an id in the path is not a UUID"),
    ("invalid_header", 400, "If-Match or Idempotency-Key is malformed"),
    // Authentication and abuse limits.
    ("unauthenticated", 401, "no credentials: send Authorization: Bearer <access token>"),
    ("invalid_token", 401, "the access token is malformed, forged or signed with another key"),
    ("token_expired", 401, "the access token has expired: refresh it"),
    ("otp_invalid", 401, "the one-time code is wrong or has expired"),
    ("otp_attempts_exceeded", 429, "too many wrong codes: request a new one"),
    ("invalid_refresh_token", 401, "the refresh token is unknown, revoked or expired"),
    ("refresh_token_reused", 401, "a spent refresh token was presented again: its family is revoked"),
    ("rate_limited", 429, "too many requests: wait for Retry-After seconds"),
    ("sms_failed", 502, "the SMS gateway did not take the message"),
    ("route_not_found", 404, "no such endpoint"),
    ("invalid_query", 400, "a query parameter is unknown or malformed"),
    // The domain's refusals (bozor_domain::DomainError::code).
    ("listing_not_found", 404, "no such listing"),
    ("order_not_found", 404, "no such order"),
    ("escrow_not_found", 404, "no such escrow"),
    ("wallet_not_found", 404, "no such wallet"),
    ("already_exists", 409, "the resource exists already"),
    ("forbidden", 403, "the actor may not issue this command on this resource"),
    ("invalid_field", 422, "a field's value is not allowed"),
    ("invalid_transition", 409, "the command is not allowed in the resource's current status"),
    ("listing_not_active", 409, "the listing is not active"),
    ("listing_not_orderable", 422, "classified ads cannot be ordered"),
    ("insufficient_stock", 409, "not enough stock"),
    ("mixed_sellers", 422, "an order holds listings of one seller"),
    ("insufficient_funds", 409, "the wallet's available balance is too small"),
    ("provider_transaction_mismatch", 409, "a provider transaction was deposited with another amount"),
    ("not_due", 409, "a timer command came before its time"),
    ("hold_not_found", 404, "no such hold (escrow or withdrawal) in the wallet"),
    ("amount_too_large", 422, "an amount above 10^15 tiyin, or a balance it would take beyond 10^17"),
    ("variant_reserved", 409, "open orders hold units of the variant: it cannot be removed"),
    ("stock_below_reserved", 409, "a variant's stock cannot go below the units open orders hold"),
    ("not_a_courier", 422, "the user is not a registered courier"),
    ("courier_district_mismatch", 422, "the courier serves another district than the order's"),
    ("user_not_found", 404, "no such user"),
    ("credentials_missing", 409, "the game account has no credentials yet"),
    ("credentials_erased", 410, "the credentials were erased (crypto-shredded) and cannot be read"),
    ("payment_not_found", 404, "no such provider payment"),
    ("payment_pending", 409, "a provider payment of the order is in progress"),
    ("amount_mismatch", 422, "the amount is not what the order costs"),
    ("payment_not_reversible", 409, "a performed provider payment can no longer be taken back"),
    ("payment_expired", 409, "a provider payment stayed created past the provider's timeout"),
    ("withdrawal_below_minimum", 422, "a withdrawal below BOZOR_WITHDRAW_MIN"),
    ("withdrawal_daily_limit", 422, "the day's withdrawals would exceed BOZOR_WITHDRAW_DAILY_MAX"),
    ("provider_not_configured", 503, "the payment provider's settings are not set on this server"),
    // Concurrency and idempotency.
    ("version_mismatch", 412, "If-Match names another version than the resource's"),
    ("version_conflict", 409, "another command changed the resource first; retry"),
    ("idempotency_key_reused", 422, "the Idempotency-Key was used with another request"),
    ("projection_behind", 409, "the read model has not reached min_position yet; retry"),
    ("projection_not_found", 404, "no projection of that name"),
    ("rebuild_in_progress", 409, "the projection is being rebuilt already"),
    ("audit_in_progress", 409, "a ledger audit is running in this process; retry after it"),
    // Infrastructure.
    ("unavailable", 503, "the database or the search engine cannot be reached; retry later"),
    ("internal", 500, "a bug: reported in the server's log"),
];

/// An error answered as JSON with a code from `ERROR_CODES`.
#[derive(Debug)]
pub struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Sent as `Retry-After` (seconds) with 429 and 503 answers.
    pub retry_after_seconds: Option<u64>,
}

impl ApiError {
    /// An error with `code` (which must be in the table) and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> ApiError {
        debug_assert!(ERROR_CODES.iter().any(|(c, ..)| *c == code), "unknown error code {code}");
        ApiError { code, message: message.into(), details: json!({}), retry_after_seconds: None }
    }

    /// Adds a `Retry-After` of `seconds`.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = details;
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// The HTTP status of a code (500 for a code missing from the table).
pub fn status_of(code: &str) -> StatusCode {
    ERROR_CODES
        .iter()
        .find(|(c, ..)| *c == code)
        .and_then(|(_, s, _)| StatusCode::from_u16(*s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.code)
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after_seconds {
            res.insert_header(("Retry-After", seconds.to_string()));
        }
        let mut res =
            res.json(json!({ "error": { "code": self.code, "message": self.message, "details": self.details } }));
        res.extensions_mut().insert(crate::metrics::Outcome(self.code));
        res
    }
}

fn domain_details(e: &DomainError) -> Value {
    match e {
        DomainError::Invalid { field, reason } => json!({ "field": field, "reason": reason }),
        DomainError::InvalidTransition { what, action, status } => {
            json!({ "resource": what, "action": action, "status": status })
        }
        DomainError::InsufficientStock { sku, available, requested } => {
            json!({ "sku": sku, "available": available, "requested": requested })
        }
        DomainError::InsufficientFunds { available, requested } => {
            json!({ "available": available, "requested": requested })
        }
        DomainError::Forbidden { reason } => json!({ "reason": reason }),
        DomainError::VariantReserved { sku } => json!({ "sku": sku }),
        DomainError::StockBelowReserved { sku, stock, reserved } => {
            json!({ "sku": sku, "stock": stock, "reserved": reserved })
        }
        DomainError::NotACourier { user_id } => json!({ "user_id": user_id }),
        DomainError::CourierDistrictMismatch { courier, order } => json!({ "courier": courier, "order": order }),
        _ => json!({}),
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> ApiError {
        ApiError { code: e.code(), message: e.to_string(), details: domain_details(&e), retry_after_seconds: None }
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> ApiError {
        match e {
            CommandError::Domain(d) => d.into(),
            CommandError::VersionMismatch { expected, actual } => ApiError::new("version_mismatch", e.to_string())
                .with_details(json!({ "expected": expected, "actual": actual })),
            CommandError::Conflict => ApiError::new("version_conflict", e.to_string()),
            CommandError::IdempotencyKeyReused => ApiError::new("idempotency_key_reused", e.to_string()),
            CommandError::Store(StoreError::Pool(p)) => crate::routes::unavailable(p),
            CommandError::Store(s) => {
                tracing::error!(error = %s, "event store failure");
                ApiError::new("internal", "internal error")
            }
            CommandError::Busy => ApiError::new("unavailable", e.to_string()).retry_after(1),
            CommandError::Vault(bozor_commands::vault::VaultError::Db(e)) => crate::routes::unavailable(e),
            CommandError::Vault(v) => {
                tracing::error!(error = %v, "credentials vault failure");
                ApiError::new("internal", "internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_code_has_a_status() {
        for code in DomainError::CODES {
            assert!(ERROR_CODES.iter().any(|(c, ..)| c == code), "{code} missing from ERROR_CODES");
        }
    }

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        for (i, (code, status, _)) in ERROR_CODES.iter().enumerate() {
            assert!(!ERROR_CODES[..i].iter().any(|(c, ..)| c == code), "{code} listed twice");
            assert!((400..600).contains(status), "{code}");
        }
    }
}
