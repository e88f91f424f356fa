-- Read models of orders (with their escrow's custody status) and of wallets (balances and
-- ledger lines).

CREATE TABLE orders_view (
    order_id      uuid PRIMARY KEY,
    buyer_id      uuid NOT NULL,
    seller_id     uuid NOT NULL,
    status        text NOT NULL,
    digital       boolean NOT NULL,
    district      text,
    courier_id    uuid,
    goods_total   bigint NOT NULL,
    delivery_fee  bigint NOT NULL,
    escrow_status text,
    release_due_at timestamptz,
    placed_at     timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    state         jsonb NOT NULL
);

CREATE INDEX orders_view_buyer ON orders_view (buyer_id, placed_at DESC, order_id DESC);
CREATE INDEX orders_view_seller ON orders_view (seller_id, placed_at DESC, order_id DESC);
-- Orders a courier may take: accepted, delivery, not yet assigned.
CREATE INDEX orders_view_open_for_couriers ON orders_view (district, placed_at DESC, order_id DESC)
    WHERE status = 'accepted' AND NOT digital;

-- The escrow stream's state, by escrow; orders_view carries its status for queries.
CREATE TABLE escrows_view (
    escrow_id uuid PRIMARY KEY,
    order_id  uuid NOT NULL,
    state     jsonb NOT NULL
);

CREATE TABLE wallets_view (
    wallet_id  uuid PRIMARY KEY,
    user_id    uuid,
    account    text,
    available  bigint NOT NULL,
    held       bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    state      jsonb NOT NULL
);

CREATE INDEX wallets_view_user ON wallets_view (user_id);

-- One line per money-moving wallet event: what a statement shows and an auditor sums.
CREATE TABLE wallet_ledger (
    wallet_id  uuid NOT NULL,
    version    bigint NOT NULL,
    journal_id uuid NOT NULL,
    event_type text NOT NULL,
    available  bigint NOT NULL,
    held       bigint NOT NULL,
    detail     jsonb NOT NULL,
    at         timestamptz NOT NULL,
    position   bigint NOT NULL,
    PRIMARY KEY (wallet_id, version)
);

CREATE INDEX wallet_ledger_journal ON wallet_ledger (journal_id);
