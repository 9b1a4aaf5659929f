//! Changing a signed-in person's email address: the password again, then a link (random; only
//! its hash stored; single use; [`CHANGE_SECS`]) sent to the new address. Following it makes
//! the new address the account's, verified, and the old address is told. Nothing changes
//! until then, and whether the new address is taken is only said to whoever follows the link
//! (the request always answers "we sent a link").

use crate::recovery::recipient_key;
use crate::routes::ClientMeta;
use crate::state::AppState;
use postern_core::email::Email;
use postern_core::secret::{BearerSecret, TokenHash};
use postern_store::{EmailChanged, LinkPurpose, NewEmailLink, StoreError, User};

/// How long a link confirming a new address works.
pub const CHANGE_SECS: i64 = 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("not a valid email address")]
    Email,
    #[error("that is your address already")]
    Same,
    #[error("too many emails; wait {0} seconds")]
    TooMany(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for ChangeError {
    fn unavailable(&self) -> bool {
        matches!(self, ChangeError::Store(e) if e.is_unavailable())
    }
}

/// Sends the link to `new` (the password was checked by the caller).
pub async fn request(state: &AppState, meta: &ClientMeta, user: &User, new: &str) -> Result<(), ChangeError> {
    let parsed = Email::parse(new).map_err(|_| ChangeError::Email)?;
    if parsed.normalized() == user.email.to_lowercase() {
        return Err(ChangeError::Same);
    }
    let now = state.now();
    state
        .node
        .anonymous_writes
        .email(&meta.limit_key(), &recipient_key(parsed.as_str()), now)
        .map_err(ChangeError::TooMany)?;
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    let link = NewEmailLink {
        hash: token.hash(),
        purpose: LinkPurpose::EmailChange,
        user_id: &user.id,
        email: parsed.as_str(),
        now,
        expires_at: now + CHANGE_SECS,
    };
    state.store.create_email_link(&link).await?;
    state.mail.send(state.letters().confirm_new_email(
        parsed.as_str(),
        &user.email,
        token.expose(),
        CHANGE_SECS / 3600,
    ));
    crate::audit::by(state, meta, &user.id, "user.email_change_requested", &user.id).await;
    Ok(())
}

/// The new address a live link confirms, for its page.
pub async fn link_email(state: &AppState, token: &str) -> Result<Option<String>, StoreError> {
    if token.len() != 43 {
        return Ok(None);
    }
    Ok(state.store.email_link(&TokenHash::of(token), LinkPurpose::EmailChange, state.now()).await?.map(|l| l.email))
}

/// Follows the link: the address changes and the old one is told. `Ok(None)` for an unknown,
/// used or expired link; `Err(StoreError::Conflict)` when another account took the address.
pub async fn confirm(state: &AppState, meta: &ClientMeta, token: &str) -> Result<Option<EmailChanged>, StoreError> {
    if token.len() != 43 {
        return Ok(None);
    }
    let Some(changed) = state.store.redeem_email_change(&TokenHash::of(token), state.now()).await? else {
        return Ok(None);
    };
    state.node.users.forget(&changed.user_id);
    state.mail.send(state.letters().email_changed(&changed.old, &changed.new));
    crate::audit::by(state, meta, &changed.user_id, "user.email_changed", &changed.user_id).await;
    Ok(Some(changed))
}
