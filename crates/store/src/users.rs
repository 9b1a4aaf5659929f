//! Accounts of people.

use crate::{Result, Store, StoreError, UserId, sql};
use postern_core::email::Email;
use postern_core::secret::TokenHash;

/// A user as stored. The password hash is a PHC string (Argon2id); `None` means no password.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub display_name: Option<String>,
    pub disabled: bool,
    pub is_admin: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    /// The columns [`User::from_sqlite`] reads, in their order in the statements it reads.
    // Read by the test that checks the statements against their mappers.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const SQLITE_COLUMNS: [&str; 9] = [
        "id",
        "email",
        "email_verified",
        "password_hash",
        "display_name",
        "disabled",
        "is_admin",
        "created_at",
        "updated_at",
    ];

    /// The row of a read in place ([`crate::readers`]), its columns from position `at` on
    /// ([`User::SQLITE_COLUMNS`]; by position, as looking a column up by name compares it
    /// with every name of the row).
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<User> {
        Ok(User {
            id: UserId::new(row.get::<_, String>(at)?),
            email: row.get(at + 1)?,
            email_verified: row.get(at + 2)?,
            password_hash: row.get(at + 3)?,
            display_name: row.get(at + 4)?,
            disabled: row.get(at + 5)?,
            is_admin: row.get(at + 6)?,
            created_at: row.get(at + 7)?,
            updated_at: row.get(at + 8)?,
        })
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("disabled", &self.disabled)
            .field("is_admin", &self.is_admin)
            .finish_non_exhaustive()
    }
}

/// What disabling a user put on the deny-list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    /// JWT ids issued in the user's refresh families, with their expiry.
    pub revoked_jwts: Vec<(String, i64)>,
    /// Every JWT issued to the user until the cut-off is refused until then.
    pub subject_refused_until: i64,
}

/// What it takes to create a user.
#[derive(Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub display_name: Option<String>,
    pub is_admin: bool,
}

impl Store {
    /// Creates a user; `Conflict("user")` when the email (case-insensitively) is taken.
    pub async fn create_user(&self, new: &NewUser, now: i64) -> Result<User> {
        on_db!(self, p => insert_user(new, now).execute(p).await.map(|r| r.rows_affected()))
            .map_err(StoreError::conflict_as("user"))?;
        self.user_by_id(&new.id).await?.ok_or(StoreError::NotFound("user"))
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        if let Some(readers) = &self.readers {
            return readers.one(sql::USER_COLUMNS_BY_ID, &[&id], |row| User::from_sqlite(row, 0));
        }
        Ok(on_db!(self, p => sqlx::query_as(sql::USER_COLUMNS_BY_ID).bind(id).fetch_optional(p).await)?)
    }

    pub async fn user_by_email(&self, email: &Email) -> Result<Option<User>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::USER_BY_EMAIL).bind(email.normalized()).fetch_optional(p).await)?)
    }

    pub async fn list_users(&self, limit: i64, offset: i64) -> Result<Vec<User>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::USER_LIST).bind(limit).bind(offset).fetch_all(p).await)?)
    }

    /// Disables a user and cuts them off everywhere, in one transaction: sessions deleted,
    /// refresh families revoked with every access token issued in them, opaque tokens deleted,
    /// codes in flight deleted, approved device requests denied, API keys (personal and of the
    /// service accounts they own) revoked, and every JWT access token issued to them until now
    /// refused (`revoked_subjects`) until the longest access-token lifetime of any client has
    /// passed. Enabling the user again brings none of it back. Returns what this node's
    /// in-memory deny-list must learn.
    pub async fn disable_user(&self, id: &str, now: i64) -> Result<Disabled> {
        let disabled = in_tx!(self, tx => {
            let done = sqlx::query(sql::USER_SET_DISABLED).bind(id).bind(true).bind(now).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound("user"));
            }
            let revoked = cut_off!(tx, id, &[] as &[u8], now);
            sqlx::query(sql::USER_ACCESS_TOKENS_DELETE).bind(id).execute(&mut *tx).await?;
            sqlx::query(sql::USER_CODES_DELETE).bind(id).execute(&mut *tx).await?;
            sqlx::query(sql::USER_DEVICE_APPROVALS_DENY).bind(id).execute(&mut *tx).await?;
            sqlx::query(sql::USER_API_KEYS_REVOKE).bind(id).bind(now).execute(&mut *tx).await?;
            let until = refuse_subject!(tx, id, now);
            Disabled { revoked_jwts: revoked, subject_refused_until: until }
        });
        Ok(disabled)
    }

    /// Deletes a user, in one transaction: cut off as [`Store::disable_user`] does (sessions,
    /// refresh families with their access tokens, every JWT issued until now refused), then
    /// their entitlements and those of the service accounts they own, the personal details in
    /// audit events about them (the events stay, under the random user id), and the user row,
    /// which takes with it everything that refers to it (sessions, consents, codes, families,
    /// device requests, API keys, owned service accounts and their keys, email links).
    pub async fn delete_user(&self, id: &str, now: i64) -> Result<Disabled> {
        let deleted = in_tx!(self, tx => {
            let revoked = cut_off!(tx, id, &[] as &[u8], now);
            let until = refuse_subject!(tx, id, now);
            sqlx::query(sql::USER_ENTITLEMENTS_DELETE).bind(id).execute(&mut *tx).await?;
            sqlx::query(sql::USER_AUDIT_ANONYMISE).bind(id).execute(&mut *tx).await?;
            let done = sqlx::query(sql::USER_DELETE).bind(id).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound("user"));
            }
            Disabled { revoked_jwts: revoked, subject_refused_until: until }
        });
        Ok(deleted)
    }

    /// Lets a disabled user sign in again. Nothing that disabling ended comes back.
    pub async fn enable_user(&self, id: &str, now: i64) -> Result<()> {
        let done = on_db!(self, p => sqlx::query(sql::USER_SET_DISABLED).bind(id).bind(false).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        if done == 0 { Err(StoreError::NotFound("user")) } else { Ok(()) }
    }

    /// Sets a new password and, in the same transaction, ends every session of the user but
    /// `keep` (the session that changed it, if any) and every refresh family, with the access
    /// tokens issued in them. Returns the JWT ids put on the deny-list, with their expiry.
    pub async fn set_user_password(
        &self,
        id: &str,
        password_hash: &str,
        keep: Option<&TokenHash>,
        now: i64,
    ) -> Result<Vec<(String, i64)>> {
        let keep: &[u8] = keep.map_or(&[], TokenHash::as_bytes);
        let revoked = in_tx!(self, tx => {
            let done = sqlx::query(sql::USER_SET_PASSWORD).bind(id).bind(password_hash).bind(now).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Err(StoreError::NotFound("user"));
            }
            cut_off!(tx, id, keep, now)
        });
        Ok(revoked)
    }

    pub async fn count_admins(&self) -> Result<i64> {
        Ok(on_db!(self, p => sqlx::query_scalar(sql::USER_COUNT_ADMINS).fetch_one(p).await)?)
    }
}

/// The insert shared by `create_user` and the first-admin setup transaction.
pub(crate) fn insert_user<'q, DB: sqlx::Database>(
    new: &'q NewUser,
    now: i64,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>
where
    String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    bool: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    sqlx::query(sql::USER_INSERT)
        .bind(new.id.as_str())
        .bind(new.email.as_str())
        .bind(new.email.normalized())
        .bind(new.email_verified)
        .bind(new.password_hash.as_deref())
        .bind(new.display_name.as_deref())
        .bind(false)
        .bind(new.is_admin)
        .bind(now)
        .bind(now)
}
