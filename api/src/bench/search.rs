//! `bozor bench search`: on BOZOR_DATABASE_URL (best a database of its own: it rebuilds the
//! search tables there), seeds the demo marketplace through the command side unless it is there
//! already, then measures on the configured backend:
//! - indexing: every listing from an empty index to searchable (the search projection from
//!   the event store; on Meilisearch, also a fresh index built and swapped in);
//! - recall: the cross-script set (`seed::RECALL`), the target in the top 5 of a full search and
//!   of autosuggest; on Meilisearch also what a plain index (original text, default settings,
//!   raw queries: no transliteration) finds on the same set;
//! - autosuggest latency through the HTTP API from `clients` concurrent clients typing real
//!   prefixes, with the cache on and off; on Meilisearch also direct engine queries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bozor_projections::Projector;
use bozor_search_sync::index::SearchIndex;
use serde::Serialize;

use crate::configuration::Settings;
use crate::seed::{self, DemoSize, RECALL, SHOWCASE};

#[derive(Debug, Serialize)]
pub struct SearchReport {
    pub backend: &'static str,
    /// Active listings indexed.
    pub listings: usize,
    pub seed_seconds: f64,
    pub index_seconds: f64,
    pub meili_reindex_seconds: Option<f64>,
    pub recall_queries: usize,
    pub recall_search_top5: usize,
    pub recall_suggest_top5: usize,
    pub plain_meili_recall_top5: Option<usize>,
    pub missed: Vec<String>,
    pub clients: usize,
    pub suggest: BTreeMap<&'static str, Latency>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub requests: usize,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Prefixes buyers type: every prefix (2 letters and up) of the words of the recall queries and
/// the showcase titles, and of the words of those queries joined.
fn prefixes() -> Vec<String> {
    let mut out = Vec::new();
    let texts = RECALL.iter().map(|(q, _)| *q).chain(SHOWCASE.iter().map(|s| s.title));
    for text in texts {
        let chars: Vec<char> = text.chars().collect();
        for end in 2..=chars.len() {
            if chars[end - 1] != ' ' {
                out.push(chars[..end].iter().collect());
            }
        }
    }
    out
}

pub async fn run(settings: &Settings, listings: usize, clients: usize, seconds: u64) -> Result<SearchReport, String> {
    let mut settings = settings.clone();
    settings.db_pool_max = 48;
    settings.auth.rate.queries_per_ip = 1_000_000;
    settings.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let pool = crate::startup::connect_and_migrate(&settings).await.map_err(err)?;
    let seeded = Instant::now();
    let demo = seed::demo(&pool, DemoSize { listings, seed: 1, concurrency: 16 }).await.map_err(err)?;
    let seed_seconds = seeded.elapsed().as_secs_f64();
    if !demo.written {
        tracing::info!("the demo was there already: indexing it again");
    }

    // Indexing from empty: the search projection from the first event.
    let workers = crate::startup::worker_pool(&settings).map_err(err)?;
    {
        let c = workers.get().await.map_err(err)?;
        c.batch_execute(
            "DELETE FROM projection_checkpoints WHERE projection = 'search';
             DELETE FROM projection_stream_versions WHERE projection = 'search';
             TRUNCATE search_listings, search_states;",
        )
        .await
        .map_err(err)?;
    }
    let indexed = Instant::now();
    let projector = Projector::new(workers.clone(), std::sync::Arc::new(bozor_search_sync::SearchProjection));
    projector.register().await.map_err(err)?;
    while projector.step().await.map_err(err)? > 0 {}
    let index_seconds = indexed.elapsed().as_secs_f64();
    // What is searchable (a demo seeded earlier, smaller or larger, is reused as it is).
    let active: i64 = workers
        .get()
        .await
        .map_err(err)?
        .query_one("SELECT count(*) FROM search_listings WHERE active", &[])
        .await
        .map_err(err)?
        .get(0);
    // The steady state autovacuum reaches soon after: statistics, and a visibility map that lets
    // autosuggest read its covering index alone.
    workers.get().await.map_err(err)?.batch_execute("VACUUM ANALYZE search_listings").await.map_err(err)?;

    let meili = crate::startup::search_engine(&settings).map_err(err)?;
    let mut meili_reindex_seconds = None;
    let mut plain_meili_recall_top5 = None;
    let search: std::sync::Arc<dyn SearchIndex> = match (&meili, &settings.meili) {
        (Some(m), Some(meili_settings)) => {
            let started = Instant::now();
            bozor_search_sync::meili::MeiliSync::new(workers.clone(), m.clone()).reindex().await.map_err(err)?;
            meili_reindex_seconds = Some(started.elapsed().as_secs_f64());
            plain_meili_recall_top5 = Some(plain_meili_recall(&workers, meili_settings).await?);
            std::sync::Arc::new(m.clone())
        }
        _ => std::sync::Arc::new(bozor_search_sync::pg::PgSearch::new(pool.clone())),
    };

    // Recall.
    let (mut in_search, mut in_suggest, mut missed) = (0, 0, Vec::new());
    for (query, target) in RECALL {
        let id = seed::showcase_id(1, *target);
        let words = bozor_search_sync::synonyms::query_words(query);
        let request = bozor_search_sync::index::SearchRequest { words: words.clone(), limit: 5, ..Default::default() };
        let found = search.search(&request).await.map_err(err)?.hits.iter().any(|h| h.id == id);
        let suggested = search.suggest(&words, 5).await.map_err(err)?.iter().any(|s| s.id == id);
        in_search += usize::from(found);
        in_suggest += usize::from(suggested);
        if !found || !suggested {
            missed.push(format!("{query} (search {found}, suggest {suggested})"));
        }
    }

    // Latency through the API: cached, uncached; on Meilisearch, the engine directly too.
    let mut suggest = BTreeMap::new();
    let prefixes = std::sync::Arc::new(prefixes());
    for (name, cache) in [("api cached", true), ("api uncached", false)] {
        let mut s = settings.clone();
        s.suggest_cache = cache;
        let app = crate::startup::Application::build(s, false).await.map_err(err)?;
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::new();
        if cache {
            // Cached means answered from the cache: every prefix is asked once first.
            for q in prefixes.iter() {
                http.get(format!("{base}/v1/search/suggest")).query(&[("q", q.as_str())]).send().await.map_err(err)?;
            }
        }
        let prefixes = prefixes.clone();
        let latency = measure(clients, seconds, move |i| {
            let (http, url) = (http.clone(), format!("{base}/v1/search/suggest"));
            let q = prefixes[i % prefixes.len()].clone();
            async move {
                let r = http.get(url).query(&[("q", q.as_str())]).send().await.map_err(err)?;
                if !r.status().is_success() {
                    return Err(format!("suggest answered {}", r.status()));
                }
                let hit = r.headers().get("x-cache").is_some_and(|v| v == "hit");
                r.bytes().await.map_err(err)?;
                Ok(hit)
            }
        })
        .await?;
        if let Some(hits) = latency.1 {
            suggest.insert("api cache hits only", hits);
        }
        suggest.insert(name, latency.0);
    }
    if let Some(m) = &meili {
        let (m, prefixes) = (m.clone(), prefixes.clone());
        let latency = measure(clients, seconds, move |i| {
            let (m, q) = (m.clone(), prefixes[i % prefixes.len()].clone());
            async move {
                let words = bozor_search_sync::synonyms::query_words(&q);
                m.suggest(&words, 8).await.map_err(err)?;
                Ok(false)
            }
        })
        .await?;
        suggest.insert("meilisearch direct", latency.0);
    }
    Ok(SearchReport {
        backend: search.backend(),
        listings: active as usize,
        seed_seconds: (seed_seconds * 10.0).round() / 10.0,
        index_seconds: (index_seconds * 10.0).round() / 10.0,
        meili_reindex_seconds: meili_reindex_seconds.map(|s| (s * 10.0).round() / 10.0),
        recall_queries: RECALL.len(),
        recall_search_top5: in_search,
        recall_suggest_top5: in_suggest,
        plain_meili_recall_top5,
        missed,
        clients,
        suggest,
    })
}

/// Runs `call(i)` from `clients` concurrent loops for `seconds`: latency percentiles of all
/// calls, and of those that said they were cache hits (if any).
async fn measure<F, Fut>(clients: usize, seconds: u64, call: F) -> Result<(Latency, Option<Latency>), String>
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<bool, String>> + Send,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let (mut samples, mut hits) = (Vec::new(), Vec::new());
            let mut i = c * 7919;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let hit = call(i).await?;
                let micros = sent.elapsed().as_micros() as u64;
                samples.push(micros);
                if hit {
                    hits.push(micros);
                }
                i += 1;
            }
            Ok::<_, String>((samples, hits))
        }));
    }
    let (mut all, mut hits) = (Vec::new(), Vec::new());
    for t in tasks {
        let (mut s, mut h) = t.await.map_err(err)??;
        all.append(&mut s);
        hits.append(&mut h);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let latency = |mut v: Vec<u64>| {
        v.sort_unstable();
        let pct = |p: f64| match v.len() {
            0 => 0.0,
            n => v[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0,
        };
        Latency {
            requests: v.len(),
            requests_per_sec: (v.len() as f64 / elapsed).round(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
        }
    };
    let hits = (!hits.is_empty()).then(|| latency(hits));
    Ok((latency(all), hits))
}

/// What a plain Meilisearch index finds of the recall set: the original title and description
/// only, default settings, the raw query (no transliteration, no synonyms).
async fn plain_meili_recall(
    workers: &deadpool_postgres::Pool,
    m: &crate::configuration::MeiliSettings,
) -> Result<usize, String> {
    let client = meilisearch_sdk::client::Client::new(&m.url, m.key.as_deref()).map_err(err)?;
    let uid = format!("{}_plain", m.index);
    let _ = client.delete_index(&uid).await;
    #[derive(Serialize, serde::Deserialize)]
    struct Plain {
        id: uuid::Uuid,
        title: String,
        description: String,
    }
    let c = workers.get().await.map_err(err)?;
    let rows = c
        .query("SELECT listing_id, doc->>'title', doc->>'description' FROM search_listings WHERE active", &[])
        .await
        .map_err(err)?;
    let docs: Vec<Plain> =
        rows.iter().map(|r| Plain { id: r.get(0), title: r.get(1), description: r.get(2) }).collect();
    let index = client.index(&uid);
    for chunk in docs.chunks(10_000) {
        let task = index.add_or_replace(chunk, Some("id")).await.map_err(err)?;
        task.wait_for_completion(&client, Some(Duration::from_millis(50)), Some(Duration::from_secs(300)))
            .await
            .map_err(err)?;
    }
    let mut found = 0;
    for (query, target) in RECALL {
        let id = seed::showcase_id(1, *target);
        let hits = index.search().with_query(query).with_limit(5).execute::<Plain>().await.map_err(err)?;
        found += usize::from(hits.hits.iter().any(|h| h.result.id == id));
    }
    let _ = client.delete_index(&uid).await;
    Ok(found)
}
