//! Forgotten passwords: a reset link by email, then a new password.
//!
//! Asking for a link never tells whether an account exists: after the rate limits (per client
//! address, and per address asked about whatever it is), the answer is given at once and the
//! rest (looking the account up, storing the link's hash, queueing the email) happens after
//! it, in a task of its own. The answer's body, status and timing are then the same for every
//! address.
//!
//! The link (a random token; only its hash is stored) works once, for [`RESET_SECS`]. Using
//! it sets the new password and, in the same transaction, ends every session of the user,
//! revokes every refresh family with its access tokens, deletes every opaque access token and
//! refuses every JWT access token issued until then (see `Store::redeem_password_reset`).
//! API keys are separate credentials and stay. A "your password was changed" email follows.

use crate::routes::ClientMeta;
use crate::state::AppState;
use postern_core::email::Email;
use postern_core::password::{PasswordError, check_new_password};
use postern_core::secret::{BearerSecret, TokenHash};
use postern_store::{LinkPurpose, NewEmailLink, StoreError};

/// How long a reset link works.
pub const RESET_SECS: i64 = 30 * 60;

/// The rate-limit key for emails about an address: its normalized form when it parses, else
/// what was typed (so the limit never depends on whether an account exists).
pub fn recipient_key(email: &str) -> String {
    let key = Email::parse(email).map(|e| e.normalized().to_owned()).unwrap_or_else(|_| email.trim().to_lowercase());
    format!("email:{key}")
}

/// Asks for a reset link for `email`. `Err(seconds)` when this client address, or this
/// address asked about, must wait; otherwise the link goes out (if there is an account) after
/// the caller has answered.
pub fn request_reset(state: &AppState, meta: &ClientMeta, email: &str) -> Result<(), i64> {
    let now = state.now();
    state.node.anonymous_writes.email(&meta.limit_key(), &recipient_key(email), now)?;
    let (state, meta, email) = (state.clone(), meta.clone(), email.trim().to_owned());
    tokio::spawn(async move {
        if let Err(e) = send_reset(&state, &meta, &email).await {
            tracing::error!(error = %e, "a password-reset link could not be sent");
        }
    });
    Ok(())
}

async fn send_reset(state: &AppState, meta: &ClientMeta, email: &str) -> Result<(), StoreError> {
    let Ok(parsed) = Email::parse(email) else { return Ok(()) };
    let user = match state.store.user_by_email(&parsed).await? {
        Some(user) if !user.disabled => user,
        _ => return Ok(()),
    };
    let now = state.now();
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    let link = NewEmailLink {
        hash: token.hash(),
        purpose: LinkPurpose::Reset,
        user_id: &user.id,
        email: &user.email,
        now,
        expires_at: now + RESET_SECS,
    };
    state.store.create_email_link(&link).await?;
    state.mail.send(state.letters().password_reset(&user.email, token.expose(), RESET_SECS / 60));
    crate::audit::by(state, meta, "anonymous", "password.reset_requested", &user.id).await;
    Ok(())
}

/// Why a new password was not set.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    /// Unknown, used or expired link (or the account changed since it was sent).
    #[error("this link is not valid any more")]
    Expired,
    #[error(transparent)]
    Password(PasswordError),
    #[error("could not hash the password: {0}")]
    Hash(PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for ResetError {
    fn unavailable(&self) -> bool {
        matches!(self, ResetError::Store(e) if e.is_unavailable())
    }
}

/// The address a live reset link was sent to, to show on its page; `None` for an unknown,
/// used or expired one.
pub async fn link_email(state: &AppState, token: &str) -> Result<Option<String>, StoreError> {
    if token.len() != 43 {
        return Ok(None);
    }
    Ok(state.store.email_link(&TokenHash::of(token), LinkPurpose::Reset, state.now()).await?.map(|l| l.email))
}

/// Sets a new password with a reset link: checked against the policy, hashed, and the link
/// used, cutting off everything signed in with the old one (see the module's text).
pub async fn reset(state: &AppState, meta: &ClientMeta, token: &str, password: &str) -> Result<(), ResetError> {
    let email = link_email(state, token).await?.ok_or(ResetError::Expired)?;
    check_new_password(password, Some(&email)).map_err(ResetError::Password)?;
    let phc =
        crate::bootstrap::hash_password(state.config.password, password.to_owned()).await.map_err(ResetError::Hash)?;
    let now = state.now();
    let redeemed =
        state.store.redeem_password_reset(&TokenHash::of(token), &phc, now).await?.ok_or(ResetError::Expired)?;
    let deny = &state.node.revoked;
    for (jti, exp) in redeemed.denied.revoked_jwts {
        deny.add(jti, exp);
    }
    deny.add_subject(redeemed.user_id.to_string(), now, redeemed.denied.subject_refused_until);
    state.node.users.forget(&redeemed.user_id);
    state.mail.send(state.letters().password_changed(&redeemed.email));
    crate::audit::by(state, meta, "anonymous", "password.reset", &redeemed.user_id).await;
    Ok(())
}
