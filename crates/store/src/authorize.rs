//! The authorization endpoint's state: requests waiting for sign-in or consent, remembered
//! consents, and authorization codes (single use: consumed by one conditional update).

use crate::{ClientId, Result, Store, StoreError, UserId, sql};
use postern_core::oauth::RefreshRule;
use postern_core::secret::TokenHash;

/// What a code stands for, returned once, to the request that consumes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CodeGrant {
    pub client_id: ClientId,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    pub auth_time: i64,
    pub amr: String,
    /// The resources the authorization request named (space-separated; empty: none).
    pub resource: String,
}

/// What a person allowed a client: scopes and resources, each space-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Consent {
    pub scope: String,
    pub resources: String,
}

#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub hash: TokenHash,
    pub grant: &'a CodeGrant,
    pub issued_at: i64,
    pub expires_at: i64,
}

/// What a redemption will issue, recorded on the code so that a replay can revoke it.
#[derive(Debug, Clone)]
pub struct Redemption<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    /// The S256 challenge computed from the presented verifier.
    pub code_challenge: &'a str,
    /// The `jti` of a JWT access token.
    pub access_jti: Option<&'a str>,
    /// An opaque access token to store, with its audience.
    pub opaque_access: Option<(TokenHash, &'a str)>,
    pub access_expires_at: i64,
    /// A refresh-token family to start, with its first token, if the rule says so for the
    /// code's scope.
    pub refresh: Option<crate::refresh::NewFamily>,
    pub refresh_rule: RefreshRule,
}

/// What was issued from a code that is presented again.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Issued {
    pub access_jti: Option<String>,
    pub access_token_hash: Option<Vec<u8>>,
    pub access_expires_at: Option<i64>,
    /// The refresh-token family it started, if any.
    pub grant_id: Option<String>,
}

/// How redeeming a code ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// This request won the code.
    Consumed(CodeGrant),
    /// The code was redeemed before: a replay. Holds what the first redemption issued.
    Replayed(Issued),
    /// Unknown, expired, or presented with another client, redirect URI or verifier.
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

    /// Remembers what `user_id` allowed `client_id`.
    pub async fn save_consent(&self, user_id: &UserId, client_id: &ClientId, c: &Consent, now: i64) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::CONSENT_SAVE).bind(user_id).bind(client_id).bind(&c.scope).bind(now).bind(&c.resources).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// What `user_id` allowed `client_id` so far.
    pub async fn consent(&self, user_id: &UserId, client_id: &ClientId) -> Result<Option<Consent>> {
        if let Some(readers) = &self.readers {
            return readers.one(sql::CONSENT_GET, &[&user_id.as_str(), &client_id.as_str()], |row| {
                Ok(Consent { scope: row.get(0)?, resources: row.get(1)? })
            });
        }
        Ok(on_db!(self, p => sqlx::query_as(sql::CONSENT_GET).bind(user_id).bind(client_id).fetch_optional(p).await)?)
    }

    pub async fn create_code(&self, c: &NewCode<'_>) -> Result<()> {
        let g = c.grant;
        on_db!(self, p => sqlx::query(sql::CODE_INSERT)
            .bind(c.hash.as_bytes()).bind(&g.client_id).bind(&g.user_id).bind(&g.redirect_uri).bind(&g.code_challenge)
            .bind(&g.nonce).bind(&g.scope).bind(g.auth_time).bind(&g.amr).bind(c.issued_at).bind(c.expires_at)
            .bind(&g.resource)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The resources a code was bound to (space-separated; empty: none), whether or not it is
    /// still usable; `None` for an unknown code.
    pub async fn code_resource(&self, hash: &TokenHash) -> Result<Option<String>> {
        if let Some(readers) = &self.readers {
            return readers.one(sql::CODE_RESOURCE, &[&hash.as_bytes()], |row| row.get(0));
        }
        Ok(on_db!(self, p => sqlx::query_scalar(sql::CODE_RESOURCE).bind(hash.as_bytes()).fetch_optional(p).await)?)
    }

    /// Redeems a code in one transaction: the conditional update that consumes it (of any
    /// number of concurrent callers exactly one wins, and only with the right client, redirect
    /// URI and verifier) and, for opaque access tokens, the token row.
    /// `r.refresh_rule` decides, from the code's scope, whether `r.refresh` is started.
    pub async fn redeem_code(&self, hash: &TokenHash, now: i64, r: &Redemption<'_>) -> Result<CodeOutcome> {
        let won: Option<CodeGrant> = match &self.writer {
            Some(writer) => {
                let row = crate::batch::RedemptionRow::new(hash, now, r);
                match writer.insert(crate::batch::Insert::Redemption(Box::new(row))).await {
                    Ok(crate::batch::Done::Redeemed(grant)) => Some(*grant),
                    Ok(crate::batch::Done::Written) | Err(StoreError::Conflict(_)) => None,
                    Err(e) => return Err(e),
                }
            }
            None => in_tx!(self, tx => redeem!(tx, hash.as_bytes(), now, r)),
        };
        if let Some(grant) = won {
            return Ok(CodeOutcome::Consumed(grant));
        }
        let replay: Option<Issued> =
            on_db!(self, p => sqlx::query_as(sql::CODE_REPLAYED).bind(hash.as_bytes()).fetch_optional(p).await)?;
        Ok(replay.map_or(CodeOutcome::Invalid, CodeOutcome::Replayed))
    }
}
