//! Roles: admins grant and revoke them (`POST /v1/users/{id}/roles`,
//! `POST /v1/users/{id}/roles/{role}/revoke`). The holder's next token carries the change.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_domain::order::District;
use bozor_domain::user::Grant;
use bozor_domain::{DomainError, Plan, Role};
use serde::Deserialize;

use super::{input, AppState, NoFields};
use crate::actor::Actor;
use crate::errors::ApiError;
use crate::request::{path_id, respond};

/// Registers the user routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users/{id}/roles", web::post().to(grant))
        .route("/users/{id}/roles/{role}/revoke", web::post().to(revoke));
}

type Res = Result<HttpResponse, ApiError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    role: String,
    plan: Option<String>,
    district: Option<String>,
}

fn role(raw: &str) -> Result<Role, ApiError> {
    Role::parse(raw).filter(|r| *r != Role::System).ok_or_else(|| {
        DomainError::Invalid { field: "role", reason: "seller, courier, support, admin or auditor" }.into()
    })
}

async fn grant(s: web::Data<AppState>, r: HttpRequest, p: web::Path<String>, b: web::Payload, a: Actor) -> Res {
    let user = path_id(&p)?;
    let input = input::<GrantBody>(&s, &r, b, &a, "grant_role").await?;
    let body = input.body;
    let plan = body
        .plan
        .map(|p| Plan::parse(&p).ok_or(DomainError::Invalid { field: "plan", reason: "free, premium or pro" }))
        .transpose()?;
    let district = body
        .district
        .map(|d| District::parse(&d).ok_or(DomainError::Invalid { field: "district", reason: "not a district" }))
        .transpose()?;
    let outcome = s.commands.grant_role(&input.meta, user, role(&body.role)?, Grant { plan, district }).await?;
    Ok(respond(outcome, false))
}

async fn revoke(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<(String, String)>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let user = path_id(&p.0)?;
    let role = role(&p.1)?;
    let input = input::<NoFields>(&s, &r, b, &a, "revoke_role").await?;
    Ok(respond(s.commands.revoke_role(&input.meta, user, role).await?, false))
}
