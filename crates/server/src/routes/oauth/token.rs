//! The token endpoint (RFC 6749 §3.2). Grants are dispatched by `grant_type`; each grant checks
//! that the client is allowed it. Every response, success or error, is `Cache-Control: no-store`.

use crate::error::{WebError, no_store};
use crate::routes::oauth::client_auth;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::state::AppState;
use crate::tokens::{self, Grant};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use postern_core::client::{ClientType, GrantType};
use postern_core::oauth::{OAuthError, grant_scopes, parse_scope_param};
use postern_proto::TokenResponse;
use postern_store::Client;

pub async fn token(State(state): State<AppState>, headers: HeaderMap, form: Result<OAuthForm, WebError>) -> Response {
    match handle(&state, &headers, form).await {
        Ok(body) => {
            let mut response = Json(body).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => WebError::OAuth(e).into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<OAuthForm, WebError>,
) -> Result<TokenResponse, OAuthError> {
    let form = form.map_err(|e| match e {
        WebError::OAuth(e) => e,
        other => OAuthError::invalid_request(other.to_string()),
    })?;
    let grant_type = form.required("grant_type")?;
    let client = client_auth::authenticate(state, headers, &form).await?;
    let grant = GrantType::from_wire(grant_type).ok_or(OAuthError::UnsupportedGrantType)?;
    if !client.grant_types.contains(&grant) {
        return Err(OAuthError::UnauthorizedClient(format!("this client may not use the {grant_type} grant")));
    }
    match grant {
        GrantType::ClientCredentials => client_credentials(state, &client, &form).await,
        GrantType::AuthorizationCode => crate::routes::oauth::code_grant::exchange(state, &client, &form).await,
        GrantType::RefreshToken => crate::routes::oauth::refresh_grant::refresh(state, &client, &form).await,
        GrantType::DeviceCode => crate::routes::oauth::device::poll(state, &client, &form).await,
    }
}

/// RFC 6749 §4.4: confidential clients only; scopes are those requested that the client is
/// allowed (all it is allowed when none are requested); no refresh token.
async fn client_credentials(state: &AppState, client: &Client, form: &OAuthForm) -> Result<TokenResponse, OAuthError> {
    if client.client_type != ClientType::Confidential {
        return Err(OAuthError::UnauthorizedClient("client credentials need a confidential client".into()));
    }
    let requested = parse_scope_param(form.one("scope")?.unwrap_or_default())?;
    let scopes = grant_scopes(&requested, &client.allowed_scopes)?;
    let audience = tokens::audiences(state, &form.all("resource")?)?;
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
