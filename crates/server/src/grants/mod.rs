//! The grants of the token endpoint as use cases: each takes the authenticated client and the
//! request's parameters and returns the token response or the RFC 6749 error. The route
//! (`routes/oauth/token.rs`) only authenticates the client, checks it may use the grant, and
//! renders the answer; every grant issues its tokens through `crate::tokens`.

pub mod client_credentials;
pub mod code;
pub mod device;
pub mod refresh;

use crate::routes::oauth::oauth_form::OAuthForm;
use crate::state::AppState;
use postern_core::client::GrantType;
use postern_core::oauth::OAuthError;
use postern_proto::TokenResponse;
use postern_store::Client;

/// Runs `grant` for `client` (already authenticated, and allowed the grant).
pub async fn issue(
    state: &AppState,
    client: &Client,
    grant: GrantType,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    match grant {
        GrantType::ClientCredentials => client_credentials::issue(state, client, form).await,
        GrantType::AuthorizationCode => code::exchange(state, client, form).await,
        GrantType::RefreshToken => refresh::refresh(state, client, form).await,
        GrantType::DeviceCode => device::poll(state, client, form).await,
    }
}
