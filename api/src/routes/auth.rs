//! Login by phone and one-time code, token refresh and logout. Every call is limited per IP;
//! code requests also per phone. Answers carry `Cache-Control: no-store`: they hold secrets.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_domain::user::{Phone, User};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::auth::{otp, refresh, Auth, ACCESS_TTL, REFRESH_TTL};
use crate::errors::ApiError;
use crate::request::json_body;

/// Largest body an auth call takes: a phone and a code, or a token.
const AUTH_BODY_BYTES_MAX: usize = 1_024;

/// Registers the auth routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/otp/request", web::post().to(request_code))
        .route("/auth/otp/verify", web::post().to(verify_code))
        .route("/auth/refresh", web::post().to(refresh_tokens))
        .route("/auth/logout", web::post().to(logout));
}

type Res = Result<HttpResponse, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    phone: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    phone: String,
    code: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(actix_web::http::header::CACHE_CONTROL, actix_web::http::header::HeaderValue::from_static("no-store"));
    res
}

/// Reads an auth call's body after its IP's rate limit.
async fn body<B: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<B, ApiError> {
    Auth::limit(&state.auth.auth_per_ip, &state.auth.client_ip(req))?;
    json_body(req, payload, AUTH_BODY_BYTES_MAX).await
}

fn phone(raw: &str) -> Result<Phone, ApiError> {
    Phone::parse(raw).map_err(ApiError::from)
}

/// Send a one-time login code by SMS to a phone number.
#[utoipa::path(
    post,
    path = "/v1/auth/otp/request",
    tag = "auth",
    operation_id = "auth_request_code",
    request_body(content = PhoneBody, content_type = "application/json"),
    responses((status = 202, description = "Success", body = crate::openapi::CodeSent), crate::openapi::Refusals),
    security(()),
)]
pub(crate) async fn request_code(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Res {
    let b: PhoneBody = body(&state, &req, payload).await?;
    let phone = phone(&b.phone)?;
    let ip = state.auth.client_ip(&req);
    let issued = otp::request(state.commands.store().pool(), &state.auth, &phone, &ip, Utc::now()).await?;
    Ok(no_store(HttpResponse::Accepted().json(issued)))
}

/// The tokens and the user they speak for; `position`, when this call registered the user, is
/// the `min_position` that makes `GET /v1/users/me` wait for the registration.
fn session(state: &AppState, user: &User, refresh_token: String, position: Option<i64>) -> HttpResponse {
    no_store(HttpResponse::Ok().json(json!({
        "access_token": state.auth.access_token(user, Utc::now()),
        "token_type": "Bearer",
        "expires_in": ACCESS_TTL.as_secs(),
        "refresh_token": refresh_token,
        "refresh_expires_in": REFRESH_TTL.as_secs(),
        "user": { "id": user.id, "phone": user.phone, "roles": user.role_list(), "plan": user.plan(),
                  "district": user.district() },
        "position": position,
    })))
}

async fn load_user(state: &AppState, id: uuid::Uuid) -> Result<User, ApiError> {
    state.commands.user(id).await?.ok_or_else(|| ApiError::new("user_not_found", "no such user"))
}

/// Log in with the code: access and refresh tokens (the user is registered on first login).
#[utoipa::path(
    post,
    path = "/v1/auth/otp/verify",
    tag = "auth",
    operation_id = "auth_verify_code",
    request_body(content = VerifyBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::Tokens), crate::openapi::Refusals),
    security(()),
)]
pub(crate) async fn verify_code(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Res {
    let b: VerifyBody = body(&state, &req, payload).await?;
    let phone = phone(&b.phone)?;
    if b.code.len() != 6 || !b.code.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bozor_domain::DomainError::Invalid { field: "code", reason: "six digits" }.into());
    }
    let pool = state.commands.store().pool();
    otp::verify(pool, &state.auth, &phone, &b.code, Utc::now()).await?;
    let (user_id, position) = state.commands.user_for_phone(&phone, Utc::now()).await?;
    let user = load_user(&state, user_id).await?;
    let token = refresh::start(pool, user.id, Utc::now()).await?;
    tracing::info!(user_id = %user.id, "logged in");
    Ok(session(&state, &user, token, position))
}

fn refresh_token(b: &RefreshBody) -> Result<&str, ApiError> {
    let t = b.refresh_token.as_str();
    if t.is_empty() || t.len() > refresh::TOKEN_CHARS_MAX {
        return Err(ApiError::new("invalid_refresh_token", "the refresh token is malformed"));
    }
    Ok(t)
}

/// Trade a refresh token for new tokens (each refresh token works once).
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    operation_id = "auth_refresh_tokens",
    request_body(content = RefreshBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::Tokens), crate::openapi::Refusals),
    security(()),
)]
pub(crate) async fn refresh_tokens(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Res {
    let b: RefreshBody = body(&state, &req, payload).await?;
    let (user_id, next) = refresh::rotate(state.commands.store().pool(), refresh_token(&b)?, Utc::now()).await?;
    // Roles are read again from the user stream: a refresh picks up grants and revocations.
    let user = load_user(&state, user_id).await?;
    Ok(session(&state, &user, next, None))
}

/// Revoke a refresh token's family.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    operation_id = "auth_logout",
    request_body(content = RefreshBody, content_type = "application/json"),
    responses((status = 200, description = "The refresh token's family is revoked"), crate::openapi::Refusals),
    security(()),
)]
pub(crate) async fn logout(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Res {
    let b: RefreshBody = body(&state, &req, payload).await?;
    refresh::revoke(state.commands.store().pool(), refresh_token(&b)?, Utc::now()).await?;
    Ok(no_store(HttpResponse::NoContent().finish()))
}
