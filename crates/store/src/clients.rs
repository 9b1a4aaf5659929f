//! OAuth client registrations.

use crate::{ClientId, Result, Store, StoreError, json_list, sql, to_json_list};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType, RedirectUri};
use postern_core::scope::Scope;
use postern_core::secret::TokenHash;
use postern_core::signing::Algorithm;

/// Per-client protocol choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPolicy {
    /// Authorization requests without `state` are refused.
    pub require_state: bool,
    /// The algorithm of this client's ID tokens (RS256 by default, OpenID Connect's default).
    pub id_token_alg: Algorithm,
    /// Issue refresh tokens to OpenID requests even without `offline_access`.
    pub always_refresh: bool,
    /// People whose email address is not verified cannot sign in to this client.
    pub require_verified_email: bool,
    /// People must have used a second factor to sign in to this client (step-up if not).
    pub require_mfa: bool,
    /// The algorithm of this client's JWT access tokens (EdDSA by default; RS256 for resource
    /// servers that verify nothing else).
    pub access_token_alg: Algorithm,
    /// Refresh responses carry a new ID token (OpenID Connect Core §12.2 makes it optional;
    /// off by default, since signing one is most of a refresh's cost).
    pub id_token_on_refresh: bool,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        Self {
            require_state: false,
            id_token_alg: Algorithm::RS256,
            always_refresh: false,
            require_verified_email: false,
            require_mfa: false,
            access_token_alg: Algorithm::EdDSA,
            id_token_on_refresh: false,
        }
    }
}

/// Who registered a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegisteredBy {
    /// An administrator (the admin CLI, the first start).
    #[default]
    Admin,
    /// The client itself, over RFC 7591 dynamic registration: never first-party, deleted once
    /// unused for long.
    Dynamic,
    /// Nobody: its id is the https URL of its client ID metadata document, read when it is used.
    Document,
}

impl RegisteredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            RegisteredBy::Admin => "admin",
            RegisteredBy::Dynamic => "dynamic",
            RegisteredBy::Document => "document",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RegisteredBy::Admin, RegisteredBy::Dynamic, RegisteredBy::Document].into_iter().find(|r| r.as_str() == s)
    }
}

/// A registered client. The secret exists only as its SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    pub secret_hash: Option<Vec<u8>>,
    pub redirect_uris: Vec<RedirectUri>,
    /// Where RP-initiated logout may send the browser back to.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub policy: ClientPolicy,
    pub grant_types: Vec<GrantType>,
    pub allowed_scopes: Vec<Scope>,
    pub first_party: bool,
    pub access_token_format: AccessTokenFormat,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The registered resources this client may ask tokens for (RFC 8707), set apart from the
    /// other settings (`Store::set_client_resources`).
    pub resources: Vec<String>,
    pub registered_by: RegisteredBy,
    /// When it last got a token (clients that registered themselves only; written in batches).
    pub last_used_at: Option<i64>,
    /// The registered resources whose introspection credentials this client is: it may
    /// introspect the tokens issued for them (`Store::set_resource_introspector`).
    pub introspects: Vec<String>,
}

/// What it takes to register a client.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: ClientId,
    pub name: String,
    pub client_type: ClientType,
    pub secret_hash: Option<TokenHash>,
    pub redirect_uris: Vec<RedirectUri>,
    /// Where RP-initiated logout may send the browser back to.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub policy: ClientPolicy,
    pub grant_types: Vec<GrantType>,
    pub allowed_scopes: Vec<Scope>,
    pub first_party: bool,
    pub access_token_format: AccessTokenFormat,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub registered_by: RegisteredBy,
}

/// The settings an update replaces (the type and the secret change by other means).
#[derive(Debug, Clone)]
pub struct ClientUpdate {
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    /// Where RP-initiated logout may send the browser back to.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub policy: ClientPolicy,
    pub grant_types: Vec<GrantType>,
    pub allowed_scopes: Vec<Scope>,
    pub first_party: bool,
    pub access_token_format: AccessTokenFormat,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
}

impl Client {
    /// The current settings, as the starting point of an update.
    pub fn settings(&self) -> ClientUpdate {
        ClientUpdate {
            name: self.name.clone(),
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            policy: self.policy,
            grant_types: self.grant_types.clone(),
            allowed_scopes: self.allowed_scopes.clone(),
            first_party: self.first_party,
            access_token_format: self.access_token_format,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: ClientId,
    name: String,
    client_type: String,
    secret_hash: Option<Vec<u8>>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    require_state: bool,
    id_token_alg: String,
    always_refresh: bool,
    require_verified_email: bool,
    require_mfa: bool,
    access_token_alg: String,
    registered_by: String,
    last_used_at: Option<i64>,
    id_token_on_refresh: bool,
    grant_types: String,
    allowed_scopes: String,
    first_party: bool,
    access_token_format: String,
    access_token_ttl: i64,
    refresh_token_ttl: i64,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Client> {
        Ok(Client {
            client_type: ClientType::parse(&r.client_type).ok_or_else(|| StoreError::Corrupt("client_type".into()))?,
            access_token_format: AccessTokenFormat::parse(&r.access_token_format)
                .ok_or_else(|| StoreError::Corrupt("access_token_format".into()))?,
            redirect_uris: json_list("redirect_uris", &r.redirect_uris)?,
            post_logout_redirect_uris: json_list("post_logout_redirect_uris", &r.post_logout_redirect_uris)?,
            policy: ClientPolicy {
                require_state: r.require_state,
                id_token_alg: Algorithm::parse(&r.id_token_alg)
                    .ok_or_else(|| StoreError::Corrupt("id_token_alg".into()))?,
                always_refresh: r.always_refresh,
                require_verified_email: r.require_verified_email,
                require_mfa: r.require_mfa,
                access_token_alg: Algorithm::parse(&r.access_token_alg)
                    .ok_or_else(|| StoreError::Corrupt("access_token_alg".into()))?,
                id_token_on_refresh: r.id_token_on_refresh,
            },
            grant_types: json_list("grant_types", &r.grant_types)?,
            allowed_scopes: json_list("allowed_scopes", &r.allowed_scopes)?,
            client_id: r.client_id,
            name: r.name,
            secret_hash: r.secret_hash,
            first_party: r.first_party,
            access_token_ttl: r.access_token_ttl,
            refresh_token_ttl: r.refresh_token_ttl,
            created_at: r.created_at,
            updated_at: r.updated_at,
            registered_by: RegisteredBy::parse(&r.registered_by)
                .ok_or_else(|| StoreError::Corrupt("registered_by".into()))?,
            last_used_at: r.last_used_at,
            resources: Vec::new(),
            introspects: Vec::new(),
        })
    }
}

impl Store {
    /// The longest access-token lifetime any client has (0 without clients).
    pub async fn longest_access_token_ttl(&self) -> Result<i64> {
        Ok(on_db!(self, p => sqlx::query_scalar(sql::CLIENT_MAX_ACCESS_TTL).fetch_one(p).await)?)
    }

    pub async fn create_client(&self, c: &NewClient, now: i64) -> Result<Client> {
        self.insert_client(sql::CLIENT_INSERT, c, now).await
    }

    /// Makes or updates the client of a metadata document (`client_id` its URL); an id taken
    /// by a client registered otherwise is `Conflict("client")`.
    pub async fn upsert_document_client(&self, c: &NewClient, now: i64) -> Result<Client> {
        let client = self.insert_client(sql::CLIENT_UPSERT_DOCUMENT, c, now).await?;
        if client.registered_by != RegisteredBy::Document {
            return Err(StoreError::Conflict("client"));
        }
        Ok(client)
    }

    async fn insert_client(&self, statement: &'static str, c: &NewClient, now: i64) -> Result<Client> {
        let secret = c.secret_hash.as_ref().map(|h| h.as_bytes().to_vec());
        on_db!(self, p => sqlx::query(statement)
            .bind(&c.client_id)
            .bind(&c.name)
            .bind(c.client_type.as_str())
            .bind(&secret)
            .bind(to_json_list(&c.redirect_uris))
            .bind(to_json_list(&c.grant_types))
            .bind(to_json_list(&c.allowed_scopes))
            .bind(c.first_party)
            .bind(c.access_token_format.as_str())
            .bind(c.access_token_ttl)
            .bind(c.refresh_token_ttl)
            .bind(now)
            .bind(now)
            .bind(to_json_list(&c.post_logout_redirect_uris))
            .bind(c.policy.require_state)
            .bind(c.policy.id_token_alg.as_str())
            .bind(c.policy.always_refresh)
            .bind(c.policy.require_verified_email)
            .bind(c.policy.require_mfa)
            .bind(c.policy.access_token_alg.as_str())
            .bind(c.registered_by.as_str())
            .bind(c.policy.id_token_on_refresh)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::conflict_as("client"))?;
        self.client_by_id(&c.client_id).await?.ok_or(StoreError::NotFound("client"))
    }

    pub async fn client_by_id(&self, client_id: &str) -> Result<Option<Client>> {
        let row: Option<ClientRow> =
            on_db!(self, p => sqlx::query_as(sql::CLIENT_BY_ID).bind(client_id).fetch_optional(p).await)?;
        let Some(mut client) = row.map(Client::try_from).transpose()? else { return Ok(None) };
        self.load_resources(&mut client).await?;
        Ok(Some(client))
    }

    /// The resources `client` may ask tokens for (for a client that registered itself, those
    /// open to such clients as well) and those it introspects.
    async fn load_resources(&self, client: &mut Client) -> Result<()> {
        let id = client.client_id.as_str();
        client.resources = self.client_resources(id).await?;
        if client.registered_by != RegisteredBy::Admin {
            for open in self.resources_open_to_self_registered().await? {
                if !client.resources.contains(&open) {
                    client.resources.push(open);
                }
            }
            client.resources.sort();
        }
        client.introspects = self.resources_introspected_by(id).await?;
        Ok(())
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>> {
        let rows: Vec<ClientRow> = on_db!(self, p => sqlx::query_as(sql::CLIENT_LIST).fetch_all(p).await)?;
        let mut clients = rows.into_iter().map(Client::try_from).collect::<Result<Vec<Client>>>()?;
        for c in &mut clients {
            self.load_resources(c).await?;
        }
        Ok(clients)
    }

    pub async fn update_client(&self, client_id: &str, u: &ClientUpdate, now: i64) -> Result<Client> {
        let done = on_db!(self, p => sqlx::query(sql::CLIENT_UPDATE)
            .bind(client_id)
            .bind(&u.name)
            .bind(to_json_list(&u.redirect_uris))
            .bind(to_json_list(&u.grant_types))
            .bind(to_json_list(&u.allowed_scopes))
            .bind(u.first_party)
            .bind(u.access_token_format.as_str())
            .bind(u.access_token_ttl)
            .bind(u.refresh_token_ttl)
            .bind(now)
            .bind(to_json_list(&u.post_logout_redirect_uris))
            .bind(u.policy.require_state)
            .bind(u.policy.id_token_alg.as_str())
            .bind(u.policy.always_refresh)
            .bind(u.policy.require_verified_email)
            .bind(u.policy.require_mfa)
            .bind(u.policy.access_token_alg.as_str())
            .bind(u.policy.id_token_on_refresh)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        if done == 0 {
            return Err(StoreError::NotFound("client"));
        }
        self.client_by_id(client_id).await?.ok_or(StoreError::NotFound("client"))
    }

    /// Replaces a confidential client's secret hash; `NotFound` for unknown or public clients.
    pub async fn set_client_secret(&self, client_id: &str, hash: &TokenHash, now: i64) -> Result<()> {
        let done = on_db!(self, p => sqlx::query(sql::CLIENT_SET_SECRET).bind(client_id).bind(hash.as_bytes()).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        if done == 0 { Err(StoreError::NotFound("confidential client")) } else { Ok(()) }
    }

    pub async fn delete_client(&self, client_id: &str) -> Result<()> {
        let done = on_db!(self, p => sqlx::query(sql::CLIENT_DELETE).bind(client_id).execute(p).await.map(|r| r.rows_affected()))?;
        if done == 0 { Err(StoreError::NotFound("client")) } else { Ok(()) }
    }
}
