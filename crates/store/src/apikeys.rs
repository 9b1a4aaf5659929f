//! The scope registry, service accounts and API keys.
//!
//! An API key is stored as the SHA-256 of the whole key and its public prefix; the key itself
//! never reaches this crate. Last-use times arrive in batches ([`Store::touch_api_keys`]), never
//! on the request path.

use crate::{Result, Store, StoreError, UserId, sql};
use postern_core::apikey::KeyKind;
use postern_core::scope::Scope;
use postern_core::secret::TokenHash;

/// A registered scope.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegisteredScope {
    pub name: String,
    /// Plain words for consent pages and key creation.
    pub description: String,
    /// Whether it is used as `name:value` (`name:*` granting every value).
    pub takes_values: bool,
    pub created_at: i64,
}

/// A non-human principal owned by a user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner_id: UserId,
    pub owner_email: String,
    pub created_at: i64,
}

/// Who a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner<'a> {
    User(&'a str),
    ServiceAccount(&'a str),
}

#[derive(Debug, Clone)]
pub struct NewApiKeyRow<'a> {
    pub id: &'a str,
    pub hash: TokenHash,
    pub public_prefix: &'a str,
    pub owner: KeyOwner<'a>,
    pub name: &'a str,
    pub scopes: &'a [Scope],
    /// The resources it is for (space-separated; empty: the issuer).
    pub audience: &'a str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// A stored key, as lists and verification see it (never the key itself or its hash).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRecord {
    pub id: String,
    pub public_prefix: String,
    pub kind: String,
    pub user_id: Option<UserId>,
    pub service_account_id: Option<String>,
    pub name: String,
    /// Space-separated.
    pub scope: String,
    /// The resources it is for (space-separated; empty: the issuer).
    pub audience: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<i64>,
    pub user_email: Option<String>,
    pub service_account_name: Option<String>,
    /// The owning user is disabled (personal keys stop working).
    pub user_disabled: bool,
}

impl ApiKeyRecord {
    pub fn kind(&self) -> KeyKind {
        if self.service_account_id.is_some() { KeyKind::ServiceAccount } else { KeyKind::Personal }
    }

    /// Whether the key may be used at `now`.
    pub fn usable_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e) && !self.user_disabled
    }

    /// The subject the key acts as: its user, or `sa:<id>` for a service account.
    pub fn subject(&self) -> String {
        match (&self.user_id, &self.service_account_id) {
            (Some(user), _) => user.to_string(),
            (None, Some(sa)) => format!("sa:{sa}"),
            (None, None) => String::new(),
        }
    }
}

/// A key's last use, as batched by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub key_id: String,
    pub at: i64,
    pub ip: Option<String>,
}

impl Store {
    pub async fn add_scope(&self, scope: &RegisteredScope) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::SCOPE_INSERT)
            .bind(&scope.name).bind(&scope.description).bind(scope.takes_values).bind(scope.created_at)
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(StoreError::conflict_as("scope"))?;
        Ok(())
    }

    pub async fn scopes(&self) -> Result<Vec<RegisteredScope>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::SCOPE_LIST).fetch_all(p).await)?)
    }

    pub async fn remove_scope(&self, name: &str) -> Result<()> {
        let n =
            on_db!(self, p => sqlx::query(sql::SCOPE_DELETE).bind(name).execute(p).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound("scope")) } else { Ok(()) }
    }

    pub async fn create_service_account(
        &self,
        id: &str,
        name: &str,
        description: &str,
        owner_id: &str,
        now: i64,
    ) -> Result<ServiceAccount> {
        on_db!(self, p => sqlx::query(sql::SERVICE_ACCOUNT_INSERT)
            .bind(id).bind(name).bind(description).bind(owner_id).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(StoreError::conflict_as("service account"))?;
        self.service_account(id).await?.ok_or(StoreError::NotFound("service account"))
    }

    pub async fn service_account(&self, id: &str) -> Result<Option<ServiceAccount>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::SERVICE_ACCOUNT_BY_ID).bind(id).fetch_optional(p).await)?)
    }

    /// Every service account called `name`, by owner: a name is unique per owner only.
    pub async fn service_accounts_named(&self, name: &str) -> Result<Vec<ServiceAccount>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::SERVICE_ACCOUNT_BY_NAME).bind(name).fetch_all(p).await)?)
    }

    pub async fn service_accounts(&self) -> Result<Vec<ServiceAccount>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::SERVICE_ACCOUNT_LIST).fetch_all(p).await)?)
    }

    /// The service accounts `owner_id` owns, by name.
    pub async fn service_accounts_owned_by(&self, owner_id: &str) -> Result<Vec<ServiceAccount>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::SERVICE_ACCOUNT_LIST_BY_OWNER).bind(owner_id).fetch_all(p).await)?)
    }

    /// Deletes a service account and, with it, its keys and entitlements.
    pub async fn delete_service_account(&self, id: &str) -> Result<()> {
        let principal = format!("sa:{id}");
        let n = in_tx!(self, tx => {
            sqlx::query(sql::ENTITLEMENT_DELETE_PRINCIPAL).bind(&principal).execute(&mut *tx).await?;
            sqlx::query(sql::SERVICE_ACCOUNT_DELETE).bind(id).execute(&mut *tx).await?.rows_affected()
        });
        if n == 0 { Err(StoreError::NotFound("service account")) } else { Ok(()) }
    }

    pub async fn create_api_key(&self, k: &NewApiKeyRow<'_>) -> Result<ApiKeyRecord> {
        let (kind, user, sa) = match k.owner {
            KeyOwner::User(u) => (KeyKind::Personal, Some(u), None),
            KeyOwner::ServiceAccount(s) => (KeyKind::ServiceAccount, None, Some(s)),
        };
        let scope = postern_core::oauth::scope_string(k.scopes);
        on_db!(self, p => sqlx::query(sql::API_KEY_INSERT)
            .bind(k.id).bind(k.hash.as_bytes()).bind(k.public_prefix).bind(kind.as_str()).bind(user).bind(sa)
            .bind(k.name).bind(&scope).bind(k.created_at).bind(k.expires_at).bind(k.audience)
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(StoreError::conflict_as("API key"))?;
        self.api_key(k.id).await?.ok_or(StoreError::NotFound("API key"))
    }

    /// The key with this hash, whatever its state (the caller checks [`ApiKeyRecord::usable_at`]).
    pub async fn api_key_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiKeyRecord>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::API_KEY_BY_HASH).bind(hash.as_bytes()).fetch_optional(p).await)?)
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::API_KEY_BY_ID).bind(id).fetch_optional(p).await)?)
    }

    /// Keys, all or one owner's, oldest first.
    pub async fn api_keys(&self, owner: Option<KeyOwner<'_>>) -> Result<Vec<ApiKeyRecord>> {
        Ok(match owner {
            None => on_db!(self, p => sqlx::query_as(sql::API_KEY_LIST_ALL).fetch_all(p).await)?,
            Some(KeyOwner::User(u)) => {
                on_db!(self, p => sqlx::query_as(sql::API_KEY_LIST_BY_USER).bind(u).fetch_all(p).await)?
            }
            Some(KeyOwner::ServiceAccount(s)) => {
                on_db!(self, p => sqlx::query_as(sql::API_KEY_LIST_BY_SERVICE_ACCOUNT).bind(s).fetch_all(p).await)?
            }
        })
    }

    /// The keys a user manages: their personal keys, then their service accounts' keys (by
    /// account name); oldest first within each.
    pub async fn api_keys_held_by(&self, user_id: &str) -> Result<Vec<ApiKeyRecord>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::API_KEY_LIST_HELD_BY).bind(user_id).fetch_all(p).await)?)
    }

    /// Revokes a key; `false` when it does not exist or was already revoked.
    pub async fn revoke_api_key(&self, id: &str, now: i64) -> Result<bool> {
        let n = on_db!(self, p => sqlx::query(sql::API_KEY_REVOKE).bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Revokes the key with this hash if it exists and is live; returns its id and prefix.
    pub async fn revoke_api_key_by_hash(&self, hash: &TokenHash, now: i64) -> Result<Option<(String, String)>> {
        Ok(
            on_db!(self, p => sqlx::query_as(sql::API_KEY_REVOKE_BY_HASH).bind(hash.as_bytes()).bind(now).fetch_optional(p).await)?,
        )
    }

    /// Records last uses, one transaction for the whole batch; an older time never overwrites a
    /// newer one.
    pub async fn touch_api_keys(&self, uses: &[KeyUse]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        in_tx!(self, tx => {
            for u in uses {
                sqlx::query(sql::API_KEY_TOUCH).bind(&u.key_id).bind(u.at).bind(&u.ip).execute(&mut *tx).await?;
            }
        });
        Ok(())
    }
}
