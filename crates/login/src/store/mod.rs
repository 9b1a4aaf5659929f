//! Where sessions are kept between runs: one trait, three stores. [`FileStore`] is the default
//! (a 0600 JSON file in a 0700 directory, written atomically); [`MemoryStore`] keeps nothing on
//! disk; `KeyringStore` (feature `keyring`) keeps tokens in the OS keychain.
//!
//! Writers take [`TokenStore::lock`] first: it is what makes a refresh in one process wait for a
//! refresh in another, so that a rotated refresh token is never spent twice.

mod file;
#[cfg(feature = "keyring")]
mod keyring;
mod memory;

pub use file::FileStore;
#[cfg(feature = "keyring")]
pub use keyring::KeyringStore;
pub use memory::MemoryStore;

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which session: several issuers, clients and profiles live side by side in one store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub profile: String,
    pub issuer: String,
    pub client_id: String,
}

/// A logged-in session as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSession {
    pub profile: String,
    pub issuer: String,
    pub client_id: String,
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Who logged in (`sub`), and how to call them (email or name), from userinfo at login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub logged_in_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refreshed_at: Option<i64>,
}

impl StoredSession {
    pub fn key(&self) -> SessionKey {
        SessionKey { profile: self.profile.clone(), issuer: self.issuer.clone(), client_id: self.client_id.clone() }
    }
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("profile", &self.profile)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("access_token", &"[redacted]")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("expires_at", &self.expires_at)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Held while writing; dropping it lets the next writer in.
pub struct StoreLock(#[allow(dead_code)] Box<dyn Send>);

impl StoreLock {
    pub fn new(guard: impl Send + 'static) -> Self {
        StoreLock(Box::new(guard))
    }
}

/// A place to keep sessions. Reads of something unreadable (a corrupt file, a format from a
/// newer version) answer "no session" with a warning rather than failing.
pub trait TokenStore: Send + Sync + 'static {
    fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, Error>;
    /// Every stored session, in key order.
    fn list(&self) -> Result<Vec<StoredSession>, Error>;
    /// Adds or replaces the session with the same key. Call with the lock held.
    fn save(&self, session: &StoredSession) -> Result<(), Error>;
    /// Removes a session; removing a missing one is not an error. Call with the lock held.
    fn remove(&self, key: &SessionKey) -> Result<(), Error>;
    /// Blocks until this caller holds the store's write lock, across processes where the store
    /// is shared between them.
    fn lock(&self) -> Result<StoreLock, Error>;
}
