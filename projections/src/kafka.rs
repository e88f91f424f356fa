//! Feeding a projection from Kafka: one consumer group per projection (`<prefix>.projection.
//! <name>`), subscribed to the topics of the stream types it reads. A bounded batch of messages
//! is applied in one read-model transaction (the same gate as the store feed records each
//! stream's version, so a redelivered event changes nothing); the offsets are committed to
//! Kafka only after that transaction commits. A batch that fails is kept and retried as it is,
//! with the projection marked failed: a poison event is never skipped.

use std::sync::Arc;
use std::time::Duration;

use bozor_commands::kafka::{decode, KafkaSettings};
use bozor_commands::store::StoredEvent;
use chrono::Utc;
use deadpool_postgres::Pool;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::runtime::{apply_in, AppliedHook, Projection, ProjectionError, BATCH_SIZE_MAX, FAILED_RETRY};

/// How often an idle consumer refreshes its lag in the status.
pub const IDLE_TICK: Duration = Duration::from_secs(1);

/// One message taken from Kafka, not yet committed.
struct Taken {
    event: Result<StoredEvent, String>,
    topic: String,
    partition: i32,
    offset: i64,
}

/// Feeds one projection from its consumer group.
pub struct KafkaProjector {
    pool: Pool,
    projection: Arc<dyn Projection>,
    kafka: KafkaSettings,
    on_applied: Option<AppliedHook>,
}

impl KafkaProjector {
    /// A Kafka-fed projector for `projection` over `pool`.
    pub fn new(pool: Pool, projection: Arc<dyn Projection>, kafka: KafkaSettings) -> KafkaProjector {
        KafkaProjector { pool, projection, kafka, on_applied: None }
    }

    /// Calls `hook` after every committed batch with the streams it changed.
    pub fn on_applied(mut self, hook: AppliedHook) -> KafkaProjector {
        self.on_applied = Some(hook);
        self
    }

    /// Runs until `stop` turns true; after an error with the broker or the database it starts
    /// over from the committed offsets.
    pub async fn run(&self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            if let Err(e) = self.consume(&mut stop).await {
                tracing::error!(projection = self.projection.name(), error = %e, "kafka projector failed");
                self.mark_failed(&e).await;
                tokio::select! {
                    _ = tokio::time::sleep(FAILED_RETRY) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }

    async fn consume(&self, stop: &mut watch::Receiver<bool>) -> Result<(), ProjectionError> {
        let name = self.projection.name();
        self.pool
            .get()
            .await?
            .execute(
                "INSERT INTO projection_checkpoints (projection, version, feed) VALUES ($1, $2, 'kafka')
                 ON CONFLICT (projection) DO UPDATE SET feed = 'kafka'",
                &[&name, &self.projection.version()],
            )
            .await?;
        let topics: Vec<String> = self.projection.stream_types().iter().map(|t| self.kafka.topic(t)).collect();
        self.kafka.ensure_topics(&topics).await?;
        let mut config = self.kafka.client_config();
        if let Ok(debug) = std::env::var("BOZOR_KAFKA_DEBUG") {
            config.set("debug", debug);
        }
        let consumer: StreamConsumer = config
            .set("group.id", self.kafka.group(name))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.kafka.fetch_wait_ms.to_string())
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            // A broker that keeps filling a response while records keep coming (tansu does)
            // answers once this much is in it: keep it small there (BOZOR_KAFKA_FETCH_PARTITION_BYTES).
            .set("max.partition.fetch.bytes", self.kafka.fetch_partition_bytes.to_string())
            .set("fetch.max.bytes", (u64::from(self.kafka.fetch_partition_bytes) * 4).to_string())
            .set("message.max.bytes", (u64::from(self.kafka.fetch_partition_bytes) * 4).to_string())
            .create()?;
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&refs)?;
        let mut pending: Vec<Taken> = Vec::new();
        let mut read_started = std::time::Instant::now();
        loop {
            if pending.is_empty() {
                tokio::select! {
                    m = consumer.recv() => {
                        read_started = std::time::Instant::now();
                        pending.push(take(&m?));
                    }
                    _ = tokio::time::sleep(IDLE_TICK) => {
                        self.record_idle_lag(&consumer).await?;
                        continue;
                    }
                    _ = stop.changed() => return Ok(()),
                }
                // Whatever else has arrived joins the batch, without waiting for more.
                while pending.len() < BATCH_SIZE_MAX as usize {
                    match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                        Ok(m) => pending.push(take(&m?)),
                        Err(_) => break,
                    }
                }
            }
            let started = std::time::Instant::now();
            match self.apply(&consumer, &pending, read_started, started).await {
                Ok(()) => {
                    tracing::debug!(
                        projection = name,
                        events = pending.len(),
                        ms = started.elapsed().as_millis() as u64,
                        first_offset = pending[0].offset,
                        "kafka batch applied"
                    );
                    if bozor_commands::fault::armed("projector_after_commit") {
                        bozor_commands::fault::crash("projector_after_commit");
                    }
                    commit(&consumer, &pending)?;
                    pending.clear();
                }
                Err(e) => {
                    // Kept as it is and tried again: nothing after it is applied meanwhile.
                    tracing::error!(projection = name, error = %e, "projection failed; retrying the same batch");
                    self.mark_failed(&e).await;
                    tokio::select! {
                        _ = tokio::time::sleep(FAILED_RETRY) => {}
                        _ = stop.changed() => return Ok(()),
                    }
                }
            }
            if *stop.borrow() {
                return Ok(());
            }
        }
    }

    /// Applies a batch and moves the projection's status, in one transaction.
    async fn apply(
        &self,
        consumer: &StreamConsumer,
        batch: &[Taken],
        read_started: std::time::Instant,
        read_done: std::time::Instant,
    ) -> Result<(), ProjectionError> {
        if let Some((t, e)) = batch.iter().find_map(|t| t.event.as_ref().err().map(|e| (t, e))) {
            return Err(bozor_commands::kafka::WireError::at(&t.topic, t.partition, t.offset, e).into());
        }
        let events = || batch.iter().filter_map(|t| t.event.as_ref().ok());
        let name = self.projection.name();
        let lag_events = lag(consumer);
        let oldest = events().map(|e| e.recorded_at).min().unwrap_or_else(Utc::now);
        let lag_seconds = (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1000.0;
        let highest = events().map(|e| e.global_position).max().unwrap_or(0);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let changed = apply_in(&tx, &*self.projection, events(), true).await?;
        let applied = std::time::Instant::now();
        crate::sql::execute(
            &tx,
            "UPDATE projection_checkpoints
             SET position = greatest(position, $2), events = events + $3, updated_at = now(),
                 kafka_lag_events = $4, kafka_lag_seconds = $5,
                 state = CASE WHEN state = 'failed' THEN 'live' ELSE state END, last_error = NULL
             WHERE projection = $1",
            &[&name, &highest, &(batch.len() as i64), &lag_events, &lag_seconds],
        )
        .await?;
        tx.commit().await?;
        if let Some(hook) = &self.on_applied {
            if !changed.is_empty() {
                hook(&crate::runtime::Applied {
                    projection: name,
                    streams: &changed,
                    read_started,
                    read_done,
                    applied,
                });
            }
        }
        Ok(())
    }

    async fn record_idle_lag(&self, consumer: &StreamConsumer) -> Result<(), ProjectionError> {
        let behind = lag(consumer);
        self.pool
            .get()
            .await?
            .execute(
                "UPDATE projection_checkpoints
                 SET kafka_lag_events = $2, kafka_lag_seconds = CASE WHEN $2::bigint = 0 THEN 0 ELSE kafka_lag_seconds END
                 WHERE projection = $1",
                &[&self.projection.name(), &behind],
            )
            .await?;
        Ok(())
    }

    async fn mark_failed(&self, e: &ProjectionError) {
        crate::runtime::mark_failed(&self.pool, self.projection.name(), e).await;
    }
}

fn take(m: &rdkafka::message::BorrowedMessage<'_>) -> Taken {
    let event = match m.payload() {
        Some(bytes) => decode(bytes).map_err(|e| e.to_string()),
        None => Err("message without a value".to_owned()),
    };
    Taken { event, topic: m.topic().to_owned(), partition: m.partition(), offset: m.offset() }
}

/// Commits, for every partition in the batch, the offset after its last message.
fn commit(consumer: &StreamConsumer, batch: &[Taken]) -> Result<(), ProjectionError> {
    let mut next: std::collections::BTreeMap<(&str, i32), i64> = std::collections::BTreeMap::new();
    for t in batch {
        let o = next.entry((t.topic.as_str(), t.partition)).or_insert(0);
        *o = (*o).max(t.offset + 1);
    }
    let mut list = TopicPartitionList::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    // Asynchronous: a commit lost in a crash means a redelivery, which the gate skips.
    consumer.commit(&list, CommitMode::Async)?;
    Ok(())
}

/// Messages in the assigned partitions not yet taken, from the high watermarks the broker
/// last reported in fetch responses (librdkafka's cache: no network round trip).
fn lag(consumer: &StreamConsumer) -> i64 {
    let Ok(position) = consumer.position() else { return 0 };
    position
        .elements()
        .iter()
        .map(|p| {
            let Offset::Offset(at) = p.offset() else { return 0 };
            cached_high_watermark(consumer, p.topic(), p.partition()).map_or(0, |high| (high - at).max(0))
        })
        .sum()
}

fn cached_high_watermark(consumer: &StreamConsumer, topic: &str, partition: i32) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` lives; the topic is a NUL-terminated
    // string that outlives the call; librdkafka writes only the two offsets.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}
