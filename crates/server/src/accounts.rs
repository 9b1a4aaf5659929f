//! Operations on people's accounts, used alike by the first start, the setup page, the admin
//! CLI and the tests: creating one (validation, the password policy, Argon2id off the async
//! threads), disabling one and setting a new password.
//!
//! Disabling and password changes cut access: the store does each in one transaction (see
//! `Store::disable_user` and `Store::set_user_password`); inside a server, that node's
//! in-memory deny-list also learns at once what every node reads from the database within
//! `tokens.revocation_sync_secs`, its cache of verified API keys is emptied, and it forgets
//! what userinfo read about the user.

use crate::node::NodeState;
use postern_core::email::Email;
use postern_core::password::{Argon2Params, PasswordError, check_new_password};
use postern_core::secret::TokenHash;
use postern_store::{NewUser, Store, StoreError, User, UserId};

/// Disables a user: sessions, refresh families, opaque and JWT access tokens, codes in flight,
/// approved device requests and API keys all stop working at once. Enabling the user again
/// brings none of them back. `here` is the node doing it (none from the admin CLI): its
/// deny-list learns at once what every node reads within `tokens.revocation_sync_secs`, and it
/// forgets the keys it verified (other nodes: within `api_keys.cache_secs`).
pub async fn disable_user(store: &Store, here: Option<&NodeState>, user_id: &str, now: i64) -> Result<(), StoreError> {
    let disabled = store.disable_user(user_id, now).await?;
    if let Some(node) = here {
        for (jti, exp) in disabled.revoked_jwts {
            node.revoked.add(jti, exp);
        }
        // Every JWT issued to the user until now, whether or not it was recorded anywhere.
        node.revoked.add_subject(user_id.to_owned(), now, disabled.subject_refused_until);
        node.api_keys.forget_all();
        node.users.forget(user_id);
    }
    Ok(())
}

/// Deletes a user (see `Store::delete_user`): cut off everywhere at once, their keys and owned
/// service accounts gone, the row removed and the audit log's personal details about them
/// cleared. `here` as for [`disable_user`].
pub async fn delete_user(store: &Store, here: Option<&NodeState>, user_id: &str, now: i64) -> Result<(), StoreError> {
    let deleted = store.delete_user(user_id, now).await?;
    if let Some(node) = here {
        for (jti, exp) in deleted.revoked_jwts {
            node.revoked.add(jti, exp);
        }
        node.revoked.add_subject(user_id.to_owned(), now, deleted.subject_refused_until);
        node.api_keys.forget_all();
        node.users.forget(user_id);
    }
    Ok(())
}

/// Sets a new password (checked against the policy, hashed with `params` off the async
/// threads) and ends every session but `keep` and every refresh family of the user, with the
/// access tokens issued in them. `here` as for [`disable_user`].
pub async fn set_password(
    store: &Store,
    here: Option<&NodeState>,
    params: Argon2Params,
    user: &User,
    password: &str,
    keep: Option<&TokenHash>,
    now: i64,
) -> Result<(), AccountError> {
    check_new_password(password, Some(&user.email)).map_err(AccountError::Password)?;
    let hash = crate::bootstrap::hash_password(params, password.to_owned()).await.map_err(AccountError::Hash)?;
    for (jti, exp) in store.set_user_password(&user.id, &hash, keep, now).await? {
        if let Some(node) = here {
            node.revoked.add(jti, exp);
        }
    }
    Ok(())
}

/// A new account as an operator, a page or the first start gives it: validated and hashed by
/// [`prepare`], stored by [`create_user`]. One path for every surface that makes people.
#[derive(Debug, Clone, Default)]
pub struct NewAccount<'a> {
    pub email: &'a str,
    /// The password in clear, checked against the policy and hashed; none for an account that
    /// signs in some other way (or not yet).
    pub password: Option<&'a str>,
    pub display_name: Option<&'a str>,
    pub email_verified: bool,
    pub is_admin: bool,
}

/// Why an account was not made. Each surface words these its own way.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("not a valid email address")]
    Email,
    #[error("a name is at most {MAX_NAME_CHARS} characters, without control characters")]
    Name,
    /// The password does not meet the policy.
    #[error(transparent)]
    Password(PasswordError),
    /// Hashing failed on our side.
    #[error("could not hash the password: {0}")]
    Hash(PasswordError),
    #[error("an account with this email exists already")]
    Exists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::error::Failure for AccountError {
    fn unavailable(&self) -> bool {
        matches!(self, AccountError::Store(e) if e.is_unavailable())
    }
}

/// The longest display name.
pub const MAX_NAME_CHARS: usize = 200;

/// Checks a new account without hashing anything: the parsed address, the trimmed name (if
/// any), and the password (if any) against the policy.
pub fn check(account: &NewAccount<'_>) -> Result<(Email, Option<String>), AccountError> {
    let email = Email::parse(account.email).map_err(|_| AccountError::Email)?;
    let name = account.display_name.map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control)) {
        return Err(AccountError::Name);
    }
    if let Some(password) = account.password {
        check_new_password(password, Some(account.email)).map_err(AccountError::Password)?;
    }
    Ok((email, name.map(str::to_owned)))
}

/// The row of a checked account, with a fresh id.
pub fn new_user(
    account: &NewAccount<'_>,
    email: Email,
    name: Option<String>,
    password_hash: Option<String>,
) -> NewUser {
    NewUser {
        id: UserId::new(postern_core::id::random_id(&mut postern_core::system::os_rng())),
        email,
        email_verified: account.email_verified,
        password_hash,
        display_name: name,
        is_admin: account.is_admin,
    }
}

/// Checks a new account and hashes its password (Argon2id with `params`, off the async
/// threads): the row to store, with a fresh id.
pub async fn prepare(account: &NewAccount<'_>, params: Argon2Params) -> Result<NewUser, AccountError> {
    let (email, name) = check(account)?;
    let password_hash = match account.password {
        Some(password) => {
            Some(crate::bootstrap::hash_password(params, password.to_owned()).await.map_err(AccountError::Hash)?)
        }
        None => None,
    };
    Ok(new_user(account, email, name, password_hash))
}

/// Creates an account: [`prepare`], then stored. The caller records the audit event, naming
/// who acted.
pub async fn create_user(
    store: &Store,
    params: Argon2Params,
    account: &NewAccount<'_>,
    now: i64,
) -> Result<User, AccountError> {
    let new = prepare(account, params).await?;
    match store.create_user(&new, now).await {
        Err(StoreError::Conflict(_)) => Err(AccountError::Exists),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_surface_gets_the_same_checks() {
        let params = Argon2Params::INSECURE_FOR_TESTS;
        let ok = NewAccount { email: "Ann@Example.org", password: Some("correct horse"), ..NewAccount::default() };
        let user = prepare(&NewAccount { display_name: Some("  Ann  "), ..ok.clone() }, params).await.unwrap();
        assert_eq!((user.email.as_str(), user.display_name.as_deref()), ("Ann@Example.org", Some("Ann")));
        let hash = user.password_hash.unwrap();
        assert!(postern_core::password::verify_password("correct horse", &hash));
        assert!(prepare(&NewAccount { password: None, ..ok.clone() }, params).await.unwrap().password_hash.is_none());
        assert_eq!(
            prepare(&NewAccount { display_name: Some(" "), ..ok.clone() }, params).await.unwrap().display_name,
            None
        );

        let refused = |a: NewAccount<'static>| async move { prepare(&a, params).await.err() };
        assert!(matches!(refused(NewAccount { email: "not-an-email", ..ok.clone() }).await, Some(AccountError::Email)));
        let long = "n".repeat(MAX_NAME_CHARS + 1).leak();
        assert!(matches!(
            refused(NewAccount { display_name: Some(long), ..ok.clone() }).await,
            Some(AccountError::Name)
        ));
        assert!(matches!(
            refused(NewAccount { display_name: Some("a\u{7}b"), ..ok.clone() }).await,
            Some(AccountError::Name)
        ));
        assert!(matches!(refused(NewAccount { password: Some("short"), ..ok }).await, Some(AccountError::Password(_))));
    }
}
