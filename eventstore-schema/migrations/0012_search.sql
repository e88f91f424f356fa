-- Search (issue 13): the search-sync projection's tables. `search_states` holds its own folded
-- listing states (wide rows, read only when events are applied). `search_listings` has one
-- narrow row per listing: while the listing is active, its search document and the columns the
-- PostgreSQL backend matches, filters, sorts and counts facets by. `seq` orders changes for the
-- Meilisearch sync, which pushes the rows changed after its checkpoint (an outbox).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE SEQUENCE search_listings_seq;

CREATE TABLE search_states (
    listing_id uuid PRIMARY KEY,
    state jsonb NOT NULL,
    sales bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL
);

CREATE TABLE search_listings (
    listing_id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL,
    seq bigint NOT NULL,
    active boolean NOT NULL,
    doc jsonb,
    title text,
    kind text,
    category text,
    game text,
    city text,
    price bigint,
    premium boolean,
    popularity bigint,
    title_key text,
    text_key text,
    -- Full text over the original words and their Latin keys, titles weighing most.
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple'::regconfig, coalesce(doc->>'title', '') || ' ' || coalesce(title_key, '')), 'A')
        || setweight(to_tsvector('simple'::regconfig, coalesce(doc->>'description', '') || ' ' || coalesce(text_key, '')), 'B')
    ) STORED
);

CREATE INDEX search_listings_changes ON search_listings (seq);
-- Matching: words and prefixes (trigrams, also typos) in titles, and in everything else.
CREATE INDEX search_listings_title_trgm ON search_listings USING gin (title_key gin_trgm_ops) WHERE active;
CREATE INDEX search_listings_text_trgm ON search_listings USING gin (text_key gin_trgm_ops) WHERE active;
CREATE INDEX search_listings_tsv ON search_listings USING gin (tsv) WHERE active;
-- Browsing with no words, in each order.
-- Autosuggest walks the best-ranked listings from this index alone (it covers what it shows).
CREATE INDEX search_listings_rank ON search_listings (premium DESC, popularity DESC, created_at DESC, listing_id)
    INCLUDE (title_key, title, kind, price, city) WHERE active;
CREATE INDEX search_listings_newest ON search_listings (created_at DESC, listing_id) WHERE active;
CREATE INDEX search_listings_price ON search_listings (price, listing_id) WHERE active;

-- The Meilisearch sync keeps its checkpoint (a `seq`) and lag with the projections'.
ALTER TABLE projection_checkpoints DROP CONSTRAINT projection_checkpoints_feed_check,
    ADD CONSTRAINT projection_checkpoints_feed_check CHECK (feed IN ('store', 'kafka', 'search'));
