//! The PostgreSQL backend, the default when no Meilisearch is configured: it searches the
//! search-sync projection's table directly (so it is as fresh as that projection), matching
//! each query word in the Latin keys as a word prefix (trigram index) or, from four letters,
//! with a typo (`<%`, trigram word similarity), and ranking full searches by full text
//! (`ts_rank` over titles and descriptions in their original and Latin forms).

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;

use crate::document::highlight;
use crate::index::{BoxFuture, SearchError, SearchIndex, SearchPage, SearchRequest, Sort, Suggestion, FACETS};

/// Word similarity a typo'd word needs with some stretch of a key (pg_trgm's `<%`).
pub const TYPO_SIMILARITY: &str = "0.4";
/// Best-ranked listings a dense autosuggest looks through before it asks the trigram index.
pub const SUGGEST_WALK_MAX: i64 = 1_000;
/// The same for typo matches, which cost a trigram comparison per listing and word.
pub const SUGGEST_TYPO_WALK_MAX: i64 = 250;
/// Longest a full search may run on PostgreSQL (then the API answers 503).
pub const SEARCH_TIMEOUT_MS: u32 = 2_000;
/// Words shorter than this match only as prefixes (a trigram typo match of a short word is noise).
pub const TYPO_CHARS_MIN: usize = 4;

/// Search over PostgreSQL.
#[derive(Clone)]
pub struct PgSearch {
    pool: Pool,
}

impl PgSearch {
    /// A backend reading `search_listings` through `pool`.
    pub fn new(pool: Pool) -> PgSearch {
        PgSearch { pool }
    }
}

/// SQL text and parameters built together.
#[derive(Default)]
struct Sql {
    text: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    /// Adds a parameter and returns its placeholder.
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

/// The condition that a word of `column` starts with `word`: a `LIKE` over the column with a
/// space in front, the expression its trigram index is built on. (`LIKE` rather than the
/// regular expression `(^| )word`, which is compiled and run per row, and when the query is
/// planned, per sampled value: under load that was half the database's work.)
fn starts_word(sql: &mut Sql, column: &str, word: &str) -> String {
    let p = sql.param(word_start_pattern(word));
    format!("(' ' || {column}) LIKE {p}")
}

/// The `LIKE` pattern of a word start: `% word%`, with `LIKE`'s own marks in `word` escaped
/// (a search key has letters and digits only, but the pattern does not rely on it).
fn word_start_pattern(word: &str) -> String {
    let mut p = String::with_capacity(word.len() + 3);
    p.push_str("% ");
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The condition that `word` (a search key, letters and digits only) matches: a word of one of
/// `columns` starts with it, or (long enough) is within a typo of it. With `tsv`, the full-text
/// prefix match counts too.
fn word_matches(sql: &mut Sql, word: &str, columns: &[&str], tsv: bool) -> String {
    let mut any: Vec<String> = Vec::new();
    if tsv {
        let w = sql.param(word.to_owned());
        any.push(format!("tsv @@ to_tsquery('simple', quote_literal({w}) || ':*')"));
    }
    for c in columns {
        any.push(starts_word(sql, c, word));
    }
    if word.chars().count() >= TYPO_CHARS_MIN {
        let w = sql.param(word.to_owned());
        for c in columns {
            any.push(format!("{w} <% (' ' || {c})"));
        }
    }
    format!("({})", any.join(" OR "))
}

/// The filters of `r` as conditions.
fn filters(sql: &mut Sql, r: &SearchRequest) -> Vec<String> {
    let mut c = vec!["active".to_owned()];
    for (column, value) in [("kind", &r.kind), ("category", &r.category), ("game", &r.game), ("city", &r.city)] {
        if let Some(v) = value {
            let p = sql.param(v.clone());
            c.push(format!("{column} = {p}"));
        }
    }
    if let Some(v) = r.price_min {
        let p = sql.param(v);
        c.push(format!("price >= {p}"));
    }
    if let Some(v) = r.price_max {
        let p = sql.param(v);
        c.push(format!("price <= {p}"));
    }
    if let Some(v) = r.premium {
        let p = sql.param(v);
        c.push(format!("premium = {p}"));
    }
    c
}

impl SearchIndex for PgSearch {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn suggest<'a>(&'a self, words: &'a [String], limit: usize) -> BoxFuture<'a, Result<Vec<Suggestion>, SearchError>> {
        Box::pin(async move {
            if words.is_empty() {
                return Ok(vec![]);
            }
            let client = self.pool.get().await?;
            // Titles where every word starts a word, best first (premium, popularity, newest);
            // only when none does, those where some word matches with a typo, most similar
            // first. Common words match densely: walking the best `SUGGEST_WALK_MAX` listings
            // in ranking order finds `limit` at once. Rarer ones match sparsely: then the
            // trigram index finds all their matches, few by then, and they are sorted. (Left to
            // choose, the planner walks the ranking for common words that are rare together,
            // reading every row, or sorts thousands of dense matches.)
            let query = |walk: bool, typo: bool| {
                let mut sql = Sql::default();
                let mut conditions = Vec::new();
                let mut similarity = Vec::new();
                for w in words {
                    if typo {
                        conditions.push(word_matches(&mut sql, w, &["title_key"], false));
                        let p = sql.param(w.clone());
                        similarity.push(format!("word_similarity({p}, title_key)"));
                    } else {
                        conditions.push(starts_word(&mut sql, "title_key", w));
                    }
                }
                let limit_p = sql.param(limit as i64);
                let from = match walk {
                    true => format!(
                        "(SELECT listing_id, title, kind, price, city, title_key, premium, popularity, created_at
                          FROM search_listings WHERE active
                          ORDER BY premium DESC, popularity DESC, created_at DESC, listing_id
                          LIMIT {}) best",
                        if typo { SUGGEST_TYPO_WALK_MAX } else { SUGGEST_WALK_MAX }
                    ),
                    false => "search_listings".to_owned(),
                };
                // `+ 0` keeps the ranking index out of the sparse plan.
                let popularity = if walk { "popularity" } else { "popularity + 0" };
                let similar = match typo {
                    true => format!("{} DESC, ", similarity.join(" + ")),
                    false => String::new(),
                };
                // The walk reads the covering index alone (no heap): its rows are active.
                let active = if walk { "" } else { "active AND " };
                sql.text = format!(
                    "SELECT listing_id, title, kind, price, city FROM {from}
                     WHERE {active}{}
                     ORDER BY {similar}premium DESC, {popularity} DESC, created_at DESC, listing_id
                     LIMIT {limit_p}",
                    conditions.join(" AND "),
                );
                sql
            };
            let mut rows = Vec::new();
            let typo_too = words.iter().any(|w| w.chars().count() >= TYPO_CHARS_MIN);
            for typo in [false, true] {
                if typo {
                    if !rows.is_empty() || !typo_too {
                        break;
                    }
                    client.batch_execute(&format!("SET pg_trgm.word_similarity_threshold = {TYPO_SIMILARITY}")).await?;
                }
                // The walk is prepared once per connection (its plan does not depend on the
                // words). The sparse query is planned for its words each time: a generic plan,
                // blind to how rare they are, may scan every row.
                let dense = query(true, typo);
                rows = client.query(&client.prepare_cached(&dense.text).await?, &dense.refs()).await?;
                if rows.len() < limit {
                    let sparse = query(false, typo);
                    rows = client.query(sparse.text.as_str(), &sparse.refs()).await?;
                }
            }
            Ok(rows
                .iter()
                .map(|r| {
                    let title: String = r.get(1);
                    Suggestion {
                        id: r.get(0),
                        highlighted: highlight(&title, words),
                        title,
                        kind: r.get(2),
                        price: r.get(3),
                        city: r.get(4),
                    }
                })
                .collect())
        })
    }

    fn search<'a>(&'a self, r: &'a SearchRequest) -> BoxFuture<'a, Result<SearchPage, SearchError>> {
        Box::pin(async move {
            let mut sql = Sql::default();
            let mut conditions = filters(&mut sql, r);
            // A one-letter word would match nearly everything, through no index: it is left out.
            let words: Vec<String> = r.words.iter().filter(|w| w.chars().count() > 1).cloned().collect();
            let r = &SearchRequest { words, ..r.clone() };
            for w in &r.words {
                conditions.push(word_matches(&mut sql, w, &["title_key", "text_key"], true));
            }
            let conditions = conditions.join(" AND ");
            // The facet query takes these first parameters (the conditions'); the page all.
            let condition_params = sql.params.len();
            // Relevance: full-text rank of the words as prefixes (any of them), titles weighing
            // most; typo-only matches rank after; then premium and popularity.
            let rank = if r.words.is_empty() {
                "0::real".to_owned()
            } else {
                let words = sql.param(r.words.clone());
                format!(
                    "ts_rank(tsv, (SELECT string_agg(quote_literal(w) || ':*', ' | ') FROM unnest({words}::text[]) w)::tsquery)"
                )
            };
            let order = match r.sort {
                Sort::Relevance => "rank DESC, premium DESC, popularity DESC, created_at DESC, listing_id",
                Sort::Newest => "created_at DESC, listing_id",
                Sort::PriceAsc => "price, listing_id",
                Sort::PriceDesc => "price DESC, listing_id",
            };
            let (limit, offset) = (sql.param(r.limit as i64), sql.param(r.offset as i64));
            let page_sql = format!(
                "SELECT listing_id, doc FROM (
                     SELECT listing_id, doc, premium, popularity, created_at, price, {rank} AS rank
                     FROM search_listings WHERE {conditions}) m
                 ORDER BY {order} LIMIT {limit} OFFSET {offset}"
            );
            let facet_sql = format!(
                "SELECT {cols}, count(*) FROM search_listings WHERE {conditions}
                 GROUP BY GROUPING SETS ({sets})",
                cols = FACETS.join(", "),
                sets = FACETS.map(|f| format!("({f})")).join(", "),
            );
            let mut client = self.pool.get().await?;
            let tx = client.build_transaction().read_only(true).start().await?;
            tx.batch_execute(&format!(
                "SET LOCAL pg_trgm.word_similarity_threshold = {TYPO_SIMILARITY};
                 SET LOCAL statement_timeout = {SEARCH_TIMEOUT_MS}"
            ))
            .await?;
            let params = sql.refs();
            let rows = tx.query(&page_sql, &params).await?;
            let facet_rows = tx.query(&facet_sql, &params[..condition_params]).await?;
            tx.commit().await?;
            let mut hits = Vec::with_capacity(rows.len());
            for row in &rows {
                let doc: crate::document::Document = serde_json::from_value(row.get(1))
                    .map_err(|e| SearchError::Engine(format!("stored document: {e}")))?;
                hits.push(doc.hit(&r.words));
            }
            let mut facets: BTreeMap<String, BTreeMap<String, u64>> =
                FACETS.iter().map(|f| (f.to_string(), BTreeMap::new())).collect();
            for row in &facet_rows {
                let n = row.get::<_, i64>(4) as u64;
                for (i, f) in FACETS.iter().enumerate() {
                    if let Some(v) = row.get::<_, Option<String>>(i) {
                        facets.get_mut(*f).expect("facet").insert(v, n);
                    }
                }
            }
            // Every document has a kind: the kind counts add up to all that matched.
            let total = facets["kind"].values().sum();
            Ok(SearchPage { hits, total, facets })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::word_start_pattern;

    #[test]
    fn a_word_start_is_a_like_pattern_with_its_marks_escaped() {
        assert_eq!(word_start_pattern("kobal"), "% kobal%");
        assert_eq!(word_start_pattern("a%b_c\\"), "% a\\%b\\_c\\\\%");
    }
}
