//! Tokens in the OS keychain (feature `keyring`): the macOS Keychain, the Windows Credential
//! Manager, or the Linux kernel keyring (keyutils, which keeps them until the user's session
//! ends). The rest of each session (issuer, profile, expiry, who) stays in the [`FileStore`]
//! file so that sessions can be listed, with empty token fields there. Where no keychain
//! answers (a container, a headless server), the store says so once and keeps everything in the
//! file instead.

use super::{FileStore, SessionKey, StoreLock, StoredSession, TokenStore};
use crate::error::Error;
use serde::{Deserialize, Serialize};

/// Sessions with their tokens in the OS keychain.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    file: FileStore,
    service: String,
    /// False when no keychain answered: everything goes to the file.
    keychain: bool,
}

#[derive(Serialize, Deserialize)]
struct Secrets {
    access_token: String,
    refresh_token: Option<String>,
}

impl KeyringStore {
    /// The store of the tool called `app`: keychain entries under the service name `app`, the
    /// session list in the platform's configuration directory.
    pub fn for_app(app: &str) -> Result<Self, Error> {
        Ok(Self::with_file(app, FileStore::for_app(app)?))
    }

    /// Keychain entries under `service`, the session list in `file`.
    pub fn with_file(service: &str, file: FileStore) -> Self {
        let keychain = probe(service);
        if !keychain {
            tracing::warn!("no OS keychain is available; tokens are kept in {}", file.path().display());
        }
        Self { file, service: service.to_owned(), keychain }
    }

    /// Whether tokens go to the keychain (false: the file fallback).
    pub fn uses_keychain(&self) -> bool {
        self.keychain
    }

    fn entry(&self, key: &SessionKey) -> Result<keyring::Entry, Error> {
        let user = format!("{} {} {}", key.profile, key.client_id, key.issuer);
        keyring::Entry::new(&self.service, &user).map_err(|e| Error::store("keychain", e))
    }

    /// The stored session with its tokens put back from the keychain; `None` when they are gone
    /// (removed by the user from the keychain: logged out).
    fn with_secrets(&self, mut session: StoredSession) -> Option<StoredSession> {
        if !self.keychain || !session.access_token.is_empty() {
            return Some(session);
        }
        let secret = self.entry(&session.key()).ok()?.get_password();
        match secret.map(|s| serde_json::from_str::<Secrets>(&s)) {
            Ok(Ok(secrets)) => {
                session.access_token = secrets.access_token;
                session.refresh_token = secrets.refresh_token;
                Some(session)
            }
            Ok(Err(e)) => {
                tracing::warn!("the keychain entry of profile {} is damaged ({e}); logged out", session.profile);
                None
            }
            Err(keyring::Error::NoEntry) => None,
            Err(e) => {
                tracing::warn!("cannot read the keychain ({e}); logged out");
                None
            }
        }
    }
}

/// Whether the keychain accepts, returns and deletes an entry.
fn probe(service: &str) -> bool {
    let Ok(entry) = keyring::Entry::new(service, "postern-login probe") else { return false };
    let works = entry.set_password("probe").is_ok() && entry.get_password().is_ok_and(|p| p == "probe");
    let _ = entry.delete_credential();
    works
}

impl TokenStore for KeyringStore {
    fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, Error> {
        Ok(self.file.load(key)?.and_then(|s| self.with_secrets(s)))
    }

    fn list(&self) -> Result<Vec<StoredSession>, Error> {
        Ok(self.file.list()?.into_iter().filter_map(|s| self.with_secrets(s)).collect())
    }

    fn save(&self, session: &StoredSession) -> Result<(), Error> {
        if !self.keychain {
            return self.file.save(session);
        }
        let secrets =
            Secrets { access_token: session.access_token.clone(), refresh_token: session.refresh_token.clone() };
        let json = serde_json::to_string(&secrets).map_err(|e| Error::store("keychain", e))?;
        self.entry(&session.key())?.set_password(&json).map_err(|e| Error::store("keychain", e))?;
        let listed = StoredSession { access_token: String::new(), refresh_token: None, ..session.clone() };
        self.file.save(&listed)
    }

    fn remove(&self, key: &SessionKey) -> Result<(), Error> {
        if self.keychain {
            match self.entry(key)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => return Err(Error::store("keychain", e)),
            }
        }
        self.file.remove(key)
    }

    fn lock(&self) -> Result<StoreLock, Error> {
        self.file.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_the_keychain_or_its_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let service = format!("postern-login-test-{}", std::process::id());
        let store = KeyringStore::with_file(&service, FileStore::in_dir(dir.path()));
        let session = StoredSession {
            profile: "default".into(),
            issuer: "https://auth.example.org".into(),
            client_id: "cli".into(),
            access_token: "at-secret".into(),
            refresh_token: Some("rt-secret".into()),
            expires_at: Some(2_000_000_000),
            scope: None,
            subject: Some("u1".into()),
            display_name: None,
            logged_in_at: 1_800_000_000,
            refreshed_at: None,
        };
        store.save(&session).unwrap();
        assert_eq!(store.load(&session.key()).unwrap(), Some(session.clone()));
        assert_eq!(store.list().unwrap(), std::slice::from_ref(&session));
        let file = std::fs::read_to_string(dir.path().join("tokens.json")).unwrap();
        assert_eq!(file.contains("rt-secret"), !store.uses_keychain(), "tokens in the file only as the fallback");
        eprintln!("keychain available: {}", store.uses_keychain());
        store.remove(&session.key()).unwrap();
        assert_eq!(store.load(&session.key()).unwrap(), None);
    }
}
