//! Sign-in, sign-out and the account page.
//!
//! One generic message for every failed sign-in (unknown email, wrong password, disabled
//! account), a dummy hash for unknown emails, back-off per account (429 with `Retry-After`)
//! and per client address (slowed down, see `crate::throttle`), and a fresh session token at
//! every sign-in.

use super::ClientMeta;
use super::pages::{Policy, checked_form, message, page_with};
use crate::error::PageError;
use crate::session::{self, SESSION_COOKIE};
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postern_core::email::Email;
use postern_core::secret::BearerSecret;
use postern_pages::{LoginPage, render};
use postern_store::{NewAuditEvent, NewSession};
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

/// Where to go after signing in: back to the waiting authorization request, or the account page.
fn after_sign_in(request: &str) -> String {
    if is_handle(request) {
        format!("/oauth/authorize/continue?request={request}")
    } else if let Some(code) = postern_core::device::normalize(request) {
        format!("/device/confirm?user_code={code}")
    } else {
        "/account".to_owned()
    }
}

/// What the sign-in form may carry back: an authorization request handle or a device user code.
fn is_return(request: &str) -> bool {
    is_handle(request) || postern_core::device::normalize(request).is_some()
}

/// Request handles are 43 base64url characters; anything else is ignored.
pub fn is_handle(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        response.headers_mut().append(header::SET_COOKIE, c);
    }
    response
}

/// The sign-in form. Signing in for an authorization request may end at the client without
/// another page (consent remembered, first-party client), so the policy names its origin.
async fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    request: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let request = if is_return(request) { request } else { "" };
    let target = if is_handle(request) { super::authorize::form_target(state, request).await } else { None };
    let view = LoginPage { csrf: &csrf, request, email, client_name: None, error };
    let policy = Policy { own_scripts: false, form_target: target.as_ref() };
    with_cookie(page_with(status, render(&view), &policy), cookie)
}

pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let request = query.map(|q| q.0.request).unwrap_or_default();
    // With a request handle the authorization endpoint has decided a (fresh) sign-in is needed
    // (prompt=login, max_age), so the form shows even over an existing session; redirecting
    // back would loop.
    if !is_handle(&request) {
        match session::on_page(&state, &headers).await {
            Ok(Some(_)) => return Redirect::to(&after_sign_in(&request)).into_response(),
            Ok(None) => {}
            Err(page) => return page,
        }
    }
    login_page(&state, &headers, StatusCode::OK, &request, "", None).await
}

const UNAVAILABLE: &str = "Sign-in is unavailable right now. Try again shortly.";

fn too_many(wait: i64) -> Response {
    PageError::too_many(wait, format!("Too many sign-in attempts. Try again in {wait} seconds.")).into_response()
}

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
    let now = state.now();
    let email = Email::parse(&form.email).ok();
    let account_key =
        format!("acct:{}", email.as_ref().map_or_else(|| form.email.trim().to_lowercase(), Email::normalized));
    let attempt = match state.throttle.begin(&account_key, &meta.limit_key(), now) {
        Ok(a) => a,
        Err(wait) => return too_many(wait),
    };
    if let Some(hold) = attempt.slowdown() {
        tokio::time::sleep(hold).await;
    }

    let user = match &email {
        Some(e) => match state.store.user_by_email(e).await {
            Ok(u) => u,
            Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
        },
        None => None,
    };
    let usable = user.as_ref().filter(|u| !u.disabled);
    let stored = usable.and_then(|u| u.password_hash.as_deref());
    let verified = match state.passwords.verify(&form.password, stored).await {
        Ok(ok) => ok,
        Err(_busy) => {
            let mut r = message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "Too many sign-ins right now. Try again in a few seconds.",
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return r;
        }
    };
    let Some(user) = usable.filter(|_| verified) else {
        attempt.fail(now);
        let event = login_event(&meta, &form.email, "failure", user.as_ref().map(|u| u.id.as_str()));
        let _ = state.store.record_audit(&event, now).await;
        return login_page(&state, &headers, StatusCode::UNAUTHORIZED, &form.request, form.email.trim(), Some(FAILED))
            .await;
    };
    attempt.succeed();

    // A new session token at every sign-in; an older session of this browser ends.
    match session::current(&state, &headers).await {
        Ok(Some((old, _))) => {
            let _ = state.store.delete_session(&old).await;
        }
        Ok(None) => {}
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    }
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    let new = NewSession {
        hash: token.hash(),
        user_id: &user.id,
        amr: "pwd",
        now,
        idle_secs: state.config.sessions.idle_secs,
        absolute_secs: state.config.sessions.absolute_secs,
        ip: meta.ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
    };
    if let Err(e) = state.store.create_session(&new).await {
        return PageError::failed(e, UNAVAILABLE).into_response();
    }
    let _ = state.store.record_audit(&login_event(&meta, &form.email, "success", Some(&user.id)), now).await;
    let cookie = session::set_cookie(
        &state,
        &session::cookie_name(&state, SESSION_COOKIE),
        token.expose(),
        Some(state.config.sessions.absolute_secs),
    );
    with_cookie(Redirect::to(&after_sign_in(&form.request)).into_response(), Some(cookie))
}

fn login_event<'a>(meta: &'a ClientMeta, email: &str, outcome: &'a str, target: Option<&'a str>) -> NewAuditEvent<'a> {
    NewAuditEvent {
        actor: "anonymous",
        action: "login",
        target,
        ip: meta.ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
        outcome,
        details: Some(serde_json::json!({ "email": email.trim() })),
    }
}
