//! The relay (`bozor relay`): tails the event store gap-safely and produces every event to
//! Kafka through an idempotent producer. Its checkpoint moves only after the broker has
//! acknowledged a whole batch, so a crash re-sends the unacknowledged tail (at least once;
//! consumers skip what they have applied) and never skips an event.
//!
//! One relay is active at a time: it holds a PostgreSQL session advisory lock on its own
//! connection. Another relay waits as standby, trying the lock, and takes over when the active
//! one's connection goes (crash, kill, network).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::watch;

use crate::kafka::{encode, KafkaSettings};
use crate::store::{read_tail_with, StoredEvent, TailPosition};

/// Most events produced per batch (one checkpoint write each).
pub const BATCH_SIZE_MAX: i64 = 2_000;
/// How often an idle relay looks at the tail (unless an append in this process wakes it).
pub const IDLE_POLL: Duration = Duration::from_millis(10);
/// How often a standby relay tries to become the active one.
pub const STANDBY_POLL: Duration = Duration::from_millis(500);
/// How long the relay waits after an error before it starts over from its checkpoint.
pub const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Why the relay stopped relaying (it starts over from its checkpoint).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Url(#[from] crate::db::DbError),
    #[error("database unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("event store: {0}")]
    Store(#[from] crate::StoreError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// What a relay is doing, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    Starting,
    Standby,
    Active,
}

/// The relay of one event store to one Kafka cluster.
pub struct Relay {
    database_url: String,
    kafka: KafkaSettings,
    name: String,
    wake: Option<watch::Receiver<crate::service::Appends>>,
    state: watch::Sender<RelayState>,
}

impl Relay {
    /// A relay named `main` from the store at `database_url` to `kafka`.
    pub fn new(database_url: impl Into<String>, kafka: KafkaSettings) -> Relay {
        Relay {
            database_url: database_url.into(),
            kafka,
            name: "main".into(),
            wake: None,
            state: watch::channel(RelayState::Starting).0,
        }
    }

    /// Wakes the idle relay whenever `appended` changes (appends in this process).
    pub fn wake_on(mut self, appended: watch::Receiver<crate::service::Appends>) -> Relay {
        self.wake = Some(appended);
        self
    }

    /// Watches the relay's state.
    pub fn state(&self) -> watch::Receiver<RelayState> {
        self.state.subscribe()
    }

    /// Relays until `stop` turns true, starting over from the checkpoint after any error.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(e) = self.relay(&mut stop).await {
                tracing::error!(relay = self.name, error = %e, "relay failed; starting over from its checkpoint");
                let _ = self.state.send(RelayState::Starting);
                tokio::select! {
                    _ = tokio::time::sleep(ERROR_PAUSE) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    /// An idempotent producer: the broker drops a retried send it already has, and keeps
    /// each partition's order. A new one per term as the active relay (a fatal producer error
    /// ends the term).
    fn producer(&self) -> Result<FutureProducer, RelayError> {
        Ok(self
            .kafka
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "1")
            .set("message.timeout.ms", "30000")
            .set("queue.buffering.max.messages", "100000")
            .create()?)
    }

    /// Takes the lock (waiting as standby), then relays batches until stopped or an error.
    async fn relay(&self, stop: &mut watch::Receiver<bool>) -> Result<(), RelayError> {
        // A pool of one, dropped when this returns: the lock lives as long as its connection.
        let pool = crate::db::pool(&self.database_url, 1)?;
        let client = pool.get().await?;
        let lock = format!("bozor.relay.{}", self.name);
        loop {
            let got: bool = client.query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&lock]).await?.get(0);
            if got {
                break;
            }
            if *self.state.borrow() != RelayState::Standby {
                tracing::info!(relay = self.name, "another relay is active; standing by");
                let _ = self.state.send(RelayState::Standby);
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY_POLL) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return Ok(());
            }
        }
        client
            .execute("INSERT INTO relay_checkpoints (relay) VALUES ($1) ON CONFLICT DO NOTHING", &[&self.name])
            .await?;
        let row = client
            .query_one("SELECT tx_id::text, position FROM relay_checkpoints WHERE relay = $1", &[&self.name])
            .await?;
        let mut after =
            TailPosition { tx_id: row.get::<_, String>(0).parse().unwrap_or(0), global_position: row.get(1) };
        tracing::info!(relay = self.name, tx_id = after.tx_id, position = after.global_position, "relay active");
        let producer = self.producer()?;
        let _ = self.state.send(RelayState::Active);
        // Topic by stream type, for the types whose topic exists (created on first sight).
        let mut topics: HashMap<String, String> = HashMap::new();
        let mut wake = self.wake.clone();
        while !*stop.borrow() {
            let events = read_tail_with(&client, after, BATCH_SIZE_MAX).await?;
            let Some(last) = events.last().map(StoredEvent::tail_position) else {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = crate::service::next_append(wake.as_mut()) => {}
                    _ = stop.changed() => {}
                }
                continue;
            };
            let new: HashSet<&str> =
                events.iter().map(|e| e.stream_type.as_str()).filter(|t| !topics.contains_key(*t)).collect();
            if !new.is_empty() {
                let named: Vec<(String, String)> =
                    new.into_iter().map(|t| (t.to_owned(), self.kafka.topic(t))).collect();
                self.kafka.ensure_topics(&named.iter().map(|(_, topic)| topic.clone()).collect::<Vec<_>>()).await?;
                topics.extend(named);
            }
            self.produce(&producer, &topics, &events).await?;
            if crate::fault::armed("relay_after_ack") {
                crate::fault::crash("relay_after_ack");
            }
            client
                .execute(
                    "UPDATE relay_checkpoints SET tx_id = $2::text::xid8, position = $3, events = events + $4,
                            updated_at = now() WHERE relay = $1",
                    &[&self.name, &last.tx_id.to_string(), &last.global_position, &(events.len() as i64)],
                )
                .await?;
            after = last;
        }
        Ok(())
    }

    /// Produces a batch and waits until the broker has acknowledged every event of it.
    async fn produce(
        &self,
        producer: &FutureProducer,
        topics: &HashMap<String, String>,
        events: &[StoredEvent],
    ) -> Result<(), RelayError> {
        let mut deliveries = Vec::with_capacity(events.len());
        for e in events {
            let topic = &topics[&e.stream_type];
            let key = e.stream_id.to_string();
            let value = encode(e);
            let (position, version, event_version) =
                (e.global_position.to_string(), e.version.to_string(), e.event_version.to_string());
            let headers = OwnedHeaders::new_with_capacity(4)
                .insert(Header { key: "event_type", value: Some(e.event_type.as_str()) })
                .insert(Header { key: "event_version", value: Some(event_version.as_str()) })
                .insert(Header { key: "global_position", value: Some(position.as_str()) })
                .insert(Header { key: "stream_version", value: Some(version.as_str()) });
            let record = FutureRecord::to(topic).key(&key).payload(&value).headers(headers);
            match producer.send_result(record) {
                Ok(delivery) => deliveries.push(delivery),
                Err((e, _)) => return Err(e.into()),
            }
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((e, _))) => return Err(e.into()),
                Err(_) => return Err(rdkafka::error::KafkaError::Canceled.into()),
            }
        }
        Ok(())
    }
}

/// How far a relay is from the head of the log, for metrics.
#[derive(Debug, Clone)]
pub struct RelayLag {
    pub relay: String,
    /// Events written after its checkpoint, counted up to `count_max`.
    pub lag_events: i64,
    /// Age of the oldest event it has not produced.
    pub lag_seconds: f64,
    /// Events it produced.
    pub events: i64,
}

/// Every relay's lag (its checkpoint against the tail), counting at most `count_max` events.
pub async fn lag(client: &tokio_postgres::Client, count_max: i64) -> Result<Vec<RelayLag>, tokio_postgres::Error> {
    let (lag_events, lag_seconds) = crate::store::lag_sql("r");
    let sql =
        format!("SELECT r.relay, {lag_events}, {lag_seconds}, r.events FROM relay_checkpoints r ORDER BY r.relay");
    let rows = client.query(&sql, &[&count_max]).await?;
    Ok(rows
        .iter()
        .map(|r| RelayLag { relay: r.get(0), lag_events: r.get(1), lag_seconds: r.get(2), events: r.get(3) })
        .collect())
}
