-- The ceiling for appends: one plain single-row INSERT transaction into a table shaped like
-- `events` (same columns and indexes), as `bozor bench append` writes, without bozor's logic.
INSERT INTO events_shape (stream_type, stream_id, version, event_id, event_type, event_version,
                          payload, metadata, recorded_at, hash)
VALUES ('bench', gen_random_uuid(), 1, gen_random_uuid(), 'BenchAppended', 1,
        '{"writer": 1, "title": "iPhone 15 Pro 256GB", "price": 1450000000}',
        '{"actor": "00000000-0000-0000-0000-000000000000", "command": "bench"}',
        now(), sha256(random()::text::bytea));
