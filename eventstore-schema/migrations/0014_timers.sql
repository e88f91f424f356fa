-- Durable timers (issue 15), derived from events by the `timers` projection and fired by the
-- scheduler as ordinary commands of the system actor. The projection creates and cancels
-- them; the scheduler records what firing did (fired, moot, or attempts with the last error).
CREATE TABLE timers (
    timer_id        text PRIMARY KEY,       -- '<kind>:<stream id>'
    kind            text NOT NULL CHECK (kind IN ('escrow_release', 'listing_approval', 'order_unpaid')),
    stream_id       uuid NOT NULL,
    -- When it is due; for `order_unpaid`, when the order was placed (the unpaid TTL is the
    -- scheduler's setting, BOZOR_ORDER_UNPAID_TTL).
    due_at          timestamptz NOT NULL,
    state           text NOT NULL CHECK (state IN ('pending', 'fired', 'cancelled', 'moot')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    fired_at        timestamptz,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX timers_pending ON timers (due_at, timer_id) WHERE state = 'pending';
CREATE INDEX timers_failing ON timers (updated_at DESC) WHERE state = 'pending' AND attempts > 0;
