//! Clients that register themselves: RFC 7591 dynamic client registration and RFC 7592 reading,
//! replacing and deleting a registration with its registration access token.
//!
//! The metadata a client sends is checked as an administrator's registration is
//! (`crate::clients::register`), with tighter rules: such a client is never first-party (every
//! person sees a consent page naming it), may use `authorization_code`, `refresh_token` and the
//! device flow but never `client_credentials`, is public (`none`) or confidential as it asks,
//! may be allowed only the scopes of `registration.scopes` and of the resources open to such
//! clients, and may register `http://localhost:{port}` callbacks (RFC 8252 §8.3) as well as
//! loopback IP literals. Unknown metadata is ignored (RFC 7591 §2). Its registration access
//! token and its secret exist only as hashes. One unused for `registration.unused_client_secs`
//! is deleted by maintenance.

use crate::clients::{self, ClientError, Registration};
use crate::config::Config;
use postern_core::client::{ClientType, GrantType, InvalidRedirectUri, RedirectUri};
use postern_core::scope::Scope;
use postern_core::secret::{BearerSecret, TokenHash};
use postern_store::{Client, RegisteredBy, Store, StoreError};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// Client metadata (RFC 7591 §2), the fields Postern uses; the others are ignored.
#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub scope: Option<String>,
    /// Only in an RFC 7592 update, where it must be the client's own.
    pub client_id: Option<String>,
}

/// Why a registration was refused (RFC 7591 §3.2.2).
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{0}")]
    InvalidRedirectUri(String),
    #[error("{0}")]
    InvalidClientMetadata(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistrationError {
    /// The `error` code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            RegistrationError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            RegistrationError::InvalidClientMetadata(_) => "invalid_client_metadata",
            RegistrationError::Store(_) => "server_error",
        }
    }
}

fn invalid(message: impl Into<String>) -> RegistrationError {
    RegistrationError::InvalidClientMetadata(message.into())
}

/// A registration made now: the client, its secret (confidential clients) and its registration
/// access token, both shown this once.
#[derive(Debug)]
pub struct Registered {
    pub client: Client,
    pub secret: Option<BearerSecret>,
    pub registration_token: BearerSecret,
}

/// What the metadata asks for, checked ([`check`]); [`register`] makes the client.
#[derive(Debug)]
pub struct Settings {
    client_type: ClientType,
    name: String,
    redirect_uris: Vec<RedirectUri>,
    grant_types: Vec<GrantType>,
    scopes: Vec<Scope>,
}

/// The scopes a client that registers itself may be allowed now.
pub(crate) async fn permitted_scopes(store: &Store, config: &Config) -> Result<Vec<Scope>, StoreError> {
    let mut permitted: Vec<Scope> = config.registration.scopes.iter().filter_map(|s| Scope::parse(s).ok()).collect();
    let open = store.resources_open_to_self_registered().await?;
    for r in store.resources().await?.into_iter().filter(|r| open.contains(&r.identifier)) {
        permitted.extend(r.scopes.split_whitespace().filter_map(|s| Scope::parse(s).ok()));
    }
    permitted.dedup();
    Ok(permitted)
}

/// Checks a registration's metadata against the rules above.
pub async fn check(store: &Store, config: &Config, m: &Metadata) -> Result<Settings, RegistrationError> {
    let client_type = match m.token_endpoint_auth_method.as_deref() {
        None | Some("client_secret_basic" | "client_secret_post") => ClientType::Confidential,
        Some("none") => ClientType::Public,
        Some(other) => {
            return Err(invalid(format!(
                "token_endpoint_auth_method {other:?} is not supported (none, client_secret_basic, client_secret_post)"
            )));
        }
    };
    let mut grant_types = Vec::new();
    for g in m.grant_types.clone().unwrap_or_else(|| vec!["authorization_code".into()]) {
        let grant = GrantType::from_wire(&g).ok_or_else(|| invalid(format!("grant type {g:?} is not supported")))?;
        if grant == GrantType::ClientCredentials {
            return Err(invalid("client_credentials is for clients an administrator registers"));
        }
        if !grant_types.contains(&grant) {
            grant_types.push(grant);
        }
    }
    if grant_types.is_empty() {
        return Err(invalid("grant_types must name at least one grant type"));
    }
    let code_flow = grant_types.contains(&GrantType::AuthorizationCode);
    match m.response_types.as_deref() {
        None => {}
        Some([one]) if one == "code" && code_flow => {}
        Some([]) if !code_flow => {}
        Some(_) => return Err(invalid("response_types must be [\"code\"] with authorization_code, and nothing else")),
    }
    let mut redirect_uris = Vec::new();
    for uri in &m.redirect_uris {
        let parsed = RedirectUri::parse_native(uri)
            .map_err(|e: InvalidRedirectUri| RegistrationError::InvalidRedirectUri(e.to_string()))?;
        if !redirect_uris.contains(&parsed) {
            redirect_uris.push(parsed);
        }
    }
    if code_flow && redirect_uris.is_empty() {
        return Err(RegistrationError::InvalidRedirectUri("authorization_code needs redirect_uris".into()));
    }
    let permitted = permitted_scopes(store, config).await?;
    let scopes = match m.scope.as_deref() {
        None => permitted,
        Some(text) => {
            let requested = postern_core::oauth::parse_scope_param(text).map_err(|e| invalid(e.to_string()))?;
            if let Some(s) = requested.iter().find(|s| !permitted.iter().any(|p| postern_core::scope::covers(p, s))) {
                return Err(invalid(format!(
                    "the scope {} is not available to clients that register themselves",
                    s.as_str()
                )));
            }
            requested
        }
    };
    let default_name = redirect_uris
        .first()
        .and_then(|r| url::Url::parse(r.as_str()).ok())
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "Unnamed app".into());
    let name = m.client_name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map_or(default_name, str::to_owned);
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid("client_name must be at most 200 characters, without control characters"));
    }
    Ok(Settings { client_type, name, redirect_uris, grant_types, scopes })
}

fn client_error(e: ClientError) -> RegistrationError {
    match e {
        ClientError::Store(e) => RegistrationError::Store(e),
        other => invalid(other.to_string()),
    }
}

/// Registers a client from its checked metadata (RFC 7591 §3.1).
pub async fn register(store: &Store, config: &Config, s: Settings, now: i64) -> Result<Registered, RegistrationError> {
    let registration = Registration {
        redirect_uris: s.redirect_uris,
        grant_types: s.grant_types,
        allowed_scopes: s.scopes,
        registered_by: RegisteredBy::Dynamic,
        ..Registration::new(&s.name, s.client_type)
    };
    let made = clients::register(store, &config.tokens, registration, now).await.map_err(client_error)?;
    let registration_token = BearerSecret::generate(&mut postern_core::system::os_rng());
    store.set_client_registration_token(&made.client.client_id, &registration_token.hash()).await?;
    Ok(Registered { client: made.client, secret: made.secret, registration_token })
}

/// The client a registration access token manages (RFC 7592 §3): `None` when there is no such
/// client that registered itself, or the token is not its own (compared in constant time).
pub async fn managed(store: &Store, client_id: &str, presented: &str) -> Result<Option<Client>, StoreError> {
    let Some(stored) = store.client_registration_token(client_id).await? else { return Ok(None) };
    if !TokenHash::of(presented).matches(&stored) {
        return Ok(None);
    }
    store.client_by_id(client_id).await
}

/// Replaces a registration's metadata (RFC 7592 §2.2); its type (public or confidential)
/// cannot change.
pub async fn update(
    store: &Store,
    config: &Config,
    client: &Client,
    m: &Metadata,
    now: i64,
) -> Result<Client, RegistrationError> {
    if m.client_id.as_deref().is_some_and(|id| id != client.client_id.as_str()) {
        return Err(invalid("client_id must be this client's"));
    }
    let s = check(store, config, m).await?;
    if s.client_type != client.client_type {
        return Err(invalid("token_endpoint_auth_method cannot change between none and a client secret"));
    }
    clients::update(
        store,
        client.client_id.as_str(),
        |u| {
            u.name = s.name;
            u.redirect_uris = s.redirect_uris;
            u.grant_types = s.grant_types;
            u.allowed_scopes = s.scopes;
        },
        now,
    )
    .await
    .map_err(client_error)
}

/// The registration as RFC 7591 §3.2.1 and RFC 7592 §3 describe it; the secret and the
/// registration access token only when made now.
pub fn describe(issuer: &str, client: &Client, made: Option<&Registered>) -> serde_json::Value {
    let public = client.client_type == ClientType::Public;
    let code_flow = client.grant_types.contains(&GrantType::AuthorizationCode);
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": client.created_at,
        "client_name": client.name,
        "redirect_uris": client.redirect_uris.iter().map(RedirectUri::as_str).collect::<Vec<_>>(),
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "response_types": if code_flow { vec!["code"] } else { vec![] },
        "token_endpoint_auth_method": if public { "none" } else { "client_secret_basic" },
        "scope": client.allowed_scopes.iter().map(Scope::as_str).collect::<Vec<_>>().join(" "),
        "registration_client_uri": format!("{}/oauth/register/{}", issuer.trim_end_matches('/'), client.client_id),
    });
    if let Some(made) = made {
        body["registration_access_token"] = json!(made.registration_token.expose());
        if let Some(secret) = &made.secret {
            body["client_secret"] = json!(secret.expose());
            body["client_secret_expires_at"] = json!(0);
        }
    }
    body
}

/// When clients that registered themselves last got a token, collected in memory on the token
/// path and written by maintenance, so that using a client writes nothing on the request path.
#[derive(Debug, Default)]
pub struct ClientUses(Mutex<HashMap<postern_store::ClientId, i64>>);

/// At most this many uses are kept between writes (a flood of clients cannot grow the map).
const MAX_USES: usize = 100_000;

impl ClientUses {
    pub fn record(&self, client: &Client, now: i64) {
        if client.registered_by == RegisteredBy::Admin {
            return;
        }
        let mut uses = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if uses.len() < MAX_USES || uses.contains_key(&client.client_id) {
            uses.insert(client.client_id.clone(), now);
        }
    }

    /// Writes the collected uses; put back on failure.
    pub async fn flush(&self, store: &Store) -> Result<(), StoreError> {
        let uses: Vec<_> = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner())).into_iter().collect();
        if let Err(e) = store.touch_clients(&uses).await {
            let mut pending = self.0.lock().unwrap_or_else(|p| p.into_inner());
            for (id, at) in uses {
                pending.entry(id).or_insert(at);
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Deletes the clients that registered themselves and got no token for
/// `registration.unused_client_secs`; their ids.
pub async fn delete_unused(store: &Store, config: &Config, now: i64) -> Result<Vec<String>, StoreError> {
    let mut deleted = Vec::new();
    for id in store.unused_self_registered_clients(now - config.registration.unused_client_secs).await? {
        match store.delete_client(id.as_str()).await {
            Ok(()) | Err(StoreError::NotFound(_)) => deleted.push(id.to_string()),
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// Makes an initial access token (RFC 7591 §3) named `name`, valid `ttl_secs`, for `uses`
/// registrations (`None`: any number); the token is shown this once.
pub async fn create_token(
    store: &Store,
    name: &str,
    ttl_secs: i64,
    uses: Option<i64>,
    now: i64,
) -> Result<(postern_store::RegistrationToken, BearerSecret), RegistrationError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("a name is 1 to 100 characters, without control characters"));
    }
    if ttl_secs <= 0 || ttl_secs > 366 * 86_400 {
        return Err(invalid("a registration token lives between 1 second and a year"));
    }
    if uses.is_some_and(|n| n < 1) {
        return Err(invalid("a registration token allows at least one registration"));
    }
    let mut rng = postern_core::system::os_rng();
    let secret = BearerSecret::generate(&mut rng);
    let token = postern_store::RegistrationToken {
        id: postern_core::id::random_id(&mut rng),
        name: name.to_owned(),
        created_at: now,
        expires_at: now + ttl_secs,
        uses_left: uses,
        revoked_at: None,
    };
    store.create_registration_token(&token, &secret.hash()).await?;
    Ok((token, secret))
}
