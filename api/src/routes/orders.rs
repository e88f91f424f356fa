//! Order commands: place, pay, accept, assign courier, pick up, deliver, confirm, cancel,
//! return, refund, dispute, resolve.

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_domain::escrow::Resolution;
use bozor_domain::flows::{DeliveryRequest, LineRequest};
use bozor_domain::order::{self, District};
use bozor_domain::DomainError;
use serde::Deserialize;
use uuid::Uuid;

use super::{input, money, AppState, NoFields, ReasonBody};
use crate::actor::Actor;
use crate::errors::ApiError;
use crate::request::{path_id, respond};

/// Registers the order routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::post().to(place))
        .route("/orders/{id}/pay", web::post().to(pay))
        .route("/orders/{id}/accept", web::post().to(accept))
        .route("/orders/{id}/assign-courier", web::post().to(assign_courier))
        .route("/orders/{id}/pick-up", web::post().to(pick_up))
        .route("/orders/{id}/deliver", web::post().to(deliver))
        .route("/orders/{id}/confirm", web::post().to(confirm))
        .route("/orders/{id}/cancel", web::post().to(cancel))
        .route("/orders/{id}/return", web::post().to(request_return))
        .route("/orders/{id}/refund", web::post().to(refund))
        .route("/orders/{id}/dispute", web::post().to(dispute))
        .route("/orders/{id}/resolve", web::post().to(resolve));
}

type Res = Result<HttpResponse, ApiError>;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemDto {
    listing_id: Uuid,
    sku: Option<String>,
    quantity: u32,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DeliveryDto {
    district: String,
    address: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PlaceBody {
    id: Option<Uuid>,
    items: Vec<ItemDto>,
    delivery: Option<DeliveryDto>,
}

/// Place an order for items of one seller (the buyer); stock is reserved.
///
/// Goods need a delivery district; game accounts none. Unpaid orders expire (BOZOR_ORDER_UNPAID_TTL).
#[utoipa::path(
    post,
    path = "/v1/orders",
    tag = "orders",
    operation_id = "orders_place",
    request_body(content = PlaceBody, content_type = "application/json"),
    responses((status = 201, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn place(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload, actor: Actor) -> Res {
    let input = input::<PlaceBody>(&state, &req, payload, &actor, "place_order").await?;
    let b = input.body;
    if b.items.len() > order::ORDER_LINES_MAX {
        return Err(DomainError::Invalid { field: "items", reason: "an order has 1 to 50 items" }.into());
    }
    let lines = b
        .items
        .into_iter()
        .map(|i| LineRequest { listing_id: i.listing_id, sku: i.sku, quantity: i.quantity })
        .collect();
    let delivery = match b.delivery {
        None => None,
        Some(d) => Some(DeliveryRequest { district: district(&d.district)?, address: d.address }),
    };
    let id = crate::request::new_id(b.id)?;
    Ok(respond(state.commands.place_order(&input.meta, id, lines, delivery).await?, true))
}

/// Reads an order id and a body-less command's input.
async fn plain(
    state: &AppState,
    req: &HttpRequest,
    path: &str,
    payload: web::Payload,
    actor: &Actor,
    name: &'static str,
) -> Result<(Uuid, bozor_commands::CommandMeta), ApiError> {
    let id = path_id(path)?;
    let input = input::<NoFields>(state, req, payload, actor, name).await?;
    Ok((id, input.meta))
}

/// Pay an order from the buyer's wallet: opens and funds its escrow.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/pay",
    tag = "orders",
    operation_id = "orders_pay",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn pay(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let (id, meta) = plain(&s, &r, &p, b, &a, "pay_order").await?;
    Ok(respond(s.commands.pay_order(&meta, id).await?, false))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    /// Where the courier collects the goods.
    pickup: DeliveryDto,
}

/// Accept a paid order (its seller), with where the courier collects.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/accept",
    tag = "orders",
    operation_id = "orders_accept",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = AcceptBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn accept(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<AcceptBody>(&s, &r, b, &a, "accept_order").await?;
    let pickup = order::Pickup { district: district(&input.body.pickup.district)?, address: input.body.pickup.address };
    Ok(respond(s.commands.order_step(&input.meta, id, order::Command::Accept { pickup }).await?, false))
}

/// A district couriers serve, by its API name. Fails with `invalid_field`.
fn district(name: &str) -> Result<District, ApiError> {
    District::parse(name)
        .ok_or_else(|| DomainError::Invalid { field: "district", reason: "not a district couriers serve" }.into())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    /// Defaults to the calling courier.
    courier_id: Option<Uuid>,
}

/// A courier of the order's district takes it, or staff assign one.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/assign-courier",
    tag = "orders",
    operation_id = "orders_assign_courier",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = AssignBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn assign_courier(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<AssignBody>(&s, &r, b, &a, "assign_courier").await?;
    let courier_id = input.body.courier_id.unwrap_or(a.user.id);
    Ok(respond(s.commands.assign_courier(&input.meta, id, courier_id).await?, false))
}

/// The courier picked the order up.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/pick-up",
    tag = "orders",
    operation_id = "orders_pick_up",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn pick_up(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let (id, meta) = plain(&s, &r, &p, b, &a, "pick_up_order").await?;
    Ok(respond(s.commands.order_step(&meta, id, order::Command::PickUp).await?, false))
}

/// Delivered (the courier; the seller for a game account).
///
/// The escrow is released automatically unless the buyer confirms or disputes first.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/deliver",
    tag = "orders",
    operation_id = "orders_deliver",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn deliver(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let (id, meta) = plain(&s, &r, &p, b, &a, "deliver_order").await?;
    Ok(respond(s.commands.deliver_order(&meta, id).await?, false))
}

/// The buyer confirms: the escrow pays the seller, less the commission of their plan.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/confirm",
    tag = "orders",
    operation_id = "orders_confirm",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::NoFields, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn confirm(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let (id, meta) = plain(&s, &r, &p, b, &a, "confirm_order").await?;
    Ok(respond(s.commands.complete_order(&meta, id, false).await?, false))
}

/// Cancel an order with a reason, while its status allows: reserved stock and paid money go back.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/cancel",
    tag = "orders",
    operation_id = "orders_cancel",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::ReasonBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn cancel(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<ReasonBody>(&s, &r, b, &a, "cancel_order").await?;
    Ok(respond(s.commands.cancel_order(&input.meta, id, input.body.reason).await?, false))
}

/// The buyer asks to return a delivered order, with a reason.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/return",
    tag = "orders",
    operation_id = "orders_request_return",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::ReasonBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn request_return(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<ReasonBody>(&s, &r, b, &a, "request_return").await?;
    Ok(respond(s.commands.request_return(&input.meta, id, input.body.reason).await?, false))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundBody {
    /// Tiyin of the goods amount back to the buyer; default all of it.
    amount: Option<i64>,
}

/// Refund an order in whole or in part from its escrow (its seller, or admins).
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/refund",
    tag = "orders",
    operation_id = "orders_refund",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = RefundBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn refund(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<RefundBody>(&s, &r, b, &a, "refund_order").await?;
    let amount = input.body.amount.map(|t| money("amount", t)).transpose()?;
    Ok(respond(s.commands.refund_order(&input.meta, id, amount).await?, false))
}

/// Open a dispute on an order, with a reason: the escrow waits for support.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/dispute",
    tag = "orders",
    operation_id = "orders_dispute",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = super::ReasonBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn dispute(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<ReasonBody>(&s, &r, b, &a, "open_dispute").await?;
    Ok(respond(s.commands.open_dispute(&input.meta, id, input.body.reason).await?, false))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum OutcomeDto {
    Release,
    Refund,
    Split,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    outcome: OutcomeDto,
    /// For `split`: tiyin of the goods amount back to the buyer.
    to_buyer: Option<i64>,
}

/// Resolve a dispute (admins): release to the seller, refund the buyer, or split.
#[utoipa::path(
    post,
    path = "/v1/orders/{id}/resolve",
    tag = "orders",
    operation_id = "orders_resolve",
    params(("id" = uuid::Uuid, Path)),
    request_body(content = ResolveBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CommandOutcome), crate::openapi::Refusals),
)]
pub(crate) async fn resolve(
    s: web::Data<AppState>,
    r: HttpRequest,
    p: web::Path<String>,
    b: web::Payload,
    a: Actor,
) -> Res {
    let id = path_id(&p)?;
    let input = input::<ResolveBody>(&s, &r, b, &a, "resolve_dispute").await?;
    let resolution = match (input.body.outcome, input.body.to_buyer) {
        (OutcomeDto::Release, None) => Resolution::Release,
        (OutcomeDto::Refund, None) => Resolution::Refund,
        (OutcomeDto::Split, Some(t)) => Resolution::Split { to_buyer: money("to_buyer", t)? },
        _ => return Err(DomainError::Invalid { field: "to_buyer", reason: "required for split only" }.into()),
    };
    Ok(respond(s.commands.resolve_dispute(&input.meta, id, resolution).await?, false))
}
