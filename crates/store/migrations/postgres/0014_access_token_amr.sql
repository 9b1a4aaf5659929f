-- How the person behind an opaque access token signed in (RFC 8176 values, space-separated;
-- empty for a client's own token), so introspection can say what a JWT's amr and acr say.
ALTER TABLE access_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT '';
