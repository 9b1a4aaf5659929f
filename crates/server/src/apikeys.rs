//! API keys in the server: the rules for creating one (registered scopes, expiry policy), shared
//! by the admin CLI, the account page and the HTTP API; verification with a short in-memory
//! cache; and last-use times collected in memory and written in batches, so that using a key
//! never writes to the database on the request path. Also the scope registry's words for
//! consent pages, and what a user owns (service accounts and their keys).
//!
//! The cache holds what the database said about a key hash (including "no such key") for
//! `api_keys.cache_secs`. A revocation on this node removes the entry at once; one made on
//! another node takes effect within that time. In front of it each runtime thread keeps its own
//! copies ([`crate::per_thread`]), no older than the entry they came from and dropped on every
//! thread by a revocation here, and remembers the last use it put down, so that a key used again
//! in the same second from the same address takes no lock another core also takes.

use crate::config::ApiKeysConfig;
use crate::per_thread::Versioned;
use postern_core::apikey::{self, KeyKind, NewApiKey};
use postern_core::scope::Scope;
use postern_core::secret::TokenHash;
use postern_store::{ApiKeyRecord, KeyOwner, KeyUse, NewApiKeyRow, RegisteredScope, ServiceAccount, Store, StoreError};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries beyond this are dropped wholesale (a flood of made-up keys cannot grow memory).
const MAX_CACHED: usize = 100_000;

/// How long a new key lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// `api_keys.default_ttl_secs`.
    Default,
    /// Seconds from now.
    After(i64),
    /// No expiry, if `api_keys.allow_no_expiry`.
    Never,
}

/// Why a key could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What it takes to create a key.
#[derive(Debug, Clone)]
pub struct KeyRequest<'a> {
    pub owner: KeyOwner<'a>,
    pub name: &'a str,
    /// Each must be registered and covered by the owner's entitlements.
    pub scopes: &'a [String],
    pub expiry: Expiry,
    /// The scope of the access token the request came with, if any: the key may carry only
    /// scopes it covers, so a token cannot mint a key wider than itself.
    pub within: Option<&'a str>,
}

/// Whether `scope` is allowed by the registry: a registered name, or `name:value` / `name:*`
/// for a registered scope that takes values.
pub fn registered(registry: &[RegisteredScope], scope: &Scope) -> bool {
    registry.iter().any(|r| {
        if r.takes_values {
            scope
                .as_str()
                .strip_prefix(r.name.as_str())
                .and_then(|v| v.strip_prefix(':'))
                .is_some_and(|v| !v.is_empty())
        } else {
            scope.as_str() == r.name
        }
    })
}

/// Plain words for each scope of a space-separated list, for consent pages: the registry's
/// description (with the value for `name:value`, "all" for `name:*`), else the built-in words
/// of the OpenID scopes or a generic line. A registry that cannot be read falls back to those.
pub async fn describe_scopes(store: &Store, list: &str) -> Vec<String> {
    let registry = store.scopes().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "scope registry unreadable; consent shows generic descriptions");
        Vec::new()
    });
    list.split(' ').filter(|s| !s.is_empty()).map(|s| describe(&registry, s)).collect()
}

fn describe(registry: &[RegisteredScope], scope: &str) -> String {
    for r in registry {
        if r.name == scope && !r.takes_values {
            return r.description.clone();
        }
        let value = scope.strip_prefix(r.name.as_str()).and_then(|v| v.strip_prefix(':'));
        if let Some(value) = value.filter(|v| r.takes_values && !v.is_empty()) {
            return match value {
                "*" => format!("{} (all)", r.description),
                v => format!("{}: {v}", r.description),
            };
        }
    }
    postern_core::oidc::describe_scope(scope)
}

/// Checks a request against the registry and the expiry policy, stores the key and returns it:
/// the only time the key exists in clear.
pub async fn create(
    store: &Store,
    config: &ApiKeysConfig,
    request: &KeyRequest<'_>,
    now: i64,
) -> Result<(NewApiKey, ApiKeyRecord), CreateError> {
    let invalid = |m: String| CreateError::Invalid(m);
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("a key needs a name of 1 to 100 characters, without control characters".into()));
    }
    if request.scopes.is_empty() {
        return Err(invalid("a key needs at least one scope".into()));
    }
    if let Some(s) = crate::entitlements::beyond_token(request.within, request.scopes) {
        return Err(invalid(format!("the access token used does not cover the scope {s:?}")));
    }
    let registry = store.scopes().await?;
    let entitled = crate::entitlements::of(store, request.owner).await?;
    let mut scopes: Vec<Scope> = Vec::new();
    for s in request.scopes {
        let scope = Scope::parse(s).map_err(|e| invalid(e.to_string()))?;
        if !registered(&registry, &scope) {
            return Err(invalid(format!("the scope {s:?} is not registered (postern admin scope list)")));
        }
        if !entitled.covers(&scope) {
            let whom = match request.owner {
                KeyOwner::User(_) => "you are",
                KeyOwner::ServiceAccount(_) => "the service account is",
            };
            return Err(invalid(format!("{whom} not entitled to the scope {s:?} (an admin grants it)")));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let expires_at = match request.expiry {
        Expiry::Default => Some(now + config.default_ttl_secs),
        Expiry::After(secs) if secs > config.max_ttl_secs => {
            return Err(invalid(format!(
                "a key may live at most {} days (api_keys.max_ttl_secs)",
                config.max_ttl_secs / 86_400
            )));
        }
        Expiry::After(secs) if secs > 0 => Some(now.saturating_add(secs)),
        Expiry::After(_) => return Err(invalid("the expiry must be in the future".into())),
        Expiry::Never if config.allow_no_expiry => None,
        Expiry::Never => return Err(invalid("keys without expiry are not allowed (api_keys.allow_no_expiry)".into())),
    };
    let kind = match request.owner {
        KeyOwner::User(_) => KeyKind::Personal,
        KeyOwner::ServiceAccount(_) => KeyKind::ServiceAccount,
    };
    let audience = crate::resources::key_audience(store, &scopes).await?;
    let mut rng = postern_core::system::os_rng();
    let key = NewApiKey::generate(kind, &mut rng);
    let id = postern_core::id::random_id(&mut rng);
    let row = NewApiKeyRow {
        id: &id,
        hash: key.hash(),
        public_prefix: key.public_prefix(),
        owner: request.owner,
        name,
        scopes: &scopes,
        audience: &audience,
        created_at: now,
        expires_at,
    };
    let record = store.create_api_key(&row).await?;
    Ok((key, record))
}

/// Creates a service account owned by `owner_id` (a name of 1-64 characters of
/// `A-Z a-z 0-9 - _ .`, unique among the owner's service accounts).
pub async fn create_service_account(
    store: &Store,
    owner_id: &str,
    name: &str,
    description: &str,
    now: i64,
) -> Result<ServiceAccount, CreateError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !valid {
        return Err(CreateError::Invalid("a service account name is 1-64 characters of A-Z a-z 0-9 - _ .".into()));
    }
    let description = description.trim();
    if description.chars().count() > 200 || description.chars().any(char::is_control) {
        return Err(CreateError::Invalid("a description is at most 200 characters, without control characters".into()));
    }
    let id = postern_core::id::random_id(&mut postern_core::system::os_rng());
    match store.create_service_account(&id, name, description, owner_id, now).await {
        Err(StoreError::Conflict(_)) => {
            Err(CreateError::Invalid(format!("the service account {name:?} already exists")))
        }
        other => Ok(other?),
    }
}

/// What a user may manage: the service accounts they own, and the keys of both.
pub struct Holdings {
    pub service_accounts: Vec<ServiceAccount>,
    /// Personal keys first, then each service account's, oldest first within each.
    pub keys: Vec<ApiKeyRecord>,
}

impl Holdings {
    pub async fn of(store: &Store, user_id: &str) -> Result<Self, StoreError> {
        let service_accounts = store.service_accounts_owned_by(user_id).await?;
        let keys = store.api_keys_held_by(user_id).await?;
        Ok(Self { service_accounts, keys })
    }

    /// The owned service account with this id or name.
    pub fn service_account(&self, id_or_name: &str) -> Option<&ServiceAccount> {
        self.service_accounts.iter().find(|s| s.id == id_or_name || s.name == id_or_name)
    }

    /// The key with this id, if it is one of these.
    pub fn key(&self, id: &str) -> Option<&ApiKeyRecord> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// What the database said about a key hash (`None`: no such key), and when it was read. Shared,
/// so that a verification served from the cache copies no record.
type Cached = (i64, Option<Arc<ApiKeyRecord>>);

/// What a runtime thread keeps of the keys it verified ([`crate::per_thread`]), by key hash: its
/// own copy of each answer, so that a key seen before takes no lock and no reference count
/// another core writes. Emptied on every thread by [`KeyVerifier::forget_all`].
type Local = FxHashMap<[u8; 32], LocalKey>;

/// At most this many answers per thread; past it a thread starts again from the shared cache.
const MAX_LOCAL: usize = 1_000;

struct LocalKey {
    /// When the database gave the answer this copy was taken from.
    fetched: i64,
    record: Option<Arc<ApiKeyRecord>>,
    /// The last use this thread put in `uses`, so that the same second from the same address
    /// does not take the lock again.
    recorded: Option<(i64, Option<String>)>,
}

/// Verified keys in memory and last uses waiting to be written.
#[derive(Default)]
pub struct KeyVerifier {
    cache_secs: i64,
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    local: Versioned<Local>,
    /// key id -> latest use
    uses: Mutex<HashMap<String, KeyUse>>,
}

/// Only the setting: the cached records (owners' addresses, last-use addresses) stay out of
/// whatever prints the node's state.
impl std::fmt::Debug for KeyVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVerifier").field("cache_secs", &self.cache_secs).finish_non_exhaustive()
    }
}

impl KeyVerifier {
    pub fn new(config: &ApiKeysConfig) -> Self {
        Self { cache_secs: config.cache_secs, ..Self::default() }
    }

    /// The live key `presented` stands for, or `None` (malformed, unknown, revoked, expired, or
    /// its user disabled). Records the use in memory.
    pub async fn verify(
        &self,
        store: &Store,
        presented: &str,
        ip: Option<&str>,
        now: i64,
    ) -> Result<Option<Arc<ApiKeyRecord>>, StoreError> {
        let Ok(parsed) = apikey::parse(presented) else {
            return Ok(None);
        };
        let hash = parsed.hash.0;
        let (record, recorded) = match self.cached(&hash, now, ip) {
            Some(hit) => hit,
            None => (self.read(store, &parsed.hash, now).await?, false),
        };
        let Some(record) = record.filter(|r| r.usable_at(now) && r.kind() == parsed.kind) else {
            return Ok(None);
        };
        if !recorded {
            self.record_use(&record, now, ip);
            self.local.with(self.local.current(), |local| {
                if let Some(mine) = local.get_mut(&hash) {
                    mine.recorded = Some((now, ip.map(str::to_owned)));
                }
            });
        }
        Ok(Some(record))
    }

    /// The cached answer for a key hash, if fresh: this thread's own copy, else one taken from
    /// the shared cache (then kept). The flag says whether this thread already put this use
    /// (the same second, from the same address) in `uses`.
    fn cached(&self, hash: &[u8; 32], now: i64, ip: Option<&str>) -> Option<(Option<Arc<ApiKeyRecord>>, bool)> {
        if self.cache_secs <= 0 {
            return None;
        }
        let fresh = |fetched: i64| now - fetched < self.cache_secs;
        // Read before the shared cache: a copy taken from an entry that `forget_all` then
        // clears is kept under the version it moves away from.
        let version = self.local.current();
        let mine = self.local.with(version, |local| {
            let mine = local.get(hash).filter(|k| fresh(k.fetched))?;
            let recorded = mine.recorded.as_ref().is_some_and(|(at, from)| *at == now && from.as_deref() == ip);
            Some((mine.record.clone(), recorded))
        });
        if let Some(hit) = mine.flatten() {
            return Some(hit);
        }
        let (fetched, record) = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let (fetched, record) = cache.get(hash).filter(|(at, _)| fresh(*at))?;
            (*fetched, record.as_deref().cloned())
        };
        let record = record.map(Arc::new);
        self.local.with(version, |local| {
            if local.len() >= MAX_LOCAL {
                local.clear();
            }
            local.insert(*hash, LocalKey { fetched, record: record.clone(), recorded: None });
        });
        Some((record, false))
    }

    /// What the database says about a key hash, kept in the shared cache. While the database is
    /// out of reach, a key verified before keeps its last answer (revocations wait for the
    /// database, as on any other node).
    async fn read(&self, store: &Store, hash: &TokenHash, now: i64) -> Result<Option<Arc<ApiKeyRecord>>, StoreError> {
        let record = match store.api_key_by_hash(hash).await {
            Ok(r) => r.map(Arc::new),
            Err(e) if e.is_unavailable() => {
                let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                return cache.get(&hash.0).map(|(_, r)| r.clone()).ok_or(e);
            }
            Err(e) => return Err(e),
        };
        if self.cache_secs > 0 {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(hash.0, (now, record.clone()));
        }
        Ok(record)
    }

    fn record_use(&self, record: &ApiKeyRecord, now: i64, ip: Option<&str>) {
        let mut uses = self.uses.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiting) = uses.get_mut(&record.id) {
            // A key used again before the next write: its latest use, updated in place.
            waiting.at = now;
            if waiting.ip.as_deref() != ip {
                waiting.ip = ip.map(str::to_owned);
            }
        } else if uses.len() < MAX_CACHED {
            // Bounded like the cache: past it (more keys used between two writes than that, or
            // the database long out of reach), a key not yet waiting keeps its older last use.
            uses.insert(record.id.clone(), KeyUse { key_id: record.id.clone(), at: now, ip: ip.map(str::to_owned) });
        }
    }

    /// Forgets what is cached (after a revocation on this node), on every thread: a check that
    /// starts after this returns reads the database again.
    pub fn forget_all(&self) {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.local.moved();
    }

    /// Writes the collected last uses in one transaction; put back on failure.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let uses: Vec<KeyUse> =
            std::mem::take(&mut *self.uses.lock().unwrap_or_else(|p| p.into_inner())).into_values().collect();
        if let Err(e) = store.touch_api_keys(&uses).await {
            let mut pending = self.uses.lock().unwrap_or_else(|p| p.into_inner());
            for u in uses {
                pending.entry(u.key_id.clone()).or_insert(u);
            }
            return Err(e);
        }
        Ok(uses.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_allows_names_and_values_of_value_scopes() {
        let reg = |name: &str, takes_values| RegisteredScope {
            name: name.into(),
            description: String::new(),
            takes_values,
            created_at: 0,
        };
        let registry = [reg("read", false), reg("project", true)];
        let s = |x: &str| Scope::parse(x).unwrap_or_else(|e| panic!("{e}"));
        assert!(registered(&registry, &s("read")));
        assert!(registered(&registry, &s("project:billing")));
        assert!(registered(&registry, &s("project:*")));
        assert!(!registered(&registry, &s("project")), "a value scope needs a value");
        assert!(!registered(&registry, &s("read:x")), "read takes no values");
        assert!(!registered(&registry, &s("write")));
        assert!(!registered(&registry, &s("projects:x")));
    }

    #[test]
    fn consent_uses_the_registry_descriptions() {
        let reg = |name: &str, description: &str, takes_values| RegisteredScope {
            name: name.into(),
            description: description.into(),
            takes_values,
            created_at: 0,
        };
        let registry = [reg("read", "Read your files", false), reg("project", "Manage projects", true)];
        assert_eq!(describe(&registry, "read"), "Read your files");
        assert_eq!(describe(&registry, "project:web"), "Manage projects: web");
        assert_eq!(describe(&registry, "project:*"), "Manage projects (all)");
        assert_eq!(describe(&registry, "email"), "See your email address");
        assert!(describe(&registry, "projects:x").contains("projects:x"));
    }
}
