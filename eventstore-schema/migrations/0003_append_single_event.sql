-- bozor_append with a fast path for the common command: one stream, one event, inserted with
-- VALUES instead of an unnest scan. Same signature and behaviour as 0002.

CREATE OR REPLACE FUNCTION bozor_append(
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
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_position bigint;
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
        IF NOT FOUND THEN
            RAISE EXCEPTION 'version conflict on stream %', p_stream_ids[i]
                USING ERRCODE = 'BZ409', DETAIL = p_stream_ids[i]::text || ' ' || p_expected[i]::text;
        END IF;
    END LOOP;

    IF array_length(p_event_ids, 1) = 1 THEN
        INSERT INTO events (stream_type, stream_id, version, event_id, event_type, event_version,
                            payload, metadata, recorded_at, hash)
        VALUES (p_stream_types[1], p_stream_ids[1], p_ev_versions[1], p_event_ids[1], p_event_types[1],
                p_event_versions[1], p_payloads[1], p_metadata[1], p_recorded_at, p_hashes[1])
        RETURNING global_position INTO v_position;
    ELSE
        WITH inserted AS (
            INSERT INTO events (stream_type, stream_id, version, event_id, event_type, event_version,
                                payload, metadata, recorded_at, hash)
            SELECT p_stream_types[e.idx], p_stream_ids[e.idx], e.version, e.event_id, e.event_type,
                   e.event_version, e.payload, e.metadata, p_recorded_at, e.hash
            FROM unnest(p_ev_stream_idx, p_ev_versions, p_event_ids, p_event_types, p_event_versions,
                        p_payloads, p_metadata, p_hashes)
                 AS e(idx, version, event_id, event_type, event_version, payload, metadata, hash)
            RETURNING global_position
        )
        SELECT max(global_position) INTO v_position FROM inserted;
    END IF;

    IF p_idem_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (scope, key, request_hash, response)
        VALUES (p_idem_scope, p_idem_key, p_request_hash, p_response || jsonb_build_object('position', v_position));
    END IF;

    RETURN v_position;
END $$;
