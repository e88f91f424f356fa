-- Authentication and secrets: state that is not a business fact, so it lives beside the event
-- store rather than in it. Users and their roles are events (stream type 'user'); these tables
-- hold what must be mutable or deletable.

-- Which user a phone number logs in as. The primary key is the one place two first logins of
-- the same number meet: the second finds the first's user. Rebuildable from UserRegistered.
CREATE TABLE user_phones (
    phone      text PRIMARY KEY,
    user_id    uuid NOT NULL UNIQUE,
    claimed_at timestamptz NOT NULL DEFAULT now()
);

-- One-time login codes, hashed with a server-side key (a leaked table does not give codes).
CREATE TABLE auth_otp (
    otp_id      uuid PRIMARY KEY,
    phone       text NOT NULL,
    code_hash   bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    int NOT NULL DEFAULT 0,
    consumed_at timestamptz,
    ip          text
);
CREATE INDEX auth_otp_by_phone ON auth_otp (phone, created_at DESC);

-- Refresh tokens, stored as SHA-256 hashes. Each login starts a family; a refresh rotates the
-- token within it. Presenting a rotated token again (a thief or a replay) revokes the family.
CREATE TABLE auth_refresh_tokens (
    token_hash bytea PRIMARY KEY,
    family_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    rotated_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX auth_refresh_by_family ON auth_refresh_tokens (family_id);

-- Per-listing data keys for game-account credentials, wrapped by the master key. Deleting a
-- row is crypto-shredding: the ciphertext in the event log can never be opened again.
CREATE TABLE data_keys (
    key_id        uuid PRIMARY KEY,
    listing_id    uuid NOT NULL UNIQUE,
    master_key_id bytea NOT NULL,
    wrapped       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
