//! Why a request was refused, as RFC 6750 §3 says to tell it: a `WWW-Authenticate: Bearer`
//! challenge with `error`, `error_description` and, for a missing scope, `scope`; the same fields
//! in a JSON body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// No credential at all: 401 with a bare challenge (RFC 6750 §3.1: no error code).
    #[error("no credential was presented")]
    Missing,
    /// Malformed request, such as two credentials at once: 400 `invalid_request`.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Not ours, expired, revoked, for another audience: 401 `invalid_token`.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// Valid, but without the scope the resource needs: 403 `insufficient_scope`.
    #[error("the {0} scope is required")]
    InsufficientScope(String),
    /// Valid, but the person did not sign in strongly enough: 401
    /// `insufficient_user_authentication` naming the `acr_values` to ask for (RFC 9470).
    #[error("a sign-in with {0} is required")]
    InsufficientUserAuthentication(String),
    /// Postern could not be asked (network, 5xx, our own client refused): 503, never cached.
    #[error("the authorization server is unavailable: {0}")]
    Unavailable(String),
}

impl GuardError {
    pub fn status(&self) -> StatusCode {
        match self {
            GuardError::Missing | GuardError::InvalidToken(_) | GuardError::InsufficientUserAuthentication(_) => {
                StatusCode::UNAUTHORIZED
            }
            GuardError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            GuardError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            GuardError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 error code, if this error has one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            GuardError::Missing => None,
            GuardError::InvalidRequest(_) => Some("invalid_request"),
            GuardError::InvalidToken(_) => Some("invalid_token"),
            GuardError::InsufficientScope(_) => Some("insufficient_scope"),
            GuardError::InsufficientUserAuthentication(_) => Some("insufficient_user_authentication"),
            GuardError::Unavailable(_) => Some("temporarily_unavailable"),
        }
    }

    fn description(&self) -> String {
        match self {
            GuardError::Missing => "a bearer token or an API key is required".into(),
            GuardError::InvalidRequest(d) | GuardError::InvalidToken(d) | GuardError::Unavailable(d) => d.clone(),
            GuardError::InsufficientScope(scope) => format!("the {scope} scope is required"),
            GuardError::InsufficientUserAuthentication(_) => "a sign-in with a second factor is required".into(),
        }
    }

    /// The `WWW-Authenticate` value. Descriptions are ours, but quotes and backslashes are
    /// still dropped so that the header stays a valid quoted-string.
    pub fn challenge(&self) -> String {
        let Some(code) = self.code() else {
            return "Bearer".into();
        };
        let quoted = |s: &str| s.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect::<String>();
        let mut value = format!("Bearer error=\"{code}\", error_description=\"{}\"", quoted(&self.description()));
        if let GuardError::InsufficientScope(scope) = self {
            value.push_str(&format!(", scope=\"{}\"", quoted(scope)));
        }
        if let GuardError::InsufficientUserAuthentication(acr) = self {
            value.push_str(&format!(", acr_values=\"{}\"", quoted(acr)));
        }
        value
    }
}

impl IntoResponse for GuardError {
    fn into_response(self) -> Response {
        let body = match self.code() {
            Some(code) => json!({ "error": code, "error_description": self.description() }),
            None => json!({ "error_description": self.description() }),
        };
        let mut response = (self.status(), Json(body)).into_response();
        let h = response.headers_mut();
        if matches!(
            self,
            GuardError::Missing
                | GuardError::InvalidToken(_)
                | GuardError::InsufficientScope(_)
                | GuardError::InsufficientUserAuthentication(_)
        ) && let Ok(v) = HeaderValue::from_str(&self.challenge())
        {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(GuardError::Missing.challenge(), "Bearer");
        assert_eq!(
            GuardError::InvalidToken("expired".into()).challenge(),
            r#"Bearer error="invalid_token", error_description="expired""#
        );
        assert_eq!(
            GuardError::InsufficientScope("project:web".into()).challenge(),
            r#"Bearer error="insufficient_scope", error_description="the project:web scope is required", scope="project:web""#
        );
        assert_eq!(GuardError::InvalidToken("a \"quoted\"\n\\x".into()).challenge().matches('"').count(), 4);
        let r = GuardError::InsufficientScope("a".into()).into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().contains("insufficient_scope"));
        assert_eq!(
            GuardError::InsufficientUserAuthentication("urn:postern:mfa".into()).challenge(),
            r#"Bearer error="insufficient_user_authentication", error_description="a sign-in with a second factor is required", acr_values="urn:postern:mfa""#
        );
        let r = GuardError::Unavailable("down".into()).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}
