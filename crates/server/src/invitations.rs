//! Invitations: an admin names an address (and, optionally, scopes the person is entitled to);
//! Postern makes the account, without a password, and emails a link (random; only its hash
//! stored; single use; [`INVITE_SECS`]) to a page where the person chooses their name and
//! password. Accepting verifies the address (the link reached it) and signs the person in.
//!
//! Inviting an address whose invitation is still unanswered (an account without a password
//! and an unverified address) sends a new link; the older ones stop working when one is used.
//! Inviting an address with a working account is refused. Used by the admin CLI and the admin
//! JSON API alike; each sends the letter its own way.

use crate::accounts::{self, AccountError, NewAccount};
use crate::entitlements::{self, GrantError, Grantor};
use postern_core::password::{PasswordError, check_new_password};
use postern_core::secret::{BearerSecret, TokenHash};
use postern_store::{KeyOwner, LinkPurpose, NewEmailLink, Store, StoreError, User, UserId};

/// How long an invitation link works.
pub const INVITE_SECS: i64 = 7 * 86_400;

/// Why an invitation was not made.
#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("not a valid email address")]
    Email,
    #[error("{0} has an account already")]
    Exists(String),
    #[error("{0}")]
    Scopes(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for InviteError {
    fn unavailable(&self) -> bool {
        matches!(self, InviteError::Store(e) if e.is_unavailable())
    }
}

/// An invitation made: the account and the link's secret, to be sent to `user.email` (see
/// `letters::Sender::invitation`) and then dropped.
pub struct Invited {
    pub user: User,
    pub token: BearerSecret,
    pub expires_at: i64,
}

/// Invites `email` (see the module's text), entitled to `scopes` (registered ones).
pub async fn invite(store: &Store, email: &str, scopes: &[String], now: i64) -> Result<Invited, InviteError> {
    let parsed = postern_core::email::Email::parse(email).map_err(|_| InviteError::Email)?;
    let user = match store.user_by_email(&parsed).await? {
        Some(u) if u.password_hash.is_none() && !u.email_verified && !u.disabled => u,
        Some(u) => return Err(InviteError::Exists(u.email)),
        None => {
            let account = NewAccount { email, ..NewAccount::default() };
            let (email, name) = accounts::check(&account).map_err(|_| InviteError::Email)?;
            match store.create_user(&accounts::new_user(&account, email, name, None), now).await {
                Ok(u) => u,
                Err(StoreError::Conflict(_)) => return Err(InviteError::Exists(parsed.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
    };
    if !scopes.is_empty() {
        match entitlements::grant(store, KeyOwner::User(&user.id), scopes, Grantor::Admin, now).await {
            Ok(()) => {}
            Err(GrantError::Invalid(m)) => return Err(InviteError::Scopes(m)),
            Err(GrantError::Store(e)) => return Err(e.into()),
        }
    }
    let token = BearerSecret::generate(&mut postern_core::system::os_rng());
    let link = NewEmailLink {
        hash: token.hash(),
        purpose: LinkPurpose::Invite,
        user_id: &user.id,
        email: &user.email,
        now,
        expires_at: now + INVITE_SECS,
    };
    store.create_email_link(&link).await?;
    Ok(Invited { user, token, expires_at: now + INVITE_SECS })
}

/// The address a live invitation link was sent to, for its page.
pub async fn link_email(store: &Store, token: &str, now: i64) -> Result<Option<String>, StoreError> {
    if token.len() != 43 {
        return Ok(None);
    }
    Ok(store.email_link(&TokenHash::of(token), LinkPurpose::Invite, now).await?.map(|l| l.email))
}

/// Why an invitation was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("this invitation is not valid any more")]
    Expired,
    #[error("a name is at most {} characters, without control characters", accounts::MAX_NAME_CHARS)]
    Name,
    #[error(transparent)]
    Password(PasswordError),
    #[error("could not hash the password")]
    Hash,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for AcceptError {
    fn unavailable(&self) -> bool {
        matches!(self, AcceptError::Store(e) if e.is_unavailable())
    }
}

/// Accepts an invitation: the name and password are checked, the password hashed with
/// `params`, and the link used. Returns the account's id.
pub async fn accept(
    store: &Store,
    params: postern_core::password::Argon2Params,
    token: &str,
    name: &str,
    password: &str,
    now: i64,
) -> Result<UserId, AcceptError> {
    let email = link_email(store, token, now).await?.ok_or(AcceptError::Expired)?;
    let account = NewAccount { email: &email, display_name: Some(name), ..NewAccount::default() };
    let (_, name) = accounts::check(&account).map_err(|e| match e {
        AccountError::Name => AcceptError::Name,
        _ => AcceptError::Expired,
    })?;
    check_new_password(password, Some(&email)).map_err(AcceptError::Password)?;
    let hash = crate::bootstrap::hash_password(params, password.to_owned()).await.map_err(|_| AcceptError::Hash)?;
    store.redeem_invitation(&TokenHash::of(token), name.as_deref(), &hash, now).await?.ok_or(AcceptError::Expired)
}
