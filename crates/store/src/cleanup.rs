//! Deletion of expired rows in bounded batches, so a large backlog never holds a long lock.

use crate::{Result, Store, sql};

impl Store {
    /// Deletes up to `batch` expired rows from each table that has them; returns how many rows
    /// went. Callers repeat while the count is non-zero.
    pub async fn delete_expired(&self, now: i64, batch: i64) -> Result<u64> {
        let mut total = 0;
        for statement in [
            sql::CLEANUP_SETUP_TOKENS,
            sql::CLEANUP_ACCESS_TOKENS,
            sql::CLEANUP_REVOKED_JWTS,
            sql::CLEANUP_REVOKED_SUBJECTS,
            sql::CLEANUP_SESSIONS,
            sql::CLEANUP_AUTHZ_REQUESTS,
            sql::CLEANUP_SIGN_INS,
            sql::CLEANUP_CEREMONIES,
            sql::CLEANUP_EMAIL_LINKS,
            sql::CLEANUP_CODES,
            sql::CLEANUP_GRANTS,
            sql::CLEANUP_DEVICE,
            sql::CLEANUP_RETIRED_KEYS,
        ] {
            // On SQLite, after this process's other writers rather than against them in the busy
            // handler, one statement at a time so that the writer waits for one at most.
            let _turn = self.write_turn().await;
            let done = on_db!(self, p => sqlx::query(statement).bind(now).bind(batch).execute(p).await.map(|r| r.rows_affected()))?;
            total += done;
        }
        Ok(total)
    }
}
