//! What the relay and the Kafka-fed projectors share: broker settings, topic names, topic
//! creation and the wire format of an event.
//!
//! Topic `<prefix>.<stream_type>` (prefix `bozor` by default), key = stream id (so one
//! stream's events stay in one partition, in order), value = the event as JSON, headers
//! `event_type`, `event_version`, `global_position`, `stream_version`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::store::StoredEvent;

/// Where the broker is and how topics are named.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `BOZOR_KAFKA_BROKERS`: bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// `BOZOR_KAFKA_TOPIC_PREFIX`, default `bozor`: topics are `<prefix>.<stream_type>` and
    /// consumer groups `<prefix>.projection.<name>` (tests use one prefix each).
    pub topic_prefix: String,
    /// `BOZOR_KAFKA_PARTITIONS`, default 4: partitions of a topic the relay creates.
    pub partitions: i32,
    /// `BOZOR_KAFKA_FETCH_WAIT_MS`, default 100: longest a consumer's fetch waits at the broker
    /// when there is nothing to take. Apache Kafka answers a fetch as soon as a record arrives,
    /// so this bounds idle fetches, not the lag; a broker that holds a fetch open while records
    /// keep coming (tansu) wants it short (25).
    pub fetch_wait_ms: u32,
    /// `BOZOR_KAFKA_FETCH_PARTITION_BYTES`, default 1 MiB: most a fetch takes from one
    /// partition (a response takes at most four times that). Apache Kafka does well with
    /// librdkafka's 1 MiB; tansu fills a response until this much is in it (64 KiB there).
    pub fetch_partition_bytes: u32,
}

/// Default `fetch_wait_ms`.
pub const FETCH_WAIT_MS_DEFAULT: u32 = 100;
/// Default `fetch_partition_bytes`.
pub const FETCH_PARTITION_BYTES_DEFAULT: u32 = 1 << 20;

/// The stream types the aggregates write.
pub const STREAM_TYPES: &[&str] = &["listing", "order", "escrow", "wallet", "user", "payment"];

/// How long an admin request (topic creation) may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaSettings {
    /// Settings for `brokers` with the default prefix and partitions.
    pub fn new(brokers: impl Into<String>) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.into(),
            topic_prefix: "bozor".into(),
            partitions: 4,
            fetch_wait_ms: FETCH_WAIT_MS_DEFAULT,
            fetch_partition_bytes: FETCH_PARTITION_BYTES_DEFAULT,
        }
    }

    /// The topic of a stream type.
    pub fn topic(&self, stream_type: &str) -> String {
        format!("{}.{stream_type}", self.topic_prefix)
    }

    /// The consumer group of a projection.
    pub fn group(&self, projection: &str) -> String {
        format!("{}.projection.{projection}", self.topic_prefix)
    }

    /// A client configuration pointing at the brokers.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers).set("broker.address.family", "v4");
        config
    }

    /// Whether a broker answers a metadata request within `timeout`. Runs on a blocking
    /// thread (librdkafka's metadata call blocks). Fails with the client's error.
    pub async fn reachable(&self, timeout: Duration) -> Result<(), String> {
        let config = self.client_config();
        tokio::task::spawn_blocking(move || {
            use rdkafka::consumer::{BaseConsumer, Consumer};
            let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
            consumer.fetch_metadata(None, timeout).map(|_| ()).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Creates the topics that do not exist yet (an existing topic is fine).
    pub async fn ensure_topics(&self, topics: &[String]) -> Result<(), rdkafka::error::KafkaError> {
        let admin: AdminClient<DefaultClientContext> = self.client_config().create()?;
        let new: Vec<NewTopic<'_>> =
            topics.iter().map(|t| NewTopic::new(t, self.partitions, TopicReplication::Fixed(1))).collect();
        let results = admin.create_topics(&new, &AdminOptions::new().operation_timeout(Some(ADMIN_TIMEOUT))).await?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(rdkafka::error::KafkaError::AdminOp(code)).inspect_err(|_| {
                        tracing::error!(topic, ?code, "cannot create topic");
                    })
                }
            }
        }
        Ok(())
    }
}

/// An event on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Wire<'a> {
    global_position: i64,
    tx_id: u64,
    #[serde(borrow)]
    stream_type: std::borrow::Cow<'a, str>,
    stream_id: Uuid,
    version: i64,
    event_id: Uuid,
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    event_version: i32,
    payload: Value,
    metadata: Value,
    recorded_at: DateTime<Utc>,
    /// The stream's hash chain link, hex.
    #[serde(borrow)]
    hash: std::borrow::Cow<'a, str>,
}

/// The message value of an event.
pub fn encode(e: &StoredEvent) -> Vec<u8> {
    let wire = Wire {
        global_position: e.global_position,
        tx_id: e.tx_id,
        stream_type: e.stream_type.as_str().into(),
        stream_id: e.stream_id,
        version: e.version,
        event_id: e.event_id,
        event_type: e.event_type.as_str().into(),
        event_version: e.event_version,
        payload: e.payload.clone(),
        metadata: e.metadata.clone(),
        recorded_at: e.recorded_at,
        hash: hex::encode(&e.hash).into(),
    };
    serde_json::to_vec(&wire).expect("an event serializes")
}

/// Why a message is not an event.
#[derive(Debug, thiserror::Error)]
#[error("message is not a bozor event: {0}")]
pub struct WireError(String);

impl WireError {
    /// The error of the message at `topic`/`partition`/`offset`.
    pub fn at(topic: &str, partition: i32, offset: i64, error: &str) -> WireError {
        WireError(format!("{topic}/{partition}@{offset}: {error}"))
    }
}

/// The event in a message value.
pub fn decode(bytes: &[u8]) -> Result<StoredEvent, WireError> {
    let w: Wire<'_> = serde_json::from_slice(bytes).map_err(|e| WireError(e.to_string()))?;
    Ok(StoredEvent {
        global_position: w.global_position,
        tx_id: w.tx_id,
        stream_type: w.stream_type.into_owned(),
        stream_id: w.stream_id,
        version: w.version,
        event_id: w.event_id,
        event_type: w.event_type.into_owned(),
        event_version: w.event_version,
        payload: w.payload,
        metadata: w.metadata,
        recorded_at: w.recorded_at,
        hash: hex::decode(w.hash.as_ref()).map_err(|e| WireError(e.to_string()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_survives_the_wire() {
        let e = StoredEvent {
            global_position: 42,
            tx_id: 1_000,
            stream_type: "listing".into(),
            stream_id: Uuid::new_v4(),
            version: 3,
            event_id: Uuid::new_v4(),
            event_type: "ListingCreated".into(),
            event_version: 1,
            payload: serde_json::json!({ "title": "Nexia 3, 2021 \"oq\"" }),
            metadata: serde_json::json!({ "actor": Uuid::nil() }),
            recorded_at: Utc::now(),
            hash: vec![7; 32],
        };
        let back = decode(&encode(&e)).unwrap();
        assert_eq!(format!("{back:?}"), format!("{e:?}"));
        assert!(decode(b"{\"nonsense\": 1}").is_err());
    }
}
