//! Building and running the HTTP server (port 0 picks a free port, for tests).

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpServer};
use bozor_commands::{db, migrate, CommandService, EventStore};
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
    Db(#[from] db::DbError),
    #[error("cannot connect to the database: {0} (hint: is PostgreSQL running at BOZOR_DATABASE_URL?)")]
    Connect(#[from] deadpool_postgres::PoolError),
    #[error(transparent)]
    Migrate(#[from] migrate::MigrateError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
}

/// A built, not yet running, server, with the projectors it runs in process (if any).
pub struct Application {
    port: u16,
    server: Server,
    projectors: Option<Projectors>,
}

/// Projectors running as tasks, fed from the event store, until told to stop.
pub struct Projectors {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Projectors {
    /// Starts every read model's projector on `pool`, woken by `appended` (appends in this
    /// process) when given, else polling.
    pub fn start(
        pool: &deadpool_postgres::Pool,
        appended: Option<watch::Receiver<u64>>,
        on_applied: Option<AppliedHook>,
    ) -> Projectors {
        let (stop, rx) = watch::channel(false);
        let tasks = bozor_projections::all()
            .into_iter()
            .map(|p| {
                let mut projector = Projector::new(pool.clone(), p);
                if let Some(n) = &appended {
                    projector = projector.wake_on(n.clone());
                }
                if let Some(hook) = &on_applied {
                    projector = projector.on_applied(hook.clone());
                }
                let rx = rx.clone();
                tokio::spawn(async move { projector.run(rx).await })
            })
            .collect();
        Projectors { stop, tasks }
    }

    /// Asks every projector to stop after its current batch and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Opens the pool and brings the schema up to date.
pub async fn connect_and_migrate(settings: &Settings) -> Result<deadpool_postgres::Pool, StartError> {
    let pool = db::pool(&settings.database_url, settings.db_pool_max)?;
    let mut client = pool.get().await?;
    let applied = migrate::migrate(&mut client).await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    Ok(pool)
}

async fn no_route(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::new("route_not_found", format!("no endpoint {} {}", req.method(), req.path())))
}

impl Application {
    /// Connects, migrates and binds; with `projectors`, also runs the read models' projectors in
    /// this process (the embedded default). Fails when the database or the address is unusable.
    pub async fn build(settings: Settings, projectors: bool) -> Result<Application, StartError> {
        let pool = connect_and_migrate(&settings).await?;
        let commands = CommandService::new(EventStore::new(pool.clone(), settings.snapshot_every));
        let listing_cache = routes::listing_cache();
        let invalidate = {
            let cache = listing_cache.clone();
            let hook: AppliedHook = std::sync::Arc::new(move |projection: &str, streams: &[uuid::Uuid]| {
                if projection == "listings" {
                    for id in streams {
                        cache.invalidate(id);
                    }
                }
            });
            hook
        };
        let projectors = projectors.then(|| Projectors::start(&pool, Some(commands.appended()), Some(invalidate)));
        let state = web::Data::new(AppState { commands, body_bytes_max: settings.body_bytes_max, listing_cache });
        let listener = TcpListener::bind(settings.http_addr)
            .map_err(|source| StartError::Listen { addr: settings.http_addr, source })?;
        let port =
            listener.local_addr().map_err(|source| StartError::Listen { addr: settings.http_addr, source })?.port();
        let server = HttpServer::new(move || {
            App::new().app_data(state.clone()).configure(routes::configure).default_service(web::to(no_route))
        })
        .workers(settings.http_workers)
        .listen(listener)
        .map_err(|source| StartError::Listen { addr: settings.http_addr, source })?
        .run();
        Ok(Application { port, server, projectors })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process is told to stop (SIGINT/SIGTERM).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(p) = self.projectors {
            p.stop().await;
        }
        served
    }
}
