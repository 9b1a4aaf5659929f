//! Sessions in memory only: for tests, and for tools that must not write tokens to disk.

use super::{SessionKey, StoreLock, StoredSession, TokenStore};
use crate::error::Error;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A store that forgets everything when dropped. Clones share the same sessions.
#[derive(Clone, Default)]
pub struct MemoryStore {
    sessions: Arc<Mutex<BTreeMap<SessionKey, StoredSession>>>,
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, BTreeMap<SessionKey, StoredSession>> {
        self.sessions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TokenStore for MemoryStore {
    fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, Error> {
        Ok(self.sessions().get(key).cloned())
    }

    fn list(&self) -> Result<Vec<StoredSession>, Error> {
        Ok(self.sessions().values().cloned().collect())
    }

    fn save(&self, session: &StoredSession) -> Result<(), Error> {
        self.sessions().insert(session.key(), session.clone());
        Ok(())
    }

    fn remove(&self, key: &SessionKey) -> Result<(), Error> {
        self.sessions().remove(key);
        Ok(())
    }

    fn lock(&self) -> Result<StoreLock, Error> {
        Ok(StoreLock::new(self.writer.clone().blocking_lock_owned()))
    }
}
