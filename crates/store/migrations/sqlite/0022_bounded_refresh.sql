-- Refresh-token rows stop piling up. Once a rotated token's grace window has passed and the
-- access token issued with it has expired, only what reuse detection needs stays (its hash and
-- family); a family that ended (revoked, or whose live token went idle) is deleted with its
-- tokens. These partial indexes let the clean-up find each kind without scanning the table.
CREATE INDEX refresh_tokens_successors ON refresh_tokens (rotated_at) WHERE successor_sealed IS NOT NULL;
CREATE INDEX refresh_tokens_spent ON refresh_tokens (access_expires_at) WHERE rotated_at IS NOT NULL AND access_expires_at IS NOT NULL;
CREATE INDEX refresh_tokens_live_idle ON refresh_tokens (idle_expires_at) WHERE rotated_at IS NULL;
CREATE INDEX grants_revoked ON grants (revoked_at) WHERE revoked_at IS NOT NULL;
