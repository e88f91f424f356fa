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
async fn wait_for(client: &tokio_postgres::Client, projection: &str, position: Option<i64>) -> Result<(), ApiError> {
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

fn query<T: serde::de::DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
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

async fn list_listings(state: web::Data<AppState>, req: HttpRequest) -> Res {
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
async fn get_listing(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Res {
    let id = path_id(&path)?;
    let q: GetQuery = query(&req)?;
    if let Some(hit) = state.listing_cache.get(&id) {
        if q.min_position.is_none_or(|p| hit.1 >= p) {
            return Ok(HttpResponse::Ok().json(&hit.0));
        }
    }
    let client = client(&state).await?;
    wait_for(&client, "listings", q.min_position).await?;
    match listings::get(&client, id).await.map_err(unavailable)? {
        Some(found) => {
            let body = HttpResponse::Ok().json(&found.0);
            state.listing_cache.insert(id, std::sync::Arc::new(found));
            Ok(body)
        }
        None => Err(ApiError::new("listing_not_found", "no such listing")),
    }
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

async fn list_orders(state: web::Data<AppState>, req: HttpRequest) -> Res {
    let q: OrdersQuery = query(&req)?;
    let bad = |what: &str| ApiError::new("invalid_query", what.to_owned());
    let scope = match (q.buyer_id, q.seller_id, q.district) {
        (Some(b), None, None) => Scope::Buyer(b),
        (None, Some(s), None) => Scope::Seller(s),
        (None, None, Some(d)) if bozor_domain::order::District::parse(&d).is_some() => Scope::OpenInDistrict(d),
        (None, None, Some(_)) => return Err(bad("not a district couriers serve")),
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

async fn get_order(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Res {
    let id = path_id(&path)?;
    let q: GetQuery = query(&req)?;
    let client = client(&state).await?;
    wait_for(&client, "orders", q.min_position).await?;
    match orders::get(&client, id).await.map_err(unavailable)? {
        Some(o) => Ok(HttpResponse::Ok().json(o)),
        None => Err(ApiError::new("order_not_found", "no such order")),
    }
}

async fn get_wallet(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Res {
    let user = path_id(&path)?;
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

async fn get_ledger(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>) -> Res {
    let user = path_id(&path)?;
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
