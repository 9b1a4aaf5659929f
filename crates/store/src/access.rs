//! What a person has signed in and given access to: their browser sessions, and the clients
//! holding a refresh-token family or a remembered consent for them. Both lists are scoped to
//! one user, and so is every deletion: nobody ends another person's session or access.

use crate::{ClientId, Result, Store, UserId, sql};
use postern_core::secret::TokenHash;

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionEntry {
    /// The stored hash of the session's token (never shown as is; see the server's handles).
    pub id_hash: Vec<u8>,
    pub auth_time: i64,
    pub amr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// A live refresh-token family of the user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GrantEntry {
    pub client_id: ClientId,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A remembered consent of the user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsentEntry {
    pub client_id: ClientId,
    pub scope: String,
    pub granted_at: i64,
}

impl Store {
    /// The user's live sessions, most recently active first.
    pub async fn user_sessions(&self, user_id: &str, now: i64) -> Result<Vec<SessionEntry>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::USER_SESSIONS_LIST).bind(user_id).bind(now).fetch_all(p).await)?)
    }

    /// Ends one of the user's sessions; `false` when it was not theirs or is gone.
    pub async fn end_user_session(&self, user_id: &str, id_hash: &[u8]) -> Result<bool> {
        let done = on_db!(self, p => sqlx::query(sql::USER_SESSION_DELETE).bind(user_id).bind(id_hash).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Ends every session of the user but `keep` (none: all of them); returns how many ended.
    pub async fn end_user_sessions(&self, user_id: &str, keep: Option<&TokenHash>) -> Result<u64> {
        Ok(match keep {
            Some(keep) => {
                on_db!(self, p => sqlx::query(sql::USER_SESSIONS_END).bind(user_id).bind(keep.as_bytes()).execute(p).await.map(|r| r.rows_affected()))?
            }
            None => {
                on_db!(self, p => sqlx::query(sql::USER_SESSIONS_DELETE_ALL).bind(user_id).execute(p).await.map(|r| r.rows_affected()))?
            }
        })
    }

    /// The user's live refresh-token families.
    pub async fn user_grants(&self, user_id: &str, now: i64) -> Result<Vec<GrantEntry>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::USER_GRANTS_BY_CLIENT).bind(user_id).bind(now).fetch_all(p).await)?)
    }

    /// The user's remembered consents.
    pub async fn user_consents(&self, user_id: &str) -> Result<Vec<ConsentEntry>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::USER_CONSENTS).bind(user_id).fetch_all(p).await)?)
    }

    /// Takes back everything `client_id` holds for the user, in one transaction: every refresh
    /// family with the access tokens issued in it, the opaque access tokens, the JWT access
    /// tokens issued from codes, the codes not yet redeemed, and the remembered consent.
    /// Returns the JWT ids put on the deny-list, with their expiry.
    pub async fn revoke_client_access(
        &self,
        user_id: &UserId,
        client_id: &str,
        now: i64,
    ) -> Result<Vec<(String, i64)>> {
        let revoked = in_tx!(self, tx => {
            let grants: Vec<String> = sqlx::query_scalar(sql::USER_CLIENT_GRANTS_LIVE).bind(user_id.as_str()).bind(client_id).fetch_all(&mut *tx).await?;
            let mut revoked: Vec<(String, i64)> = Vec::new();
            for grant in &grants {
                revoke_family!(tx, grant, now, revoked);
            }
            let from_codes: Vec<(String, i64)> = sqlx::query_as(sql::USER_CLIENT_CODE_JWTS).bind(user_id.as_str()).bind(client_id).bind(now).fetch_all(&mut *tx).await?;
            for (jti, exp) in from_codes {
                sqlx::query(sql::JWT_REVOKE).bind(&jti).bind(exp).bind(now).execute(&mut *tx).await?;
                revoked.push((jti, exp));
            }
            sqlx::query(sql::USER_CLIENT_ACCESS_TOKENS_DELETE).bind(user_id.as_str()).bind(client_id).execute(&mut *tx).await?;
            sqlx::query(sql::USER_CLIENT_CODES_DELETE).bind(user_id.as_str()).bind(client_id).execute(&mut *tx).await?;
            sqlx::query(sql::USER_CLIENT_CONSENT_DELETE).bind(user_id.as_str()).bind(client_id).execute(&mut *tx).await?;
            revoked
        });
        Ok(revoked)
    }
}
