//! The authorization endpoint (RFC 6749 §4.1, OAuth 2.1, OpenID Connect Core §3.1).
//!
//! Order matters for safety: until the client and the redirect URI are known to be registered,
//! every error is shown on an error page and nothing is redirected (no open redirects). After
//! that, errors go back to the client with `error`, `state` and `iss` (RFC 9207). A request that
//! needs the user (sign-in, consent) is kept server-side under a random handle (only its hash is
//! stored) and resumed from there; nothing is trusted from the query after the round trip.

use super::ClientMeta;
use super::oauth_form::OAuthForm;
use super::pages::{FormTarget, Policy, checked_form, message, page_with};
use crate::error::PageError;
use crate::session;
use crate::sign_in::{self, Continuation};
use crate::state::AppState;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use postern_core::client::{ClientType, GrantType};
use postern_core::oauth::{OAuthError, grant_user_scopes, parse_scope_param, scope_string};
use postern_core::oidc::Prompt;
use postern_core::secret::{BearerSecret, TokenHash};
use postern_pages::{ConsentPage, render};
use postern_store::{Client, CodeGrant, NewCode};
use serde::{Deserialize, Serialize};

/// How long a request may wait for sign-in and consent.
const PENDING_SECS: i64 = 600;
/// RFC 6749 §4.1.2 recommends at most ten minutes; one is plenty for a redirect.
const CODE_SECS: i64 = 60;

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    client_id: String,
    redirect_uri: String,
    /// Whether the request named `redirect_uri` (it may be left out when the client has only
    /// one): only then must the token request repeat it (RFC 6749 §4.1.3).
    #[serde(default = "named")]
    redirect_uri_named: bool,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    prompt: Prompt,
    max_age: Option<i64>,
    created_at: i64,
}

fn named() -> bool {
    true
}

/// An error shown on our own page (the client or redirect URI could not be trusted).
fn error_page(text: &str) -> Response {
    message(StatusCode::BAD_REQUEST, "This sign-in request cannot be completed", text)
}

/// Sends the user back to the client with these parameters and `iss`.
fn back_to_client(state: &AppState, pending: &Pending, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(&pending.redirect_uri) else {
        return error_page("The application's redirect address is not valid.");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = &pending.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &state.issuer);
    }
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

fn error_to_client(state: &AppState, pending: &Pending, code: &str, description: &str) -> Response {
    back_to_client(state, pending, &[("error", code), ("error_description", description)])
}

/// Why a request cannot even be answered through its redirect URI.
enum Untrusted {
    /// Shown on our error page.
    Invalid(String),
    /// The database did not answer.
    Unavailable(postern_store::StoreError),
}

/// What a page says when the request could not be checked against what is stored.
const UNCHECKED: &str = "The server could not check this request.";

impl Untrusted {
    fn invalid(text: &str) -> Self {
        Untrusted::Invalid(text.to_owned())
    }

    fn into_response(self) -> Response {
        match self {
            Untrusted::Invalid(text) => error_page(&text),
            Untrusted::Unavailable(e) => PageError::failed(e, UNCHECKED).into_response(),
        }
    }
}

/// Validates the request: `Err` before the redirect URI is trusted, `Ok(Err(..))` for errors
/// to redirect, `Ok(Ok(..))` for a valid request.
async fn validate(
    state: &AppState,
    q: &OAuthForm,
) -> Result<(Client, Result<Pending, (Pending, OAuthError)>), Untrusted> {
    let one = |name| q.one(name).map_err(|e| Untrusted::Invalid(e.description().unwrap_or_default()));
    let client_id =
        one("client_id")?.ok_or_else(|| Untrusted::invalid("The request names no application (client_id)."))?;
    let client = match state.store.client_by_id(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(Untrusted::invalid("The application is not registered here.")),
        Err(e) => return Err(Untrusted::Unavailable(e)),
    };
    let redirect_uri_named = one("redirect_uri")?.is_some();
    let redirect_uri = match one("redirect_uri")? {
        Some(r) => client
            .redirect_uris
            .iter()
            .any(|reg| reg.matches(r))
            .then(|| r.to_owned())
            .ok_or_else(|| Untrusted::invalid("The redirect address is not registered for this application."))?,
        // RFC 6749 §3.1.2.3: may be omitted when exactly one is registered.
        None => match client.redirect_uris.as_slice() {
            [only] => only.as_str().to_owned(),
            _ => {
                return Err(Untrusted::invalid("The request must name its redirect address (redirect_uri)."));
            }
        },
    };
    // From here on, errors go back to the (now trusted) redirect URI.
    let mut pending = Pending {
        client_id: client.client_id.clone(),
        redirect_uri,
        redirect_uri_named,
        scope: String::new(),
        state: None,
        nonce: None,
        code_challenge: String::new(),
        prompt: Prompt::default(),
        max_age: None,
        created_at: state.now(),
    };
    let rest = check(state, q, &client, &mut pending);
    Ok((client, rest.map(|()| pending.clone()).map_err(|e| (pending, e))))
}

fn check(_state: &AppState, q: &OAuthForm, client: &Client, p: &mut Pending) -> Result<(), OAuthError> {
    p.state = q.one("state")?.map(str::to_owned);
    if client.policy.require_state && p.state.is_none() {
        return Err(OAuthError::invalid_request("this client must send state"));
    }
    p.nonce = q.one("nonce")?.map(str::to_owned);
    if q.one("request")?.is_some() {
        return Err(OAuthError::RequestNotSupported);
    }
    if q.one("request_uri")?.is_some() {
        return Err(OAuthError::RequestUriNotSupported);
    }
    match q.one("response_type")? {
        Some("code") => {}
        Some(_) => return Err(OAuthError::UnsupportedResponseType),
        None => return Err(OAuthError::invalid_request("missing response_type")),
    }
    // The answer comes back in the query; any other mode the client expects would be missed.
    match q.one("response_mode")? {
        None | Some("query") => {}
        Some(_) => return Err(OAuthError::invalid_request("only response_mode=query is supported")),
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the authorization code flow".into()));
    }
    match q.one("code_challenge_method")? {
        Some("S256") => {}
        Some("plain") => {
            return Err(OAuthError::invalid_request("PKCE method plain is not allowed; use S256"));
        }
        Some(_) => {
            return Err(OAuthError::invalid_request("unsupported code_challenge_method; use S256"));
        }
        None => {
            return Err(OAuthError::invalid_request("PKCE is required: send code_challenge_method=S256"));
        }
    }
    let challenge = q.one("code_challenge")?.ok_or_else(|| OAuthError::invalid_request("missing code_challenge"))?;
    if !postern_core::pkce::challenge_syntax_ok(challenge) {
        return Err(OAuthError::invalid_request("code_challenge is not an S256 challenge"));
    }
    p.code_challenge = challenge.to_owned();
    let requested = parse_scope_param(q.one("scope")?.unwrap_or_default())?;
    p.scope = scope_string(&grant_user_scopes(&requested, &client.allowed_scopes)?);
    p.prompt = Prompt::parse(q.one("prompt")?).map_err(OAuthError::InvalidRequest)?;
    p.max_age = match q.one("max_age")? {
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|m| *m >= 0)
                .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))?,
        ),
        None => None,
    };
    Ok(())
}

/// `GET /oauth/authorize`: the request in the query.
pub async fn authorize(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    start(&state, &meta, &headers, &OAuthForm::parse(query.unwrap_or_default().as_bytes())).await
}

/// `POST /oauth/authorize`: the same request as a form body (OpenID Connect Core §3.1.2.1).
pub async fn authorize_posted(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next());
    if !form_type.is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
        return error_page("The request must be sent as a form (application/x-www-form-urlencoded).");
    }
    start(&state, &meta, &headers, &OAuthForm::parse(&body)).await
}

async fn start(state: &AppState, meta: &ClientMeta, headers: &HeaderMap, q: &OAuthForm) -> Response {
    match validate(state, q).await {
        Err(untrusted) => untrusted.into_response(),
        Ok((_, Err((pending, e)))) => error_to_client(state, &pending, e.code(), &e.description().unwrap_or_default()),
        Ok((client, Ok(pending))) => proceed(state, meta, headers, &client, pending, Pause::New).await,
    }
}

/// Keeps a request waiting for a sign-in or consent, under a new handle. Rate-limited per
/// client address and per client (`limits.*`): each one is a stored row.
async fn save(state: &AppState, meta: &ClientMeta, pending: &Pending) -> Result<String, Response> {
    let now = state.now();
    if let Err(wait) = state.anonymous_writes.authorization_request(&meta.limit_key(), &pending.client_id, now) {
        let text = format!("Too many sign-in requests from here. Try again in {wait} seconds.");
        return Err(PageError::too_many(wait, text).into_response());
    }
    let handle = BearerSecret::generate(&mut postern_core::system::os_rng());
    let json = serde_json::to_string(pending).unwrap_or_default();
    state
        .store
        .save_authorization_request(&handle.hash(), &pending.client_id, &json, now, now + PENDING_SECS)
        .await
        .map_err(|e| PageError::failed(e, "The server could not keep this request.").into_response())?;
    Ok(handle.expose().to_owned())
}

/// Whether the request is already kept waiting (its handle) or new (kept when it must wait).
enum Pause {
    New,
    Kept(String),
}

/// Sign-in, then consent, then the code: whichever is still needed.
async fn proceed(
    state: &AppState,
    meta: &ClientMeta,
    headers: &HeaderMap,
    client: &Client,
    pending: Pending,
    pause: Pause,
) -> Response {
    let now = state.now();
    let unchecked = |e| PageError::failed(e, UNCHECKED).into_response();
    let current = match session::current(state, headers).await {
        Ok(c) => c,
        Err(e) => return unchecked(e),
    };
    let fresh_enough = |auth_time: i64| {
        (!pending.prompt.login || auth_time >= pending.created_at)
            && pending.max_age.is_none_or(|m| now - auth_time <= m)
    };
    let user = match &current {
        Some((_, s)) if fresh_enough(s.auth_time) => match state.store.user_by_id(&s.user_id).await {
            Ok(u) => u.filter(|u| !u.disabled),
            Err(e) => return unchecked(e),
        },
        _ => None,
    };
    let (Some(user), Some((_, session))) = (user, current) else {
        if pending.prompt.none {
            return error_to_client(state, &pending, "login_required", "the user must sign in");
        }
        let handle = match pause {
            Pause::Kept(h) => h,
            Pause::New => match save(state, meta, &pending).await {
                Ok(h) => h,
                Err(r) => return r,
            },
        };
        return to_sign_in(state, meta, handle).await;
    };
    let remembered = match state.store.consent(&user.id, &client.client_id).await {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return PageError::failed(e, UNCHECKED).into_response(),
    };
    let covered = pending.scope.split(' ').filter(|s| !s.is_empty()).all(|s| remembered.split(' ').any(|r| r == s));
    // A public client cannot prove who it is (any local process can listen on a loopback port
    // and use its client_id), so it is never approved silently (RFC 8252 §8.6): the person
    // always confirms, seeing where the browser goes next.
    let public = client.client_type == ClientType::Public;
    let needs_consent = public || (!client.first_party && (pending.prompt.consent || !covered));
    if needs_consent {
        if pending.prompt.none {
            return error_to_client(state, &pending, "consent_required", "the user must allow this application");
        }
        let handle = match pause {
            Pause::Kept(h) => h,
            Pause::New => match save(state, meta, &pending).await {
                Ok(h) => h,
                Err(r) => return r,
            },
        };
        let (csrf, cookie) = session::csrf_token(state, headers);
        let scopes = crate::apikeys::describe_scopes(&state.store, &pending.scope).await;
        let view = ConsentPage {
            csrf: &csrf,
            request: &handle,
            client_name: &client.name,
            email: &user.email,
            scopes: &scopes,
            redirect: public.then_some(pending.redirect_uri.as_str()),
        };
        // "Allow" and "Deny" end at the client, through a redirect the policy must allow.
        let target = FormTarget::of(&pending.redirect_uri);
        let policy = Policy { own_scripts: false, form_target: target.as_ref() };
        let mut response = page_with(StatusCode::OK, render(&view), &policy);
        if let Some(c) = cookie {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
        return response;
    }
    let handle = match &pause {
        Pause::Kept(h) => Some(h.as_str()),
        Pause::New => None,
    };
    issue_code(state, &pending, &user.id, session.auth_time, &session.amr, handle).await
}

async fn issue_code(
    state: &AppState,
    pending: &Pending,
    user_id: &str,
    auth_time: i64,
    amr: &str,
    handle: Option<&str>,
) -> Response {
    let now = state.now();
    let code = BearerSecret::generate(&mut postern_core::system::os_rng());
    let grant = CodeGrant {
        client_id: pending.client_id.clone(),
        user_id: user_id.to_owned(),
        // Empty when the request did not name it: the token request need not either.
        redirect_uri: if pending.redirect_uri_named { pending.redirect_uri.clone() } else { String::new() },
        code_challenge: pending.code_challenge.clone(),
        nonce: pending.nonce.clone(),
        scope: pending.scope.clone(),
        auth_time,
        amr: amr.to_owned(),
    };
    if let Err(e) = state
        .store
        .create_code(&NewCode { hash: code.hash(), grant: &grant, issued_at: now, expires_at: now + CODE_SECS })
        .await
    {
        tracing::error!(error = %e, "authorize: could not store the code");
        return error_to_client(state, pending, "server_error", "internal error");
    }
    if let Some(h) = handle {
        let _ = state.store.delete_authorization_request(&TokenHash::of(h)).await;
    }
    back_to_client(state, pending, &[("code", code.expose())])
}

/// Request handles are 43 base64url characters; anything else is no handle.
fn is_handle(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Sends the browser to sign in, continuing with the waiting request `handle` afterwards.
async fn to_sign_in(state: &AppState, meta: &ClientMeta, handle: String) -> Response {
    match sign_in::begin(state, meta, Continuation::Authorize(handle)).await {
        Ok(token) => Redirect::to(&format!("/login?request={token}")).into_response(),
        Err(e) => e.into_page("The server could not keep this request.").into_response(),
    }
}

/// Loads a waiting request by its handle, with its client.
async fn load(state: &AppState, handle: &str) -> Option<(Client, Pending)> {
    if !is_handle(handle) {
        return None;
    }
    let json = state.store.authorization_request(&TokenHash::of(handle), state.now()).await.ok()??;
    let pending: Pending = serde_json::from_str(&json).ok()?;
    let client = state.store.client_by_id(&pending.client_id).await.ok()??;
    Some((client, pending))
}

/// The client origin that signing in for this waiting request may end at (see
/// [`Policy::form_target`]); `None` for anything that is not a live request handle.
pub async fn form_target(state: &AppState, handle: &str) -> Option<FormTarget> {
    let (_, pending) = load(state, handle).await?;
    FormTarget::of(&pending.redirect_uri)
}

const EXPIRED: &str =
    "This sign-in request has expired or was already completed. Return to the application and start again.";

#[derive(Deserialize)]
pub struct ContinueQuery {
    #[serde(default)]
    request: String,
}

/// Where sign-in sends the browser back to.
pub async fn resume(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    query: Result<axum::extract::Query<ContinueQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let handle = query.map(|q| q.0.request).unwrap_or_default();
    match load(&state, &handle).await {
        Some((client, pending)) => proceed(&state, &meta, &headers, &client, pending, Pause::Kept(handle)).await,
        None => error_page(EXPIRED),
    }
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    decision: String,
}

pub async fn consent(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let form = match checked_form(&state, &headers, form, |f: &ConsentForm| &f.csrf) {
        Ok(f) => f,
        Err(refused) => return refused.into_response(),
    };
    let Some((client, pending)) = load(&state, &form.request).await else {
        return error_page(EXPIRED);
    };
    let Some((_, session)) = (match session::on_page(&state, &headers).await {
        Ok(s) => s,
        Err(page) => return page,
    }) else {
        return to_sign_in(&state, &meta, form.request).await;
    };
    let now = state.now();
    let _ = state.store.delete_authorization_request(&TokenHash::of(&form.request)).await;
    if form.decision != "allow" {
        return error_to_client(&state, &pending, "access_denied", "the user denied the request");
    }
    // Remember the union of what was allowed before and now.
    let before = state.store.consent(&session.user_id, &client.client_id).await.ok().flatten().unwrap_or_default();
    let mut allowed: Vec<&str> = before.split(' ').filter(|s| !s.is_empty()).collect();
    for s in pending.scope.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.contains(&s) {
            allowed.push(s);
        }
    }
    if let Err(e) = state.store.save_consent(&session.user_id, &client.client_id, &allowed.join(" "), now).await {
        tracing::error!(error = %e, "authorize: could not remember the consent");
    }
    issue_code(&state, &pending, &session.user_id, session.auth_time, &session.amr, None).await
}
