-- Second factors. A TOTP secret is sealed with the key-encryption key (it must be read back to
-- check codes); it counts only once enabled, after a correct first code. last_step is the last
-- time step accepted, so a code is never accepted twice. Recovery codes are stored only as
-- SHA-256 hashes, each used once.

CREATE TABLE totp_factors (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    enabled_at INTEGER,
    last_step INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE recovery_codes (
    code_hash BLOB PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- A sign-in whose password was right but whose second factor is still to come: whose it is and
-- what was used so far. Nothing signed in exists until the second step succeeds.
ALTER TABLE sign_ins ADD COLUMN user_id TEXT REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE sign_ins ADD COLUMN amr TEXT;

-- Clients whose users must have used a second factor (a request may also ask, acr_values).
ALTER TABLE oauth_clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
