//! Entitlements: which scopes a principal may hold on an API key. A principal is a user (by
//! id) or a service account (`sa:<id>`, as a key's subject is written). Each grant records
//! who made it: `admin`, or the user who granted it to a service account they own.

use crate::{Result, Store, sql};

/// Who granted an entitlement made by an administrator.
pub const BY_ADMIN: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entitlement {
    pub principal: String,
    pub scope: String,
    pub granted_by: String,
    pub granted_at: i64,
}

impl Store {
    /// Grants `scopes` to `principal` (already held ones are left as they were).
    pub async fn grant_entitlements(&self, principal: &str, scopes: &[&str], granted_by: &str, now: i64) -> Result<()> {
        in_tx!(self, tx => {
            for scope in scopes {
                sqlx::query(sql::ENTITLEMENT_GRANT).bind(principal).bind(*scope).bind(granted_by).bind(now).execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// Takes `scopes` away from `principal`; returns how many were held.
    pub async fn revoke_entitlements(&self, principal: &str, scopes: &[&str]) -> Result<u64> {
        let removed = in_tx!(self, tx => {
            let mut removed = 0;
            for scope in scopes {
                removed += sqlx::query(sql::ENTITLEMENT_REVOKE).bind(principal).bind(*scope).execute(&mut *tx).await?.rows_affected();
            }
            removed
        });
        Ok(removed)
    }

    /// What `principal` is entitled to, by scope.
    pub async fn entitlements(&self, principal: &str) -> Result<Vec<Entitlement>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::ENTITLEMENT_LIST).bind(principal).fetch_all(p).await)?)
    }

    /// The grants a user made to their service accounts.
    pub async fn entitlements_granted_by(&self, user_id: &str) -> Result<Vec<Entitlement>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::ENTITLEMENT_GRANTED_BY).bind(user_id).fetch_all(p).await)?)
    }
}
