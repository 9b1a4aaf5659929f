//! The UserInfo endpoint (OIDC Core §5.3): a Bearer access token (RFC 6750 §2.1) with the
//! `openid` scope; claims released by scope. Errors carry `WWW-Authenticate: Bearer` with the
//! RFC 6750 §3.1 codes.

use crate::state::AppState;
use crate::tokens;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(crate) fn bearer_error(status: StatusCode, code: Option<&str>, description: &str) -> Response {
    let challenge = match code {
        Some(c) => format!("Bearer realm=\"postern\", error=\"{c}\", error_description=\"{description}\""),
        None => "Bearer realm=\"postern\"".to_owned(),
    };
    let mut r = (status, Json(json!({ "error": code.unwrap_or("invalid_request"), "error_description": description })))
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer_token(&headers) else {
        return bearer_error(StatusCode::UNAUTHORIZED, None, "a Bearer access token is required");
    };
    let active = match tokens::inspect_access_token(&state, token).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                "the access token is invalid or expired",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "userinfo: token lookup failed");
            return bearer_error(StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable"), "try again shortly");
        }
    };
    if !active.is_for(&state.issuer) {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the access token is for another audience",
        );
    }
    let scopes: Vec<&str> = active.scope.split(' ').collect();
    if !scopes.contains(&"openid") {
        return bearer_error(StatusCode::FORBIDDEN, Some("insufficient_scope"), "the openid scope is required");
    }
    let user = match state.store.user_by_id(&active.subject).await {
        Ok(Some(u)) if !u.disabled => u,
        Ok(_) => {
            return bearer_error(StatusCode::UNAUTHORIZED, Some("invalid_token"), "the token's user is gone");
        }
        Err(e) => {
            tracing::error!(error = %e, "userinfo: user lookup failed");
            return bearer_error(StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable"), "try again shortly");
        }
    };
    let mut body = json!({ "sub": user.id });
    if scopes.contains(&"email") {
        body["email"] = json!(user.email);
        body["email_verified"] = json!(user.email_verified);
    }
    // Claims without a value are left out, not sent as null (OpenID Connect Core §5.3.2).
    if let (true, Some(name)) = (scopes.contains(&"profile"), &user.display_name) {
        body["name"] = json!(name);
    }
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
