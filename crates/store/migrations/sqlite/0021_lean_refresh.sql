-- Refresh responses carry an ID token only for clients that ask for one (OpenID Connect Core
-- §12.2 lets the response omit it); existing clients keep what they got before.
ALTER TABLE oauth_clients ADD COLUMN id_token_on_refresh BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE oauth_clients SET id_token_on_refresh = TRUE;
