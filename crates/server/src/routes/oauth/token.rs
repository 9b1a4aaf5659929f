//! The token endpoint (RFC 6749 §3.2). Grants are dispatched by `grant_type`; each grant checks
//! that the client is allowed it. Every response, success or error, is `Cache-Control: no-store`.

use crate::error::{WebError, no_store_json};
use crate::routes::oauth::client_auth;
use crate::routes::oauth::oauth_form::{OAuthForm, OAuthRequest};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use postern_core::client::GrantType;
use postern_core::oauth::OAuthError;
use postern_proto::TokenResponse;

pub async fn token(State(state): State<AppState>, request: OAuthRequest) -> Response {
    match handle(&state, &request.headers, request.form).await {
        Ok(body) => no_store_json(&body),
        Err(e) => WebError::OAuth(e).into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Result<TokenResponse, OAuthError> {
    let form = form?;
    let grant_type = form.required("grant_type")?;
    let client = client_auth::authenticate(state, headers, &form).await?;
    let grant = GrantType::from_wire(grant_type).ok_or(OAuthError::UnsupportedGrantType)?;
    if !client.grant_types.contains(&grant) {
        return Err(OAuthError::UnauthorizedClient(format!("this client may not use the {grant_type} grant")));
    }
    let issued = crate::grants::issue(state, &client, grant, &form).await?;
    state.node.client_uses.record(&client, state.now());
    Ok(issued)
}
