//! `grant_type=client_credentials` (RFC 6749 §4.4): a machine acting as itself.

use crate::routes::oauth::oauth_form::OAuthForm;
use crate::state::AppState;
use crate::tokens::{self, Grant};
use postern_core::client::ClientType;
use postern_core::oauth::{OAuthError, grant_scopes, parse_scope_param};
use postern_proto::TokenResponse;
use postern_store::Client;

/// RFC 6749 §4.4: confidential clients only; scopes are those requested that the client is
/// allowed (all it is allowed when none are requested); no refresh token.
pub async fn issue(state: &AppState, client: &Client, form: &OAuthForm) -> Result<TokenResponse, OAuthError> {
    if client.client_type != ClientType::Confidential {
        return Err(OAuthError::UnauthorizedClient("client credentials need a confidential client".into()));
    }
    let requested = parse_scope_param(form.one("scope")?.unwrap_or_default())?;
    let scopes = grant_scopes(&requested, &client.allowed_scopes)?;
    let audience = crate::resources::audiences(&state.issuer, client, &form.all("resource")?)?;
    let grant = Grant { client, user_id: None, subject: &client.client_id, scopes: &scopes, audience, auth_time: None };
    let issued = tokens::issue_access_token(state, &grant).await?;
    Ok(TokenResponse {
        access_token: issued.access_token,
        token_type: "Bearer".into(),
        expires_in: issued.expires_in,
        scope: (!issued.scope.is_empty()).then_some(issued.scope),
        refresh_token: None,
        id_token: None,
    })
}
