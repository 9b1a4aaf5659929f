//! The UserInfo endpoint (OIDC Core §5.3): a Bearer access token (RFC 6750 §2.1) with the
//! `openid` scope; claims released by scope. Errors carry `WWW-Authenticate: Bearer` with the
//! RFC 6750 §3.1 codes. The user is read through the node's [`crate::known_users`].

use crate::error::ApiError;
use crate::state::AppState;
use crate::tokens;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(token) = bearer_token(&headers) else {
        return Err(ApiError::Unauthenticated("a Bearer access token is required".into()));
    };
    let Some(active) = tokens::inspect_access_token(&state, token).await? else {
        return Err(ApiError::InvalidToken("the access token is invalid or expired".into()));
    };
    if !active.is_for(&state.issuer) {
        return Err(ApiError::InvalidToken("the access token is for another audience".into()));
    }
    let scopes: Vec<&str> = active.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return Err(ApiError::InsufficientScope("the openid scope is required".into()));
    }
    let Some(user) = state.node.users.enabled(&state.store, &active.sub, state.now()).await? else {
        return Err(ApiError::InvalidToken("the token's user is gone".into()));
    };
    let email = scopes.contains(&"email");
    let body = UserInfo {
        sub: &active.sub,
        email: email.then_some(user.email.as_str()),
        email_verified: email.then_some(user.email_verified),
        // Claims without a value are left out, not sent as null (OpenID Connect Core §5.3.2).
        name: user.name.as_deref().filter(|_| scopes.contains(&"profile")),
    };
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The claims released, by scope: `sub` always, `email` and `email_verified` with `email`,
/// `name` with `profile`.
#[derive(Serialize)]
struct UserInfo<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}
