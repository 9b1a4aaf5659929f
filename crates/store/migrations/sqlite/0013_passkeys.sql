-- Passkeys (WebAuthn credentials). The credential (public key, signature counter, flags) is
-- kept as webauthn-rs serialises it: nothing in it is secret, and its counter is updated at
-- every use. credential_id (base64url) is unique across all users.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- The random handle that stands for a user inside their passkeys (WebAuthn's user.id), so an
-- authenticator never holds the user's id or address.
CREATE TABLE passkey_handles (
    user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle TEXT NOT NULL UNIQUE
);

-- A WebAuthn ceremony under way (registration, second factor, passwordless sign-in): its state
-- with the challenge stays here, found by the hash of the id the browser holds, used once.
CREATE TABLE webauthn_ceremonies (
    id_hash BLOB PRIMARY KEY,
    purpose TEXT NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
