//! Revoked JWT access tokens, in memory.
//!
//! Checking a JWT must not cost a database round trip, so each node keeps the deny-list (the
//! `jti`s of revoked, not yet expired tokens) in memory: loaded at start, updated at once for
//! revocations made on this node, and synchronised from the database every
//! `tokens.revocation_sync_secs` for revocations made on other nodes or by the admin command,
//! by the order numbers the database gives the entries, never by wall-clock time. Entries
//! leave when their token would have expired.
//!
//! Besides single tokens, the list holds users cut off (disabled): every JWT issued to such a
//! subject at or before the cut-off is refused, since JWTs are issued without a database
//! write and cannot all be named by `jti`.
//!
//! The list only grows between syncs, and every addition moves a version number. Each runtime
//! thread remembers the `jti`s it found not denied at the current version
//! ([`crate::per_thread`]), so a resource server presenting the same token again is answered
//! without the list's lock, which both cores would otherwise take for every request. An
//! addition is in force for every check that starts after it returns.

use crate::per_thread::Versioned;
use postern_store::{Store, StoreError};
use rustc_hash::FxHashSet;
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug, Default)]
pub struct DenyList {
    inner: RwLock<Inner>,
    /// The `jti`s each thread found not denied, dropped after every addition (a `jti`, or a
    /// subject's later cut-off).
    clean: Versioned<FxHashSet<String>>,
}

/// At most this many `jti`s a thread remembers as not denied.
const MAX_CLEAN: usize = 4_096;

#[derive(Debug, Default)]
struct Inner {
    /// jti -> exp
    jtis: HashMap<String, i64>,
    /// subject -> (cut off at, entry kept until); the latest cut-off of each subject
    subjects: HashMap<String, (i64, i64)>,
    /// The highest database order number read so far, for each table.
    jwt_cursor: i64,
    subject_cursor: i64,
}

/// How many order numbers before the highest one seen each sync reads again. PostgreSQL hands
/// numbers out when a row is inserted, not when it is committed, so a revocation committed
/// late carries a number below ones already read; looking back this far picks it up (re-reading
/// an entry is harmless).
const LOOK_BACK: i64 = 1000;

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
        let version = self.clean.current();
        if self.clean.with(version, |clean| clean.contains(jti)) == Some(true) {
            return false;
        }
        let revoked = {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            inner.jtis.contains_key(jti) || inner.subjects.get(subject).is_some_and(|(cut, _)| iat <= *cut)
        };
        if !revoked {
            // Kept under the version read before the list: if an addition came in between,
            // the version has moved on and this is not used.
            self.clean.with(version, |clean| {
                if clean.len() >= MAX_CLEAN {
                    clean.clear();
                }
                clean.insert(jti.to_owned());
            });
        }
        revoked
    }

    /// Records a user cut off on this node (already stored in the database).
    pub fn add_subject(&self, subject: String, revoked_at: i64, until: i64) {
        let mut inner = self.write();
        let entry = inner.subjects.entry(subject).or_insert((revoked_at, until));
        if revoked_at >= entry.0 {
            *entry = (revoked_at, until.max(entry.1));
        }
        self.moved();
    }

    /// Records a revocation made on this node (already stored in the database).
    pub fn add(&self, jti: String, exp: i64) {
        self.write().jtis.insert(jti, exp);
        self.moved();
    }

    /// After an addition, with the list already changed: no thread uses what it found clean
    /// before.
    fn moved(&self) {
        self.clean.moved();
    }

    /// Reads revocations the database numbered after the last sync (looking back
    /// [`LOOK_BACK`] numbers, for late commits) and forgets expired entries.
    pub async fn sync(&self, store: &Store, now: i64) -> Result<(), StoreError> {
        let (jwt_from, subject_from) = {
            let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
            (inner.jwt_cursor.saturating_sub(LOOK_BACK), inner.subject_cursor.saturating_sub(LOOK_BACK))
        };
        let rows = store.revoked_jwts_after(jwt_from, now).await?;
        let subjects = store.revoked_subjects_after(subject_from, now).await?;
        let mut inner = self.write();
        // Entries read again (the look-back) change nothing; only new ones move the version.
        let mut added = false;
        for r in rows {
            inner.jwt_cursor = inner.jwt_cursor.max(r.seq.unwrap_or(0));
            added |= inner.jtis.insert(r.jti, r.expires_at).is_none();
        }
        for s in subjects {
            inner.subject_cursor = inner.subject_cursor.max(s.seq.unwrap_or(0));
            added |= inner.subjects.get(&s.subject).is_none_or(|(cut, _)| s.revoked_at > *cut);
            let entry = inner.subjects.entry(s.subject).or_insert((s.revoked_at, s.expires_at));
            if s.revoked_at >= entry.0 {
                *entry = (s.revoked_at, s.expires_at.max(entry.1));
            }
        }
        inner.jtis.retain(|_, exp| *exp > now);
        inner.subjects.retain(|_, (_, until)| *until > now);
        drop(inner);
        if added {
            self.moved();
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).jtis.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::DenyList;

    #[test]
    fn a_token_found_clean_is_refused_once_it_or_its_user_is_added() {
        let list = DenyList::default();
        assert!(!list.is_revoked("j1", "u1", 100));
        assert!(!list.is_revoked("j1", "u1", 100), "found clean before, on this thread");
        list.add("j1".into(), 1_000);
        assert!(list.is_revoked("j1", "u1", 100), "revoked after it was found clean");

        assert!(!list.is_revoked("j2", "u2", 100));
        // Added from another thread: this thread's memory of j2 is not used either.
        std::thread::scope(|scope| {
            scope.spawn(|| list.add_subject("u2".into(), 150, 1_000));
        });
        assert!(list.is_revoked("j2", "u2", 100), "issued before the cut-off");
        assert!(!list.is_revoked("j3", "u2", 200), "issued after it");
        assert!(!list.is_revoked("j3", "u2", 200));
    }
}
