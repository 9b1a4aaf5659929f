-- Links sent by email: verifying an address, resetting a password, accepting an invitation,
-- confirming a new address. The link carries a random token; this table holds only its
-- SHA-256 hash. Each is single use (consumed_at) and expires; the address it was sent to is
-- kept, since a link to confirm a new address names an address the user does not have yet.

CREATE TABLE email_links (
    token_hash BLOB PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('verify', 'reset', 'invite', 'email_change')),
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    consumed_at INTEGER
);
CREATE INDEX email_links_user ON email_links (user_id, purpose);
CREATE INDEX email_links_expires ON email_links (expires_at);

-- Clients that only people with a verified address may sign in to.
ALTER TABLE oauth_clients ADD COLUMN require_verified_email BOOLEAN NOT NULL DEFAULT FALSE;
