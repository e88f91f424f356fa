//! Payme's Merchant API: JSON-RPC 2.0 at `POST /v1/payments/payme`. Every answer is HTTP 200;
//! errors carry Payme's codes with messages in Russian, Uzbek and English. Answers are built
//! from the payment stream, so a repeated call answers byte for byte as the first did.
//!
//! Account errors (the spec leaves the codes in -31050..-31099 to the merchant):
//! - -31050: no such wallet owner or order (`data` names the field), or an account that names
//!   neither or both;
//! - -31051: the order is paid, cancelled or further along already;
//! - -31052: another Payme or Click transaction of the order is in progress.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bozor_commands::CommandError;
use bozor_domain::payment::{self, payment_id_for, CancelReason, Payment, Status, Target};
use bozor_domain::wallet::Provider;
use bozor_domain::{DomainError, Money};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{provider_meta, same_secret};
use crate::routes::AppState;

/// Payme's timeout: a created transaction older than this (by Payme's `time`) is cancelled.
pub const TIMEOUT_MS: i64 = 43_200_000;

/// A JSON-RPC error with Payme's code and localized message.
#[derive(Debug)]
pub struct RpcError {
    pub code: i32,
    message: [&'static str; 3],
    data: Option<Value>,
}

fn rpc(code: i32, ru: &'static str, uz: &'static str, en: &'static str) -> RpcError {
    RpcError { code, message: [ru, uz, en], data: None }
}

impl RpcError {
    fn with(mut self, data: impl Into<Value>) -> RpcError {
        self.data = Some(data.into());
        self
    }
}

fn unauthorized() -> RpcError {
    rpc(-32504, "Недостаточно привилегий", "Ruxsat yetarli emas", "Insufficient privileges")
}
fn unparseable() -> RpcError {
    rpc(-32700, "Ошибка разбора JSON", "JSON tahlil xatosi", "Parse error")
}
fn bad_request(what: &'static str) -> RpcError {
    rpc(-32600, "Неверный запрос", "Noto‘g‘ri so‘rov", "Invalid request").with(what)
}
fn system() -> RpcError {
    rpc(-32400, "Системная ошибка", "Tizim xatosi", "System error")
}
fn wrong_amount() -> RpcError {
    rpc(-31001, "Неверная сумма", "Noto‘g‘ri summa", "Wrong amount")
}
fn not_found() -> RpcError {
    rpc(-31003, "Транзакция не найдена", "Tranzaksiya topilmadi", "Transaction not found")
}
fn cannot_cancel() -> RpcError {
    rpc(
        -31007,
        "Невозможно отменить транзакцию: средства уже использованы или товар доставлен",
        "Tranzaksiyani bekor qilib bo‘lmaydi: mablag‘ sarflangan yoki tovar yetkazilgan",
        "The transaction cannot be cancelled: the money was spent or the goods were delivered",
    )
}
fn cannot_perform() -> RpcError {
    rpc(-31008, "Невозможно выполнить операцию", "Amalni bajarib bo‘lmaydi", "Unable to perform the operation")
}
fn no_account(field: &'static str) -> RpcError {
    rpc(-31050, "Счёт не найден", "Hisob topilmadi", "Account not found").with(field)
}
fn order_not_payable() -> RpcError {
    rpc(
        -31051,
        "Заказ уже оплачен или отменён",
        "Buyurtma allaqachon to‘langan yoki bekor qilingan",
        "The order is already paid or cancelled",
    )
    .with("order_id")
}
fn payment_in_progress() -> RpcError {
    rpc(
        -31052,
        "Заказ ожидает оплаты по другой транзакции",
        "Buyurtma boshqa tranzaksiya bo‘yicha to‘lovni kutmoqda",
        "Another transaction of this order is in progress",
    )
    .with("order_id")
}

fn answer(id: &Value, outcome: Result<Value, RpcError>) -> HttpResponse {
    let body = match outcome {
        Ok(result) => json!({ "result": result, "id": id }),
        Err(e) => {
            let [ru, uz, en] = e.message;
            let mut error = json!({ "code": e.code, "message": { "ru": ru, "uz": uz, "en": en } });
            if let Some(data) = e.data {
                error["data"] = data;
            }
            json!({ "error": error, "id": id })
        }
    };
    HttpResponse::Ok().content_type("application/json; charset=utf-8").body(body.to_string())
}

/// `POST /v1/payments/payme`.
#[utoipa::path(
    post,
    path = "/v1/payments/payme",
    tag = "payments",
    operation_id = "payme_endpoint",
    request_body(content = crate::openapi::JsonRpcCall, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::JsonRpcAnswer)),
    security(("payme_basic" = [])),
)]
pub async fn endpoint(s: web::Data<AppState>, r: HttpRequest, mut body: web::Payload) -> HttpResponse {
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) if bytes.len() + c.len() <= s.body_bytes_max => bytes.extend_from_slice(&c),
            _ => return answer(&Value::Null, Err(bad_request("body"))),
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(&bytes) else {
        return answer(&Value::Null, Err(unparseable()));
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if !authorized(&s, &r) {
        let refused = unauthorized();
        tracing::info!(code = refused.code, "payme call refused");
        crate::metrics::count_command("payme_unauthenticated", &refused.code.to_string());
        return answer(&id, Err(refused));
    }
    let (Some(method), Some(params)) =
        (request.get("method").and_then(Value::as_str), request.get("params").filter(|p| p.is_object()))
    else {
        return answer(&id, Err(bad_request("method and params")));
    };
    let now = Utc::now();
    let outcome = match method {
        "CheckPerformTransaction" => check_perform(&s, params, now).await,
        "CreateTransaction" => create(&s, params, now).await,
        "PerformTransaction" => perform(&s, params, now).await,
        "CancelTransaction" => cancel(&s, params, now).await,
        "CheckTransaction" => check(&s, params).await,
        "GetStatement" => statement(&s, params).await,
        other => Err(rpc(-32601, "Метод не найден", "Metod topilmadi", "Method not found").with(other.to_owned())),
    };
    if let Err(e) = &outcome {
        tracing::info!(method, code = e.code, "payme call refused");
    }
    let command = match method {
        "CheckPerformTransaction" => "payme_check_perform",
        "CreateTransaction" => "payme_create_transaction",
        "PerformTransaction" => "payme_perform_transaction",
        "CancelTransaction" => "payme_cancel_transaction",
        "CheckTransaction" => "payme_check_transaction",
        "GetStatement" => "payme_get_statement",
        _ => "payme_unknown_method",
    };
    crate::metrics::count_command(command, &outcome.as_ref().map_or_else(|e| e.code.to_string(), |_| "ok".to_owned()));
    answer(&id, outcome)
}

/// `Authorization: Basic base64("Paycom:<BOZOR_PAYME_KEY>")`, compared in constant time.
fn authorized(s: &AppState, r: &HttpRequest) -> bool {
    let Some(payme) = &s.payments.payme else { return false };
    let Some(given) = r.headers().get("Authorization").and_then(|v| v.to_str().ok()) else { return false };
    let Some(encoded) = given.strip_prefix("Basic ") else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    same_secret(format!("Paycom:{}", payme.key).as_bytes(), &decoded)
}

fn int(params: &Value, field: &'static str) -> Result<i64, RpcError> {
    params.get(field).and_then(Value::as_i64).ok_or_else(|| bad_request(field))
}

fn tx_id(params: &Value) -> Result<String, RpcError> {
    match params.get("id").and_then(Value::as_str) {
        Some(id)
            if !id.is_empty()
                && id.len() <= payment::PROVIDER_TX_ID_CHARS_MAX
                && id.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(id.to_owned())
        }
        _ => Err(bad_request("id")),
    }
}

/// A positive whole number of tiyin, at most `money::AMOUNT_MAX`; anything else is -31001.
fn amount(params: &Value) -> Result<Money, RpcError> {
    let tiyin = params.get("amount").and_then(Value::as_i64).ok_or_else(wrong_amount)?;
    match Money::from_tiyin(tiyin) {
        Ok(m) if !m.is_zero() && m.within_limit().is_ok() => Ok(m),
        _ => Err(wrong_amount()),
    }
}

/// `account`: exactly one of `wallet_id` (a top-up of that user's wallet) or `order_id`.
fn target(params: &Value) -> Result<Target, RpcError> {
    let account = params.get("account").and_then(Value::as_object).ok_or_else(|| no_account("account"))?;
    let field = |name: &'static str| -> Result<Option<Uuid>, RpcError> {
        match account.get(name) {
            None => Ok(None),
            Some(v) => v.as_str().and_then(|s| Uuid::parse_str(s).ok()).map(Some).ok_or_else(|| no_account(name)),
        }
    };
    match (field("wallet_id")?, field("order_id")?) {
        (Some(user_id), None) => Ok(Target::Wallet { user_id }),
        (None, Some(order_id)) => Ok(Target::Order { order_id }),
        _ => Err(no_account("account")),
    }
}

/// The Payme error for a refusal of the target or the amount.
fn refusal(e: CommandError, target: Target) -> RpcError {
    match e {
        CommandError::Domain(d) => match d {
            DomainError::NotFound { what: "user" | "order" } => no_account(target.field()),
            DomainError::AmountMismatch { .. } | DomainError::AmountTooLarge => wrong_amount(),
            DomainError::Invalid { field: "amount", .. } => wrong_amount(),
            DomainError::PaymentPending => payment_in_progress(),
            DomainError::InvalidTransition { what: "order", .. } => order_not_payable(),
            DomainError::AlreadyExists { .. } => no_account(target.field()),
            other => {
                tracing::warn!(error = %other, "payme: unexpected refusal");
                cannot_perform()
            }
        },
        other => internal(other),
    }
}

fn internal(e: CommandError) -> RpcError {
    tracing::warn!(error = %e, "payme: the store failed");
    system()
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn ms_or_zero(t: Option<DateTime<Utc>>) -> i64 {
    t.map_or(0, ms)
}

fn expired(p: &Payment, now: DateTime<Utc>) -> bool {
    p.status == Status::Created && ms(now).saturating_sub(p.provider_time_ms) > TIMEOUT_MS
}

async fn load(s: &AppState, id: Uuid) -> Result<Option<Payment>, RpcError> {
    match s.commands.payment(id).await.map_err(internal)? {
        payment::State::Exists(p) => Ok(Some(*p)),
        payment::State::Initial => Ok(None),
    }
}

/// Loads a payment that must exist (-31003 otherwise).
async fn existing(s: &AppState, id: Uuid) -> Result<Payment, RpcError> {
    load(s, id).await?.ok_or_else(not_found)
}

/// Cancels an expired transaction (reason 4) and answers -31008.
async fn time_out(s: &AppState, p: &Payment, now: DateTime<Utc>) -> RpcError {
    let meta = provider_meta(Provider::Payme, "payme_cancel_transaction", now);
    match s.commands.cancel_payment(&meta, p.id, CancelReason::Timeout).await {
        Ok(_) | Err(CommandError::Domain(_)) => cannot_perform(),
        Err(e) => internal(e),
    }
}

async fn check_perform(s: &AppState, params: &Value, now: DateTime<Utc>) -> Result<Value, RpcError> {
    let (amount, target) = (amount(params)?, target(params)?);
    let meta = provider_meta(Provider::Payme, "payme_check_perform", now);
    // The nil id is no transaction's: an order waiting for any transaction refuses it.
    s.commands.check_payment(&meta, Uuid::nil(), target, amount).await.map_err(|e| refusal(e, target))?;
    Ok(json!({ "allow": true }))
}

fn created_answer(id: Uuid, create_time: DateTime<Utc>) -> Value {
    json!({ "create_time": ms(create_time), "transaction": id.to_string(), "state": Status::Created.payme_state() })
}

/// A new transaction is created in one command (which refuses a known id); only a known id
/// is read back, to answer as it first did. The answer's times are the command's own `now`,
/// which the events store, so a repeat built from the stream is byte-identical.
async fn create(s: &AppState, params: &Value, now: DateTime<Utc>) -> Result<Value, RpcError> {
    let (tx, time) = (tx_id(params)?, int(params, "time")?);
    // Payme's times are 13-digit Unix milliseconds.
    if !(1_000_000_000_000..10_000_000_000_000).contains(&time) {
        return Err(bad_request("time"));
    }
    let id = payment_id_for(Provider::Payme, &tx);
    let (amount, target) = (amount(params)?, target(params)?);
    let meta = provider_meta(Provider::Payme, "payme_create_transaction", now);
    match s.commands.create_payment(&meta, Provider::Payme, &tx, target, amount, time).await {
        Ok(_) => Ok(created_answer(id, now)),
        Err(CommandError::Domain(DomainError::AlreadyExists { what: "payment" })) => {
            known_create(s, &existing(s, id).await?, now).await
        }
        Err(e) => Err(refusal(e, target)),
    }
}

async fn known_create(s: &AppState, p: &Payment, now: DateTime<Utc>) -> Result<Value, RpcError> {
    if p.status != Status::Created {
        return Err(cannot_perform());
    }
    if expired(p, now) {
        return Err(time_out(s, p, now).await);
    }
    Ok(created_answer(p.id, p.created_at))
}

fn performed_answer(id: Uuid, perform_time: DateTime<Utc>) -> Value {
    json!({ "transaction": id.to_string(), "perform_time": ms(perform_time), "state": Status::Performed.payme_state() })
}

/// One command performs a waiting transaction (refusing an expired one); any refusal is
/// answered from what the stream then says.
async fn perform(s: &AppState, params: &Value, now: DateTime<Utc>) -> Result<Value, RpcError> {
    let id = payment_id_for(Provider::Payme, &tx_id(params)?);
    let meta = provider_meta(Provider::Payme, "payme_perform_transaction", now);
    let refused = match s.commands.perform_payment(&meta, id, Some(TIMEOUT_MS)).await {
        Ok(_) => return Ok(performed_answer(id, now)),
        Err(CommandError::Domain(e)) => e,
        Err(e) => return Err(internal(e)),
    };
    let p = existing(s, id).await?;
    match p.status {
        // Performed before, or by a twin call just now.
        Status::Performed => Ok(performed_answer(id, p.performed_at.unwrap_or(p.created_at))),
        Status::Cancelled | Status::Refunded => Err(cannot_perform()),
        Status::Created if matches!(refused, DomainError::PaymentExpired) => Err(time_out(s, &p, now).await),
        Status::Created => {
            // The target can no longer take the money (the order was cancelled, ...): the
            // transaction is cancelled so Payme does not charge the card.
            tracing::info!(payment_id = %id, error = %refused, "payme: perform refused, cancelling");
            let meta = provider_meta(Provider::Payme, "payme_cancel_transaction", now);
            match s.commands.cancel_payment(&meta, id, CancelReason::ExecutionError).await {
                Ok(_) | Err(CommandError::Domain(_)) => Err(cannot_perform()),
                Err(e) => Err(internal(e)),
            }
        }
    }
}

fn cancelled_answer(p: &Payment) -> Value {
    json!({ "transaction": p.id.to_string(), "cancel_time": ms_or_zero(p.cancelled_at), "state": p.status.payme_state() })
}

async fn cancel(s: &AppState, params: &Value, now: DateTime<Utc>) -> Result<Value, RpcError> {
    let id = payment_id_for(Provider::Payme, &tx_id(params)?);
    let reason = int(params, "reason")
        .ok()
        .and_then(|n| i32::try_from(n).ok())
        .and_then(|n| CancelReason::try_from(n).ok())
        .ok_or_else(|| bad_request("reason"))?;
    let p = existing(s, id).await?;
    if matches!(p.status, Status::Cancelled | Status::Refunded) {
        return Ok(cancelled_answer(&p));
    }
    let meta = provider_meta(Provider::Payme, "payme_cancel_transaction", now);
    match s.commands.cancel_payment(&meta, id, reason).await {
        Ok(_) => Ok(cancelled_answer(&existing(s, id).await?)),
        Err(CommandError::Domain(DomainError::PaymentNotReversible { .. })) => Err(cannot_cancel()),
        Err(CommandError::Domain(e)) => {
            let p = existing(s, id).await?;
            if matches!(p.status, Status::Cancelled | Status::Refunded) {
                return Ok(cancelled_answer(&p)); // a twin call cancelled it first
            }
            tracing::warn!(payment_id = %id, error = %e, "payme: cancel refused");
            Err(cannot_cancel())
        }
        Err(e) => Err(internal(e)),
    }
}

fn reason_of(p: &Payment) -> Value {
    p.cancel_reason.map_or(Value::Null, |r| Value::from(i32::from(r)))
}

async fn check(s: &AppState, params: &Value) -> Result<Value, RpcError> {
    let p = existing(s, payment_id_for(Provider::Payme, &tx_id(params)?)).await?;
    Ok(json!({
        "create_time": ms(p.created_at),
        "perform_time": ms_or_zero(p.performed_at),
        "cancel_time": ms_or_zero(p.cancelled_at),
        "transaction": p.id.to_string(),
        "state": p.status.payme_state(),
        "reason": reason_of(&p),
    }))
}

async fn statement(s: &AppState, params: &Value) -> Result<Value, RpcError> {
    let (from, to) = (int(params, "from")?, int(params, "to")?);
    let client = s.workers.get().await.map_err(|e| {
        tracing::warn!(error = %e, "payme: no database connection");
        system()
    })?;
    let payments = bozor_projections::payments::statement(&client, from, to).await.map_err(|e| {
        tracing::warn!(error = %e, "payme: statement failed");
        system()
    })?;
    let transactions: Vec<Value> = payments
        .iter()
        .map(|p| {
            json!({
                "id": p.provider_tx_id,
                "time": p.provider_time_ms,
                "amount": p.amount.tiyin(),
                "account": { p.target.field(): p.target.id().to_string() },
                "create_time": ms(p.created_at),
                "perform_time": ms_or_zero(p.performed_at),
                "cancel_time": ms_or_zero(p.cancelled_at),
                "transaction": p.id.to_string(),
                "state": p.status.payme_state(),
                "reason": reason_of(p),
            })
        })
        .collect();
    Ok(json!({ "transactions": transactions }))
}
