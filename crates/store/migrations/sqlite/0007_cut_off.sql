-- Cutting a user off: when an account is disabled, every JWT access token issued to it up to
-- that moment is refused until the longest access-token lifetime has passed (JWTs are issued
-- without a database write, so they cannot all be listed by jti). Indexes for ending a user's
-- refresh families, codes in flight and opaque tokens at once. Revoked JWTs get the same
-- database-assigned order as cut-offs, so that a revocation committed late is still read.

CREATE TABLE revoked_subjects (
    subject TEXT NOT NULL,
    -- Tokens issued at or before this time are refused; a later cut-off is a new row.
    revoked_at INTEGER NOT NULL,
    -- Until then: past it, every such token has expired anyway.
    expires_at INTEGER NOT NULL,
    -- Commit order, from the database (a trigger copies the rowid): nodes read new entries
    -- by it, never by wall-clock time.
    seq INTEGER,
    PRIMARY KEY (subject, revoked_at)
);
CREATE INDEX revoked_subjects_seq ON revoked_subjects (seq);

CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX access_tokens_user ON access_tokens (user_id);
CREATE INDEX authorization_codes_user ON authorization_codes (user_id);
CREATE INDEX service_accounts_owner ON service_accounts (owner_id);
CREATE INDEX device_authorizations_user ON device_authorizations (user_id);

ALTER TABLE revoked_jwts ADD COLUMN seq INTEGER;
UPDATE revoked_jwts SET seq = rowid;
CREATE INDEX revoked_jwts_seq ON revoked_jwts (seq);
CREATE TRIGGER revoked_jwts_seq AFTER INSERT ON revoked_jwts BEGIN
    UPDATE revoked_jwts SET seq = NEW.rowid WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER revoked_subjects_seq AFTER INSERT ON revoked_subjects BEGIN
    UPDATE revoked_subjects SET seq = NEW.rowid WHERE rowid = NEW.rowid;
END;
