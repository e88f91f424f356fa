-- Fan-out through Kafka: the relay's checkpoint, and how a projection is fed.

-- Where the relay is in the tail: moved only after the broker acknowledged every event of a
-- batch, so a crash re-sends (at least once), never skips.
CREATE TABLE relay_checkpoints (
    relay      text PRIMARY KEY,
    tx_id      xid8 NOT NULL DEFAULT '0',
    position   bigint NOT NULL DEFAULT 0,
    events     bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- 'store': fed from the event store's tail (embedded, rebuilds); the checkpoint is then a
-- tail position. 'kafka': fed from a consumer group; Kafka keeps the offsets, `position` is
-- the highest global position applied (for humans), and the lag is what the consumer last saw.
ALTER TABLE projection_checkpoints
    ADD COLUMN feed text NOT NULL DEFAULT 'store' CHECK (feed IN ('store', 'kafka')),
    ADD COLUMN kafka_lag_events bigint NOT NULL DEFAULT 0,
    ADD COLUMN kafka_lag_seconds double precision NOT NULL DEFAULT 0;
