//! Listing commands: create, update, submit, approve, reject, block, archive, delete, promote.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_domain::listing::{self, Content, ContentPatch, Details, PromotionTier, Variant};
use serde::Deserialize;
use uuid::Uuid;

use super::{input, money, AppState, NoFields, ReasonBody};
use crate::actor::Actor;
use crate::errors::ApiError;
use crate::request::{path_id, respond};

/// Registers the listing routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/listings", web::post().to(create))
        .route("/listings/{id}/update", web::post().to(update))
        .route("/listings/{id}/submit", web::post().to(submit))
        .route("/listings/{id}/approve", web::post().to(approve))
        .route("/listings/{id}/reject", web::post().to(reject))
        .route("/listings/{id}/block", web::post().to(block))
        .route("/listings/{id}/archive", web::post().to(archive))
        .route("/listings/{id}/delete", web::post().to(delete))
        .route("/listings/{id}/promote", web::post().to(promote));
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VariantDto {
    sku: String,
    #[serde(default)]
    label: String,
    stock: u32,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum DetailsDto {
    Product { variants: Vec<VariantDto> },
    Classified { contact_phone: Option<String> },
    GameAccount { game: String, level: u32, rank: Option<String> },
}

fn variants(v: Vec<VariantDto>) -> Vec<Variant> {
    v.into_iter().map(|v| Variant { sku: v.sku, label: v.label, stock: v.stock }).collect()
}

impl From<DetailsDto> for Details {
    fn from(d: DetailsDto) -> Details {
        match d {
            DetailsDto::Product { variants: v } => Details::Product { variants: variants(v) },
            DetailsDto::Classified { contact_phone } => Details::Classified { contact_phone },
            DetailsDto::GameAccount { game, level, rank } => Details::GameAccount { game, level, rank },
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// Optional client-chosen id (with Idempotency-Key, retries are safe either way).
    id: Option<Uuid>,
    title: String,
    #[serde(default)]
    description: String,
    category: String,
    /// Tiyin.
    price: i64,
    #[serde(default)]
    images: Vec<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    details: DetailsDto,
}

/// Create a listing as a draft (the seller).
///
/// `details.kind` is `product` (with variants and stock), `classified` or `game_account`; price in tiyin.
#[utoipa::path(
    post,
    path = "/v1/listings",
    tag = "listings",
    operation_id = "listings_create",
    request_body(content = CreateBody, content_type = "application/json"),
    responses((status = 201, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    let input = input::<CreateBody>(&state, &req, payload, &actor, "create_listing").await?;
    let b = input.body;
    let price = money("price", b.price)?;
    let content = Content {
        title: b.title,
        description: b.description,
        category: b.category,
        images: b.images,
        attributes: b.attributes,
    };
    let id = crate::request::new_id(b.id)?;
    let outcome = state.commands.create_listing(&input.meta, id, b.details.into(), content, price).await?;
    Ok(respond(outcome, true))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    title: Option<String>,
    description: Option<String>,
    category: Option<String>,
    images: Option<Vec<String>>,
    attributes: Option<BTreeMap<String, String>>,
    variants: Option<Vec<VariantDto>>,
    price: Option<i64>,
}

/// Edit a listing's content and/or price (its seller).
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/update",
    tag = "listings",
    operation_id = "listings_update",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = UpdateBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let input = input::<UpdateBody>(&state, &req, payload, &actor, "update_listing").await?;
    let b = input.body;
    let price = b.price.map(|p| money("price", p)).transpose()?;
    let patch = ContentPatch {
        title: b.title,
        description: b.description,
        category: b.category,
        images: b.images,
        attributes: b.attributes,
        variants: b.variants.map(variants),
    };
    Ok(respond(state.commands.update_listing(&input.meta, id, patch, price).await?, false))
}

/// A listing command with no body.
async fn simple(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    actor: Actor,
    name: &'static str,
    command: listing::Command,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let input = input::<NoFields>(&state, &req, payload, &actor, name).await?;
    Ok(respond(state.commands.listing_command(&input.meta, id, command).await?, false))
}

/// Submit a draft for moderation (its seller).
///
/// Auto-approved after 48 hours if no one moderates it.
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/submit",
    tag = "listings",
    operation_id = "listings_submit",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn submit(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Result<HttpResponse, ApiError> {
    simple(s, r, p, b, a, "submit_listing", listing::Command::Submit).await
}

/// Approve a pending listing (support, admins): it becomes active and public.
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/approve",
    tag = "listings",
    operation_id = "listings_approve",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn approve(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Result<HttpResponse, ApiError> {
    simple(s, r, p, b, a, "approve_listing", listing::Command::Approve).await
}

/// Archive a listing (its seller): it leaves the public list.
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/archive",
    tag = "listings",
    operation_id = "listings_archive",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn archive(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Result<HttpResponse, ApiError> {
    simple(s, r, p, b, a, "archive_listing", listing::Command::Archive).await
}

/// Delete a listing (its seller, or admins).
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/delete",
    tag = "listings",
    operation_id = "listings_delete",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn delete(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Result<HttpResponse, ApiError> {
    simple(s, r, p, b, a, "delete_listing", listing::Command::Delete).await
}

/// A listing command whose body is a reason.
async fn with_reason(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    actor: Actor,
    name: &'static str,
    command: fn(String) -> listing::Command,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let input = input::<ReasonBody>(&state, &req, payload, &actor, name).await?;
    Ok(respond(state.commands.listing_command(&input.meta, id, command(input.body.reason)).await?, false))
}

/// Reject a pending listing with a reason (support, admins).
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/reject",
    tag = "listings",
    operation_id = "listings_reject",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::ReasonBody, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn reject(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Result<HttpResponse, ApiError> {
    with_reason(s, r, p, b, a, "reject_listing", |reason| listing::Command::Reject { reason }).await
}

/// Block a listing with a reason (admins).
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/block",
    tag = "listings",
    operation_id = "listings_block",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::ReasonBody, content_type = "application/json"),
    responses((status = 200, description = "Success"), crate::openapi::Refusals),
)]
pub(crate) async fn block(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Result<HttpResponse, ApiError> {
    with_reason(s, r, p, b, a, "block_listing", |reason| listing::Command::Block { reason }).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    tier: PromotionTierDto,
    days: u32,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum PromotionTierDto {
    Top,
    Vip,
}

/// Promote an active listing (its seller), paid from the seller's wallet.
#[utoipa::path(
    post,
    path = "/v1/listings/{id}/promote",
    tag = "listings",
    operation_id = "listings_promote",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = PromoteBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn promote(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    actor: Actor,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let input = input::<PromoteBody>(&state, &req, payload, &actor, "promote_listing").await?;
    let tier = match input.body.tier {
        PromotionTierDto::Top => PromotionTier::Top,
        PromotionTierDto::Vip => PromotionTier::Vip,
    };
    Ok(respond(state.commands.promote_listing(&input.meta, id, tier, input.body.days).await?, false))
}
