//! What a person has signed in and given access to, for the account page, the JSON API and the
//! admin CLI: their browser sessions (each can be ended, at once: every request reads its
//! session from the database) and the apps holding access (a refresh-token family or a
//! remembered consent), each of which can be revoked.
//!
//! A session is named by a handle derived from its stored hash, never by the hash itself nor
//! the token: the first 16 bytes of `SHA-256("postern:session:" ‖ hex(hash))`, in hex. Handles are looked up
//! among the user's own sessions only.

use crate::revocations::DenyList;
use postern_core::secret::TokenHash;
use postern_store::{Store, StoreError};
use std::collections::BTreeMap;

/// One signed-in browser, as shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionView {
    pub id: String,
    /// Browser and system from the user agent ("Chrome on Linux").
    pub device: String,
    pub ip: Option<String>,
    pub signed_in_at: i64,
    pub last_active_at: i64,
    /// The session of the request that asked.
    pub current: bool,
}

/// The handle of a stored session hash.
pub fn handle_of(id_hash: &[u8]) -> String {
    let hex: String = id_hash.iter().map(|b| format!("{b:02x}")).collect();
    let digest = TokenHash::of(&format!("postern:session:{hex}"));
    digest.as_bytes().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The user's live sessions, most recently active first; `current` is the asking session.
pub async fn sessions(
    store: &Store,
    user_id: &str,
    current: Option<&TokenHash>,
    now: i64,
) -> Result<Vec<SessionView>, StoreError> {
    let rows = store.user_sessions(user_id, now).await?;
    Ok(rows
        .into_iter()
        .map(|s| SessionView {
            id: handle_of(&s.id_hash),
            device: postern_core::user_agent::describe(s.user_agent.as_deref().unwrap_or_default()),
            ip: s.ip,
            signed_in_at: s.created_at,
            last_active_at: s.last_seen_at,
            current: current.is_some_and(|c| c.as_bytes() == s.id_hash.as_slice()),
        })
        .collect())
}

/// Ends the user's session with this handle; `false` when they have none by that handle.
pub async fn end_session(store: &Store, user_id: &str, handle: &str, now: i64) -> Result<bool, StoreError> {
    let rows = store.user_sessions(user_id, now).await?;
    match rows.iter().find(|s| handle_of(&s.id_hash) == handle) {
        Some(s) => store.end_user_session(user_id, &s.id_hash).await,
        None => Ok(false),
    }
}

/// One app holding access, as shown.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppView {
    pub client_id: String,
    pub name: String,
    /// What it may do, space-separated scopes (the union of its families and consent).
    pub scope: String,
    /// When access was first given (the oldest family or the consent).
    pub since: i64,
    /// The last refresh, if any.
    pub last_used_at: Option<i64>,
}

/// The apps holding a live refresh family or a remembered consent for the user, by name.
pub async fn apps(store: &Store, user_id: &str, now: i64) -> Result<Vec<AppView>, StoreError> {
    let mut by_client: BTreeMap<String, (Vec<String>, i64, Option<i64>)> = BTreeMap::new();
    let mut add = |client: &str, scope: &str, since: i64, used: Option<i64>| {
        let entry = by_client.entry(client.to_owned()).or_insert((Vec::new(), since, None));
        for s in scope.split(' ').filter(|s| !s.is_empty()) {
            if !entry.0.iter().any(|have| have == s) {
                entry.0.push(s.to_owned());
            }
        }
        entry.1 = entry.1.min(since);
        entry.2 = entry.2.max(used);
    };
    for g in store.user_grants(user_id, now).await? {
        add(&g.client_id, &g.scope, g.created_at, g.last_used_at);
    }
    for c in store.user_consents(user_id).await? {
        add(&c.client_id, &c.scope, c.granted_at, None);
    }
    let mut apps = Vec::with_capacity(by_client.len());
    for (client_id, (scopes, since, last_used_at)) in by_client {
        let name = store.client_by_id(&client_id).await?.map_or_else(|| client_id.clone(), |c| c.name);
        apps.push(AppView { client_id, name, scope: scopes.join(" "), since, last_used_at });
    }
    apps.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.client_id.cmp(&b.client_id)));
    Ok(apps)
}

/// Takes back everything the app holds for the user (see `Store::revoke_client_access`);
/// `here`, the node's deny-list, learns the JWTs at once. `false` when the app held nothing.
pub async fn revoke_app(
    store: &Store,
    here: Option<&DenyList>,
    user_id: &postern_store::UserId,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    if !apps(store, user_id, now).await?.iter().any(|a| a.client_id == client_id) {
        return Ok(false);
    }
    let revoked = store.revoke_client_access(user_id, client_id, now).await?;
    if let Some(deny) = here {
        for (jti, exp) in revoked {
            deny.add(jti, exp);
        }
    }
    Ok(true)
}
