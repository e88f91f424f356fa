-- The moderation queue: pending listings, oldest submission first.
ALTER TABLE listings_view ADD COLUMN submitted_at timestamptz;
UPDATE listings_view SET submitted_at = (state->>'submitted_at')::timestamptz;
CREATE INDEX listings_view_moderation ON listings_view (submitted_at, listing_id) WHERE status = 'pending' AND NOT deleted;
