//! Who is calling, once a credential has been checked, and the scope requirement.

use crate::GuardError;
use postern_verify::scope::{Scope, any_covers};

/// The `acr` of a sign-in with a second factor.
pub const MFA_ACR: &str = "urn:postern:mfa";

/// What kind of principal presented the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person: a user's access token or personal access token.
    User,
    /// An OAuth client acting for itself (client credentials: the subject is the client).
    Client,
    /// A service account, through one of its keys (subject `sa:<id>`).
    ServiceAccount,
}

/// What was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A JWT access token (RFC 9068), verified locally.
    Jwt,
    /// An opaque access token, checked by introspection.
    OpaqueToken,
    /// A Postern API key (`pst_…`), checked by introspection.
    ApiKey,
}

/// The authenticated caller, put into the request's extensions by the layer and taken out by
/// the [`Principal`] extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub`: a user id, a client id, or `sa:<id>` for a service account.
    pub subject: String,
    pub kind: PrincipalKind,
    pub credential: CredentialKind,
    /// The OAuth client the token was issued to; `None` for API keys.
    pub client_id: Option<String>,
    pub scopes: Vec<Scope>,
    /// Unix time after which the credential is no longer valid; `None` for a key without expiry.
    pub expires_at: Option<i64>,
    /// How the person signed in (RFC 8176: `pwd`, `otp`, `mfa`, …), from a JWT access token;
    /// empty for clients, API keys and opaque tokens.
    pub amr: Vec<String>,
    /// The authentication context of a JWT access token (`urn:postern:mfa` after a second
    /// factor).
    pub acr: Option<String>,
}

impl Principal {
    /// Whether the granted scopes cover `scope` (`project:*` covers `project:web`).
    pub fn has_scope(&self, scope: &str) -> bool {
        Scope::parse(scope).is_ok_and(|required| any_covers(&self.scopes, &required))
    }

    /// Whether the person signed in with a second factor.
    pub fn used_mfa(&self) -> bool {
        self.amr.iter().any(|a| a == "mfa") || self.acr.as_deref() == Some(MFA_ACR)
    }

    /// `Ok` when the person signed in with a second factor, else 401
    /// `insufficient_user_authentication` with `acr_values="urn:postern:mfa"` (RFC 9470), which
    /// tells the client to ask for a new token with that `acr_values`.
    pub fn require_mfa(&self) -> Result<(), GuardError> {
        if self.used_mfa() { Ok(()) } else { Err(GuardError::InsufficientUserAuthentication(MFA_ACR.to_owned())) }
    }

    /// `Ok` when the scopes cover `scope`, else 403 `insufficient_scope` naming it:
    /// `principal.require("billing:read")?;` in a handler returning `Result<_, GuardError>`.
    pub fn require(&self, scope: &str) -> Result<(), GuardError> {
        if self.has_scope(scope) { Ok(()) } else { Err(GuardError::InsufficientScope(scope.to_owned())) }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = GuardError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Without the layer there is no principal; answering 401 keeps a misconfigured route
        // closed rather than open.
        parts.extensions.get::<Principal>().cloned().ok_or(GuardError::Missing)
    }
}

impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Principal {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Principal>().cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_requirement_uses_the_one_coverage_rule() {
        let p = Principal {
            subject: "u1".into(),
            kind: PrincipalKind::User,
            credential: CredentialKind::ApiKey,
            client_id: None,
            scopes: postern_verify::scope::parse_list("project:* read"),
            expires_at: None,
            amr: Vec::new(),
            acr: None,
        };
        assert!(p.has_scope("project:web") && p.has_scope("read"));
        assert!(!p.has_scope("write") && !p.has_scope("projects") && !p.has_scope("bad scope"));
        assert_eq!(p.require("write"), Err(GuardError::InsufficientScope("write".into())));
        assert_eq!(p.require("project:x"), Ok(()));
        assert_eq!(p.require_mfa(), Err(GuardError::InsufficientUserAuthentication(MFA_ACR.into())));
        let stepped_up = Principal { amr: vec!["pwd".into(), "otp".into(), "mfa".into()], ..p };
        assert_eq!(stepped_up.require_mfa(), Ok(()));
    }
}
