-- Device Authorization Grant (RFC 8628). Both codes are stored only as SHA-256 hashes. A row
-- goes pending -> approved (with the user) or denied -> consumed, each step one conditional
-- update; expired rows are deleted by the background task.

CREATE TABLE device_authorizations (
    device_code_hash BLOB PRIMARY KEY,
    user_code_hash BLOB NOT NULL UNIQUE,
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    auth_time INTEGER,
    amr TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_at INTEGER,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX device_authorizations_expires ON device_authorizations (expires_at);
