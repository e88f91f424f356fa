//! HTTP routes under `/v1`, one module per resource.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod credentials;
pub mod exports;
pub mod health;
pub mod listings;
pub mod orders;
pub mod pages;
pub mod payments;
pub mod queries;
pub mod search;
pub mod users;
pub mod wallets;

use actix_web::{web, HttpRequest};
use bozor_commands::CommandService;
use bozor_domain::Money;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::actor::Actor;
use crate::errors::ApiError;
use crate::request::{command_input, CommandInput};

/// Listing details recently read, with the position of their last event applied.
pub type ListingCache = moka::sync::Cache<uuid::Uuid, std::sync::Arc<bozor_projections::listings::Detail>>;

/// Listing details kept at most (bounded memory).
pub const LISTING_CACHE_ENTRIES_MAX: u64 = 10_000;
/// How long a cached detail lives even without an invalidation (bounds any missed one), when
/// the listings projector runs in this process and invalidates it after each batch.
pub const LISTING_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a cached detail lives in a process without the listings projector (`bozor serve`
/// in the distributed shape), where expiry is the only invalidation: as long as a listings page.
pub const LISTING_CACHE_TTL_SERVE: std::time::Duration = LIST_PAGE_CACHE_TTL;

/// A listing-detail cache. With `invalidated` (the listings projector runs in this process and
/// drops changed entries after each batch) entries live `LISTING_CACHE_TTL`, else only
/// `LISTING_CACHE_TTL_SERVE`.
pub fn listing_cache(invalidated: bool) -> ListingCache {
    let ttl = if invalidated { LISTING_CACHE_TTL } else { LISTING_CACHE_TTL_SERVE };
    moka::sync::Cache::builder().max_capacity(LISTING_CACHE_ENTRIES_MAX).time_to_live(ttl).build()
}

/// Listing pages (the answers of `GET /v1/listings` without `min_position`) recently served,
/// by generation and query string. The listings projector starts a new generation after each
/// batch; a page is stored under the generation current before its read began, so a page read
/// across a batch is never served as current.
pub struct ListPageCache {
    pages: moka::sync::Cache<(u64, String), std::sync::Arc<String>>,
    generation: std::sync::atomic::AtomicU64,
}

/// Listing pages kept at most.
pub const LIST_PAGE_CACHE_ENTRIES_MAX: u64 = 1_000;
/// How long a page lives at most: bounds staleness when no projector runs in this process
/// (`bozor serve`), which is then the only invalidation.
pub const LIST_PAGE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

impl ListPageCache {
    pub fn new() -> ListPageCache {
        ListPageCache::with(LIST_PAGE_CACHE_ENTRIES_MAX, LIST_PAGE_CACHE_TTL)
    }

    /// A cache of at most `entries` answers, each kept at most `ttl`.
    pub fn with(entries: u64, ttl: std::time::Duration) -> ListPageCache {
        ListPageCache {
            pages: moka::sync::Cache::builder().max_capacity(entries).time_to_live(ttl).build(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A cache of answers weighing at most `bytes` in all (keys and bodies), each kept at most
    /// `ttl`: for answers whose size others choose.
    pub fn weighed(bytes: u64, ttl: std::time::Duration) -> ListPageCache {
        ListPageCache {
            pages: moka::sync::Cache::builder()
                .weigher(|key: &(u64, String), page: &std::sync::Arc<String>| {
                    u32::try_from(key.1.len() + page.len() + 64).unwrap_or(u32::MAX)
                })
                .max_capacity(bytes)
                .time_to_live(ttl)
                .build(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The current generation, to read before the read model is queried.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The page for `query` of the current generation.
    pub fn get(&self, query: &str) -> Option<std::sync::Arc<String>> {
        self.pages.get(&(self.generation(), query.to_owned()))
    }

    /// Keeps a page read at `generation`.
    pub fn insert(&self, generation: u64, query: &str, page: String) {
        self.pages.insert((generation, query.to_owned()), std::sync::Arc::new(page));
    }

    /// The read model changed: pages served so far are no longer current.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.pages.invalidate_all();
    }
}

impl Default for ListPageCache {
    fn default() -> Self {
        ListPageCache::new()
    }
}

/// Keeps a listing detail read from the read model in `details`, unless the listings projector
/// applied a batch since `generation` (of `pages`, taken before the read): the detail may then
/// be older than what the projector's invalidation already dropped, and kept it would be served
/// as current until it expires. Checked after the insert too: a batch whose invalidation ran
/// between the check and the insert would otherwise leave the older detail behind.
pub fn keep_detail<V: Clone + Send + Sync + 'static>(
    details: &moka::sync::Cache<uuid::Uuid, V>,
    pages: &ListPageCache,
    generation: u64,
    id: uuid::Uuid,
    detail: V,
) {
    if pages.generation() != generation {
        return;
    }
    details.insert(id, detail);
    if pages.generation() != generation {
        details.invalidate(&id);
    }
}

/// What every handler shares.
pub struct AppState {
    pub commands: CommandService,
    /// Token keys, the SMS sender and the rate limiters.
    pub auth: crate::auth::Auth,
    /// Seals and opens game-account credentials.
    pub vault: bozor_commands::vault::Vault,
    pub body_bytes_max: usize,
    pub listing_cache: ListingCache,
    pub list_page_cache: std::sync::Arc<ListPageCache>,
    /// False (`BOZOR_LIST_PAGE_CACHE=off`): pages are never served from `list_page_cache`.
    pub list_page_cache_on: bool,
    /// The read side's own pool (see `startup::worker_pool`): rebuilds run on it.
    pub workers: deadpool_postgres::Pool,
    /// Queries waiting for `min_position` at once, at most `queries::MIN_POSITION_WAITERS_MAX`.
    pub waiters: tokio::sync::Semaphore,
    /// The search backend (PostgreSQL, or Meilisearch when configured).
    pub search: std::sync::Arc<dyn bozor_search_sync::SearchIndex>,
    /// Autosuggest answers by query (see `search::SUGGEST_CACHE_TTL`), dropped whenever
    /// search-sync in this process indexes a batch.
    pub suggest_cache: std::sync::Arc<ListPageCache>,
    /// False (`BOZOR_SUGGEST_CACHE=off`): suggestions are never served from `suggest_cache`.
    pub suggest_cache_on: bool,
    /// Turns to search (`BOZOR_SEARCHES_AT_ONCE` of them).
    pub searches: tokio::sync::Semaphore,
    /// Meilisearch, when search goes there (admin rebuilds swap its index).
    pub meili: Option<bozor_search_sync::meili::MeiliSearch>,
    /// Payme and Click settings, payout limits.
    pub payments: crate::configuration::PaymentSettings,
    /// Where the database is, for work that needs connections of its own (the ledger audit).
    pub database_url: String,
    /// Ledger audits running at once (one: it reads the whole log).
    pub audits: tokio::sync::Semaphore,
    /// Exports streaming at once (`exports::EXPORTS_AT_ONCE`), each holding a pooled connection.
    pub exports: std::sync::Arc<tokio::sync::Semaphore>,
    /// The Kafka brokers, when configured (`/readyz` checks them).
    pub kafka: Option<bozor_commands::kafka::KafkaSettings>,
    /// The database gauges of the last `/metrics` scrape, and when they were read.
    pub metrics_gauges: tokio::sync::Mutex<Option<(std::time::Instant, String)>>,
    /// `BOZOR_METRICS_TOKEN`: the bearer token `/metrics` wants, when set.
    pub metrics_token: Option<String>,
}

/// A command without fields: any field in its body is refused.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// A body with just a reason.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

/// Reads a command's input with this app's body limit, after the caller's rate limits (per
/// user and per IP) and `authz::command` allow it.
pub async fn input<B: DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    actor: &Actor,
    command: &'static str,
) -> Result<CommandInput<B>, ApiError> {
    actix_web::HttpMessage::extensions_mut(req).insert(crate::metrics::CommandName(command));
    let auth = &state.auth;
    crate::auth::Auth::limit(&auth.commands_per_user, &actor.user.id.to_string())?;
    crate::auth::Auth::limit(&auth.commands_per_ip, &auth.client_ip(req))?;
    crate::authz::command(actor, command)?;
    command_input(req, payload, actor, command, state.body_bytes_max).await
}

/// Middleware (`actix_web::middleware::from_fn`): queries under `/v1` (GETs), signed in or not,
/// take from their client address's bucket (`BOZOR_RATE_QUERIES_PER_IP`); past it, 429
/// `rate_limited` with Retry-After, before any work or connection is spent on them.
///
/// # Errors
/// 429 `rate_limited`, or the inner service's errors.
pub async fn limit_queries(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    // `/readyz` takes a database connection too; `/healthz` takes nothing.
    let path = req.path();
    let is_query = req.method() == actix_web::http::Method::GET
        && (path.starts_with("/v1/") || path == "/readyz" || path == "/metrics");
    if is_query {
        if let Some(state) = req.app_data::<web::Data<AppState>>() {
            let auth = &state.auth;
            crate::auth::Auth::limit(&auth.queries_per_ip, &auth.client_ip(req.request()))?;
        }
    }
    next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_boxed_body)
}

/// The database could not be reached (or every pooled connection stayed busy for
/// `BOZOR_DB_POOL_WAIT_MS`): logged, and answered 503 `unavailable` with Retry-After.
pub fn unavailable(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "database unavailable");
    ApiError::new("unavailable", "the database cannot be reached; retry later").retry_after(1)
}

/// A tiyin amount from a request field. Fails with `invalid_field` when negative.
pub fn money(field: &'static str, tiyin: i64) -> Result<Money, ApiError> {
    Money::from_tiyin(tiyin)
        .map_err(|_| ApiError::from(bozor_domain::DomainError::Invalid { field, reason: "must not be negative" }))
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)))
        .service(web::resource("/metrics").route(web::get().to(health::metrics)))
        .configure(pages::configure)
        .service(
            web::scope("/v1")
                .configure(admin::configure)
                .configure(audit::configure)
                .configure(auth::configure)
                .configure(credentials::configure)
                .configure(users::configure)
                .configure(listings::configure)
                .configure(queries::configure)
                .configure(search::configure)
                .configure(orders::configure)
                .configure(wallets::configure)
                .configure(payments::configure)
                .configure(exports::configure),
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_read_across_a_listings_batch_is_not_kept() {
        let (details, pages) = (moka::sync::Cache::new(10), ListPageCache::new());
        let (id, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let before = pages.generation();
        keep_detail(&details, &pages, before, id, 1_u32);
        assert_eq!(details.get(&id), Some(1), "no batch since the read: kept");
        let read_at = pages.generation();
        pages.invalidate(); // the projector applied a batch while the detail was read
        keep_detail(&details, &pages, read_at, other, 2_u32);
        assert_eq!(details.get(&other), None, "maybe older than the batch: not kept");
    }
}
