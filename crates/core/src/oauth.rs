//! OAuth 2.0 protocol errors, named after their RFC codes, and the request-level rules shared by
//! the token, introspection and revocation endpoints.

use crate::scope::Scope;

/// An error a client receives in the RFC 6749 §5.2 JSON format. The `String` is a safe,
/// human-readable `error_description`; it never carries internal details.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// "The request is missing a required parameter, includes an unsupported parameter value
    /// (other than grant type), repeats a parameter, includes multiple credentials, utilizes
    /// more than one mechanism for authenticating the client, or is otherwise malformed."
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// "Client authentication failed (e.g., unknown client, no client authentication included,
    /// or unsupported authentication method)." `basic` records whether the client tried HTTP
    /// Basic, which obliges a 401 with `WWW-Authenticate`.
    #[error("invalid_client")]
    InvalidClient { basic: bool },
    /// "The provided authorization grant (e.g., authorization code, resource owner credentials)
    /// or refresh token is invalid, expired, revoked, does not match the redirection URI used in
    /// the authorization request, or was issued to another client."
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// "The authenticated client is not authorized to use this authorization grant type."
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    /// "The authorization grant type is not supported by the authorization server."
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// "The requested scope is invalid, unknown, malformed, or exceeds the scope granted by the
    /// resource owner."
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// RFC 8707 §2: "The requested resource is invalid, missing, unknown, or malformed."
    #[error("invalid_target: {0}")]
    InvalidTarget(String),
    /// RFC 7009 §2.2.1: "The authorization server does not support the revocation of the
    /// presented token type."
    #[error("unsupported_token_type")]
    UnsupportedTokenType,
    /// RFC 8628 §3.5: "The authorization request is still pending as the end user hasn't yet
    /// completed the user-interaction steps."
    #[error("authorization_pending")]
    AuthorizationPending,
    /// RFC 8628 §3.5: "the authorization request is still pending and polling should continue,
    /// but the interval MUST be increased by 5 seconds for this and all subsequent requests."
    #[error("slow_down")]
    SlowDown,
    /// RFC 8628 §3.5: "The authorization request was denied."
    #[error("access_denied")]
    AccessDenied,
    /// RFC 8628 §3.5: "The "device_code" has expired, and the device authorization session has
    /// concluded."
    #[error("expired_token")]
    ExpiredToken,
    /// RFC 6749 §4.1.2.1: "The authorization server does not support obtaining an
    /// authorization code using this method."
    #[error("unsupported_response_type")]
    UnsupportedResponseType,
    /// OpenID Connect Core §3.1.2.6: "The OP does not support use of the request parameter."
    #[error("request_not_supported")]
    RequestNotSupported,
    /// OpenID Connect Core §3.1.2.6: "The OP does not support use of the request_uri
    /// parameter."
    #[error("request_uri_not_supported")]
    RequestUriNotSupported,
    /// "The authorization server encountered an unexpected condition that prevented it from
    /// fulfilling the request."
    #[error("server_error")]
    ServerError,
    /// "The authorization server is currently unable to handle the request due to a temporary
    /// overloading or maintenance of the server."
    #[error("temporarily_unavailable")]
    TemporarilyUnavailable,
}

impl OAuthError {
    /// The RFC error code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::UnsupportedTokenType => "unsupported_token_type",
            OAuthError::AuthorizationPending => "authorization_pending",
            OAuthError::SlowDown => "slow_down",
            OAuthError::AccessDenied => "access_denied",
            OAuthError::ExpiredToken => "expired_token",
            OAuthError::UnsupportedResponseType => "unsupported_response_type",
            OAuthError::RequestNotSupported => "request_not_supported",
            OAuthError::RequestUriNotSupported => "request_uri_not_supported",
            OAuthError::ServerError => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The `error_description` sent to the client.
    pub fn description(&self) -> Option<String> {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidGrant(d)
            | OAuthError::UnauthorizedClient(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::InvalidTarget(d) => Some(d.clone()),
            OAuthError::InvalidClient { .. } => Some("client authentication failed".into()),
            OAuthError::UnsupportedGrantType => Some("unsupported grant_type".into()),
            OAuthError::UnsupportedTokenType => Some("this token type cannot be revoked".into()),
            OAuthError::AuthorizationPending => Some("the user has not approved the request yet".into()),
            OAuthError::SlowDown => Some("polling too fast; wait 5 seconds longer between requests".into()),
            OAuthError::AccessDenied => Some("the user denied the request".into()),
            OAuthError::ExpiredToken => Some("the device code has expired; start again".into()),
            OAuthError::UnsupportedResponseType => Some("only response_type=code is supported".into()),
            OAuthError::RequestNotSupported => Some("request objects (request) are not supported".into()),
            OAuthError::RequestUriNotSupported => {
                Some("request objects by reference (request_uri) are not supported".into())
            }
            OAuthError::ServerError => Some("internal error".into()),
            OAuthError::TemporarilyUnavailable => Some("try again shortly".into()),
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        OAuthError::InvalidRequest(d.into())
    }
}

/// Parses a `scope` parameter (RFC 6749 §3.3: space-delimited, order-free) into distinct scopes.
pub fn parse_scope_param(value: &str) -> Result<Vec<Scope>, OAuthError> {
    let mut out: Vec<Scope> = Vec::new();
    for token in value.split(' ').filter(|t| !t.is_empty()) {
        let scope = Scope::parse(token).map_err(|e| OAuthError::InvalidScope(e.to_string()))?;
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

/// The scopes to grant: those requested that the client is allowed, or all it is allowed when
/// none were requested (RFC 6749 §3.3 lets the server apply a default). Requesting only scopes
/// the client may not have is `invalid_scope`.
pub fn grant_scopes(requested: &[Scope], allowed: &[Scope]) -> Result<Vec<Scope>, OAuthError> {
    if requested.is_empty() {
        return Ok(allowed.to_vec());
    }
    let granted: Vec<Scope> = requested.iter().filter(|s| crate::scope::any_covers(allowed, s)).cloned().collect();
    if granted.is_empty() {
        return Err(OAuthError::InvalidScope("none of the requested scopes is allowed for this client".into()));
    }
    Ok(granted)
}

/// Scopes never granted to a person's client unless asked for by name: the scopes of Postern's
/// own API (key minting, sessions and apps, administration) and offline access.
pub const EXPLICIT_ONLY: [&str; 4] = ["postern:keys", "postern:account", "postern:admin", "offline_access"];

/// The scopes to grant on a person's behalf (authorization code, device flow): as
/// [`grant_scopes`], except that a request naming no scope gets the client's default scopes,
/// which are its allowed scopes without [`EXPLICIT_ONLY`].
pub fn grant_user_scopes(requested: &[Scope], allowed: &[Scope]) -> Result<Vec<Scope>, OAuthError> {
    if requested.is_empty() {
        let defaults: Vec<Scope> = allowed.iter().filter(|s| !EXPLICIT_ONLY.contains(&s.as_str())).cloned().collect();
        if defaults.is_empty() {
            return Err(OAuthError::InvalidScope("name the scopes to request (scope)".into()));
        }
        return Ok(defaults);
    }
    grant_scopes(requested, allowed)
}

/// When a client's grants get a refresh token: a value the storage applies to the scope it
/// finds inside its transaction (the scope of a code or an approved device request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshRule {
    /// The client may use the `refresh_token` grant.
    pub client_allows_refresh: bool,
    /// The client gets one even for OpenID requests without `offline_access`.
    pub always: bool,
}

impl RefreshRule {
    /// Whether a grant of `scope` starts a refresh-token family (see [`issues_refresh_token`]).
    pub fn issues_for(&self, scope: &str) -> bool {
        issues_refresh_token(scope, self.client_allows_refresh, self.always)
    }
}

/// Whether a grant with `scope` gets a refresh token: the client must be allowed the
/// `refresh_token` grant, and an OpenID request (with `openid`) must also ask for
/// `offline_access` (OIDC Core §11) unless the client is set to always get one.
pub fn issues_refresh_token(scope: &str, client_allows_refresh: bool, always: bool) -> bool {
    let has = |s: &str| scope.split(' ').any(|x| x == s);
    client_allows_refresh && (always || !has("openid") || has("offline_access"))
}

/// Whether `narrower` asks for nothing beyond `granted` (space-separated).
pub fn scope_within(narrower: &[Scope], granted: &str) -> bool {
    let granted = crate::scope::parse_list(granted);
    narrower.iter().all(|s| crate::scope::any_covers(&granted, s))
}

/// Joins scopes for a `scope` response member or claim.
pub fn scope_string(scopes: &[Scope]) -> String {
    scopes.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_person_gets_default_scopes_never_keys_or_offline_access_unasked() {
        let allowed = parse_scope_param("openid profile postern:keys offline_access").unwrap();
        let granted = grant_user_scopes(&[], &allowed).unwrap();
        assert_eq!(scope_string(&granted), "openid profile");
        let asked = parse_scope_param("openid postern:keys").unwrap();
        assert_eq!(scope_string(&grant_user_scopes(&asked, &allowed).unwrap()), "openid postern:keys");
        let only_keys = parse_scope_param("postern:keys").unwrap();
        assert!(matches!(grant_user_scopes(&[], &only_keys), Err(OAuthError::InvalidScope(_))));
    }

    use super::*;

    fn scopes(s: &str) -> Vec<Scope> {
        parse_scope_param(s).unwrap()
    }

    #[test]
    fn scope_parameter_and_grant() {
        assert_eq!(scope_string(&scopes("  read  write read ")), "read write");
        assert!(matches!(parse_scope_param("ok bad\"one"), Err(OAuthError::InvalidScope(_))));
        let allowed = scopes("read write");
        assert_eq!(scope_string(&grant_scopes(&scopes("write admin"), &allowed).unwrap()), "write");
        assert_eq!(scope_string(&grant_scopes(&[], &allowed).unwrap()), "read write");
        assert!(matches!(grant_scopes(&scopes("admin"), &allowed), Err(OAuthError::InvalidScope(_))));
        let wildcard = scopes("project:* read");
        assert_eq!(
            scope_string(&grant_scopes(&scopes("project:billing read x"), &wildcard).unwrap()),
            "project:billing read"
        );
        assert!(scope_within(&scopes("project:billing"), "project:* read"));
        assert!(!scope_within(&scopes("project:*"), "project:billing"));
    }

    #[test]
    fn refresh_tokens_for_openid_need_offline_access() {
        assert!(issues_refresh_token("read", true, false));
        assert!(!issues_refresh_token("read", false, true));
        assert!(!issues_refresh_token("openid email", true, false));
        assert!(issues_refresh_token("openid email", true, true), "a client set to always get one");
        assert!(issues_refresh_token("openid offline_access", true, false));
        assert!(scope_within(&scopes("read"), "read write"));
        assert!(!scope_within(&scopes("read admin"), "read write"));
    }

    #[test]
    fn codes_are_the_rfc_names() {
        assert_eq!(OAuthError::InvalidClient { basic: true }.code(), "invalid_client");
        assert_eq!(OAuthError::UnsupportedGrantType.code(), "unsupported_grant_type");
        assert_eq!(OAuthError::InvalidGrant("x".into()).description().as_deref(), Some("x"));
    }
}
