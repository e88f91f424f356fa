-- Reads the client apps need: what can still be ordered, the stream version behind every
-- detail (its ETag), couriers' and staff's order lists, withdrawals and their state.
-- The listings, orders and wallets projections move to version 2 with this migration; a
-- projector that finds its read model built by version 1 rebuilds it blue/green at start,
-- which fills the new columns and tables.

ALTER TABLE listings_view
    ADD COLUMN sold_out  boolean NOT NULL DEFAULT false,
    ADD COLUMN available bigint,
    ADD COLUMN version   bigint NOT NULL DEFAULT 0;

ALTER TABLE orders_view ADD COLUMN version bigint NOT NULL DEFAULT 0;
ALTER TABLE wallets_view ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- A courier's deliveries, newest first.
CREATE INDEX orders_view_courier ON orders_view (courier_id, placed_at DESC, order_id DESC)
    WHERE courier_id IS NOT NULL;
-- Staff queues by status (disputes, returns), longest waiting first.
CREATE INDEX orders_view_status_queue ON orders_view (status, updated_at, order_id);

-- One row per withdrawal: requested (pending), paid out (completed) or failed. Withdrawal ids
-- are chosen by clients: unique within a wallet, not across users.
CREATE TABLE withdrawals_view (
    user_id       uuid NOT NULL,
    withdrawal_id uuid NOT NULL,
    amount        bigint NOT NULL,
    card_mask     text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    requested_at  timestamptz NOT NULL,
    finished_at   timestamptz,
    PRIMARY KEY (user_id, withdrawal_id)
);
CREATE INDEX withdrawals_view_user ON withdrawals_view (user_id, requested_at DESC, withdrawal_id DESC);

-- Idempotency records answer retries for 24 hours (IDEMPOTENCY_TTL); the server prunes older
-- ones by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
