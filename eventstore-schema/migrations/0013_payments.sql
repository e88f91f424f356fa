-- Provider payments (Payme, Click): one row per payment stream, for Payme's GetStatement and
-- the finance staff's reconciliation. The answers to the providers' callbacks are built from
-- the payment streams themselves, never from this table.
CREATE TABLE payments_view (
    payment_id       uuid PRIMARY KEY,
    provider         text NOT NULL,
    provider_tx_id   text NOT NULL,
    target_kind      text NOT NULL CHECK (target_kind IN ('wallet', 'order')),
    target_id        uuid NOT NULL,
    amount           bigint NOT NULL,
    status           text NOT NULL CHECK (status IN ('created', 'performed', 'cancelled', 'refunded')),
    cancel_reason    integer,
    provider_time_ms bigint NOT NULL,
    created_at       timestamptz NOT NULL,
    performed_at     timestamptz,
    cancelled_at     timestamptz,
    journals         uuid[] NOT NULL,
    version          bigint NOT NULL,
    state            jsonb NOT NULL
);
CREATE UNIQUE INDEX payments_view_provider_tx ON payments_view (provider, provider_tx_id);
-- GetStatement: by Payme's own time.
CREATE INDEX payments_view_provider_time ON payments_view (provider, provider_time_ms, payment_id);
-- Reconciliation: by bozor's time of creation.
CREATE INDEX payments_view_created ON payments_view (created_at, payment_id);

-- Withdrawals: the card holder's name, and the staff's list by status.
ALTER TABLE withdrawals_view ADD COLUMN card_holder text;
CREATE INDEX withdrawals_view_status ON withdrawals_view (status, requested_at DESC, withdrawal_id DESC);
CREATE INDEX withdrawals_view_requested ON withdrawals_view (requested_at DESC, withdrawal_id DESC);
