//! Wallet commands: deposit (admin's manual credit until the providers land), withdraw, and
//! completing or failing a withdrawal. Wallets are addressed by their owner's user id.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_domain::wallet::Provider;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DepositBody {
    /// Tiyin.
    amount: i64,
    /// The payment's reference; a repeat with the same reference credits nothing.
    provider_tx_id: String,
}

async fn deposit(s: web::Data<AppState>, r: HttpRequest, p: web::Path<String>, b: web::Payload, a: Actor) -> Res {
    let user = path_id(&p)?;
    let input = input::<DepositBody>(&s, &r, b, &a, "deposit").await?;
    let amount = money("amount", input.body.amount)?;
    let outcome = s.commands.deposit(&input.meta, user, amount, Provider::Manual, input.body.provider_tx_id).await?;
    Ok(respond(outcome, false))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawBody {
    id: Option<Uuid>,
    /// Tiyin.
    amount: i64,
    card_last4: String,
}

async fn withdraw(s: web::Data<AppState>, r: HttpRequest, p: web::Path<String>, b: web::Payload, a: Actor) -> Res {
    let user = path_id(&p)?;
    let input = input::<WithdrawBody>(&s, &r, b, &a, "request_withdrawal").await?;
    let amount = money("amount", input.body.amount)?;
    let id = crate::request::new_id(input.body.id)?;
    let outcome = s.commands.request_withdrawal(&input.meta, user, id, amount, input.body.card_last4).await?;
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

async fn complete(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<(String, String)>,
    b: web::Payload,
    a: Actor,
) -> Res {
    finish(s, r, p, b, a, true).await
}

async fn fail(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<(String, String)>,
    b: web::Payload,
    a: Actor,
) -> Res {
    finish(s, r, p, b, a, false).await
}
