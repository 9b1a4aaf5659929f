//! The JSON API for people's own credentials and access: `/api/keys` and
//! `/api/service-accounts` (keys), `/api/sessions` and `/api/apps` (where they are signed in,
//! which apps hold access); and for admins, `/api/admin/…`. Errors are RFC 6750 challenges and JSON
//! (`crate::error::ApiError`).
//!
//! Every call is authenticated by the browser session (state-changing calls must come from our
//! own origin; they send JSON or no body, which a cross-site form cannot do without a CORS
//! preflight Postern never grants) or by a user's access token carrying the surface's scope. An
//! API key is refused with 403, whatever its scopes: a leaked key cannot mint keys or end
//! sessions.

pub mod access;
pub mod admin;
pub mod keys;

use crate::error::ApiError;
use crate::routes::oauth::userinfo::bearer_token;
use crate::state::AppState;
use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use postern_core::secret::TokenHash;
use postern_store::UserId;

/// Who is calling, once authenticated.
pub(crate) struct Caller {
    pub user_id: UserId,
    /// The scope of the access token the caller came with (none for a browser session).
    pub token_scope: Option<String>,
    /// The caller's browser session, when it came with one.
    pub session: Option<TokenHash>,
}

pub(crate) fn invalid_token(description: &'static str) -> ApiError {
    ApiError::InvalidToken(description.into())
}

/// The presented API key, from `Authorization: Bearer pst_…` or `X-API-Key`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = bearer_token(headers).filter(|t| postern_core::apikey::looks_like_key(t));
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim))
}

/// The caller: a browser session (same origin for `changes`), or a user's access token for
/// Postern itself carrying `scope`; never an API key.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    changes: bool,
    scope: &'static str,
) -> Result<Caller, ApiError> {
    if let Some(key) = presented_key(headers) {
        return match state.node.api_keys.verify(&state.store, key, None, state.now()).await {
            Ok(Some(_)) => {
                Err(ApiError::InsufficientScope("API keys cannot be used here; sign in or use an access token".into()))
            }
            Ok(None) => Err(invalid_token("the API key is invalid, expired or revoked")),
            Err(e) => Err(e.into()),
        };
    }
    if let Some(token) = bearer_token(headers) {
        let active = match crate::tokens::inspect_access_token(state, token).await {
            Ok(Some(t)) => t,
            Ok(None) => return Err(invalid_token("the access token is invalid or expired")),
            Err(e) => return Err(e.into()),
        };
        if !active.is_for(&state.issuer) {
            return Err(invalid_token("the access token is for another audience"));
        }
        if !active.scope.split(' ').any(|s| s == scope) {
            return Err(ApiError::InsufficientScope(format!("the {scope} scope is required").into()));
        }
        // Client-credentials tokens have the client as subject: only users hold these.
        return match state.store.user_by_id(&active.sub).await {
            Ok(Some(u)) if !u.disabled => {
                Ok(Caller { user_id: u.id, token_scope: Some(active.scope.clone()), session: None })
            }
            Ok(_) => Err(invalid_token("the access token does not belong to a user")),
            Err(e) => Err(e.into()),
        };
    }
    if let Some((hash, session)) = crate::session::current(state, headers).await? {
        if changes && !crate::routes::pages::same_origin(state, headers) {
            return Err(ApiError::Forbidden("cross-origin request refused".into()));
        }
        return Ok(Caller { user_id: session.user_id, token_scope: None, session: Some(hash) });
    }
    Err(ApiError::Unauthenticated("sign in, or send a Bearer access token".into()))
}

/// A JSON answer that is never cached.
pub(crate) fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    crate::error::no_store(&mut r);
    r
}
