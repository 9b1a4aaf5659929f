//! The account page's password, email address, two-step verification and deletion, thin over
//! `crate::accounts`, `crate::email_change`, `crate::second_factor` and
//! `crate::sign_in::reauthenticate`: changing the password or the address, deleting the
//! account, turning two-step verification off and making new recovery codes each ask for the
//! password again (throttled like a sign-in). Also the page a new-address link opens.

use crate::email_change::{self, ChangeError};
use crate::error::PageError;
use crate::routes::ClientMeta;
use crate::routes::pages::account::{Banner, failed, field, posted, render_page, unavailable};
use crate::routes::pages::login::with_cookie;
use crate::routes::pages::password::TokenQuery;
use crate::routes::pages::{checked_form, message, page};
use crate::session::{self, SESSION_COOKIE};
use crate::sign_in::{self, Refusal};
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use postern_pages::{ConfirmLinkPage, render};
use postern_store::User;
use serde::Deserialize;

const WRONG_PASSWORD: &str = "That is not your current password.";
const EXPIRED: &str = "This link is not valid any more: it was used or it expired. Ask for a new one on your \
                       account page.";

/// The password asked for again: `Ok`, or the page to answer with.
async fn reauthenticate(
    state: &AppState,
    meta: &ClientMeta,
    headers: &HeaderMap,
    user: &User,
    password: &str,
) -> Result<(), Response> {
    match sign_in::reauthenticate(state, meta, user, password).await {
        Ok(()) => Ok(()),
        Err(Refusal::Failed) => Err(failed(state, headers, user, WRONG_PASSWORD).await),
        Err(Refusal::TooMany(wait)) => {
            Err(PageError::too_many(wait, format!("Too many attempts. Try again in {wait} seconds.")).into_response())
        }
        Err(Refusal::Busy) => {
            Err(PageError::busy(2, "Too many requests right now. Try again in a few seconds.").into_response())
        }
        Err(Refusal::Store(e)) => Err(unavailable(state, headers, user, e).await),
    }
}

/// A posted form of the account page whose field `password_field` holds the password, asked
/// for again: the user and the fields, or the page to answer with.
pub(crate) async fn posted_with_password(
    state: &AppState,
    meta: &ClientMeta,
    headers: &HeaderMap,
    body: &[u8],
    password_field: &str,
) -> Result<(User, Vec<(String, String)>), Response> {
    let (user, fields) = posted(state, headers, body).await?;
    reauthenticate(state, meta, headers, &user, field(&fields, password_field)).await?;
    Ok((user, fields))
}

/// `POST /account/password`: a new password; every other browser and every app signs in again.
pub async fn change_password(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, fields) = match posted_with_password(&state, &meta, &headers, &body, "current_password").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let keep = match session::current(&state, &headers).await {
        Ok(current) => current.map(|(hash, _)| hash),
        Err(e) => return unavailable(&state, &headers, &user, e).await,
    };
    let here = Some(state.node.as_ref());
    let new = field(&fields, "new_password");
    let params = state.config.password;
    match crate::accounts::set_password(&state.store, here, params, &user, new, keep.as_ref(), state.now()).await {
        Ok(()) => {
            state.mail.send(state.letters().password_changed(&user.email));
            crate::audit::by(&state, &meta, &user.id, "user.password_changed", &user.id).await;
            let notice = "Your password is changed. Every other browser is signed out.";
            render_page(&state, &headers, &user, StatusCode::OK, Banner { notice: Some(notice), ..Banner::default() })
                .await
        }
        Err(crate::accounts::AccountError::Password(e)) => {
            failed(&state, &headers, &user, &format!("Choose another password: {e}.")).await
        }
        Err(e) => unavailable(&state, &headers, &user, e).await,
    }
}

/// `POST /account/email`: a link to the new address.
pub async fn change_email(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, fields) = match posted_with_password(&state, &meta, &headers, &body, "password").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let new = field(&fields, "email").trim();
    match email_change::request(&state, &meta, &user, new).await {
        Ok(()) => {
            let notice = format!("We sent a link to {new}. Your address changes when you follow it.");
            render_page(&state, &headers, &user, StatusCode::OK, Banner { notice: Some(&notice), ..Banner::default() })
                .await
        }
        Err(ChangeError::Email) => failed(&state, &headers, &user, "Enter a valid email address.").await,
        Err(ChangeError::Same) => failed(&state, &headers, &user, "That is your address already.").await,
        Err(ChangeError::TooMany(wait)) => {
            PageError::too_many(wait, format!("Too many emails. Try again in {wait} seconds.")).into_response()
        }
        Err(e @ ChangeError::Store(_)) => unavailable(&state, &headers, &user, e).await,
    }
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// `GET /email/change?token=…`: the button confirming the new address.
pub async fn confirm_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let token = query.map(|q| q.0.token).unwrap_or_default();
    match email_change::link_email(&state, &token).await {
        Ok(Some(new)) => {
            let (csrf, cookie) = session::csrf_token(&state, &headers);
            let text = format!("Use {new} as the email address of your account from now on.");
            let view = ConfirmLinkPage {
                csrf: &csrf,
                token: &token,
                title: "Confirm your new email address",
                text: &text,
                action: "/email/change",
                button: "Use this address",
            };
            with_cookie(page(StatusCode::OK, render(&view)), cookie)
        }
        Ok(None) => message(StatusCode::NOT_FOUND, "Link not valid", EXPIRED),
        Err(e) => PageError::failed(e, "The link could not be checked. Try again shortly.").into_response(),
    }
}

/// `POST /email/change`: the address changes; the old one is told.
pub async fn confirm(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<LinkForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &LinkForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    match email_change::confirm(&state, &meta, &form.token).await {
        Ok(Some(changed)) => {
            let text = format!("Your account's email address is now {}.", changed.new);
            message(StatusCode::OK, "Email address changed", &text)
        }
        Ok(None) => message(StatusCode::NOT_FOUND, "Link not valid", EXPIRED),
        Err(postern_store::StoreError::Conflict(_)) => message(
            StatusCode::CONFLICT,
            "Address taken",
            "Another account uses that address now, so yours was not changed.",
        ),
        Err(e) => PageError::failed(e, "Your address could not be changed. Try again shortly.").into_response(),
    }
}

/// `POST /account/delete`: the password and the confirmation, then the account is gone and this
/// browser is signed out.
pub async fn delete_account(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, fields) = match posted_with_password(&state, &meta, &headers, &body, "password").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    if field(&fields, "confirm") != "yes" {
        return failed(&state, &headers, &user, "Tick the box to confirm that the account is to be deleted.").await;
    }
    let here = Some(state.node.as_ref());
    if let Err(e) = crate::accounts::delete_user(&state.store, here, &user.id, state.now()).await {
        return unavailable(&state, &headers, &user, e).await;
    }
    state.mail.send(state.letters().account_deleted(&user.email));
    crate::audit::by(&state, &meta, &user.id, "user.deleted", &user.id).await;
    let gone = session::set_cookie(&state, &session::cookie_name(&state, SESSION_COOKIE), "", Some(0));
    let text = "Your account is deleted, with its sessions, API keys and service accounts. Every app lost access.";
    with_cookie(message(StatusCode::OK, "Account deleted", text), Some(gone))
}

/// The account page after a two-step verification change, or why it failed.
async fn after_factor_change(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
    done: Result<Banner<'_>, crate::second_factor::FactorError>,
) -> Response {
    use crate::second_factor::FactorError;
    match done {
        Ok(banner) => render_page(state, headers, user, StatusCode::OK, banner).await,
        Err(FactorError::WrongCode) => {
            failed(state, headers, user, "That code is not right. Enter the code your app shows now.").await
        }
        Err(FactorError::Enabled) => failed(state, headers, user, "Two-step verification is on already.").await,
        Err(FactorError::NotStarted) => failed(state, headers, user, "Set up the authenticator app first.").await,
        Err(FactorError::TooMany(wait)) => {
            PageError::too_many(wait, format!("Too many attempts. Try again in {wait} seconds.")).into_response()
        }
        Err(e) => unavailable(state, headers, user, e).await,
    }
}

/// `POST /account/totp/setup`: a new secret, shown as a QR code and as text.
pub async fn totp_setup(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let (user, _) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let done = crate::second_factor::begin(&state, &user).await.map(|_| Banner::default());
    after_factor_change(&state, &headers, &user, done).await
}

/// `POST /account/totp/enable`: the first code turns it on; the recovery codes are shown once.
pub async fn totp_enable(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, fields) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match crate::second_factor::enable(&state, &meta, &user, field(&fields, "code")).await {
        Ok(codes) => {
            let notice = "Two-step verification is on.";
            let banner = Banner { notice: Some(notice), recovery_codes: Some(&codes), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::OK, banner).await
        }
        Err(e) => after_factor_change(&state, &headers, &user, Err(e)).await,
    }
}

/// `POST /account/totp/disable`: with the password again.
pub async fn totp_disable(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, _) = match posted_with_password(&state, &meta, &headers, &body, "password").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let notice = "Two-step verification is off. Your recovery codes no longer work.";
    let done = crate::second_factor::disable(&state, &meta, &user)
        .await
        .map(|()| Banner { notice: Some(notice), ..Banner::default() });
    after_factor_change(&state, &headers, &user, done).await
}

/// `POST /account/totp/recovery-codes`: new codes, with the password again; the old ones stop.
pub async fn recovery_codes(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, _) = match posted_with_password(&state, &meta, &headers, &body, "password").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match crate::second_factor::regenerate_recovery_codes(&state, &meta, &user).await {
        Ok(codes) => {
            let notice = "New recovery codes are made; the old ones no longer work.";
            let banner = Banner { notice: Some(notice), recovery_codes: Some(&codes), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::OK, banner).await
        }
        Err(e) => after_factor_change(&state, &headers, &user, Err(e)).await,
    }
}
