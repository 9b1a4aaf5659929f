//! The forgotten-password pages, thin over `crate::recovery`: `/password/forgot` asks for the
//! address and always gives the same answer; `/password/reset?token=…` (the emailed link)
//! sets the new password.

use crate::error::PageError;
use crate::recovery::{self, ResetError};
use crate::routes::ClientMeta;
use crate::routes::pages::login::with_cookie;
use crate::routes::pages::{checked_form, message, page};
use crate::session;
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use postern_pages::{PasswordForgotPage, PasswordResetPage, render};
use serde::Deserialize;

/// What every request for a link is answered, whether or not the account exists.
const SENT: &str = "If an account exists for that address, we have sent it a link to set a new password. \
                    The link works once, for 30 minutes. It can take a few minutes to arrive.";
const EXPIRED: &str = "This link is not valid any more: it was used, it expired, or a newer one was sent. \
                       Ask for a new one on the sign-in page (\"Forgot your password?\").";
const UNAVAILABLE: &str = "Your password could not be set right now. Try again shortly.";

#[derive(Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// `?token=…`: the secret of a link sent by email.
#[derive(Deserialize, Default)]
pub struct TokenQuery {
    #[serde(default)]
    pub token: String,
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

fn forgot_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    with_cookie(page(status, render(&PasswordForgotPage { csrf: &csrf, email, error })), cookie)
}

/// `GET /password/forgot`.
pub async fn forgot_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    forgot_page(&state, &headers, StatusCode::OK, "", None)
}

/// `POST /password/forgot`: the same answer for every address; 429 past the limits.
pub async fn forgot(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<ForgotForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &ForgotForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    if form.email.trim().is_empty() {
        return forgot_page(&state, &headers, StatusCode::BAD_REQUEST, "", Some("Enter your email address."));
    }
    match recovery::request_reset(&state, &meta, &form.email) {
        Ok(()) => message(StatusCode::OK, "Check your email", SENT),
        Err(wait) => {
            PageError::too_many(wait, format!("Too many reset requests. Try again in {wait} seconds.")).into_response()
        }
    }
}

fn reset_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    token: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    with_cookie(page(status, render(&PasswordResetPage { csrf: &csrf, token, email, error })), cookie)
}

/// `GET /password/reset?token=…`: the form, or why the link does not work.
pub async fn reset_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let token = query.map(|q| q.0.token).unwrap_or_default();
    match recovery::link_email(&state, &token).await {
        Ok(Some(email)) => reset_page(&state, &headers, StatusCode::OK, &token, &email, None),
        Ok(None) => message(StatusCode::NOT_FOUND, "Link not valid", EXPIRED),
        Err(e) => PageError::failed(e, UNAVAILABLE).into_response(),
    }
}

/// `POST /password/reset`: sets the password; everything signed in before is signed out.
pub async fn reset(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<ResetForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &ResetForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    match recovery::reset(&state, &meta, &form.token, &form.password).await {
        Ok(()) => message(
            StatusCode::OK,
            "Password set",
            "Your new password is set, and every browser and app that was signed in to your account is signed out. \
             Sign in again with the new password.",
        ),
        Err(ResetError::Expired) => message(StatusCode::NOT_FOUND, "Link not valid", EXPIRED),
        Err(ResetError::Password(e)) => {
            let email = recovery::link_email(&state, &form.token).await.ok().flatten().unwrap_or_default();
            let text = format!("Choose another password: {e}.");
            reset_page(&state, &headers, StatusCode::BAD_REQUEST, &form.token, &email, Some(&text))
        }
        Err(e) => PageError::failed(e, UNAVAILABLE).into_response(),
    }
}
