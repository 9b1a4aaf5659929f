//! Registration and email verification pages, thin over `crate::registration`: `/register`
//! (open registration only), `/email/verify?token=…` (the emailed link: a page with one button,
//! which verifies the address and signs in a browser nobody is signed in to, unless the person
//! has two-step verification on), and the account page's "Resend".

use crate::error::PageError;
use crate::registration::{self, RegisterError, ResendError};
use crate::routes::ClientMeta;
use crate::routes::pages::login::{signed_in_at, with_cookie};
use crate::routes::pages::password::TokenQuery;
use crate::routes::pages::{checked_form, message, page};
use crate::session;
use crate::sign_in::Amr;
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use postern_pages::{EmailUnverifiedPage, EmailVerifyPage, RegisterPage, render};
use serde::Deserialize;

/// What every registration is answered, whether or not the address has an account.
const SENT: &str = "We have sent a link to that address. Follow it to confirm the address and finish; \
                    it works once, for 24 hours. It can take a few minutes to arrive.";
const CLOSED: &str = "Accounts here are made by an administrator. Ask yours for one.";
const BY_INVITATION: &str = "Accounts here are by invitation. Ask an administrator to invite you.";
const EXPIRED: &str = "This link is not valid any more: it was used or it expired. Sign in and ask for a \
                       new one on your account page.";
const UNAVAILABLE: &str = "Your email address could not be verified right now. Try again shortly.";

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

fn open(state: &AppState) -> bool {
    state.config.accounts.registration == crate::config::Registration::Open
}

/// The page `/register` shows when registration is not open.
fn closed(state: &AppState) -> Response {
    let text = match state.config.accounts.registration {
        crate::config::Registration::Invite => BY_INVITATION,
        _ => CLOSED,
    };
    message(StatusCode::NOT_FOUND, "Registration is closed", text)
}

fn register_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    form: Option<&RegisterForm>,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let (email, name) = form.map_or(("", ""), |f| (f.email.trim(), f.name.as_str()));
    with_cookie(page(status, render(&RegisterPage { csrf: &csrf, email, name, error })), cookie)
}

/// `GET /register`.
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !open(&state) {
        return closed(&state);
    }
    register_page(&state, &headers, StatusCode::OK, None, None)
}

/// `POST /register`: "check your email" for every address that passes the checks.
pub async fn submit(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &RegisterForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let fields = registration::Form { email: &form.email, name: &form.name, password: &form.password };
    let again = |text: &str| register_page(&state, &headers, StatusCode::BAD_REQUEST, Some(&form), Some(text));
    match registration::register(&state, &meta, fields).await {
        Ok(()) => message(StatusCode::OK, "Check your email", SENT),
        Err(RegisterError::Closed) => closed(&state),
        Err(RegisterError::Email) => again("Enter a valid email address."),
        Err(RegisterError::Domain) => again("Addresses in this domain cannot register here."),
        Err(RegisterError::Name) => again("The name is too long or holds control characters."),
        Err(RegisterError::Password(e)) => again(&format!("Choose another password: {e}.")),
        Err(RegisterError::TooMany(wait)) => {
            PageError::too_many(wait, format!("Too many registrations. Try again in {wait} seconds.")).into_response()
        }
        Err(RegisterError::Busy) => {
            PageError::busy(2, "Too many requests right now. Try again in a few seconds.").into_response()
        }
        Err(e @ RegisterError::Hash) => {
            PageError::failed(e.to_string(), "Your account could not be made. Try again shortly.").into_response()
        }
    }
}

/// `GET /email/verify?token=…`: the button, or why the link does not work.
pub async fn verify_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let token = query.map(|q| q.0.token).unwrap_or_default();
    match registration::link_email(&state, &token).await {
        Ok(Some(email)) => {
            let (csrf, cookie) = session::csrf_token(&state, &headers);
            with_cookie(
                page(StatusCode::OK, render(&EmailVerifyPage { csrf: &csrf, token: &token, email: &email })),
                cookie,
            )
        }
        Ok(None) => message(StatusCode::NOT_FOUND, "Link not valid", EXPIRED),
        Err(e) => PageError::failed(e, UNAVAILABLE).into_response(),
    }
}

/// `POST /email/verify`: verifies the address; a browser nobody is signed in to is signed in
/// and goes to the account page.
pub async fn verify(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &VerifyForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let user = match registration::verify(&state, &meta, &form.token).await {
        Ok(Some(user)) => user,
        Ok(None) => return message(StatusCode::NOT_FOUND, "Link not valid", EXPIRED),
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    // A link is one factor: someone with two-step verification signs in as usual.
    let two_step = match crate::sign_in::has_second_factor(&state, &user).await {
        Ok(on) => on,
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    match session::on_page(&state, &headers).await {
        Ok(Some(_)) => {
            let text = format!("{} is verified.", user.email);
            return message(StatusCode::OK, "Email address verified", &text);
        }
        Ok(None) if two_step => {
            let text = format!("{} is verified. Sign in to go on.", user.email);
            return message(StatusCode::OK, "Email address verified", &text);
        }
        Ok(None) => {}
        Err(page) => return page,
    }
    match signed_in_at(&state, &meta, None, &user, &Amr::email_link(), "/account").await {
        Ok(r) => r,
        Err(e) => PageError::failed(e, UNAVAILABLE).into_response(),
    }
}

/// The account page's "Resend": a new verification link, within the email limits.
pub async fn resend(state: &AppState, meta: &ClientMeta, user: &postern_store::User) -> Result<String, PageError> {
    match registration::resend(state, meta, user).await {
        Ok(()) => Ok(format!("We have sent a new link to {}.", user.email)),
        Err(ResendError::TooMany(wait)) => {
            Err(PageError::too_many(wait, format!("Too many emails. Try again in {wait} seconds.")))
        }
        Err(e) => Err(PageError::failed(e, "The email could not be sent. Try again shortly.")),
    }
}

/// The verified-email gate's page: `client_name` admits only verified addresses and `email`
/// is not verified; it offers a new link.
pub fn unverified_page(state: &AppState, headers: &HeaderMap, client_name: &str, email: &str) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    let view = EmailUnverifiedPage { csrf: &csrf, client_name, email };
    with_cookie(page(StatusCode::FORBIDDEN, render(&view)), cookie)
}
