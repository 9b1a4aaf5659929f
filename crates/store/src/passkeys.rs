//! Passkeys as stored: each credential with its name, its counter (inside the serialised
//! credential, updated at every use) and when it was last used; the random handle that stands
//! for a user inside their passkeys; and WebAuthn ceremonies under way, each taken (deleted)
//! by the hash of its id when it is answered, so a challenge is answered once.

use crate::{Result, Store, StoreError, sql};
use postern_core::secret::TokenHash;

/// A stored passkey.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredPasskey {
    pub id: String,
    pub user_id: String,
    /// The credential id, base64url.
    pub credential_id: String,
    pub name: String,
    /// The credential as webauthn-rs serialises it (JSON).
    pub credential: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A passkey to store.
#[derive(Debug)]
pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a str,
    pub name: &'a str,
    pub credential: &'a str,
    pub now: i64,
}

/// A ceremony to store, or one taken back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// Whose it is (`None` for a passwordless sign-in, which learns that from the answer).
    pub user_id: Option<String>,
    /// The ceremony's state as webauthn-rs serialises it (JSON).
    pub state: String,
}

impl Store {
    /// The user's passkeys, oldest first.
    pub async fn passkeys(&self, user_id: &str) -> Result<Vec<StoredPasskey>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::PASSKEYS_OF_USER).bind(user_id).fetch_all(p).await)?)
    }

    /// Stores a new passkey; `Conflict("passkey")` when its credential id is registered already.
    pub async fn add_passkey(&self, new: &NewPasskey<'_>) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::PASSKEY_INSERT)
            .bind(new.id).bind(new.user_id).bind(new.credential_id).bind(new.name).bind(new.credential).bind(new.now)
            .execute(p).await.map(drop))
        .map_err(StoreError::conflict_as("passkey"))?;
        Ok(())
    }

    /// Records a use of the user's passkey: its updated credential (counter) and the time.
    pub async fn passkey_used(&self, user_id: &str, credential_id: &str, credential: &str, now: i64) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::PASSKEY_USED).bind(user_id).bind(credential_id).bind(credential).bind(now).execute(p).await.map(drop))?;
        Ok(())
    }

    /// Deletes one of the user's passkeys; `false` when the user has none with this id.
    pub async fn remove_passkey(&self, user_id: &str, id: &str) -> Result<bool> {
        let done = on_db!(self, p => sqlx::query(sql::PASSKEY_DELETE).bind(id).bind(user_id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Deletes all the user's passkeys; returns how many there were.
    pub async fn remove_passkeys(&self, user_id: &str) -> Result<u64> {
        Ok(
            on_db!(self, p => sqlx::query(sql::PASSKEYS_DELETE_USER).bind(user_id).execute(p).await.map(|r| r.rows_affected()))?,
        )
    }

    /// The user's passkey handle, made from `fresh` the first time (two requests racing keep
    /// whichever was stored first).
    pub async fn passkey_handle(&self, user_id: &str, fresh: &str) -> Result<String> {
        on_db!(self, p => sqlx::query(sql::PASSKEY_HANDLE_INSERT).bind(user_id).bind(fresh).execute(p).await.map(drop))?;
        Ok(on_db!(self, p => sqlx::query_scalar(sql::PASSKEY_HANDLE_OF_USER).bind(user_id).fetch_one(p).await)?)
    }

    /// Whose passkey handle this is.
    pub async fn user_of_passkey_handle(&self, handle: &str) -> Result<Option<String>> {
        Ok(on_db!(self, p => sqlx::query_scalar(sql::PASSKEY_USER_OF_HANDLE).bind(handle).fetch_optional(p).await)?)
    }

    /// Stores a ceremony under the hash of its id until `expires_at`.
    pub async fn begin_ceremony(
        &self,
        id_hash: &TokenHash,
        purpose: &str,
        ceremony: &Ceremony,
        expires_at: i64,
    ) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::CEREMONY_INSERT)
            .bind(id_hash.as_bytes()).bind(purpose).bind(ceremony.user_id.as_deref()).bind(&ceremony.state).bind(expires_at)
            .execute(p).await.map(drop))?;
        Ok(())
    }

    /// Takes (deletes and returns) an unexpired ceremony of this purpose; `None` when there is
    /// none, it expired, or it was taken already.
    pub async fn take_ceremony(&self, id_hash: &TokenHash, purpose: &str, now: i64) -> Result<Option<Ceremony>> {
        let row: Option<(Option<String>, String)> = on_db!(self, p => sqlx::query_as(sql::CEREMONY_TAKE)
            .bind(id_hash.as_bytes()).bind(purpose).bind(now).fetch_optional(p).await)?;
        Ok(row.map(|(user_id, state)| Ceremony { user_id, state }))
    }
}
