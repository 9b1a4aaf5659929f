//! Clients that register themselves (RFC 7591, RFC 7592) as stored: the initial access tokens
//! that let them (only hashes), each client's registration access token (only its hash), when
//! each was last used, and which have gone unused long enough to be deleted.

use crate::{ClientId, Result, Store, StoreError, sql};
use postern_core::secret::TokenHash;

/// An initial access token, without the token itself.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RegistrationToken {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Registrations it may still make; `None`: any number until it expires.
    pub uses_left: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl Store {
    pub async fn create_registration_token(&self, t: &RegistrationToken, hash: &TokenHash) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::REGISTRATION_TOKEN_INSERT)
            .bind(&t.id).bind(hash.as_bytes()).bind(&t.name).bind(t.created_at).bind(t.expires_at).bind(t.uses_left)
            .execute(p).await.map(drop))
        .map_err(StoreError::conflict_as("registration token"))
    }

    pub async fn registration_tokens(&self) -> Result<Vec<RegistrationToken>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::REGISTRATION_TOKEN_LIST).fetch_all(p).await)?)
    }

    /// Revokes a token; `false` when there is no such live token.
    pub async fn revoke_registration_token(&self, id: &str, now: i64) -> Result<bool> {
        let done = on_db!(self, p => sqlx::query(sql::REGISTRATION_TOKEN_REVOKE).bind(id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Spends one registration of the token with this hash: `false` when it is unknown,
    /// revoked, expired or used up.
    pub async fn use_registration_token(&self, hash: &TokenHash, now: i64) -> Result<bool> {
        let done = on_db!(self, p => sqlx::query(sql::REGISTRATION_TOKEN_USE).bind(hash.as_bytes()).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Deletes the tokens that expired before `now`; how many.
    pub async fn delete_expired_registration_tokens(&self, now: i64) -> Result<u64> {
        Ok(
            on_db!(self, p => sqlx::query(sql::REGISTRATION_TOKENS_EXPIRED).bind(now).execute(p).await.map(|r| r.rows_affected()))?,
        )
    }

    /// Sets the hash of a client's registration access token (RFC 7592).
    pub async fn set_client_registration_token(&self, client_id: &str, hash: &TokenHash) -> Result<()> {
        let done = on_db!(self, p => sqlx::query(sql::CLIENT_SET_REGISTRATION_TOKEN).bind(client_id).bind(hash.as_bytes()).execute(p).await.map(|r| r.rows_affected()))?;
        if done == 0 { Err(StoreError::NotFound("client")) } else { Ok(()) }
    }

    /// The hash of the registration access token of a client that registered itself.
    pub async fn client_registration_token(&self, client_id: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<Option<Vec<u8>>> = on_db!(self, p => sqlx::query_scalar(sql::CLIENT_REGISTRATION_TOKEN).bind(client_id).fetch_optional(p).await)?;
        Ok(row.flatten())
    }

    /// Records when clients were last used (collected in memory, written in one transaction).
    pub async fn touch_clients(&self, uses: &[(ClientId, i64)]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        in_tx!(self, tx => {
            for (id, at) in uses {
                sqlx::query(sql::CLIENT_TOUCH).bind(id).bind(*at).execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// Clients that registered themselves and have not been used since `before` (at most 500
    /// at a time).
    pub async fn unused_self_registered_clients(&self, before: i64) -> Result<Vec<ClientId>> {
        Ok(on_db!(self, p => sqlx::query_scalar(sql::CLIENTS_UNUSED).bind(before).fetch_all(p).await)?)
    }
}
