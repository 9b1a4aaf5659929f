-- The algorithm a client's JWT access tokens are signed with: EdDSA by default, RS256 for
-- resource servers that cannot verify anything else (RFC 9068 §2.1 requires RS256 support).
ALTER TABLE oauth_clients ADD COLUMN access_token_alg TEXT NOT NULL DEFAULT 'EdDSA';
