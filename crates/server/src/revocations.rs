//! Revoked JWT access tokens, in memory.
//!
//! Checking a JWT must not cost a database round trip, so each node keeps the deny-list (the
//! `jti`s of revoked, not yet expired tokens) in memory: loaded at start, updated at once for
//! revocations made on this node, and synchronised from the database every
//! `tokens.revocation_sync_secs` for revocations made on other nodes or by the admin command.
//! Entries leave when their token would have expired.
//!
//! Besides single tokens, the list holds users cut off (disabled): every JWT issued to such a
//! subject at or before the cut-off is refused, since JWTs are issued without a database
//! write and cannot all be named by `jti`.

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
    /// subject -> (cut off at, entry kept until)
    subjects: HashMap<String, (i64, i64)>,
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

    /// Whether a JWT with this `jti`, issued to `subject` at `iat`, is refused.
    pub fn is_revoked(&self, jti: &str, subject: &str, iat: i64) -> bool {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.jtis.contains_key(jti) || inner.subjects.get(subject).is_some_and(|(cut, _)| iat <= *cut)
    }

    /// Records a user cut off on this node (already stored in the database).
    pub fn add_subject(&self, subject: String, revoked_at: i64, until: i64) {
        self.write().subjects.insert(subject, (revoked_at, until));
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
        let subjects = store.revoked_subjects_since(since.saturating_sub(1), now).await?;
        let mut inner = self.write();
        let mut cursor = inner.cursor;
        for r in rows {
            cursor = cursor.max(r.revoked_at);
            inner.jtis.insert(r.jti, r.expires_at);
        }
        for s in subjects {
            cursor = cursor.max(s.revoked_at);
            inner.subjects.insert(s.subject, (s.revoked_at, s.expires_at));
        }
        inner.cursor = cursor;
        inner.jtis.retain(|_, exp| *exp > now);
        inner.subjects.retain(|_, (_, until)| *until > now);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).jtis.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
