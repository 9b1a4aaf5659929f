//! People making their own accounts, and proving their email address.
//!
//! Registration (`accounts.registration = "open"`) checks what can be checked without
//! looking anyone up (the address, the allowed domains, the name, the password policy), hashes
//! the password on the sign-in pool, and answers "check your email" whether or not the address
//! has an account: the account is made, or its owner told that someone tried, after the answer,
//! in a task of its own. Timing then depends on the password hash alone, the same for every
//! address.
//!
//! A verification link (random; only its hash stored; single use; [`VERIFY_SECS`]) is sent at
//! registration and on demand. Until it is used, `email_verified` is false in ID tokens and
//! userinfo, and clients with `require_verified_email` refuse the person. The link opens a page
//! with a button (so a mail scanner fetching the link uses nothing); using it verifies the
//! address and, in a browser nobody is signed in to, signs the person in: the link proves what
//! a reset link proves, control of the mailbox. That session's `amr` is `email`.

use crate::accounts::{self, AccountError, NewAccount};
use crate::passwords::HashError;
use crate::recovery::recipient_key;
use crate::routes::ClientMeta;
use crate::state::AppState;
use postern_core::password::PasswordError;
use postern_core::secret::{BearerSecret, TokenHash};
use postern_store::{LinkPurpose, NewEmailLink, StoreError, User};

/// How long a verification link works.
pub const VERIFY_SECS: i64 = 24 * 3600;

/// Why a registration was refused. None of these depends on whether the address has an
/// account.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("registration is closed")]
    Closed,
    #[error("not a valid email address")]
    Email,
    #[error("addresses in this domain cannot register here")]
    Domain,
    #[error("a name is at most {} characters, without control characters", accounts::MAX_NAME_CHARS)]
    Name,
    #[error(transparent)]
    Password(PasswordError),
    #[error("too many registrations; wait {0} seconds")]
    TooMany(i64),
    #[error("too busy")]
    Busy,
    #[error("could not hash the password")]
    Hash,
}

/// What the registration form gave.
#[derive(Debug, Clone, Copy)]
pub struct Form<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub password: &'a str,
}

/// Registers a person (see the module's text). `Ok` means "check your email", whatever
/// happens next.
pub async fn register(state: &AppState, meta: &ClientMeta, form: Form<'_>) -> Result<(), RegisterError> {
    if state.config.accounts.registration != crate::config::Registration::Open {
        return Err(RegisterError::Closed);
    }
    let account = NewAccount {
        email: form.email.trim(),
        password: Some(form.password),
        display_name: Some(form.name),
        email_verified: false,
        is_admin: false,
    };
    let (email, name) = accounts::check(&account).map_err(|e| match e {
        AccountError::Email => RegisterError::Email,
        AccountError::Name => RegisterError::Name,
        AccountError::Password(p) => RegisterError::Password(p),
        _ => RegisterError::Hash,
    })?;
    if !state.config.accounts.domain_allowed(email.domain()) {
        return Err(RegisterError::Domain);
    }
    let now = state.now();
    state
        .node
        .anonymous_writes
        .email(&meta.limit_key(), &recipient_key(email.as_str()), now)
        .map_err(RegisterError::TooMany)?;
    let hash = state.node.passwords.hash(state.config.password, form.password).await.map_err(|e| match e {
        HashError::Busy(_) => RegisterError::Busy,
        HashError::Failed => RegisterError::Hash,
    })?;
    let new = accounts::new_user(&account, email, name, Some(hash));
    let (state, meta) = (state.clone(), meta.clone());
    tokio::spawn(async move {
        match state.store.create_user(&new, state.now()).await {
            Ok(user) => {
                crate::audit::by(&state, &meta, "anonymous", "user.registered", &user.id).await;
                if let Err(e) = send_verification(&state, &user).await {
                    tracing::error!(error = %e, "a verification link could not be sent");
                }
            }
            Err(StoreError::Conflict(_)) => {
                state.mail.send(state.letters().already_registered(new.email.as_str()));
            }
            Err(e) => tracing::error!(error = %e, "a registration could not be stored"),
        }
    });
    Ok(())
}

/// Makes a verification link for the user's address and queues the email.
pub async fn send_verification(state: &AppState, user: &User) -> Result<(), StoreError> {
    let now = state.now();
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    let link = NewEmailLink {
        hash: token.hash(),
        purpose: LinkPurpose::Verify,
        user_id: &user.id,
        email: &user.email,
        now,
        expires_at: now + VERIFY_SECS,
    };
    state.store.create_email_link(&link).await?;
    state.mail.send(state.letters().verify_email(&user.email, token.expose(), VERIFY_SECS / 3600));
    Ok(())
}

/// Why a verification link was not sent again.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("too many emails; wait {0} seconds")]
    TooMany(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for ResendError {
    fn unavailable(&self) -> bool {
        matches!(self, ResendError::Store(e) if e.is_unavailable())
    }
}

/// Sends the signed-in user a new verification link (nothing if the address is verified),
/// within the email limits.
pub async fn resend(state: &AppState, meta: &ClientMeta, user: &User) -> Result<(), ResendError> {
    if user.email_verified {
        return Ok(());
    }
    state
        .node
        .anonymous_writes
        .email(&meta.limit_key(), &recipient_key(&user.email), state.now())
        .map_err(ResendError::TooMany)?;
    send_verification(state, user).await?;
    Ok(())
}

/// The address a live verification link was sent to, for its page.
pub async fn link_email(state: &AppState, token: &str) -> Result<Option<String>, StoreError> {
    if token.len() != 43 {
        return Ok(None);
    }
    Ok(state.store.email_link(&TokenHash::of(token), LinkPurpose::Verify, state.now()).await?.map(|l| l.email))
}

/// Uses a verification link: the user whose address it verified (still enabled), or `None`
/// for an unknown, used or expired link.
pub async fn verify(state: &AppState, meta: &ClientMeta, token: &str) -> Result<Option<User>, StoreError> {
    if token.len() != 43 {
        return Ok(None);
    }
    let Some(link) = state.store.redeem_verification(&TokenHash::of(token), state.now()).await? else {
        return Ok(None);
    };
    state.node.users.forget(&link.user_id);
    crate::audit::by(state, meta, "anonymous", "user.email_verified", &link.user_id).await;
    Ok(state.store.user_by_id(&link.user_id).await?.filter(|u| !u.disabled && u.email == link.email))
}
