//! Second factors as stored: a TOTP secret per user (sealed by the caller with the KEK; enabled
//! only after a correct first code; the last accepted step, so no code is accepted twice) and
//! recovery codes (hashes only, each used once).

use crate::{Result, Store, sql};
use postern_core::secret::TokenHash;

/// A user's TOTP factor.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TotpFactor {
    pub secret_sealed: Vec<u8>,
    pub created_at: i64,
    /// `None` while being set up.
    pub enabled_at: Option<i64>,
    pub last_step: i64,
}

impl Store {
    pub async fn totp_factor(&self, user_id: &str) -> Result<Option<TotpFactor>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::TOTP_GET).bind(user_id).fetch_optional(p).await)?)
    }

    /// Starts (or restarts) setting up TOTP with a new sealed secret; `false` when TOTP is
    /// enabled already (turn it off first).
    pub async fn begin_totp(&self, user_id: &str, secret_sealed: &[u8], now: i64) -> Result<bool> {
        let done = on_db!(self, p => sqlx::query(sql::TOTP_BEGIN).bind(user_id).bind(secret_sealed).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Enables the factor being set up, its first code's step accepted, and replaces the
    /// user's recovery codes with these hashes, in one transaction; `false` when there was
    /// nothing being set up.
    pub async fn enable_totp(&self, user_id: &str, step: i64, recovery: &[TokenHash], now: i64) -> Result<bool> {
        let enabled = in_tx!(self, tx => {
            let done = sqlx::query(sql::TOTP_ENABLE).bind(user_id).bind(now).bind(step).execute(&mut *tx).await?.rows_affected();
            if done == 0 {
                return Ok(false);
            }
            replace_codes!(tx, user_id, recovery, now);
            true
        });
        Ok(enabled)
    }

    /// Accepts `step` for the user's enabled factor if it is later than the last accepted one;
    /// `false` otherwise (a replayed code, or no factor).
    pub async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool> {
        let done = on_db!(self, p => sqlx::query(sql::TOTP_USE_STEP).bind(user_id).bind(step).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// Turns TOTP off and deletes the recovery codes.
    pub async fn remove_totp(&self, user_id: &str) -> Result<()> {
        in_tx!(self, tx => {
            sqlx::query(sql::TOTP_DELETE).bind(user_id).execute(&mut *tx).await?;
            sqlx::query(sql::RECOVERY_CODES_DELETE).bind(user_id).execute(&mut *tx).await?;
        });
        Ok(())
    }

    /// Replaces the user's recovery codes (the old ones stop working).
    pub async fn replace_recovery_codes(&self, user_id: &str, recovery: &[TokenHash], now: i64) -> Result<()> {
        in_tx!(self, tx => {
            replace_codes!(tx, user_id, recovery, now);
        });
        Ok(())
    }

    /// Uses one of the user's recovery codes; `false` when it is unknown or used.
    pub async fn use_recovery_code(&self, user_id: &str, hash: &TokenHash, now: i64) -> Result<bool> {
        let done = on_db!(self, p => sqlx::query(sql::RECOVERY_CODE_USE).bind(hash.as_bytes()).bind(user_id).bind(now).execute(p).await.map(|r| r.rows_affected()))?;
        Ok(done > 0)
    }

    /// How many unused recovery codes the user has.
    pub async fn recovery_codes_left(&self, user_id: &str) -> Result<i64> {
        Ok(on_db!(self, p => sqlx::query_scalar(sql::RECOVERY_CODES_LEFT).bind(user_id).fetch_one(p).await)?)
    }
}

/// Inside a transaction `$tx`: the user's recovery codes become `$hashes`.
macro_rules! replace_codes {
    ($tx:ident, $user:expr, $hashes:expr, $now:expr) => {{
        sqlx::query(sql::RECOVERY_CODES_DELETE).bind($user).execute(&mut *$tx).await?;
        for hash in $hashes {
            sqlx::query(sql::RECOVERY_CODE_INSERT)
                .bind(hash.as_bytes())
                .bind($user)
                .bind($now)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
use replace_codes;
