//! The one-time link that lets the first visitor create the first admin account.

use crate::users::{NewUser, insert_user};
use crate::{Result, Store, StoreError, sql};
use postern_core::secret::TokenHash;

/// How completing a setup link ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupOutcome {
    Created,
    /// Unknown, expired or already used link, or an admin exists already.
    Refused,
}

impl Store {
    pub async fn create_setup_token(&self, hash: &TokenHash, now: i64, expires_at: i64) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::SETUP_INSERT).bind(hash.as_bytes()).bind(now).bind(expires_at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Whether a link can still be used (to decide which page to show; not a consumption).
    pub async fn setup_token_usable(&self, hash: &TokenHash, now: i64) -> Result<bool> {
        let n: i64 = on_db!(self, p => sqlx::query_scalar(sql::SETUP_IS_USABLE).bind(hash.as_bytes()).bind(now).fetch_one(p).await)?;
        Ok(n > 0)
    }

    /// Consumes the link and creates the admin in one transaction: the link is spent by one
    /// conditional update (so only one visitor wins), and nothing is created if an admin
    /// already exists.
    pub async fn complete_setup(&self, hash: &TokenHash, admin: &NewUser, now: i64) -> Result<SetupOutcome> {
        let outcome = in_tx!(self, tx => {
            let won: Option<i64> = sqlx::query_scalar(sql::SETUP_CONSUME).bind(hash.as_bytes()).bind(now).fetch_optional(&mut *tx).await?;
            let admins: i64 = sqlx::query_scalar(sql::USER_COUNT_ADMINS).fetch_one(&mut *tx).await?;
            if won.is_none() || admins > 0 {
                return Ok(SetupOutcome::Refused);
            }
            insert_user(admin, now).execute(&mut *tx).await.map_err(StoreError::conflict_as("user"))?;
            SetupOutcome::Created
        });
        Ok(outcome)
    }
}
