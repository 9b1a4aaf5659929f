//! The signing keys in memory: the active private key per algorithm, and the JWKS document
//! (pre-serialized, with its ETag) built from every key still published.
//!
//! The ring is re-read from the database by the maintenance task, so a rotation made with
//! `postern admin keys rotate` (on this node or another) takes effect without a restart, and a
//! rotated key leaves the JWKS once its `publish_until` has passed. Serving the JWKS and
//! signing read only memory.

use crate::per_thread::Published;
use postern_core::kek::KeyEncryptionKey;
use postern_core::secret::TokenHash;
use postern_core::signing::{Algorithm, PrivateKey, PublicKey};
use postern_proto::{Jwk, JwkSet};
use postern_store::Store;
use postern_store::keys::NewKey;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing key {kid}: {reason}")]
    Unusable { kid: String, reason: String },
    #[error("no active {0} signing key")]
    Missing(Algorithm),
    #[error(transparent)]
    Store(#[from] postern_store::StoreError),
}

/// An active signing key.
#[derive(Debug, Clone)]
pub struct ActiveKey {
    pub kid: String,
    pub key: PrivateKey,
}

/// One consistent view of the keys.
#[derive(Debug)]
pub struct Keys {
    pub active: BTreeMap<Algorithm, ActiveKey>,
    /// Every published key by kid, for verifying our own tokens.
    pub verifying: BTreeMap<String, PublicKey>,
    pub jwks: JwkSet,
    /// The JWKS document as served (shared, never copied per request).
    pub jwks_json: axum::body::Bytes,
    pub jwks_etag: String,
}

/// Shared, swappable key view.
#[derive(Debug, Clone)]
pub struct KeyRing {
    kek: KeyEncryptionKey,
    /// Derived from the KEK: keys the hash of user codes (see [`KeyRing::user_code_hash`]).
    user_codes: KeyEncryptionKey,
    current: Arc<Published<Keys>>,
}

fn aad(kid: &str) -> Vec<u8> {
    format!("postern:signing-key:{kid}").into_bytes()
}

/// Generates a key of `alg` and seals its private part for storage.
pub fn new_sealed_key(alg: Algorithm, kek: &KeyEncryptionKey) -> Result<NewKey, KeyError> {
    let mut rng = postern_core::system::os_rng();
    let key = PrivateKey::generate(alg, &mut rng)
        .map_err(|e| KeyError::Unusable { kid: "(new)".into(), reason: e.to_string() })?;
    let jwk = key.public().to_jwk();
    let unusable = |reason: String| KeyError::Unusable { kid: jwk.kid.clone(), reason };
    let private = key.to_bytes().map_err(|e| unusable(e.to_string()))?;
    let sealed = kek.seal(&private, &aad(&jwk.kid), &mut rng).map_err(|e| unusable(e.to_string()))?;
    let public_jwk = serde_json::to_string(&jwk).map_err(|e| unusable(e.to_string()))?;
    Ok(NewKey { kid: jwk.kid, alg: alg.as_str(), public_jwk, private_key_sealed: sealed })
}

/// RSA key generation takes a while: keep it off the async threads.
async fn generate_off_thread(alg: Algorithm, kek: &KeyEncryptionKey) -> Result<NewKey, KeyError> {
    let kek = kek.clone();
    tokio::task::spawn_blocking(move || new_sealed_key(alg, &kek))
        .await
        .map_err(|e| KeyError::Unusable { kid: "(new)".into(), reason: e.to_string() })?
}

/// Makes sure every algorithm has an active key, creating the missing ones. Safe when several
/// nodes start at once: only one insert per algorithm wins. Returns the kids created.
pub async fn ensure_keys(store: &Store, kek: &KeyEncryptionKey, now: i64) -> Result<Vec<String>, KeyError> {
    let active = store.active_keys().await?;
    let mut created = Vec::new();
    for alg in Algorithm::ALL {
        if active.iter().any(|k| k.alg == alg.as_str()) {
            continue;
        }
        let key = generate_off_thread(alg, kek).await?;
        if store.insert_first_key(&key, now).await? {
            created.push(key.kid);
        }
    }
    Ok(created)
}

/// Rotates the key of `alg`: a new key signs from now on; the old one stays published for
/// `publish_secs`. Returns the new kid.
pub async fn rotate(
    store: &Store,
    kek: &KeyEncryptionKey,
    alg: Algorithm,
    now: i64,
    publish_secs: i64,
) -> Result<String, KeyError> {
    let key = generate_off_thread(alg, kek).await?;
    store.rotate_key(&key, now, now + publish_secs).await?;
    Ok(key.kid)
}

impl KeyRing {
    pub async fn load(store: &Store, kek: KeyEncryptionKey, now: i64) -> Result<Self, KeyError> {
        let keys = read_keys(store, &kek, now, None).await?;
        let user_codes = kek.derive(b"postern:user-code-hash:v1");
        Ok(Self { kek, user_codes, current: Arc::new(Published::new(Arc::new(keys))) })
    }

    /// The key-encryption key, for sealing other recoverable secrets.
    pub fn kek(&self) -> &KeyEncryptionKey {
        &self.kek
    }

    /// How a (normalised) user code is stored: HMAC-SHA256 under a key derived from the KEK.
    /// User codes are short (20⁸), so an unkeyed hash would be reversed in seconds from a copy
    /// of the database; without the KEK this one cannot be.
    pub fn user_code_hash(&self, code: &postern_core::device::UserCode) -> TokenHash {
        TokenHash(self.user_codes.keyed_hash(code.as_str().as_bytes()))
    }

    /// The current view, to keep (one shared reference count).
    pub fn keys(&self) -> Arc<Keys> {
        self.current.get()
    }

    /// Calls `f` with the current view, read from this thread's own reference (for every
    /// request's reads: see [`crate::per_thread`]).
    pub fn with_keys<R>(&self, f: impl FnOnce(&Keys) -> R) -> R {
        self.current.with(f)
    }

    /// Re-reads the keys from the database.
    pub async fn refresh(&self, store: &Store, now: i64) -> Result<(), KeyError> {
        let previous = self.keys();
        let keys = Arc::new(read_keys(store, &self.kek, now, Some(&previous)).await?);
        self.current.set(keys);
        Ok(())
    }
}

async fn read_keys(store: &Store, kek: &KeyEncryptionKey, now: i64, previous: Option<&Keys>) -> Result<Keys, KeyError> {
    let mut active = BTreeMap::new();
    for row in store.active_keys().await? {
        let unusable = |reason: &str| KeyError::Unusable { kid: row.kid.clone(), reason: reason.to_owned() };
        let alg = Algorithm::parse(&row.alg).ok_or_else(|| unusable("unknown algorithm"))?;
        // Unchanged keys are reused rather than decrypted and parsed again.
        if let Some(same) = previous.and_then(|p| p.active.get(&alg)).filter(|k| k.kid == row.kid) {
            active.insert(alg, same.clone());
            continue;
        }
        let plain = kek.open(&row.private_key_sealed, &aad(&row.kid)).map_err(|e| unusable(&e.to_string()))?;
        let key = PrivateKey::from_bytes(alg, &plain).map_err(|e| unusable(&e.to_string()))?;
        active.insert(alg, ActiveKey { kid: row.kid.clone(), key });
    }
    for alg in Algorithm::ALL {
        if !active.contains_key(&alg) {
            return Err(KeyError::Missing(alg));
        }
    }
    let mut jwks = JwkSet::default();
    let mut verifying = BTreeMap::new();
    for row in store.published_keys(now).await? {
        let unusable = |reason: String| KeyError::Unusable { kid: row.kid.clone(), reason };
        let jwk: Jwk = serde_json::from_str(&row.public_jwk).map_err(|e| unusable(format!("public JWK: {e}")))?;
        let public = PublicKey::from_jwk(&jwk).ok_or_else(|| unusable("public JWK is not a usable key".into()))?;
        verifying.insert(jwk.kid.clone(), public);
        jwks.keys.push(jwk);
    }
    let jwks_json = serde_json::to_string(&jwks).unwrap_or_else(|_| r#"{"keys":[]}"#.to_owned());
    let jwks_etag = etag_of(&jwks_json);
    Ok(Keys { active, verifying, jwks, jwks_json: jwks_json.into(), jwks_etag })
}

/// A strong ETag derived from the content (first 96 bits of its SHA-256).
fn etag_of(body: &str) -> String {
    let h = postern_core::secret::TokenHash::of(body);
    let hex: String = h.as_bytes()[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}
