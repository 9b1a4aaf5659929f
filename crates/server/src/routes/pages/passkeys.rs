//! Passkeys on the pages, thin over `crate::passkeys`: the account page adds and removes them,
//! the sign-in page signs in with one alone, and the second-step page takes one after a
//! password. The page's script (`/assets/passkey.js`) first asks one of the `…/options`
//! endpoints (a form post with the page's CSRF token, answered in JSON) and then posts the
//! authenticator's answer in an ordinary form, which is answered like any form: a redirect on
//! to where the sign-in continues, or the page again with what went wrong.

use crate::error::PageError;
use crate::passkeys::{self, PasskeyError, Started};
use crate::routes::ClientMeta;
use crate::routes::pages::account::{Banner, failed, field, posted, render_page, unavailable};
use crate::routes::pages::account_security::posted_with_password;
use crate::routes::pages::checked_form;
use crate::routes::pages::login::{login_page, signed_in};
use crate::sign_in::{self, Amr};
use crate::state::AppState;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::{Form, http};
use serde::Deserialize;

const UNAVAILABLE: &str = "Passkeys are unavailable right now. Try again shortly.";
const NOT_ACCEPTED: &str = "That passkey could not sign you in.";

/// A JSON error for the script, which shows `error` to the person.
fn json_error(status: StatusCode, text: &str) -> Response {
    (status, Json(serde_json::json!({ "error": text }))).into_response()
}

/// The answer to an `…/options` request.
fn options(started: Result<Started, PasskeyError>) -> Response {
    match started {
        Ok(started) => {
            let mut r = Json(started).into_response();
            r.headers_mut().insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
            r
        }
        Err(PasskeyError::Unavailable) => {
            json_error(StatusCode::NOT_FOUND, "Passkeys need this server to be reached by a domain name.")
        }
        Err(PasskeyError::NoPasskeys) => json_error(StatusCode::BAD_REQUEST, "There are no passkeys on this account."),
        Err(PasskeyError::TooMany(wait)) => {
            let mut r = json_error(StatusCode::TOO_MANY_REQUESTS, &format!("Too many sign-ins. Wait {wait} seconds."));
            if let Ok(v) = http::HeaderValue::from_str(&wait.to_string()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "a passkey request could not be started");
            json_error(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /account/passkeys/options`: options to make a passkey for the signed-in user.
pub async fn account_options(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let (user, _) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    options(passkeys::begin_registration(&state, &user).await)
}

/// `POST /account/passkeys`: the new passkey, named, from the authenticator's answer.
pub async fn add(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, fields) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (ceremony, name, credential) =
        (field(&fields, "ceremony"), field(&fields, "name"), field(&fields, "credential"));
    match passkeys::finish_registration(&state, &meta, &user, ceremony, name, credential).await {
        Ok(name) => {
            let notice = format!("Your passkey {name} is added.");
            let banner = Banner { notice: Some(&notice), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::CREATED, banner).await
        }
        Err(PasskeyError::Store(e)) => unavailable(&state, &headers, &user, e).await,
        Err(PasskeyError::Invalid(text)) => failed(&state, &headers, &user, text).await,
        Err(e) => {
            tracing::info!(error = %e, "a passkey was not added");
            failed(&state, &headers, &user, "The passkey could not be added. Try again.").await
        }
    }
}

/// `POST /account/passkeys/remove`: removes one passkey, with the password again.
pub async fn remove(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, fields) = match posted_with_password(&state, &meta, &headers, &body, "password").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match passkeys::remove(&state, &meta, &user, field(&fields, "id")).await {
        Ok(()) => {
            let banner = Banner { notice: Some("The passkey is removed."), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::OK, banner).await
        }
        Err(PasskeyError::Unknown) => failed(&state, &headers, &user, "That passkey is not on your account.").await,
        Err(e) => unavailable(&state, &headers, &user, e).await,
    }
}

/// `POST /login/passkey/options`: options for signing in with any passkey of this instance.
pub async fn sign_in_options(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    if let Err(refused) = checked_form(&state, &headers, form, |f: &CsrfOnly| &f.csrf) {
        return refused.into_response();
    }
    options(passkeys::begin_passwordless(&state, &meta).await)
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    credential: String,
}

/// `POST /login/passkey`: a passkey alone signs in (with user verification: `amr` is `hwk`,
/// `user`, `mfa`), then the sign-in goes on as after a password.
pub async fn sign_in(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<PasskeyForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &PasskeyForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let sign_in = match sign_in::resume(&state, &form.request).await {
        Ok(s) => s,
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    match passkeys::finish_passwordless(&state, &form.ceremony, &form.credential).await {
        Ok(user) => {
            sign_in::record_passkey_sign_in(&state, &meta, &user).await;
            signed_in(&state, &meta, &headers, &sign_in, &user, &Amr::passkey()).await
        }
        Err(PasskeyError::Store(e)) => PageError::failed(e, UNAVAILABLE).into_response(),
        Err(e) => {
            tracing::info!(error = %e, "a passkey sign-in was refused");
            login_page(&state, &headers, StatusCode::UNAUTHORIZED, &sign_in, "", Some(NOT_ACCEPTED)).await
        }
    }
}

/// `POST /login/verify/passkey/options`: options for the second step with one of the paused
/// sign-in's user's passkeys.
pub async fn second_step_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<CsrfOnly>, FormRejection>,
) -> Response {
    if let Err(refused) = checked_form(&state, &headers, form, |f: &CsrfOnly| &f.csrf) {
        return refused.into_response();
    }
    match crate::routes::pages::second_step::paused(&state, &headers).await {
        Ok((_, user, _)) => options(passkeys::begin_second_step(&state, &user).await),
        Err(_) => json_error(StatusCode::BAD_REQUEST, "This sign-in took too long or was already completed."),
    }
}
