//! The sign-in page: a thin adapter over `crate::sign_in`, which holds the state machine,
//! the throttles, the one generic message for every failed sign-in (unknown email, wrong
//! password, disabled account) and the fresh session token at every sign-in. The form carries
//! the sign-in's token (`request`), never a guessed handle or code.

use crate::error::PageError;
use crate::routes::ClientMeta;
use crate::routes::pages::{Policy, checked_form, page_with};
use crate::session::{self, SESSION_COOKIE};
use crate::sign_in::{self, Amr, Continuation, Refusal, SignIn, Step};
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postern_pages::{LoginPage, render};
use serde::Deserialize;

const FAILED: &str = "Incorrect email or password.";

#[derive(Deserialize, Default)]
pub struct LoginQuery {
    #[serde(default)]
    request: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// Signs `user` in (a fresh session; the browser's `previous` one ends) with `amr`, outside the
/// sign-in form (a link from an email proved who it is), and sends the browser to `location`.
pub async fn signed_in_at(
    state: &AppState,
    meta: &ClientMeta,
    previous: Option<&postern_core::secret::TokenHash>,
    user: &postern_store::User,
    amr: &sign_in::Amr,
    location: &str,
) -> Result<Response, postern_store::StoreError> {
    let token = sign_in::establish(state, meta, &SignIn::to_account(), previous, user, amr).await?;
    let cookie = session::set_cookie(
        state,
        &session::cookie_name(state, SESSION_COOKIE),
        token.expose(),
        Some(state.config.sessions.absolute_secs),
    );
    Ok(with_cookie(Redirect::to(location).into_response(), Some(cookie)))
}

/// The sign-in form. Signing in for an authorization request may end at the client without
/// another page (consent remembered, first-party client), so the policy names its origin.
pub(crate) async fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    sign_in: &SignIn,
    email: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let target = crate::routes::oauth::authorize::continuation_target(state, &sign_in.continuation).await;
    let can_register = state.config.accounts.registration == crate::config::Registration::Open;
    let passkeys = state.webauthn.is_some();
    let view =
        LoginPage { csrf: &csrf, request: &sign_in.token, email, client_name: None, error, can_register, passkeys };
    let policy = Policy { own_scripts: passkeys, form_target: target.as_ref() };
    with_cookie(page_with(status, render(&view), &policy), cookie)
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let request = query.map(|q| q.0.request).unwrap_or_default();
    let sign_in = match sign_in::resume(&state, &request).await {
        Ok(s) => s,
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    // For an authorization request the authorization endpoint has decided a (fresh) sign-in
    // is needed (prompt=login, max_age), so the form shows even over an existing session;
    // redirecting back would loop.
    if !matches!(sign_in.continuation, Continuation::Authorize(_)) {
        match session::on_page(&state, &headers).await {
            Ok(Some(_)) => return Redirect::to(&sign_in.continuation.url()).into_response(),
            Ok(None) => {}
            Err(page) => return page,
        }
    }
    login_page(&state, &headers, StatusCode::OK, &sign_in, "", None).await
}

const UNAVAILABLE: &str = "Sign-in is unavailable right now. Try again shortly.";

/// `POST /login`: the password step of the sign-in, then the session and the continuation.
pub async fn submit(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &LoginForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let sign_in = match sign_in::resume(&state, &form.request).await {
        Ok(s) => s,
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    let (user, amr) = match sign_in::password(&state, &meta, &form.email, &form.password).await {
        Ok(Step::Authenticated { user, amr }) => (user, amr),
        Ok(Step::NeedsSecondFactor { user, .. }) => {
            return match sign_in::pause(&state, &sign_in, &user, &Amr::password()).await {
                Ok(token) => crate::routes::pages::second_step::to_second_step(&state, &token),
                Err(e) => e.into_page(UNAVAILABLE).into_response(),
            };
        }
        Ok(other) => return PageError::failed(format!("sign-in stopped at {other:?}"), UNAVAILABLE).into_response(),
        Err(Refusal::Failed) => {
            let email = form.email.trim();
            return login_page(&state, &headers, StatusCode::UNAUTHORIZED, &sign_in, email, Some(FAILED)).await;
        }
        Err(Refusal::TooMany(wait)) => {
            let text = format!("Too many sign-in attempts. Try again in {wait} seconds.");
            return PageError::too_many(wait, text).into_response();
        }
        Err(Refusal::Busy) => {
            let text = "Too many sign-ins right now. Try again in a few seconds.";
            return PageError::busy(2, text).into_response();
        }
        Err(Refusal::Store(e)) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    signed_in(&state, &meta, &headers, &sign_in, &user, &amr).await
}

/// A sign-in that succeeded becomes the browser's session (its older one ends), and the
/// browser goes on to the continuation.
pub async fn signed_in(
    state: &AppState,
    meta: &ClientMeta,
    headers: &HeaderMap,
    sign_in: &SignIn,
    user: &postern_store::User,
    amr: &Amr,
) -> Response {
    let previous = match session::current(state, headers).await {
        Ok(current) => current.map(|(hash, _)| hash),
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    let token = match sign_in::establish(state, meta, sign_in, previous.as_ref(), user, amr).await {
        Ok(t) => t,
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    let cookie = session::set_cookie(
        state,
        &session::cookie_name(state, SESSION_COOKIE),
        token.expose(),
        Some(state.config.sessions.absolute_secs),
    );
    with_cookie(Redirect::to(&sign_in.continuation.url()).into_response(), Some(cookie))
}
