//! Sessions in memory only: for tests, and for tools that must not write tokens to disk.

use super::{SessionKey, StoreLock, StoredSession, TokenStore};
use crate::error::Error;
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};

/// A store that forgets everything when dropped. Clones share the same sessions.
#[derive(Clone, Default)]
pub struct MemoryStore {
    sessions: Arc<Mutex<BTreeMap<SessionKey, StoredSession>>>,
    writer: Arc<Writer>,
}

/// The write lock: a flag and a condition variable, so that the guard owns nothing borrowed
/// and taking it works from any thread, async or not.
#[derive(Default)]
struct Writer {
    held: Mutex<bool>,
    released: Condvar,
}

struct WriterGuard(Arc<Writer>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        *self.0.held.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.0.released.notify_one();
    }
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
        let mut held = self.writer.held.lock().unwrap_or_else(|p| p.into_inner());
        while *held {
            held = self.writer.released.wait(held).unwrap_or_else(|p| p.into_inner());
        }
        *held = true;
        drop(held);
        Ok(StoreLock::new(WriterGuard(self.writer.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let store = MemoryStore::new();
        let held = store.lock().unwrap();
        let other = store.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _second = other.lock().unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(std::time::Duration::from_millis(100)).is_err(), "the second waits");
        drop(held);
        rx.recv().unwrap();
        waiter.join().unwrap();
    }
}
