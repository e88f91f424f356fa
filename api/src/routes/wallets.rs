//! Wallet commands: deposit (an admin's manual credit; providers pay in through
//! `routes::payments`), withdraw to a card within the configured limits, and completing or
//! failing a withdrawal. Wallets are addressed by their owner's user id.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_domain::flows::{Card, WithdrawalLimits};
use bozor_domain::wallet::Provider;
use bozor_domain::{DomainError, Money};
use serde::Deserialize;
use uuid::Uuid;

use super::{input, money, AppState, NoFields};
use crate::actor::Actor;
use crate::errors::ApiError;
use crate::request::{path_id, respond};

/// Registers the wallet routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/wallets/{user_id}/deposit", web::post().to(deposit))
        .route("/wallets/{user_id}/withdrawals", web::post().to(withdraw))
        .route("/wallets/{user_id}/withdrawals/{withdrawal_id}/complete", web::post().to(complete))
        .route("/wallets/{user_id}/withdrawals/{withdrawal_id}/fail", web::post().to(fail));
}

type Res = Result<HttpResponse, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DepositBody {
    /// Tiyin.
    amount: i64,
    /// The payment's reference; a repeat with the same reference credits nothing.
    provider_tx_id: String,
}

/// Credit a wallet by hand (admins); a repeated `provider_tx_id` credits nothing.
#[utoipa::path(
    post,
    path = "/v1/wallets/{user_id}/deposit",
    tag = "wallets",
    operation_id = "wallets_deposit",
    params(("user_id" = uuid::Uuid, Path)),
    request_body(content = DepositBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn deposit(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let user = path_id(&p)?;
    let input = input::<DepositBody>(&s, &r, b, &a, "deposit").await?;
    let amount = money("amount", input.body.amount)?;
    let outcome = s.commands.deposit(&input.meta, user, amount, Provider::Manual, input.body.provider_tx_id).await?;
    Ok(respond(outcome, false))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WithdrawBody {
    id: Option<Uuid>,
    /// Tiyin.
    amount: i64,
    /// The card's 16 digits: only its mask (first six, last four) is kept.
    card_number: Option<String>,
    /// The name on the card; required with `card_number`.
    card_holder: Option<String>,
    /// The older form: the card's last four digits alone (no holder kept).
    card_last4: Option<String>,
}

impl WithdrawBody {
    fn card(&self) -> Result<Card, ApiError> {
        let card = match (&self.card_number, &self.card_holder, &self.card_last4) {
            (Some(number), Some(holder), None) => Card::parse(number, holder),
            (None, None, Some(last4)) => Card::last4(last4),
            (Some(_), None, None) => {
                Err(DomainError::Invalid { field: "card_holder", reason: "required with card_number" })
            }
            _ => Err(DomainError::Invalid { field: "card_number", reason: "send card_number and card_holder" }),
        };
        card.map_err(ApiError::from)
    }
}

/// Ask to withdraw to a card (the wallet's owner): the amount is held.
///
/// Only the masked card and the holder's name are kept.
#[utoipa::path(
    post,
    path = "/v1/wallets/{user_id}/withdrawals",
    tag = "wallets",
    operation_id = "wallets_withdraw",
    params(("user_id" = uuid::Uuid, Path)),
    request_body(content = WithdrawBody, content_type = "application/json"),
    responses((status = 201, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn withdraw(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let user = path_id(&p)?;
    let input = input::<WithdrawBody>(&s, &r, b, &a, "request_withdrawal").await?;
    let amount = money("amount", input.body.amount)?;
    let id = crate::request::new_id(input.body.id)?;
    let card = input.body.card()?;
    let p = &s.payments;
    let limits = WithdrawalLimits {
        min: Money::from_tiyin(p.withdraw_min).expect("checked at start"),
        per_day_max: Money::from_tiyin(p.withdraw_daily_max).expect("checked at start"),
    };
    let outcome = s.commands.request_withdrawal(&input.meta, user, id, amount, card, limits).await?;
    Ok(respond(outcome, true))
}

async fn finish(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<(String, String)>,
    b: web::Payload,
    a: Actor,
    succeeded: bool,
) -> Res {
    let (user, withdrawal) = (path_id(&p.0)?, path_id(&p.1)?);
    let name = if succeeded { "complete_withdrawal" } else { "fail_withdrawal" };
    let input = input::<NoFields>(&s, &r, b, &a, name).await?;
    Ok(respond(s.commands.finish_withdrawal(&input.meta, user, withdrawal, succeeded).await?, false))
}

/// Mark a withdrawal paid out (admins): the held money leaves.
#[utoipa::path(
    post,
    path = "/v1/wallets/{user_id}/withdrawals/{withdrawal_id}/complete",
    tag = "wallets",
    operation_id = "wallets_complete",
    params(("user_id" = uuid::Uuid, Path), ("withdrawal_id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn complete(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<(String, String)>,
    b: web::Payload,
    a: Actor,
) -> Res {
    finish(s, r, p, b, a, true).await
}

/// Mark a withdrawal failed (admins): the held money goes back.
#[utoipa::path(
    post,
    path = "/v1/wallets/{user_id}/withdrawals/{withdrawal_id}/fail",
    tag = "wallets",
    operation_id = "wallets_fail",
    params(("user_id" = uuid::Uuid, Path), ("withdrawal_id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn fail(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<(String, String)>,
    b: web::Payload,
    a: Actor,
) -> Res {
    finish(s, r, p, b, a, false).await
}
