-- The event store: one append-only events table that is both the source of truth and the
-- outbox, the head of every stream, snapshots, and idempotency records of commands.

CREATE TABLE streams (
    stream_id   uuid PRIMARY KEY,
    stream_type text NOT NULL,
    -- Version of the last event; streams start at 1 and have no gaps.
    version     bigint NOT NULL CHECK (version >= 1),
    -- Hash of the last event: the head of the stream's hash chain.
    hash        bytea NOT NULL CHECK (length(hash) = 32),
    updated_at  timestamptz NOT NULL
);

CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_type     text NOT NULL,
    stream_id       uuid NOT NULL,
    version         bigint NOT NULL CHECK (version >= 1),
    event_id        uuid NOT NULL UNIQUE,
    event_type      text NOT NULL,
    event_version   integer NOT NULL CHECK (event_version >= 1),
    payload         jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- The writing transaction: readers tail by (tx_id, global_position) below the oldest
    -- running transaction, so an event whose transaction commits late is never skipped.
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    -- sha256(previous event's hash || canonical bytes of this event); see commands::hash.
    hash            bytea NOT NULL CHECK (length(hash) = 32),
    -- The last line against lost updates.
    UNIQUE (stream_id, version)
);

CREATE INDEX events_tail ON events (tx_id, global_position);

-- Append-only: no event is ever changed or removed.
CREATE FUNCTION bozor_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % refused', TG_OP USING ERRCODE = 'BZ403';
END $$;

CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION bozor_events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION bozor_events_append_only();

CREATE TABLE snapshots (
    stream_id      uuid PRIMARY KEY,
    stream_type    text NOT NULL,
    -- Version of the serialized state; a snapshot of another schema is ignored on load.
    schema_version integer NOT NULL,
    version        bigint NOT NULL,
    hash           bytea NOT NULL,
    state          jsonb NOT NULL,
    taken_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
    -- Who sent the key (the actor), so two clients cannot collide.
    scope        text NOT NULL,
    key          text NOT NULL,
    -- sha256 of method, path and body: a retry with another body is refused.
    request_hash bytea NOT NULL,
    -- The stored outcome returned to every retry.
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Appends events to one or several streams in one transaction, with an expected version per
-- stream (0: the stream must not exist). Raises SQLSTATE BZ409 on a version conflict. Stores
-- the idempotency record, if a key is given, in the same transaction. Returns the outcome:
-- {"streams": [{stream_id, stream_type, version}], "position": <last global position>} merged
-- into p_response.
CREATE FUNCTION bozor_append(
    p_stream_ids     uuid[],
    p_stream_types   text[],
    p_expected       bigint[],
    p_new_versions   bigint[],
    p_head_hashes    bytea[],
    p_ev_stream_idx  integer[],
    p_ev_versions    bigint[],
    p_event_ids      uuid[],
    p_event_types    text[],
    p_event_versions integer[],
    p_payloads       jsonb[],
    p_metadata       jsonb[],
    p_hashes         bytea[],
    p_recorded_at    timestamptz,
    p_idem_scope     text,
    p_idem_key       text,
    p_request_hash   bytea,
    p_response       jsonb
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    i          integer;
    n          integer;
    v_position bigint;
    v_outcome  jsonb;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_stream_ids, 1), 0) LOOP
        IF p_expected[i] = 0 THEN
            INSERT INTO streams (stream_id, stream_type, version, hash, updated_at)
            VALUES (p_stream_ids[i], p_stream_types[i], p_new_versions[i], p_head_hashes[i], p_recorded_at)
            ON CONFLICT (stream_id) DO NOTHING;
        ELSE
            UPDATE streams SET version = p_new_versions[i], hash = p_head_hashes[i], updated_at = p_recorded_at
            WHERE stream_id = p_stream_ids[i] AND version = p_expected[i] AND stream_type = p_stream_types[i];
        END IF;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> 1 THEN
            RAISE EXCEPTION 'version conflict on stream %', p_stream_ids[i]
                USING ERRCODE = 'BZ409', DETAIL = p_stream_ids[i]::text || ' ' || p_expected[i]::text;
        END IF;
    END LOOP;

    INSERT INTO events (stream_type, stream_id, version, event_id, event_type, event_version,
                        payload, metadata, recorded_at, hash)
    SELECT p_stream_types[e.idx], p_stream_ids[e.idx], e.version, e.event_id, e.event_type,
           e.event_version, e.payload, e.metadata, p_recorded_at, e.hash
    FROM unnest(p_ev_stream_idx, p_ev_versions, p_event_ids, p_event_types, p_event_versions,
                p_payloads, p_metadata, p_hashes)
         WITH ORDINALITY AS e(idx, version, event_id, event_type, event_version, payload, metadata, hash, ord)
    ORDER BY e.ord;

    -- Identity values of one INSERT are increasing, so the last one is the command's position.
    v_position := currval(pg_get_serial_sequence('events', 'global_position'));

    SELECT coalesce(p_response, '{}'::jsonb) || jsonb_build_object(
               'position', v_position,
               'streams', jsonb_agg(jsonb_build_object(
                   'stream_id', s.stream_id, 'stream_type', s.stream_type, 'version', s.version)
                   ORDER BY s.ord))
    INTO v_outcome
    FROM unnest(p_stream_ids, p_stream_types, p_new_versions) WITH ORDINALITY AS s(stream_id, stream_type, version, ord);

    IF p_idem_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (scope, key, request_hash, response)
        VALUES (p_idem_scope, p_idem_key, p_request_hash, v_outcome);
    END IF;

    RETURN v_outcome;
END $$;
