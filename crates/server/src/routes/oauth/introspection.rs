//! Token introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Introspection is for resource servers, which call as confidential clients; any token that is
//! not ours, not valid now, or revoked is `{"active": false}` and nothing more, and so is one
//! the caller may not see (`resources::may_see`): an access token is described to the client
//! holding it and to the resource servers in its audience, an API key to the resource servers
//! in its audience, a refresh token only to the client holding it. Revocation may be
//! called by the client the token was issued to (public clients with their `client_id`); it
//! answers 200 whether or not the token existed, so it tells nothing about other clients' tokens.

use crate::error::{WebError, no_store, server_error};
use crate::resources;
use crate::routes::oauth::client_auth;
use crate::routes::oauth::oauth_form::OAuthRequest;
use crate::state::AppState;
use crate::tokens;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_core::oauth::OAuthError;
use postern_proto::IntrospectionResponse;
use postern_store::Client;

pub async fn introspect(State(state): State<AppState>, OAuthRequest { headers, form }: OAuthRequest) -> Response {
    let result = async {
        let form = form?;
        let caller = client_auth::authenticate_confidential(&state, &headers, &form).await?;
        let token = form.required("token")?;
        if postern_core::apikey::looks_like_key(token) {
            return api_key(&state, &caller, token).await;
        }
        let active = tokens::inspect_access_token(&state, token).await.map_err(server_error)?;
        Ok::<_, OAuthError>(match active {
            Some(t) if !resources::may_see(&caller, Some(&t.client_id), t.audience.iter().map(String::as_str)) => {
                IntrospectionResponse::default()
            }
            Some(t) => IntrospectionResponse {
                active: true,
                scope: (!t.scope.is_empty()).then_some(t.scope),
                client_id: Some(t.client_id),
                token_type: Some("Bearer".into()),
                exp: Some(t.expires_at),
                iat: Some(t.issued_at),
                sub: Some(t.subject),
                aud: Some(t.audience),
                iss: Some(state.issuer.to_string()),
                jti: t.jti,
                auth_time: t.auth_time,
                amr: (!t.amr.is_empty()).then_some(t.amr),
                acr: t.acr,
                key_kind: None,
            },
            None => match tokens::inspect_refresh_token(&state, token).await.map_err(server_error)? {
                // RFC 7662 §2.2: refresh tokens are described too, never as access tokens, and
                // only to the client holding them (§4: the server decides who may see what).
                Some(r) if r.client_id == caller.client_id => IntrospectionResponse {
                    active: true,
                    scope: (!r.scope.is_empty()).then_some(r.scope),
                    client_id: Some(r.client_id.into()),
                    token_type: Some("refresh_token".into()),
                    exp: Some(r.idle_expires_at.min(r.grant_expires_at)),
                    iat: Some(r.issued_at),
                    sub: Some(r.user_id.into()),
                    iss: Some(state.issuer.to_string()),
                    ..Default::default()
                },
                _ => IntrospectionResponse::default(),
            },
        })
    }
    .await;
    match result {
        Ok(body) => {
            let mut response = Json(body).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => WebError::OAuth(e).into_response(),
    }
}

/// An API key, described like a token so that a resource server has one way to check any
/// credential. The resource server's address is not the key user's, so no IP is recorded.
/// A key is for the resources its scopes belong to; one whose scopes belong to none is for the
/// issuer, and no resource server sees it.
async fn api_key(state: &AppState, caller: &Client, key: &str) -> Result<IntrospectionResponse, OAuthError> {
    let Some(k) = state.node.api_keys.verify(&state.store, key, None, state.now()).await.map_err(server_error)? else {
        return Ok(IntrospectionResponse::default());
    };
    if !resources::may_see(caller, None, k.audience.split_whitespace()) {
        return Ok(IntrospectionResponse::default());
    }
    Ok(IntrospectionResponse {
        active: true,
        scope: Some(k.scope.clone()),
        token_type: Some("Bearer".into()),
        exp: k.expires_at,
        iat: Some(k.created_at),
        sub: Some(k.subject()),
        aud: Some(k.audience.split_whitespace().map(str::to_owned).collect()),
        iss: Some(state.issuer.to_string()),
        key_kind: Some(k.kind().as_str().into()),
        ..Default::default()
    })
}

pub async fn revoke(State(state): State<AppState>, OAuthRequest { headers, form }: OAuthRequest) -> Response {
    let result = async {
        let form = form?;
        let client = client_auth::authenticate(&state, &headers, &form).await?;
        let token = form.required("token")?;
        // RFC 7009 §2.1: the hint only speeds up the lookup; an unknown hint is ignored.
        let _hint = form.one("token_type_hint")?;
        tokens::revoke_token(&state, token, &client.client_id).await.map_err(server_error)?;
        Ok::<_, OAuthError>(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(e) => WebError::OAuth(e).into_response(),
    }
}
