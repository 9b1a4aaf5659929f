-- The scope registry, service accounts and API keys. A key exists only as the SHA-256 of the
-- whole key; its first characters are kept in clear (public_prefix) to tell keys apart in
-- lists. A key belongs to a user (personal access token) or to a service account, never both.

CREATE TABLE scopes (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    takes_values BOOLEAN NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE service_accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    key_hash BLOB NOT NULL UNIQUE,
    public_prefix TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('personal', 'service_account')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    service_account_id TEXT REFERENCES service_accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    last_used_ip TEXT,
    revoked_at INTEGER,
    CHECK ((user_id IS NULL) <> (service_account_id IS NULL))
);
CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE INDEX api_keys_service_account ON api_keys (service_account_id);
