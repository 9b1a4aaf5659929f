//! Token introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Introspection is for resource servers, which call as confidential clients; any token that is
//! not ours, not valid now, or revoked is `{"active": false}` and nothing more, and so is one
//! the caller may not see (`resources::may_see`): an access token is described to the client
//! holding it and to the resource servers in its audience, an API key to the resource servers
//! in its audience, a refresh token only to the client holding it. Revocation may be
//! called by the client the token was issued to (public clients with their `client_id`); it
//! answers 200 whether or not the token existed, so it tells nothing about other clients' tokens.

use crate::error::{WebError, no_store, no_store_json, server_error};
use crate::resources;
use crate::routes::oauth::client_auth;
use crate::routes::oauth::oauth_form::OAuthRequest;
use crate::state::AppState;
use crate::tokens::{self, ActiveToken};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_core::oauth::OAuthError;
use postern_proto::IntrospectionResponse;
use postern_store::{ApiKeyRecord, Client};
use serde::Serialize;
use std::borrow::Cow;

pub async fn introspect(State(state): State<AppState>, OAuthRequest { headers, form }: OAuthRequest) -> Response {
    let result = async {
        let form = form?;
        let caller = client_auth::authenticate_confidential(&state, &headers, &form).await?;
        let token = form.required("token")?;
        if postern_core::apikey::looks_like_key(token) {
            return api_key(&state, &caller, token).await;
        }
        let active = tokens::inspect_access_token(&state, token).await.map_err(server_error)?;
        if let Some(t) = active {
            let described = resources::may_see(&caller, Some(&t.client_id), t.aud.0.iter().map(String::as_str));
            return Ok(if described { answer(&AccessTokenDescription::of(&t)) } else { inactive() });
        }
        Ok::<_, OAuthError>(match tokens::inspect_refresh_token(&state, token).await.map_err(server_error)? {
            // RFC 7662 §2.2: refresh tokens are described too, never as access tokens, and
            // only to the client holding them (§4: the server decides who may see what).
            Some(r) if r.client_id == caller.client_id => answer(&IntrospectionResponse {
                active: true,
                scope: (!r.scope.is_empty()).then_some(r.scope),
                client_id: Some(r.client_id.into()),
                token_type: Some("refresh_token".into()),
                exp: Some(r.idle_expires_at.min(r.grant_expires_at)),
                iat: Some(r.issued_at),
                sub: Some(r.user_id.into()),
                iss: Some(state.issuer.to_string()),
                ..Default::default()
            }),
            _ => inactive(),
        })
    }
    .await;
    result.unwrap_or_else(|e| WebError::OAuth(e).into_response())
}

/// A 200 answer with this body, never cached.
fn answer(body: &impl Serialize) -> Response {
    no_store_json(body)
}

fn inactive() -> Response {
    answer(&IntrospectionResponse::default())
}

/// An active access token's description (RFC 7662 §2.2), borrowed from its claims: the
/// members an [`IntrospectionResponse`] has for it, without copying them for each request.
#[derive(Serialize)]
struct AccessTokenDescription<'a> {
    active: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    scope: &'a str,
    client_id: &'a str,
    token_type: &'static str,
    exp: i64,
    iat: i64,
    sub: &'a str,
    aud: &'a [String],
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'a str>,
}

impl<'a> AccessTokenDescription<'a> {
    fn of(t: &'a ActiveToken) -> Self {
        AccessTokenDescription {
            active: true,
            scope: &t.scope,
            client_id: &t.client_id,
            token_type: "Bearer",
            exp: t.exp,
            iat: t.iat,
            sub: &t.sub,
            aud: &t.aud.0,
            iss: &t.iss,
            jti: t.jti(),
            auth_time: t.auth_time,
            amr: &t.amr,
            acr: t.acr.as_deref(),
        }
    }
}

/// An API key, described like a token so that a resource server has one way to check any
/// credential. The resource server's address is not the key user's, so no IP is recorded.
/// A key is for the resources its scopes belong to; one whose scopes belong to none is for the
/// issuer, and no resource server sees it.
async fn api_key(state: &AppState, caller: &Client, key: &str) -> Result<Response, OAuthError> {
    let Some(k) = state.node.api_keys.verify(&state.store, key, None, state.now()).await.map_err(server_error)? else {
        return Ok(inactive());
    };
    if !resources::may_see(caller, None, k.audience.split_whitespace()) {
        return Ok(inactive());
    }
    Ok(answer(&ApiKeyDescription::of(&k, &state.issuer)))
}

/// An active API key's description, borrowed from its record: the members an
/// [`IntrospectionResponse`] has for it, in its order.
#[derive(Serialize)]
struct ApiKeyDescription<'a> {
    active: bool,
    scope: &'a str,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    iat: i64,
    sub: Cow<'a, str>,
    /// The space-separated audience, as a list.
    #[serde(serialize_with = "words")]
    aud: &'a str,
    iss: &'a str,
    key_kind: &'static str,
}

impl<'a> ApiKeyDescription<'a> {
    fn of(k: &'a ApiKeyRecord, issuer: &'a str) -> Self {
        ApiKeyDescription {
            active: true,
            scope: &k.scope,
            token_type: "Bearer",
            exp: k.expires_at,
            iat: k.created_at,
            sub: match &k.user_id {
                Some(user) => Cow::Borrowed(user.as_str()),
                None => Cow::Owned(k.subject()),
            },
            aud: &k.audience,
            iss: issuer,
            key_kind: k.kind().as_str(),
        }
    }
}

fn words<S: serde::Serializer>(list: &&str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(list.split_whitespace())
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

#[cfg(test)]
mod tests {
    use super::*;
    use postern_core::jwt::OneOrMany;
    use postern_core::token::AccessClaims;
    use std::sync::Arc;

    /// What the response type itself says about the token, field by field.
    fn described(t: &ActiveToken) -> IntrospectionResponse {
        IntrospectionResponse {
            active: true,
            scope: (!t.scope.is_empty()).then(|| t.scope.clone()),
            client_id: Some(t.client_id.clone()),
            token_type: Some("Bearer".into()),
            exp: Some(t.exp),
            iat: Some(t.iat),
            sub: Some(t.sub.clone()),
            aud: Some(t.aud.0.clone()),
            iss: Some(t.iss.clone()),
            jti: t.jti().map(str::to_owned),
            auth_time: t.auth_time,
            amr: (!t.amr.is_empty()).then(|| t.amr.clone()),
            acr: t.acr.clone(),
            key_kind: None,
        }
    }

    #[test]
    fn a_borrowed_description_is_the_response_type_s_own() {
        let signed_in = AccessClaims {
            iss: "https://id.example".into(),
            sub: "u1".into(),
            aud: OneOrMany(vec!["https://api.example".into(), "https://id.example".into()]),
            client_id: "c1".into(),
            scope: "openid read".into(),
            jti: "j1".into(),
            iat: 100,
            exp: 200,
            auth_time: Some(90),
            amr: vec!["pwd".into(), "otp".into()],
            acr: Some("mfa".into()),
        };
        let client_own = AccessClaims {
            sub: "c1".into(),
            scope: String::new(),
            auth_time: None,
            amr: Vec::new(),
            acr: None,
            ..signed_in.clone()
        };
        for (claims, jwt) in [(signed_in, true), (client_own.clone(), true), (client_own, false)] {
            let t = ActiveToken::new(Arc::new(claims), jwt);
            let ours = serde_json::to_value(AccessTokenDescription::of(&t)).unwrap();
            assert_eq!(ours, serde_json::to_value(described(&t)).unwrap());
            assert_eq!(ours.get("jti").is_some(), jwt, "only a JWT has a jti: {ours}");
        }
    }

    #[test]
    fn a_borrowed_key_description_is_the_response_type_s_own() {
        let personal = ApiKeyRecord {
            id: "k1".into(),
            public_prefix: "pst_u_ab".into(),
            kind: "personal".into(),
            user_id: Some(postern_store::UserId::new("u1")),
            service_account_id: None,
            name: "laptop".into(),
            scope: "deploy project:web".into(),
            audience: "https://api.example  https://ci.example".into(),
            created_at: 100,
            expires_at: Some(200),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            user_email: Some("dev@example.org".into()),
            service_account_name: None,
            user_disabled: false,
        };
        let robot = ApiKeyRecord {
            kind: "service_account".into(),
            user_id: None,
            service_account_id: Some("sa1".into()),
            audience: String::new(),
            expires_at: None,
            ..personal.clone()
        };
        let issuer = "https://id.example";
        for k in [personal, robot] {
            let expected = IntrospectionResponse {
                active: true,
                scope: Some(k.scope.clone()),
                token_type: Some("Bearer".into()),
                exp: k.expires_at,
                iat: Some(k.created_at),
                sub: Some(k.subject()),
                aud: Some(k.audience.split_whitespace().map(str::to_owned).collect()),
                iss: Some(issuer.into()),
                key_kind: Some(k.kind().as_str().into()),
                ..Default::default()
            };
            let ours = serde_json::to_string(&ApiKeyDescription::of(&k, issuer)).unwrap();
            assert_eq!(ours, serde_json::to_string(&expected).unwrap(), "same members, same order");
        }
    }
}
