//! Settings, read from the environment only (no config files, no secrets in the repository).

use std::net::SocketAddr;

use bozor_commands::kafka::KafkaSettings;

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
    /// `BOZOR_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/bozor`.
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
}

fn var<T: std::str::FromStr>(name: &'static str, default: T, hint: &'static str) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Ok(value) => value.parse().map_err(|_| ConfigError { name, value, hint }),
        Err(_) => Ok(default),
    }
}

impl Settings {
    /// Reads the settings. Fails on a variable that is set but does not parse.
    pub fn from_env() -> Result<Settings, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Settings {
            database_url: var(
                "BOZOR_DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/bozor".to_owned(),
                "a postgres:// url",
            )?,
            http_addr: var("BOZOR_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)), "host:port")?,
            db_pool_max: var("BOZOR_DB_POOL_MAX", 32, "a number of connections, 1 to 1000")?,
            snapshot_every: var("BOZOR_SNAPSHOT_EVERY", 100, "a number of events, 1 or more")?,
            body_bytes_max: var("BOZOR_BODY_BYTES_MAX", 64 * 1024, "a number of bytes, 1024 or more")?,
            http_workers: var("BOZOR_HTTP_WORKERS", cores, "a number of threads, 1 to 256")?,
            kafka: match std::env::var("BOZOR_KAFKA_BROKERS") {
                Ok(brokers) if !brokers.trim().is_empty() => Some(KafkaSettings {
                    brokers,
                    topic_prefix: var("BOZOR_KAFKA_TOPIC_PREFIX", "bozor".to_owned(), "a topic name prefix")?,
                    partitions: var("BOZOR_KAFKA_PARTITIONS", 4, "a number of partitions, 1 to 1000")?,
                    fetch_wait_ms: var("BOZOR_KAFKA_FETCH_WAIT_MS", 25, "milliseconds, 1 to 10000")?,
                }),
                _ => None,
            },
        };
        let bad = |name, value: String, hint| Err(ConfigError { name, value, hint });
        if !(1..=1_000).contains(&settings.db_pool_max) {
            return bad("BOZOR_DB_POOL_MAX", settings.db_pool_max.to_string(), "1 to 1000");
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
        if let Some(k) = &settings.kafka {
            if !(1..=10_000).contains(&k.fetch_wait_ms) {
                return bad("BOZOR_KAFKA_FETCH_WAIT_MS", k.fetch_wait_ms.to_string(), "1 to 10000");
            }
            if !(1..=1_000).contains(&k.partitions) {
                return bad("BOZOR_KAFKA_PARTITIONS", k.partitions.to_string(), "1 to 1000");
            }
            let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
            if k.topic_prefix.is_empty() || k.topic_prefix.len() > 200 || !k.topic_prefix.chars().all(legal) {
                return bad("BOZOR_KAFKA_TOPIC_PREFIX", k.topic_prefix.clone(), "letters, digits, '.', '_', '-'");
            }
        }
        Ok(settings)
    }
}
