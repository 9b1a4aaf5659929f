-- Sign-ins under way: what a sign-in continues with once it succeeds (an authorization request,
-- a device confirmation, the account page), kept on the server instead of guessed from the
-- shape of a URL parameter. The browser holds a random token; this table holds its hash, and
-- the continuation's target (a request handle or a user code) sealed under a key derived from
-- that token, so a copy of the database reveals neither.

CREATE TABLE sign_ins (
    token_hash BYTEA PRIMARY KEY,
    continuation TEXT NOT NULL CHECK (continuation IN ('authorize', 'device', 'account')),
    target_sealed BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sign_ins_expires ON sign_ins (expires_at);
