//! The authorization request (RFC 6749 §4.1, OAuth 2.1, OpenID Connect Core §3.1) as a use
//! case: it takes the parsed request and the browser's session and decides an [`Outcome`], in
//! the manner of kanidm's `AuthoriseResponse`; the route only renders it.
//!
//! Order matters for safety: until the client and the redirect URI are known to be registered,
//! every problem is [`Outcome::Untrusted`] (our own error page, no open redirect). After that,
//! errors go back to the client. A request that needs the person (sign-in, consent) is kept
//! server-side under a random handle (only its hash is stored) and resumed from there; nothing
//! is trusted from the query after the round trip.

use crate::error::Cause;
use crate::routes::ClientMeta;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::sign_in::{self, BeginError, Continuation};
use crate::state::AppState;
use postern_core::client::{ClientType, GrantType};
use postern_core::oauth::{OAuthError, grant_user_scopes, parse_scope_param, scope_string};
use postern_core::oidc::Prompt;
use postern_core::scope::ScopeSet;
use postern_core::secret::{BearerSecret, TokenHash};
use postern_store::{Client, ClientId, CodeGrant, NewCode, Session, StoreError, User};
use serde::{Deserialize, Serialize};

/// How long a request may wait for sign-in and consent.
const PENDING_SECS: i64 = 600;
/// RFC 6749 §4.1.2 recommends at most ten minutes; one is plenty for a redirect.
const CODE_SECS: i64 = 60;

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub client_id: ClientId,
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (it may be left out when the client has only
    /// one): only then must the token request repeat it (RFC 6749 §4.1.3).
    #[serde(default = "named")]
    pub redirect_uri_named: bool,
    pub scope: String,
    pub state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    prompt: Prompt,
    max_age: Option<i64>,
    /// A second factor is required: the client's `require_mfa`, or `acr_values` naming
    /// `urn:postern:mfa`.
    #[serde(default)]
    mfa: bool,
    /// The resources the request named (RFC 8707), bound to the code.
    #[serde(default)]
    pub resources: Vec<String>,
    created_at: i64,
}

fn named() -> bool {
    true
}

/// Why a request cannot even be answered through its redirect URI.
#[derive(Debug)]
pub enum Untrusted {
    /// Said on our own error page.
    Invalid(String),
    /// The database did not answer.
    Unavailable(StoreError),
    /// Too many client metadata documents read for this address: wait this many seconds.
    TooMany(i64),
}

impl Untrusted {
    fn invalid(text: &str) -> Self {
        Untrusted::Invalid(text.to_owned())
    }
}

/// What the authorization endpoint answers.
#[derive(Debug)]
pub enum Outcome {
    /// The client or its redirect URI cannot be trusted: our error page, never a redirect.
    Untrusted(Untrusted),
    /// A waiting request is gone (expired, completed, or never was).
    Expired,
    /// An error sent back to the client (`error`, `error_description`).
    Error { pending: Pending, error: String, description: String },
    /// The person must sign in first: the sign-in's token, for `/login?request=…`.
    SignIn { token: String },
    /// The person must allow the client: the consent page for the request kept under `handle`.
    Consent(Box<ConsentNeeded>),
    /// The session did not use a second factor and one is required: the person gives it on
    /// the second-step page (the sign-in paused under this token, for a cookie).
    SecondStep { token: String },
    /// A second factor is required and the person has none: they are told to set one up.
    NoSecondFactor { client_name: String },
    /// The client admits only verified email addresses, and this person's is not verified:
    /// a page that says so and offers a new link (the client is not told).
    Unverified { client_name: String, email: String },
    /// Done: the code goes back to the client.
    Code { pending: Pending, code: String },
    /// The request could not be kept or answered now; `wait` seconds for a rate limit.
    Halted { cause: Halt },
}

/// What the consent page shows and answers for.
#[derive(Debug)]
pub struct ConsentNeeded {
    pub handle: RequestHandle,
    pub client: Client,
    pub user: User,
    pub pending: Pending,
    /// A public client: the page says where the browser goes next (RFC 8252 §8.6).
    pub public: bool,
}

/// Why a request stopped on our side.
#[derive(Debug)]
pub enum Halt {
    /// Too many waiting requests (or sign-ins) from this address: wait this many seconds.
    TooMany(i64),
    /// Storage failed; `text` says what could not be done.
    Failed { cause: Cause, text: &'static str },
}

/// What a page says when the request could not be checked against what is stored.
pub const UNCHECKED: &str = "The server could not check this request.";
const NOT_KEPT: &str = "The server could not keep this request.";

fn failed(e: impl crate::error::Failure, text: &'static str) -> Outcome {
    Outcome::Halted { cause: Halt::Failed { cause: Cause::of(e), text } }
}

fn error(pending: Pending, error: &str, description: &str) -> Outcome {
    Outcome::Error { pending, error: error.to_owned(), description: description.to_owned() }
}

/// A new request (its parameters from the query or a posted form), for the browser whose
/// session is `session`.
pub async fn request(state: &AppState, meta: &ClientMeta, session: Option<Session>, q: &OAuthForm) -> Outcome {
    match validate(state, meta, q).await {
        Err(untrusted) => Outcome::Untrusted(untrusted),
        Ok((_, Err((pending, e)))) => error(pending, e.code(), &e.description().unwrap_or_default()),
        Ok((client, Ok(pending))) => proceed(state, meta, session, &client, pending, None).await,
    }
}

/// A request kept waiting under `handle`, resumed after sign-in.
pub async fn resume(state: &AppState, meta: &ClientMeta, session: Option<Session>, handle: &str) -> Outcome {
    let Some(handle) = RequestHandle::parse(handle) else {
        return Outcome::Expired;
    };
    match load(state, &handle).await {
        Ok(Some((client, pending))) => proceed(state, meta, session, &client, pending, Some(handle)).await,
        Ok(None) => Outcome::Expired,
        Err(e) => failed(e, UNCHECKED),
    }
}

/// The person's answer on the consent page for the request kept under `handle`.
pub async fn decide(
    state: &AppState,
    meta: &ClientMeta,
    session: Option<Session>,
    handle: &str,
    allow: bool,
) -> Outcome {
    let Some(handle) = RequestHandle::parse(handle) else {
        return Outcome::Expired;
    };
    let (client, pending) = match load(state, &handle).await {
        Ok(Some(found)) => found,
        Ok(None) => return Outcome::Expired,
        Err(e) => return failed(e, UNCHECKED),
    };
    let Some(session) = session else {
        return to_sign_in(state, meta, handle).await;
    };
    let _ = state.store.delete_authorization_request(&handle.hash()).await;
    if !allow {
        return error(pending, "access_denied", "the user denied the request");
    }
    // Remember the union of what was allowed before and now: scopes and resources.
    let before = state.store.consent(&session.user_id, &client.client_id).await.ok().flatten().unwrap_or_default();
    let mut resources: Vec<&str> = before.resources.split_whitespace().collect();
    resources.extend(
        pending.resources.iter().map(String::as_str).filter(|r| !before.resources.split_whitespace().any(|b| b == *r)),
    );
    let allowed = postern_store::Consent {
        scope: ScopeSet::parse_list(&before.scope).union(&ScopeSet::parse_list(&pending.scope)).to_string(),
        resources: resources.join(" "),
    };
    let now = state.now();
    if let Err(e) = state.store.save_consent(&session.user_id, &client.client_id, &allowed, now).await {
        tracing::error!(error = %e, "authorize: could not remember the consent");
    }
    issue_code(state, pending, &session, None).await
}

/// The redirect URI of the request kept under `handle`: a sign-in for it may end there.
pub async fn waiting_redirect_uri(state: &AppState, handle: &RequestHandle) -> Option<String> {
    load(state, handle).await.ok().flatten().map(|(_, pending)| pending.redirect_uri)
}

/// Validates the request: `Err` before the redirect URI is trusted, `Ok(Err(..))` for errors
/// to redirect, `Ok(Ok(..))` for a valid request.
async fn validate(
    state: &AppState,
    meta: &ClientMeta,
    q: &OAuthForm,
) -> Result<(Client, Result<Pending, (Pending, OAuthError)>), Untrusted> {
    let one = |name| q.one(name).map_err(|e| Untrusted::Invalid(e.description().unwrap_or_default()));
    let client_id =
        one("client_id")?.ok_or_else(|| Untrusted::invalid("The request names no application (client_id)."))?;
    let (documents, now) = (&state.node.documents, state.now());
    let permit = || state.node.anonymous_writes.document_read(&meta.limit_key(), now);
    let found = crate::metadata_documents::client(&state.store, &state.config, documents, client_id, now, permit).await;
    let client = match found {
        Ok(Some(c)) => c,
        Ok(None) => return Err(Untrusted::invalid("The application is not registered here.")),
        Err(crate::metadata_documents::DocumentError::Store(e)) => return Err(Untrusted::Unavailable(e)),
        Err(crate::metadata_documents::DocumentError::TooMany(wait)) => return Err(Untrusted::TooMany(wait)),
        Err(e) => return Err(Untrusted::Invalid(format!("This application cannot be used: {e}."))),
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
        mfa: false,
        resources: Vec::new(),
        created_at: state.now(),
    };
    let rest = check(q, &client, &state.issuer, &mut pending);
    Ok((client, rest.map(|()| pending.clone()).map_err(|e| (pending, e))))
}

fn check(q: &OAuthForm, client: &Client, issuer: &str, p: &mut Pending) -> Result<(), OAuthError> {
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
    // RFC 8707 §2: each resource must be one the client may use, refused here (invalid_target)
    // rather than at the token endpoint after the person has consented.
    let resources = q.all("resource")?;
    if !resources.is_empty() {
        p.resources = crate::resources::audiences(issuer, client, &resources)?;
    }
    p.prompt = Prompt::parse(q.one("prompt")?).map_err(OAuthError::InvalidRequest)?;
    let acr_values = q.one("acr_values")?.unwrap_or_default();
    p.mfa = client.policy.require_mfa || acr_values.split(' ').any(|v| v == postern_core::oidc::ACR_MFA);
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

/// Keeps a request waiting for a sign-in or consent, under a new handle. Rate-limited per
/// client address and per client (`limits.*`): each one is a stored row.
async fn keep(state: &AppState, meta: &ClientMeta, pending: &Pending) -> Result<RequestHandle, Outcome> {
    let now = state.now();
    if let Err(wait) = state.node.anonymous_writes.authorization_request(&meta.limit_key(), &pending.client_id, now) {
        return Err(Outcome::Halted { cause: Halt::TooMany(wait) });
    }
    let handle = RequestHandle::new();
    let json = serde_json::to_string(pending).unwrap_or_default();
    state
        .store
        .save_authorization_request(&handle.hash(), &pending.client_id, &json, now, now + PENDING_SECS)
        .await
        .map_err(|e| failed(e, NOT_KEPT))?;
    Ok(handle)
}

/// The handle the request waits under: the one it has, or a new one it is kept under now.
async fn kept(
    state: &AppState,
    meta: &ClientMeta,
    pending: &Pending,
    handle: Option<RequestHandle>,
) -> Result<RequestHandle, Outcome> {
    match handle {
        Some(h) => Ok(h),
        None => keep(state, meta, pending).await,
    }
}

/// Starts the sign-in that will continue with the request kept under `handle`.
async fn to_sign_in(state: &AppState, meta: &ClientMeta, handle: RequestHandle) -> Outcome {
    match sign_in::begin(state, meta, Continuation::Authorize(handle)).await {
        Ok(token) => Outcome::SignIn { token },
        Err(BeginError::TooMany(wait)) => Outcome::Halted { cause: Halt::TooMany(wait) },
        Err(e) => failed(e, NOT_KEPT),
    }
}

/// Sign-in, then consent, then the code: whichever is still needed. `handle` is the request's
/// when it is already kept waiting; a new one is kept only when it must wait.
async fn proceed(
    state: &AppState,
    meta: &ClientMeta,
    session: Option<Session>,
    client: &Client,
    pending: Pending,
    handle: Option<RequestHandle>,
) -> Outcome {
    let now = state.now();
    let fresh_enough = |auth_time: i64| {
        (!pending.prompt.login || auth_time >= pending.created_at)
            && pending.max_age.is_none_or(|m| now - auth_time <= m)
    };
    let user = match &session {
        Some(s) if fresh_enough(s.auth_time) => match state.store.user_by_id(&s.user_id).await {
            Ok(u) => u.filter(|u| !u.disabled),
            Err(e) => return failed(e, UNCHECKED),
        },
        _ => None,
    };
    let (Some(user), Some(session)) = (user, session) else {
        if pending.prompt.none {
            return error(pending, "login_required", "the user must sign in");
        }
        let handle = match kept(state, meta, &pending, handle).await {
            Ok(h) => h,
            Err(outcome) => return outcome,
        };
        return to_sign_in(state, meta, handle).await;
    };
    if client.policy.require_verified_email && !user.email_verified {
        if pending.prompt.none {
            return error(pending, "access_denied", "the user's email address is not verified");
        }
        return Outcome::Unverified { client_name: client.name.clone(), email: user.email.clone() };
    }
    if pending.mfa && !session.amr.split(' ').any(|a| a == "mfa") {
        if pending.prompt.none {
            return error(pending, "interaction_required", "a second factor is required");
        }
        match sign_in::has_second_factor(state, &user).await {
            Ok(true) => {}
            Ok(false) => return Outcome::NoSecondFactor { client_name: client.name.clone() },
            Err(e) => return failed(e, UNCHECKED),
        }
        let handle = match kept(state, meta, &pending, handle).await {
            Ok(h) => h,
            Err(outcome) => return outcome,
        };
        let waiting = sign_in::SignIn { token: String::new(), continuation: Continuation::Authorize(handle) };
        let so_far = sign_in::Amr::from_stored(&session.amr);
        return match sign_in::pause(state, &waiting, &user, &so_far).await {
            Ok(token) => Outcome::SecondStep { token },
            Err(e) => failed(e, NOT_KEPT),
        };
    }
    let remembered = match state.store.consent(&user.id, &client.client_id).await {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => return failed(e, UNCHECKED),
    };
    // Covered when every scope and every resource asked for was allowed before.
    let covered = ScopeSet::parse_list(&remembered.scope).covers_all(&ScopeSet::parse_list(&pending.scope))
        && pending.resources.iter().all(|r| remembered.resources.split_whitespace().any(|allowed| allowed == r));
    // A public client cannot prove who it is (any local process can listen on a loopback port
    // and use its client_id), so it is never approved silently (RFC 8252 §8.6): the person
    // always confirms, seeing where the browser goes next.
    let public = client.client_type == ClientType::Public;
    let needs_consent = public || (!client.first_party && (pending.prompt.consent || !covered));
    if needs_consent {
        if pending.prompt.none {
            return error(pending, "consent_required", "the user must allow this application");
        }
        let handle = match kept(state, meta, &pending, handle).await {
            Ok(h) => h,
            Err(outcome) => return outcome,
        };
        return Outcome::Consent(Box::new(ConsentNeeded { handle, client: client.clone(), user, pending, public }));
    }
    issue_code(state, pending, &session, handle.as_ref()).await
}

/// Issues the code; the request kept under `handle` (if any) is done once the code is stored.
async fn issue_code(state: &AppState, pending: Pending, session: &Session, handle: Option<&RequestHandle>) -> Outcome {
    let now = state.now();
    let code = BearerSecret::generate_ordered(&mut postern_core::system::os_rng(), state.now_millis());
    let grant = CodeGrant {
        client_id: pending.client_id.clone(),
        user_id: session.user_id.clone(),
        // Empty when the request did not name it: the token request need not either.
        redirect_uri: if pending.redirect_uri_named { pending.redirect_uri.clone() } else { String::new() },
        code_challenge: pending.code_challenge.clone(),
        nonce: pending.nonce.clone(),
        scope: pending.scope.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        resource: pending.resources.join(" "),
    };
    let new = NewCode { hash: code.hash(), grant: &grant, issued_at: now, expires_at: now + CODE_SECS };
    if let Err(e) = state.store.create_code(&new).await {
        tracing::error!(error = %e, "authorize: could not store the code");
        return error(pending, "server_error", "internal error");
    }
    if let Some(h) = handle {
        let _ = state.store.delete_authorization_request(&h.hash()).await;
    }
    Outcome::Code { pending, code: code.expose().to_owned() }
}

/// The handle a request waits under: 256 random bits, base64url; only its hash is stored.
/// Only [`RequestHandle::new`] and [`RequestHandle::parse`] make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHandle(String);

impl RequestHandle {
    fn new() -> Self {
        RequestHandle(BearerSecret::generate(&mut postern_core::system::os_rng()).expose().to_owned())
    }

    /// A handle as it comes back in a URL or a form: 43 base64url characters, or none.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| RequestHandle(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// A waiting request by its handle, with its client.
async fn load(state: &AppState, handle: &RequestHandle) -> Result<Option<(Client, Pending)>, StoreError> {
    let Some(json) = state.store.authorization_request(&handle.hash(), state.now()).await? else {
        return Ok(None);
    };
    let Ok(pending) = serde_json::from_str::<Pending>(&json) else {
        return Ok(None);
    };
    Ok(state.store.client_by_id(&pending.client_id).await?.map(|client| (client, pending)))
}
