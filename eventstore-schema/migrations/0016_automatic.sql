-- What the scheduler settled (issue 15): listings approved and orders completed automatically,
-- for seller stats and the admin overview.
ALTER TABLE listings_view ADD COLUMN approved_automatically boolean NOT NULL DEFAULT false;
ALTER TABLE orders_view ADD COLUMN completed_automatically boolean NOT NULL DEFAULT false;
