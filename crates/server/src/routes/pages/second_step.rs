//! The second step of a sign-in (`/login/verify`): after a right password, a user with
//! two-step verification gives a code from their authenticator app, a recovery code, or uses
//! a passkey (its options come from `routes::pages::passkeys`). The
//! browser holds the paused sign-in's token in an `HttpOnly` cookie (never in a URL); a right
//! code makes the session and goes on to what the sign-in continues with (an authorization
//! request, a device confirmation, the account page). Thin over `crate::sign_in` and
//! `crate::second_factor`.

use crate::error::PageError;
use crate::passkeys::{self, PasskeyError};
use crate::routes::ClientMeta;
use crate::routes::pages::login::{signed_in, with_cookie};
use crate::routes::pages::{Policy, checked_form, page_with};
use crate::second_factor::{self, FactorError};
use crate::session;
use crate::sign_in::{self, Amr, SecondFactor, SignIn};
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postern_pages::{SecondStepPage, render};
use postern_store::User;
use serde::Deserialize;

/// The cookie holding a paused sign-in's token.
pub const SECOND_STEP_COOKIE: &str = "postern_second_step";
const UNAVAILABLE: &str = "Sign-in is unavailable right now. Try again shortly.";
const EXPIRED: &str = "This sign-in took too long or was already completed. Sign in again.";

/// The answer to a right password when a second step must follow.
pub fn to_second_step(state: &AppState, token: &str) -> Response {
    let name = session::cookie_name(state, SECOND_STEP_COOKIE);
    let cookie = session::set_cookie(state, &name, token, Some(sign_in::SECOND_STEP_SECS));
    with_cookie(Redirect::to("/login/verify").into_response(), Some(cookie))
}

fn clear_cookie(state: &AppState) -> HeaderValue {
    session::set_cookie(state, &session::cookie_name(state, SECOND_STEP_COOKIE), "", Some(0))
}

/// The paused sign-in this browser holds, or the page to show instead.
pub(crate) async fn paused(state: &AppState, headers: &HeaderMap) -> Result<(SignIn, User, Amr), Response> {
    let token = session::cookie_value(headers, &session::cookie_name(state, SECOND_STEP_COOKIE)).unwrap_or_default();
    match sign_in::resume_second(state, token).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(PageError::refused(StatusCode::BAD_REQUEST, "Sign in again", EXPIRED).into_response()),
        Err(e) => Err(PageError::failed(e, UNAVAILABLE).into_response()),
    }
}

#[derive(Deserialize, Default)]
pub struct VerifyQuery {
    #[serde(default)]
    recovery: Option<String>,
}

async fn page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    sign_in: &SignIn,
    user: &User,
    recovery: bool,
    error: Option<&str>,
) -> Response {
    let methods = match sign_in::second_factors(state, user).await {
        Ok(m) => m,
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    let totp = methods.contains(&SecondFactor::Totp);
    let passkey = methods.contains(&SecondFactor::Passkey);
    let (csrf, cookie) = session::csrf_token(state, headers);
    // A right code may end at the client without another page: the policy names its origin.
    let target = crate::routes::oauth::authorize::continuation_target(state, &sign_in.continuation).await;
    let view = SecondStepPage { csrf: &csrf, email: &user.email, recovery, totp, passkey, error };
    let policy = Policy { own_scripts: passkey, form_target: target.as_ref() };
    with_cookie(page_with(status, render(&view), &policy), cookie)
}

/// `GET /login/verify[?recovery=1]`.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<VerifyQuery>, QueryRejection>,
) -> Response {
    let recovery = query.is_ok_and(|q| q.0.recovery.is_some());
    match paused(&state, &headers).await {
        Ok((sign_in, user, _)) => page(&state, &headers, StatusCode::OK, &sign_in, &user, recovery, None).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    code: Option<String>,
    recovery_code: Option<String>,
    /// A passkey's answer (`credential`) to the ceremony `ceremony`.
    ceremony: Option<String>,
    credential: Option<String>,
}

/// What the second step was given.
enum Proof {
    Code,
    RecoveryCode,
    Passkey,
}

/// `POST /login/verify`: a right code signs in; a wrong one asks again (throttled per account).
pub async fn submit(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &VerifyForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let (sign_in, user, so_far) = match paused(&state, &headers).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let (checked, proof) = match (&form.code, &form.recovery_code, &form.ceremony) {
        (_, _, Some(ceremony)) => {
            let credential = form.credential.as_deref().unwrap_or_default();
            let checked = match passkeys::finish_second_step(&state, &user, ceremony, credential).await {
                Ok(()) => Ok(()),
                Err(PasskeyError::Store(e)) => Err(FactorError::Store(e)),
                Err(e) => {
                    tracing::info!(error = %e, "a passkey was refused at the second step");
                    Err(FactorError::WrongCode)
                }
            };
            (checked, Proof::Passkey)
        }
        (_, Some(code), None) => {
            (second_factor::use_recovery_code(&state, &meta, &user, code).await, Proof::RecoveryCode)
        }
        (Some(code), None, None) => (second_factor::check_code(&state, &meta, &user.id, code).await, Proof::Code),
        (None, None, None) => (Err(FactorError::WrongCode), Proof::Code),
    };
    match checked {
        Ok(()) => {
            let amr = match proof {
                Proof::Passkey => so_far.with_passkey(),
                Proof::Code | Proof::RecoveryCode => so_far.with_otp(),
            };
            let mut r = signed_in(&state, &meta, &headers, &sign_in, &user, &amr).await;
            r.headers_mut().append(axum::http::header::SET_COOKIE, clear_cookie(&state));
            r
        }
        Err(FactorError::WrongCode) => {
            let (text, recovery) = match proof {
                Proof::RecoveryCode => ("That recovery code is not right or was used.", true),
                Proof::Code => ("That code is not right.", false),
                Proof::Passkey => ("That passkey could not be used. Try again.", false),
            };
            page(&state, &headers, StatusCode::UNAUTHORIZED, &sign_in, &user, recovery, Some(text)).await
        }
        Err(FactorError::TooMany(wait)) => {
            PageError::too_many(wait, format!("Too many attempts. Try again in {wait} seconds.")).into_response()
        }
        Err(e) => PageError::failed(e, UNAVAILABLE).into_response(),
    }
}
