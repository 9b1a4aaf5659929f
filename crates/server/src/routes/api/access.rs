//! `/api/sessions` and `/api/apps`: where the caller is signed in and which apps hold access
//! to their account, with the same actions as the account page. Authenticated as the rest of
//! the API (`super::authenticate`), with [`ACCOUNT_SCOPE`] for access tokens.
//!
//! - `GET /api/sessions`: the caller's browser sessions (`current` marks the asking one).
//! - `DELETE /api/sessions/{id}`: signs one out. `DELETE /api/sessions`: signs out every
//!   session but the asking one (all of them for an access token).
//! - `GET /api/apps`: the apps holding a refresh-token family or a remembered consent.
//! - `DELETE /api/apps/{client_id}`: revokes what the app holds.

use crate::error::ApiError;
use crate::routes::api::{authenticate, json_response};
use crate::routes::pages::account::audit;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

/// The scope an access token needs for the caller's sessions and apps.
pub const ACCOUNT_SCOPE: &str = "postern:account";

/// `GET /api/sessions`.
pub async fn sessions(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, false, ACCOUNT_SCOPE).await?;
    let list = crate::access::sessions(&state.store, &caller.user_id, caller.session.as_ref(), state.now()).await?;
    Ok(json_response(StatusCode::OK, json!({ "sessions": list })))
}

/// `DELETE /api/sessions/{id}`.
pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, ACCOUNT_SCOPE).await?;
    if !crate::access::end_session(&state.store, &caller.user_id, &id, state.now()).await? {
        return Err(ApiError::NotFound("no such session".into()));
    }
    audit(&state, &caller.user_id, "session.ended", &caller.user_id, json!({})).await;
    Ok(json_response(StatusCode::OK, json!({ "ended": 1 })))
}

/// `DELETE /api/sessions`: every session but the asking one.
pub async fn end_other_sessions(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, ACCOUNT_SCOPE).await?;
    let ended = state.store.end_user_sessions(&caller.user_id, caller.session.as_ref()).await?;
    audit(&state, &caller.user_id, "session.ended_others", &caller.user_id, json!({ "ended": ended })).await;
    Ok(json_response(StatusCode::OK, json!({ "ended": ended })))
}

/// `GET /api/apps`.
pub async fn apps(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, false, ACCOUNT_SCOPE).await?;
    let list = crate::access::apps(&state.store, &caller.user_id, state.now()).await?;
    Ok(json_response(StatusCode::OK, json!({ "apps": list })))
}

/// `DELETE /api/apps/{client_id}`.
pub async fn revoke_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, ACCOUNT_SCOPE).await?;
    let here = Some(&state.node.revoked);
    if !crate::access::revoke_app(&state.store, here, &caller.user_id, &client_id, state.now()).await? {
        return Err(ApiError::NotFound("no such app holds access".into()));
    }
    audit(&state, &caller.user_id, "app.revoked", &client_id, json!({})).await;
    Ok(json_response(StatusCode::OK, json!({ "revoked": client_id })))
}
