-- Which scopes a principal may hold on an API key: a user (by id) or a service account
-- (sa:<id>). Registered scopes are not entitlements: an admin grants them, or the owner of a
-- service account grants it scopes within their own (granted_by: 'admin' or that user's id).

CREATE TABLE entitlements (
    principal TEXT NOT NULL,
    scope TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (principal, scope)
);
CREATE INDEX entitlements_granted_by ON entitlements (granted_by);
