-- A service account's name is unique among its owner's accounts, not across the instance: a
-- global name let one user squat names and learn which names others use. SQLite cannot drop a
-- column's UNIQUE, so both tables are rebuilt: api_keys first (its rows would cascade away if
-- service_accounts were dropped under it), then each new table takes the old one's name, which
-- also rewrites api_keys' reference to service_accounts.

CREATE TABLE service_accounts_v9 (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    owner_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);
INSERT INTO service_accounts_v9 (id, name, description, owner_id, created_at)
    SELECT id, name, description, owner_id, created_at FROM service_accounts;

CREATE TABLE api_keys_v9 (
    id TEXT PRIMARY KEY,
    key_hash BLOB NOT NULL UNIQUE,
    public_prefix TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('personal', 'service_account')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    service_account_id TEXT REFERENCES service_accounts_v9 (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    last_used_ip TEXT,
    revoked_at INTEGER,
    CHECK ((user_id IS NULL) <> (service_account_id IS NULL))
);
INSERT INTO api_keys_v9 (id, key_hash, public_prefix, kind, user_id, service_account_id, name, scope,
        created_at, expires_at, last_used_at, last_used_ip, revoked_at)
    SELECT id, key_hash, public_prefix, kind, user_id, service_account_id, name, scope,
        created_at, expires_at, last_used_at, last_used_ip, revoked_at FROM api_keys;

DROP TABLE api_keys;
DROP TABLE service_accounts;
ALTER TABLE service_accounts_v9 RENAME TO service_accounts;
ALTER TABLE api_keys_v9 RENAME TO api_keys;

CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE INDEX api_keys_service_account ON api_keys (service_account_id);
