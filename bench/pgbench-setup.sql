-- A table shaped like `events` (same columns, same indexes) for the pgbench ceiling.
CREATE TABLE IF NOT EXISTS events_shape (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_type text NOT NULL, stream_id uuid NOT NULL, version bigint NOT NULL,
    event_id uuid NOT NULL UNIQUE, event_type text NOT NULL, event_version integer NOT NULL,
    payload jsonb NOT NULL, metadata jsonb NOT NULL, recorded_at timestamptz NOT NULL,
    tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(), hash bytea NOT NULL,
    UNIQUE (stream_id, version));
CREATE INDEX IF NOT EXISTS events_shape_tail ON events_shape (tx_id, global_position);
