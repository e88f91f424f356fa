-- Large JSON values (snapshots, the read models' folded states, search documents) are
-- compressed with lz4 instead of PostgreSQL's default pglz when they are stored out of line:
-- lz4 compresses several times faster for a little less space. Values already stored keep
-- pglz until they are written again; both read back the same. `SET COMPRESSION` needs
-- PostgreSQL 14 or later.
--
-- A server built without lz4 refuses the setting ("feature not supported"): it then keeps
-- pglz, and this migration only says so. Event payloads are left alone: they are seldom large
-- enough to be compressed, and the events table is the one every command writes.
--
-- Setting a column's compression rewrites nothing, but it locks its table for a moment, and
-- the lock waits behind any open reader of the table (a slow export, say) while every command
-- queues behind the lock. It gives up after 5 s instead: the migration fails, nothing changes,
-- and the next start tries again.
SET LOCAL lock_timeout = '5s';
DO $$
BEGIN
    ALTER TABLE snapshots ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE listings_view ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE orders_view ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE escrows_view ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE wallets_view ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE users_view ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE payments_view ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE search_states ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE search_listings ALTER COLUMN doc SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: JSON values keep pglz compression';
END $$;
