//! The first admin: created from `admin.email` / `admin.password` on first start, or else
//! offered through a one-time setup link (single use, one hour, stored hashed) that the
//! start-up banner shows.

use crate::accounts::{self, AccountError, NewAccount};
use crate::config::Config;
use postern_core::email::Email;
use postern_core::password::Argon2Params;
use postern_core::secret::BearerSecret;
use postern_store::{NewAuditEvent, Store, StoreError};

/// How long a setup link stays valid.
pub const SETUP_LINK_TTL_SECS: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("admin.email: {0}")]
    Email(postern_core::email::InvalidEmail),
    #[error("admin.password: {0}")]
    Password(postern_core::password::PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("admin: {0}")]
    Account(AccountError),
}

/// What start-up did about the first admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAdmin {
    /// An admin exists; nothing to do.
    Exists,
    /// Created from the configuration.
    Created { email: String },
    /// No admin: this link (absolute URL) lets the first visitor create one.
    SetupLink { url: String },
}

/// Argon2id runs on the blocking pool, never on the async threads.
pub async fn hash_password(
    params: Argon2Params,
    password: String,
) -> Result<String, postern_core::password::PasswordError> {
    tokio::task::spawn_blocking(move || {
        postern_core::password::hash_password(&password, &params, &mut postern_core::system::os_rng())
    })
    .await
    .unwrap_or(Err(postern_core::password::PasswordError::Hash))
}

pub async fn first_admin(store: &Store, config: &Config, issuer: &str, now: i64) -> Result<FirstAdmin, BootstrapError> {
    if store.count_admins().await? > 0 {
        return Ok(FirstAdmin::Exists);
    }
    if let (Some(email), Some(password)) = (&config.admin.email, &config.admin.password) {
        let parsed = Email::parse(email).map_err(BootstrapError::Email)?;
        let account = NewAccount {
            email,
            password: Some(password.expose()),
            email_verified: true,
            is_admin: true,
            ..NewAccount::default()
        };
        let user = match accounts::create_user(store, config.password, &account, now).await {
            Ok(user) => user,
            // Another node created it at the same moment.
            Err(AccountError::Exists) => return Ok(FirstAdmin::Exists),
            Err(AccountError::Password(e)) => return Err(BootstrapError::Password(e)),
            Err(e) => return Err(BootstrapError::Account(e)),
        };
        let email = parsed;
        let event = NewAuditEvent {
            actor: "system",
            action: "admin.bootstrap",
            target: Some(&user.id),
            outcome: "success",
            details: Some(serde_json::json!({ "email": email.as_str() })),
            ..Default::default()
        };
        store.record_audit(&event, now).await?;
        return Ok(FirstAdmin::Created { email: email.as_str().to_owned() });
    }
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    store.create_setup_token(&token.hash(), now, now + SETUP_LINK_TTL_SECS).await?;
    Ok(FirstAdmin::SetupLink { url: format!("{issuer}/setup?token={}", token.expose()) })
}

/// The client id of Postern's own command-line tool (`postern login`).
pub const CLI_CLIENT_ID: &str = "postern-cli";

/// Registers the first-party public client `postern-cli` if it does not exist yet: the device
/// and authorization-code grants (RFC 8252 loopback redirects, any port), rotating refresh
/// tokens, no consent screen. So `postern login --issuer …` works against a fresh server.
/// Returns whether it was created now. An admin may change or delete it like any client;
/// a deleted one comes back at the next start.
pub async fn cli_client(store: &Store, tokens: &crate::config::TokenConfig, now: i64) -> Result<bool, StoreError> {
    use crate::clients::{self, ClientError, Registration};
    use postern_core::client::{ClientType, GrantType, RedirectUri};
    if store.client_by_id(CLI_CLIENT_ID).await?.is_some() {
        return Ok(false);
    }
    // Constants, checked by the start-up test: nothing here can fail to parse.
    let redirect_uris = ["http://127.0.0.1/callback", "http://[::1]/callback"];
    let scopes = "openid profile email offline_access postern:keys postern:account";
    let registration = Registration {
        client_id: Some(postern_store::ClientId::new(CLI_CLIENT_ID)),
        redirect_uris: redirect_uris.iter().filter_map(|u| RedirectUri::parse(u).ok()).collect(),
        grant_types: vec![GrantType::DeviceCode, GrantType::AuthorizationCode, GrantType::RefreshToken],
        allowed_scopes: postern_core::scope::parse_list(scopes),
        first_party: true,
        access_token_ttl: Some(900),
        refresh_token_ttl: Some(30 * 86_400),
        ..Registration::new("Postern CLI", ClientType::Public)
    };
    match clients::register(store, tokens, registration, now).await {
        Ok(_) => Ok(true),
        // Another node registered it first.
        Err(ClientError::Store(StoreError::Conflict(_))) => Ok(false),
        Err(ClientError::Store(e)) => Err(e),
        Err(other) => Err(StoreError::Corrupt(format!("the built-in CLI client is not valid: {other}"))),
    }
}
