-- The resources an API key is for (RFC 8707 audiences, space-separated): those whose scopes
-- its scopes belong to; empty for a key whose scopes belong to no registered resource, which
-- is then for the issuer (Postern's own APIs).
ALTER TABLE api_keys ADD COLUMN audience TEXT NOT NULL DEFAULT '';
