//! Sign-in as a state machine, and what it continues with.
//!
//! Every way to start, interrupt or finish a sign-in goes through here, so that second
//! factors, passkeys, upstream login and step-up plug into one place instead of into handlers:
//!
//! ```text
//! Started ─password─▶ FirstFactorDone{user} ─▶ NeedsSecondFactor{methods} ─▶ Authenticated{user, amr}
//!                                        └──────(no second factor enrolled)──────▶┘
//! ```
//!
//! A user with TOTP turned on ([`SecondFactor::Totp`]) or a passkey ([`SecondFactor::Passkey`]) goes from `FirstFactorDone` to
//! `NeedsSecondFactor`: the sign-in is stored with whose it is ([`pause`]), the browser holds
//! its token in a cookie, and only a right code ([`resume_second`], then [`establish`]) makes a
//! session. Nothing that needs a signed-in person (a session, a code, an approved device)
//! exists before.
//!
//! A sign-in that must come back somewhere (an authorization request waiting for its user, a
//! device waiting for approval) is [`begin`]-ed with a typed [`Continuation`], stored server-side
//! under the hash of a random token; the browser carries only that token (`/login?request=…`),
//! and the continuation's target is sealed under a key derived from it. Nothing is guessed from
//! the shape of a URL parameter.

use crate::authorization::RequestHandle;
use crate::routes::ClientMeta;
use crate::state::AppState;
use crate::throttle::Attempt;
use postern_core::device::UserCode;
use postern_core::email::Email;
use postern_core::kek::KeyEncryptionKey;
use postern_core::secret::{BearerSecret, TokenHash};
use postern_store::{NewAuditEvent, NewSession, NewSignIn, StoreError, User};

/// How long a sign-in may wait for its person (as long as an authorization request waits).
pub const SIGN_IN_SECS: i64 = 600;

/// Where a successful sign-in goes on to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    /// An authorization request waiting under this handle.
    Authorize(RequestHandle),
    /// A device authorization waiting for approval, by its user code.
    Device(UserCode),
    /// Nothing waits: the account page.
    Account,
}

impl Continuation {
    fn kind(&self) -> &'static str {
        match self {
            Continuation::Authorize(_) => "authorize",
            Continuation::Device(_) => "device",
            Continuation::Account => "account",
        }
    }

    fn target(&self) -> Option<&str> {
        match self {
            Continuation::Authorize(handle) => Some(handle.as_str()),
            Continuation::Device(code) => Some(code.as_str()),
            Continuation::Account => None,
        }
    }

    fn from_parts(kind: &str, target: Option<String>) -> Option<Self> {
        Some(match (kind, target) {
            ("authorize", Some(handle)) => Continuation::Authorize(RequestHandle::parse(&handle)?),
            ("device", Some(code)) => Continuation::Device(UserCode::parse(&code)?),
            ("account", _) => Continuation::Account,
            _ => return None,
        })
    }

    /// The page the browser is sent to once signed in.
    pub fn url(&self) -> String {
        match self {
            Continuation::Authorize(handle) => format!("/oauth/authorize/continue?request={}", handle.as_str()),
            Continuation::Device(code) => format!("/device/confirm?user_code={code}"),
            Continuation::Account => "/account".to_owned(),
        }
    }
}

/// A sign-in under way: its token (what the browser carries) and what it continues with.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// Empty for a sign-in that was never stored (it continues with the account page).
    pub token: String,
    pub continuation: Continuation,
}

impl SignIn {
    /// A sign-in nothing waits for: it ends on the account page.
    pub fn to_account() -> Self {
        SignIn { token: String::new(), continuation: Continuation::Account }
    }
}

/// Authentication methods (RFC 8176 values), in the order they were used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amr(Vec<&'static str>);

impl Amr {
    pub fn password() -> Self {
        Amr(vec!["pwd"])
    }

    /// A link sent by email was followed (verifying the address): `email`, a value RFC 8176
    /// does not register (OpenID Connect allows others), single-factor.
    pub fn email_link() -> Self {
        Amr(vec!["email"])
    }

    /// What a stored sign-in or session says was used (unknown values are left out).
    pub fn from_stored(stored: &str) -> Self {
        const KNOWN: [&str; 6] = ["pwd", "otp", "mfa", "email", "hwk", "user"];
        Amr(stored.split(' ').filter_map(|a| KNOWN.iter().find(|k| **k == a).copied()).collect())
    }

    /// These methods and a one-time code: `otp` and `mfa` added.
    pub fn with_otp(mut self) -> Self {
        for a in ["otp", "mfa"] {
            if !self.0.contains(&a) {
                self.0.push(a);
            }
        }
        self
    }

    /// A passkey alone, with user verification: possession of the authenticator and the PIN
    /// or biometric that unlocked it (`hwk`, `user`), so `mfa`.
    pub fn passkey() -> Self {
        Amr(Vec::new()).with_passkey()
    }

    /// These methods and a passkey: `hwk`, `user` and `mfa` added.
    pub fn with_passkey(mut self) -> Self {
        for a in ["hwk", "user", "mfa"] {
            if !self.0.contains(&a) {
                self.0.push(a);
            }
        }
        self
    }

    /// The space-separated form sessions store.
    pub fn as_stored(&self) -> String {
        self.0.join(" ")
    }
}

/// A second factor a user has turned on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactor {
    /// An authenticator app (RFC 6238), with recovery codes.
    Totp,
    /// A passkey (WebAuthn).
    Passkey,
}

/// Where a sign-in stands.
#[derive(Debug)]
pub enum Step {
    Started,
    /// The password was right; second factors are still to be checked.
    FirstFactorDone {
        user: User,
    },
    /// The person must prove a second factor, one of these.
    NeedsSecondFactor {
        user: User,
        methods: Vec<SecondFactor>,
    },
    /// Done: a session may be made.
    Authenticated {
        user: User,
        amr: Amr,
    },
}

/// Why the password step did not move the sign-in on.
#[derive(Debug)]
pub enum Refusal {
    /// Unknown email, wrong password or disabled account: one answer for all.
    Failed,
    /// The account (or this address, too often) must wait this many seconds.
    TooMany(i64),
    /// The password hashing pool is full.
    Busy,
    /// Storage failed.
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e)
    }
}

fn sealing_key(token: &str) -> KeyEncryptionKey {
    KeyEncryptionKey::derived_from(token.as_bytes(), b"postern:sign-in-target:v1")
}

fn target_aad(hash: &TokenHash) -> Vec<u8> {
    let mut aad = b"postern:sign-in:".to_vec();
    aad.extend_from_slice(hash.as_bytes());
    aad
}

/// Why a sign-in could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    #[error("too many sign-ins started from this address; wait {0} seconds")]
    TooMany(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not seal the sign-in's continuation: {0}")]
    Seal(#[from] postern_core::kek::KekError),
}

impl crate::error::Failure for BeginError {
    fn unavailable(&self) -> bool {
        matches!(self, BeginError::Store(e) if e.is_unavailable())
    }
}

impl BeginError {
    /// The page to show instead of the sign-in; `failed` says what could not be done.
    pub fn into_page(self, failed: &'static str) -> crate::error::PageError {
        match self {
            BeginError::TooMany(wait) => crate::error::PageError::too_many(
                wait,
                format!("Too many sign-in requests from here. Try again in {wait} seconds."),
            ),
            other => crate::error::PageError::failed(other, failed),
        }
    }
}

/// The continuation's target (if it has one) sealed under a key derived from the sign-in's
/// token, bound to the token's hash.
fn seal_target(
    continuation: &Continuation,
    token: &str,
    hash: &TokenHash,
) -> Result<Option<Vec<u8>>, postern_core::kek::KekError> {
    continuation
        .target()
        .map(|target| {
            sealing_key(token).seal(target.as_bytes(), &target_aad(hash), &mut postern_core::system::os_rng())
        })
        .transpose()
}

/// Starts a sign-in that continues with `continuation`: stored (so rate-limited per client
/// address), and its token returned for `/login?request=…`.
pub async fn begin(state: &AppState, meta: &ClientMeta, continuation: Continuation) -> Result<String, BeginError> {
    state.node.anonymous_writes.sign_in(&meta.limit_key(), state.now()).map_err(BeginError::TooMany)?;
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    let hash = token.hash();
    let sealed = seal_target(&continuation, token.expose(), &hash)?;
    let now = state.now();
    let new = NewSignIn {
        token_hash: hash,
        continuation: continuation.kind(),
        target_sealed: sealed.as_deref(),
        now,
        expires_at: now + SIGN_IN_SECS,
    };
    state.store.create_sign_in(&new).await?;
    Ok(token.expose().to_owned())
}

/// The sign-in a token from `/login?request=…` (or the form) names. An unknown, expired or
/// malformed token continues with the account page, as a sign-in nothing waits for.
pub async fn resume(state: &AppState, token: &str) -> Result<SignIn, StoreError> {
    let none = SignIn::to_account();
    if token.len() != 43 {
        return Ok(none);
    }
    let hash = TokenHash::of(token);
    let Some(row) = state.store.sign_in(&hash, state.now()).await? else {
        return Ok(none);
    };
    let target = match &row.target_sealed {
        Some(sealed) => match sealing_key(token).open(sealed, &target_aad(&hash)) {
            Ok(plain) => Some(String::from_utf8_lossy(&plain).into_owned()),
            Err(_) => return Ok(none),
        },
        None => None,
    };
    Ok(match Continuation::from_parts(&row.continuation, target) {
        Some(continuation) => SignIn { token: token.to_owned(), continuation },
        None => none,
    })
}

/// The password step: `Started → FirstFactorDone → Authenticated` (or `NeedsSecondFactor`
/// once second factors exist). Throttled per account and per client address, one answer for
/// every failure, audited either way.
pub async fn password(state: &AppState, meta: &ClientMeta, email: &str, password: &str) -> Result<Step, Refusal> {
    let user = check_password(state, meta, email, password, "login").await?;
    let methods = second_factors(state, &user).await?;
    Ok(next(Step::FirstFactorDone { user }, methods))
}

/// A signed-in person's password asked for again before something that needs it (a new
/// password, a new address, deleting the account): throttled, answered and audited like a
/// sign-in (action `reauthenticate`).
pub async fn reauthenticate(state: &AppState, meta: &ClientMeta, user: &User, password: &str) -> Result<(), Refusal> {
    let checked = check_password(state, meta, &user.email, password, "reauthenticate").await?;
    if checked.id == user.id { Ok(()) } else { Err(Refusal::Failed) }
}

async fn check_password(
    state: &AppState,
    meta: &ClientMeta,
    email: &str,
    password: &str,
    action: &'static str,
) -> Result<User, Refusal> {
    let now = state.now();
    let parsed = Email::parse(email).ok();
    let account_key =
        format!("acct:{}", parsed.as_ref().map_or_else(|| email.trim().to_lowercase(), Email::normalized));
    let attempt = state.node.throttle.begin(&account_key, &meta.limit_key(), now).map_err(Refusal::TooMany)?;
    if let Some(hold) = attempt.slowdown() {
        tokio::time::sleep(hold).await;
    }
    let user = match &parsed {
        Some(e) => state.store.user_by_email(e).await?,
        None => None,
    };
    let usable = user.as_ref().filter(|u| !u.disabled);
    let stored = usable.and_then(|u| u.password_hash.as_deref());
    let verified = state.node.passwords.verify(password, stored).await.map_err(|_busy| Refusal::Busy)?;
    let Some(user) = usable.filter(|_| verified).cloned() else {
        return Err(failed(state, meta, email, attempt, user.as_ref(), action).await);
    };
    attempt.succeed();
    let _ = state.store.record_audit(&login_event(meta, email, action, "success", Some(&user.id)), now).await;
    Ok(user)
}

async fn failed(
    state: &AppState,
    meta: &ClientMeta,
    email: &str,
    attempt: Attempt<'_>,
    user: Option<&User>,
    action: &'static str,
) -> Refusal {
    let now = state.now();
    attempt.fail(now);
    let event = login_event(meta, email, action, "failure", user.map(|u| u.id.as_str()));
    let _ = state.store.record_audit(&event, now).await;
    Refusal::Failed
}

/// What comes after a step that succeeded, given the second factors the user has turned on.
fn next(step: Step, methods: Vec<SecondFactor>) -> Step {
    match step {
        Step::FirstFactorDone { user } => {
            if methods.is_empty() {
                Step::Authenticated { user, amr: Amr::password() }
            } else {
                Step::NeedsSecondFactor { user, methods }
            }
        }
        other => other,
    }
}

/// Whether `user` has any second factor (TOTP or a passkey).
pub async fn has_second_factor(state: &AppState, user: &User) -> Result<bool, StoreError> {
    Ok(!second_factors(state, user).await?.is_empty())
}

/// The second factors `user` has turned on.
pub async fn second_factors(state: &AppState, user: &User) -> Result<Vec<SecondFactor>, StoreError> {
    let mut methods = Vec::new();
    if crate::second_factor::has_totp(state, &user.id).await? {
        methods.push(SecondFactor::Totp);
    }
    if crate::passkeys::has_passkeys(state, &user.id).await? {
        methods.push(SecondFactor::Passkey);
    }
    Ok(methods)
}

/// How long the second step may take after a right password.
pub const SECOND_STEP_SECS: i64 = 300;

/// `NeedsSecondFactor`: the sign-in is stored again under a new token, with whose it is and
/// what was used (its continuation sealed anew under that token), and the old token stops
/// working; a sign-in that was never stored continues with the account page. Returns the new
/// token, which the browser keeps in a cookie for the second step: the token that was in a URL
/// (`/login?request=…`) never stands for a right password.
pub async fn pause(state: &AppState, sign_in: &SignIn, user: &User, amr: &Amr) -> Result<String, BeginError> {
    let now = state.now();
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    let hash = token.hash();
    let continuation = &sign_in.continuation;
    let sealed = seal_target(continuation, token.expose(), &hash)?;
    let new = NewSignIn {
        token_hash: hash,
        continuation: continuation.kind(),
        target_sealed: sealed.as_deref(),
        now,
        expires_at: now + SECOND_STEP_SECS,
    };
    let previous = (!sign_in.token.is_empty()).then(|| TokenHash::of(&sign_in.token));
    state.store.pause_sign_in(&new, previous.as_ref(), &user.id, &amr.as_stored()).await?;
    Ok(token.expose().to_owned())
}

/// A sign-in waiting for its second step: the sign-in, whose it is (still enabled), and what
/// was used so far. `None` for an unknown or expired token, or one whose first step was not done.
pub async fn resume_second(state: &AppState, token: &str) -> Result<Option<(SignIn, User, Amr)>, StoreError> {
    if token.len() != 43 {
        return Ok(None);
    }
    let hash = TokenHash::of(token);
    let Some(row) = state.store.sign_in(&hash, state.now()).await? else { return Ok(None) };
    let Some(user_id) = row.user_id else { return Ok(None) };
    let so_far = Amr::from_stored(row.amr.as_deref().unwrap_or_default());
    let sign_in = resume(state, token).await?;
    let user = state.store.user_by_id(&user_id).await?.filter(|u| !u.disabled);
    Ok(user.map(|u| (sign_in, u, so_far)))
}

/// An authenticated sign-in becomes a session: a new token (the browser's older session, if
/// any, ends), and the sign-in record goes. Returns the session token for the cookie.
pub async fn establish(
    state: &AppState,
    meta: &ClientMeta,
    sign_in: &SignIn,
    previous_session: Option<&TokenHash>,
    user: &User,
    amr: &Amr,
) -> Result<BearerSecret, StoreError> {
    if let Some(old) = previous_session {
        state.store.delete_session(old).await?;
    }
    let now = state.now();
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    let amr = amr.as_stored();
    let new = NewSession {
        hash: token.hash(),
        user_id: &user.id,
        amr: &amr,
        now,
        idle_secs: state.config.sessions.idle_secs,
        absolute_secs: state.config.sessions.absolute_secs,
        ip: meta.ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
    };
    state.store.create_session(&new).await?;
    if !sign_in.token.is_empty() {
        state.store.delete_sign_in(&TokenHash::of(&sign_in.token)).await?;
    }
    Ok(token)
}

/// Records a sign-in with a passkey alone (audit action `login`, method `passkey`).
pub async fn record_passkey_sign_in(state: &AppState, meta: &ClientMeta, user: &User) {
    let event = NewAuditEvent {
        details: Some(serde_json::json!({ "email": user.email, "method": "passkey" })),
        ..login_event(meta, &user.email, "login", "success", Some(&user.id))
    };
    crate::audit::record(state, &event).await;
}

fn login_event<'a>(
    meta: &'a ClientMeta,
    email: &str,
    action: &'a str,
    outcome: &'a str,
    target: Option<&'a str>,
) -> NewAuditEvent<'a> {
    NewAuditEvent {
        actor: "anonymous",
        action,
        target,
        ip: meta.ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
        outcome,
        details: Some(serde_json::json!({ "email": email.trim() })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_are_typed_and_go_where_they_say() {
        let handle = "h".repeat(43);
        let authorize = Continuation::Authorize(RequestHandle::parse(&handle).unwrap());
        assert_eq!(authorize.url(), format!("/oauth/authorize/continue?request={handle}"));
        let code = UserCode::parse("BCDF-GHJK").unwrap();
        assert_eq!(Continuation::Device(code.clone()).url(), "/device/confirm?user_code=BCDFGHJK");
        assert_eq!(Continuation::Account.url(), "/account");
        for c in [authorize, Continuation::Device(code), Continuation::Account] {
            assert_eq!(Continuation::from_parts(c.kind(), c.target().map(str::to_owned)), Some(c));
        }
        assert_eq!(Continuation::from_parts("authorize", None), None, "a request needs its handle");
        assert_eq!(Continuation::from_parts("elsewhere", Some("x".into())), None);
    }

    #[test]
    fn a_target_opens_only_with_its_own_token_and_row() {
        let mut rng = postern_core::system::os_rng();
        let hash = TokenHash::of("token-a");
        let sealed = sealing_key("token-a").seal(b"handle", &target_aad(&hash), &mut rng).unwrap();
        assert_eq!(&sealing_key("token-a").open(&sealed, &target_aad(&hash)).unwrap()[..], b"handle");
        assert!(sealing_key("token-b").open(&sealed, &target_aad(&hash)).is_err());
        assert!(sealing_key("token-a").open(&sealed, &target_aad(&TokenHash::of("token-b"))).is_err());
    }
}
