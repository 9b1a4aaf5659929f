//! Signing keys and the key-encryption-key check.
//!
//! At most one active key per algorithm (a partial unique index enforces it, so nodes racing
//! on first start cannot both create one). A rotated key stops signing at once but stays
//! published in the JWKS until `publish_until`, when every token it signed has expired; the
//! clean-up task then deletes it.

use crate::{Result, Store, StoreError, sql};

/// A signing key as stored; the private part is sealed with the KEK.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub public_jwk: String,
    pub private_key_sealed: Vec<u8>,
    pub active: bool,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub publish_until: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("active", &self.active)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// A key to store: its id, algorithm, public JWK (JSON) and sealed private part.
#[derive(Clone)]
pub struct NewKey {
    pub kid: String,
    pub alg: &'static str,
    pub public_jwk: String,
    pub private_key_sealed: Vec<u8>,
}

impl Store {
    /// Records the KEK check value unless one exists; returns the stored one (which is the
    /// given one on a new database, or the first node's on a shared one).
    pub async fn init_kek_check(&self, sealed: &[u8], now: i64) -> Result<Vec<u8>> {
        on_db!(self, p => sqlx::query(sql::INSTANCE_INIT).bind(sealed).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        let stored: Option<Vec<u8>> =
            on_db!(self, p => sqlx::query_scalar(sql::INSTANCE_KEK_CHECK).fetch_optional(p).await)?;
        stored.ok_or(StoreError::NotFound("instance"))
    }

    /// Inserts `key` as the active key of its algorithm unless one is active already.
    /// Returns whether it was inserted.
    pub async fn insert_first_key(&self, key: &NewKey, now: i64) -> Result<bool> {
        let done = on_db!(self, p => sqlx::query(sql::KEY_INSERT_ACTIVE)
            .bind(&key.kid).bind(key.alg).bind(&key.public_jwk).bind(&key.private_key_sealed).bind(now)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Makes `key` the active key of its algorithm. The previous one stops signing now and
    /// stays published until `publish_until`. A concurrent rotation loses with `Conflict`.
    pub async fn rotate_key(&self, key: &NewKey, now: i64, publish_until: i64) -> Result<()> {
        in_tx!(self, tx => {
            sqlx::query(sql::KEY_RETIRE_ACTIVE).bind(key.alg).bind(now).bind(publish_until).execute(&mut *tx).await?;
            sqlx::query(sql::KEY_INSERT_ROTATED)
                .bind(&key.kid).bind(key.alg).bind(&key.public_jwk).bind(&key.private_key_sealed).bind(now)
                .execute(&mut *tx).await.map_err(StoreError::conflict_as("active signing key"))?;
        });
        Ok(())
    }

    pub async fn active_keys(&self) -> Result<Vec<StoredKey>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::KEY_ACTIVE).fetch_all(p).await)?)
    }

    /// Keys whose public part belongs in the JWKS at `now`: active ones and rotated ones whose
    /// tokens may still be valid.
    pub async fn published_keys(&self, now: i64) -> Result<Vec<StoredKey>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::KEY_PUBLISHED).bind(now).fetch_all(p).await)?)
    }

    pub async fn all_keys(&self) -> Result<Vec<StoredKey>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::KEY_ALL).fetch_all(p).await)?)
    }
}
