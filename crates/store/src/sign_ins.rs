//! Sign-ins under way: the continuation a sign-in resumes once it succeeds, kept on the server
//! under the hash of the browser's token (the target sealed by the caller, under a key only that
//! token opens). Rows live minutes; expired ones are deleted by `Store::delete_expired`.

use crate::{Result, Store, sql};
use postern_core::secret::TokenHash;

#[derive(Debug, Clone)]
pub struct NewSignIn<'a> {
    pub token_hash: TokenHash,
    /// `authorize`, `device` or `account`.
    pub continuation: &'a str,
    pub target_sealed: Option<&'a [u8]>,
    pub now: i64,
    pub expires_at: i64,
}

/// A stored sign-in, as read back.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SignInRow {
    pub continuation: String,
    pub target_sealed: Option<Vec<u8>>,
    /// Set once the password was right and a second factor is still to come.
    pub user_id: Option<crate::UserId>,
    /// What was used so far (space-separated RFC 8176 values), with `user_id`.
    pub amr: Option<String>,
}

impl Store {
    pub async fn create_sign_in(&self, s: &NewSignIn<'_>) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::SIGN_IN_INSERT)
            .bind(s.token_hash.as_bytes()).bind(s.continuation).bind(s.target_sealed).bind(s.now).bind(s.expires_at)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The live sign-in with this token hash at `now`.
    pub async fn sign_in(&self, hash: &TokenHash, now: i64) -> Result<Option<SignInRow>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::SIGN_IN_GET).bind(hash.as_bytes()).bind(now).fetch_optional(p).await)?)
    }

    /// Ends a sign-in (it succeeded); a no-op when it is already gone.
    pub async fn delete_sign_in(&self, hash: &TokenHash) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::SIGN_IN_DELETE).bind(hash.as_bytes()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// A sign-in whose first factor succeeded for `user_id` (`amr` so far), waiting for its
    /// second step under a new token: stored, and the sign-in it replaces (`previous`, if it
    /// was stored) deleted, in one transaction.
    pub async fn pause_sign_in(
        &self,
        s: &NewSignIn<'_>,
        previous: Option<&TokenHash>,
        user_id: &str,
        amr: &str,
    ) -> Result<()> {
        in_tx!(self, tx => {
            sqlx::query(sql::SIGN_IN_INSERT_PAUSED)
                .bind(s.token_hash.as_bytes()).bind(s.continuation).bind(s.target_sealed).bind(s.now).bind(s.expires_at)
                .bind(user_id).bind(amr)
                .execute(&mut *tx).await?;
            if let Some(previous) = previous {
                sqlx::query(sql::SIGN_IN_DELETE).bind(previous.as_bytes()).execute(&mut *tx).await?;
            }
        });
        Ok(())
    }
}
