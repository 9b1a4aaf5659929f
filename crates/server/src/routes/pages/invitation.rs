//! The page an invitation link opens (`/invitation?token=…`), thin over
//! `crate::invitations`: the invited person chooses a name and a password, and is signed in.

use crate::error::PageError;
use crate::invitations::{self, AcceptError};
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
use postern_pages::{InvitationPage, render};
use serde::Deserialize;

const EXPIRED: &str = "This invitation is not valid any more: it was used or it expired. Ask your administrator \
                       for a new one.";
const UNAVAILABLE: &str = "The invitation could not be accepted right now. Try again shortly.";

#[derive(Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

fn invitation_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    token: &str,
    email: &str,
    name: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    with_cookie(page(status, render(&InvitationPage { csrf: &csrf, token, email, name, error })), cookie)
}

/// `GET /invitation?token=…`.
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Response {
    let token = query.map(|q| q.0.token).unwrap_or_default();
    match invitations::link_email(&state.store, &token, state.now()).await {
        Ok(Some(email)) => invitation_page(&state, &headers, StatusCode::OK, &token, &email, "", None),
        Ok(None) => message(StatusCode::NOT_FOUND, "Invitation not valid", EXPIRED),
        Err(e) => PageError::failed(e, UNAVAILABLE).into_response(),
    }
}

/// `POST /invitation`: name and password set, the address verified, and the person signed in.
pub async fn accept(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<AcceptForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &AcceptForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let now = state.now();
    let params = state.config.password;
    let again = |text: &str, email: &str| {
        invitation_page(&state, &headers, StatusCode::BAD_REQUEST, &form.token, email, &form.name, Some(text))
    };
    let user_id = match invitations::accept(&state.store, params, &form.token, &form.name, &form.password, now).await {
        Ok(id) => id,
        Err(AcceptError::Expired) => return message(StatusCode::NOT_FOUND, "Invitation not valid", EXPIRED),
        Err(e @ (AcceptError::Name | AcceptError::Password(_))) => {
            let email =
                invitations::link_email(&state.store, &form.token, now).await.ok().flatten().unwrap_or_default();
            let text = match e {
                AcceptError::Password(p) => format!("Choose another password: {p}."),
                _ => "The name is too long or holds control characters.".to_owned(),
            };
            return again(&text, &email);
        }
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    crate::audit::by(&state, &meta, &user_id, "user.invitation_accepted", &user_id).await;
    let user = match state.store.user_by_id(&user_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return message(StatusCode::NOT_FOUND, "Invitation not valid", EXPIRED),
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    let previous = match session::current(&state, &headers).await {
        Ok(current) => current.map(|(hash, _)| hash),
        Err(e) => return PageError::failed(e, UNAVAILABLE).into_response(),
    };
    match signed_in_at(&state, &meta, previous.as_ref(), &user, &Amr::email_link(), "/account").await {
        Ok(r) => r,
        Err(e) => PageError::failed(e, UNAVAILABLE).into_response(),
    }
}
