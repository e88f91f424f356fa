//! The search API both backends serve: autosuggest and full search with filters, sorts and
//! facets. Queries are turned into search-key words (`synonyms::query_words`) before they reach
//! a backend, so every backend matches the same way across scripts.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

pub use bozor_projections::runtime::BoxFuture;

/// Most suggestions one call returns.
pub const SUGGEST_LIMIT_MAX: usize = 10;
/// Suggestions when no limit is asked for.
pub const SUGGEST_LIMIT_DEFAULT: usize = 8;
/// Largest page of a search.
pub const SEARCH_LIMIT_MAX: usize = 50;
/// Page size when none is asked for.
pub const SEARCH_LIMIT_DEFAULT: usize = 20;
/// Results are ranked, not keyed: a search pages by offset, up to this far.
pub const SEARCH_OFFSET_MAX: usize = 1_000;
/// Longest query, in characters (a longer one is refused, not cut).
pub const QUERY_CHARS_MAX: usize = 200;
/// Most words of a query that take part in matching (the rest are ignored).
pub const QUERY_WORDS_MAX: usize = 8;

/// One autosuggest answer.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Suggestion {
    pub id: Uuid,
    pub title: String,
    /// `title`, HTML-escaped, with the matched words in `<mark>`.
    pub highlighted: String,
    pub kind: String,
    pub price: i64,
    pub city: Option<String>,
}

/// A search's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Sort {
    #[default]
    Relevance,
    Newest,
    PriceAsc,
    PriceDesc,
}

impl Sort {
    /// Parses `relevance`, `newest`, `price_asc` or `price_desc`.
    pub fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "relevance" => Sort::Relevance,
            "newest" => Sort::Newest,
            "price_asc" => Sort::PriceAsc,
            "price_desc" => Sort::PriceDesc,
            _ => return None,
        })
    }
}

/// A full search: words (may be empty: browse), filters, order and page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchRequest {
    /// Search-key words (`synonyms::query_words`), at most `QUERY_WORDS_MAX`.
    pub words: Vec<String>,
    pub kind: Option<String>,
    pub category: Option<String>,
    pub game: Option<String>,
    pub city: Option<String>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub premium: Option<bool>,
    pub sort: Sort,
    pub limit: usize,
    pub offset: usize,
}

/// One search hit.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Hit {
    pub id: Uuid,
    pub title: String,
    pub highlighted: String,
    pub kind: String,
    pub category: String,
    pub game: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub price: i64,
    pub has_images: bool,
    pub premium: bool,
    pub seller_plan: String,
    pub popularity: i64,
    pub created_at: i64,
}

/// A page of hits, how many matched in all (exact up to `SEARCH_OFFSET_MAX` at least), and
/// facet counts (value -> matching documents) for kind, category, game and city.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    pub total: u64,
    pub facets: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Why a search could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("search database unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("search engine: {0}")]
    Engine(String),
}

/// A search backend.
pub trait SearchIndex: Send + Sync + 'static {
    /// `postgres` or `meilisearch`.
    fn backend(&self) -> &'static str;
    /// Up to `limit` active listings whose titles match `words` (the last one as a prefix),
    /// best first.
    fn suggest<'a>(&'a self, words: &'a [String], limit: usize) -> BoxFuture<'a, Result<Vec<Suggestion>, SearchError>>;
    /// A page of a full search.
    fn search<'a>(&'a self, request: &'a SearchRequest) -> BoxFuture<'a, Result<SearchPage, SearchError>>;
}

/// The facet attributes, in the order answers list them.
pub const FACETS: [&str; 4] = ["kind", "category", "game", "city"];
