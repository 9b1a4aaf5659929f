//! A small time-bounded map keyed by the SHA-256 of a credential, so the credential itself is
//! never kept. Bounded: when full, expired entries go; if it is still full (a flood of
//! distinct credentials), it starts over rather than grow.

use postern_verify::secret::TokenHash;
use std::collections::HashMap;
use std::sync::Mutex;

pub(crate) struct TtlCache<V> {
    max_entries: usize,
    map: Mutex<HashMap<TokenHash, (i64, V)>>,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self { max_entries, map: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, (i64, V)>> {
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value, if it was stored until a time after `now`.
    pub(crate) fn get(&self, key: &TokenHash, now: i64) -> Option<V> {
        self.lock().get(key).filter(|(until, _)| now < *until).map(|(_, v)| v.clone())
    }

    /// Keeps `value` while `now < until`.
    pub(crate) fn insert(&self, key: TokenHash, value: V, until: i64, now: i64) {
        let mut map = self.lock();
        if map.len() >= self.max_entries && !map.contains_key(&key) {
            map.retain(|_, (u, _)| now < *u);
            if map.len() >= self.max_entries {
                map.clear();
            }
        }
        map.insert(key, (until, value));
    }

    #[cfg(test)]
    pub(crate) fn until(&self, key: &TokenHash) -> Option<i64> {
        self.lock().get(key).map(|(u, _)| *u)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}
