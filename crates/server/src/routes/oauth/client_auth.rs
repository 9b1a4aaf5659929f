//! Authenticating the client of an OAuth request (see `postern_core::client_auth`).

use crate::error::server_error;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use postern_core::client::ClientType;
use postern_core::client_auth;
use postern_core::oauth::OAuthError;
use postern_core::secret::TokenHash;
use postern_store::Client;
use std::sync::Arc;

/// Compared against when the client is unknown, so that the time taken does not say whether a
/// client id exists.
const DUMMY_HASH: [u8; 32] = [0u8; 32];

/// The authenticated client of this request. Unknown clients, wrong secrets, secrets from public
/// clients and missing secrets from confidential clients all get the same `invalid_client`.
pub async fn authenticate(state: &AppState, headers: &HeaderMap, form: &OAuthForm) -> Result<Arc<Client>, OAuthError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().map_err(|_| OAuthError::InvalidClient { basic: true }))
        .transpose()?;
    let presented = client_auth::presented(authorization, form.one("client_id")?, form.one("client_secret")?)?;
    let client =
        state.node.clients.get(&state.store, presented.client_id(), state.now()).await.map_err(server_error)?;
    let Some(client) = client else {
        // Spend the same hashing work as for a known client.
        let _ = TokenHash::of(presented.secret().unwrap_or_default()).matches(&DUMMY_HASH);
        return Err(presented.failure());
    };
    if !client_auth::verify(&presented, client.secret_hash.as_deref()) {
        return Err(presented.failure());
    }
    Ok(client)
}

/// Like [`authenticate`], but only confidential clients may call (introspection).
pub async fn authenticate_confidential(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Arc<Client>, OAuthError> {
    let client = authenticate(state, headers, form).await?;
    if client.client_type != ClientType::Confidential {
        let basic = headers.contains_key(header::AUTHORIZATION);
        return Err(OAuthError::InvalidClient { basic });
    }
    Ok(client)
}
