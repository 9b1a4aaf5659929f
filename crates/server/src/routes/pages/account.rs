//! The account page: the signed-in user's API keys (personal, and those of the service
//! accounts they own) with creation, the key shown once, and revocation; and their service
//! accounts.
//!
//! Forms are posted from this page only (same `Origin`, CSRF token). A new key appears in the
//! answer to the creation form and nowhere else: the answer is `no-store`, and opening the page
//! again shows the key's public prefix only. The copy button's script is served from
//! `/assets/account.js`, the one script the page's policy allows.

use crate::apikeys::{self, CreateError, Expiry, Holdings, KeyRequest};
use crate::entitlements::Entitled;
use crate::error::PageError;
use crate::routes::pages::{Policy, page_with, same_origin};
use crate::second_factor::TotpStatus;
use crate::session;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postern_core::scope::Scope;
use postern_pages::{
    ACCOUNT_JS, AccountPage, AppRow, KeyRow, PASSKEY_JS, PasskeyRow, PasskeysView, ScopeChoice, ServiceAccountRow,
    SessionRow, TotpView, render,
};
use postern_store::{ApiKeyRecord, KeyOwner, User};
use serde_json::json;

/// What the page shows besides the lists.
#[derive(Default)]
pub(crate) struct Banner<'a> {
    pub new_key: Option<&'a str>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    /// Recovery codes just made, shown this once.
    pub recovery_codes: Option<&'a [String]>,
}

/// `GET /assets/account.js`.
pub async fn script() -> Response {
    script_file(ACCOUNT_JS)
}

/// `GET /assets/passkey.js`.
pub async fn passkey_script() -> Response {
    script_file(PASSKEY_JS)
}

fn script_file(text: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], text).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// `GET /account`.
pub async fn show(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(user) => render_page(&state, &headers, &user, StatusCode::OK, Banner::default()).await,
        Err(r) => r,
    }
}

/// The signed-in user, or a redirect to the sign-in page (or "try again" if the session could
/// not be read).
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<User, Response> {
    let shown = |e| PageError::failed(e, "Your account could not be shown. Try again shortly.").into_response();
    let Some((_, s)) = session::current(state, headers).await.map_err(shown)? else {
        return Err(Redirect::to("/login").into_response());
    };
    match state.store.user_by_id(&s.user_id).await.map_err(shown)? {
        Some(user) if !user.disabled => Ok(user),
        _ => Err(Redirect::to("/login").into_response()),
    }
}

/// A posted form from this page: the signed-in user and the fields, or the refusal.
pub(crate) async fn posted(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(User, Vec<(String, String)>), Response> {
    let user = signed_in(state, headers).await?;
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let csrf = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
    if !same_origin(state, headers) || !session::csrf_ok(state, headers, csrf) {
        return Err(crate::routes::pages::Refused::Forged.into_response());
    }
    Ok((user, fields))
}

/// A posted form from this page, with what the user holds (to check ownership against).
async fn posted_with_holdings(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(User, Vec<(String, String)>, Holdings), Response> {
    let (user, fields) = posted(state, headers, body).await?;
    match Holdings::of(&state.store, &user.id).await {
        Ok(h) => Ok((user, fields, h)),
        Err(e) => Err(unavailable(state, headers, &user, e).await),
    }
}

pub(crate) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
}

/// `POST /account/keys`: creates a key and shows it, this once.
pub async fn create_key(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let (user, fields, holdings) = match posted_with_holdings(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let owner = match field(&fields, "owner") {
        "" => KeyOwner::User(&user.id),
        id => match holdings.service_account(id) {
            Some(sa) => KeyOwner::ServiceAccount(&sa.id),
            None => return failed(&state, &headers, &user, "That service account is not yours.").await,
        },
    };
    let mut scopes: Vec<String> =
        fields.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.trim().to_owned()).collect();
    scopes.extend(field(&fields, "more_scopes").split_whitespace().map(str::to_owned));
    let expiry = match field(&fields, "expires") {
        "never" => Expiry::Never,
        days => match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Expiry::After(d * 86_400),
            _ => Expiry::Default,
        },
    };
    let request = KeyRequest { owner, name: field(&fields, "name"), scopes: &scopes, expiry, within: None };
    match apikeys::create(&state.store, &state.config.api_keys, &request, state.now()).await {
        Ok((key, record)) => {
            audit(&state, &user.id, "api_key.created", &record.id, json!({ "public_prefix": record.public_prefix }))
                .await;
            let banner = Banner { new_key: Some(key.expose()), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::CREATED, banner).await
        }
        Err(CreateError::Invalid(m)) => failed(&state, &headers, &user, &m).await,
        Err(CreateError::Store(e)) => unavailable(&state, &headers, &user, e).await,
    }
}

/// `POST /account/keys/{id}/revoke`.
pub async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (user, _, holdings) = match posted_with_holdings(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(key) = holdings.key(&id) else {
        return failed(&state, &headers, &user, "No such key.").await;
    };
    match state.store.revoke_api_key(&key.id, state.now()).await {
        Ok(revoked) => {
            state.node.api_keys.forget_all();
            if revoked {
                audit(&state, &user.id, "api_key.revoked", &key.id, json!({ "public_prefix": key.public_prefix }))
                    .await;
            }
            let notice = format!("The key {} is revoked.", key.name);
            let banner = Banner { notice: Some(&notice), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::OK, banner).await
        }
        Err(e) => unavailable(&state, &headers, &user, e).await,
    }
}

/// `POST /account/service-accounts`: a service account owned by the signed-in user.
pub async fn create_service_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, fields) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let name = field(&fields, "name").trim();
    let now = state.now();
    match apikeys::create_service_account(&state.store, &user.id, name, field(&fields, "description"), now).await {
        Ok(sa) => {
            audit(&state, &user.id, "service_account.created", &sa.id, json!({ "name": sa.name, "owner": user.id }))
                .await;
            let notice = format!("The service account {} is created.", sa.name);
            let banner = Banner { notice: Some(&notice), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::CREATED, banner).await
        }
        Err(CreateError::Invalid(m)) => failed(&state, &headers, &user, &m).await,
        Err(CreateError::Store(e)) => unavailable(&state, &headers, &user, e).await,
    }
}

/// `POST /account/email/resend`: a new verification link for the signed-in user.
pub async fn resend_verification(
    State(state): State<AppState>,
    meta: crate::routes::ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (user, _) = match posted(&state, &headers, &body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match crate::routes::pages::registration::resend(&state, &meta, &user).await {
        Ok(notice) => {
            let banner = Banner { notice: Some(&notice), ..Banner::default() };
            render_page(&state, &headers, &user, StatusCode::OK, banner).await
        }
        Err(page) => page.into_response(),
    }
}

pub(crate) async fn failed(state: &AppState, headers: &HeaderMap, user: &User, error: &str) -> Response {
    let banner = Banner { error: Some(error), ..Banner::default() };
    render_page(state, headers, user, StatusCode::BAD_REQUEST, banner).await
}

pub(crate) async fn unavailable(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
    e: impl std::fmt::Display,
) -> Response {
    tracing::error!(error = %e, "account page: storage failed");
    let banner = Banner { error: Some("Something went wrong on our side. Try again shortly."), ..Banner::default() };
    render_page(state, headers, user, StatusCode::SERVICE_UNAVAILABLE, banner).await
}

pub(crate) async fn render_page(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
    status: StatusCode,
    b: Banner<'_>,
) -> Response {
    let now = state.now();
    let entitled = crate::entitlements::of(&state.store, KeyOwner::User(&user.id)).await;
    let (holdings, registry, entitled) =
        match (Holdings::of(&state.store, &user.id).await, state.store.scopes().await, entitled) {
            (Ok(h), Ok(r), Ok(e)) => (h, r, e),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                return PageError::failed(e, "Your account could not be shown. Try again shortly.").into_response();
            }
        };
    let keys: Vec<KeyRow> = holdings.keys.iter().map(|k| key_row(k, now)).collect();
    let service_accounts: Vec<ServiceAccountRow> = holdings
        .service_accounts
        .iter()
        .map(|s| ServiceAccountRow { id: s.id.clone(), name: s.name.clone(), description: s.description.clone() })
        .collect();
    let scopes = scope_choices(&registry, &entitled);
    let (sessions, apps) = match access_rows(state, headers, user, now).await {
        Ok(rows) => rows,
        Err(e) => return PageError::failed(e, "Your account could not be shown. Try again shortly.").into_response(),
    };
    let totp = match crate::second_factor::status(state, user).await {
        Ok(t) => t,
        Err(e) => return PageError::failed(e, "Your account could not be shown. Try again shortly.").into_response(),
    };
    let totp = match &totp {
        TotpStatus::Off => TotpView { on: false, setting_up: None, recovery_codes_left: 0, new_recovery_codes: None },
        TotpStatus::SettingUp(e) => TotpView {
            on: false,
            setting_up: Some((&e.qr_svg, &e.key)),
            recovery_codes_left: 0,
            new_recovery_codes: None,
        },
        TotpStatus::On { recovery_codes_left } => TotpView {
            on: true,
            setting_up: None,
            recovery_codes_left: *recovery_codes_left,
            new_recovery_codes: b.recovery_codes,
        },
    };
    let passkeys: Vec<PasskeyRow> = match crate::passkeys::list(state, &user.id).await {
        Ok(list) => list
            .into_iter()
            .map(|p| PasskeyRow {
                id: p.id,
                name: p.name,
                created: postern_core::time::utc_minutes(p.created_at),
                last_used: p.last_used_at.map_or_else(|| "never".into(), postern_core::time::utc_minutes),
            })
            .collect(),
        Err(e) => return PageError::failed(e, "Your account could not be shown. Try again shortly.").into_response(),
    };
    let (csrf, cookie) = session::csrf_token(state, headers);
    let view = AccountPage {
        csrf: &csrf,
        email: &user.email,
        email_verified: user.email_verified,
        name: user.display_name.as_deref(),
        new_key: b.new_key,
        error: b.error,
        notice: b.notice,
        keys: &keys,
        service_accounts: &service_accounts,
        scopes: &scopes,
        allow_no_expiry: state.config.api_keys.allow_no_expiry,
        sessions: &sessions,
        apps: &apps,
        totp,
        passkeys: PasskeysView { available: state.webauthn.is_some(), list: &passkeys },
    };
    // The scripts this page runs are our own files.
    let policy = Policy { own_scripts: true, form_target: None };
    crate::routes::pages::login::with_cookie(page_with(status, render(&view), &policy), cookie)
}

/// The user's signed-in browsers and the apps holding access, as the page lists them.
async fn access_rows(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
    now: i64,
) -> Result<(Vec<SessionRow>, Vec<AppRow>), postern_store::StoreError> {
    let current = session::current(state, headers).await?.map(|(hash, _)| hash);
    let sessions = crate::access::sessions(&state.store, &user.id, current.as_ref(), now)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            device: s.device,
            ip: s.ip.unwrap_or_else(|| "unknown address".into()),
            signed_in: postern_core::time::utc_minutes(s.signed_in_at),
            last_active: postern_core::time::utc_minutes(s.last_active_at),
            current: s.current,
        })
        .collect();
    let mut apps = Vec::new();
    for a in crate::access::apps(&state.store, &user.id, now).await? {
        apps.push(AppRow {
            scopes: crate::apikeys::describe_scopes(&state.store, &a.scope).await,
            client_id: a.client_id,
            name: a.name,
            since: postern_core::time::utc_minutes(a.since),
            last_used: a.last_used_at.map_or_else(|| "never".into(), postern_core::time::utc_minutes),
        });
    }
    Ok((sessions, apps))
}

/// The scopes the page offers: only what the user may hold. A scope taking values is offered
/// as `name:*` when the user holds all of it, else as each value they hold.
fn scope_choices(registry: &[postern_store::RegisteredScope], entitled: &Entitled) -> Vec<ScopeChoice> {
    let mut choices = Vec::new();
    for r in registry {
        let broad = if r.takes_values { format!("{}:*", r.name) } else { r.name.clone() };
        if Scope::parse(&broad).is_ok_and(|s| entitled.covers(&s)) {
            choices.push(ScopeChoice { value: broad, description: r.description.clone() });
        } else if let (true, Entitled::Scopes(held)) = (r.takes_values, entitled) {
            for s in held {
                if let Some(value) = s.as_str().strip_prefix(r.name.as_str()).and_then(|v| v.strip_prefix(':')) {
                    let description = format!("{}: {value}", r.description);
                    choices.push(ScopeChoice { value: s.as_str().to_owned(), description });
                }
            }
        }
    }
    choices
}

fn key_row(k: &ApiKeyRecord, now: i64) -> KeyRow {
    let status = if k.revoked_at.is_some() {
        Some("revoked")
    } else if k.expires_at.is_some_and(|e| e <= now) {
        Some("expired")
    } else {
        None
    };
    KeyRow {
        id: k.id.clone(),
        name: k.name.clone(),
        prefix: postern_core::apikey::display_prefix(&k.public_prefix),
        owner: match &k.service_account_name {
            Some(sa) => format!("service account {sa}"),
            None => "you".into(),
        },
        scopes: k.scope.clone(),
        created: postern_core::time::utc_minutes(k.created_at),
        last_used: k.last_used_at.map_or_else(|| "never".into(), postern_core::time::utc_minutes),
        expires: k.expires_at.map_or_else(|| "never".into(), postern_core::time::utc_minutes),
        status,
    }
}

/// Records what a signed-in user did with keys or service accounts.
pub(crate) async fn audit(state: &AppState, actor: &str, action: &str, target: &str, details: serde_json::Value) {
    let event = postern_store::NewAuditEvent {
        actor,
        action,
        target: Some(target),
        outcome: "success",
        details: Some(details),
        ..Default::default()
    };
    crate::audit::record(state, &event).await;
}
