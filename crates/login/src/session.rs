//! A logged-in session that keeps itself valid.
//!
//! - [`Session::access_token`] refreshes ahead of time, when the token expires within the skew
//!   (60 s).
//! - [`Session::refresh_rejected`] refreshes after an API answered 401 to a token.
//! - Callers in one process share one refresh: the session's state sits behind an async mutex.
//! - Processes take turns: a refresh runs under the store's lock, and re-reads the store once it
//!   has the lock. If another process refreshed meanwhile, its tokens are used and nothing is
//!   spent, so a rotated refresh token is never presented twice.
//! - A refresh refused with `invalid_grant` deletes the stored session: the user is cleanly
//!   logged out and told to log in again.

use crate::client::{Client, Tokens};
use crate::error::{Error, ErrorCode};
use crate::store::{SessionKey, StoreLock, StoredSession, TokenStore};
use std::sync::Arc;
use tokio::sync::Mutex;

/// How long before expiry a token is refreshed.
pub const SKEW_SECS: i64 = 60;

/// A session of one profile at one issuer. Cheap to clone; clones share the refresh.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    store: Arc<dyn TokenStore>,
    key: SessionKey,
    current: Mutex<StoredSession>,
}

impl Session {
    /// The stored session of `profile` for this client, if there is one.
    pub async fn open(client: &Client, store: Arc<dyn TokenStore>, profile: &str) -> Result<Option<Session>, Error> {
        let key = key(client, profile);
        let stored = store.load(&key)?;
        Ok(stored.map(|s| Session::with(client, store, key, s)))
    }

    /// Stores freshly obtained tokens as `profile`'s session (replacing any earlier one) and
    /// returns it. Who logged in is read from userinfo when the tokens allow it.
    pub async fn start(
        client: &Client,
        store: Arc<dyn TokenStore>,
        profile: &str,
        tokens: Tokens,
    ) -> Result<Session, Error> {
        let key = key(client, profile);
        let (subject, display_name) = match client.userinfo(&tokens.access_token).await {
            Ok(claims) => {
                let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::to_owned);
                (text("sub"), text("email").or_else(|| text("name")))
            }
            Err(e) => {
                tracing::debug!(error = %e, "no userinfo for the new session");
                (None, None)
            }
        };
        let stored = StoredSession {
            profile: key.profile.clone(),
            issuer: key.issuer.clone(),
            client_id: key.client_id.clone(),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: tokens.expires_at,
            scope: tokens.scope,
            subject,
            display_name,
            logged_in_at: crate::unix_now(),
            refreshed_at: None,
        };
        let lock = lock(&store).await?;
        store.save(&stored)?;
        drop(lock);
        Ok(Session::with(client, store, key, stored))
    }

    fn with(client: &Client, store: Arc<dyn TokenStore>, key: SessionKey, stored: StoredSession) -> Session {
        let inner = Inner { client: client.clone(), store, key, current: Mutex::new(stored) };
        Session { inner: Arc::new(inner) }
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    pub fn key(&self) -> &SessionKey {
        &self.inner.key
    }

    /// The session as this process last saw it.
    pub async fn stored(&self) -> StoredSession {
        self.inner.current.lock().await.clone()
    }

    /// A valid access token, refreshed first when it expires within the skew.
    pub async fn access_token(&self) -> Result<String, Error> {
        let mut current = self.inner.current.lock().await;
        let stale = |s: &StoredSession| s.expires_at.is_some_and(|at| at <= crate::unix_now() + SKEW_SECS);
        if stale(&current) {
            self.refresh_if(&mut current, stale).await?;
        }
        Ok(current.access_token.clone())
    }

    /// A fresh access token after an API refused `rejected` with 401. When another caller has
    /// already replaced that token, its replacement is returned without a second refresh.
    pub async fn refresh_rejected(&self, rejected: &str) -> Result<String, Error> {
        let mut current = self.inner.current.lock().await;
        let spent = |s: &StoredSession| s.access_token == rejected;
        if spent(&current) {
            self.refresh_if(&mut current, spent).await?;
        }
        Ok(current.access_token.clone())
    }

    /// Under the store's lock: re-reads the stored session, and refreshes only if it still
    /// `needs` it.
    async fn refresh_if(
        &self,
        current: &mut StoredSession,
        needs: impl Fn(&StoredSession) -> bool,
    ) -> Result<(), Error> {
        let store = &self.inner.store;
        let lock = lock(store).await?;
        let Some(latest) = store.load(&self.inner.key)? else {
            return Err(Error::NotLoggedIn);
        };
        *current = latest;
        if !needs(current) {
            return Ok(());
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            return Err(Error::SessionEnded("the token expired and there is no refresh token".into()));
        };
        match self.inner.client.refresh(&refresh_token).await {
            Ok(tokens) => {
                current.access_token = tokens.access_token;
                current.refresh_token = tokens.refresh_token;
                current.expires_at = tokens.expires_at;
                current.scope = tokens.scope.or(current.scope.take());
                current.refreshed_at = Some(crate::unix_now());
                store.save(current)?;
                drop(lock);
                Ok(())
            }
            Err(Error::OAuth { code: ErrorCode::InvalidGrant, description }) => {
                store.remove(&self.inner.key)?;
                drop(lock);
                let why = description.unwrap_or_else(|| "the server no longer accepts the refresh token".into());
                Err(Error::SessionEnded(why))
            }
            Err(e) => Err(e),
        }
    }

    /// The userinfo claims of the logged-in user (refreshing as needed).
    pub async fn userinfo(&self) -> Result<serde_json::Value, Error> {
        let url = self.client().endpoint(self.client().metadata().userinfo_endpoint.as_ref(), "userinfo endpoint")?;
        let response = self.http().get(&url).await?;
        crate::client::read_json(&url, response).await
    }

    /// Logs out: revokes the refresh token at the server (RFC 7009), or the access token when
    /// there is none, then deletes the stored session. The session is deleted even when the
    /// server cannot be told; the error then says so.
    pub async fn logout(&self) -> Result<(), Error> {
        let current = self.inner.current.lock().await;
        let (token, hint) = match &current.refresh_token {
            Some(rt) => (rt.clone(), "refresh_token"),
            None => (current.access_token.clone(), "access_token"),
        };
        let revoked = self.inner.client.revoke(&token, hint).await;
        let store = &self.inner.store;
        let lock = lock(store).await?;
        store.remove(&self.inner.key)?;
        drop(lock);
        revoked
    }

    /// An HTTP helper that sends this session's bearer token and refreshes once on a 401.
    pub fn http(&self) -> crate::http::AuthorizedHttp {
        crate::http::AuthorizedHttp::new(self.clone())
    }
}

fn key(client: &Client, profile: &str) -> SessionKey {
    SessionKey {
        profile: profile.to_owned(),
        issuer: client.issuer().to_owned(),
        client_id: client.client_id().to_owned(),
    }
}

/// Takes the store's lock without blocking the async runtime.
async fn lock(store: &Arc<dyn TokenStore>) -> Result<StoreLock, Error> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.lock())
        .await
        .map_err(|e| Error::Store(format!("the lock task failed: {e}")))?
}
