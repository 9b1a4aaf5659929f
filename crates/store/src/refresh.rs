//! Refresh-token families: one per authorization (a `grant`), one row per token. Rotation is a
//! conditional update (`rotated_at IS NULL`) and the successor's insert in one transaction, so
//! of concurrent refreshes exactly one rotates and the others find the sealed successor (kept in
//! `refresh_successors` for the grace window, a row written once and deleted whole).

use crate::{ClientId, Result, Store, UserId, sql};
use postern_core::secret::TokenHash;

/// A family to start when a code is redeemed.
#[derive(Debug, Clone)]
pub struct NewFamily {
    pub grant_id: String,
    pub token_hash: TokenHash,
    /// Absolute end of the family.
    pub expires_at: i64,
    /// End of the first token if unused.
    pub idle_expires_at: i64,
    /// The audience the family's first access token was issued for (space-separated): later
    /// tokens may narrow it, never widen it.
    pub audience: String,
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefresh<'a> {
    pub hash: TokenHash,
    pub grant_id: &'a str,
    pub scope: &'a str,
    pub issued_at: i64,
    pub idle_expires_at: i64,
    /// The access token issued with it, so that revoking the family can reach it.
    pub access_jti: Option<&'a str>,
    pub access_token_hash: Option<TokenHash>,
    pub access_expires_at: i64,
}

/// A refresh token with its family.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefreshRecord {
    pub grant_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub idle_expires_at: i64,
    pub rotated_at: Option<i64>,
    pub successor_sealed: Option<Vec<u8>>,
    pub client_id: ClientId,
    pub user_id: UserId,
    pub auth_time: i64,
    pub amr: String,
    pub grant_expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The family's audience (space-separated; empty for a family made before it was kept).
    pub audience: String,
}

/// A refresh token with its family and the family's user.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshWithUser {
    #[sqlx(flatten)]
    pub token: RefreshRecord,
    #[sqlx(flatten)]
    pub user: crate::User,
}

impl RefreshRecord {
    /// The columns [`RefreshRecord::from_sqlite`] reads, in their order in
    /// [`sql::REFRESH_GET_WITH_USER`] (the user's columns follow).
    pub(crate) const SQLITE_COLUMNS: [&str; 13] = [
        "grant_id",
        "scope",
        "issued_at",
        "idle_expires_at",
        "rotated_at",
        "successor_sealed",
        "client_id",
        "user_id",
        "auth_time",
        "amr",
        "grant_expires_at",
        "revoked_at",
        "audience",
    ];

    /// The row of a read in place ([`crate::readers`]), by position ([`Self::SQLITE_COLUMNS`]).
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<RefreshRecord> {
        Ok(RefreshRecord {
            grant_id: row.get(0)?,
            scope: row.get(1)?,
            issued_at: row.get(2)?,
            idle_expires_at: row.get(3)?,
            rotated_at: row.get(4)?,
            successor_sealed: row.get(5)?,
            client_id: ClientId::new(row.get::<_, String>(6)?),
            user_id: UserId::new(row.get::<_, String>(7)?),
            auth_time: row.get(8)?,
            amr: row.get(9)?,
            grant_expires_at: row.get(10)?,
            revoked_at: row.get(11)?,
            audience: row.get(12)?,
        })
    }

    /// Usable at `now` by its holder: family alive, token neither rotated nor expired.
    pub fn is_current(&self, now: i64) -> bool {
        self.revoked_at.is_none()
            && self.rotated_at.is_none()
            && now < self.idle_expires_at
            && now < self.grant_expires_at
    }
}

pub(crate) fn insert_refresh<'q, DB: sqlx::Database>(
    r: &'q NewRefresh<'q>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<Vec<u8>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(sql::REFRESH_INSERT)
        .bind(r.hash.as_bytes())
        .bind(r.grant_id)
        .bind(r.scope)
        .bind(r.issued_at)
        .bind(r.idle_expires_at)
        .bind(r.access_jti)
        .bind(r.access_token_hash.map(|h| h.as_bytes().to_vec()))
        .bind(r.access_expires_at)
}

impl Store {
    pub async fn refresh_token(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::REFRESH_GET).bind(hash.as_bytes()).fetch_optional(p).await)?)
    }

    /// The token with its family and user, in one query (the refresh grant's read).
    pub async fn refresh_token_with_user(&self, hash: &TokenHash) -> Result<Option<RefreshWithUser>> {
        if let Some(readers) = &self.readers {
            return readers.one(sql::REFRESH_GET_WITH_USER, &[&hash.as_bytes()], |row| {
                let user = crate::User::from_sqlite(row, RefreshRecord::SQLITE_COLUMNS.len())?;
                Ok(RefreshWithUser { token: RefreshRecord::from_sqlite(row)?, user })
            });
        }
        Ok(on_db!(self, p => sqlx::query_as(sql::REFRESH_GET_WITH_USER).bind(hash.as_bytes()).fetch_optional(p).await)?)
    }

    /// Rotates `old` to `new`, keeping the successor pair `sealed` on the old row. Returns
    /// `false` when another request rotated it first (nothing is written then). On SQLite
    /// through the group-commit writer ([`crate::batch`]).
    pub async fn rotate_refresh(
        &self,
        old: &TokenHash,
        now: i64,
        sealed: &[u8],
        new: &NewRefresh<'_>,
        opaque_access: Option<&crate::NewAccessToken<'_>>,
    ) -> Result<bool> {
        if let Some(writer) = &self.writer {
            let rotation = crate::batch::RotationRow {
                old: old.0,
                now,
                sealed: sealed.to_vec(),
                new: crate::batch::RefreshRow {
                    hash: new.hash.0,
                    grant_id: new.grant_id.to_owned(),
                    scope: new.scope.to_owned(),
                    issued_at: new.issued_at,
                    idle_expires_at: new.idle_expires_at,
                    access_jti: new.access_jti.map(str::to_owned),
                    access_token_hash: new.access_token_hash.map(|h| h.0),
                    access_expires_at: new.access_expires_at,
                },
                access: opaque_access.map(|t| crate::batch::AccessRow { hash: t.hash.0, record: t.record.clone() }),
            };
            return match writer.insert(crate::batch::Insert::Rotation(Box::new(rotation))).await {
                Ok(_) => Ok(true),
                Err(crate::StoreError::Conflict(_)) => Ok(false),
                Err(e) => Err(e),
            };
        }
        let won = in_tx!(self, tx => {
            let n = sqlx::query(sql::REFRESH_ROTATE).bind(old.as_bytes()).bind(now).execute(&mut *tx).await?.rows_affected();
            if n == 1 {
                sqlx::query(sql::REFRESH_SUCCESSOR_INSERT).bind(old.as_bytes()).bind(sealed).bind(now).execute(&mut *tx).await?;
                insert_refresh(new).execute(&mut *tx).await?;
                if let Some(t) = opaque_access {
                    crate::tokens::insert_access(&t.hash, t.record).execute(&mut *tx).await?;
                }
            }
            n == 1
        });
        Ok(won)
    }

    /// Revokes a whole family: the grant, and every access token issued in it that may still
    /// be valid (JWTs onto the deny-list, opaque tokens deleted). One transaction. Returns the
    /// JWT ids put on the deny-list, with their expiry.
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<Vec<(String, i64)>> {
        let revoked = in_tx!(self, tx => {
            let mut revoked = Vec::new();
            revoke_family!(tx, grant_id, now, revoked);
            revoked
        });
        Ok(revoked)
    }

    /// Trims refresh families at `now`, at most `batch` rows per kind; returns how many rows it
    /// changed or deleted (callers repeat while it is non-zero):
    /// - a rotated token's sealed successor pair goes when its grace window (`grace` seconds)
    ///   ends;
    /// - once the access token issued with it has expired too, only what reuse detection needs
    ///   stays: the hash, the family and the times;
    /// - a family that ended, revoked or with its live token idle past its end, is deleted with
    ///   its tokens a minute later ([`FAMILY_SETTLE_SECS`]), so that a request that read it just
    ///   before still finds it. Families past their absolute end go with the other expired rows.
    pub async fn trim_refresh(&self, now: i64, grace: i64, batch: i64) -> Result<u64> {
        let (rotated_before, ended_before) = (now - grace, now - FAMILY_SETTLE_SECS);
        let mut changed = 0;
        let steps: [(&str, &[i64]); 4] = [
            (sql::REFRESH_CLEAR_SUCCESSORS, &[rotated_before, batch]),
            (sql::REFRESH_COMPACT_SPENT, &[rotated_before, now, batch]),
            (sql::REFRESH_FAMILIES_REVOKED, &[ended_before, batch]),
            (sql::REFRESH_FAMILIES_IDLE, &[ended_before, batch]),
        ];
        for (statement, binds) in steps {
            // One statement per write turn (SQLite), so that the writer waits for one at most.
            let _turn = self.write_turn().await;
            changed += on_db!(self, p => {
                let mut q = sqlx::query(statement);
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute(p).await.map(|r| r.rows_affected())
            })?;
        }
        Ok(changed)
    }
}

/// How long an ended family is kept before [`Store::trim_refresh`] deletes it.
pub const FAMILY_SETTLE_SECS: i64 = 60;
