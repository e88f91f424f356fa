//! The Meilisearch backend (BOZOR_MEILI_URL, BOZOR_MEILI_KEY), through meilisearch-sdk.
//!
//! - Index settings live here in code and are applied (idempotently) before any document.
//! - `MeiliSync` pushes the search-sync projection's changes to the engine in `seq` order, in
//!   bounded batches, awaiting every task and recording failures in the status an admin sees;
//!   an engine outage delays indexing and loses nothing: it retries with backoff and resumes from
//!   its checkpoint.
//! - `reindex` builds a fresh index next to the live one and swaps it in.

use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::Pool;
use meilisearch_sdk::client::{Client, SwapIndexes};
use meilisearch_sdk::search::Selectors;
use meilisearch_sdk::settings::{MinWordSizeForTypos, PaginationSetting, Settings, TypoToleranceSettings};
use meilisearch_sdk::task_info::TaskInfo;
use meilisearch_sdk::tasks::Task;
use tokio::sync::watch;
use uuid::Uuid;

use crate::document::{highlight, Document};
use crate::index::{BoxFuture, SearchError, SearchIndex, SearchPage, SearchRequest, Sort, Suggestion, FACETS};

/// The sync's row in `projection_checkpoints` (and the admin status).
pub const SYNC_NAME: &str = "search.meilisearch";
/// The sync's checkpoint row, made once.
const REGISTER_SQL: &str =
    "INSERT INTO projection_checkpoints (projection, version, feed) VALUES ($1, 1, 'search') ON CONFLICT DO NOTHING";
/// Most changes pushed in one batch.
pub const BATCH_MAX: i64 = 1_000;
/// How long an idle sync waits before it looks for changes again.
pub const IDLE_POLL: Duration = Duration::from_millis(100);
/// Longest wait between retries while the engine is unreachable or failing.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Longest wait for one task.
pub const TASK_TIMEOUT: Duration = Duration::from_secs(120);

fn engine(e: impl std::fmt::Display) -> SearchError {
    SearchError::Engine(e.to_string())
}

/// A Meilisearch index of listings.
#[derive(Clone)]
pub struct MeiliSearch {
    client: Client,
    uid: String,
}

impl MeiliSearch {
    /// The index `uid` at `url` (with `key`, if the engine has a master key).
    pub fn new(url: &str, key: Option<&str>, uid: &str) -> Result<MeiliSearch, SearchError> {
        Ok(MeiliSearch { client: Client::new(url, key).map_err(engine)?, uid: uid.to_owned() })
    }

    /// The index uid.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Whether the engine answers its health check. Fails with the engine's error.
    pub async fn health(&self) -> Result<(), SearchError> {
        self.client.health().await.map(|_| ()).map_err(engine)
    }

    /// The settings, in code: what is searched (keys first, then the original text), filtered,
    /// sorted; the ranking rules (an asked-for sort, relevance, then the premium boost and
    /// popularity); typo
    /// tolerance as the PostgreSQL backend has it; the synonym groups.
    pub fn settings() -> Settings {
        let mut synonyms: HashMap<String, Vec<String>> = HashMap::new();
        for group in crate::synonyms::GROUPS {
            let keys: Vec<String> = group.iter().map(|m| crate::translit::key(m)).collect();
            for k in &keys {
                let others: Vec<String> = keys.iter().filter(|o| *o != k).cloned().collect();
                synonyms.entry(k.clone()).or_default().extend(others);
            }
        }
        Settings::new()
            .with_searchable_attributes(["title_key", "title", "text_key", "description"])
            .with_filterable_attributes(["kind", "category", "game", "city", "price", "premium", "seller_plan"])
            .with_sortable_attributes(["price", "created_at", "popularity", "premium"])
            // `sort` first: a sort a buyer asks for (price, newest) orders every match, not only
            // matches equally relevant; without one it does nothing.
            .with_ranking_rules([
                "sort",
                "words",
                "typo",
                "proximity",
                "attribute",
                "exactness",
                "premium:desc",
                "popularity:desc",
                "created_at:desc",
            ])
            .with_typo_tolerance(TypoToleranceSettings {
                enabled: Some(true),
                disable_on_attributes: None,
                disable_on_words: None,
                min_word_size_for_typos: Some(MinWordSizeForTypos { one_typo: Some(4), two_typos: Some(9) }),
            })
            .with_synonyms(synonyms)
            // Deep enough for the last page the API pages to (offset 1 000, 50 a page).
            .with_pagination(PaginationSetting {
                max_total_hits: crate::index::SEARCH_OFFSET_MAX + crate::index::SEARCH_LIMIT_MAX,
            })
    }

    /// Waits for `task` and fails when the engine reports it failed.
    async fn settle(&self, task: TaskInfo) -> Result<(), SearchError> {
        match task.wait_for_completion(&self.client, Some(Duration::from_millis(20)), Some(TASK_TIMEOUT)).await {
            Ok(Task::Succeeded { .. }) => Ok(()),
            Ok(Task::Failed { content }) => {
                Err(SearchError::Engine(format!("task {} failed: {}", content.task.uid, content.error.error_message)))
            }
            Ok(_) => Err(SearchError::Engine("task neither succeeded nor failed".into())),
            Err(e) => Err(engine(e)),
        }
    }

    /// Creates index `uid` if it does not exist and applies the settings (a no-op when they are
    /// already in force), waiting for both. Returns whether the index had to be created.
    pub async fn ensure_index(&self, uid: &str) -> Result<bool, SearchError> {
        let missing = match self.client.get_index(uid).await {
            Ok(_) => false,
            Err(meilisearch_sdk::errors::Error::Meilisearch(e))
                if e.error_code == meilisearch_sdk::errors::ErrorCode::IndexNotFound =>
            {
                true
            }
            Err(e) => return Err(engine(e)),
        };
        if missing {
            let task = self.client.create_index(uid, Some("id")).await.map_err(engine)?;
            // Another process may have created it meanwhile: that failure is fine.
            let _ = self.settle(task).await;
        }
        let task = self.client.index(uid).set_settings(&Self::settings()).await.map_err(engine)?;
        self.settle(task).await?;
        Ok(missing)
    }

    /// Upserts `docs` and deletes `gone` from index `uid`, waiting for both tasks.
    ///
    /// A document goes without its `attributes` map: their names are the seller's choice, and
    /// every new name would be a new field of the index, which has a bounded number of them
    /// (attribute names and values are searchable through `text_key`).
    pub async fn write(&self, uid: &str, docs: &[Document], gone: &[Uuid]) -> Result<(), SearchError> {
        let index = self.client.index(uid);
        if !docs.is_empty() {
            let docs: Vec<serde_json::Value> = docs
                .iter()
                .map(|d| {
                    let mut v = serde_json::to_value(d).map_err(engine)?;
                    if let Some(o) = v.as_object_mut() {
                        o.remove("attributes");
                    }
                    Ok(v)
                })
                .collect::<Result<_, SearchError>>()?;
            let task = index.add_or_replace(&docs, Some("id")).await.map_err(engine)?;
            self.settle(task).await?;
        }
        if !gone.is_empty() {
            let ids: Vec<String> = gone.iter().map(Uuid::to_string).collect();
            let task = index.delete_documents(&ids).await.map_err(engine)?;
            self.settle(task).await?;
        }
        Ok(())
    }
}

/// A filter value as a Meilisearch string literal.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The filter expression of a request.
fn filter_of(r: &SearchRequest) -> String {
    let mut parts = Vec::new();
    for (name, value) in [("kind", &r.kind), ("category", &r.category), ("game", &r.game), ("city", &r.city)] {
        if let Some(v) = value {
            parts.push(format!("{name} = {}", quoted(v)));
        }
    }
    if let Some(v) = r.price_min {
        parts.push(format!("price >= {v}"));
    }
    if let Some(v) = r.price_max {
        parts.push(format!("price <= {v}"));
    }
    if let Some(v) = r.premium {
        parts.push(format!("premium = {v}"));
    }
    parts.join(" AND ")
}

impl SearchIndex for MeiliSearch {
    fn backend(&self) -> &'static str {
        "meilisearch"
    }

    fn suggest<'a>(&'a self, words: &'a [String], limit: usize) -> BoxFuture<'a, Result<Vec<Suggestion>, SearchError>> {
        Box::pin(async move {
            if words.is_empty() {
                return Ok(vec![]);
            }
            let q = words.join(" ");
            let index = self.client.index(&self.uid);
            let mut query = index.search();
            query
                .with_query(&q)
                .with_limit(limit)
                .with_attributes_to_search_on(&["title_key", "title"])
                .with_attributes_to_retrieve(Selectors::Some(&["id", "title", "kind", "price", "city"]));
            let found = query.execute::<SuggestDoc>().await.map_err(engine)?;
            Ok(found
                .hits
                .into_iter()
                .map(|h| {
                    let d = h.result;
                    Suggestion {
                        highlighted: highlight(&d.title, words),
                        id: d.id,
                        title: d.title,
                        kind: d.kind,
                        price: d.price,
                        city: d.city,
                    }
                })
                .collect())
        })
    }

    fn search<'a>(&'a self, r: &'a SearchRequest) -> BoxFuture<'a, Result<SearchPage, SearchError>> {
        Box::pin(async move {
            let q = r.words.join(" ");
            let filter = filter_of(r);
            let sort: &[&str] = match r.sort {
                Sort::Relevance => &[],
                Sort::Newest => &["created_at:desc"],
                Sort::PriceAsc => &["price:asc"],
                Sort::PriceDesc => &["price:desc"],
            };
            let index = self.client.index(&self.uid);
            let mut query = index.search();
            query.with_query(&q).with_limit(r.limit).with_offset(r.offset).with_facets(Selectors::Some(&FACETS));
            if !filter.is_empty() {
                query.with_filter(&filter);
            }
            if !sort.is_empty() {
                query.with_sort(sort);
            }
            let found = query.execute::<Document>().await.map_err(engine)?;
            let mut facets: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> =
                FACETS.iter().map(|f| (f.to_string(), Default::default())).collect();
            for (name, values) in found.facet_distribution.unwrap_or_default() {
                if let Some(f) = facets.get_mut(&name) {
                    f.extend(values.into_iter().map(|(v, n)| (v, n as u64)));
                }
            }
            Ok(SearchPage {
                total: found.estimated_total_hits.or(found.total_hits).unwrap_or(0) as u64,
                hits: found.hits.into_iter().map(|h| h.result.hit(&r.words)).collect(),
                facets,
            })
        })
    }
}

/// The fields a suggestion reads.
#[derive(serde::Deserialize)]
struct SuggestDoc {
    id: Uuid,
    title: String,
    kind: String,
    price: i64,
    city: Option<String>,
}

/// Pushes the search-sync projection's changes to Meilisearch.
pub struct MeiliSync {
    pool: Pool,
    meili: MeiliSearch,
    on_pushed: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
    /// The index exists with the settings in force (checked again after any failure).
    ready: std::sync::atomic::AtomicBool,
}

impl MeiliSync {
    /// A sync from `pool`'s `search_listings` to `meili`.
    pub fn new(pool: Pool, meili: MeiliSearch) -> MeiliSync {
        MeiliSync { pool, meili, on_pushed: None, ready: Default::default() }
    }

    /// Calls `hook` after every batch the engine has taken (to drop cached answers).
    pub fn on_pushed(mut self, hook: std::sync::Arc<dyn Fn() + Send + Sync>) -> MeiliSync {
        self.on_pushed = Some(hook);
        self
    }

    async fn register(&self) -> Result<(), SearchError> {
        self.pool.get().await?.execute(REGISTER_SQL, &[&SYNC_NAME]).await?;
        Ok(())
    }

    /// Pushes the next batch of changes, if any. Returns how many it pushed (0: caught up).
    pub async fn step(&self) -> Result<usize, SearchError> {
        if !self.ready.load(std::sync::atomic::Ordering::Relaxed) {
            // First step, or the first after a failure: the checkpoint row exists, committed
            // on its own so that a failure can be recorded on it.
            self.register().await?;
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // One pusher at a time (and never during a reindex's swap).
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&SYNC_NAME]).await?;
        if !self.ready.load(std::sync::atomic::Ordering::Relaxed) {
            // An index that is not there (another BOZOR_MEILI_INDEX, or the engine lost its
            // data) holds nothing the checkpoint says was pushed: start over.
            if self.meili.ensure_index(self.meili.uid()).await? {
                tx.execute("UPDATE projection_checkpoints SET position = 0 WHERE projection = $1", &[&SYNC_NAME])
                    .await?;
            }
            self.ready.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let after: i64 = tx
            .query_opt("SELECT position FROM projection_checkpoints WHERE projection = $1", &[&SYNC_NAME])
            .await?
            .map_or(0, |r| r.get(0));
        let rows = tx
            .query(
                "SELECT seq, listing_id, doc FROM search_listings WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &BATCH_MAX],
            )
            .await?;
        let Some(last) = rows.last().map(|r| r.get::<_, i64>(0)) else {
            tx.execute(
                "UPDATE projection_checkpoints SET kafka_lag_events = 0, kafka_lag_seconds = 0,
                        state = CASE WHEN state = 'failed' THEN 'live' ELSE state END, last_error = NULL
                 WHERE projection = $1 AND (kafka_lag_events <> 0 OR state = 'failed')",
                &[&SYNC_NAME],
            )
            .await?;
            tx.commit().await?;
            return Ok(0);
        };
        let (docs, gone) = split(&rows)?;
        self.meili.write(self.meili.uid(), &docs, &gone).await?;
        tx.execute(
            "UPDATE projection_checkpoints SET position = $2, events = events + $3, updated_at = now(),
                    state = CASE WHEN state = 'failed' THEN 'live' ELSE state END, last_error = NULL,
                    kafka_lag_events = (SELECT count(*) FROM (SELECT 1 FROM search_listings WHERE seq > $2 LIMIT 100000) l)
             WHERE projection = $1",
            &[&SYNC_NAME, &last, &(rows.len() as i64)],
        )
        .await?;
        tx.commit().await?;
        if let Some(hook) = &self.on_pushed {
            hook();
        }
        Ok(rows.len())
    }

    /// Runs until `stop` turns true; on failure records the error (shown in the admin status)
    /// and retries with a backoff doubling up to `BACKOFF_MAX`.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(500);
        while !*stop.borrow() {
            let pause = match self.step().await {
                Ok(0) => IDLE_POLL,
                Ok(_) => {
                    backoff = Duration::from_millis(500);
                    Duration::ZERO
                }
                Err(e) => {
                    self.ready.store(false, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(error = %e, retry_in = ?backoff, "search sync failed; retrying");
                    self.mark_failed(&e).await;
                    let pause = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    pause
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    async fn mark_failed(&self, e: &SearchError) {
        let Ok(client) = self.pool.get().await else { return };
        let _ = client
            .execute(
                "UPDATE projection_checkpoints SET state = 'failed', last_error = $2, updated_at = now()
                 WHERE projection = $1",
                &[&SYNC_NAME, &e.to_string()],
            )
            .await;
    }

    /// Builds a fresh index from `search_listings` next to the live one, swaps it in and drops
    /// the old one; search keeps answering from the old index until the swap. Returns the
    /// documents indexed.
    pub async fn reindex(&self) -> Result<u64, SearchError> {
        self.register().await?;
        // One reindex at a time, whichever process starts it: a session lock held to the end.
        let mut client = self.pool.get().await?;
        let claimed: bool =
            client.query_one("SELECT pg_try_advisory_lock(hashtext('search.meilisearch.reindex'))", &[]).await?.get(0);
        if !claimed {
            return Err(SearchError::Engine("another search reindex is running".into()));
        }
        let result = self.reindex_locked(&mut client).await;
        let _ = client.execute("SELECT pg_advisory_unlock(hashtext('search.meilisearch.reindex'))", &[]).await;
        result
    }

    async fn reindex_locked(&self, client: &mut deadpool_postgres::Client) -> Result<u64, SearchError> {
        let live = self.meili.uid().to_owned();
        // A uid of its own: nothing another run left behind is reused.
        let next = format!("{live}_next_{}", Uuid::new_v4().simple());
        self.meili.ensure_index(&live).await?;
        self.meili.ensure_index(&next).await?;
        // Everything up to `upto`, from one snapshot, without holding up the live sync.
        let upto: i64;
        let mut pushed = 0u64;
        {
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .start()
                .await?;
            upto = tx.query_one("SELECT coalesce(max(seq), 0) FROM search_listings", &[]).await?.get(0);
            let mut after = Uuid::nil();
            loop {
                let rows = tx
                    .query(
                        "SELECT seq, listing_id, doc FROM search_listings WHERE active AND listing_id > $1
                         ORDER BY listing_id LIMIT 5000",
                        &[&after],
                    )
                    .await?;
                let Some(last) = rows.last().map(|r| r.get::<_, Uuid>(1)) else { break };
                let (docs, _) = split(&rows)?;
                pushed += docs.len() as u64;
                self.meili.write(&next, &docs, &[]).await?;
                after = last;
            }
            tx.commit().await?;
        }
        // Then, with the live sync paused, what changed since, and the swap.
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&SYNC_NAME]).await?;
        let mut after = upto;
        loop {
            let rows = tx
                .query(
                    "SELECT seq, listing_id, doc FROM search_listings WHERE seq > $1 ORDER BY seq LIMIT $2",
                    &[&after, &BATCH_MAX],
                )
                .await?;
            let Some(last) = rows.last().map(|r| r.get::<_, i64>(0)) else { break };
            let (docs, gone) = split(&rows)?;
            self.meili.write(&next, &docs, &gone).await?;
            after = last;
        }
        let task = self
            .meili
            .client
            .swap_indexes([&SwapIndexes { indexes: (live.clone(), next.clone()) }])
            .await
            .map_err(engine)?;
        self.meili.settle(task).await?;
        tx.execute(
            "UPDATE projection_checkpoints SET position = $2, updated_at = now(), state = 'live', last_error = NULL,
                    kafka_lag_events = 0
             WHERE projection = $1",
            &[&SYNC_NAME, &after],
        )
        .await?;
        tx.commit().await?;
        let task = self.meili.client.delete_index(&next).await.map_err(engine)?;
        self.meili.settle(task).await?;
        if let Some(hook) = &self.on_pushed {
            hook();
        }
        Ok(pushed)
    }
}

/// Rows of `(seq, listing_id, doc)` as documents to upsert and ids to delete.
fn split(rows: &[tokio_postgres::Row]) -> Result<(Vec<Document>, Vec<Uuid>), SearchError> {
    let (mut docs, mut gone) = (Vec::new(), Vec::new());
    for r in rows {
        match r.get::<_, Option<serde_json::Value>>(2) {
            Some(doc) => docs
                .push(serde_json::from_value(doc).map_err(|e| SearchError::Engine(format!("stored document: {e}")))?),
            None => gone.push(r.get(1)),
        }
    }
    Ok((docs, gone))
}
