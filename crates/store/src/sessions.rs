//! Sign-in sessions. The cookie holds a random token; the database only its hash. A session ends
//! at its absolute expiry or after idling past `idle_expires_at`.

use crate::{Result, Store, UserId, sql};
use postern_core::secret::TokenHash;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    pub user_id: UserId,
    pub auth_time: i64,
    /// Authentication methods, space-separated (RFC 8176 values: `pwd`, later `otp`, `hwk`).
    pub amr: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub expires_at: i64,
}

impl Session {
    /// The columns [`Session::from_sqlite`] reads, in their order in the statement.
    // Read by the test that checks the statements against their mappers.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const SQLITE_COLUMNS: [&str; 7] =
        ["user_id", "auth_time", "amr", "created_at", "last_seen_at", "idle_expires_at", "expires_at"];

    /// The row of a read in place ([`crate::readers`]), by position ([`Self::SQLITE_COLUMNS`]).
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Session> {
        Ok(Session {
            user_id: UserId::new(row.get::<_, String>(0)?),
            auth_time: row.get(1)?,
            amr: row.get(2)?,
            created_at: row.get(3)?,
            last_seen_at: row.get(4)?,
            idle_expires_at: row.get(5)?,
            expires_at: row.get(6)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub hash: TokenHash,
    pub user_id: &'a str,
    pub amr: &'a str,
    pub now: i64,
    pub idle_secs: i64,
    pub absolute_secs: i64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl Store {
    pub async fn create_session(&self, s: &NewSession<'_>) -> Result<()> {
        let idle_expires = (s.now + s.idle_secs).min(s.now + s.absolute_secs);
        on_db!(self, p => sqlx::query(sql::SESSION_INSERT)
            .bind(s.hash.as_bytes()).bind(s.user_id).bind(s.now).bind(s.amr).bind(s.now).bind(s.now)
            .bind(idle_expires).bind(s.now + s.absolute_secs).bind(s.ip).bind(s.user_agent)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The live session with this token hash at `now`.
    pub async fn session(&self, hash: &TokenHash, now: i64) -> Result<Option<Session>> {
        if let Some(readers) = &self.readers {
            return readers.one(sql::SESSION_GET, &[&hash.as_bytes(), &now], Session::from_sqlite);
        }
        Ok(on_db!(self, p => sqlx::query_as(sql::SESSION_GET).bind(hash.as_bytes()).bind(now).fetch_optional(p).await)?)
    }

    /// Extends the idle deadline (callers do this at most once a minute per session, so that
    /// reading pages does not mean a write per request).
    pub async fn touch_session(&self, hash: &TokenHash, now: i64, idle_expires_at: i64) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::SESSION_TOUCH).bind(hash.as_bytes()).bind(now).bind(idle_expires_at).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn delete_session(&self, hash: &TokenHash) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::SESSION_DELETE).bind(hash.as_bytes()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}
