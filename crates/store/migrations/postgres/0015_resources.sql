-- Protected resources (RFC 8707 resource indicators): each identifier is the audience of the
-- tokens minted for it; the scopes it defines; the client whose credentials it introspects with.
CREATE TABLE resources (
    identifier TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL DEFAULT '',
    introspector_id TEXT REFERENCES oauth_clients (client_id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The resources each client may ask tokens for; a resource removed is removed from every client.
CREATE TABLE client_resources (
    client_id TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    resource TEXT NOT NULL REFERENCES resources (identifier) ON DELETE CASCADE,
    PRIMARY KEY (client_id, resource)
);
CREATE INDEX client_resources_resource ON client_resources (resource);
