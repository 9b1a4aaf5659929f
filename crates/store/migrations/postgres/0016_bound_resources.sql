-- The resources an authorization request named (RFC 8707), bound to its code, and the audience
-- a refresh-token family was first issued for: later tokens may narrow it, never widen it
-- (space-separated; empty: nothing was bound, as for rows made before this migration).
ALTER TABLE authorization_codes ADD COLUMN resource TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN audience TEXT NOT NULL DEFAULT '';
ALTER TABLE device_authorizations ADD COLUMN resource TEXT NOT NULL DEFAULT '';
