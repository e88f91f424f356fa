//! A game account's login and password: set by the seller (sealed before anything is
//! written), revealed to the buyer of a delivered order or an admin (each read recorded as an
//! event first), erased by the seller or an admin (crypto-shredding).

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_commands::vault::Credentials;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{input, AppState, NoFields};
use crate::actor::Actor;
use crate::errors::ApiError;
use crate::request::{path_id, respond};

/// Registers the credentials routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/listings/{id}/credentials", web::post().to(set))
        .route("/listings/{id}/credentials/reveal", web::post().to(reveal))
        .route("/listings/{id}/credentials/erase", web::post().to(erase));
}

type Res = Result<HttpResponse, ApiError>;

/// Store a game account's login and password, encrypted (its seller).
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/credentials",
    tag = "listings",
    operation_id = "credentials_set",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = Credentials, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn set(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<Credentials>(&s, &r, b, &a, "set_credentials").await?;
    Ok(respond(s.commands.set_credentials(&input.meta, &s.vault, id, &input.body).await?, false))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RevealBody {
    /// The buyer's order of this listing (admins may leave it out).
    order_id: Option<Uuid>,
}

/// Reveal a game account's credentials: the buyer of a delivered order, or admins.
///
/// Every reveal is recorded.
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/credentials/reveal",
    tag = "listings",
    operation_id = "credentials_reveal",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = RevealBody, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn reveal(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<RevealBody>(&s, &r, b, &a, "reveal_credentials").await?;
    let (outcome, credentials) = s.commands.reveal_credentials(&input.meta, &s.vault, id, input.body.order_id).await?;
    let mut res = HttpResponse::Ok();
    res.insert_header(("Cache-Control", "no-store"));
    Ok(res.json(json!({
        "login": credentials.login,
        "password": credentials.password,
        "listing_id": id,
        "position": outcome.position,
    })))
}

/// Erase a game account's credentials for good (its seller, or admins).
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/credentials/erase",
    tag = "listings",
    operation_id = "credentials_erase",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn erase(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<NoFields>(&s, &r, b, &a, "erase_credentials").await?;
    Ok(respond(s.commands.erase_credentials(&input.meta, &s.vault, id).await?, false))
}
