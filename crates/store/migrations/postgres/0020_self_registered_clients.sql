-- Clients that register themselves (RFC 7591 dynamic registration): who registered a client
-- ('admin' or 'dynamic'), the hash of its registration access token (RFC 7592), and when it
-- was last used, so that one unused for long is deleted.
ALTER TABLE oauth_clients ADD COLUMN registered_by TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE oauth_clients ADD COLUMN registration_token_hash BYTEA;
ALTER TABLE oauth_clients ADD COLUMN last_used_at BIGINT;
CREATE INDEX oauth_clients_self_registered ON oauth_clients (registered_by, last_used_at) WHERE registered_by <> 'admin';

-- Resources that clients which registered themselves may ask tokens for.
ALTER TABLE resources ADD COLUMN open_to_self_registered BOOLEAN NOT NULL DEFAULT FALSE;

-- Initial access tokens (RFC 7591 §3): only their hash, a name, when they stop working and how
-- many registrations they may still make (NULL: any number).
CREATE TABLE registration_tokens (
    id TEXT PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    uses_left BIGINT,
    revoked_at BIGINT
);
