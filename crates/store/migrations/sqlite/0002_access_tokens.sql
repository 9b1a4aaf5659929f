-- Opaque access tokens (stored only as SHA-256 hashes) and revoked JWT access tokens (by jti,
-- kept until the token would have expired).

CREATE TABLE access_tokens (
    token_hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    auth_time INTEGER,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX access_tokens_expires ON access_tokens (expires_at);

CREATE TABLE revoked_jwts (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revoked_jwts_revoked ON revoked_jwts (revoked_at);
CREATE INDEX revoked_jwts_expires ON revoked_jwts (expires_at);
