//! Queries, answered from read models. `min_position` (from a command's response) makes a query
//! wait, a bounded time, until its projection has applied that command: read-your-writes.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use bozor_projections::listings::{self, Cursor, Filter, Sort, PAGE_LIMIT_DEFAULT};
use bozor_projections::orders::{self, Scope};
use bozor_projections::runtime::reached;
use bozor_projections::wallets;
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::{unavailable, AppState};
use crate::actor::{Actor, MaybeActor};
use crate::authz::{self, AUDIT_READERS, MONEY_READERS, STAFF};
use crate::errors::ApiError;
use crate::request::path_id;

/// Queries of one process that may wait for `min_position` at once; more answer 503 with
/// Retry-After rather than pile up.
pub const MIN_POSITION_WAITERS_MAX: usize = 256;

/// Longest a query waits for `min_position`.
pub const MIN_POSITION_WAIT_MAX: Duration = Duration::from_secs(2);
/// A waiting query looks again after 5 ms, then twice as long each time, up to 100 ms: quick
/// for the usual wait of a few milliseconds, cheap for many long ones.
const MIN_POSITION_POLL: Duration = Duration::from_millis(5);
const MIN_POSITION_POLL_MAX: Duration = Duration::from_millis(100);

/// Registers the query routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/listings", web::get().to(list_listings))
        .route("/listings/{id}", web::get().to(get_listing))
        .route("/orders", web::get().to(list_orders))
        .route("/orders/{id}", web::get().to(get_order))
        .route("/wallets/{user_id}", web::get().to(get_wallet))
        .route("/wallets/{user_id}/ledger", web::get().to(get_ledger))
        .route("/wallets/{user_id}/withdrawals", web::get().to(list_withdrawals))
        .route("/withdrawals", web::get().to(list_all_withdrawals))
        .route("/platform/accounts", web::get().to(platform_accounts))
        .route("/sellers/{id}/stats", web::get().to(seller_stats));
}

type Res = Result<HttpResponse, ApiError>;

pub(crate) async fn client(state: &AppState) -> Result<deadpool_postgres::Client, ApiError> {
    state.commands.store().pool().get().await.map_err(unavailable)
}

/// Waits until `projection` has applied the command at `position`, or answers 409 with where it
/// is. Holds no pooled connection while it sleeps: one is taken for each look. A position
/// beyond the event store's head can never be reached and is refused at once (400).
pub(crate) async fn wait_for(state: &AppState, projection: &str, position: Option<i64>) -> Result<(), ApiError> {
    let Some(position) = position else { return Ok(()) };
    let deadline = Instant::now() + MIN_POSITION_WAIT_MAX;
    let (done, mut current) = look(state, projection, position, true).await?;
    if done {
        return Ok(());
    }
    let busy = |_| ApiError::new("unavailable", "too many queries wait for their writes; retry later").retry_after(1);
    let _waiting = state.waiters.try_acquire().map_err(busy)?;
    let mut pause = MIN_POSITION_POLL;
    while Instant::now() < deadline {
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(MIN_POSITION_POLL_MAX);
        let done;
        (done, current) = look(state, projection, position, false).await?;
        if done {
            return Ok(());
        }
    }
    Err(ApiError::new("projection_behind", "the read model has not caught up yet; retry")
        .with_details(serde_json::json!({ "projection": projection, "position": current, "min_position": position })))
}

/// Whether `projection` has applied `position`, and where it is, on a connection held only for
/// the look. The first look also refuses a position beyond the store's head (never reached).
async fn look(state: &AppState, projection: &str, position: i64, first: bool) -> Result<(bool, i64), ApiError> {
    let client = client(state).await?;
    let reached = reached(&client, projection, position).await.map_err(unavailable)?;
    if !reached.0 && first {
        let head: Option<i64> =
            client.query_one("SELECT max(global_position) FROM events", &[]).await.map_err(unavailable)?.get(0);
        if position > head.unwrap_or(0) {
            return Err(ApiError::new("invalid_query", "min_position is beyond the event store's head"));
        }
    }
    Ok(reached)
}

/// Parses a query string into `T`. Fails with 400 `invalid_query`.
pub(crate) fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    // PostgreSQL cannot compare text with NUL in it: refuse it here, not as a database error.
    if req.query_string().contains("%00") || req.query_string().contains('\0') {
        return Err(ApiError::new("invalid_query", "a query parameter contains a NUL character"));
    }
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::new("invalid_query", e.to_string()))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// `product`, `classified` or `game_account`.
    kind: Option<String>,
    /// A category, e.g. `phones`, `cars`, `real_estate`, `game_accounts`.
    category: Option<String>,
    /// Game accounts of this game, e.g. `PUBG Mobile`.
    game: Option<String>,
    /// `active` (default, public); draft, pending, rejected, reserved, sold, archived or blocked
    /// for the listing's seller and staff.
    status: Option<String>,
    /// One seller's listings.
    seller_id: Option<Uuid>,
    /// Tiyin, inclusive.
    price_min: Option<i64>,
    /// Tiyin, inclusive.
    price_max: Option<i64>,
    /// Only listings with (or without) images.
    has_images: Option<bool>,
    /// Only promoted (or not promoted) listings.
    premium: Option<bool>,
    /// `true`: only listings that can still be ordered; `false`: only sold-out ones.
    in_stock: Option<bool>,
    /// `newest` (default), `price_asc`, `price_desc`, `popular` or `submitted` (oldest
    /// submission first: the moderation queue).
    sort: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    limit: Option<i64>,
    /// Wait (up to 2 s) until the read model has applied this global position (a command's
    /// `position`), to read your own write; else 409 `projection_behind`.
    min_position: Option<i64>,
}

/// Listing statuses anyone may browse; the others (draft, pending, rejected, archived,
/// blocked) only their seller and staff.
const PUBLIC_STATUSES: &[&str] = &["active", "reserved", "sold"];

/// Refuses a reader of a non-public listing who is neither its seller nor staff.
fn may_see_listing(actor: &MaybeActor, status: &str, seller: Option<Uuid>) -> Result<(), ApiError> {
    if PUBLIC_STATUSES.contains(&status) {
        return Ok(());
    }
    let reason = "only the seller and staff see listings that are not public";
    let Some(actor) = &actor.0 else { return Err(ApiError::new("unauthenticated", reason)) };
    match seller {
        Some(seller) => authz::owner_or(actor, seller, STAFF, reason),
        None => authz::any_of(actor, STAFF, reason),
    }
}

/// Browse listings: filters, `sort`, cursor pages.
///
/// Public for active listings; other statuses for their seller and staff.
#[utoipa::path(
    get,
    path = "/v1/listings",
    tag = "listings",
    operation_id = "queries_list_listings",
    params(ListQuery),
    responses((status = 200, description = "Success", body = crate::openapi::Page<bozor_projections::listings::Summary>), crate::openapi::Refusals),
    security((), ("bearer" = [])),
)]
pub(crate) async fn list_listings(state: web::Data<AppState>, req: HttpRequest, actor: MaybeActor) -> Res {
    let q: ListQuery = query(&req)?;
    let bad = |what: &str| ApiError::new("invalid_query", what.to_owned());
    let sort = q
        .sort
        .as_deref()
        .map_or(Some(Sort::Newest), Sort::parse)
        .ok_or_else(|| bad("sort is newest, price_asc, price_desc, popular or submitted"))?;
    let cursor = cursor_of(q.cursor.as_deref())?;
    let limit = q.limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if !(1..=listings::PAGE_LIMIT_MAX).contains(&limit) {
        return Err(bad("limit is 1 to 100"));
    }
    if q.kind.as_deref().is_some_and(|k| !["product", "classified", "game_account"].contains(&k)) {
        return Err(bad("kind is product, classified or game_account"));
    }
    if q.status.as_deref().is_some_and(|s| !listings::is_status(s)) {
        return Err(bad("unknown status"));
    }
    may_see_listing(&actor, q.status.as_deref().unwrap_or("active"), q.seller_id)?;
    let filter = Filter {
        kind: q.kind,
        category: q.category,
        game: q.game,
        status: q.status,
        seller_id: q.seller_id,
        price_min: q.price_min,
        price_max: q.price_max,
        has_images: q.has_images,
        premium: q.premium,
        in_stock: q.in_stock,
    };
    // Hot pages come from the cache; a query that waits for a position reads the model.
    let cacheable = q.min_position.is_none() && state.list_page_cache_on;
    if cacheable {
        let page = state.list_page_cache.get(req.query_string());
        crate::metrics::cache("listing_pages", page.is_some());
        if let Some(page) = page {
            return Ok(HttpResponse::Ok().content_type("application/json").body(page.as_str().to_owned()));
        }
    }
    let generation = state.list_page_cache.generation();
    wait_for(&state, "listings", q.min_position).await?;
    let client = client(&state).await?;
    let page = listings::list(&client, &filter, sort, cursor, limit, Utc::now()).await.map_err(unavailable)?;
    let body = serde_json::to_string(&page).map_err(unavailable)?;
    if cacheable {
        state.list_page_cache.insert(generation, req.query_string(), body.clone());
    }
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct GetQuery {
    /// Wait (up to 2 s) until the read model has applied this global position (a command's
    /// `position`), to read your own write; else 409 `projection_behind`.
    min_position: Option<i64>,
}

/// Listing detail, from the cache when it is fresh enough: an entry whose last applied
/// position is below `min_position` may predate the caller's write, so that read goes to the
/// read model (after waiting for it) and refreshes the entry.
#[utoipa::path(
    get,
    path = "/v1/listings/{id}",
    tag = "listings",
    operation_id = "queries_get_listing",
    params(("id" = uuid::Uuid, Path), GetQuery),
    responses((status = 200, description = "The listing (its fields depend on its kind)"), crate::openapi::Refusals),
    security((), ("bearer" = [])),
)]
pub(crate) async fn get_listing(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    actor: MaybeActor,
) -> Res {
    let id = path_id(&path)?;
    let q: GetQuery = query(&req)?;
    let hit = state.listing_cache.get(&id).filter(|hit| q.min_position.is_none_or(|p| hit.position >= p));
    crate::metrics::cache("listing_details", hit.is_some());
    if let Some(hit) = hit {
        return listing_detail(&hit, &actor, &req);
    }
    wait_for(&state, "listings", q.min_position).await?;
    let client = client(&state).await?;
    // Before the read: a batch applied after it makes what is read unfit to keep.
    let generation = state.list_page_cache.generation();
    match listings::get(&client, id).await.map_err(unavailable)? {
        Some(found) => {
            let answer = listing_detail(&found, &actor, &req);
            let found = std::sync::Arc::new(found);
            super::keep_detail(&state.listing_cache, &state.list_page_cache, generation, id, found);
            answer
        }
        None => Err(ApiError::new("listing_not_found", "no such listing")),
    }
}

/// A listing's detail for `actor`: refused when it is not public and not theirs; sealed
/// credentials are never shown, only whether there are any. Each variant says how many units
/// open orders hold and how many can still be ordered.
fn listing_detail(d: &listings::Detail, actor: &MaybeActor, req: &HttpRequest) -> Res {
    let l = &d.listing;
    may_see_listing(actor, l.status.name(), Some(l.seller_id))?;
    let mut body = serde_json::to_value(l).map_err(unavailable)?;
    if let Some(map) = body.as_object_mut() {
        let sealed = matches!(l.credentials, Some(bozor_domain::listing::Credentials::Sealed(_)));
        map.remove("credentials");
        map.insert("has_credentials".into(), serde_json::Value::Bool(sealed));
        map.insert("sold_out".into(), serde_json::Value::Bool(l.sold_out()));
        map.insert("available".into(), serde_json::json!(listings::available(l)));
        map.insert("version".into(), serde_json::json!(d.version));
        let variants = map.get_mut("details").and_then(|d| d.get_mut("variants")).and_then(|v| v.as_array_mut());
        for v in variants.into_iter().flatten() {
            let sku = v.get("sku").and_then(|s| s.as_str()).unwrap_or_default().to_owned();
            if let Some(v) = v.as_object_mut() {
                v.insert("reserved".into(), serde_json::json!(l.reserved_of(&sku)));
                v.insert("available".into(), serde_json::json!(l.available_of(&sku)));
            }
        }
    }
    Ok(tagged(req, d.version, &body))
}

/// A detail answered with its stream version as `ETag` (send it back as `If-Match` with a
/// command), or 304 when the client's `If-None-Match` names that version already.
fn tagged<T: serde::Serialize>(req: &HttpRequest, version: i64, body: &T) -> HttpResponse {
    let etag = format!("\"{version}\"");
    let unchanged = req
        .headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag));
    if unchanged {
        return HttpResponse::NotModified().insert_header(("ETag", etag)).finish();
    }
    HttpResponse::Ok().insert_header(("ETag", etag)).json(body)
}

/// A `cursor` parameter: one a page of this API returned. Fails with 400 `invalid_query`.
pub(crate) fn cursor_of(cursor: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    cursor
        .map(|c| Cursor::parse(c).ok_or_else(|| ApiError::new("invalid_query", "cursor is not one this API returned")))
        .transpose()
}

pub(crate) fn limit_of(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if !(1..=listings::PAGE_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::new("invalid_query", "limit is 1 to 100"));
    }
    Ok(limit)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct OrdersQuery {
    /// A buyer's orders (themselves, or staff).
    buyer_id: Option<Uuid>,
    /// A seller's orders (themselves, or staff).
    seller_id: Option<Uuid>,
    /// A courier's deliveries: `me` or the courier's id.
    courier_id: Option<String>,
    /// Orders open for couriers in this district.
    district: Option<String>,
    /// Alone (staff): every order in that status, longest unchanged first.
    status: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Items per page, 1 to 100 (default 20).
    limit: Option<i64>,
    /// Wait (up to 2 s) until the read model has applied this global position (a command's
    /// `position`), to read your own write; else 409 `projection_behind`.
    min_position: Option<i64>,
}

/// List orders: a buyer's, a seller's, a courier's, a district's; or by status (staff).
#[utoipa::path(
    get,
    path = "/v1/orders",
    tag = "orders",
    operation_id = "queries_list_orders",
    params(OrdersQuery),
    responses((status = 200, description = "Success", body = crate::openapi::Page<bozor_projections::orders::Summary>), crate::openapi::Refusals),
)]
pub(crate) async fn list_orders(state: web::Data<AppState>, req: HttpRequest, actor: Actor) -> Res {
    let q: OrdersQuery = query(&req)?;
    let bad = |what: &str| ApiError::new("invalid_query", what.to_owned());
    if q.status.as_deref().is_some_and(|s| !orders::STATUSES.contains(&s)) {
        return Err(bad("unknown status"));
    }
    let courier = match q.courier_id.as_deref() {
        None => None,
        Some("me") => Some(actor.user.id),
        Some(id) => Some(Uuid::parse_str(id).map_err(|_| bad("courier_id is `me` or a user id"))?),
    };
    let mut status = q.status.clone();
    let scope = match (q.buyer_id, q.seller_id, courier, q.district) {
        (Some(b), None, None, None) => {
            authz::owner_or(&actor, b, STAFF, "only the buyer and staff see a buyer's orders")?;
            Scope::Buyer(b)
        }
        (None, Some(s), None, None) => {
            authz::owner_or(&actor, s, STAFF, "only the seller and staff see a seller's orders")?;
            Scope::Seller(s)
        }
        (None, None, Some(c), None) => {
            authz::owner_or(&actor, c, STAFF, "only the courier and staff see a courier's deliveries")?;
            Scope::Courier(c)
        }
        (None, None, None, Some(d)) => {
            let district =
                bozor_domain::order::District::parse(&d).ok_or_else(|| bad("not a district couriers serve"))?;
            courier_of(&actor, district)?;
            Scope::OpenInDistrict(d)
        }
        (None, None, None, None) => {
            let Some(s) = status.take() else {
                return Err(bad("give one of buyer_id, seller_id, courier_id, district, or status (staff)"));
            };
            authz::any_of(&actor, STAFF, "only staff list orders by status alone")?;
            Scope::Queue(s)
        }
        _ => return Err(bad("give exactly one of buyer_id, seller_id, courier_id, district")),
    };
    let cursor = cursor_of(q.cursor.as_deref())?;
    let limit = limit_of(q.limit)?;
    wait_for(&state, "orders", q.min_position).await?;
    let client = client(&state).await?;
    let after = cursor.map(|c| (c.key, c.id));
    let (items, next) = orders::list(&client, &scope, status.as_deref(), after, limit).await.map_err(unavailable)?;
    let next_cursor = next.map(|(key, id)| Cursor { key, id }.encode());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

/// Couriers see the open orders of their own district (staff: of any).
fn courier_of(actor: &Actor, district: bozor_domain::order::District) -> Result<(), ApiError> {
    let reason = "only couriers of that district and staff see its open orders";
    if actor.user.has(bozor_domain::Role::Courier) && actor.district == Some(district) {
        return Ok(());
    }
    authz::any_of(actor, STAFF, reason)
}

/// One order with its escrow (its buyer, seller, courier, or staff).
#[utoipa::path(
    get,
    path = "/v1/orders/{id}",
    tag = "orders",
    operation_id = "queries_get_order",
    params(("id" = uuid::Uuid, Path), GetQuery),
    responses((status = 200, description = "Success", body = bozor_projections::orders::Detail), crate::openapi::Refusals),
)]
pub(crate) async fn get_order(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    actor: Actor,
) -> Res {
    let id = path_id(&path)?;
    let q: GetQuery = query(&req)?;
    wait_for(&state, "orders", q.min_position).await?;
    let client = client(&state).await?;
    match orders::get(&client, id).await.map_err(unavailable)? {
        Some(o) => {
            let me = actor.user.id;
            let party = [o.order.buyer_id, o.order.seller_id].contains(&me) || o.order.courier_id == Some(me);
            if !party && !offered_to(&actor, &o.order) {
                let reason = "only the order's buyer, seller, courier (or couriers it is offered to) and staff see it";
                authz::any_of(&actor, STAFF, reason)?;
            }
            Ok(tagged(&req, o.version, &o))
        }
        None => Err(ApiError::new("order_not_found", "no such order")),
    }
}

/// An accepted delivery order without a courier is offered to the couriers of its district.
fn offered_to(actor: &Actor, o: &bozor_domain::order::Order) -> bool {
    use bozor_domain::order::{Fulfilment, Status};
    let Fulfilment::Delivery { district, .. } = o.fulfilment else { return false };
    o.status == Status::Accepted && actor.user.has(bozor_domain::Role::Courier) && actor.district == Some(district)
}

fn money_reader(actor: &Actor, user: Uuid) -> Result<(), ApiError> {
    authz::owner_or(actor, user, MONEY_READERS, "only the owner, support, admins and auditors see a wallet")
}

/// A wallet's balances: available and held (its owner, or finance staff).
#[utoipa::path(
    get,
    path = "/v1/wallets/{user_id}",
    tag = "wallets",
    operation_id = "queries_get_wallet",
    params(("user_id" = uuid::Uuid, Path), GetQuery),
    responses((status = 200, description = "Success", body = bozor_projections::wallets::Balance), crate::openapi::Refusals),
)]
pub(crate) async fn get_wallet(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    actor: Actor,
) -> Res {
    let user = path_id(&path)?;
    money_reader(&actor, user)?;
    let q: GetQuery = query(&req)?;
    wait_for(&state, "wallets", q.min_position).await?;
    let client = client(&state).await?;
    let balance = wallets::balance(&client, user).await.map_err(unavailable)?;
    Ok(tagged(&req, balance.version, &balance))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct WithdrawalsQuery {
    /// `pending`, `completed` or `failed`.
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    min_position: Option<i64>,
}

/// A user's withdrawals, newest first (the owner, or staff).
#[utoipa::path(
    get,
    path = "/v1/wallets/{user_id}/withdrawals",
    tag = "wallets",
    operation_id = "queries_list_withdrawals",
    params(("user_id" = uuid::Uuid, Path)),
    responses((status = 200, description = "Success", body = crate::openapi::Page<bozor_projections::wallets::Withdrawal>), crate::openapi::Refusals),
)]
pub(crate) async fn list_withdrawals(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    actor: Actor,
) -> Res {
    let user = path_id(&path)?;
    money_reader(&actor, user)?;
    withdrawals_page(&state, &req, Some(user)).await
}

/// Staff who work the payout queue: everyone's withdrawals, by status.
const PAYOUT_STAFF: &[bozor_domain::Role] =
    &[bozor_domain::Role::Admin, bozor_domain::Role::Support, bozor_domain::Role::Auditor];

/// `GET /v1/withdrawals?status=`: every user's withdrawals, newest first, for staff.
#[utoipa::path(
    get,
    path = "/v1/withdrawals",
    tag = "wallets",
    operation_id = "queries_list_all_withdrawals",
    responses((status = 200, description = "Success", body = crate::openapi::Page<bozor_projections::wallets::Withdrawal>), crate::openapi::Refusals),
)]
pub(crate) async fn list_all_withdrawals(state: web::Data<AppState>, req: HttpRequest, actor: Actor) -> Res {
    authz::any_of(&actor, PAYOUT_STAFF, "only admins, support and auditors list everyone's withdrawals")?;
    withdrawals_page(&state, &req, None).await
}

async fn withdrawals_page(state: &web::Data<AppState>, req: &HttpRequest, user: Option<Uuid>) -> Res {
    let q: WithdrawalsQuery = query(req)?;
    let bad = |what: &str| ApiError::new("invalid_query", what.to_owned());
    if q.status.as_deref().is_some_and(|s| !["pending", "completed", "failed"].contains(&s)) {
        return Err(bad("status is pending, completed or failed"));
    }
    let cursor = cursor_of(q.cursor.as_deref())?;
    let limit = limit_of(q.limit)?;
    wait_for(state, "wallets", q.min_position).await?;
    let client = client(state).await?;
    let after = cursor.map(|c| (c.key, c.id));
    let (items, next) =
        wallets::withdrawals(&client, user, q.status.as_deref(), after, limit).await.map_err(unavailable)?;
    let next_cursor = next.map(|(key, id)| Cursor { key, id }.encode());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

/// The platform's own accounts (revenue, provider clearing, payout clearing), each summed over
/// its shards: for auditors and admins.
#[utoipa::path(
    get,
    path = "/v1/platform/accounts",
    tag = "wallets",
    operation_id = "queries_platform_accounts",
    params(GetQuery),
    responses((status = 200, description = "Success", body = crate::openapi::Items<bozor_projections::wallets::PlatformBalance>), crate::openapi::Refusals),
)]
pub(crate) async fn platform_accounts(state: web::Data<AppState>, req: HttpRequest, actor: Actor) -> Res {
    authz::any_of(&actor, AUDIT_READERS, "only auditors and admins see the platform's accounts")?;
    let q: GetQuery = query(&req)?;
    wait_for(&state, "wallets", q.min_position).await?;
    let client = client(&state).await?;
    let accounts = wallets::platform_accounts(&client).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": accounts })))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LedgerQuery {
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    limit: Option<i64>,
    /// Wait (up to 2 s) until the read model has applied this global position (a command's
    /// `position`), to read your own write; else 409 `projection_behind`.
    min_position: Option<i64>,
}

/// A wallet's ledger lines, cursor-paged (its owner, or finance staff).
#[utoipa::path(
    get,
    path = "/v1/wallets/{user_id}/ledger",
    tag = "wallets",
    operation_id = "queries_get_ledger",
    params(("user_id" = uuid::Uuid, Path), LedgerQuery),
    responses((status = 200, description = "Success", body = crate::openapi::Page<bozor_projections::wallets::Line>), crate::openapi::Refusals),
)]
pub(crate) async fn get_ledger(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    actor: Actor,
) -> Res {
    let user = path_id(&path)?;
    money_reader(&actor, user)?;
    let q: LedgerQuery = query(&req)?;
    let limit = limit_of(q.limit)?;
    wait_for(&state, "wallets", q.min_position).await?;
    let client = client(&state).await?;
    let (lines, next) = wallets::ledger(&client, user, q.cursor, limit).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": lines, "next_cursor": next })))
}

/// A seller's public figures: active listings, completed orders, sales, rating.
#[utoipa::path(
    get,
    path = "/v1/sellers/{id}/stats",
    tag = "listings",
    operation_id = "queries_seller_stats",
    params(("id" = uuid::Uuid, Path), GetQuery),
    responses((status = 200, description = "Success", body = bozor_projections::listings::SellerStats), crate::openapi::Refusals),
    security((), ("bearer" = [])),
)]
pub(crate) async fn seller_stats(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Res {
    let seller = path_id(&path)?;
    let q: GetQuery = query(&req)?;
    wait_for(&state, "orders", q.min_position).await?;
    let client = client(&state).await?;
    Ok(HttpResponse::Ok().json(listings::seller_stats(&client, seller).await.map_err(unavailable)?))
}
