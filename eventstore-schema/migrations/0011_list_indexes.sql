-- Every list the API serves walks an index in its own sort order and stops after a page:
-- equality filters lead, the sort columns follow, the id breaks ties. Keyset cursors compare
-- the same columns (no expressions over them). `projections/tests` EXPLAINs every query shape
-- the API builds and fails on a sort over all matching rows or a sequential scan.

-- Listings (live rows only): newest, price and popular, alone and within kind, category and
-- game; promoted ones; a seller's; the moderation queue.
DROP INDEX listings_view_seller;
DROP INDEX listings_view_moderation;
CREATE INDEX listings_view_newest ON listings_view (status, created_at DESC, listing_id DESC) WHERE NOT deleted;
CREATE INDEX listings_view_popular ON listings_view (status, sales DESC, listing_id DESC) WHERE NOT deleted;
-- listings_view_browse (status, category, created_at DESC, listing_id DESC) and
-- listings_view_price (status, price, listing_id) stay.
CREATE INDEX listings_view_category_price ON listings_view (status, category, price, listing_id) WHERE NOT deleted;
CREATE INDEX listings_view_category_popular ON listings_view (status, category, sales DESC, listing_id DESC)
    WHERE NOT deleted;
CREATE INDEX listings_view_kind_newest ON listings_view (status, kind, created_at DESC, listing_id DESC)
    WHERE NOT deleted;
CREATE INDEX listings_view_kind_price ON listings_view (status, kind, price, listing_id) WHERE NOT deleted;
CREATE INDEX listings_view_kind_popular ON listings_view (status, kind, sales DESC, listing_id DESC) WHERE NOT deleted;
CREATE INDEX listings_view_game_newest ON listings_view (status, game, created_at DESC, listing_id DESC)
    WHERE game IS NOT NULL AND NOT deleted;
CREATE INDEX listings_view_game_price ON listings_view (status, game, price, listing_id)
    WHERE game IS NOT NULL AND NOT deleted;
CREATE INDEX listings_view_game_popular ON listings_view (status, game, sales DESC, listing_id DESC)
    WHERE game IS NOT NULL AND NOT deleted;
-- Promoted listings are few: `premium=true` walks only them.
CREATE INDEX listings_view_premium ON listings_view (status, created_at DESC, listing_id DESC)
    WHERE promoted_until IS NOT NULL AND NOT deleted;
CREATE INDEX listings_view_seller ON listings_view (seller_id, status, created_at DESC, listing_id DESC)
    WHERE NOT deleted;
CREATE INDEX listings_view_queue ON listings_view (status, (coalesce(submitted_at, created_at)), listing_id)
    WHERE NOT deleted;

-- Orders: a seller's in one status (a buyer's and a courier's are few enough to filter).
CREATE INDEX orders_view_seller_status ON orders_view (seller_id, status, placed_at DESC, order_id DESC);

-- Users by role (and couriers by district), in id order: one partial index per role, so a
-- page of a rare role does not read every user. `buyer` is every user: the primary key walks.
DROP INDEX users_view_by_role;
DROP INDEX users_view_by_district;
CREATE INDEX users_view_sellers ON users_view (user_id) WHERE roles @> '{seller}';
CREATE INDEX users_view_couriers ON users_view (user_id) WHERE roles @> '{courier}';
CREATE INDEX users_view_couriers_by_district ON users_view (district, user_id) WHERE roles @> '{courier}';
CREATE INDEX users_view_support ON users_view (user_id) WHERE roles @> '{support}';
CREATE INDEX users_view_admins ON users_view (user_id) WHERE roles @> '{admin}';
CREATE INDEX users_view_auditors ON users_view (user_id) WHERE roles @> '{auditor}';
