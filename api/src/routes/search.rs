//! Search, public: autosuggest (`GET /v1/search/suggest`) and full search (`GET /v1/search`),
//! served by the configured `SearchIndex` (PostgreSQL by default, Meilisearch with
//! BOZOR_MEILI_URL). Queries in any script meet documents in any other: both go through the
//! same search keys (`bozor_search_sync::synonyms::query_words`). Both are rate-limited per IP
//! with the other queries (`limit_queries`).

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use bozor_search_sync::index::{
    SearchRequest, Sort, QUERY_CHARS_MAX, QUERY_WORDS_MAX, SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX, SEARCH_OFFSET_MAX,
    SUGGEST_LIMIT_DEFAULT, SUGGEST_LIMIT_MAX,
};
use bozor_search_sync::synonyms::query_words;
use serde::Deserialize;

use super::queries::query;
use super::AppState;
use crate::errors::ApiError;

/// Bytes of cached suggestions at most (keys and answers; sellers choose the titles' sizes).
pub const SUGGEST_CACHE_BYTES_MAX: u64 = 32 * 1024 * 1024;
/// Longest a search waits for a turn. Searches (autosuggest or full) run at most
/// `BOZOR_SEARCHES_AT_ONCE` at a time in a process: they share the requests' pool with commands,
/// which must always find connections, and more at once only queue in the database.
pub const SEARCH_WAIT: std::time::Duration = std::time::Duration::from_millis(1_000);
/// How long a cached suggestion list lives at most: bounds staleness where no search-sync runs
/// in this process (`bozor serve`); where one does, each of its batches drops them all.
pub const SUGGEST_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Registers the search routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/search/suggest", web::get().to(suggest)).route("/search", web::get().to(search));
}

/// A turn to search (see `SEARCH_WAIT`), or 503 `unavailable` after `SEARCH_WAIT`.
async fn turn(state: &AppState) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    match tokio::time::timeout(SEARCH_WAIT, state.searches.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(ApiError::new("unavailable", "search is busy; retry later").retry_after(1)),
    }
}

fn bad(what: impl Into<String>) -> ApiError {
    ApiError::new("invalid_query", what.into())
}

/// The search engine failed: logged, answered 503 `unavailable` with Retry-After.
fn engine_down(e: bozor_search_sync::SearchError) -> ApiError {
    tracing::warn!(error = %e, "search unavailable");
    ApiError::new("unavailable", "search is unavailable; retry later").retry_after(1)
}

/// A query's words, refusing one too long to be a query.
fn words_of(q: Option<&str>) -> Result<Vec<String>, ApiError> {
    let q = q.unwrap_or("");
    if q.chars().count() > QUERY_CHARS_MAX {
        return Err(bad(format!("q is at most {QUERY_CHARS_MAX} characters")));
    }
    let mut words = query_words(q);
    words.truncate(QUERY_WORDS_MAX);
    Ok(words)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SuggestQuery {
    /// What the buyer typed so far, in any script; empty answers no suggestions.
    q: Option<String>,
    /// Suggestions, 1 to 10 (default 8).
    limit: Option<usize>,
}

/// Autosuggest as the buyer types, in Russian, Uzbek (Latin or Cyrillic) and English.
///
/// Public; rate-limited per address.
#[utoipa::path(
    get,
    path = "/v1/search/suggest",
    tag = "search",
    operation_id = "search_suggest",
    params(SuggestQuery),
    responses((status = 200, description = "Success", body = crate::openapi::Suggestions), crate::openapi::Refusals),
    security(()),
)]
pub(crate) async fn suggest(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p: SuggestQuery = query(&req)?;
    let limit = p.limit.unwrap_or(SUGGEST_LIMIT_DEFAULT);
    if !(1..=SUGGEST_LIMIT_MAX).contains(&limit) {
        return Err(bad(format!("limit is 1 to {SUGGEST_LIMIT_MAX}")));
    }
    let words = words_of(p.q.as_deref())?;
    let key = format!("{limit}:{}", words.join(" "));
    if state.suggest_cache_on {
        let body = state.suggest_cache.get(&key);
        crate::metrics::cache("suggestions", body.is_some());
        if let Some(body) = body {
            return Ok(json(body.as_str().to_owned(), true));
        }
    }
    let generation = state.suggest_cache.generation();
    let _turn = turn(&state).await?;
    let items = state.search.suggest(&words, limit).await.map_err(engine_down)?;
    let body = serde_json::json!({ "items": items }).to_string();
    if state.suggest_cache_on {
        state.suggest_cache.insert(generation, &key, body.clone());
    }
    Ok(json(body, false))
}

fn json(body: String, cached: bool) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("X-Cache", if cached { "hit" } else { "miss" }))
        .body(body)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Words in any script (empty: browse with the filters).
    q: Option<String>,
    /// `product`, `classified` or `game_account`.
    kind: Option<String>,
    /// A category, e.g. `phones`, `cars`.
    category: Option<String>,
    /// A game, e.g. `Standoff 2`.
    game: Option<String>,
    /// A city, e.g. `Toshkent`.
    city: Option<String>,
    /// Tiyin, inclusive.
    price_min: Option<i64>,
    /// Tiyin, inclusive.
    price_max: Option<i64>,
    /// Only promoted (or not promoted) listings.
    premium: Option<bool>,
    /// `relevance` (default), `newest`, `price_asc` or `price_desc`.
    sort: Option<String>,
    /// Hits per page, 1 to 50 (default 20).
    limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A page's cursor: the offset of the next page, opaque to clients.
fn encode_cursor(offset: usize) -> String {
    B64URL.encode(format!("search:{offset}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let text = String::from_utf8(B64URL.decode(cursor).ok()?).ok()?;
    let offset: usize = text.strip_prefix("search:")?.parse().ok()?;
    (offset <= SEARCH_OFFSET_MAX).then_some(offset)
}

/// Full search with filters, sorting, facet counts and cursor pages. Public.
#[utoipa::path(
    get,
    path = "/v1/search",
    tag = "search",
    operation_id = "search_search",
    params(SearchQuery),
    responses((status = 200, description = "Success", body = bozor_search_sync::index::SearchPage), crate::openapi::Refusals),
    security(()),
)]
pub(crate) async fn search(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let p: SearchQuery = query(&req)?;
    let limit = p.limit.unwrap_or(SEARCH_LIMIT_DEFAULT);
    if !(1..=SEARCH_LIMIT_MAX).contains(&limit) {
        return Err(bad(format!("limit is 1 to {SEARCH_LIMIT_MAX}")));
    }
    let sort = p
        .sort
        .as_deref()
        .map_or(Some(Sort::Relevance), Sort::parse)
        .ok_or_else(|| bad("sort is relevance, newest, price_asc or price_desc"))?;
    if p.kind.as_deref().is_some_and(|k| !["product", "classified", "game_account"].contains(&k)) {
        return Err(bad("kind is product, classified or game_account"));
    }
    for (name, v) in [("price_min", p.price_min), ("price_max", p.price_max)] {
        if v.is_some_and(|v| !(0..=bozor_domain::money::AMOUNT_MAX).contains(&v)) {
            return Err(bad(format!("{name} is 0 to {}", bozor_domain::money::AMOUNT_MAX)));
        }
    }
    if let (Some(lo), Some(hi)) = (p.price_min, p.price_max) {
        if lo > hi {
            return Err(bad("price_min is above price_max"));
        }
    }
    for (name, v) in [("category", &p.category), ("game", &p.game), ("city", &p.city)] {
        if v.as_ref().is_some_and(|v| v.is_empty() || v.chars().count() > 100) {
            return Err(bad(format!("{name} is 1 to 100 characters")));
        }
    }
    let offset = match p.cursor.as_deref() {
        Some(c) => decode_cursor(c).ok_or_else(|| bad("cursor is not one this API returned"))?,
        None => 0,
    };
    let request = SearchRequest {
        words: words_of(p.q.as_deref())?,
        kind: p.kind,
        category: p.category,
        game: p.game,
        city: p.city,
        price_min: p.price_min,
        price_max: p.price_max,
        premium: p.premium,
        sort,
        limit,
        offset,
    };
    let _turn = turn(&state).await?;
    let page = state.search.search(&request).await.map_err(engine_down)?;
    let next = offset + page.hits.len();
    let next_cursor = (page.hits.len() == limit && (next as u64) < page.total && next <= SEARCH_OFFSET_MAX)
        .then(|| encode_cursor(next));
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": page.hits,
        "total": page.total,
        "facets": page.facets,
        "next_cursor": next_cursor,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_make() {
        assert_eq!(decode_cursor(&encode_cursor(40)), Some(40));
        assert_eq!(decode_cursor(&encode_cursor(SEARCH_OFFSET_MAX + 1)), None);
        assert_eq!(decode_cursor("search:40"), None);
        assert_eq!(decode_cursor(&B64URL.encode("search:-1")), None);
        assert_eq!(decode_cursor("%%%"), None);
    }
}
