-- Refresh-token rows stop piling up.
--
-- A rotated token's sealed successor pair (about 1.3 kB, kept for the reuse grace window only)
-- moves to a table of its own: written once and deleted whole, instead of growing a row of
-- refresh_tokens in place and shrinking it again, which left most of every page empty.
CREATE TABLE refresh_successors (
    token_hash BYTEA PRIMARY KEY,
    sealed BYTEA NOT NULL,
    rotated_at BIGINT NOT NULL
);
CREATE INDEX refresh_successors_rotated ON refresh_successors (rotated_at);
INSERT INTO refresh_successors (token_hash, sealed, rotated_at)
    SELECT token_hash, successor_sealed, rotated_at FROM refresh_tokens
    WHERE successor_sealed IS NOT NULL AND rotated_at IS NOT NULL;
UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL;

-- Once a rotated token's grace window has passed and the access token issued with it has
-- expired, only what reuse detection needs stays (its hash and family); a family that ended
-- (revoked, or whose live token went idle) is deleted with its tokens. These partial indexes
-- let the clean-up find each kind without scanning the table.
CREATE INDEX refresh_tokens_spent ON refresh_tokens (access_expires_at) WHERE rotated_at IS NOT NULL AND access_expires_at IS NOT NULL;
CREATE INDEX refresh_tokens_live_idle ON refresh_tokens (idle_expires_at) WHERE rotated_at IS NULL;
CREATE INDEX grants_revoked ON grants (revoked_at) WHERE revoked_at IS NOT NULL;
