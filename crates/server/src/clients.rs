//! Client operations: registering a client, changing its settings, rotating its secret. One
//! path for every surface that does these (the admin CLI and the tests today; dynamic client
//! registration over HTTP next), so that the consistency rules (`check_registration`), the
//! defaults and the secret's one-time display are the same everywhere.

use crate::config::TokenConfig;
use postern_core::client::{
    AccessTokenFormat, ClientType, GrantType, RedirectUri, check_registration, default_grant_types,
};
use postern_core::scope::Scope;
use postern_core::secret::BearerSecret;
use postern_store::{Client, ClientId, ClientPolicy, ClientUpdate, NewClient, RegisteredBy, Store, StoreError};

/// A client to register.
#[derive(Debug, Clone)]
pub struct Registration {
    /// `None`: a random id. Postern's own CLI client has a fixed one.
    pub client_id: Option<ClientId>,
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Empty: the defaults for the client's type and redirect URIs.
    pub grant_types: Vec<GrantType>,
    pub allowed_scopes: Vec<Scope>,
    pub first_party: bool,
    pub policy: ClientPolicy,
    pub access_token_format: AccessTokenFormat,
    /// `None`: `tokens.access_token_ttl_secs`.
    pub access_token_ttl: Option<i64>,
    /// `None`: `tokens.refresh_token_ttl_secs`.
    pub refresh_token_ttl: Option<i64>,
    pub registered_by: RegisteredBy,
}

impl Registration {
    /// A client of `client_type` named `name`, with every other setting at its default.
    pub fn new(name: &str, client_type: ClientType) -> Self {
        Registration {
            client_id: None,
            name: name.to_owned(),
            client_type,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            allowed_scopes: Vec::new(),
            first_party: false,
            policy: ClientPolicy::default(),
            access_token_format: AccessTokenFormat::Jwt,
            access_token_ttl: None,
            refresh_token_ttl: None,
            registered_by: RegisteredBy::Admin,
        }
    }
}

/// A registered client, with its secret (confidential clients), shown this once.
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub secret: Option<BearerSecret>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The settings are inconsistent (the message says how).
    #[error("{0}")]
    Invalid(String),
    #[error("no such client")]
    NotFound,
    #[error("a public client has no secret")]
    Public,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for ClientError {
    fn unavailable(&self) -> bool {
        matches!(self, ClientError::Store(e) if e.is_unavailable())
    }
}

fn check(name: &str, client_type: ClientType, u: &ClientUpdate) -> Result<(), ClientError> {
    let lifetimes = [u.access_token_ttl, u.refresh_token_ttl];
    check_registration(name, client_type, &u.redirect_uris, &u.grant_types, &lifetimes)
        .map_err(|e| ClientError::Invalid(e.to_string()))
}

/// Registers a client: defaults filled in, settings checked, a secret generated for a
/// confidential client (stored hashed).
pub async fn register(
    store: &Store,
    tokens: &TokenConfig,
    r: Registration,
    now: i64,
) -> Result<Registered, ClientError> {
    let grant_types = if r.grant_types.is_empty() {
        default_grant_types(r.client_type, !r.redirect_uris.is_empty())
    } else {
        r.grant_types
    };
    let settings = ClientUpdate {
        name: r.name.trim().to_owned(),
        redirect_uris: r.redirect_uris,
        post_logout_redirect_uris: r.post_logout_redirect_uris,
        policy: r.policy,
        grant_types,
        allowed_scopes: r.allowed_scopes,
        first_party: r.first_party,
        access_token_format: r.access_token_format,
        access_token_ttl: r.access_token_ttl.unwrap_or(tokens.access_token_ttl_secs),
        refresh_token_ttl: r.refresh_token_ttl.unwrap_or(tokens.refresh_token_ttl_secs),
    };
    check(&settings.name, r.client_type, &settings)?;
    let mut rng = postern_core::system::os_rng();
    let secret = (r.client_type == ClientType::Confidential).then(|| BearerSecret::generate(&mut rng));
    let new = NewClient {
        client_id: r.client_id.unwrap_or_else(|| ClientId::new(postern_core::id::random_id(&mut rng))),
        name: settings.name,
        client_type: r.client_type,
        secret_hash: secret.as_ref().map(BearerSecret::hash),
        redirect_uris: settings.redirect_uris,
        post_logout_redirect_uris: settings.post_logout_redirect_uris,
        policy: settings.policy,
        grant_types: settings.grant_types,
        allowed_scopes: settings.allowed_scopes,
        first_party: settings.first_party,
        access_token_format: settings.access_token_format,
        access_token_ttl: settings.access_token_ttl,
        refresh_token_ttl: settings.refresh_token_ttl,
        registered_by: r.registered_by,
    };
    let client = store.create_client(&new, now).await?;
    Ok(Registered { client, secret })
}

/// Changes a client's settings: `change` edits the current ones, which are checked as a whole
/// before they are stored.
pub async fn update(
    store: &Store,
    client_id: &str,
    change: impl FnOnce(&mut ClientUpdate),
    now: i64,
) -> Result<Client, ClientError> {
    let current = store.client_by_id(client_id).await?.ok_or(ClientError::NotFound)?;
    let mut settings = current.settings();
    change(&mut settings);
    settings.name = settings.name.trim().to_owned();
    check(&settings.name, current.client_type, &settings)?;
    Ok(store.update_client(client_id, &settings, now).await?)
}

/// A new secret for a confidential client; the old one stops working (on every node within
/// `clients.cache_secs`).
pub async fn rotate_secret(store: &Store, client_id: &str, now: i64) -> Result<(Client, BearerSecret), ClientError> {
    let client = store.client_by_id(client_id).await?.ok_or(ClientError::NotFound)?;
    if client.client_type == ClientType::Public {
        return Err(ClientError::Public);
    }
    let secret = BearerSecret::generate(&mut postern_core::system::os_rng());
    store.set_client_secret(client_id, &secret.hash(), now).await?;
    Ok((client, secret))
}
