-- A service account's name is unique among its owner's accounts, not across the instance: a
-- global name let one user squat names and learn which names others use. The new unique index
-- leads with owner_id, so it also serves the owner lookups service_accounts_owner served.

ALTER TABLE service_accounts DROP CONSTRAINT service_accounts_name_key;
ALTER TABLE service_accounts ADD CONSTRAINT service_accounts_owner_name UNIQUE (owner_id, name);
DROP INDEX service_accounts_owner;
