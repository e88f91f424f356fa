//! Click's SHOP API: `POST /v1/payments/click/prepare` and `/complete`, form-encoded, answered
//! with JSON. Checks run in the spec's order: fields present (-8), signature (-1), action (-3),
//! target (-5), on complete the prepare id (-6), Click's own `error < 0` (-9, the transaction is
//! cancelled), already paid (-4), amount (-2). A repeated callback answers as the first did:
//! answers are built from the payment stream.
//!
//! `merchant_trans_id` is a user id (a top-up of their wallet) or an order id. Amounts must be
//! whole tiyin and, on complete and for orders, exactly what is owed: the spec's "within 0.01"
//! would let the books and the money differ by a tiyin.
//!
//! Click's `error` is not signed, so a replayed complete could carry a forged failure. It
//! cancels only a transaction not yet performed; for a performed one nothing moves and the
//! answer is -4 (the payment stands; a refund goes through Click's own channel and finance).
//! `merchant_prepare_id` and `merchant_confirm_id` are one number derived from the payment's
//! stream id (below 2^53, so JavaScript reads it exactly).

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use bozor_commands::CommandError;
use bozor_domain::order::{self, OrderAggregate};
use bozor_domain::payment::{self, payment_id_for, CancelReason, Payment, Status, Target};
use bozor_domain::user::{self, UserAggregate};
use bozor_domain::wallet::Provider;
use bozor_domain::{DomainError, Money};
use chrono::{NaiveDateTime, Utc};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{provider_meta, same_secret};
use crate::routes::AppState;

/// Click's error codes, with the notes Click's documentation gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClickError {
    SignCheckFailed = -1,
    IncorrectAmount = -2,
    ActionNotFound = -3,
    AlreadyPaid = -4,
    UserDoesNotExist = -5,
    TransactionDoesNotExist = -6,
    FailedToUpdateUser = -7,
    ErrorInRequest = -8,
    TransactionCancelled = -9,
}

impl ClickError {
    fn note(self) -> &'static str {
        match self {
            ClickError::SignCheckFailed => "SIGN CHECK FAILED!",
            ClickError::IncorrectAmount => "Incorrect parameter amount",
            ClickError::ActionNotFound => "Action not found",
            ClickError::AlreadyPaid => "Already paid",
            ClickError::UserDoesNotExist => "User does not exist",
            ClickError::TransactionDoesNotExist => "Transaction does not exist",
            ClickError::FailedToUpdateUser => "Failed to update user",
            ClickError::ErrorInRequest => "Error in request from click",
            ClickError::TransactionCancelled => "Transaction cancelled",
        }
    }
}

/// Fields every callback carries; complete adds `merchant_prepare_id`.
const FIELDS: &[&str] = &[
    "click_trans_id",
    "service_id",
    "click_paydoc_id",
    "merchant_trans_id",
    "amount",
    "action",
    "error",
    "sign_time",
    "sign_string",
];

/// One callback's fields as received.
struct Callback {
    fields: BTreeMap<String, String>,
    complete: bool,
}

impl Callback {
    fn get(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// `click_trans_id + service_id + SECRET + merchant_trans_id [+ merchant_prepare_id] +
    /// amount + action + sign_time`, MD5, lowercase hex.
    fn expected_sign(&self, secret: &str) -> String {
        let mut h = Md5::new();
        for part in [self.get("click_trans_id"), self.get("service_id"), secret, self.get("merchant_trans_id")] {
            h.update(part.as_bytes());
        }
        if self.complete {
            h.update(self.get("merchant_prepare_id").as_bytes());
        }
        for part in [self.get("amount"), self.get("action"), self.get("sign_time")] {
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// The answer to a callback: Click's fields, and the error's code and note.
fn answer(c: &Callback, id: Option<i64>, outcome: Result<(), ClickError>) -> HttpResponse {
    let (error, note) = match outcome {
        Ok(()) => (0, "Success"),
        Err(e) => (e as i32, e.note()),
    };
    let command = if c.complete { "click_complete" } else { "click_prepare" };
    crate::metrics::count_command(command, &if error == 0 { "ok".to_owned() } else { error.to_string() });
    let click_trans_id: Value = c.get("click_trans_id").parse::<i64>().map_or(Value::Null, Value::from);
    let id_field = if c.complete { "merchant_confirm_id" } else { "merchant_prepare_id" };
    let body = json!({
        "click_trans_id": click_trans_id,
        "merchant_trans_id": c.get("merchant_trans_id"),
        id_field: id.map_or(Value::Null, Value::from),
        "error": error,
        "error_note": note,
    });
    HttpResponse::Ok().content_type("application/json; charset=utf-8").body(body.to_string())
}

/// The number Click knows a payment by: the stream id's first 53 bits.
pub fn prepare_id(payment_id: Uuid) -> i64 {
    let first: [u8; 8] = payment_id.as_bytes()[..8].try_into().expect("16 bytes");
    (u64::from_be_bytes(first) >> 11) as i64
}

/// An amount in sum as Click sends it ("1000.00"), in millionths of a sum; None when it is not
/// a plain non-negative decimal.
pub fn micro_sum(amount: &str) -> Option<i128> {
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 15 || frac.len() > 6 || !digits(whole) || !digits(frac) {
        return None;
    }
    let frac_padded = format!("{frac:0<6}");
    Some(whole.parse::<i128>().ok()? * 1_000_000 + frac_padded.parse::<i128>().ok()?)
}

/// An amount as Click sends it in whole tiyin; None for a malformed one or a fraction of a tiyin.
pub fn whole_tiyin(amount: &str) -> Option<i64> {
    let micro = micro_sum(amount)?;
    if micro % 10_000 != 0 {
        return None;
    }
    i64::try_from(micro / 10_000).ok()
}

/// True when `amount` is exactly `tiyin`.
pub fn amount_matches(amount: &str, tiyin: Money) -> bool {
    whole_tiyin(amount) == Some(tiyin.tiyin())
}

/// `sign_time` ("2024-01-15 12:30:45", Tashkent time) as Unix milliseconds.
fn sign_time_ms(sign_time: &str) -> Option<i64> {
    let local = NaiveDateTime::parse_from_str(sign_time, "%Y-%m-%d %H:%M:%S").ok()?;
    Some((local - chrono::Duration::hours(5)).and_utc().timestamp_millis())
}

/// Reads and checks a callback up to the target: fields (-8), signature (-1), action (-3).
fn read(s: &AppState, body: &[u8], complete: bool) -> Result<Callback, (Callback, ClickError)> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let mut fields = BTreeMap::new();
    for (k, v) in pairs {
        fields.entry(k).or_insert(v);
    }
    let c = Callback { fields, complete };
    let needed = FIELDS.iter().copied().chain(complete.then_some("merchant_prepare_id"));
    let present = needed.into_iter().all(|f| c.fields.contains_key(f));
    let numeric = c.get("click_trans_id").parse::<i64>().is_ok_and(|n| n > 0)
        && c.get("error").parse::<i64>().is_ok()
        && c.get("action").parse::<i64>().is_ok()
        && sign_time_ms(c.get("sign_time")).is_some();
    if !present || !numeric {
        return Err((c, ClickError::ErrorInRequest));
    }
    let Some(click) = &s.payments.click else { return Err((c, ClickError::SignCheckFailed)) };
    let given = c.get("sign_string").to_ascii_lowercase();
    if !same_secret(c.expected_sign(&click.secret).as_bytes(), given.as_bytes())
        || c.get("service_id") != click.service_id
    {
        return Err((c, ClickError::SignCheckFailed));
    }
    if c.get("action") != if complete { "1" } else { "0" } {
        return Err((c, ClickError::ActionNotFound));
    }
    Ok(c)
}

/// What `merchant_trans_id` names: an order, or a user (a top-up). -5 when neither.
async fn target_of(s: &AppState, c: &Callback) -> Result<(Target, Option<order::Order>), ClickError> {
    let id = Uuid::parse_str(c.get("merchant_trans_id")).map_err(|_| ClickError::UserDoesNotExist)?;
    let store = s.commands.store();
    if let Ok(loaded) = store.load::<OrderAggregate>(id).await {
        if let order::State::Exists(o) = loaded.state {
            return Ok((Target::Order { order_id: id }, Some(*o)));
        }
    }
    match store.load::<UserAggregate>(id).await {
        Ok(loaded) if matches!(loaded.state, user::State::Exists(_)) => Ok((Target::Wallet { user_id: id }, None)),
        Ok(_) | Err(bozor_commands::StoreError::WrongStreamType { .. }) => Err(ClickError::UserDoesNotExist),
        Err(e) => {
            tracing::warn!(error = %e, "click: the store failed");
            Err(ClickError::FailedToUpdateUser)
        }
    }
}

async fn load(s: &AppState, id: Uuid) -> Result<Option<Payment>, ClickError> {
    match s.commands.payment(id).await {
        Ok(payment::State::Exists(p)) => Ok(Some(*p)),
        Ok(payment::State::Initial) => Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, "click: the store failed");
            Err(ClickError::FailedToUpdateUser)
        }
    }
}

async fn body_bytes(s: &AppState, mut body: web::Payload) -> Option<web::BytesMut> {
    use futures_util::StreamExt;
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.ok()?;
        if bytes.len() + chunk.len() > s.body_bytes_max {
            return None;
        }
        bytes.extend_from_slice(&chunk);
    }
    Some(bytes)
}

/// `POST /v1/payments/click/prepare`: Click asks whether it may charge the card.
#[utoipa::path(
    post,
    path = "/v1/payments/click/prepare",
    tag = "payments",
    operation_id = "click_prepare",
    request_body(content = crate::openapi::ClickCallback, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Success", body = crate::openapi::ClickAnswer)),
    security(()),
)]
pub async fn prepare(s: web::Data<AppState>, body: web::Payload) -> HttpResponse {
    handle(&s, body, false).await
}

/// `POST /v1/payments/click/complete`: Click charged the card (or failed to: `error < 0`).
#[utoipa::path(
    post,
    path = "/v1/payments/click/complete",
    tag = "payments",
    operation_id = "click_complete",
    request_body(content = crate::openapi::ClickCallback, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Success", body = crate::openapi::ClickAnswer)),
    security(()),
)]
pub async fn complete(s: web::Data<AppState>, body: web::Payload) -> HttpResponse {
    handle(&s, body, true).await
}

/// Reads and checks a callback, then runs its action's steps; always answers 200 with Click's
/// fields.
async fn handle(s: &AppState, body: web::Payload, complete: bool) -> HttpResponse {
    let bytes = body_bytes(s, body).await.unwrap_or_default();
    let c = match read(s, &bytes, complete) {
        Ok(c) => c,
        Err((c, e)) => return answer(&c, None, Err(e)),
    };
    let (id, outcome) = if complete { complete_checked(s, &c).await } else { prepare_checked(s, &c).await };
    if let Err(e) = outcome {
        tracing::info!(code = e as i32, complete, "click callback refused");
    }
    answer(&c, id, outcome)
}

async fn prepare_checked(s: &AppState, c: &Callback) -> (Option<i64>, Result<(), ClickError>) {
    let (target, order) = match target_of(s, c).await {
        Ok(t) => t,
        Err(e) => return (None, Err(e)),
    };
    let tx = c.get("click_trans_id");
    let id = payment_id_for(Provider::Click, tx);
    let failed = c.get("error").parse::<i64>().unwrap_or(0) < 0;
    match load(s, id).await {
        Err(e) => return (None, Err(e)),
        Ok(Some(p)) if failed && p.target == target => return (Some(prepare_id(id)), cancel(s, &p).await),
        Ok(Some(p)) => return (Some(prepare_id(id)), known_prepare(&p, target)),
        Ok(None) => {}
    }
    if failed {
        return (None, Err(ClickError::TransactionCancelled));
    }
    let amount = match &order {
        Some(o) => match o.status {
            order::Status::Placed => {
                if !amount_matches(c.get("amount"), o.total()) {
                    return (None, Err(ClickError::IncorrectAmount));
                }
                o.total()
            }
            order::Status::Cancelled => return (None, Err(ClickError::TransactionCancelled)),
            _ => return (None, Err(ClickError::AlreadyPaid)),
        },
        None => match top_up_amount(c.get("amount")) {
            Some(m) => m,
            None => return (None, Err(ClickError::IncorrectAmount)),
        },
    };
    let time_ms = sign_time_ms(c.get("sign_time")).expect("checked by read");
    let meta = provider_meta(Provider::Click, "click_prepare", Utc::now());
    match s.commands.create_payment(&meta, Provider::Click, tx, target, amount, time_ms).await {
        Ok(_) => (Some(prepare_id(id)), Ok(())),
        Err(CommandError::Domain(DomainError::AlreadyExists { what: "payment" })) => match load(s, id).await {
            Ok(Some(p)) => (Some(prepare_id(id)), known_prepare(&p, target)),
            Ok(None) => (None, Err(ClickError::FailedToUpdateUser)),
            Err(e) => (None, Err(e)),
        },
        Err(CommandError::Domain(e)) => (None, Err(refusal(&e))),
        Err(e) => {
            tracing::warn!(error = %e, "click: the store failed");
            (None, Err(ClickError::FailedToUpdateUser))
        }
    }
}

/// A top-up's amount: whole tiyin, positive and within the limits.
fn top_up_amount(amount: &str) -> Option<Money> {
    Money::from_tiyin(whole_tiyin(amount)?).ok().filter(|m| !m.is_zero() && m.within_limit().is_ok())
}

fn refusal(e: &DomainError) -> ClickError {
    match e {
        DomainError::AmountMismatch { .. } | DomainError::AmountTooLarge => ClickError::IncorrectAmount,
        DomainError::NotFound { .. } => ClickError::UserDoesNotExist,
        DomainError::InvalidTransition { what: "order", status: "cancelled", .. } => ClickError::TransactionCancelled,
        DomainError::InvalidTransition { what: "order", .. } => ClickError::AlreadyPaid,
        // Another transaction of the order is in progress.
        DomainError::PaymentPending => ClickError::ErrorInRequest,
        other => {
            tracing::warn!(error = %other, "click: unexpected refusal");
            ClickError::FailedToUpdateUser
        }
    }
}

/// A repeated prepare: success while the transaction waits, else what it became.
fn known_prepare(p: &Payment, target: Target) -> Result<(), ClickError> {
    if p.target != target {
        return Err(ClickError::TransactionDoesNotExist);
    }
    match p.status {
        Status::Created => Ok(()),
        Status::Performed => Err(ClickError::AlreadyPaid),
        Status::Cancelled | Status::Refunded => Err(ClickError::TransactionCancelled),
    }
}

async fn complete_checked(s: &AppState, c: &Callback) -> (Option<i64>, Result<(), ClickError>) {
    let target = match target_of(s, c).await {
        Ok((t, _)) => t,
        Err(e) => return (None, Err(e)),
    };
    let id = payment_id_for(Provider::Click, c.get("click_trans_id"));
    let p = match load(s, id).await {
        Ok(Some(p)) if p.target == target && c.get("merchant_prepare_id") == prepare_id(id).to_string() => p,
        Ok(_) => return (None, Err(ClickError::TransactionDoesNotExist)),
        Err(e) => return (None, Err(e)),
    };
    let confirm = Some(prepare_id(id));
    let now = Utc::now();
    if c.get("error").parse::<i64>().unwrap_or(0) < 0 {
        return (confirm, cancel(s, &p).await);
    }
    match p.status {
        Status::Performed => return (confirm, Ok(())),
        Status::Cancelled | Status::Refunded => return (confirm, Err(ClickError::TransactionCancelled)),
        Status::Created => {}
    }
    if !amount_matches(c.get("amount"), p.amount) {
        return (confirm, Err(ClickError::IncorrectAmount));
    }
    let meta = provider_meta(Provider::Click, "click_complete", now);
    match s.commands.perform_payment(&meta, id, None).await {
        Ok(_) => (confirm, Ok(())),
        Err(CommandError::Domain(e)) => match load(s, id).await {
            Ok(Some(p)) if p.status == Status::Performed => (confirm, Ok(())),
            Ok(Some(p)) if p.status == Status::Created => {
                // The target can no longer take the money: the transaction is cancelled.
                tracing::info!(payment_id = %id, error = %e, "click: complete refused, cancelling");
                let meta = provider_meta(Provider::Click, "click_cancel", now);
                match s.commands.cancel_payment(&meta, id, CancelReason::ExecutionError).await {
                    Ok(_) | Err(CommandError::Domain(_)) => (confirm, Err(ClickError::TransactionCancelled)),
                    Err(_) => (confirm, Err(ClickError::FailedToUpdateUser)),
                }
            }
            Ok(_) => (confirm, Err(ClickError::TransactionCancelled)),
            Err(e) => (confirm, Err(e)),
        },
        Err(e) => {
            tracing::warn!(error = %e, "click: the store failed");
            (confirm, Err(ClickError::FailedToUpdateUser))
        }
    }
}

/// Click says the card payment failed (`error < 0`): a transaction not yet performed is
/// cancelled and answers -9. A performed one stays as it is and answers -4: `error` is not
/// covered by the signature, so a replayed success with a forged failure must move nothing.
async fn cancel(s: &AppState, p: &Payment) -> Result<(), ClickError> {
    match p.status {
        Status::Cancelled | Status::Refunded => return Err(ClickError::TransactionCancelled),
        Status::Performed => {
            tracing::warn!(payment_id = %p.id, "click reported a failure for a performed payment: nothing moved");
            return Err(ClickError::AlreadyPaid);
        }
        Status::Created => {}
    }
    let meta = provider_meta(Provider::Click, "click_cancel", Utc::now());
    match s.commands.cancel_payment(&meta, p.id, CancelReason::DebitError).await {
        Ok(_) => Err(ClickError::TransactionCancelled),
        Err(e) => match load(s, p.id).await {
            // A twin callback cancelled it first.
            Ok(Some(p)) if matches!(p.status, Status::Cancelled | Status::Refunded) => {
                Err(ClickError::TransactionCancelled)
            }
            Ok(Some(p)) if p.status == Status::Performed => Err(ClickError::AlreadyPaid),
            _ => {
                tracing::warn!(payment_id = %p.id, error = %e, "click: cancel failed");
                Err(ClickError::FailedToUpdateUser)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(fields: &[(&str, &str)], complete: bool) -> Callback {
        Callback { fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), complete }
    }

    #[test]
    fn the_specs_signature_vectors_hold() {
        let base = [
            ("click_trans_id", "12345"),
            ("service_id", "67890"),
            ("merchant_trans_id", "order-42"),
            ("amount", "1000.00"),
            ("sign_time", "2024-01-15 12:30:45"),
        ];
        let mut prepare = base.to_vec();
        prepare.push(("action", "0"));
        assert_eq!(callback(&prepare, false).expected_sign("SECRET"), "2a7301b4c1d31b5ca1dad8461dc2783c");
        let mut complete = base.to_vec();
        complete.retain(|(k, _)| *k != "sign_time");
        complete.extend([("action", "1"), ("merchant_prepare_id", "555"), ("sign_time", "2024-01-15 12:31:10")]);
        assert_eq!(callback(&complete, true).expected_sign("SECRET"), "806a5e96592960003d3c425f74be93a0");
    }

    #[test]
    fn amounts_are_read_as_sent_and_match_within_a_tiyin() {
        let m = |t| Money::from_tiyin(t).unwrap();
        assert_eq!(micro_sum("1000.00"), Some(1_000_000_000));
        assert_eq!(micro_sum("1000"), Some(1_000_000_000));
        assert_eq!(micro_sum("0.005"), Some(5_000));
        for bad in ["", ".5", "1,00", "-1", "1e3", "1.0000001", "１０"] {
            assert_eq!(micro_sum(bad), None, "{bad}");
        }
        assert!(amount_matches("1000.00", m(100_000)));
        assert!(amount_matches("1000", m(100_000)));
        assert!(amount_matches("1000.0000", m(100_000)));
        assert!(!amount_matches("1000.01", m(100_000)), "not one tiyin off");
        assert!(!amount_matches("999.995", m(100_000)));
        assert_eq!(top_up_amount("15.01"), Some(m(1_501)));
        assert_eq!(top_up_amount("15.005"), None, "no fractions of a tiyin");
        assert_eq!(top_up_amount("0.00"), None);
    }

    #[test]
    fn prepare_ids_stay_below_two_to_the_53() {
        for _ in 0..1_000 {
            let n = prepare_id(Uuid::new_v4());
            assert!((0..1 << 53).contains(&n));
        }
    }
}
