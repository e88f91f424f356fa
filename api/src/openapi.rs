//! The OpenAPI 3.1 document, generated from the code: each handler's `#[utoipa::path]`, the
//! request and read-model types' `ToSchema` derives, and the error table (`errors::ERROR_CODES`)
//! as `x-error-codes`. `GET /openapi.json` serves it; `GET /docs` renders it with assets served
//! by bozor itself. The types below describe answers that handlers build as JSON objects.

use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// An error answer: `{"error": {"code", "message", "details"}}`; the codes and their statuses
/// are the document's `x-error-codes`.
#[derive(ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// A code from `x-error-codes`.
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// Facts about the refusal (field, status, available, retry hints...).
    #[schema(value_type = Object)]
    pub details: Value,
}

/// The refusals every operation may answer, with the error body.
#[derive(utoipa::IntoResponses)]
pub enum Refusals {
    /// Refused: the error's code says why (see `x-error-codes`); nothing was written.
    #[response(status = "4XX")]
    Client(ErrorBody),
    /// `unavailable` (the database or the search engine; retry after `Retry-After`) or `internal`.
    #[response(status = "5XX")]
    Server(ErrorBody),
}

/// What a command answers (200, or 201 when it created the resource), with `ETag: "<version>"`.
pub type CommandOutcome = bozor_commands::Outcome;

/// A cursor page: pass `next_cursor` back as `cursor` for the next one (null: the last page).
pub type Page<T> = bozor_projections::listings::Page<T>;

/// Everything at once (short lists).
#[derive(ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// `GET /v1/admin/overview`.
#[derive(ToSchema)]
pub struct Overview {
    pub settled: bozor_projections::listings::Settled,
}

/// A rebuild began (202); its progress shows in `GET /v1/admin/projections`.
#[derive(ToSchema)]
pub struct RebuildStarted {
    pub projection: String,
    /// `rebuilding`.
    pub state: String,
}

/// A login code was sent (202).
#[derive(ToSchema)]
pub struct CodeSent {
    /// Seconds the code stays valid.
    pub expires_in: u64,
    /// Seconds before another code may be requested for the number.
    pub resend_after: u64,
}

/// Tokens after a login or a refresh (`Cache-Control: no-store`).
#[derive(ToSchema)]
pub struct Tokens {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// Single use: each refresh answers a new one.
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub user: TokenUser,
    /// The global position of the user's registration, if this login wrote one (for `min_position`).
    pub position: Option<i64>,
}

#[derive(ToSchema)]
pub struct TokenUser {
    pub id: uuid::Uuid,
    pub phone: String,
    pub roles: Vec<String>,
    pub plan: Option<String>,
    pub district: Option<String>,
}

/// Autosuggest: at most `limit` suggestions, best first.
#[derive(ToSchema)]
pub struct Suggestions {
    pub items: Vec<bozor_search_sync::index::Suggestion>,
}

/// A checkout link to send the buyer to.
#[derive(ToSchema)]
pub struct CheckoutLink {
    /// `payme` or `click`.
    pub provider: String,
    pub url: String,
    /// Tiyin.
    pub amount: i64,
    /// The wallet topped up, when it is a top-up.
    pub wallet_id: Option<uuid::Uuid>,
    /// The order paid, when it is an order payment.
    pub order_id: Option<uuid::Uuid>,
}

/// A Payme Merchant API call (JSON-RPC 2.0), authenticated with `Basic Paycom:<BOZOR_PAYME_KEY>`.
#[derive(ToSchema)]
pub struct JsonRpcCall {
    #[schema(value_type = Object)]
    pub id: Value,
    /// CheckPerformTransaction, CreateTransaction, PerformTransaction, CancelTransaction,
    /// CheckTransaction or GetStatement.
    pub method: String,
    #[schema(value_type = Object)]
    pub params: Value,
}

/// Payme's answer, always HTTP 200: `result`, or `error` with its code and a message in ru,
/// uz and en (see the README's "Money in and out").
#[derive(ToSchema)]
pub struct JsonRpcAnswer {
    #[schema(value_type = Object)]
    pub id: Value,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// Click's SHOP API callback (form-encoded), signed with `sign_string`.
#[derive(ToSchema)]
pub struct ClickCallback {
    pub click_trans_id: i64,
    pub service_id: i64,
    pub click_paydoc_id: i64,
    /// The wallet (top-up) or the order.
    pub merchant_trans_id: String,
    /// Sum, with up to two decimals.
    pub amount: String,
    /// 0: prepare, 1: complete.
    pub action: i32,
    /// Complete only: a negative value says the card payment failed.
    pub error: i32,
    pub error_note: String,
    pub sign_time: String,
    /// MD5 of the fields and BOZOR_CLICK_SECRET, hex.
    pub sign_string: String,
    /// Complete only: the id prepare answered.
    pub merchant_prepare_id: Option<i64>,
}

/// Click's answer, always HTTP 200.
#[derive(ToSchema)]
pub struct ClickAnswer {
    pub click_trans_id: Option<i64>,
    pub merchant_trans_id: String,
    /// Prepare's answer.
    pub merchant_prepare_id: Option<i64>,
    /// Complete's answer.
    pub merchant_confirm_id: Option<i64>,
    /// 0 on success, else Click's code.
    pub error: i32,
    pub error_note: String,
}

/// `GET /healthz`.
#[derive(ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /readyz`: `ready` (200) or `not_ready` (503), with each dependency's check.
#[derive(ToSchema)]
pub struct Readiness {
    pub status: String,
    /// By dependency (database, projections, search, broker): `{ok, detail}`.
    #[schema(value_type = Object)]
    pub checks: Value,
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some(
            "An access token from POST /v1/auth/otp/verify (or `bozor token`): roles buyer, seller, courier, \
             support, admin, auditor."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some("Payme's callbacks: login `Paycom`, password BOZOR_PAYME_KEY.".into());
        components.add_security_scheme("payme_basic", SecurityScheme::Http(basic));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bozor",
        description = "Event-sourced marketplace backend: shops with courier delivery, classified ads and \
                       escrowed deals for digital goods, in Uzbekistan. Amounts are integer tiyin (1 sum = \
                       100 tiyin). Commands are POSTs and accept `Idempotency-Key` and `If-Match`; queries \
                       are GETs with cursor pages and `min_position` to read your own writes."
    ),
    paths(
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::health::metrics,
        crate::routes::admin::list,
        crate::routes::admin::rebuild,
        crate::routes::admin::timers,
        crate::routes::admin::overview,
        crate::routes::audit::events,
        crate::routes::audit::ledger,
        crate::routes::auth::request_code,
        crate::routes::auth::verify_code,
        crate::routes::auth::refresh_tokens,
        crate::routes::auth::logout,
        crate::routes::credentials::set,
        crate::routes::credentials::reveal,
        crate::routes::credentials::erase,
        crate::routes::exports::journal,
        crate::routes::exports::statement,
        crate::routes::listings::create,
        crate::routes::listings::update,
        crate::routes::listings::submit,
        crate::routes::listings::approve,
        crate::routes::listings::reject,
        crate::routes::listings::block,
        crate::routes::listings::archive,
        crate::routes::listings::delete,
        crate::routes::listings::promote,
        crate::routes::orders::place,
        crate::routes::orders::pay,
        crate::routes::orders::accept,
        crate::routes::orders::assign_courier,
        crate::routes::orders::pick_up,
        crate::routes::orders::deliver,
        crate::routes::orders::confirm,
        crate::routes::orders::cancel,
        crate::routes::orders::request_return,
        crate::routes::orders::refund,
        crate::routes::orders::dispute,
        crate::routes::orders::resolve,
        crate::routes::payments::payme::endpoint,
        crate::routes::payments::click::prepare,
        crate::routes::payments::click::complete,
        crate::routes::payments::checkout::checkout,
        crate::routes::payments::transactions::list,
        crate::routes::queries::list_listings,
        crate::routes::queries::get_listing,
        crate::routes::queries::list_orders,
        crate::routes::queries::get_order,
        crate::routes::queries::get_wallet,
        crate::routes::queries::get_ledger,
        crate::routes::queries::list_withdrawals,
        crate::routes::queries::list_all_withdrawals,
        crate::routes::queries::platform_accounts,
        crate::routes::queries::seller_stats,
        crate::routes::search::suggest,
        crate::routes::search::search,
        crate::routes::users::me,
        crate::routes::users::one,
        crate::routes::users::list,
        crate::routes::users::grant,
        crate::routes::users::revoke,
        crate::routes::wallets::deposit,
        crate::routes::wallets::withdraw,
        crate::routes::wallets::complete,
        crate::routes::wallets::fail
    ),
    // Referenced from `Refusals`, which utoipa does not walk for schemas.
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security),
    security(("bearer" = [])),
    tags(
        (name = "listings", description = "Listings: create, edit, moderate, promote; browse and read"),
        (name = "orders", description = "Orders: place, pay, deliver, confirm, return, dispute"),
        (name = "wallets", description = "Wallets: balances, ledgers, deposits and payouts"),
        (name = "payments", description = "Payme and Click callbacks, checkout links, reconciliation"),
        (name = "search", description = "Autosuggest and full search in Russian, Uzbek and English"),
        (name = "auth", description = "Login by SMS code, token refresh and logout"),
        (name = "users", description = "Profiles and role grants"),
        (name = "admin", description = "Projections, rebuilds, timers"),
        (name = "audit", description = "The raw log, the ledger audit and exports"),
        (name = "health", description = "Liveness, readiness and Prometheus metrics"),
    )
)]
struct ApiDoc;

/// The document as JSON, with `x-error-codes`: every error code, its HTTP status and meaning.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    let codes: Vec<Value> = crate::errors::ERROR_CODES
        .iter()
        .map(|(code, status, description)| serde_json::json!({ "code": code, "status": status, "description": description }))
        .collect();
    doc["x-error-codes"] = Value::Array(codes);
    doc
}
