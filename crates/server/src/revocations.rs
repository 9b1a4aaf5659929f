//! Revoked JWT access tokens, in memory.
//!
//! Checking a JWT must not cost a database round trip, so each node keeps the deny-list (the
//! `jti`s of revoked, not yet expired tokens) in memory: loaded at start, updated at once for
//! revocations made on this node, and synchronised from the database every
//! `tokens.revocation_sync_secs` for revocations made on other nodes or by the admin command.
//! Entries leave when their token would have expired.

use postern_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug, Default)]
pub struct DenyList {
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// jti -> exp
    jtis: HashMap<String, i64>,
    /// Rows revoked at or after this time have not been read yet.
    cursor: i64,
}

impl DenyList {
    pub async fn load(store: &Store, now: i64) -> Result<Self, StoreError> {
        let list = DenyList::default();
        list.sync(store, now).await?;
        Ok(list)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).jtis.contains_key(jti)
    }

    /// Records a revocation made on this node (already stored in the database).
    pub fn add(&self, jti: String, exp: i64) {
        self.write().jtis.insert(jti, exp);
    }

    /// Reads revocations made since the last sync (with a second of overlap, since timestamps
    /// are whole seconds) and forgets expired entries.
    pub async fn sync(&self, store: &Store, now: i64) -> Result<(), StoreError> {
        let since = self.inner.read().unwrap_or_else(|p| p.into_inner()).cursor;
        let rows = store.revoked_jwts_since(since.saturating_sub(1), now).await?;
        let mut inner = self.write();
        for r in rows {
            inner.cursor = inner.cursor.max(r.revoked_at);
            inner.jtis.insert(r.jti, r.expires_at);
        }
        inner.jtis.retain(|_, exp| *exp > now);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).jtis.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
