//! The first-admin setup page, reached through the one-time link printed at start when no
//! admin exists. The link's token (256 bits, stored hashed, valid one hour) is what authorizes
//! the form, so it doubles as the form's anti-CSRF secret; the `Origin` check is on top.

use crate::accounts::{self, AccountError, NewAccount};
use crate::error::PageError;
use crate::routes::ClientMeta;
use crate::routes::pages::{message, page, same_origin};
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use postern_core::email::Email;
use postern_core::secret::TokenHash;
use postern_pages::{SetupPage, render};
use postern_store::setup::SetupOutcome;
use serde::Deserialize;

const NOT_CREATED: &str = "The account could not be created. Try again shortly.";
const INVALID_LINK: &str = "This setup link is not valid: it has expired, was already used, or an admin exists. Run `postern serve` again for a new link, or create an admin with `postern admin user create --admin`.";

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

async fn usable(state: &AppState, token: &str) -> Result<bool, Response> {
    if token.is_empty() || token.len() > 128 {
        return Ok(false);
    }
    let now = state.now();
    let ok = state.store.setup_token_usable(&TokenHash::of(token), now).await;
    let admins = state.store.count_admins().await;
    match (ok, admins) {
        (Ok(ok), Ok(admins)) => Ok(ok && admins == 0),
        (Err(e), _) | (_, Err(e)) => {
            Err(PageError::failed(e, "The server could not check this link. Try again shortly.").into_response())
        }
    }
}

pub async fn form(State(state): State<AppState>, query: Result<Query<TokenQuery>, QueryRejection>) -> Response {
    let token = query.map(|q| q.0.token).unwrap_or_default();
    match usable(&state, &token).await {
        Ok(true) => page(StatusCode::OK, render(&SetupPage { token: &token, email: "", name: "", error: None })),
        Ok(false) => message(StatusCode::NOT_FOUND, "Setup link not valid", INVALID_LINK),
        Err(response) => response,
    }
}

pub async fn submit(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<SetupForm>, FormRejection>,
) -> Response {
    if !same_origin(&state, &headers) {
        return message(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form must be sent from this server's own page.",
        );
    }
    let form = match form {
        Ok(Form(form)) => form,
        // 400, 413 or 415 as the rejection says; never a 500.
        Err(rejection) => {
            return message(
                rejection.status(),
                "Request refused",
                "The form could not be read. Open the setup link again.",
            );
        }
    };
    match usable(&state, &form.token).await {
        Ok(true) => {}
        Ok(false) => return message(StatusCode::NOT_FOUND, "Setup link not valid", INVALID_LINK),
        Err(response) => return response,
    }
    let again = |error: &str| {
        let view = SetupPage { token: &form.token, email: &form.email, name: &form.name, error: Some(error) };
        page(StatusCode::BAD_REQUEST, render(&view))
    };
    if form.password != form.password_confirm && Email::parse(&form.email).is_ok() {
        return again("The two passwords differ.");
    }
    let account = NewAccount {
        email: &form.email,
        password: Some(&form.password),
        display_name: Some(&form.name),
        email_verified: false,
        is_admin: true,
    };
    let admin = match accounts::prepare(&account, state.config.password).await {
        Ok(admin) => admin,
        Err(AccountError::Email) => return again("Enter a valid email address."),
        Err(AccountError::Password(e)) => return again(&format!("Choose another password: {e}.")),
        Err(AccountError::Name) => return again("The name is too long or holds control characters."),
        Err(e) => return PageError::failed(e, NOT_CREATED).into_response(),
    };
    let now = state.now();
    let outcome = state.store.complete_setup(&TokenHash::of(&form.token), &admin, now).await;
    let audit_outcome = match &outcome {
        Ok(SetupOutcome::Created) => "success",
        _ => "failure",
    };
    let event = postern_store::NewAuditEvent {
        actor: "setup-link",
        action: "admin.setup",
        target: Some(&admin.id),
        ip: meta.ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
        outcome: audit_outcome,
        details: Some(serde_json::json!({ "email": admin.email.as_str() })),
    };
    if let Err(e) = state.store.record_audit(&event, now).await {
        tracing::error!(error = %e, "setup: could not record the audit event");
    }
    match outcome {
        Ok(SetupOutcome::Created) => {
            tracing::info!(user = %admin.id, "first admin created through the setup link");
            message(
                StatusCode::OK,
                "Admin account created",
                "The first admin account is ready. You can now sign in with it.",
            )
        }
        Ok(SetupOutcome::Refused) => message(StatusCode::NOT_FOUND, "Setup link not valid", INVALID_LINK),
        Err(postern_store::StoreError::Conflict(_)) => again("An account with this email exists already."),
        Err(e) => PageError::failed(e, NOT_CREATED).into_response(),
    }
}
