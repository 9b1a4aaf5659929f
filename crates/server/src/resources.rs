//! Protected resources (RFC 8707 resource indicators): the APIs tokens are minted for. A
//! resource's identifier is an absolute URI without a fragment and becomes the audience of the
//! tokens issued for it; it has a name and the scopes it defines. Clients are allowed resources
//! explicitly, and a request naming another gets `invalid_target` ([`audiences`]); what a
//! person approved, or a refresh family started with, may only narrow ([`bound_audiences`]).
//! A resource server introspects with its own credentials, a confidential client linked to the
//! resource ([`set_introspector`]), and sees only the credentials issued for it ([`may_see`]).

use crate::clients::{self, Registration};
use crate::config::TokenConfig;
use postern_core::client::{ClientType, GrantType};
use postern_core::oauth::OAuthError;
use postern_core::secret::BearerSecret;
use postern_store::{Client, ClientId, Resource, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("{0}")]
    Invalid(String),
    #[error("a resource {0} is registered already")]
    Exists(String),
    #[error("no resource {0} is registered")]
    NotFound(String),
    #[error(transparent)]
    Store(StoreError),
}

/// Whether `text` can name a resource (RFC 8707 §2): an absolute URI without a fragment, with
/// no whitespace or control characters.
pub fn is_identifier(text: &str) -> bool {
    !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && url::Url::parse(text).is_ok_and(|u| u.fragment().is_none())
}

/// The audiences of a new token for `client` (RFC 8707): the `resource` parameters, each an
/// absolute URI without a fragment that is the issuer (Postern's own APIs) or a registered
/// resource the client may use (`invalid_target` otherwise). Without `resource`: the client's
/// one resource if it has exactly one, else the issuer.
pub fn audiences(issuer: &str, client: &Client, requested: &[&str]) -> Result<Vec<String>, OAuthError> {
    if requested.is_empty() {
        return Ok(match client.resources.as_slice() {
            [only] => vec![only.clone()],
            _ => vec![issuer.to_owned()],
        });
    }
    let mut out: Vec<String> = Vec::new();
    for r in requested {
        if !is_identifier(r) {
            return Err(OAuthError::InvalidTarget(format!(
                "resource {r:?} must be an absolute URI without a fragment"
            )));
        }
        if *r != issuer && !client.resources.iter().any(|allowed| allowed == r) {
            return Err(OAuthError::InvalidTarget(format!("this client may not ask for the resource {r}")));
        }
        if !out.iter().any(|o| o == r) {
            out.push((*r).to_owned());
        }
    }
    Ok(out)
}

/// The audiences of a token issued on a grant whose audience was fixed earlier (`bound`,
/// space-separated: the resources an authorization request named, a refresh family's first
/// audience): the request may narrow it, never name another (`invalid_target`); without
/// `resource`, all of it. An empty `bound` fixes nothing ([`audiences`] decides).
pub fn bound_audiences(
    issuer: &str,
    client: &Client,
    bound: &str,
    requested: &[&str],
) -> Result<Vec<String>, OAuthError> {
    let bound: Vec<&str> = bound.split_whitespace().collect();
    if bound.is_empty() {
        return audiences(issuer, client, requested);
    }
    if let Some(other) = requested.iter().find(|r| !bound.contains(r)) {
        return Err(OAuthError::InvalidTarget(format!("the resource {other} was not granted")));
    }
    // Still allowed now (a resource removed since stops being issued for).
    audiences(issuer, client, if requested.is_empty() { &bound } else { requested })
}

/// The resources `bound` names (space-separated), as the consent pages show them:
/// "Projects API (https://api.example.org)", or the identifier alone if it is not registered.
pub async fn describe(store: &Store, bound: &str) -> Vec<String> {
    let mut out = Vec::new();
    for id in bound.split_whitespace() {
        out.push(match store.resource(id).await {
            Ok(Some(r)) => format!("{} ({id})", r.name),
            _ => id.to_owned(),
        });
    }
    out
}

/// The audience of an API key with these scopes (space-separated): every registered resource
/// that defines one of them (by name: `project` covers `project:web`); empty when none does,
/// and the key is then for the issuer.
pub async fn key_audience(store: &Store, scopes: &[postern_core::scope::Scope]) -> Result<String, StoreError> {
    let names: Vec<&str> = scopes.iter().map(|s| s.as_str().split(':').next().unwrap_or_default()).collect();
    let audience: Vec<String> = store
        .resources()
        .await?
        .into_iter()
        .filter(|r| {
            r.scopes.split_whitespace().any(|defined| names.contains(&defined.split(':').next().unwrap_or_default()))
        })
        .map(|r| r.identifier)
        .collect();
    Ok(audience.join(" "))
}

/// Whether introspection may describe a credential to `caller` (RFC 7662 §4): to the client
/// it was issued to (`holder`; API keys have none), and to the resource servers it is for,
/// each introspecting with its resource's credentials. Anyone else learns only that it is not
/// active for them, so a token minted for one API is never accepted by another that asks.
pub fn may_see<'a>(caller: &Client, holder: Option<&str>, mut audience: impl Iterator<Item = &'a str>) -> bool {
    holder == Some(caller.client_id.as_str()) || audience.any(|aud| caller.introspects.iter().any(|r| r == aud))
}

/// Who a resource server introspects as.
#[derive(Debug, Clone, Copy)]
pub enum Introspector<'a> {
    /// A confidential client made for it now, which can do nothing but introspect (its
    /// client-credentials grant has no scopes).
    New,
    /// An existing confidential client (an app that is also a resource server).
    Existing(&'a str),
}

/// Links `identifier` to the client its resource server introspects with; returns that
/// client's id, and its secret when it was made now (shown once). A resource has one such
/// client; linking another unlinks the previous one.
pub async fn set_introspector(
    store: &Store,
    tokens: &TokenConfig,
    identifier: &str,
    who: Introspector<'_>,
    now: i64,
) -> Result<(ClientId, Option<BearerSecret>), ResourceError> {
    let resource = store
        .resource(identifier)
        .await
        .map_err(ResourceError::Store)?
        .ok_or_else(|| ResourceError::NotFound(identifier.to_owned()))?;
    let (client_id, secret) = match who {
        Introspector::New => {
            let mut r = Registration::new(&format!("{} (introspection)", resource.name), ClientType::Confidential);
            r.grant_types = vec![GrantType::ClientCredentials];
            let made = clients::register(store, tokens, r, now).await.map_err(|e| match e {
                clients::ClientError::Store(e) => ResourceError::Store(e),
                other => ResourceError::Invalid(other.to_string()),
            })?;
            (made.client.client_id, made.secret)
        }
        Introspector::Existing(id) => {
            let found = store.client_by_id(id).await.map_err(ResourceError::Store)?;
            match found {
                Some(c) if c.client_type == ClientType::Confidential => (c.client_id, None),
                Some(_) => {
                    return Err(ResourceError::Invalid(format!("{id} is a public client: it cannot introspect")));
                }
                None => return Err(ResourceError::Invalid(format!("no client {id}"))),
            }
        }
    };
    store.set_resource_introspector(identifier, Some(client_id.as_str()), now).await.map_err(ResourceError::Store)?;
    Ok((client_id, secret))
}

/// A resource's scopes, checked and space-separated.
fn scope_text(scopes: &[String]) -> Result<String, ResourceError> {
    for s in scopes {
        postern_core::scope::Scope::parse(s).map_err(|e| ResourceError::Invalid(format!("scope {s:?}: {e}")))?;
    }
    Ok(scopes.join(" "))
}

fn checked_name(name: &str) -> Result<String, ResourceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ResourceError::Invalid("a name is 1 to 100 characters, without control characters".into()));
    }
    Ok(name.to_owned())
}

/// Registers a resource.
pub async fn add(
    store: &Store,
    identifier: &str,
    name: &str,
    scopes: &[String],
    now: i64,
) -> Result<Resource, ResourceError> {
    if !is_identifier(identifier) {
        return Err(ResourceError::Invalid(format!("{identifier:?} is not an absolute URI without a fragment")));
    }
    let resource = Resource {
        identifier: identifier.to_owned(),
        name: checked_name(name)?,
        scopes: scope_text(scopes)?,
        introspector_id: None,
        created_at: now,
        updated_at: now,
        open_to_self_registered: false,
    };
    store.add_resource(&resource).await.map_err(|e| match e {
        StoreError::Conflict(_) => ResourceError::Exists(identifier.to_owned()),
        other => ResourceError::Store(other),
    })?;
    Ok(resource)
}

/// Renames a resource or replaces its scopes (what is `None` stays).
pub async fn update(
    store: &Store,
    identifier: &str,
    name: Option<&str>,
    scopes: Option<&[String]>,
    now: i64,
) -> Result<Resource, ResourceError> {
    let found = store.resource(identifier).await.map_err(ResourceError::Store)?;
    let mut resource = found.ok_or_else(|| ResourceError::NotFound(identifier.to_owned()))?;
    if let Some(name) = name {
        resource.name = checked_name(name)?;
    }
    if let Some(scopes) = scopes {
        resource.scopes = scope_text(scopes)?;
    }
    resource.updated_at = now;
    store.update_resource(identifier, &resource.name, &resource.scopes, now).await.map_err(|e| match e {
        StoreError::NotFound(_) => ResourceError::NotFound(identifier.to_owned()),
        other => ResourceError::Store(other),
    })?;
    Ok(resource)
}

/// Removes a resource; no client may ask for it any more.
pub async fn remove(store: &Store, identifier: &str) -> Result<(), ResourceError> {
    store.remove_resource(identifier).await.map_err(|e| match e {
        StoreError::NotFound(_) => ResourceError::NotFound(identifier.to_owned()),
        other => ResourceError::Store(other),
    })
}

/// Replaces the resources `client_id` may ask tokens for; each must be registered.
pub async fn allow(store: &Store, client_id: &str, resources: &[String]) -> Result<(), ResourceError> {
    for r in resources {
        if store.resource(r).await.map_err(ResourceError::Store)?.is_none() {
            return Err(ResourceError::NotFound(r.clone()));
        }
    }
    store.set_client_resources(client_id, resources).await.map_err(|e| match e {
        StoreError::NotFound(_) => ResourceError::NotFound(resources.join(", ")),
        other => ResourceError::Store(other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_absolute_uris_without_fragments() {
        assert!(is_identifier("https://api.example.org"));
        assert!(is_identifier("https://api.example.org/v1?tenant=a"));
        assert!(is_identifier("urn:example:api"));
        assert!(!is_identifier("api.example.org"));
        assert!(!is_identifier("/relative"));
        assert!(!is_identifier("https://api.example.org/#part"));
        assert!(!is_identifier("https://api.example.org/a b"));
        assert!(!is_identifier("https://api.example.org/\u{0}"));
    }
}
