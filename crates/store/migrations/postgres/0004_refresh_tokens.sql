-- Refresh tokens, rotated on every use and grouped in one family (grant) per authorization.
-- Tokens are stored only as SHA-256 hashes. After a rotation, the successor pair is kept sealed
-- with the key-encryption key for the reuse grace window only, so that a client retrying with
-- the old token gets the same pair back; reuse after the window revokes the family.

CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    amr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX grants_expires ON grants (expires_at);

CREATE TABLE refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    successor_sealed BYTEA,
    access_jti TEXT,
    access_token_hash BYTEA,
    access_expires_at BIGINT
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);

-- RP-initiated logout: where a client may send the browser after signing out.
ALTER TABLE oauth_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

-- Per-client policy: require state, the ID-token algorithm, refresh tokens without offline_access.
ALTER TABLE oauth_clients ADD COLUMN require_state BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE oauth_clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';
ALTER TABLE oauth_clients ADD COLUMN always_refresh BOOLEAN NOT NULL DEFAULT FALSE;
