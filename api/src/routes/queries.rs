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
use crate::authz::{self, MONEY_READERS, STAFF};
use crate::errors::ApiError;
use crate::request::path_id;

/// Longest a query waits for `min_position`.
pub const MIN_POSITION_WAIT_MAX: Duration = Duration::from_secs(2);
const MIN_POSITION_POLL: Duration = Duration::from_millis(5);

/// Registers the query routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/listings", web::get().to(list_listings))
        .route("/listings/{id}", web::get().to(get_listing))
        .route("/orders", web::get().to(list_orders))
        .route("/orders/{id}", web::get().to(get_order))
        .route("/wallets/{user_id}", web::get().to(get_wallet))
        .route("/wallets/{user_id}/ledger", web::get().to(get_ledger))
        .route("/sellers/{id}/stats", web::get().to(seller_stats));
}

type Res = Result<HttpResponse, ApiError>;

async fn client(state: &AppState) -> Result<deadpool_postgres::Client, ApiError> {
    state.commands.store().pool().get().await.map_err(unavailable)
}

/// Waits until `projection` has applied the command at `position`, or answers 409 with where it is.
pub(crate) async fn wait_for(
    client: &tokio_postgres::Client,
    projection: &str,
    position: Option<i64>,
) -> Result<(), ApiError> {
    let Some(position) = position else { return Ok(()) };
    let deadline = Instant::now() + MIN_POSITION_WAIT_MAX;
    loop {
        let (done, current) = reached(client, projection, position).await.map_err(unavailable)?;
        if done {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ApiError::new("projection_behind", "the read model has not caught up yet; retry")
                .with_details(
                    serde_json::json!({ "projection": projection, "position": current, "min_position": position }),
                ));
        }
        tokio::time::sleep(MIN_POSITION_POLL).await;
    }
}

/// Parses a query string into `T`. Fails with 400 `invalid_query`.
pub(crate) fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::new("invalid_query", e.to_string()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    kind: Option<String>,
    category: Option<String>,
    game: Option<String>,
    status: Option<String>,
    seller_id: Option<Uuid>,
    price_min: Option<i64>,
    price_max: Option<i64>,
    has_images: Option<bool>,
    premium: Option<bool>,
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
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

async fn list_listings(state: web::Data<AppState>, req: HttpRequest, actor: MaybeActor) -> Res {
    let q: ListQuery = query(&req)?;
    let bad = |what: &str| ApiError::new("invalid_query", what.to_owned());
    let sort = q
        .sort
        .as_deref()
        .map_or(Some(Sort::Newest), Sort::parse)
        .ok_or_else(|| bad("sort is newest, price_asc, price_desc, popular or submitted"))?;
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| Cursor::parse(c).ok_or_else(|| bad("cursor is not one this API returned")))
        .transpose()?;
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
    };
    // Hot pages come from the cache; a query that waits for a position reads the model.
    let cacheable = q.min_position.is_none();
    if cacheable {
        if let Some(page) = state.list_page_cache.get(req.query_string()) {
            return Ok(HttpResponse::Ok().content_type("application/json").body(page.as_str().to_owned()));
        }
    }
    let generation = state.list_page_cache.generation();
    let client = client(&state).await?;
    wait_for(&client, "listings", q.min_position).await?;
    let page = listings::list(&client, &filter, sort, cursor, limit, Utc::now()).await.map_err(unavailable)?;
    let body = serde_json::to_string(&page).map_err(unavailable)?;
    if cacheable {
        state.list_page_cache.insert(generation, req.query_string(), body.clone());
    }
    Ok(HttpResponse::Ok().content_type("application/json").body(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetQuery {
    min_position: Option<i64>,
}

/// Listing detail, from the cache when it is fresh enough: an entry whose last applied
/// position is below `min_position` may predate the caller's write, so that read goes to the
/// read model (after waiting for it) and refreshes the entry.
async fn get_listing(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>, actor: MaybeActor) -> Res {
    let id = path_id(&path)?;
    let q: GetQuery = query(&req)?;
    if let Some(hit) = state.listing_cache.get(&id) {
        if q.min_position.is_none_or(|p| hit.1 >= p) {
            return listing_detail(&hit.0, &actor);
        }
    }
    let client = client(&state).await?;
    wait_for(&client, "listings", q.min_position).await?;
    match listings::get(&client, id).await.map_err(unavailable)? {
        Some(found) => {
            let answer = listing_detail(&found.0, &actor);
            state.listing_cache.insert(id, std::sync::Arc::new(found));
            answer
        }
        None => Err(ApiError::new("listing_not_found", "no such listing")),
    }
}

/// A listing's detail for `actor`: refused when it is not public and not theirs; sealed
/// credentials are never shown, only whether there are any.
fn listing_detail(l: &bozor_domain::listing::Listing, actor: &MaybeActor) -> Res {
    may_see_listing(actor, l.status.name(), Some(l.seller_id))?;
    let mut body = serde_json::to_value(l).map_err(unavailable)?;
    if let Some(map) = body.as_object_mut() {
        let sealed = matches!(l.credentials, Some(bozor_domain::listing::Credentials::Sealed(_)));
        map.remove("credentials");
        map.insert("has_credentials".into(), serde_json::Value::Bool(sealed));
    }
    Ok(HttpResponse::Ok().json(body))
}

fn limit_of(limit: Option<i64>) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(PAGE_LIMIT_DEFAULT);
    if !(1..=listings::PAGE_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::new("invalid_query", "limit is 1 to 100"));
    }
    Ok(limit)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrdersQuery {
    buyer_id: Option<Uuid>,
    seller_id: Option<Uuid>,
    /// Orders open for couriers in this district.
    district: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    min_position: Option<i64>,
}

async fn list_orders(state: web::Data<AppState>, req: HttpRequest, actor: Actor) -> Res {
    let q: OrdersQuery = query(&req)?;
    let bad = |what: &str| ApiError::new("invalid_query", what.to_owned());
    let scope = match (q.buyer_id, q.seller_id, q.district) {
        (Some(b), None, None) => {
            authz::owner_or(&actor, b, STAFF, "only the buyer and staff see a buyer's orders")?;
            Scope::Buyer(b)
        }
        (None, Some(s), None) => {
            authz::owner_or(&actor, s, STAFF, "only the seller and staff see a seller's orders")?;
            Scope::Seller(s)
        }
        (None, None, Some(d)) => {
            let district =
                bozor_domain::order::District::parse(&d).ok_or_else(|| bad("not a district couriers serve"))?;
            courier_of(&actor, district)?;
            Scope::OpenInDistrict(d)
        }
        _ => return Err(bad("give exactly one of buyer_id, seller_id, district")),
    };
    let cursor = q
        .cursor
        .as_deref()
        .map(|c| Cursor::parse(c).ok_or_else(|| bad("cursor is not one this API returned")))
        .transpose()?;
    let limit = limit_of(q.limit)?;
    let client = client(&state).await?;
    wait_for(&client, "orders", q.min_position).await?;
    let after = cursor.map(|c| (c.key, c.id));
    let (items, next) = orders::list(&client, &scope, q.status.as_deref(), after, limit).await.map_err(unavailable)?;
    let next_cursor = next.map(|(key, id)| Cursor { key, id }.encode());
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

/// Couriers see the open orders of their own district (staff: of any).
fn courier_of(actor: &Actor, district: bozor_domain::order::District) -> Result<(), ApiError> {
    let reason = "only couriers of that district and staff see its open orders";
    if actor.user.has(bozor_domain::Role::Courier) && actor.district.is_none_or(|d| d == district) {
        return Ok(());
    }
    authz::any_of(actor, STAFF, reason)
}

async fn get_order(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>, actor: Actor) -> Res {
    let id = path_id(&path)?;
    let q: GetQuery = query(&req)?;
    let client = client(&state).await?;
    wait_for(&client, "orders", q.min_position).await?;
    match orders::get(&client, id).await.map_err(unavailable)? {
        Some(o) => {
            let me = actor.user.id;
            if ![o.order.buyer_id, o.order.seller_id].contains(&me) && o.order.courier_id != Some(me) {
                let reason = "only the order's buyer, seller, courier and staff see it";
                authz::any_of(&actor, STAFF, reason)?;
            }
            Ok(HttpResponse::Ok().json(o))
        }
        None => Err(ApiError::new("order_not_found", "no such order")),
    }
}

fn money_reader(actor: &Actor, user: Uuid) -> Result<(), ApiError> {
    authz::owner_or(actor, user, MONEY_READERS, "only the owner, support, admins and auditors see a wallet")
}

async fn get_wallet(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>, actor: Actor) -> Res {
    let user = path_id(&path)?;
    money_reader(&actor, user)?;
    let q: GetQuery = query(&req)?;
    let client = client(&state).await?;
    wait_for(&client, "wallets", q.min_position).await?;
    Ok(HttpResponse::Ok().json(wallets::balance(&client, user).await.map_err(unavailable)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerQuery {
    /// The `next_cursor` of the previous page.
    cursor: Option<i64>,
    limit: Option<i64>,
    min_position: Option<i64>,
}

async fn get_ledger(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>, actor: Actor) -> Res {
    let user = path_id(&path)?;
    money_reader(&actor, user)?;
    let q: LedgerQuery = query(&req)?;
    let limit = limit_of(q.limit)?;
    let client = client(&state).await?;
    wait_for(&client, "wallets", q.min_position).await?;
    let (lines, next) = wallets::ledger(&client, user, q.cursor, limit).await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": lines, "next_cursor": next })))
}

async fn seller_stats(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Res {
    let seller = path_id(&path)?;
    let q: GetQuery = query(&req)?;
    let client = client(&state).await?;
    wait_for(&client, "orders", q.min_position).await?;
    Ok(HttpResponse::Ok().json(listings::seller_stats(&client, seller).await.map_err(unavailable)?))
}
