//! Protected resources as stored (RFC 8707): the identifier that becomes a token's audience,
//! a name, the scopes the resource defines (space-separated), and the client whose credentials
//! it introspects with; and which resources each client may ask tokens for.

use crate::{Result, Store, StoreError, sql};

/// A registered resource.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Resource {
    pub identifier: String,
    pub name: String,
    /// Space-separated.
    pub scopes: String,
    /// The client the resource server introspects with.
    pub introspector_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Clients that registered themselves may ask tokens for it.
    pub open_to_self_registered: bool,
}

impl Store {
    /// Registers a resource; `Conflict("resource")` when the identifier is taken.
    pub async fn add_resource(&self, r: &Resource) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::RESOURCE_INSERT)
            .bind(&r.identifier).bind(&r.name).bind(&r.scopes).bind(&r.introspector_id).bind(r.created_at).bind(r.open_to_self_registered)
            .execute(p).await.map(drop))
        .map_err(StoreError::conflict_as("resource"))
    }

    pub async fn resource(&self, identifier: &str) -> Result<Option<Resource>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::RESOURCE_GET).bind(identifier).fetch_optional(p).await)?)
    }

    pub async fn resources(&self) -> Result<Vec<Resource>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::RESOURCE_LIST).fetch_all(p).await)?)
    }

    /// Renames a resource and replaces its scopes; `NotFound` when there is none.
    pub async fn update_resource(&self, identifier: &str, name: &str, scopes: &str, now: i64) -> Result<()> {
        let done = on_db!(self, p => sqlx::query(sql::RESOURCE_UPDATE).bind(identifier).bind(name).bind(scopes).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        if done == 0 { Err(StoreError::NotFound("resource")) } else { Ok(()) }
    }

    /// Removes a resource (and every client's permission to ask for it); `NotFound` when
    /// there is none.
    pub async fn remove_resource(&self, identifier: &str) -> Result<()> {
        let done = on_db!(self, p => sqlx::query(sql::RESOURCE_DELETE).bind(identifier).execute(p).await.map(|r| r.rows_affected()))?;
        if done == 0 { Err(StoreError::NotFound("resource")) } else { Ok(()) }
    }

    /// Makes `client_id` (or nobody) the client a resource server introspects with;
    /// `NotFound("resource")` when there is no such resource.
    pub async fn set_resource_introspector(&self, identifier: &str, client_id: Option<&str>, now: i64) -> Result<()> {
        let done = on_db!(self, p => sqlx::query(sql::RESOURCE_SET_INTROSPECTOR).bind(identifier).bind(client_id).bind(now).execute(p).await.map(|r| r.rows_affected()))
            .map_err(|e| match e {
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound("client"),
                other => other.into(),
            })?;
        if done == 0 { Err(StoreError::NotFound("resource")) } else { Ok(()) }
    }

    /// Whether clients that registered themselves may ask tokens for the resource;
    /// `NotFound("resource")` when there is no such resource.
    pub async fn set_resource_open(&self, identifier: &str, open: bool, now: i64) -> Result<()> {
        let done = on_db!(self, p => sqlx::query(sql::RESOURCE_SET_OPEN).bind(identifier).bind(open).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        if done == 0 { Err(StoreError::NotFound("resource")) } else { Ok(()) }
    }

    /// The resources clients that registered themselves may ask tokens for.
    pub async fn resources_open_to_self_registered(&self) -> Result<Vec<String>> {
        Ok(on_db!(self, p => sqlx::query_scalar(sql::RESOURCES_OPEN).bind(true).fetch_all(p).await)?)
    }

    /// The resources whose tokens `client_id` may introspect.
    pub async fn resources_introspected_by(&self, client_id: &str) -> Result<Vec<String>> {
        Ok(on_db!(self, p => sqlx::query_scalar(sql::RESOURCES_INTROSPECTED_BY).bind(client_id).fetch_all(p).await)?)
    }

    /// The resources a client may ask tokens for.
    pub async fn client_resources(&self, client_id: &str) -> Result<Vec<String>> {
        Ok(on_db!(self, p => sqlx::query_scalar(sql::CLIENT_RESOURCES).bind(client_id).fetch_all(p).await)?)
    }

    /// Replaces the resources a client may ask tokens for; `NotFound("resource")` when one is
    /// not registered (nothing changes then).
    pub async fn set_client_resources(&self, client_id: &str, resources: &[String]) -> Result<()> {
        in_tx!(self, tx => {
            sqlx::query(sql::CLIENT_RESOURCES_DELETE).bind(client_id).execute(&mut *tx).await?;
            for r in resources {
                let inserted = sqlx::query(sql::CLIENT_RESOURCE_INSERT).bind(client_id).bind(r).execute(&mut *tx).await;
                if let Err(sqlx::Error::Database(db)) = &inserted
                    && db.is_foreign_key_violation()
                {
                    return Err(StoreError::NotFound("resource"));
                }
                inserted?;
            }
        });
        Ok(())
    }
}
