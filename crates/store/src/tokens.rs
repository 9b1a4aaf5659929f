//! Opaque access tokens and the deny-list of revoked JWT access tokens.

use crate::{ClientId, Result, Store, UserId, sql};
use postern_core::secret::TokenHash;

/// What an opaque access token stands for (the token itself is stored only as its hash).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccessTokenRecord {
    pub client_id: ClientId,
    pub user_id: Option<UserId>,
    pub subject: String,
    pub scope: String,
    /// Space-separated audiences.
    pub audience: String,
    pub auth_time: Option<i64>,
    pub issued_at: i64,
    pub expires_at: i64,
    /// How the person signed in (RFC 8176, space-separated); empty for a client's own token.
    pub amr: String,
}

impl AccessTokenRecord {
    /// The columns [`AccessTokenRecord::from_sqlite`] reads, in their order in the statement.
    // Read by the test that checks the statements against their mappers.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const SQLITE_COLUMNS: [&str; 9] =
        ["client_id", "user_id", "subject", "scope", "audience", "auth_time", "issued_at", "expires_at", "amr"];

    /// The row of a read in place ([`crate::readers`]), by position ([`Self::SQLITE_COLUMNS`]).
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<AccessTokenRecord> {
        Ok(AccessTokenRecord {
            client_id: ClientId::new(row.get::<_, String>(0)?),
            user_id: row.get::<_, Option<String>>(1)?.map(UserId::new),
            subject: row.get(2)?,
            scope: row.get(3)?,
            audience: row.get(4)?,
            auth_time: row.get(5)?,
            issued_at: row.get(6)?,
            expires_at: row.get(7)?,
            amr: row.get(8)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewAccessToken<'a> {
    pub hash: TokenHash,
    pub record: &'a AccessTokenRecord,
}

/// The one insert of an opaque access-token row, bound from its record: used alone and inside
/// the transactions of code redemption, device consumption and refresh rotation.
pub(crate) fn insert_access<'q, DB: sqlx::Database>(
    hash: &'q TokenHash,
    r: &'q AccessTokenRecord,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(sql::ACCESS_TOKEN_INSERT)
        .bind(hash.as_bytes())
        .bind(r.client_id.as_str())
        .bind(r.user_id.as_deref())
        .bind(r.subject.as_str())
        .bind(r.scope.as_str())
        .bind(r.audience.as_str())
        .bind(r.auth_time)
        .bind(r.issued_at)
        .bind(r.expires_at)
        .bind(r.amr.as_str())
}

impl Store {
    /// Stores an opaque token (on SQLite through the group-commit writer).
    pub async fn insert_access_token(&self, t: &NewAccessToken<'_>) -> Result<()> {
        if let Some(writer) = &self.writer {
            let row = crate::batch::AccessRow { hash: t.hash.0, record: t.record.clone() };
            return writer.insert(crate::batch::Insert::Access(row)).await.map(|_| ());
        }
        on_db!(self, p => insert_access(&t.hash, t.record).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The token's record if it exists and has not expired at `now`.
    pub async fn access_token(&self, hash: &TokenHash, now: i64) -> Result<Option<AccessTokenRecord>> {
        if let Some(readers) = &self.readers {
            return readers.one(sql::ACCESS_TOKEN_BY_HASH, &[&hash.as_bytes(), &now], AccessTokenRecord::from_sqlite);
        }
        Ok(
            on_db!(self, p => sqlx::query_as(sql::ACCESS_TOKEN_BY_HASH).bind(hash.as_bytes()).bind(now).fetch_optional(p).await)?,
        )
    }

    /// Deletes an opaque token issued to `client_id`; returns whether one was deleted.
    pub async fn revoke_access_token(&self, hash: &TokenHash, client_id: &str) -> Result<bool> {
        let n = on_db!(self, p => sqlx::query(sql::ACCESS_TOKEN_REVOKE).bind(hash.as_bytes()).bind(client_id).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Deletes an opaque token whoever it was issued to (a replayed code's token).
    pub async fn delete_access_token(&self, hash: &TokenHash) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::ACCESS_TOKEN_DELETE).bind(hash.as_bytes()).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Puts a JWT's `jti` on the deny-list until `expires_at` (its `exp`).
    pub async fn revoke_jwt(&self, jti: &str, expires_at: i64, now: i64) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::JWT_REVOKE).bind(jti).bind(expires_at).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }
}

/// A deny-list entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevokedJwt {
    pub jti: String,
    pub expires_at: i64,
    pub revoked_at: i64,
    /// The order the database gave the entry (see [`Store::revoked_jwts_after`]).
    pub seq: Option<i64>,
}

impl Store {
    /// Deny-list entries the database numbered after `seq` that have not expired at `now`, for
    /// the in-memory copy each node keeps. Numbers, not timestamps: an entry committed late
    /// (a long transaction, a node's clock behind) still has a number the reader has not
    /// passed, as long as the reader looks back far enough (see `revocations`).
    pub async fn revoked_jwts_after(&self, seq: i64, now: i64) -> Result<Vec<RevokedJwt>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::JWT_REVOKED_AFTER).bind(seq).bind(now).fetch_all(p).await)?)
    }
}

/// A user cut off: their JWT access tokens issued at or before `revoked_at` are refused until
/// `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RevokedSubject {
    pub subject: String,
    pub revoked_at: i64,
    pub expires_at: i64,
    pub seq: Option<i64>,
}

impl Store {
    /// Subjects cut off at or after `since` whose entry has not expired at `now`.
    pub async fn revoked_subjects_after(&self, seq: i64, now: i64) -> Result<Vec<RevokedSubject>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::SUBJECT_REVOKED_AFTER).bind(seq).bind(now).fetch_all(p).await)?)
    }
}
