//! `bozor`: one binary, one subcommand per role.

use bozor_api::configuration::Settings;
use bozor_api::startup::{connect_and_migrate, Application};
use bozor_api::{bench, telemetry};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bozor", about = "Event-sourced marketplace backend", version)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Command,
}

/// Settings that are also flags: a flag wins over its environment variable.
#[derive(clap::Args)]
struct Flags {
    /// The PostgreSQL of the event store and read models (BOZOR_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Where the API listens (BOZOR_HTTP_ADDR).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    http_addr: Option<String>,
    /// Kafka bootstrap servers (BOZOR_KAFKA_BROKERS).
    #[arg(long, global = true, value_name = "HOSTS")]
    kafka_brokers: Option<String>,
    /// Meilisearch (BOZOR_MEILI_URL).
    #[arg(long, global = true, value_name = "URL")]
    meili_url: Option<String>,
    /// development or production (BOZOR_ENV).
    #[arg(long, global = true, value_name = "ENV")]
    env: Option<String>,
    /// text or json (BOZOR_LOG_FORMAT).
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<String>,
    /// How long a role may take to stop (BOZOR_SHUTDOWN_TIMEOUT).
    #[arg(long, global = true, value_name = "DURATION")]
    shutdown_timeout: Option<String>,
}

impl Flags {
    /// The flags given, by the variable each one sets.
    fn given(&self) -> Vec<(&'static str, &str)> {
        [
            ("BOZOR_DATABASE_URL", &self.database_url),
            ("BOZOR_HTTP_ADDR", &self.http_addr),
            ("BOZOR_KAFKA_BROKERS", &self.kafka_brokers),
            ("BOZOR_MEILI_URL", &self.meili_url),
            ("BOZOR_ENV", &self.env),
            ("BOZOR_LOG_FORMAT", &self.log_format),
            ("BOZOR_SHUTDOWN_TIMEOUT", &self.shutdown_timeout),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// The command line, with each subcommand's `--help` listing the variables it reads.
fn parse() -> Cli {
    use bozor_api::configuration::variables::help_text;
    let mut command = Cli::command();
    let names: Vec<String> = command.get_subcommands().map(|c| c.get_name().to_owned()).collect();
    for name in names {
        let text = help_text(&name);
        command = command.mut_subcommand(&name, |sub| {
            let nested: Vec<String> = sub.get_subcommands().map(|c| c.get_name().to_owned()).collect();
            let mut sub = sub.after_help(text.clone());
            for n in nested {
                sub = sub.mut_subcommand(&n, |s| s.after_help(text.clone()));
            }
            sub
        });
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending database migrations and exit.
    Migrate,
    /// The embedded default: the HTTP API and every projector in one process.
    Up,
    /// Serve the HTTP API only (migrates first).
    Serve,
    /// Run the projectors only (scale-out of the read side): from Kafka when
    /// BOZOR_KAFKA_BROKERS is set, else from the event store.
    Project,
    /// Relay the event store to Kafka (BOZOR_KAFKA_BROKERS); a second relay stands by.
    Relay,
    /// Run search-sync only: the search projection (from Kafka when BOZOR_KAFKA_BROKERS is set,
    /// else from the event store) and, with BOZOR_MEILI_URL, the push to Meilisearch.
    SearchSync,
    /// Run the scheduler only: the timers projection (from Kafka when BOZOR_KAFKA_BROKERS is
    /// set, else from the event store) and the firing of due timers (escrow auto-release, listing
    /// auto-approval, unpaid-order expiry). One is active at a time; start a second as a standby.
    Scheduler,
    /// Rebuild a read model blue/green from the event store, then exit. `search` also builds a
    /// fresh Meilisearch index and swaps it in when BOZOR_MEILI_URL is set.
    Rebuild { name: String },
    /// Write data through the command side.
    Seed {
        /// The demo marketplace: sellers of each plan, listings in four scripts, orders in each
        /// state. Nothing is written when this seed's demo is there already.
        #[arg(long)]
        demo: bool,
        /// Listings to write (the 30 showcase listings included).
        #[arg(long, default_value_t = 2_000)]
        listings: usize,
        /// The same seed writes the same ids and texts.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        what: Admin,
    },
    /// Finance audit: replay the ledger from the event store and check it.
    Audit {
        #[command(subcommand)]
        what: Audit,
    },
    /// Mint an access token with the configured BOZOR_JWT_SECRET (operators, scripted tests).
    Token {
        /// The user the token speaks for.
        #[arg(long)]
        user: uuid::Uuid,
        /// A role (repeatable): seller, courier, support, admin, auditor; buyer is implied.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A seller's plan: free, premium or pro.
        #[arg(long)]
        plan: Option<String>,
        /// A courier's district, e.g. chilonzor.
        #[arg(long)]
        district: Option<String>,
        /// Lifetime in minutes (1 to 1440).
        #[arg(long, default_value_t = 15)]
        minutes: i64,
    },
    /// GET a URL and exit 0 when it answers 2xx, else 1: the containers' health check (their
    /// image has no curl). Default: `/readyz` of the API at BOZOR_HTTP_ADDR (or --http-addr).
    Probe {
        url: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// Measure the system.
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Subcommand)]
enum Admin {
    /// Grant a role, as bozor itself: bootstraps the first admin. The user is given by id, or
    /// by phone (registered if the number never logged in).
    Grant {
        #[arg(long, conflicts_with = "phone", required_unless_present = "phone")]
        user: Option<uuid::Uuid>,
        #[arg(long)]
        phone: Option<String>,
        #[arg(long)]
        role: String,
        #[arg(long)]
        plan: Option<String>,
        #[arg(long)]
        district: Option<String>,
    },
}

#[derive(Subcommand)]
enum Audit {
    /// Replay every wallet and payment stream from the event store (never the read models):
    /// hash chains and heads, journals summing to zero, no negative balance, held money equal
    /// to its holds, balances equal to the wallets read model, and a trial balance. Exits 1
    /// when it finds a discrepancy.
    Ledger {
        /// Replay to a past point: a global position, or an RFC 3339 time.
        #[arg(long)]
        as_of: Option<String>,
        /// The whole report as JSON (default: a summary).
        #[arg(long)]
        json: bool,
        /// Every wallet's replayed balances too.
        #[arg(long)]
        balances: bool,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Command accepted -> visible in the listings read model, at a fixed rate (embedded, or
    /// with --kafka through the relay and Kafka-fed projectors at BOZOR_KAFKA_BROKERS).
    Lag {
        #[arg(long, default_value_t = 500)]
        rate: u32,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        #[arg(long)]
        kafka: bool,
    },
    /// Seed listing events and time a blue/green rebuild of the listings read model.
    Rebuild {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Seed N listings and M orders into the read models and time the list queries' real mix
    /// from 32 clients, page cache off (p50/p99 per query shape).
    Queries {
        #[arg(long, default_value_t = 1_000_000)]
        listings: i64,
        #[arg(long, default_value_t = 100_000)]
        orders: i64,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Keep the read models of an earlier run instead of seeding anew.
        #[arg(long)]
        reuse: bool,
    },
    /// Write about N wallet events in balanced journals (untimed), then time the ledger audit
    /// over them and report the peak memory. Use a database of its own.
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Submit N listings (untimed), then time the scheduler firing their auto-approvals with a
    /// clock moved 49 hours on; checks none fired twice. Use a database of its own.
    Scheduler {
        #[arg(long, default_value_t = 100_000)]
        timers: usize,
    },
    /// Provider callbacks (Payme Create+Perform pairs, each a new transaction) against order
    /// payments from a wallet, through the HTTP API from concurrent clients.
    Payments {
        #[arg(long, default_value_t = 32)]
        clients: usize,
        /// Payments each client makes in each phase.
        #[arg(long, default_value_t = 100)]
        per_client: usize,
        /// Payments each client makes untimed before each phase.
        #[arg(long, default_value_t = 20)]
        warm_up: usize,
        /// Runs only this phase: wallet_pay, payme_top_up or payme_order (all three when unset).
        #[arg(long)]
        phase: Option<String>,
    },
    /// Seed a backlog of listing events and time the relay producing it to BOZOR_KAFKA_BROKERS.
    Relay {
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Autosuggest latency (cached and uncached, 32 clients, real prefixes), indexing time from
    /// an empty index, and the cross-script recall set, on the configured backend (PostgreSQL,
    /// or Meilisearch with BOZOR_MEILI_URL). Seeds the demo with --listings first.
    Search {
        #[arg(long, default_value_t = 100_000)]
        listings: usize,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 15)]
        seconds: u64,
    },
    /// Single-event appends to new streams through the real append path.
    Append {
        #[arg(long, default_value_t = 32)]
        writers: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
}

/// Waits for SIGINT or SIGTERM, then runs `stop` (which finishes in-flight batches and commits
/// checkpoints) for at most `BOZOR_SHUTDOWN_TIMEOUT`. Exits 0 when it finished in time, 1 when
/// the timeout cut it short.
async fn stop_on_signal(settings: &Settings, stop: impl std::future::Future<Output = ()>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .unwrap_or_else(|e| fail(format!("cannot listen for SIGTERM: {e}")));
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.unwrap_or_else(|e| fail(e)),
        _ = term.recv() => {}
    }
    let timeout = settings.shutdown_timeout.to_std().unwrap_or(std::time::Duration::from_secs(30));
    tracing::info!(timeout_secs = timeout.as_secs(), "stopping: finishing in-flight work");
    if tokio::time::timeout(timeout, stop).await.is_err() {
        fail(format!("did not stop within BOZOR_SHUTDOWN_TIMEOUT ({} s)", timeout.as_secs()));
    }
    tracing::info!("stopped");
}

/// `bozor probe`: exits 0 when `url` answers 2xx within `seconds`, else 1.
async fn probe(url: Option<String>, seconds: u64) {
    let url = url.unwrap_or_else(|| {
        let addr = std::env::var("BOZOR_HTTP_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
        format!("http://{}/readyz", addr.replace("0.0.0.0", "127.0.0.1"))
    });
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(seconds.clamp(1, 60)))
        .build()
        .unwrap_or_else(|e| fail(e));
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => println!("{} {url}", r.status().as_u16()),
        Ok(r) => fail(format!("{url} answered {}", r.status())),
        Err(e) => fail(format!("{url}: {e}")),
    }
}

/// A worker role's status endpoint, when BOZOR_STATUS_ADDR asks for one.
fn status(
    settings: &Settings,
    role: &'static str,
    pool: &deadpool_postgres::Pool,
    projections: Vec<&'static str>,
) -> Option<actix_web::dev::ServerHandle> {
    let addr = settings.status_addr?;
    let (handle, port) =
        bozor_api::startup::status_server(addr, role, pool.clone(), settings.metrics_token.clone(), projections)
            .unwrap_or_else(|e| fail(e));
    tracing::info!(role, port, "status endpoint: /healthz and /metrics");
    Some(handle)
}

/// `work` stopped, then the status endpoint (so health checks see the role until it is done).
async fn stopped(status: Option<actix_web::dev::ServerHandle>, work: impl std::future::Future<Output = ()>) {
    work.await;
    if let Some(handle) = status {
        handle.stop(true).await;
    }
}

/// The audit's summary for a terminal.
fn print_ledger(r: &bozor_commands::audit::LedgerReport) {
    let t = &r.trial_balance;
    println!("ledger audit{}", r.as_of.map_or(String::new(), |a| format!(" as of {a:?}")));
    println!(
        "  {} events, {} wallets, {} payments, {} journals in {:.2} s ({} events/s)",
        r.events, r.wallets, r.payments, r.journals, r.seconds, r.events_per_sec
    );
    println!("  trial balance (tiyin):");
    println!("    users available      {:>22}", t.users_available);
    println!(
        "    users held           {:>22}  (escrows {}, withdrawals {})",
        t.users_held, t.held_by_escrows, t.held_by_withdrawals
    );
    println!("    platform revenue     {:>22}", t.platform_revenue);
    println!("    provider clearing    {:>22}", t.provider_clearing);
    println!("    payout clearing      {:>22}", t.payout_clearing);
    println!("    total                {:>22}", t.total);
    for b in r.balances.iter().flatten() {
        let who = b.user_id.map(|u| format!("user {u}")).or(b.account.clone()).unwrap_or_default();
        println!("    wallet {} ({who}): available {}, held {}", b.wallet_id, b.available, b.held);
    }
    if r.read_model_behind > 0 {
        println!("  {} wallets' read-model rows had not caught up and were not compared", r.read_model_behind);
    }
    if r.ok {
        println!("  OK: no discrepancy");
        return;
    }
    println!("  {} discrepancies:", r.discrepancies_total);
    for d in &r.discrepancies {
        let at = match (d.stream_id, d.version) {
            (Some(s), Some(v)) => format!("stream {s} version {v}"),
            (Some(s), None) => format!("stream {s}"),
            _ => "the books".to_owned(),
        };
        let event = d.event_id.map_or(String::new(), |e| format!(" event {e}"));
        println!("    {}: {at}{event}: {}", d.kind, d.detail);
    }
}

fn fail(e: impl std::fmt::Display) -> ! {
    eprintln!("bozor: {e}");
    std::process::exit(1)
}

fn main() {
    let cli = parse();
    // Flags win: they become the variables they name, before any thread exists to read them.
    for (name, value) in cli.flags.given() {
        std::env::set_var(name, value);
    }
    actix_web::rt::System::new().block_on(run(cli));
}

async fn run(cli: Cli) {
    // A health check reads nothing else and logs nothing: it runs every few seconds.
    if let Command::Probe { url, seconds } = &cli.command {
        probe(url.clone(), *seconds).await;
        return;
    }
    telemetry::init().unwrap_or_else(|e| fail(e));
    let names: Vec<String> = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect();
    for (name, closest) in bozor_api::configuration::variables::unknown(names.iter().map(String::as_str)) {
        match closest {
            Some(c) => tracing::warn!(variable = %name, "bozor reads no {name}: did you mean {c}?"),
            None => tracing::warn!(variable = %name, "bozor reads no {name} (see .env.example)"),
        }
    }
    let settings = Settings::from_env().unwrap_or_else(|e| fail(e));
    match cli.command {
        Command::Migrate => {
            connect_and_migrate(&settings).await.unwrap_or_else(|e| fail(e));
            println!("migrations up to date");
        }
        Command::Up | Command::Serve => {
            let embedded = matches!(cli.command, Command::Up);
            let app = Application::build(settings.clone(), embedded).await.unwrap_or_else(|e| fail(e));
            tracing::info!(addr = %settings.http_addr, port = app.port(), projectors = embedded, "serving");
            app.run_until_stopped().await.unwrap_or_else(|e| fail(e));
        }
        Command::Project => {
            connect_and_migrate(&settings).await.unwrap_or_else(|e| fail(e));
            let pool = bozor_api::startup::worker_pool(&settings).unwrap_or_else(|e| fail(e));
            let projectors = bozor_api::startup::Projectors::start(
                &pool,
                bozor_projections::all(),
                settings.kafka.as_ref(),
                None,
                None,
            );
            let names = bozor_projections::all().iter().map(|p| p.name()).collect();
            let status = status(&settings, "project", &pool, names);
            tracing::info!(kafka = settings.kafka.is_some(), "projecting; stop with Ctrl-C or SIGTERM");
            stop_on_signal(&settings, stopped(status, projectors.stop())).await;
        }
        Command::Relay => {
            let kafka = settings.kafka.clone().unwrap_or_else(|| fail("bozor relay needs BOZOR_KAFKA_BROKERS"));
            connect_and_migrate(&settings).await.unwrap_or_else(|e| fail(e));
            let relay = bozor_commands::relay::Relay::new(&settings.database_url, kafka);
            let (stop, rx) = tokio::sync::watch::channel(false);
            let task = tokio::spawn(async move { relay.run(rx).await });
            let pool = bozor_api::startup::worker_pool(&settings).unwrap_or_else(|e| fail(e));
            let status = status(&settings, "relay", &pool, vec![]);
            tracing::info!("relaying; stop with Ctrl-C or SIGTERM");
            let relay_stopped = async move {
                let _ = stop.send(true);
                let _ = task.await;
            };
            stop_on_signal(&settings, stopped(status, relay_stopped)).await;
        }
        Command::SearchSync => {
            connect_and_migrate(&settings).await.unwrap_or_else(|e| fail(e));
            let pool = bozor_api::startup::worker_pool(&settings).unwrap_or_else(|e| fail(e));
            let meili = bozor_api::startup::search_engine(&settings).unwrap_or_else(|e| fail(e));
            let search: Vec<std::sync::Arc<dyn bozor_projections::Projection>> =
                vec![std::sync::Arc::new(bozor_search_sync::SearchProjection)];
            let projectors = bozor_api::startup::Projectors::start(&pool, search, settings.kafka.as_ref(), None, None)
                .with_meili_sync(&pool, meili.as_ref(), std::sync::Arc::new(|| {}));
            tracing::info!(
                kafka = settings.kafka.is_some(),
                meilisearch = meili.is_some(),
                "search-sync running; stop with Ctrl-C or SIGTERM"
            );
            let status = status(&settings, "search-sync", &pool, vec![bozor_search_sync::projection::NAME]);
            stop_on_signal(&settings, stopped(status, projectors.stop())).await;
        }
        Command::Scheduler => {
            let requests = connect_and_migrate(&settings).await.unwrap_or_else(|e| fail(e));
            let pool = bozor_api::startup::worker_pool(&settings).unwrap_or_else(|e| fail(e));
            let commands =
                bozor_commands::CommandService::new(bozor_commands::EventStore::new(requests, settings.snapshot_every));
            let timers: Vec<std::sync::Arc<dyn bozor_projections::Projection>> =
                vec![std::sync::Arc::new(bozor_projections::timers::TimersProjection)];
            let scheduler = bozor_api::startup::scheduler(&settings, &pool, &commands);
            let projectors = bozor_api::startup::Projectors::start(&pool, timers, settings.kafka.as_ref(), None, None)
                .with_scheduler(scheduler);
            tracing::info!(
                kafka = settings.kafka.is_some(),
                unpaid_ttl_secs = settings.unpaid_ttl.num_seconds(),
                clock_offset_secs = settings.clock_offset.num_seconds(),
                "scheduler running; stop with Ctrl-C or SIGTERM"
            );
            let status = status(&settings, "scheduler", &pool, vec![bozor_projections::timers::NAME]);
            stop_on_signal(&settings, stopped(status, projectors.stop())).await;
        }
        Command::Rebuild { name } => {
            let projection =
                bozor_api::read_models::by_name(&name).unwrap_or_else(|| fail(format!("no projection {name:?}")));
            connect_and_migrate(&settings).await.unwrap_or_else(|e| fail(e));
            let pool = bozor_api::startup::worker_pool(&settings).unwrap_or_else(|e| fail(e));
            let started = std::time::Instant::now();
            let events = bozor_projections::rebuild::rebuild(&pool, projection).await.unwrap_or_else(|e| fail(e));
            let meili = bozor_api::startup::search_engine(&settings).unwrap_or_else(|e| fail(e));
            let documents = match (name.as_str(), meili) {
                (bozor_search_sync::projection::NAME, Some(meili)) => Some(
                    bozor_search_sync::meili::MeiliSync::new(pool.clone(), meili)
                        .reindex()
                        .await
                        .unwrap_or_else(|e| fail(e)),
                ),
                _ => None,
            };
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{}",
                serde_json::json!({ "projection": name, "events": events, "seconds": seconds,
                                    "events_per_sec": (events as f64 / seconds).round(),
                                    "meilisearch_documents": documents })
            );
        }
        Command::Seed { demo, listings, seed } => {
            if !demo {
                fail("say what to seed: --demo");
            }
            if settings.production {
                fail("the demo grants admin to a published phone number: never with BOZOR_ENV=production");
            }
            if !(30..=2_000_000).contains(&listings) {
                fail("--listings is 30 to 2 000 000");
            }
            let pool = connect_and_migrate(&settings).await.unwrap_or_else(|e| fail(e));
            let size = bozor_api::seed::DemoSize { listings, seed, concurrency: 16 };
            let report = bozor_api::seed::demo(&pool, size).await.unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Audit { what: Audit::Ledger { as_of, json, balances } } => {
            let as_of = as_of.map(|s| {
                bozor_commands::audit::AsOf::parse(&s)
                    .unwrap_or_else(|| fail(format!("--as-of {s:?} is neither a global position nor an RFC 3339 time")))
            });
            // No migration: an auditor's role needs to read, not to change the schema.
            let connect = || async {
                let (client, conn) = tokio_postgres::connect(&settings.database_url, tokio_postgres::NoTls)
                    .await
                    .unwrap_or_else(|e| fail(e));
                tokio::spawn(conn);
                client
            };
            let (mut first, mut second) = (connect().await, connect().await);
            let options = bozor_commands::audit::Options { as_of, balances };
            let report =
                bozor_commands::audit::ledger(&mut first, &mut second, options).await.unwrap_or_else(|e| fail(e));
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print_ledger(&report);
            }
            if !report.ok {
                std::process::exit(1);
            }
        }
        Command::Admin { what: Admin::Grant { user, phone, role, plan, district } } => {
            let pool = connect_and_migrate(&settings).await.unwrap_or_else(|e| fail(e));
            let grant =
                bozor_api::cli::grant_terms(&role, plan.as_deref(), district.as_deref()).unwrap_or_else(|e| fail(e));
            let out = bozor_api::cli::grant(&pool, &settings, user, phone.as_deref(), grant)
                .await
                .unwrap_or_else(|e| fail(e));
            println!("{out}");
        }
        Command::Probe { .. } => unreachable!("handled before the settings are read"),
        Command::Token { user, roles, plan, district, minutes } => {
            let token = bozor_api::cli::token(&settings, user, &roles, plan.as_deref(), district.as_deref(), minutes)
                .unwrap_or_else(|e| fail(e));
            println!("{token}");
        }
        Command::Bench { what: Bench::Lag { rate, seconds, kafka } } => {
            if !(1..=10_000).contains(&rate) || !(1..=600).contains(&seconds) {
                fail("--rate is 1 to 10000 and --seconds 1 to 600");
            }
            let kafka = match kafka {
                true => Some(settings.kafka.clone().unwrap_or_else(|| fail("--kafka needs BOZOR_KAFKA_BROKERS"))),
                false => None,
            };
            let report = bench::lag(&settings.database_url, rate, seconds, kafka).await.unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Bench { what: Bench::Rebuild { events } } => {
            if !(5..=10_000_000).contains(&events) {
                fail("--events is 5 to 10 000 000");
            }
            let report = bench::rebuild(&settings.database_url, events).await.unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Bench { what: Bench::Queries { listings, orders, clients, seconds, reuse } } => {
            if !(10_000..=10_000_000).contains(&listings) || !(1_000..=10_000_000).contains(&orders) {
                fail("--listings is 10 000 to 10 000 000 and --orders 1 000 to 10 000 000");
            }
            if !(1..=600).contains(&seconds) || !(1..=1_000).contains(&clients) {
                fail("--seconds is 1 to 600 and --clients 1 to 1000");
            }
            let report = bench::queries::run(&settings.database_url, listings, orders, clients, seconds, reuse)
                .await
                .unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Bench { what: Bench::Relay { events } } => {
            if !(5..=10_000_000).contains(&events) {
                fail("--events is 5 to 10 000 000");
            }
            let kafka = settings.kafka.clone().unwrap_or_else(|| fail("bench relay needs BOZOR_KAFKA_BROKERS"));
            let report = bench::relay(&settings.database_url, events, kafka).await.unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Bench { what: Bench::Search { listings, clients, seconds } } => {
            if !(30..=2_000_000).contains(&listings) || !(1..=600).contains(&seconds) || !(1..=1_000).contains(&clients)
            {
                fail("--listings is 30 to 2 000 000, --seconds 1 to 600 and --clients 1 to 1000");
            }
            let report = bench::search::run(&settings, listings, clients, seconds).await.unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Bench { what: Bench::Audit { events } } => {
            if !(100..=100_000_000).contains(&events) {
                fail("--events is 100 to 100000000");
            }
            let mut report = bench::audit::run(&settings, events).await.unwrap_or_else(|e| fail(e));
            report.audit.discrepancies.truncate(5);
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Bench { what: Bench::Scheduler { timers } } => {
            if !(1..=10_000_000).contains(&timers) {
                fail("--timers is 1 to 10000000");
            }
            let report = bench::scheduler::run(&settings, timers).await.unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Bench { what: Bench::Payments { clients, per_client, warm_up, phase } } => {
            if !(1..=256).contains(&clients) || !(1..=10_000).contains(&per_client) || warm_up > 1_000 {
                fail("--clients is 1 to 256, --per-client 1 to 10000 and --warm-up 0 to 1000");
            }
            if phase.as_deref().is_some_and(|p| !bench::payments::PHASES.contains(&p)) {
                fail(format!("--phase is one of {}", bench::payments::PHASES.join(", ")));
            }
            let report = bench::payments::run(&settings, clients, per_client, warm_up, phase.as_deref())
                .await
                .unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
        Command::Bench { what: Bench::Append { writers, seconds } } => {
            if !(1..=1_000).contains(&writers) || !(1..=3_600).contains(&seconds) {
                fail("--writers is 1 to 1000 and --seconds 1 to 3600");
            }
            let report = bench::append(&settings.database_url, writers, seconds).await.unwrap_or_else(|e| fail(e));
            println!("{}", serde_json::to_string(&report).expect("report serializes"));
        }
    }
}
