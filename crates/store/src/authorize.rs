//! The authorization endpoint's state: requests waiting for sign-in or consent, remembered
//! consents, and authorization codes (single use: consumed by one conditional update).

use crate::{Result, Store, sql};
use postern_core::secret::TokenHash;

/// What a code stands for, returned once, to the request that consumes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CodeGrant {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub auth_time: i64,
    pub amr: String,
}

#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub hash: TokenHash,
    pub grant: &'a CodeGrant,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// How consuming a code ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// This request won the code.
    Consumed(CodeGrant),
    /// The code was used before: a replay.
    Replayed,
    /// Unknown or expired.
    Invalid,
}

impl Store {
    pub async fn save_authorization_request(
        &self,
        hash: &TokenHash,
        client_id: &str,
        params: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::AUTHZ_REQUEST_INSERT).bind(hash.as_bytes()).bind(client_id).bind(params).bind(now).bind(expires_at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn authorization_request(&self, hash: &TokenHash, now: i64) -> Result<Option<String>> {
        Ok(
            on_db!(self, p => sqlx::query_scalar(sql::AUTHZ_REQUEST_GET).bind(hash.as_bytes()).bind(now).fetch_optional(p).await)?,
        )
    }

    pub async fn delete_authorization_request(&self, hash: &TokenHash) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::AUTHZ_REQUEST_DELETE).bind(hash.as_bytes()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Remembers that `user_id` consented to `scope` (space-separated) for `client_id`.
    pub async fn save_consent(&self, user_id: &str, client_id: &str, scope: &str, now: i64) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::CONSENT_SAVE).bind(user_id).bind(client_id).bind(scope).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>> {
        Ok(
            on_db!(self, p => sqlx::query_scalar(sql::CONSENT_GET).bind(user_id).bind(client_id).fetch_optional(p).await)?,
        )
    }

    pub async fn create_code(&self, c: &NewCode<'_>) -> Result<()> {
        let g = c.grant;
        on_db!(self, p => sqlx::query(sql::CODE_INSERT)
            .bind(c.hash.as_bytes()).bind(&g.client_id).bind(&g.user_id).bind(&g.redirect_uri).bind(&g.code_challenge)
            .bind(&g.nonce).bind(&g.scope).bind(g.auth_time).bind(&g.amr).bind(c.issued_at).bind(c.expires_at)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Consumes a code: of any number of concurrent callers, exactly one gets `Consumed`.
    pub async fn consume_code(&self, hash: &TokenHash, now: i64) -> Result<CodeOutcome> {
        let won: Option<CodeGrant> = on_db!(self, p => sqlx::query_as(sql::CODE_CONSUME).bind(hash.as_bytes()).bind(now).fetch_optional(p).await)?;
        if let Some(grant) = won {
            return Ok(CodeOutcome::Consumed(grant));
        }
        let used: i64 =
            on_db!(self, p => sqlx::query_scalar(sql::CODE_WAS_CONSUMED).bind(hash.as_bytes()).fetch_one(p).await)?;
        Ok(if used > 0 {
            CodeOutcome::Replayed
        } else {
            CodeOutcome::Invalid
        })
    }
}
