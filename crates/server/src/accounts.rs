//! Operations on people's accounts that cut access: disabling a user and setting a new
//! password. The store does each in one transaction (see `Store::disable_user` and
//! `Store::set_user_password`); here this node's in-memory deny-list learns at once what other
//! nodes read from the database within `tokens.revocation_sync_secs`.

use crate::state::AppState;
use postern_core::secret::TokenHash;
use postern_store::StoreError;

/// Disables a user: sessions, refresh families, opaque and JWT access tokens, codes in flight,
/// approved device requests and API keys all stop working at once. Enabling the user again
/// brings none of them back.
pub async fn disable_user(state: &AppState, user_id: &str) -> Result<(), StoreError> {
    let now = state.now();
    let disabled = state.store.disable_user(user_id, now).await?;
    for (jti, exp) in disabled.revoked_jwts {
        state.revoked.add(jti, exp);
    }
    // Every JWT issued to the user until now, whether or not it was recorded anywhere.
    state.revoked.add_subject(user_id.to_owned(), now, disabled.subject_refused_until);
    Ok(())
}

/// Sets a new password (an Argon2id PHC string) and ends every session but `keep` and every
/// refresh family of the user, with the access tokens issued in them.
pub async fn set_password(
    state: &AppState,
    user_id: &str,
    password_hash: &str,
    keep: Option<&TokenHash>,
) -> Result<(), StoreError> {
    for (jti, exp) in state.store.set_user_password(user_id, password_hash, keep, state.now()).await? {
        state.revoked.add(jti, exp);
    }
    Ok(())
}
