//! The device activation pages (RFC 8628 §3.3): the user types the code their device shows,
//! signs in if needed, sees who asks for what and from where, and approves or denies.
//!
//! Unknown, expired, used and denied codes all get the same message. Wrong codes are limited
//! per IP address and per browser (`device.code_attempts_per_minute`), then 429 with
//! `Retry-After`; each wrong code is counted in `postern_device_events_total{event="wrong_code"}`.

use crate::error::PageError;
use crate::routes::ClientMeta;
use crate::routes::pages::login::with_cookie;
use crate::routes::pages::registration::unverified_page;
use crate::routes::pages::{checked_form, message, page};
use crate::session;
use crate::sign_in::{self, Continuation};
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use postern_core::device::UserCode;
use postern_pages::{DeviceConfirmPage, DevicePage, render};
use postern_store::{Decision, NewAuditEvent};
use serde::Deserialize;

const NOT_VALID: &str =
    "That code is not valid. Check the code on your device; it may have expired, or been used already.";

#[derive(Deserialize, Default)]
pub struct CodeQuery {
    #[serde(default)]
    user_code: String,
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user_code: String,
    #[serde(default)]
    decision: String,
}

fn entry_page(state: &AppState, headers: &HeaderMap, status: StatusCode, code: &str, error: Option<&str>) -> Response {
    let (csrf, cookie) = session::csrf_token(state, headers);
    with_cookie(page(status, render(&DevicePage { csrf: &csrf, code, error })), cookie)
}

/// `GET /device`: the form, pre-filled from `verification_uri_complete` (never approving).
pub async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<CodeQuery>, QueryRejection>,
) -> Response {
    let code = q.map(|q| q.0.user_code).unwrap_or_default();
    let shown = UserCode::parse(&code).map(|c| c.display()).unwrap_or_default();
    entry_page(&state, &headers, StatusCode::OK, &shown, None)
}

/// The keys wrong codes are counted under: the client address, the browser (its CSRF cookie)
/// and, once signed in, the user, so that neither a new browser nor a new address buys more
/// guesses.
fn attempt_keys(meta: &ClientMeta, headers: &HeaderMap, state: &AppState, user: Option<&str>) -> Vec<String> {
    let mut keys = vec![meta.limit_key()];
    let (browser, _) = session::csrf_token(state, headers);
    keys.push(format!("browser:{browser}"));
    if let Some(user) = user {
        keys.push(format!("user:{user}"));
    }
    keys
}

/// Starts a code attempt under every key (see `Throttle::begin`): `Err` is how long to wait,
/// and then nothing stays begun.
fn begin_attempt(state: &AppState, keys: &[String], now: i64) -> Result<(), i64> {
    let mut throttle = state.node.device_attempts.lock().unwrap_or_else(|p| p.into_inner());
    for (i, key) in keys.iter().enumerate() {
        if let Err(wait) = throttle.begin(key, now) {
            for begun in &keys[..i] {
                throttle.abandon(begun);
            }
            return Err(wait);
        }
    }
    Ok(())
}

/// Ends a code attempt: a wrong code counts against every key; a right one resets nothing (a
/// valid code of one's own must not buy more guesses).
fn end_attempt(state: &AppState, keys: &[String], now: i64, wrong: bool) {
    if wrong {
        state.metrics.device_event("wrong_code");
    }
    let mut throttle = state.node.device_attempts.lock().unwrap_or_else(|p| p.into_inner());
    for key in keys {
        if wrong {
            throttle.fail_attempt(key, now);
        } else {
            throttle.abandon(key);
        }
    }
}

/// Sends the browser to sign in, coming back to confirm the device with `code` afterwards.
async fn to_sign_in(state: &AppState, meta: &ClientMeta, code: UserCode) -> Response {
    match sign_in::begin(state, meta, Continuation::Device(code)).await {
        Ok(token) => Redirect::to(&format!("/login?request={token}")).into_response(),
        Err(e) => e.into_page("The code could not be checked. Try again shortly.").into_response(),
    }
}

fn too_many(wait: i64) -> Response {
    PageError::too_many(wait, format!("Too many wrong codes. Try again in {wait} seconds.")).into_response()
}

/// Looks a typed code up, counting wrong ones. `Err` is the page to show.
async fn lookup(
    state: &AppState,
    meta: &ClientMeta,
    headers: &HeaderMap,
    user: Option<&str>,
    typed: &str,
) -> Result<(UserCode, postern_store::DeviceAuthorization), Response> {
    let now = state.now();
    let keys = attempt_keys(meta, headers, state, user);
    begin_attempt(state, &keys, now).map_err(too_many)?;
    let found = match UserCode::parse(typed) {
        Some(code) => match state.store.pending_device_authorization(&state.keys.user_code_hash(&code), now).await {
            Ok(Some(auth)) => Some((code, auth)),
            Ok(None) => None,
            Err(e) => {
                end_attempt(state, &keys, now, false);
                return Err(PageError::failed(e, "The code could not be checked. Try again shortly.").into_response());
            }
        },
        None => None,
    };
    end_attempt(state, &keys, now, found.is_none());
    found.ok_or_else(|| entry_page(state, headers, StatusCode::BAD_REQUEST, typed, Some(NOT_VALID)))
}

/// `POST /device`: check the code, then sign in (if needed) and confirm.
pub async fn submit(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &CodeForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let signed_in = match session::on_page(&state, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    };
    let user = signed_in.as_ref().map(|(_, s)| s.user_id.as_str());
    match lookup(&state, &meta, &headers, user, &form.user_code).await {
        Ok((code, _)) if signed_in.is_some() => {
            Redirect::to(&format!("/device/confirm?user_code={code}")).into_response()
        }
        Ok((code, _)) => to_sign_in(&state, &meta, code).await,
        Err(page) => page,
    }
}

/// `GET /device/confirm`: who asks, for what, from where.
pub async fn confirm(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    q: Result<Query<CodeQuery>, QueryRejection>,
) -> Response {
    let typed = q.map(|q| q.0.user_code).unwrap_or_default();
    let Some((_, session)) = (match session::on_page(&state, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    }) else {
        return match UserCode::parse(&typed) {
            Some(code) => to_sign_in(&state, &meta, code).await,
            None => Redirect::to("/login").into_response(),
        };
    };
    let (code, auth) = match lookup(&state, &meta, &headers, Some(&session.user_id), &typed).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let (client, user) =
        match (state.store.client_by_id(&auth.client_id).await, state.store.user_by_id(&session.user_id).await) {
            (Ok(Some(c)), Ok(Some(u))) => (c, u),
            _ => return entry_page(&state, &headers, StatusCode::BAD_REQUEST, &typed, Some(NOT_VALID)),
        };
    if client.policy.require_verified_email && !user.email_verified {
        return unverified_page(&state, &headers, &client.name, &user.email);
    }
    if client.policy.require_mfa && !has_mfa(&session) {
        return step_up(&state, &client.name, &user, &session, code).await;
    }
    let (csrf, cookie) = session::csrf_token(&state, &headers);
    let scopes = crate::apikeys::describe_scopes(&state.store, &auth.scope).await;
    let resources = crate::resources::describe(&state.store, &auth.resource).await;
    let view = DeviceConfirmPage {
        csrf: &csrf,
        code: code.as_str(),
        client_name: &client.name,
        email: &user.email,
        scopes: &scopes,
        resources: &resources,
        requested_at: &postern_core::time::rfc3339(auth.created_at),
        ip: auth.ip.as_deref().unwrap_or("an unknown address"),
        user_agent: auth.user_agent.as_deref().unwrap_or("unknown device"),
    };
    with_cookie(page(StatusCode::OK, render(&view)), cookie)
}

/// `POST /device/confirm`: approve or deny, once.
pub async fn decide(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<CodeForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &CodeForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let Some((_, session)) = (match session::on_page(&state, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    }) else {
        return Redirect::to("/device").into_response();
    };
    // The decision names a code too: it is throttled like the entry form, or it would be a
    // guessing oracle that also answers other people's requests.
    let now = state.now();
    let keys = attempt_keys(&meta, &headers, &state, Some(&session.user_id));
    if let Err(wait) = begin_attempt(&state, &keys, now) {
        return too_many(wait);
    }
    let Some(code) = UserCode::parse(&form.user_code) else {
        end_attempt(&state, &keys, now, true);
        return entry_page(&state, &headers, StatusCode::BAD_REQUEST, "", Some(NOT_VALID));
    };
    let approve = form.decision == "approve";
    if approve && let Some(gate) = approval_gate(&state, &headers, &code, &session, now).await {
        end_attempt(&state, &keys, now, false);
        return gate;
    }
    let decision = if approve {
        Decision::Approve { user_id: &session.user_id, auth_time: session.auth_time, amr: &session.amr }
    } else {
        Decision::Deny { user_id: &session.user_id }
    };
    let decided = state.store.decide_device_authorization(&state.keys.user_code_hash(&code), now, decision).await;
    end_attempt(&state, &keys, now, matches!(decided, Ok(false)));
    match decided {
        Ok(true) => {}
        Ok(false) => return entry_page(&state, &headers, StatusCode::BAD_REQUEST, "", Some(NOT_VALID)),
        Err(e) => return PageError::failed(e, "Your answer could not be saved. Try again shortly.").into_response(),
    }
    let (action, event) = if approve { ("device.approve", "approval") } else { ("device.deny", "denial") };
    state.metrics.device_event(event);
    let audit = NewAuditEvent {
        actor: &session.user_id,
        action,
        target: None,
        ip: meta.ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
        outcome: "success",
        details: None,
    };
    if let Err(e) = state.store.record_audit(&audit, now).await {
        tracing::error!(error = %e, "device: could not record the audit event");
    }
    if approve {
        message(StatusCode::OK, "Device connected", "You can return to your device now.")
    } else {
        message(StatusCode::OK, "Request denied", "The device was not connected. You can close this page.")
    }
}

/// Whether the session used a second factor.
fn has_mfa(session: &postern_store::Session) -> bool {
    session.amr.split(' ').any(|a| a == "mfa")
}

/// A client that requires a second factor, and a session without one: the person gives a code
/// (and comes back to this confirmation), or is told to set a second factor up.
async fn step_up(
    state: &AppState,
    client_name: &str,
    user: &postern_store::User,
    session: &postern_store::Session,
    code: UserCode,
) -> Response {
    match crate::sign_in::has_second_factor(state, user).await {
        Ok(true) => {}
        Ok(false) => {
            let text = format!(
                "{client_name} needs two-step verification, and your account has none yet. Set up an authenticator \
                 app or a passkey on your account page (/account), then enter the code again."
            );
            return PageError::refused(StatusCode::FORBIDDEN, "Two-step verification needed", text).into_response();
        }
        Err(e) => return PageError::failed(e, "The code could not be checked. Try again shortly.").into_response(),
    }
    let waiting =
        crate::sign_in::SignIn { token: String::new(), continuation: crate::sign_in::Continuation::Device(code) };
    let so_far = crate::sign_in::Amr::from_stored(&session.amr);
    match crate::sign_in::pause(state, &waiting, user, &so_far).await {
        Ok(token) => crate::routes::pages::second_step::to_second_step(state, &token),
        Err(e) => e.into_page("The code could not be checked. Try again shortly.").into_response(),
    }
}

/// The gates for approving `code`: the page to show instead when its client admits only
/// verified addresses and the user's is not, or requires a second factor the session did not
/// use (or when that cannot be checked).
async fn approval_gate(
    state: &AppState,
    headers: &HeaderMap,
    code: &UserCode,
    session: &postern_store::Session,
    now: i64,
) -> Option<Response> {
    let checked = async {
        let Some(auth) = state.store.pending_device_authorization(&state.keys.user_code_hash(code), now).await? else {
            return Ok(None);
        };
        let client = state.store.client_by_id(&auth.client_id).await?;
        let user = state.store.user_by_id(&session.user_id).await?;
        Ok::<_, postern_store::StoreError>(match (client, user) {
            (Some(c), Some(u)) if c.policy.require_verified_email && !u.email_verified => {
                Some(unverified_page(state, headers, &c.name, &u.email))
            }
            (Some(c), Some(_)) if c.policy.require_mfa && !has_mfa(session) => Some(
                PageError::refused(
                    StatusCode::FORBIDDEN,
                    "Two-step verification needed",
                    format!("{} needs a sign-in with two-step verification. Enter the code again.", c.name),
                )
                .into_response(),
            ),
            _ => None,
        })
    };
    match checked.await {
        Ok(page) => page,
        Err(e) => Some(PageError::failed(e, "Your answer could not be saved. Try again shortly.").into_response()),
    }
}
