//! Signing out, including OpenID Connect RP-Initiated Logout 1.0.
//!
//! `GET /logout` takes `id_token_hint`, `client_id`, `post_logout_redirect_uri` and `state`. A
//! hint signed by us for the signed-in user ends the session at once; without one, the user
//! confirms on a page (so that a link on another site cannot sign anyone out). The browser goes
//! back only to a `post_logout_redirect_uri` registered for the client, exactly; anything else
//! is shown on an error page, never redirected.

use crate::error::PageError;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::routes::pages::login::with_cookie;
use crate::routes::pages::{FormTarget, Policy, message, page_with, same_origin};
use crate::session::{self, SESSION_COOKIE};
use crate::state::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postern_core::jwt;
use postern_core::oidc::IdClaims;
use postern_pages::{LogoutPage, render};
use postern_store::Client;

/// A validated logout request.
struct Request {
    client: Option<Client>,
    redirect: Option<String>,
    state: Option<String>,
    /// The `sub` of a valid `id_token_hint`.
    hinted_user: Option<String>,
}

fn bad(text: &str) -> Response {
    message(StatusCode::BAD_REQUEST, "This sign-out request cannot be completed", text)
}

/// Verifies a hint we signed, ignoring its expiry (RP-Initiated Logout §2). Only an ID token
/// (`typ: JWT`) is a hint; an access token (`at+jwt`) is not.
fn verify_hint(state: &AppState, hint: &str) -> Option<IdClaims> {
    let keys = state.keys.keys();
    let (_, claims): (_, IdClaims) = jwt::verify(hint, Some("JWT"), |kid| keys.verifying.get(kid)).ok()?;
    (claims.iss == *state.issuer).then_some(claims)
}

/// Validates a logout request; `Err` holds what the error page says.
async fn validate(state: &AppState, q: &OAuthForm) -> Result<Request, String> {
    let bad = |text: &str| text.to_owned();
    let one = |name| q.one(name).map_err(|e| e.description().unwrap_or_default());
    let hint = match one("id_token_hint")? {
        Some(h) => Some(verify_hint(state, h).ok_or_else(|| bad("The id_token_hint was not issued by this server."))?),
        None => None,
    };
    let hinted_client = hint.as_ref().and_then(|h| h.aud.0.first().cloned());
    let client_id = match (one("client_id")?, &hinted_client) {
        (Some(c), Some(h)) if c != h => return Err(bad("client_id does not match the id_token_hint.")),
        (Some(c), _) => Some(c.to_owned()),
        (None, h) => h.clone(),
    };
    let client = match &client_id {
        Some(id) => Some(
            state
                .store
                .client_by_id(id)
                .await
                .ok()
                .flatten()
                .ok_or_else(|| bad("The application is not registered here."))?,
        ),
        None => None,
    };
    let redirect = match one("post_logout_redirect_uri")? {
        Some(uri) => {
            let registered =
                client.as_ref().is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r.as_str() == uri));
            if !registered {
                return Err(bad("The address to return to is not registered for this application."));
            }
            Some(uri.to_owned())
        }
        None => None,
    };
    Ok(Request { client, redirect, state: one("state")?.map(str::to_owned), hinted_user: hint.map(|h| h.sub) })
}

/// Ends the session (if any) and sends the browser on.
async fn finish(state: &AppState, headers: &HeaderMap, req: &Request) -> Response {
    // A session that cannot be read cannot be ended either: say so rather than "signed out".
    match session::current(state, headers).await {
        Ok(Some((hash, _))) => {
            if let Err(e) = state.store.delete_session(&hash).await {
                return PageError::failed(e, "You could not be signed out. Try again shortly.").into_response();
            }
        }
        Ok(None) => {}
        Err(e) => return PageError::failed(e, "You could not be signed out. Try again shortly.").into_response(),
    }
    let cleared = session::set_cookie(state, &session::cookie_name(state, SESSION_COOKIE), "", Some(0));
    let response = match &req.redirect {
        Some(uri) => match url::Url::parse(uri) {
            Ok(mut url) => {
                if let Some(s) = &req.state {
                    url.query_pairs_mut().append_pair("state", s);
                }
                Redirect::to(url.as_str()).into_response()
            }
            Err(_) => bad("The address to return to is not valid."),
        },
        None => message(StatusCode::OK, "Signed out", "You are signed out."),
    };
    with_cookie(response, Some(cleared))
}

pub async fn start(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let q = OAuthForm::parse(query.unwrap_or_default().as_bytes());
    let req = match validate(&state, &q).await {
        Ok(r) => r,
        Err(text) => return bad(&text),
    };
    let current = match session::on_page(&state, &headers).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let confirmed = match (&current, &req.hinted_user) {
        (None, _) => true,
        (Some((_, s)), Some(sub)) => *sub == s.user_id,
        (Some(_), None) => false,
    };
    if confirmed {
        return finish(&state, &headers, &req).await;
    }
    let (csrf, cookie) = session::csrf_token(&state, &headers);
    let view = LogoutPage {
        csrf: &csrf,
        client_name: req.client.as_ref().map(|c| c.name.as_str()),
        client_id: req.client.as_ref().map_or("", |c| c.client_id.as_str()),
        redirect: req.redirect.as_deref().unwrap_or_default(),
        state: req.state.as_deref().unwrap_or_default(),
    };
    // Confirming ends at the client's post-logout redirect URI, which the policy must allow.
    let target = req.redirect.as_deref().and_then(FormTarget::of);
    let policy = Policy { own_scripts: false, form_target: target.as_ref() };
    with_cookie(page_with(StatusCode::OK, render(&view), &policy), cookie)
}

/// The confirmation (or the account page's button): CSRF and `Origin` checked, the carried
/// parameters validated again.
pub async fn confirm(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let form = OAuthForm::parse(&body);
    let csrf = form.one("csrf").ok().flatten().unwrap_or_default();
    if !same_origin(&state, &headers) || !session::csrf_ok(&state, &headers, csrf) {
        return crate::routes::pages::Refused::Forged.into_response();
    }
    match validate(&state, &form).await {
        Ok(req) => finish(&state, &headers, &req).await,
        Err(text) => bad(&text),
    }
}
