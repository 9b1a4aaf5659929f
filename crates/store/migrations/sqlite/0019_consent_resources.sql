-- The resources (RFC 8707) a person allowed a client, beside the scopes: a request naming a
-- resource not allowed before asks again (space-separated; empty: none named).
ALTER TABLE consents ADD COLUMN resources TEXT NOT NULL DEFAULT '';
