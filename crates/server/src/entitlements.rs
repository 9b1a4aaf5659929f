//! Scopes are not entitlements: a scope being registered says what it means, not who may hold
//! it. A principal may put a scope on an API key only when it is entitled to it:
//!
//! - an admin user is entitled to every registered scope;
//! - any other user, to the scopes an admin granted them (`postern admin user grant`);
//! - a service account, to the scopes an admin granted it, or its owner granted it within the
//!   owner's own entitlements.
//!
//! `name:*` entitles to every `name:value` (the one coverage rule, `core::scope::covers`).
//! Taking an entitlement away revokes at once every key of that principal that carries a
//! scope no longer covered, and, for a user, the grants they made to their service accounts
//! that they no longer cover (with those accounts' keys). A key made with an access token may
//! also carry only scopes the token covers (see `apikeys::KeyRequest::within`).

use crate::apikeys::registered;
use postern_core::scope::{Scope, any_covers};
use postern_store::entitlements::BY_ADMIN;
use postern_store::{KeyOwner, Store, StoreError};

/// What a principal may hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entitled {
    /// An admin: every registered scope.
    Every,
    Scopes(Vec<Scope>),
}

impl Entitled {
    pub fn covers(&self, scope: &Scope) -> bool {
        match self {
            Entitled::Every => true,
            Entitled::Scopes(granted) => any_covers(granted, scope),
        }
    }
}

/// Who grants an entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantor<'a> {
    Admin,
    /// The owner of the service account being granted, within their own entitlements.
    Owner(&'a str),
}

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Shown to the caller as it is.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The first of `scopes` that the scope of the access token a request came with (`within`)
/// does not cover: a token cannot mint a key, or grant a scope, wider than itself. `None` for
/// a request without a token.
pub fn beyond_token<'s>(within: Option<&str>, scopes: &'s [String]) -> Option<&'s String> {
    let within = postern_core::scope::parse_list(within?);
    scopes.iter().find(|s| Scope::parse(s).is_ok_and(|s| !any_covers(&within, &s)))
}

/// How a key's owner is written as a principal: the user id, or `sa:<id>`.
pub fn principal(owner: KeyOwner<'_>) -> String {
    match owner {
        KeyOwner::User(id) => id.to_owned(),
        KeyOwner::ServiceAccount(id) => format!("sa:{id}"),
    }
}

/// What `owner` is entitled to now.
pub async fn of(store: &Store, owner: KeyOwner<'_>) -> Result<Entitled, StoreError> {
    if let KeyOwner::User(id) = owner
        && store.user_by_id(id).await?.is_some_and(|u| u.is_admin)
    {
        return Ok(Entitled::Every);
    }
    let grants = store.entitlements(&principal(owner)).await?;
    Ok(Entitled::Scopes(grants.iter().filter_map(|g| Scope::parse(&g.scope).ok()).collect()))
}

/// Grants registered `scopes` to `owner`; an owner may grant their service account only what
/// they are entitled to themselves.
pub async fn grant(
    store: &Store,
    owner: KeyOwner<'_>,
    scopes: &[String],
    by: Grantor<'_>,
    now: i64,
) -> Result<(), GrantError> {
    if scopes.is_empty() {
        return Err(GrantError::Invalid("name at least one scope".into()));
    }
    let registry = store.scopes().await?;
    let grantor = match by {
        Grantor::Admin => None,
        Grantor::Owner(user) => Some(of(store, KeyOwner::User(user)).await?),
    };
    for s in scopes {
        let scope = Scope::parse(s).map_err(|e| GrantError::Invalid(e.to_string()))?;
        if !registered(&registry, &scope) {
            return Err(GrantError::Invalid(format!("the scope {s:?} is not registered (postern admin scope list)")));
        }
        if grantor.as_ref().is_some_and(|g| !g.covers(&scope)) {
            return Err(GrantError::Invalid(format!("you are not entitled to the scope {s:?} yourself")));
        }
    }
    let list: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let by = match by {
        Grantor::Admin => BY_ADMIN,
        Grantor::Owner(user) => user,
    };
    store.grant_entitlements(&principal(owner), &list, by, now).await?;
    Ok(())
}

/// Takes `scopes` away from `owner`, then revokes what no longer holds (see the module
/// docs). Returns the ids of the keys revoked.
pub async fn revoke(
    store: &Store,
    owner: KeyOwner<'_>,
    scopes: &[String],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let list: Vec<&str> = scopes.iter().map(String::as_str).collect();
    store.revoke_entitlements(&principal(owner), &list).await?;
    enforce(store, owner, now).await
}

/// Revokes the keys of `owner` that carry a scope it is no longer entitled to and, for a user,
/// the grants they made that they no longer cover (and the keys those grants carried).
pub async fn enforce(store: &Store, owner: KeyOwner<'_>, now: i64) -> Result<Vec<String>, StoreError> {
    let entitled = of(store, owner).await?;
    let mut revoked = Vec::new();
    for key in store.api_keys(Some(owner)).await? {
        let uncovered = key.scope.split(' ').filter(|s| !s.is_empty()).any(|s| match Scope::parse(s) {
            Ok(scope) => !entitled.covers(&scope),
            Err(_) => true,
        });
        if key.revoked_at.is_none() && uncovered && store.revoke_api_key(&key.id, now).await? {
            revoked.push(key.id);
        }
    }
    if let KeyOwner::User(user) = owner {
        let mut affected: Vec<String> = Vec::new();
        for g in store.entitlements_granted_by(user).await? {
            let covered = Scope::parse(&g.scope).is_ok_and(|s| entitled.covers(&s));
            if !covered {
                store.revoke_entitlements(&g.principal, &[g.scope.as_str()]).await?;
                if !affected.contains(&g.principal) {
                    affected.push(g.principal);
                }
            }
        }
        for principal in affected {
            if let Some(sa) = principal.strip_prefix("sa:") {
                revoked.extend(Box::pin(enforce(store, KeyOwner::ServiceAccount(sa), now)).await?);
            }
        }
    }
    Ok(revoked)
}
