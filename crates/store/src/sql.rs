//! Every SQL statement Postern runs, in the subset SQLite and PostgreSQL share: `$n`
//! placeholders, integer unix-second timestamps bound from Rust, `RETURNING`, `ON CONFLICT`.
//! [`ALL`] lists them so a test can prepare each one against both migrated schemas.

macro_rules! statements {
    ($($(#[$meta:meta])* $name:ident = $sql:expr;)*) => {
        $($(#[$meta])* pub const $name: &str = $sql;)*
        /// Every statement above, by name.
        pub const ALL: &[(&str, &str)] = &[$((stringify!($name), $name)),*];
    };
}

statements! {
    PING = "SELECT 1";

    // --- instance
    INSTANCE_INIT = "INSERT INTO instance (id, kek_check, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING";
    INSTANCE_KEK_CHECK = "SELECT kek_check FROM instance WHERE id = 1";

    // --- users
    USER_COLUMNS_BY_ID = "SELECT id, email, email_verified, password_hash, display_name, disabled, is_admin, created_at, updated_at FROM users WHERE id = $1";
    USER_BY_EMAIL = "SELECT id, email, email_verified, password_hash, display_name, disabled, is_admin, created_at, updated_at FROM users WHERE email_normalized = $1";
    USER_LIST = "SELECT id, email, email_verified, password_hash, display_name, disabled, is_admin, created_at, updated_at FROM users ORDER BY email_normalized LIMIT $1 OFFSET $2";
    USER_INSERT = "INSERT INTO users (id, email, email_normalized, email_verified, password_hash, display_name, disabled, is_admin, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    USER_SET_DISABLED = "UPDATE users SET disabled = $2, updated_at = $3 WHERE id = $1";
    USER_SET_PASSWORD = "UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1";
    // Cutting a user off (disable, password change): what is live in their name ends.
    USER_SESSIONS_END = "DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2";
    USER_GRANTS_LIVE = "SELECT id FROM grants WHERE user_id = $1 AND revoked_at IS NULL";
    USER_ACCESS_TOKENS_DELETE = "DELETE FROM access_tokens WHERE user_id = $1";
    USER_CODES_DELETE = "DELETE FROM authorization_codes WHERE user_id = $1 AND consumed_at IS NULL";
    USER_DEVICE_APPROVALS_DENY = "UPDATE device_authorizations SET status = 'denied' WHERE user_id = $1 AND status = 'approved'";
    USER_API_KEYS_REVOKE = "UPDATE api_keys SET revoked_at = $2 WHERE revoked_at IS NULL AND (user_id = $1 OR service_account_id IN (SELECT id FROM service_accounts WHERE owner_id = $1))";
    CLIENT_MAX_ACCESS_TTL = "SELECT COALESCE(MAX(access_token_ttl), 0) FROM oauth_clients";
    SUBJECT_REVOKE = "INSERT INTO revoked_subjects (subject, revoked_at, expires_at) VALUES ($1, $2, $3) ON CONFLICT (subject, revoked_at) DO NOTHING";
    SUBJECT_REVOKED_AFTER = "SELECT subject, revoked_at, expires_at, seq FROM revoked_subjects WHERE seq > $1 AND expires_at > $2";
    USER_COUNT_ADMINS = "SELECT COUNT(*) FROM users WHERE is_admin";

    // --- OAuth clients
    CLIENT_BY_ID = "SELECT client_id, name, client_type, secret_hash, redirect_uris, grant_types, allowed_scopes, first_party, access_token_format, access_token_ttl, refresh_token_ttl, created_at, updated_at, post_logout_redirect_uris, require_state, id_token_alg, always_refresh, require_verified_email, require_mfa, access_token_alg, registered_by, last_used_at, id_token_on_refresh FROM oauth_clients WHERE client_id = $1";
    CLIENT_LIST = "SELECT client_id, name, client_type, secret_hash, redirect_uris, grant_types, allowed_scopes, first_party, access_token_format, access_token_ttl, refresh_token_ttl, created_at, updated_at, post_logout_redirect_uris, require_state, id_token_alg, always_refresh, require_verified_email, require_mfa, access_token_alg, registered_by, last_used_at, id_token_on_refresh FROM oauth_clients ORDER BY name, client_id";
    CLIENT_INSERT = "INSERT INTO oauth_clients (client_id, name, client_type, secret_hash, redirect_uris, grant_types, allowed_scopes, first_party, access_token_format, access_token_ttl, refresh_token_ttl, created_at, updated_at, post_logout_redirect_uris, require_state, id_token_alg, always_refresh, require_verified_email, require_mfa, access_token_alg, registered_by, id_token_on_refresh) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)";
    // A client whose id is its metadata document's URL: made, or brought up to date with the
    // document; never a client registered any other way.
    CLIENT_UPSERT_DOCUMENT = "INSERT INTO oauth_clients (client_id, name, client_type, secret_hash, redirect_uris, grant_types, allowed_scopes, first_party, access_token_format, access_token_ttl, refresh_token_ttl, created_at, updated_at, post_logout_redirect_uris, require_state, id_token_alg, always_refresh, require_verified_email, require_mfa, access_token_alg, registered_by, id_token_on_refresh) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, allowed_scopes = excluded.allowed_scopes, updated_at = excluded.updated_at WHERE oauth_clients.registered_by = 'document'";
    CLIENT_UPDATE = "UPDATE oauth_clients SET name = $2, redirect_uris = $3, grant_types = $4, allowed_scopes = $5, first_party = $6, access_token_format = $7, access_token_ttl = $8, refresh_token_ttl = $9, updated_at = $10, post_logout_redirect_uris = $11, require_state = $12, id_token_alg = $13, always_refresh = $14, require_verified_email = $15, require_mfa = $16, access_token_alg = $17, id_token_on_refresh = $18 WHERE client_id = $1";
    CLIENT_SET_SECRET = "UPDATE oauth_clients SET secret_hash = $2, updated_at = $3 WHERE client_id = $1 AND client_type = 'confidential'";
    CLIENT_DELETE = "DELETE FROM oauth_clients WHERE client_id = $1";

    // --- signing keys
    KEY_INSERT_ACTIVE = "INSERT INTO signing_keys (kid, alg, public_jwk, private_key_sealed, active, created_at) VALUES ($1, $2, $3, $4, TRUE, $5) ON CONFLICT DO NOTHING";
    KEY_INSERT_ROTATED = "INSERT INTO signing_keys (kid, alg, public_jwk, private_key_sealed, active, created_at) VALUES ($1, $2, $3, $4, TRUE, $5)";
    KEY_RETIRE_ACTIVE = "UPDATE signing_keys SET active = FALSE, rotated_at = $2, publish_until = $3 WHERE alg = $1 AND active";
    KEY_ACTIVE = "SELECT kid, alg, public_jwk, private_key_sealed, active, created_at, rotated_at, publish_until FROM signing_keys WHERE active ORDER BY alg";
    KEY_PUBLISHED = "SELECT kid, alg, public_jwk, private_key_sealed, active, created_at, rotated_at, publish_until FROM signing_keys WHERE active OR publish_until > $1 ORDER BY alg, created_at DESC, kid";
    KEY_ALL = "SELECT kid, alg, public_jwk, private_key_sealed, active, created_at, rotated_at, publish_until FROM signing_keys ORDER BY alg, created_at DESC, kid";

    // --- audit
    AUDIT_INSERT = "INSERT INTO audit_events (at, actor, action, target, ip, user_agent, outcome, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    AUDIT_LIST = "SELECT id, at, actor, action, target, ip, user_agent, outcome, details FROM audit_events WHERE at >= $1 AND (CAST($2 AS TEXT) IS NULL OR action = $2) ORDER BY id DESC LIMIT $3";

    // --- first-admin setup links
    SETUP_INSERT = "INSERT INTO setup_tokens (token_hash, created_at, expires_at) VALUES ($1, $2, $3)";
    SETUP_CONSUME = "UPDATE setup_tokens SET consumed_at = $2 WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > $2 RETURNING created_at";
    SETUP_IS_USABLE = "SELECT COUNT(*) FROM setup_tokens WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > $2";

    // --- access tokens
    ACCESS_TOKEN_INSERT = "INSERT INTO access_tokens (token_hash, client_id, user_id, subject, scope, audience, auth_time, issued_at, expires_at, amr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    ACCESS_TOKEN_BY_HASH = "SELECT client_id, user_id, subject, scope, audience, auth_time, issued_at, expires_at, amr FROM access_tokens WHERE token_hash = $1 AND expires_at > $2";
    ACCESS_TOKEN_DELETE = "DELETE FROM access_tokens WHERE token_hash = $1";
    ACCESS_TOKEN_REVOKE = "DELETE FROM access_tokens WHERE token_hash = $1 AND client_id = $2";
    JWT_REVOKE = "INSERT INTO revoked_jwts (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING";
    JWT_REVOKED_AFTER = "SELECT jti, expires_at, revoked_at, seq FROM revoked_jwts WHERE seq > $1 AND expires_at > $2";

    // --- sign-in sessions
    SESSION_INSERT = "INSERT INTO sessions (id_hash, user_id, auth_time, amr, created_at, last_seen_at, idle_expires_at, expires_at, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    // A session counts only while its user is active: this join is what makes a disabled
    // user signed out on every surface at once.
    SESSION_GET = "SELECT s.user_id, s.auth_time, s.amr, s.created_at, s.last_seen_at, s.idle_expires_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.idle_expires_at > $2 AND NOT u.disabled";
    SESSION_TOUCH = "UPDATE sessions SET last_seen_at = $2, idle_expires_at = $3 WHERE id_hash = $1";
    SESSION_DELETE = "DELETE FROM sessions WHERE id_hash = $1";

    // --- links sent by email
    EMAIL_LINK_INSERT = "INSERT INTO email_links (token_hash, purpose, user_id, email, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
    EMAIL_LINK_GET = "SELECT purpose, user_id, email, created_at, expires_at FROM email_links WHERE token_hash = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3";
    EMAIL_LINK_CONSUME = "UPDATE email_links SET consumed_at = $3 WHERE token_hash = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3 RETURNING purpose, user_id, email, created_at, expires_at";
    EMAIL_LINKS_SPEND = "UPDATE email_links SET consumed_at = $3 WHERE user_id = $1 AND purpose = $2 AND consumed_at IS NULL";
    // A reset proves the address is the user's: it is verified too. Only while the link's
    // address is still the user's, and never for a disabled user.
    USER_RESET_PASSWORD = "UPDATE users SET password_hash = $2, email_verified = TRUE, updated_at = $3 WHERE id = $1 AND email = $4 AND NOT disabled";
    USER_VERIFY_EMAIL = "UPDATE users SET email_verified = TRUE, updated_at = $2 WHERE id = $1 AND email = $3";

    // --- what a person has signed in and given access to
    USER_SESSIONS_LIST = "SELECT s.id_hash, s.auth_time, s.amr, s.created_at, s.last_seen_at, s.ip, s.user_agent FROM sessions s WHERE s.user_id = $1 AND s.expires_at > $2 AND s.idle_expires_at > $2 ORDER BY s.last_seen_at DESC";
    USER_SESSION_DELETE = "DELETE FROM sessions WHERE user_id = $1 AND id_hash = $2";
    USER_SESSIONS_DELETE_ALL = "DELETE FROM sessions WHERE user_id = $1";
    USER_GRANTS_BY_CLIENT = "SELECT g.client_id, g.scope, g.created_at, (SELECT MAX(r.issued_at) FROM refresh_tokens r WHERE r.grant_id = g.id) AS last_used_at FROM grants g WHERE g.user_id = $1 AND g.revoked_at IS NULL AND g.expires_at > $2";
    USER_CONSENTS = "SELECT client_id, scope, granted_at FROM consents WHERE user_id = $1";
    USER_CLIENT_GRANTS_LIVE = "SELECT id FROM grants WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL";
    USER_CLIENT_ACCESS_TOKENS_DELETE = "DELETE FROM access_tokens WHERE user_id = $1 AND client_id = $2";
    USER_CLIENT_CODE_JWTS = "SELECT access_jti, access_expires_at FROM authorization_codes WHERE user_id = $1 AND client_id = $2 AND access_jti IS NOT NULL AND access_expires_at > $3";
    USER_CLIENT_CODES_DELETE = "DELETE FROM authorization_codes WHERE user_id = $1 AND client_id = $2 AND consumed_at IS NULL";
    USER_CLIENT_CONSENT_DELETE = "DELETE FROM consents WHERE user_id = $1 AND client_id = $2";

    // --- accepting an invitation, changing an address, deleting an account
    USER_ACCEPT_INVITATION = "UPDATE users SET password_hash = $2, display_name = $3, email_verified = TRUE, updated_at = $4 WHERE id = $1 AND email = $5 AND password_hash IS NULL AND NOT disabled";
    USER_EMAIL = "SELECT email FROM users WHERE id = $1 AND NOT disabled";
    USER_SET_EMAIL = "UPDATE users SET email = $2, email_normalized = $3, email_verified = TRUE, updated_at = $4 WHERE id = $1";
    USER_ENTITLEMENTS_DELETE = "DELETE FROM entitlements WHERE principal = $1 OR principal IN (SELECT 'sa:' || id FROM service_accounts WHERE owner_id = $1)";
    USER_AUDIT_ANONYMISE = "UPDATE audit_events SET details = NULL WHERE actor = $1 OR target = $1";
    USER_DELETE = "DELETE FROM users WHERE id = $1";

    // --- second factors
    TOTP_GET = "SELECT secret_sealed, created_at, enabled_at, last_step FROM totp_factors WHERE user_id = $1";
    TOTP_BEGIN = "INSERT INTO totp_factors (user_id, secret_sealed, created_at) VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = excluded.created_at WHERE totp_factors.enabled_at IS NULL";
    TOTP_ENABLE = "UPDATE totp_factors SET enabled_at = $2, last_step = $3 WHERE user_id = $1 AND enabled_at IS NULL";
    // Accepting a step is one conditional update: two requests with the same code cannot both win.
    TOTP_USE_STEP = "UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND enabled_at IS NOT NULL AND last_step < $2";
    TOTP_DELETE = "DELETE FROM totp_factors WHERE user_id = $1";
    RECOVERY_CODES_DELETE = "DELETE FROM recovery_codes WHERE user_id = $1";
    RECOVERY_CODE_INSERT = "INSERT INTO recovery_codes (code_hash, user_id, created_at) VALUES ($1, $2, $3)";
    RECOVERY_CODE_USE = "UPDATE recovery_codes SET used_at = $3 WHERE code_hash = $1 AND user_id = $2 AND used_at IS NULL";
    RECOVERY_CODES_LEFT = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";
    // --- protected resources
    RESOURCE_INSERT = "INSERT INTO resources (identifier, name, scopes, introspector_id, created_at, updated_at, open_to_self_registered) VALUES ($1, $2, $3, $4, $5, $5, $6)";
    RESOURCE_GET = "SELECT identifier, name, scopes, introspector_id, created_at, updated_at, open_to_self_registered FROM resources WHERE identifier = $1";
    RESOURCE_LIST = "SELECT identifier, name, scopes, introspector_id, created_at, updated_at, open_to_self_registered FROM resources ORDER BY identifier";
    RESOURCE_SET_OPEN = "UPDATE resources SET open_to_self_registered = $2, updated_at = $3 WHERE identifier = $1";
    RESOURCES_OPEN = "SELECT identifier FROM resources WHERE open_to_self_registered = $1 ORDER BY identifier";
    RESOURCE_UPDATE = "UPDATE resources SET name = $2, scopes = $3, updated_at = $4 WHERE identifier = $1";
    RESOURCE_DELETE = "DELETE FROM resources WHERE identifier = $1";
    RESOURCE_SET_INTROSPECTOR = "UPDATE resources SET introspector_id = $2, updated_at = $3 WHERE identifier = $1";
    RESOURCES_INTROSPECTED_BY = "SELECT identifier FROM resources WHERE introspector_id = $1 ORDER BY identifier";
    CLIENT_RESOURCES = "SELECT resource FROM client_resources WHERE client_id = $1 ORDER BY resource";
    CLIENT_RESOURCES_DELETE = "DELETE FROM client_resources WHERE client_id = $1";
    CLIENT_RESOURCE_INSERT = "INSERT INTO client_resources (client_id, resource) VALUES ($1, $2)";

    // --- clients that register themselves
    CLIENT_SET_REGISTRATION_TOKEN = "UPDATE oauth_clients SET registration_token_hash = $2 WHERE client_id = $1";
    CLIENT_REGISTRATION_TOKEN = "SELECT registration_token_hash FROM oauth_clients WHERE client_id = $1 AND registered_by <> 'admin'";
    CLIENT_TOUCH = "UPDATE oauth_clients SET last_used_at = $2 WHERE client_id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";
    CLIENTS_UNUSED = "SELECT client_id FROM oauth_clients WHERE registered_by <> 'admin' AND COALESCE(last_used_at, created_at) < $1 ORDER BY client_id LIMIT 500";
    REGISTRATION_TOKEN_INSERT = "INSERT INTO registration_tokens (id, token_hash, name, created_at, expires_at, uses_left) VALUES ($1, $2, $3, $4, $5, $6)";
    REGISTRATION_TOKEN_LIST = "SELECT id, name, created_at, expires_at, uses_left, revoked_at FROM registration_tokens ORDER BY created_at DESC, id";
    REGISTRATION_TOKEN_REVOKE = "UPDATE registration_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    // Spending one use is one conditional update: two registrations cannot both take the last.
    REGISTRATION_TOKEN_USE = "UPDATE registration_tokens SET uses_left = uses_left - 1 WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2 AND (uses_left IS NULL OR uses_left > 0)";
    REGISTRATION_TOKENS_EXPIRED = "DELETE FROM registration_tokens WHERE expires_at < $1";

    // --- passkeys and WebAuthn ceremonies
    PASSKEYS_OF_USER = "SELECT id, user_id, credential_id, name, credential, created_at, last_used_at FROM passkeys WHERE user_id = $1 ORDER BY created_at, id";
    PASSKEY_INSERT = "INSERT INTO passkeys (id, user_id, credential_id, name, credential, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    PASSKEY_USED = "UPDATE passkeys SET credential = $3, last_used_at = $4 WHERE user_id = $1 AND credential_id = $2";
    PASSKEY_DELETE = "DELETE FROM passkeys WHERE id = $1 AND user_id = $2";
    PASSKEYS_DELETE_USER = "DELETE FROM passkeys WHERE user_id = $1";
    PASSKEY_HANDLE_OF_USER = "SELECT handle FROM passkey_handles WHERE user_id = $1";
    PASSKEY_HANDLE_INSERT = "INSERT INTO passkey_handles (user_id, handle) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING";
    PASSKEY_USER_OF_HANDLE = "SELECT user_id FROM passkey_handles WHERE handle = $1";
    CEREMONY_INSERT = "INSERT INTO webauthn_ceremonies (id_hash, purpose, user_id, state, expires_at) VALUES ($1, $2, $3, $4, $5)";
    // Taking a ceremony deletes it: a challenge answers once.
    CEREMONY_TAKE = "DELETE FROM webauthn_ceremonies WHERE id_hash = $1 AND purpose = $2 AND expires_at > $3 RETURNING user_id, state";
    SIGN_IN_INSERT_PAUSED = "INSERT INTO sign_ins (token_hash, continuation, target_sealed, created_at, expires_at, user_id, amr) VALUES ($1, $2, $3, $4, $5, $6, $7)";

    // --- sign-ins under way
    SIGN_IN_INSERT = "INSERT INTO sign_ins (token_hash, continuation, target_sealed, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
    SIGN_IN_GET = "SELECT continuation, target_sealed, user_id, amr FROM sign_ins WHERE token_hash = $1 AND expires_at > $2";
    SIGN_IN_DELETE = "DELETE FROM sign_ins WHERE token_hash = $1";

    // --- authorization requests waiting for sign-in or consent, consents, codes
    AUTHZ_REQUEST_INSERT = "INSERT INTO authorization_requests (id_hash, client_id, params, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
    AUTHZ_REQUEST_GET = "SELECT params FROM authorization_requests WHERE id_hash = $1 AND expires_at > $2";
    AUTHZ_REQUEST_DELETE = "DELETE FROM authorization_requests WHERE id_hash = $1";
    CONSENT_SAVE = "INSERT INTO consents (user_id, client_id, scope, granted_at, resources) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at, resources = excluded.resources";
    CONSENT_GET = "SELECT scope, resources FROM consents WHERE user_id = $1 AND client_id = $2";
    CODE_INSERT = "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, code_challenge, nonce, scope, auth_time, amr, issued_at, expires_at, resource) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
    CODE_RESOURCE = "SELECT resource FROM authorization_codes WHERE code_hash = $1";
    CODE_REDEEM = "UPDATE authorization_codes SET consumed_at = $2, access_jti = $3, access_token_hash = $4, access_expires_at = $5, grant_id = $9 WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 AND client_id = $6 AND (redirect_uri = $7 OR redirect_uri = '') AND code_challenge = $8 RETURNING client_id, user_id, redirect_uri, code_challenge, nonce, scope, auth_time, amr, resource";
    CODE_REPLAYED = "SELECT access_jti, access_token_hash, access_expires_at, grant_id FROM authorization_codes WHERE code_hash = $1 AND consumed_at IS NOT NULL";

    // --- refresh-token families
    GRANT_INSERT = "INSERT INTO grants (id, client_id, user_id, scope, auth_time, amr, created_at, expires_at, audience) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    GRANT_REVOKE = "UPDATE grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    GRANT_ACCESS_TOKENS = "SELECT access_jti, access_token_hash, access_expires_at, grant_id FROM refresh_tokens WHERE grant_id = $1 AND access_expires_at > $2";
    REFRESH_INSERT = "INSERT INTO refresh_tokens (token_hash, grant_id, scope, issued_at, idle_expires_at, access_jti, access_token_hash, access_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    REFRESH_GET = "SELECT r.grant_id, r.scope, r.issued_at, r.idle_expires_at, r.rotated_at, s.sealed AS successor_sealed, g.client_id, g.user_id, g.auth_time, g.amr, g.expires_at AS grant_expires_at, g.revoked_at, g.audience FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id LEFT JOIN refresh_successors s ON s.token_hash = r.token_hash WHERE r.token_hash = $1";
    // The token, its family and the family's user in one read: the refresh grant's one query.
    REFRESH_GET_WITH_USER = "SELECT r.grant_id, r.scope, r.issued_at, r.idle_expires_at, r.rotated_at, s.sealed AS successor_sealed, g.client_id, g.user_id, g.auth_time, g.amr, g.expires_at AS grant_expires_at, g.revoked_at, g.audience, u.id, u.email, u.email_verified, u.password_hash, u.display_name, u.disabled, u.is_admin, u.created_at, u.updated_at FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id LEFT JOIN refresh_successors s ON s.token_hash = r.token_hash WHERE r.token_hash = $1";
    REFRESH_ROTATE = "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL";
    REFRESH_SUCCESSOR_INSERT = "INSERT INTO refresh_successors (token_hash, sealed, rotated_at) VALUES ($1, $2, $3)";
    REFRESH_CLEAR_SUCCESSORS = "DELETE FROM refresh_successors WHERE token_hash IN (SELECT token_hash FROM refresh_successors WHERE rotated_at < $1 LIMIT $2)";
    REFRESH_COMPACT_SPENT = "UPDATE refresh_tokens SET scope = '', access_jti = NULL, access_token_hash = NULL, access_expires_at = NULL WHERE token_hash IN (SELECT token_hash FROM refresh_tokens WHERE rotated_at IS NOT NULL AND access_expires_at IS NOT NULL AND access_expires_at < $2 AND rotated_at < $1 LIMIT $3)";
    REFRESH_FAMILIES_REVOKED = "DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE revoked_at IS NOT NULL AND revoked_at < $1 LIMIT $2)";
    REFRESH_FAMILIES_IDLE = "DELETE FROM grants WHERE id IN (SELECT grant_id FROM refresh_tokens WHERE rotated_at IS NULL AND idle_expires_at < $1 AND (access_expires_at IS NULL OR access_expires_at < $1) LIMIT $2)";

    // --- device authorizations (RFC 8628)
    DEVICE_INSERT = "INSERT INTO device_authorizations (device_code_hash, user_code_hash, client_id, scope, status, created_at, expires_at, ip, user_agent, resource) VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9)";
    DEVICE_BY_DEVICE_CODE = "SELECT client_id, scope, status, created_at, expires_at, ip, user_agent, resource FROM device_authorizations WHERE device_code_hash = $1";
    DEVICE_PENDING_BY_USER_CODE = "SELECT client_id, scope, status, created_at, expires_at, ip, user_agent, resource FROM device_authorizations WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2";
    DEVICE_DECIDE = "UPDATE device_authorizations SET status = $3, user_id = $4, auth_time = $5, amr = $6, decided_at = $2 WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2";
    DEVICE_CONSUME = "UPDATE device_authorizations SET status = 'consumed' WHERE device_code_hash = $1 AND status = 'approved' AND expires_at > $2 AND client_id = $3 RETURNING user_id, scope, auth_time, amr";

    // --- scope registry, service accounts, API keys
    SCOPE_INSERT = "INSERT INTO scopes (name, description, takes_values, created_at) VALUES ($1, $2, $3, $4)";
    SCOPE_LIST = "SELECT name, description, takes_values, created_at FROM scopes ORDER BY name";
    SCOPE_DELETE = "DELETE FROM scopes WHERE name = $1";
    SERVICE_ACCOUNT_INSERT = "INSERT INTO service_accounts (id, name, description, owner_id, created_at) VALUES ($1, $2, $3, $4, $5)";
    SERVICE_ACCOUNT_LIST = "SELECT s.id, s.name, s.description, s.owner_id, u.email AS owner_email, s.created_at FROM service_accounts s JOIN users u ON u.id = s.owner_id ORDER BY s.name";
    SERVICE_ACCOUNT_BY_ID = "SELECT s.id, s.name, s.description, s.owner_id, u.email AS owner_email, s.created_at FROM service_accounts s JOIN users u ON u.id = s.owner_id WHERE s.id = $1";
    SERVICE_ACCOUNT_BY_NAME = "SELECT s.id, s.name, s.description, s.owner_id, u.email AS owner_email, s.created_at FROM service_accounts s JOIN users u ON u.id = s.owner_id WHERE s.name = $1 ORDER BY u.email";
    SERVICE_ACCOUNT_LIST_BY_OWNER = "SELECT s.id, s.name, s.description, s.owner_id, u.email AS owner_email, s.created_at FROM service_accounts s JOIN users u ON u.id = s.owner_id WHERE s.owner_id = $1 ORDER BY s.name";
    SERVICE_ACCOUNT_DELETE = "DELETE FROM service_accounts WHERE id = $1";
    API_KEY_INSERT = "INSERT INTO api_keys (id, key_hash, public_prefix, kind, user_id, service_account_id, name, scope, created_at, expires_at, audience) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    API_KEY_BY_HASH = "SELECT k.id, k.public_prefix, k.kind, k.user_id, k.service_account_id, k.name, k.scope, k.audience, k.created_at, k.expires_at, k.last_used_at, k.last_used_ip, k.revoked_at, u.email AS user_email, s.name AS service_account_name, COALESCE(u.disabled, o.disabled, FALSE) AS user_disabled FROM api_keys k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN service_accounts s ON s.id = k.service_account_id LEFT JOIN users o ON o.id = s.owner_id WHERE k.key_hash = $1";
    API_KEY_BY_ID = "SELECT k.id, k.public_prefix, k.kind, k.user_id, k.service_account_id, k.name, k.scope, k.audience, k.created_at, k.expires_at, k.last_used_at, k.last_used_ip, k.revoked_at, u.email AS user_email, s.name AS service_account_name, COALESCE(u.disabled, o.disabled, FALSE) AS user_disabled FROM api_keys k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN service_accounts s ON s.id = k.service_account_id LEFT JOIN users o ON o.id = s.owner_id WHERE k.id = $1";
    API_KEY_LIST_ALL = "SELECT k.id, k.public_prefix, k.kind, k.user_id, k.service_account_id, k.name, k.scope, k.audience, k.created_at, k.expires_at, k.last_used_at, k.last_used_ip, k.revoked_at, u.email AS user_email, s.name AS service_account_name, COALESCE(u.disabled, o.disabled, FALSE) AS user_disabled FROM api_keys k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN service_accounts s ON s.id = k.service_account_id LEFT JOIN users o ON o.id = s.owner_id ORDER BY k.created_at, k.id";
    API_KEY_LIST_BY_USER = "SELECT k.id, k.public_prefix, k.kind, k.user_id, k.service_account_id, k.name, k.scope, k.audience, k.created_at, k.expires_at, k.last_used_at, k.last_used_ip, k.revoked_at, u.email AS user_email, s.name AS service_account_name, COALESCE(u.disabled, o.disabled, FALSE) AS user_disabled FROM api_keys k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN service_accounts s ON s.id = k.service_account_id LEFT JOIN users o ON o.id = s.owner_id WHERE k.user_id = $1 ORDER BY k.created_at, k.id";
    API_KEY_LIST_BY_SERVICE_ACCOUNT = "SELECT k.id, k.public_prefix, k.kind, k.user_id, k.service_account_id, k.name, k.scope, k.audience, k.created_at, k.expires_at, k.last_used_at, k.last_used_ip, k.revoked_at, u.email AS user_email, s.name AS service_account_name, COALESCE(u.disabled, o.disabled, FALSE) AS user_disabled FROM api_keys k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN service_accounts s ON s.id = k.service_account_id LEFT JOIN users o ON o.id = s.owner_id WHERE k.service_account_id = $1 ORDER BY k.created_at, k.id";
    // A user's personal keys, then their service accounts' keys by account name; oldest first within each.
    API_KEY_LIST_HELD_BY = "SELECT k.id, k.public_prefix, k.kind, k.user_id, k.service_account_id, k.name, k.scope, k.audience, k.created_at, k.expires_at, k.last_used_at, k.last_used_ip, k.revoked_at, u.email AS user_email, s.name AS service_account_name, COALESCE(u.disabled, o.disabled, FALSE) AS user_disabled FROM api_keys k LEFT JOIN users u ON u.id = k.user_id LEFT JOIN service_accounts s ON s.id = k.service_account_id LEFT JOIN users o ON o.id = s.owner_id WHERE k.user_id = $1 OR s.owner_id = $1 ORDER BY s.name IS NOT NULL, s.name, k.created_at, k.id";
    API_KEY_REVOKE = "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
    API_KEY_REVOKE_BY_HASH = "UPDATE api_keys SET revoked_at = $2 WHERE key_hash = $1 AND revoked_at IS NULL RETURNING id, public_prefix";
    API_KEY_TOUCH = "UPDATE api_keys SET last_used_at = $2, last_used_ip = COALESCE($3, last_used_ip) WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2)";

    // --- entitlements: which scopes a user or service account (sa:<id>) may hold on keys
    ENTITLEMENT_GRANT = "INSERT INTO entitlements (principal, scope, granted_by, granted_at) VALUES ($1, $2, $3, $4) ON CONFLICT (principal, scope) DO NOTHING";
    ENTITLEMENT_REVOKE = "DELETE FROM entitlements WHERE principal = $1 AND scope = $2";
    ENTITLEMENT_LIST = "SELECT principal, scope, granted_by, granted_at FROM entitlements WHERE principal = $1 ORDER BY scope";
    ENTITLEMENT_GRANTED_BY = "SELECT principal, scope, granted_by, granted_at FROM entitlements WHERE granted_by = $1 ORDER BY principal, scope";
    ENTITLEMENT_DELETE_PRINCIPAL = "DELETE FROM entitlements WHERE principal = $1";

    // --- clean-up of expired rows, in bounded batches
    CLEANUP_SETUP_TOKENS = "DELETE FROM setup_tokens WHERE token_hash IN (SELECT token_hash FROM setup_tokens WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_ACCESS_TOKENS = "DELETE FROM access_tokens WHERE token_hash IN (SELECT token_hash FROM access_tokens WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_REVOKED_SUBJECTS = "DELETE FROM revoked_subjects WHERE seq IN (SELECT seq FROM revoked_subjects WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_REVOKED_JWTS = "DELETE FROM revoked_jwts WHERE jti IN (SELECT jti FROM revoked_jwts WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_SESSIONS = "DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE expires_at < $1 OR idle_expires_at < $1 LIMIT $2)";
    CLEANUP_EMAIL_LINKS = "DELETE FROM email_links WHERE token_hash IN (SELECT token_hash FROM email_links WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_CEREMONIES = "DELETE FROM webauthn_ceremonies WHERE id_hash IN (SELECT id_hash FROM webauthn_ceremonies WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_SIGN_INS = "DELETE FROM sign_ins WHERE token_hash IN (SELECT token_hash FROM sign_ins WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_AUTHZ_REQUESTS = "DELETE FROM authorization_requests WHERE id_hash IN (SELECT id_hash FROM authorization_requests WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_CODES = "DELETE FROM authorization_codes WHERE code_hash IN (SELECT code_hash FROM authorization_codes WHERE expires_at + 3600 < $1 LIMIT $2)";
    CLEANUP_GRANTS = "DELETE FROM grants WHERE id IN (SELECT id FROM grants WHERE expires_at < $1 LIMIT $2)";
    CLEANUP_DEVICE = "DELETE FROM device_authorizations WHERE device_code_hash IN (SELECT device_code_hash FROM device_authorizations WHERE expires_at + 3600 < $1 LIMIT $2)";
    CLEANUP_RETIRED_KEYS = "DELETE FROM signing_keys WHERE kid IN (SELECT kid FROM signing_keys WHERE NOT active AND publish_until < $1 LIMIT $2)";
}

/// PostgreSQL only, so outside [`ALL`] (readiness): assigns a transaction id, which needs a
/// writable server.
pub const PG_TXID: &str = "SELECT CAST(txid_current() AS BIGINT)";
