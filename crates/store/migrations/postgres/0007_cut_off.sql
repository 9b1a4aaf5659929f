-- Cutting a user off: when an account is disabled, every JWT access token issued to it up to
-- that moment is refused until the longest access-token lifetime has passed (JWTs are issued
-- without a database write, so they cannot all be listed by jti). Indexes for ending a user's
-- refresh families, codes in flight and opaque tokens at once.

CREATE TABLE revoked_subjects (
    subject TEXT PRIMARY KEY,
    -- Tokens issued at or before this time are refused.
    revoked_at BIGINT NOT NULL,
    -- Until then: past it, every such token has expired anyway.
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_subjects_revoked ON revoked_subjects (revoked_at);

CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX access_tokens_user ON access_tokens (user_id);
CREATE INDEX authorization_codes_user ON authorization_codes (user_id);
CREATE INDEX service_accounts_owner ON service_accounts (owner_id);
CREATE INDEX device_authorizations_user ON device_authorizations (user_id);
