-- Base schema (SQLite). Timestamps are unix seconds set by the application, never by SQL.
-- Secrets that must be recovered are sealed with the key-encryption key; bearer secrets are
-- stored only as SHA-256 hashes.

CREATE TABLE instance (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kek_check BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    email_normalized TEXT NOT NULL UNIQUE,
    email_verified BOOLEAN NOT NULL DEFAULT 0,
    password_hash TEXT,
    display_name TEXT,
    disabled BOOLEAN NOT NULL DEFAULT 0,
    is_admin BOOLEAN NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    client_type TEXT NOT NULL CHECK (client_type IN ('public', 'confidential')),
    secret_hash BLOB,
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    allowed_scopes TEXT NOT NULL,
    first_party BOOLEAN NOT NULL DEFAULT 0,
    access_token_format TEXT NOT NULL CHECK (access_token_format IN ('jwt', 'opaque')),
    access_token_ttl INTEGER NOT NULL,
    refresh_token_ttl INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    private_key_sealed BLOB NOT NULL,
    active BOOLEAN NOT NULL,
    created_at INTEGER NOT NULL,
    rotated_at INTEGER,
    publish_until INTEGER
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE active;

CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    ip TEXT,
    user_agent TEXT,
    outcome TEXT NOT NULL,
    details TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);

CREATE TABLE setup_tokens (
    token_hash BLOB PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER
);
