//! The issuer's signing keys, fetched from its JWKS and kept in memory.
//!
//! A token naming a `kid` we do not hold makes one refetch (keys rotate), but at most one per
//! `min_refetch_secs`, so a stream of tokens with made-up `kid`s cannot turn the app into a
//! load generator against Postern. Concurrent misses wait for the same fetch.

use crate::GuardError;
use postern_proto::JwkSet;
use postern_verify::key::PublicKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

type KeyMap = Arc<HashMap<String, PublicKey>>;

pub(crate) struct Jwks {
    uri: String,
    keys: RwLock<KeyMap>,
    /// When the last fetch was attempted (unix seconds); held across a fetch.
    last_fetch: tokio::sync::Mutex<Option<i64>>,
    min_refetch_secs: i64,
    fetches: AtomicU64,
}

impl Jwks {
    pub(crate) fn new(uri: String, min_refetch_secs: i64) -> Self {
        Self {
            uri,
            keys: RwLock::new(Arc::default()),
            last_fetch: tokio::sync::Mutex::new(None),
            min_refetch_secs,
            fetches: AtomicU64::new(0),
        }
    }

    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> KeyMap {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Makes sure `kid` is known if the issuer publishes it, fetching the set again unless that
    /// was done less than `min_refetch_secs` ago. Returns the keys held afterwards.
    pub(crate) async fn refresh_for(&self, http: &reqwest::Client, kid: &str, now: i64) -> Result<KeyMap, GuardError> {
        let mut last = self.last_fetch.lock().await;
        let current = self.snapshot();
        if current.contains_key(kid) {
            // Fetched by another request while this one waited.
            return Ok(current);
        }
        if last.is_some_and(|t| now - t < self.min_refetch_secs) {
            return Ok(current);
        }
        *last = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = fetch(http, &self.uri).await?;
        let keys: KeyMap = Arc::new(fetched);
        match self.keys.write() {
            Ok(mut k) => *k = keys.clone(),
            Err(poisoned) => *poisoned.into_inner() = keys.clone(),
        }
        Ok(keys)
    }
}

async fn fetch(http: &reqwest::Client, uri: &str) -> Result<HashMap<String, PublicKey>, GuardError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, uri, "could not fetch the issuer's JWKS");
        GuardError::Unavailable("the issuer's signing keys could not be fetched".into())
    };
    let response = http.get(uri).send().await.map_err(|e| unavailable(&e))?;
    if !response.status().is_success() {
        return Err(unavailable(&response.status()));
    }
    let set: JwkSet = response.json().await.map_err(|e| unavailable(&e))?;
    // Keys for other uses, or of kinds we cannot verify, are left out.
    Ok(set
        .keys
        .iter()
        .filter(|k| k.use_ == "sig")
        .filter_map(|k| PublicKey::from_jwk(k).map(|p| (k.kid.clone(), p)))
        .collect())
}
