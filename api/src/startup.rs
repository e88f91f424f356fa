//! Building and running the HTTP server (port 0 picks a free port, for tests).

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpServer};
use bozor_commands::kafka::KafkaSettings;
use bozor_commands::relay::Relay;
use bozor_commands::{db, migrate, CommandService, EventStore};
use bozor_projections::kafka::KafkaProjector;
use bozor_projections::runtime::AppliedHook;
use bozor_projections::Projector;
use tokio::sync::watch;

use crate::configuration::Settings;
use crate::errors::ApiError;
use crate::routes::{self, AppState};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(crate::configuration::ConfigError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("cannot connect to the database: {0} (hint: is PostgreSQL running at BOZOR_DATABASE_URL?)")]
    Connect(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Migrate(#[from] migrate::MigrateError),
    #[error("search engine (BOZOR_MEILI_URL): {0}")]
    Search(bozor_search_sync::SearchError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
}

/// A built, not yet running, server, with the projectors it runs in process (if any).
pub struct Application {
    port: u16,
    server: Server,
    projectors: Option<Projectors>,
    shutdown_timeout: std::time::Duration,
}

/// Read-side tasks (projectors, and the relay when this process fans out to Kafka), until
/// told to stop.
pub struct Projectors {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Projectors {
    /// Starts a projector for each of `projections` on `pool`: fed from Kafka when `kafka` is
    /// given, else from the event store, woken by the appends of `commands` (this process's
    /// command side) and yielding to its waiting commands when given, else polling.
    pub fn start(
        pool: &deadpool_postgres::Pool,
        projections: Vec<std::sync::Arc<dyn bozor_projections::Projection>>,
        kafka: Option<&KafkaSettings>,
        commands: Option<&bozor_commands::CommandService>,
        on_applied: Option<AppliedHook>,
    ) -> Projectors {
        let appended = commands.map(bozor_commands::CommandService::appended);
        let waiting = commands.map(bozor_commands::CommandService::commands_waiting);
        let (stop, rx) = watch::channel(false);
        let tasks = projections
            .into_iter()
            .map(|p| {
                let rx = rx.clone();
                // A read model built by older code is rebuilt (blue/green) before it goes on.
                let upgrade = {
                    let (pool, p) = (pool.clone(), p.clone());
                    async move {
                        if let Err(e) = bozor_projections::rebuild::upgrade_if_stale(&pool, p.clone()).await {
                            tracing::error!(projection = p.name(), error = %e, "upgrade rebuild failed");
                        }
                    }
                };
                if let Some(kafka) = kafka {
                    let mut projector = KafkaProjector::new(pool.clone(), p, kafka.clone());
                    if let Some(hook) = &on_applied {
                        projector = projector.on_applied(hook.clone());
                    }
                    return tokio::spawn(async move {
                        upgrade.await;
                        projector.run(rx).await
                    });
                }
                let mut projector = Projector::new(pool.clone(), p);
                if let Some(n) = &appended {
                    projector = projector.wake_on(n.clone());
                }
                if let Some(w) = &waiting {
                    projector = projector.yield_to(w.clone());
                }
                if let Some(hook) = &on_applied {
                    projector = projector.on_applied(hook.clone());
                }
                tokio::spawn(async move {
                    upgrade.await;
                    projector.run(rx).await
                })
            })
            .collect();
        Projectors { stop, tasks }
    }

    /// Also runs the relay from the store at `database_url` to `kafka` (active, or standby
    /// while another relay holds the lock), woken by `appended` when given.
    pub fn with_relay(
        mut self,
        database_url: &str,
        kafka: &KafkaSettings,
        appended: Option<watch::Receiver<bozor_commands::service::Appends>>,
    ) -> Projectors {
        let mut relay = Relay::new(database_url, kafka.clone());
        if let Some(n) = appended {
            relay = relay.wake_on(n);
        }
        let rx = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move { relay.run(rx).await }));
        self
    }

    /// Also runs `scheduler` (active, or standby while another holds the lock).
    pub fn with_scheduler(mut self, scheduler: crate::scheduler::Scheduler) -> Projectors {
        let rx = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move { scheduler.run(rx).await }));
        self
    }

    /// Also pushes the search projection's changes to Meilisearch (when configured), calling
    /// `on_pushed` after each batch the engine took.
    pub fn with_meili_sync(
        mut self,
        pool: &deadpool_postgres::Pool,
        meili: Option<&bozor_search_sync::meili::MeiliSearch>,
        on_pushed: std::sync::Arc<dyn Fn() + Send + Sync>,
    ) -> Projectors {
        if let Some(meili) = meili {
            let sync = bozor_search_sync::meili::MeiliSync::new(pool.clone(), meili.clone()).on_pushed(on_pushed);
            let rx = self.stop.subscribe();
            self.tasks.push(tokio::spawn(async move { sync.run(rx).await }));
        }
        self
    }

    /// Asks every task to stop after its current batch and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The Meilisearch index when BOZOR_MEILI_URL is set (search then goes there), else `None`
/// (search is served by PostgreSQL).
pub fn search_engine(settings: &Settings) -> Result<Option<bozor_search_sync::meili::MeiliSearch>, StartError> {
    settings
        .meili
        .as_ref()
        .map(|m| bozor_search_sync::meili::MeiliSearch::new(&m.url, m.key.as_deref(), &m.index))
        .transpose()
        .map_err(StartError::Search)
}

/// Connections of the read side's pool (projectors, the relay's store reads, rebuilds).
pub const WORKER_POOL_MAX: usize = 8;

/// A pool for the read side's workers, apart from the requests' pool: a flood of requests can
/// make requests wait (and answer 503), never stop the projectors that would end the flood's
/// `min_position` waits. Its commits are asynchronous (see `db::read_side_pool`): nothing on it
/// writes what the event store does not hold.
pub fn worker_pool(settings: &Settings) -> Result<deadpool_postgres::Pool, StartError> {
    Ok(db::read_side_pool(&settings.database_url, WORKER_POOL_MAX)?)
}

/// A worker role's own small HTTP endpoint (`BOZOR_STATUS_ADDR`): `GET /healthz` (the process
/// runs), `GET /readyz` (the database answers and none of `projections`, the ones this role
/// runs, has failed; 503 `not_ready` naming what is not) and `GET /metrics` (its counters and
/// histograms, and its database pool), for health checks and Prometheus. The process's signal
/// handling stays with the role: `stop` it when the role stops.
pub fn status_server(
    addr: std::net::SocketAddr,
    role: &'static str,
    pool: deadpool_postgres::Pool,
    metrics_token: Option<String>,
    projections: Vec<&'static str>,
) -> Result<(actix_web::dev::ServerHandle, u16), StartError> {
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Listen { addr, source })?;
    let port = listener.local_addr().map_err(|source| StartError::Listen { addr, source })?.port();
    let server = HttpServer::new(move || {
        let (pool, metrics_token, projections) = (pool.clone(), metrics_token.clone(), projections.clone());
        let ready_pool = pool.clone();
        App::new()
            .route(
                "/healthz",
                web::get().to(move || async move {
                    actix_web::HttpResponse::Ok().json(serde_json::json!({ "status": "ok", "role": role }))
                }),
            )
            .route(
                "/readyz",
                web::get().to(move || {
                    let (pool, projections) = (ready_pool.clone(), projections.clone());
                    async move { role_readiness(role, &pool, &projections).await }
                }),
            )
            .route(
                "/metrics",
                web::get().to(move |req: HttpRequest| {
                    let pool = pool.clone();
                    let token = metrics_token.clone();
                    async move {
                        if !routes::health::may_scrape(&req, token.as_deref()) {
                            return routes::health::scrape_refused();
                        }
                        let mut body = bozor_commands::metrics::METRICS.render();
                        body.push_str(&format!(
                            "# HELP bozor_role_info The role this process runs.\n# TYPE bozor_role_info gauge\n\
                             bozor_role_info{{role=\"{role}\"}} 1\n"
                        ));
                        routes::health::pool_gauges(&mut body, &[("workers", &pool)]);
                        actix_web::HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
                    }
                }),
            )
            .default_service(web::to(no_route))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartError::Listen { addr, source })?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((handle, port))
}

/// A worker role's readiness: the database answers (within 2 s) and none of its projections
/// has failed.
async fn role_readiness(role: &str, pool: &deadpool_postgres::Pool, projections: &[&str]) -> actix_web::HttpResponse {
    let look = async {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let names: Vec<String> = projections.iter().map(|p| (*p).to_owned()).collect();
        let failed: Vec<String> = client
            .query(
                "SELECT projection FROM projection_checkpoints WHERE state = 'failed' AND projection = ANY($1) ORDER BY 1",
                &[&names],
            )
            .await
            .map_err(|e| e.to_string())?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok::<_, String>(failed)
    };
    let (ready, checks) = match tokio::time::timeout(std::time::Duration::from_secs(2), look).await {
        Ok(Ok(failed)) if failed.is_empty() => (
            true,
            serde_json::json!({ "database": { "ok": true }, "projections": { "ok": true, "detail": "none failed" } }),
        ),
        Ok(Ok(failed)) => (
            false,
            serde_json::json!({ "database": { "ok": true },
                                "projections": { "ok": false, "detail": format!("failed: {}", failed.join(", ")) } }),
        ),
        Ok(Err(e)) => (false, serde_json::json!({ "database": { "ok": false, "detail": e } })),
        Err(_) => (false, serde_json::json!({ "database": { "ok": false, "detail": "no answer within 2 s" } })),
    };
    let body =
        serde_json::json!({ "status": if ready { "ready" } else { "not_ready" }, "role": role, "checks": checks });
    if ready {
        actix_web::HttpResponse::Ok().json(body)
    } else {
        actix_web::HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The scheduler of these settings: its clock is the system's, moved by
/// `BOZOR_TEST_CLOCK_OFFSET_SECONDS` (zero outside tests).
pub fn scheduler(
    settings: &Settings,
    workers: &deadpool_postgres::Pool,
    commands: &CommandService,
) -> crate::scheduler::Scheduler {
    let clock = std::sync::Arc::new(crate::clock::SystemClock { offset: settings.clock_offset });
    crate::scheduler::Scheduler::new(
        &settings.database_url,
        workers.clone(),
        commands.clone(),
        clock,
        settings.unpaid_ttl,
    )
}

/// Opens the requests' pool and brings the schema up to date.
pub async fn connect_and_migrate(settings: &Settings) -> Result<deadpool_postgres::Pool, StartError> {
    let pool = db::pool_for_requests(&settings.database_url, settings.db_pool_max, settings.db_pool_wait)?;
    let mut client = pool.get().await?;
    let applied = migrate::migrate(&mut client).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    Ok(pool)
}

/// Deletes expired idempotency records every ten minutes, in bounded batches, for as long as
/// the server runs (a record past its time is also dropped when its key comes back).
async fn prune_idempotency(store: EventStore) {
    const BATCH: i64 = 10_000;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        for _ in 0..100 {
            match store.prune_idempotency(BATCH).await {
                Ok(n) if n < BATCH as u64 => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "idempotency records not pruned");
                    break;
                }
            }
        }
    }
}

async fn no_route(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new("route_not_found", format!("no endpoint {} {}", req.method(), req.path())))
}

/// Headers on every answer: no sniffing, no framing, no referrer, nothing loaded by the
/// JSON API's pages; HSTS in production (served behind TLS).
fn security_headers(production: bool) -> actix_web::middleware::DefaultHeaders {
    let headers = actix_web::middleware::DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"))
        .add(("Cross-Origin-Opener-Policy", "same-origin"));
    match production {
        true => headers.add(("Strict-Transport-Security", "max-age=31536000; includeSubDomains")),
        false => headers,
    }
}

/// Browsers may call from `origins` only (BOZOR_CORS_ORIGINS); none by default. Apps that are
/// not browsers send no Origin and are not affected.
fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::{header, Method};
    let mut cors = actix_cors::Cors::default()
        .allowed_methods([Method::GET, Method::POST])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH])
        .allowed_header("Idempotency-Key")
        .allowed_header("X-Request-Id")
        .expose_headers([header::ETAG, header::RETRY_AFTER])
        .expose_headers(["Idempotent-Replayed"])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

impl Application {
    /// Connects, migrates and binds; with `projectors`, also runs the read models' projectors in
    /// this process (the embedded default), and with Kafka configured, the relay too. Fails when the database or the address is unusable.
    pub async fn build(settings: Settings, projectors: bool) -> Result<Application, StartError> {
        if settings.production {
            crate::configuration::check_production_sms(&settings.auth).map_err(StartError::Config)?;
        }
        let pool = connect_and_migrate(&settings).await?;
        let commands = CommandService::new(EventStore::new(pool.clone(), settings.snapshot_every))
            .with_turns(settings.commands_at_once, settings.db_pool_wait);
        let listing_cache = routes::listing_cache(projectors);
        let list_page_cache = std::sync::Arc::new(routes::ListPageCache::new());
        let suggest_cache = std::sync::Arc::new(routes::ListPageCache::weighed(
            routes::search::SUGGEST_CACHE_BYTES_MAX,
            routes::search::SUGGEST_CACHE_TTL,
        ));
        let invalidate = {
            let (cache, pages, suggestions) = (listing_cache.clone(), list_page_cache.clone(), suggest_cache.clone());
            let hook: AppliedHook = std::sync::Arc::new(move |batch: &bozor_projections::runtime::Applied<'_>| {
                if batch.projection == "listings" {
                    pages.invalidate();
                    for id in batch.streams {
                        cache.invalidate(id);
                    }
                }
                if batch.projection == bozor_search_sync::projection::NAME {
                    suggestions.invalidate();
                }
            });
            hook
        };
        let meili = search_engine(&settings)?;
        let search: std::sync::Arc<dyn bozor_search_sync::SearchIndex> = match &meili {
            Some(m) => std::sync::Arc::new(m.clone()),
            None => std::sync::Arc::new(bozor_search_sync::pg::PgSearch::new(pool.clone())),
        };
        let workers = worker_pool(&settings)?;
        let projectors = projectors.then(|| {
            let read_side = Projectors::start(
                &workers,
                crate::read_models::all(),
                settings.kafka.as_ref(),
                Some(&commands),
                Some(invalidate),
            );
            let suggestions = suggest_cache.clone();
            let read_side = read_side.with_meili_sync(
                &workers,
                meili.as_ref(),
                std::sync::Arc::new(move || suggestions.invalidate()),
            );
            let read_side = read_side.with_scheduler(scheduler(&settings, &workers, &commands));
            match &settings.kafka {
                Some(kafka) => read_side.with_relay(&settings.database_url, kafka, Some(commands.appended())),
                None => read_side,
            }
        });
        if !settings.production {
            let dev = crate::auth::AuthSettings::development();
            if settings.auth.jwt_secret == dev.jwt_secret || settings.auth.master_key == dev.master_key {
                tracing::warn!(
                    "BOZOR_ENV is not production and the published development keys are in use: anyone can mint \
                     tokens and open credentials here. Set BOZOR_JWT_SECRET and BOZOR_MASTER_KEY (and \
                     BOZOR_ENV=production) for anything but development"
                );
            }
        }
        tokio::spawn(prune_idempotency(commands.store().clone()));
        let vault = bozor_commands::vault::Vault::new(pool.clone(), &settings.auth.master_key);
        let state = web::Data::new(AppState {
            auth: crate::auth::Auth::new(&settings.auth),
            vault,
            commands,
            body_bytes_max: settings.body_bytes_max,
            listing_cache,
            list_page_cache,
            list_page_cache_on: settings.list_page_cache,
            workers,
            waiters: tokio::sync::Semaphore::new(routes::queries::MIN_POSITION_WAITERS_MAX),
            search,
            suggest_cache,
            suggest_cache_on: settings.suggest_cache,
            searches: tokio::sync::Semaphore::new(settings.searches_at_once),
            meili,
            payments: settings.payments.clone(),
            database_url: settings.database_url.clone(),
            audits: tokio::sync::Semaphore::new(1),
            exports: std::sync::Arc::new(tokio::sync::Semaphore::new(routes::exports::EXPORTS_AT_ONCE)),
            kafka: settings.kafka.clone(),
            metrics_gauges: tokio::sync::Mutex::new(None),
            metrics_token: settings.metrics_token.clone(),
        });
        let listener = TcpListener::bind(settings.http_addr)
            .map_err(|source| StartError::Listen { addr: settings.http_addr, source })?;
        let port =
            listener.local_addr().map_err(|source| StartError::Listen { addr: settings.http_addr, source })?.port();
        let (cors_origins, production) = (settings.cors_origins.clone(), settings.production);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(actix_web::middleware::from_fn(routes::limit_queries))
                .wrap(actix_web::middleware::from_fn(crate::metrics::record))
                .wrap(actix_web::middleware::from_fn(crate::guard::catch_panics))
                .wrap(cors(&cors_origins))
                .wrap(security_headers(production))
                .configure(routes::configure)
                .default_service(web::to(no_route))
        })
        .workers(settings.http_workers)
        // SIGTERM and SIGINT: stop accepting, finish in-flight requests for this long.
        .shutdown_timeout(u64::try_from(settings.shutdown_timeout.num_seconds()).unwrap_or(30))
        .listen(listener)
        .map_err(|source| StartError::Listen { addr: settings.http_addr, source })?
        .run();
        let shutdown_timeout = settings.shutdown_timeout.to_std().unwrap_or(std::time::Duration::from_secs(30));
        Ok(Application { port, server, projectors, shutdown_timeout })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM): stops accepting, gives
    /// in-flight requests `BOZOR_SHUTDOWN_TIMEOUT`, then lets the projectors finish their batch
    /// and commit within that time again. Fails when they did not.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(p) = self.projectors {
            if tokio::time::timeout(self.shutdown_timeout, p.stop()).await.is_err() {
                return Err(std::io::Error::other(format!(
                    "the projectors did not stop within BOZOR_SHUTDOWN_TIMEOUT ({} s)",
                    self.shutdown_timeout.as_secs()
                )));
            }
        }
        served
    }
}
