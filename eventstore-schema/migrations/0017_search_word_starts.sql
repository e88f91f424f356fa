-- Search (issue 13): a word start is matched with LIKE over the key with a space in front
-- (`' ' || title_key LIKE '% kobal%'`) instead of the regular expression `(^| )kobal`. Both
-- find the same rows through trigrams, but a regular expression is compiled and run per row
-- and, when a query is planned, against every sampled value of the column: under 32 clients
-- that was half of the database's CPU. The trigram indexes move to the expressions the
-- queries name, and they are no longer partial: the planner reads the statistics of an
-- index's expression only when the index covers every row (an inactive listing has no keys,
-- so it adds only a NULL entry to them). The old ones are dropped by what they are, not by name: a
-- projection rebuild gives the indexes of the tables it swaps in names of its own.
-- Deploying it: the index builds hold search_listings' lock until the migration commits
-- (seconds at 100 000 listings), and a search rebuild must not be running across it (its
-- shadow, copied before, would bring the old indexes back at its swap).
DO $$
DECLARE
    i record;
BEGIN
    FOR i IN
        SELECT indexname FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = 'search_listings' AND indexdef LIKE '%gin_trgm_ops%'
    LOOP
        EXECUTE format('DROP INDEX %I', i.indexname);
    END LOOP;
END $$;

CREATE INDEX search_listings_title_trgm ON search_listings USING gin ((' ' || title_key) gin_trgm_ops);
CREATE INDEX search_listings_text_trgm ON search_listings USING gin ((' ' || text_key) gin_trgm_ops);
