-- The read side: projector checkpoints, per-stream versions applied (exactly-once effect), and
-- the listings read model.

-- Where each projection is in the tail, updated in the same transaction as its read model.
CREATE TABLE projection_checkpoints (
    projection   text PRIMARY KEY,
    version      integer NOT NULL,
    tx_id        xid8 NOT NULL DEFAULT '0',
    position     bigint NOT NULL DEFAULT 0,
    events       bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    state        text NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'rebuilding', 'failed')),
    last_error   text
);

-- The last version of each stream a projection applied: a redelivered event (version not
-- above it) is skipped, so applying is idempotent under at-least-once delivery.
CREATE TABLE projection_stream_versions (
    projection text NOT NULL,
    stream_id  uuid NOT NULL,
    version    bigint NOT NULL,
    PRIMARY KEY (projection, stream_id)
);

-- Listings as buyers and sellers query them. `state` is the domain's folded Listing state; the
-- other columns are derived from it for filtering and sorting.
CREATE TABLE listings_view (
    listing_id     uuid PRIMARY KEY,
    seller_id      uuid NOT NULL,
    kind           text NOT NULL,
    status         text NOT NULL,
    deleted        boolean NOT NULL DEFAULT false,
    title          text NOT NULL,
    category       text NOT NULL,
    game           text,
    price          bigint NOT NULL,
    original_price bigint NOT NULL,
    has_images     boolean NOT NULL,
    promoted_until timestamptz,
    sales          bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    last_position  bigint NOT NULL,
    state          jsonb NOT NULL
);

CREATE INDEX listings_view_browse ON listings_view (status, category, created_at DESC, listing_id DESC) WHERE NOT deleted;
CREATE INDEX listings_view_price ON listings_view (status, price, listing_id) WHERE NOT deleted;
CREATE INDEX listings_view_seller ON listings_view (seller_id, created_at DESC, listing_id DESC);
