-- The users read model: who someone is and which roles they hold, for "who am I" and for
-- staff looking up users (couriers of a district, sellers on a plan).
CREATE TABLE users_view (
    user_id       uuid PRIMARY KEY,
    phone         text NOT NULL,
    roles         text[] NOT NULL,
    plan          text,
    district      text,
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    last_position bigint NOT NULL,
    state         jsonb NOT NULL
);
CREATE INDEX users_view_by_role ON users_view USING gin (roles);
CREATE INDEX users_view_by_district ON users_view (district) WHERE district IS NOT NULL;
