//! Settings, read from the environment only (no config files, no secrets in the repository).

pub mod variables;

use std::net::SocketAddr;

use bozor_commands::kafka::KafkaSettings;

use crate::auth::sms::EskizSettings;
use crate::auth::{parse_master_key, AuthSettings, RateSettings, SmsSettings, DEV_JWT_SECRET, DEV_MASTER_KEY_B64};

/// Shortest JWT secret production accepts, in bytes (HS256's key should match its 256 bits).
pub const JWT_SECRET_BYTES_MIN: usize = 32;

/// Why the settings are unusable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}={value:?}: {hint}")]
pub struct ConfigError {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What it should look like.
    pub hint: &'static str,
}

/// Everything bozor reads from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `BOZOR_DATABASE_URL`, default `postgres://postgres@127.0.0.1:55432/bozor`.
    pub database_url: String,
    /// `BOZOR_HTTP_ADDR`, default `127.0.0.1:8080` (port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// `BOZOR_DB_POOL_MAX`, default 32 connections.
    pub db_pool_max: usize,
    /// `BOZOR_SNAPSHOT_EVERY`, default 100 events.
    pub snapshot_every: i64,
    /// `BOZOR_BODY_BYTES_MAX`, default 65 536 bytes.
    pub body_bytes_max: usize,
    /// `BOZOR_HTTP_WORKERS`, default the number of cores.
    pub http_workers: usize,
    /// Set by `BOZOR_KAFKA_BROKERS` (with `BOZOR_KAFKA_TOPIC_PREFIX`, default `bozor`, and
    /// `BOZOR_KAFKA_PARTITIONS`, default 4): fan out through Kafka instead of in process.
    pub kafka: Option<KafkaSettings>,
    /// `BOZOR_ENV=production`: refuse to start with development secrets or the console SMS
    /// sender, and send HSTS. Default `development`.
    pub production: bool,
    /// Secrets, SMS and rate limits.
    pub auth: AuthSettings,
    /// `BOZOR_DB_POOL_WAIT_MS`, default 1000: longest a request waits for a pooled connection
    /// before it is answered 503 `unavailable` with Retry-After.
    pub db_pool_wait: std::time::Duration,
    /// `BOZOR_LIST_PAGE_CACHE=off` serves every listings page from the read model (benchmarks);
    /// default on.
    pub list_page_cache: bool,
    /// `BOZOR_CORS_ORIGINS`: comma-separated origins browsers may call from (none by default).
    pub cors_origins: Vec<String>,
    /// Set by `BOZOR_MEILI_URL` (with `BOZOR_MEILI_KEY` and `BOZOR_MEILI_INDEX`, default
    /// `listings`): search through Meilisearch instead of PostgreSQL.
    pub meili: Option<MeiliSettings>,
    /// `BOZOR_SUGGEST_CACHE=off` answers every autosuggest from the engine (benchmarks);
    /// default on.
    pub suggest_cache: bool,
    /// `BOZOR_SEARCHES_AT_ONCE`, default twice the cores: searches running at once in this
    /// process (the others wait for a turn, up to 1 s, then 503).
    pub searches_at_once: usize,
    /// `BOZOR_COMMANDS_AT_ONCE`, default eight times the cores: commands between their first
    /// read and their append at once in this process (the others wait for a turn, up to
    /// `BOZOR_DB_POOL_WAIT_MS`, then 503).
    pub commands_at_once: usize,
    /// Payment providers and payout limits.
    pub payments: PaymentSettings,
    /// `BOZOR_ORDER_UNPAID_TTL` (default 30 minutes): an order not paid for this long is
    /// cancelled by the scheduler and its reservations released.
    pub unpaid_ttl: chrono::Duration,
    /// `BOZOR_TEST_CLOCK_OFFSET_SECONDS` (tests only; production refuses it): the scheduler's
    /// clock runs this far ahead, so a test of the binary sees a deadline pass without waiting.
    pub clock_offset: chrono::Duration,
    /// `BOZOR_SHUTDOWN_TIMEOUT` (default 30s): on SIGTERM or SIGINT, how long a role may take
    /// to finish in-flight requests and batches and commit its checkpoints.
    pub shutdown_timeout: chrono::Duration,
    /// `BOZOR_STATUS_ADDR` (unset by default): where a worker role (`relay`, `project`,
    /// `search-sync`, `scheduler`) answers `/healthz` and `/metrics`.
    pub status_addr: Option<SocketAddr>,
    /// `BOZOR_METRICS_TOKEN` (unset by default): when set, `/metrics` answers only requests
    /// with `Authorization: Bearer <token>` (Prometheus's `bearer_token`).
    pub metrics_token: Option<String>,
}

/// Parses a duration: a number with `s`, `m` or `h`, or a plain number in `plain` units.
fn duration(name: &'static str, default: chrono::Duration, plain: char) -> Result<chrono::Duration, ConfigError> {
    let Ok(value) = set(name) else { return Ok(default) };
    let v = value.trim();
    let (number, unit) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], c),
        _ => (v, plain),
    };
    let n: i64 = number.parse().ok().filter(|n| (1..=1_000_000).contains(n)).ok_or_else(|| ConfigError {
        name,
        value: value.clone(),
        hint: "a duration like 30m, 45s or 2h",
    })?;
    match unit {
        's' => Ok(chrono::Duration::seconds(n)),
        'm' => Ok(chrono::Duration::minutes(n)),
        'h' => Ok(chrono::Duration::hours(n)),
        _ => Err(ConfigError { name, value, hint: "a duration like 30m, 45s or 2h" }),
    }
}

/// Payme's Merchant API: `BOZOR_PAYME_MERCHANT_ID` and `BOZOR_PAYME_KEY` (the key Payme's
/// cabinet shows; its callbacks authenticate as `Paycom:<key>`).
#[derive(Clone)]
pub struct PaymeSettings {
    pub merchant_id: String,
    pub key: String,
}

/// Click's SHOP API: `BOZOR_CLICK_SERVICE_ID`, `BOZOR_CLICK_MERCHANT_ID`, `BOZOR_CLICK_SECRET`.
#[derive(Clone)]
pub struct ClickSettings {
    pub service_id: String,
    pub merchant_id: String,
    pub secret: String,
}

impl std::fmt::Debug for PaymeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymeSettings").field("merchant_id", &self.merchant_id).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ClickSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickSettings")
            .field("service_id", &self.service_id)
            .field("merchant_id", &self.merchant_id)
            .finish_non_exhaustive()
    }
}

/// Money in and out.
#[derive(Debug, Clone)]
pub struct PaymentSettings {
    /// Unset: `POST /v1/payments/payme` refuses every call as unauthenticated.
    pub payme: Option<PaymeSettings>,
    /// Unset: Click's callbacks are refused (sign check failed).
    pub click: Option<ClickSettings>,
    /// `BOZOR_WITHDRAW_MIN`, tiyin (default 1 000 000: 10 000 sum).
    pub withdraw_min: i64,
    /// `BOZOR_WITHDRAW_DAILY_MAX`, tiyin per user per Tashkent day (default 1 000 000 000: 10 million sum).
    pub withdraw_daily_max: i64,
}

impl PaymentSettings {
    /// No provider; withdrawals from 1 tiyin with no practical daily limit (tests, benchmarks).
    pub fn development() -> PaymentSettings {
        PaymentSettings {
            payme: None,
            click: None,
            withdraw_min: 1,
            withdraw_daily_max: bozor_domain::money::AMOUNT_MAX,
        }
    }

    fn from_env() -> Result<PaymentSettings, ConfigError> {
        let both = |a: &'static str, b: &'static str| -> Result<Option<(String, String)>, ConfigError> {
            match (secret(a), secret(b)) {
                (Some(x), Some(y)) => Ok(Some((x, y))),
                (None, None) => Ok(None),
                (None, Some(_)) => Err(ConfigError { name: a, value: String::new(), hint: "set it too, or neither" }),
                (Some(_), None) => Err(ConfigError { name: b, value: String::new(), hint: "set it too, or neither" }),
            }
        };
        let payme = both("BOZOR_PAYME_MERCHANT_ID", "BOZOR_PAYME_KEY")?
            .map(|(merchant_id, key)| PaymeSettings { merchant_id, key });
        let click = match (both("BOZOR_CLICK_SERVICE_ID", "BOZOR_CLICK_SECRET")?, secret("BOZOR_CLICK_MERCHANT_ID")) {
            (Some((service_id, secret)), Some(merchant_id)) => Some(ClickSettings { service_id, merchant_id, secret }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError {
                    name: "BOZOR_CLICK_MERCHANT_ID",
                    value: String::new(),
                    hint: "set it with BOZOR_CLICK_SERVICE_ID and BOZOR_CLICK_SECRET",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    name: "BOZOR_CLICK_SERVICE_ID",
                    value: String::new(),
                    hint: "set it and BOZOR_CLICK_SECRET with BOZOR_CLICK_MERCHANT_ID",
                })
            }
        };
        if let Some(c) = &click {
            if c.service_id.parse::<u64>().is_err() {
                return Err(ConfigError {
                    name: "BOZOR_CLICK_SERVICE_ID",
                    value: c.service_id.clone(),
                    hint: "a number",
                });
            }
        }
        let tiyin = "tiyin, 1 to 10^15";
        let p = PaymentSettings {
            payme,
            click,
            withdraw_min: var("BOZOR_WITHDRAW_MIN", 1_000_000, tiyin)?,
            withdraw_daily_max: var("BOZOR_WITHDRAW_DAILY_MAX", 1_000_000_000, tiyin)?,
        };
        for (name, v) in [("BOZOR_WITHDRAW_MIN", p.withdraw_min), ("BOZOR_WITHDRAW_DAILY_MAX", p.withdraw_daily_max)] {
            if !(1..=bozor_domain::money::AMOUNT_MAX).contains(&v) {
                return Err(ConfigError { name, value: v.to_string(), hint: tiyin });
            }
        }
        if p.withdraw_min > p.withdraw_daily_max {
            return Err(ConfigError {
                name: "BOZOR_WITHDRAW_MIN",
                value: p.withdraw_min.to_string(),
                hint: "at most BOZOR_WITHDRAW_DAILY_MAX",
            });
        }
        Ok(p)
    }
}

/// Where Meilisearch is.
#[derive(Debug, Clone)]
pub struct MeiliSettings {
    pub url: String,
    pub key: Option<String>,
    pub index: String,
}

/// A variable's value, `Err` when it is unset or empty (an empty value means the default).
fn set(name: &str) -> Result<String, std::env::VarError> {
    std::env::var(name).and_then(|v| if v.trim().is_empty() { Err(std::env::VarError::NotPresent) } else { Ok(v) })
}

/// A variable parsed, or `default` when it is unset or empty (an uncommented `NAME=` line of
/// `.env.example` means "the default").
fn var<T: std::str::FromStr>(name: &'static str, default: T, hint: &'static str) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => value.parse().map_err(|_| ConfigError { name, value, hint }),
        _ => Ok(default),
    }
}

impl Settings {
    /// Reads the settings. Fails on a variable that is set but does not parse.
    /// Development settings for a database, with every other default (tests, benchmarks).
    pub fn development(database_url: &str) -> Settings {
        Settings {
            database_url: database_url.to_owned(),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_pool_max: 8,
            snapshot_every: 100,
            body_bytes_max: 64 * 1024,
            http_workers: 2,
            kafka: None,
            production: false,
            auth: AuthSettings::development(),
            cors_origins: vec![],
            db_pool_wait: std::time::Duration::from_millis(1_000),
            list_page_cache: true,
            meili: None,
            suggest_cache: true,
            searches_at_once: 4,
            commands_at_once: 16,
            payments: PaymentSettings::development(),
            unpaid_ttl: chrono::Duration::minutes(30),
            clock_offset: chrono::Duration::zero(),
            shutdown_timeout: chrono::Duration::seconds(30),
            status_addr: None,
            metrics_token: None,
        }
    }

    pub fn from_env() -> Result<Settings, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Settings {
            database_url: var(
                "BOZOR_DATABASE_URL",
                "postgres://postgres@127.0.0.1:55432/bozor".to_owned(),
                "a postgres:// url",
            )?,
            http_addr: var("BOZOR_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)), "host:port")?,
            db_pool_max: var("BOZOR_DB_POOL_MAX", 32, "a number of connections, 1 to 1000")?,
            snapshot_every: var("BOZOR_SNAPSHOT_EVERY", 100, "a number of events, 1 or more")?,
            body_bytes_max: var("BOZOR_BODY_BYTES_MAX", 64 * 1024, "a number of bytes, 1024 or more")?,
            http_workers: var("BOZOR_HTTP_WORKERS", cores, "a number of threads, 1 to 256")?,
            kafka: match set("BOZOR_KAFKA_BROKERS") {
                Ok(brokers) if !brokers.trim().is_empty() => Some(KafkaSettings {
                    brokers,
                    topic_prefix: var("BOZOR_KAFKA_TOPIC_PREFIX", "bozor".to_owned(), "a topic name prefix")?,
                    partitions: var("BOZOR_KAFKA_PARTITIONS", 4, "a number of partitions, 1 to 1000")?,
                    fetch_wait_ms: var(
                        "BOZOR_KAFKA_FETCH_WAIT_MS",
                        bozor_commands::kafka::FETCH_WAIT_MS_DEFAULT,
                        "milliseconds, 1 to 10000",
                    )?,
                    fetch_partition_bytes: var(
                        "BOZOR_KAFKA_FETCH_PARTITION_BYTES",
                        bozor_commands::kafka::FETCH_PARTITION_BYTES_DEFAULT,
                        "bytes, 1024 to 104857600",
                    )?,
                }),
                _ => None,
            },
            metrics_token: secret("BOZOR_METRICS_TOKEN"),
            production: match set("BOZOR_ENV").as_deref() {
                Ok("production") => true,
                Ok("development") | Err(_) => false,
                Ok(other) => {
                    return Err(ConfigError {
                        name: "BOZOR_ENV",
                        value: other.to_owned(),
                        hint: "development or production",
                    })
                }
            },
            auth: auth_from_env()?,
            list_page_cache: match set("BOZOR_LIST_PAGE_CACHE").as_deref() {
                Ok("off") => false,
                Ok("on") | Err(_) => true,
                Ok(other) => {
                    return Err(ConfigError {
                        name: "BOZOR_LIST_PAGE_CACHE",
                        value: other.to_owned(),
                        hint: "on or off",
                    })
                }
            },
            db_pool_wait: std::time::Duration::from_millis(var(
                "BOZOR_DB_POOL_WAIT_MS",
                1_000,
                "milliseconds, 1 to 60000",
            )?),
            cors_origins: std::env::var("BOZOR_CORS_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            meili: match set("BOZOR_MEILI_URL") {
                Ok(url) if !url.trim().is_empty() => Some(MeiliSettings {
                    url: url.trim().trim_end_matches('/').to_owned(),
                    key: std::env::var("BOZOR_MEILI_KEY").ok().filter(|k| !k.is_empty()),
                    index: var("BOZOR_MEILI_INDEX", "listings".to_owned(), "an index uid")?,
                }),
                _ => None,
            },
            searches_at_once: var("BOZOR_SEARCHES_AT_ONCE", 2 * cores, "a number of searches, 1 to 1000")?,
            commands_at_once: var("BOZOR_COMMANDS_AT_ONCE", 8 * cores, "a number of commands, 1 to 1000")?,
            payments: PaymentSettings::from_env()?,
            unpaid_ttl: duration("BOZOR_ORDER_UNPAID_TTL", chrono::Duration::minutes(30), 'm')?,
            shutdown_timeout: duration("BOZOR_SHUTDOWN_TIMEOUT", chrono::Duration::seconds(30), 's')?,
            status_addr: match set("BOZOR_STATUS_ADDR") {
                Ok(v) if !v.is_empty() => Some(v.parse().map_err(|_| ConfigError {
                    name: "BOZOR_STATUS_ADDR",
                    value: v.clone(),
                    hint: "host:port",
                })?),
                _ => None,
            },
            clock_offset: chrono::Duration::seconds(var(
                "BOZOR_TEST_CLOCK_OFFSET_SECONDS",
                0,
                "seconds, -10^9 to 10^9 (tests only)",
            )?),
            suggest_cache: match set("BOZOR_SUGGEST_CACHE").as_deref() {
                Ok("off") => false,
                Ok("on") | Err(_) => true,
                Ok(other) => {
                    return Err(ConfigError { name: "BOZOR_SUGGEST_CACHE", value: other.to_owned(), hint: "on or off" })
                }
            },
        };
        let bad = |name, value: String, hint| Err(ConfigError { name, value, hint });
        if !(1..=1_000).contains(&settings.db_pool_max) {
            return bad("BOZOR_DB_POOL_MAX", settings.db_pool_max.to_string(), "1 to 1000");
        }
        if !(1..=60_000).contains(&settings.db_pool_wait.as_millis()) {
            return bad("BOZOR_DB_POOL_WAIT_MS", settings.db_pool_wait.as_millis().to_string(), "1 to 60000");
        }
        if settings.snapshot_every < 1 {
            return bad("BOZOR_SNAPSHOT_EVERY", settings.snapshot_every.to_string(), "1 or more");
        }
        if settings.body_bytes_max < 1_024 {
            return bad("BOZOR_BODY_BYTES_MAX", settings.body_bytes_max.to_string(), "1024 or more");
        }
        if !(1..=256).contains(&settings.http_workers) {
            return bad("BOZOR_HTTP_WORKERS", settings.http_workers.to_string(), "1 to 256");
        }
        if !(1..=1_000).contains(&settings.searches_at_once) {
            return bad("BOZOR_SEARCHES_AT_ONCE", settings.searches_at_once.to_string(), "1 to 1000");
        }
        if !(1..=1_000).contains(&settings.commands_at_once) {
            return bad("BOZOR_COMMANDS_AT_ONCE", settings.commands_at_once.to_string(), "1 to 1000");
        }
        if let Some(m) = &settings.meili {
            if !(m.url.starts_with("http://") || m.url.starts_with("https://")) {
                return bad("BOZOR_MEILI_URL", m.url.clone(), "an http:// or https:// url");
            }
            if m.index.is_empty() || !m.index.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return bad("BOZOR_MEILI_INDEX", m.index.clone(), "letters, digits, - and _");
            }
        }
        if let Some(k) = &settings.kafka {
            if !(1..=10_000).contains(&k.fetch_wait_ms) {
                return bad("BOZOR_KAFKA_FETCH_WAIT_MS", k.fetch_wait_ms.to_string(), "1 to 10000");
            }
            if !(1_024..=104_857_600).contains(&k.fetch_partition_bytes) {
                return bad(
                    "BOZOR_KAFKA_FETCH_PARTITION_BYTES",
                    k.fetch_partition_bytes.to_string(),
                    "1024 to 104857600",
                );
            }
            if !(1..=1_000).contains(&k.partitions) {
                return bad("BOZOR_KAFKA_PARTITIONS", k.partitions.to_string(), "1 to 1000");
            }
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if k.topic_prefix.is_empty() || k.topic_prefix.len() > 200 || !k.topic_prefix.chars().all(legal) {
                return bad("BOZOR_KAFKA_TOPIC_PREFIX", k.topic_prefix.clone(), "letters, digits, '.', '_', '-'");
            }
        }
        let offset = settings.clock_offset.num_seconds();
        if !(-1_000_000_000..=1_000_000_000).contains(&offset) {
            return bad("BOZOR_TEST_CLOCK_OFFSET_SECONDS", offset.to_string(), "-10^9 to 10^9 seconds");
        }
        if settings.production {
            if offset != 0 {
                return bad("BOZOR_TEST_CLOCK_OFFSET_SECONDS", offset.to_string(), "tests only: production refuses it");
            }
            check_production(&settings.auth)?;
        }
        Ok(settings)
    }
}

fn secret(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn auth_from_env() -> Result<AuthSettings, ConfigError> {
    let dev = AuthSettings::development();
    let jwt_secret = secret("BOZOR_JWT_SECRET").map_or(dev.jwt_secret, String::into_bytes);
    let master_key = match secret("BOZOR_MASTER_KEY") {
        None => dev.master_key,
        Some(v) => parse_master_key(&v).ok_or(ConfigError {
            name: "BOZOR_MASTER_KEY",
            value: "<hidden>".into(),
            hint: "32 bytes as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)",
        })?,
    };
    let sms = match set("BOZOR_SMS").as_deref() {
        Err(_) | Ok("console") => SmsSettings::Console,
        Ok("eskiz") => SmsSettings::Eskiz(EskizSettings {
            base_url: var("BOZOR_ESKIZ_URL", "https://notify.eskiz.uz".to_owned(), "a URL")?,
            email: secret("BOZOR_ESKIZ_EMAIL").unwrap_or_default(),
            password: secret("BOZOR_ESKIZ_PASSWORD").unwrap_or_default(),
            from: var("BOZOR_ESKIZ_FROM", "4546".to_owned(), "the sender name Eskiz approved")?,
        }),
        Ok(other) => return Err(ConfigError { name: "BOZOR_SMS", value: other.into(), hint: "console or eskiz" }),
    };
    let d = RateSettings::default();
    let per_minute = "requests per minute, 1 to 1000000";
    let rate = RateSettings {
        auth_per_ip: var("BOZOR_RATE_AUTH_PER_IP", d.auth_per_ip, per_minute)?,
        commands_per_user: var("BOZOR_RATE_COMMANDS_PER_USER", d.commands_per_user, per_minute)?,
        commands_per_ip: var("BOZOR_RATE_COMMANDS_PER_IP", d.commands_per_ip, per_minute)?,
        otp_per_phone_per_hour: var("BOZOR_OTP_PER_PHONE_PER_HOUR", d.otp_per_phone_per_hour, "codes, 1 to 100")?,
        queries_per_ip: var("BOZOR_RATE_QUERIES_PER_IP", d.queries_per_ip, per_minute)?,
    };
    let limits = [
        ("BOZOR_RATE_AUTH_PER_IP", rate.auth_per_ip, 1_000_000),
        ("BOZOR_RATE_COMMANDS_PER_USER", rate.commands_per_user, 1_000_000),
        ("BOZOR_RATE_COMMANDS_PER_IP", rate.commands_per_ip, 1_000_000),
        ("BOZOR_OTP_PER_PHONE_PER_HOUR", rate.otp_per_phone_per_hour, 100),
        ("BOZOR_RATE_QUERIES_PER_IP", rate.queries_per_ip, 1_000_000),
    ];
    for (name, value, max) in limits {
        if !(1..=max).contains(&value) {
            return Err(ConfigError { name, value: value.to_string(), hint: "out of range" });
        }
    }
    let trust_proxy_hops = var("BOZOR_TRUST_PROXY", 0u8, "the number of proxies in front of bozor, 0 to 10")?;
    if trust_proxy_hops > 10 {
        return Err(ConfigError { name: "BOZOR_TRUST_PROXY", value: trust_proxy_hops.to_string(), hint: "0 to 10" });
    }
    Ok(AuthSettings { jwt_secret, master_key, sms, rate, trust_proxy_hops })
}

/// Production refuses the published development secrets and a JWT secret under 32 bytes, in
/// every subcommand (see `check_production_sms` for the API's SMS sender).
pub fn check_production(auth: &AuthSettings) -> Result<(), ConfigError> {
    let hidden = || "<hidden>".to_owned();
    // Whitespace around the published secret leaves it the published secret.
    let secret = auth.jwt_secret.trim_ascii();
    if secret == DEV_JWT_SECRET.as_bytes() || secret.len() < JWT_SECRET_BYTES_MIN {
        return Err(ConfigError {
            name: "BOZOR_JWT_SECRET",
            value: hidden(),
            hint: "production needs a secret of its own, at least 32 bytes (e.g. `openssl rand -base64 48`)",
        });
    }
    if Some(auth.master_key) == parse_master_key(DEV_MASTER_KEY_B64) {
        return Err(ConfigError {
            name: "BOZOR_MASTER_KEY",
            value: hidden(),
            hint: "production needs a master key of its own: 32 random bytes as base64",
        });
    }
    Ok(())
}

/// In production, an API process (`up`, `serve`) refuses the console SMS sender (it would log
/// login codes) and an Eskiz account without credentials. The worker roles send no SMS and
/// do not ask for it.
pub fn check_production_sms(auth: &AuthSettings) -> Result<(), ConfigError> {
    let hidden = || "<hidden>".to_owned();
    match &auth.sms {
        SmsSettings::Console => Err(ConfigError {
            name: "BOZOR_SMS",
            value: "console".into(),
            hint: "production sends codes through eskiz (the console sender would log them)",
        }),
        SmsSettings::Eskiz(e) if e.email.is_empty() || e.password.is_empty() => Err(ConfigError {
            name: "BOZOR_ESKIZ_EMAIL",
            value: hidden(),
            hint: "eskiz needs BOZOR_ESKIZ_EMAIL and BOZOR_ESKIZ_PASSWORD",
        }),
        SmsSettings::Eskiz(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production_ready() -> AuthSettings {
        let mut a = AuthSettings::development();
        a.jwt_secret = b"a-secret-of-our-own-that-is-long-enough-0123".to_vec();
        a.master_key = [9u8; 32];
        a.sms = SmsSettings::Eskiz(EskizSettings {
            base_url: "https://notify.eskiz.uz".into(),
            email: "ops@bozor.uz".into(),
            password: "p".into(),
            from: "4546".into(),
        });
        a
    }

    #[test]
    fn production_accepts_secrets_of_its_own() {
        assert!(check_production(&production_ready()).is_ok());
        assert!(check_production_sms(&production_ready()).is_ok());
    }

    #[test]
    fn production_refuses_default_or_short_secrets_and_console_sms() {
        let mut dev_secret = production_ready();
        dev_secret.jwt_secret = DEV_JWT_SECRET.as_bytes().to_vec();
        let mut short = production_ready();
        short.jwt_secret = b"0123456789abcdef0123456789abcde".to_vec(); // 31 bytes
        let mut dev_key = production_ready();
        dev_key.master_key = AuthSettings::development().master_key;
        let mut console = production_ready();
        console.sms = SmsSettings::Console;
        let mut padded = production_ready();
        padded.jwt_secret = format!("  {DEV_JWT_SECRET}\n").into_bytes();
        let cases = [
            (padded, "BOZOR_JWT_SECRET"),
            (dev_secret, "BOZOR_JWT_SECRET"),
            (short, "BOZOR_JWT_SECRET"),
            (dev_key, "BOZOR_MASTER_KEY"),
            (console, "BOZOR_SMS"),
        ];
        for (settings, name) in cases {
            let refused = check_production(&settings).and_then(|()| check_production_sms(&settings));
            assert_eq!(refused.unwrap_err().name, name);
        }
    }

    #[test]
    fn master_keys_parse_from_hex_or_base64_of_32_bytes() {
        assert_eq!(parse_master_key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_master_key(DEV_MASTER_KEY_B64).map(|k| k.len()), Some(32));
        assert_eq!(parse_master_key("c2hvcnQ="), None);
        assert_eq!(parse_master_key("not a key"), None);
    }
}
