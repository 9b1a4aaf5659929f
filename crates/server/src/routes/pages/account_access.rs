//! The account page's sessions and apps: sign out one browser, sign out everywhere else, revoke
//! an app. Thin over `crate::access`; each answer is the account page with a notice. Every
//! form is posted from the page itself (same `Origin`, CSRF token), and names only the user's
//! own sessions and apps.

use crate::routes::pages::account::{Banner, failed, field, posted, render_page, unavailable};
use crate::session;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

/// `POST /account/sessions/end`: signs one of the user's other browsers out, at once.
pub async fn end_session(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let (user, fields) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match crate::access::end_session(&state.store, &user.id, field(&fields, "session"), state.now()).await {
        Ok(true) => {
            crate::routes::pages::account::audit(&state, &user.id, "session.ended", &user.id, json!({})).await;
            let banner = Banner { notice: Some("That browser is signed out."), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::OK, banner).await
        }
        Ok(false) => failed(&state, &headers, &user, "That browser is not signed in any more.").await,
        Err(e) => unavailable(&state, &headers, &user, e).await,
    }
}

/// `POST /account/sessions/end-others`: every browser but this one is signed out.
pub async fn end_other_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, _) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let current = match session::current(&state, &headers).await {
        Ok(Some((hash, _))) => hash,
        Ok(None) => return failed(&state, &headers, &user, "You are not signed in.").await,
        Err(e) => return unavailable(&state, &headers, &user, e).await,
    };
    match state.store.end_user_sessions(&user.id, Some(&current)).await {
        Ok(ended) => {
            let details = json!({ "ended": ended });
            crate::routes::pages::account::audit(&state, &user.id, "session.ended_others", &user.id, details).await;
            let banner = Banner { notice: Some("Every other browser is signed out."), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::OK, banner).await
        }
        Err(e) => unavailable(&state, &headers, &user, e).await,
    }
}

/// `POST /account/apps/revoke`: the app loses every token and the remembered consent.
pub async fn revoke_app(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let (user, fields) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let client_id = field(&fields, "client_id");
    let here = Some(&state.node.revoked);
    match crate::access::revoke_app(&state.store, here, &user.id, client_id, state.now()).await {
        Ok(true) => {
            crate::routes::pages::account::audit(&state, &user.id, "app.revoked", client_id, json!({})).await;
            let banner = Banner { notice: Some("The app's access is revoked."), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::OK, banner).await
        }
        Ok(false) => failed(&state, &headers, &user, "That app holds no access to your account.").await,
        Err(e) => unavailable(&state, &headers, &user, e).await,
    }
}
