//! Users: who am I (`GET /v1/users/me`), a user (`GET /v1/users/{id}`, themselves or staff),
//! users by role (`GET /v1/users?role=courier&district=...`, staff); roles, which admins grant
//! and revoke (`POST /v1/users/{id}/roles`, `POST /v1/users/{id}/roles/{role}/revoke`). The
//! holder's next token carries a change of roles.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_domain::order::District;
use bozor_domain::user::Grant;
use bozor_domain::{DomainError, Plan, Role};
use serde::Deserialize;

use bozor_projections::users;
use uuid::Uuid;

use super::queries::{query, wait_for};
use super::{input, unavailable, AppState, NoFields};
use crate::actor::Actor;
use crate::authz::{self, STAFF};
use crate::errors::ApiError;
use crate::request::{path_id, respond};

/// Registers the user routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    // `/users/me` before `/users/{id}`: routes match in the order they are registered.
    cfg.route("/users/me", web::get().to(me))
        .route("/users/{id}", web::get().to(one))
        .route("/users", web::get().to(list))
        .route("/users/{id}/roles", web::post().to(grant))
        .route("/users/{id}/roles/{role}/revoke", web::post().to(revoke));
}

type Res = Result<HttpResponse, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
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

/// Grant a role (admins): `plan` for sellers, `district` for couriers.
#[utoipa::path(
    post,
    path = "/v1/users/{id}/roles",
    tag = "users",
    operation_id = "users_grant",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = GrantBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn grant(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
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

/// Revoke a role (admins).
#[utoipa::path(
    post,
    path = "/v1/users/{id}/roles/{role}/revoke",
    tag = "users",
    operation_id = "users_revoke",
    params(("id" = uuid::Uuid, Path), ("role" = String, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn revoke(
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct GetQuery {
    min_position: Option<i64>,
}

/// A user's profile from the read model; 404 until their registration is projected.
async fn profile(state: &AppState, req: &HttpRequest, id: Uuid) -> Res {
    let q: GetQuery = query(req)?;
    wait_for(state, "users", q.min_position).await?;
    let client = state.commands.store().pool().get().await.map_err(unavailable)?;
    match users::get(&client, id).await.map_err(unavailable)? {
        Some(p) => Ok(HttpResponse::Ok().json(p)),
        None => Err(ApiError::new("user_not_found", "no such user")),
    }
}

/// The signed-in user's profile.
#[utoipa::path(
    get,
    path = "/v1/users/me",
    tag = "users",
    operation_id = "users_me",
    responses((status = 200, description = "Success", body = bozor_projections::users::Profile), crate::openapi::Refusals),
)]
pub(crate) async fn me(s: web::Data<AppState>, r: HttpRequest, a: Actor) -> Res {
    profile(&s, &r, a.user.id).await
}

/// A user's profile (the user, or staff).
#[utoipa::path(
    get,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "users_one",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, description = "Success", body = bozor_projections::users::Profile), crate::openapi::Refusals),
)]
pub(crate) async fn one(s: web::Data<AppState>, r: HttpRequest, p: web::Path<String>, a: Actor) -> Res {
    let id = path_id(&p)?;
    authz::owner_or(&a, id, STAFF, "only the user and staff see a user")?;
    profile(&s, &r, id).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// buyer, seller, courier, support, admin or auditor (required unless `phone` is given).
    role: Option<String>,
    /// Couriers of this district (with `role=courier`).
    district: Option<String>,
    /// The one user who logs in with this number (`+998...`; spaces and dashes allowed):
    /// alone, without `role`, `district` or `cursor`.
    phone: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    limit: Option<i64>,
    min_position: Option<i64>,
}

/// Users by role (support finds the couriers of a district to assign), or by phone number: staff only.
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    operation_id = "users_list",
    params(ListQuery),
    responses((status = 200, description = "Success", body = crate::openapi::Page<bozor_projections::users::Profile>), crate::openapi::Refusals),
)]
pub(crate) async fn list(s: web::Data<AppState>, r: HttpRequest, a: Actor) -> Res {
    authz::any_of(&a, STAFF, "only staff list users")?;
    let q: ListQuery = query(&r)?;
    let bad = |what: &str| ApiError::new("invalid_query", what.to_owned());
    if let Some(phone) = &q.phone {
        if q.role.is_some() || q.district.is_some() || q.cursor.is_some() {
            return Err(bad("phone goes alone: without role, district or cursor"));
        }
        let phone = bozor_domain::user::Phone::parse(phone).map_err(|e| bad(&format!("phone: {e}")))?;
        wait_for(&s, "users", q.min_position).await?;
        let client = s.commands.store().pool().get().await.map_err(unavailable)?;
        let found = users::by_phone(&client, phone.as_str()).await.map_err(unavailable)?;
        let items: Vec<_> = found.into_iter().collect();
        return Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": null })));
    }
    let Some(role_name) = q.role.clone() else {
        return Err(bad("give role (or phone)"));
    };
    if role(&role_name).is_err() && role_name != "buyer" {
        return Err(bad("role is buyer, seller, courier, support, admin or auditor"));
    }
    if q.district.as_deref().is_some_and(|d| District::parse(d).is_none()) {
        return Err(bad("not a district couriers serve"));
    }
    let limit = q.limit.unwrap_or(20);
    if !(1..=users::PAGE_LIMIT_MAX).contains(&limit) {
        return Err(bad("limit is 1 to 100"));
    }
    wait_for(&s, "users", q.min_position).await?;
    let client = s.commands.store().pool().get().await.map_err(unavailable)?;
    let (items, next) =
        users::list(&client, &role_name, q.district.as_deref(), q.cursor, limit).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next })))
}
