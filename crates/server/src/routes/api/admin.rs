//! The admin JSON API: `POST /api/admin/invitations` (`{"email": …, "scopes": […]}`) invites
//! someone, as `postern admin user invite` does; the link goes out by email. Callers are
//! admins: an admin's browser session (same origin) or an admin's access token with
//! [`ADMIN_SCOPE`]; never an API key.

use crate::error::ApiError;
use crate::invitations::{self, INVITE_SECS, InviteError};
use crate::routes::api::{authenticate, json_response};
use crate::routes::pages::account::audit;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

/// The scope an admin's access token needs for the admin API.
pub const ADMIN_SCOPE: &str = "postern:admin";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    email: String,
    #[serde(default)]
    scopes: Vec<String>,
}

/// `POST /api/admin/invitations`.
pub async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<InviteBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, ADMIN_SCOPE).await?;
    if !state.store.user_by_id(&caller.user_id).await?.is_some_and(|u| u.is_admin && !u.disabled) {
        return Err(ApiError::Forbidden("only admins invite people".into()));
    }
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text().into()))?;
    let invited = match invitations::invite(&state.store, &body.email, &body.scopes, state.now()).await {
        Ok(i) => i,
        Err(InviteError::Email) => return Err(ApiError::BadRequest("not a valid email address".into())),
        Err(e @ InviteError::Exists(_)) => return Err(ApiError::Conflict(e.to_string().into())),
        Err(InviteError::Scopes(m)) => return Err(ApiError::BadRequest(m.into())),
        Err(InviteError::Store(e)) => return Err(e.into()),
    };
    let u = &invited.user;
    state.mail.send(state.letters().invitation(&u.email, invited.token.expose(), INVITE_SECS / 86_400));
    audit(&state, &caller.user_id, "user.invite", &u.id, json!({ "email": u.email, "scopes": body.scopes })).await;
    let answer = json!({ "user": { "id": u.id, "email": u.email }, "expires_at": invited.expires_at });
    Ok(json_response(StatusCode::CREATED, answer))
}
