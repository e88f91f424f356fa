//! Who is calling: the holder of a valid access token (`Authorization: Bearer <JWT>`). This
//! extractor is the one place requests are authenticated; what each route then allows is in
//! `authz`.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use bozor_domain::order::District;
use chrono::Utc;

use crate::auth::jwt::TokenError;
use crate::errors::ApiError;
use crate::routes::AppState;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Id, roles and plan, as decisions see them.
    pub user: bozor_domain::Actor,
    /// A courier's district.
    pub district: Option<District>,
}

/// The caller if they sent a token; `None` for anonymous reads of public resources. A token
/// that is sent but invalid is still refused, never taken as anonymous.
#[derive(Debug, Clone)]
pub struct MaybeActor(pub Option<Actor>);

fn authenticate(req: &HttpRequest) -> Result<Option<Actor>, ApiError> {
    let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) else { return Ok(None) };
    let bad = || ApiError::new("invalid_token", "send Authorization: Bearer <access token>");
    let value = header.to_str().map_err(|_| bad())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(bad());
    }
    let state = req.app_data::<web::Data<AppState>>().expect("AppState is registered on the app");
    let claims = state.auth.keys.verify(token.trim(), Utc::now().timestamp()).map_err(|e| match e {
        TokenError::Expired => ApiError::new("token_expired", "the access token has expired; refresh it"),
        other => ApiError::new("invalid_token", other.to_string()),
    })?;
    let user = bozor_domain::Actor { id: claims.sub, roles: claims.roles, plan: claims.plan };
    Ok(Some(Actor { user, district: claims.district }))
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<Result<Actor, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).and_then(|a| {
            a.ok_or_else(|| ApiError::new("unauthenticated", "send Authorization: Bearer <access token>"))
        }))
    }
}

impl FromRequest for MaybeActor {
    type Error = ApiError;
    type Future = Ready<Result<MaybeActor, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req).map(MaybeActor))
    }
}
