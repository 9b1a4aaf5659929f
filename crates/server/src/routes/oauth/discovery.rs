//! Discovery (RFC 8414, OpenID Connect Discovery 1.0) and the JWKS endpoint.
//!
//! The metadata lists only what this server implements; later features add their endpoints
//! here as they land. Both documents are prepared ahead of time and served from memory.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_core::signing::Algorithm;
use postern_proto::ProviderMetadata;

pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// The metadata document for `issuer`; `registration` when dynamic client registration is on,
/// `documents` when client ID metadata documents are.
pub fn provider_metadata(issuer: &str, registration: bool, documents: bool) -> ProviderMetadata {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let client_auth = strings(&["client_secret_basic", "client_secret_post", "none"]);
    ProviderMetadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: Some(format!("{issuer}{}", crate::routes::AUTHORIZATION_PATH)),
        token_endpoint: Some(format!("{issuer}{}", crate::routes::TOKEN_PATH)),
        jwks_uri: format!("{issuer}{JWKS_PATH}"),
        userinfo_endpoint: Some(format!("{issuer}{}", crate::routes::USERINFO_PATH)),
        device_authorization_endpoint: Some(format!("{issuer}{}", crate::routes::DEVICE_AUTHORIZATION_PATH)),
        end_session_endpoint: Some(format!("{issuer}{}", crate::routes::END_SESSION_PATH)),
        introspection_endpoint: Some(format!("{issuer}{}", crate::routes::INTROSPECTION_PATH)),
        revocation_endpoint: Some(format!("{issuer}{}", crate::routes::REVOCATION_PATH)),
        registration_endpoint: registration
            .then(|| format!("{issuer}{}", crate::routes::oauth::register::REGISTRATION_PATH)),
        scopes_supported: strings(&["openid", "profile", "email", "offline_access"]),
        response_types_supported: strings(&["code"]),
        response_modes_supported: strings(&["query"]),
        grant_types_supported: strings(&[
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
        ]),
        token_endpoint_auth_methods_supported: client_auth.clone(),
        introspection_endpoint_auth_methods_supported: strings(&["client_secret_basic", "client_secret_post"]),
        revocation_endpoint_auth_methods_supported: client_auth,
        code_challenge_methods_supported: strings(&["S256"]),
        claims_supported: strings(&[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "amr",
            "acr",
            "azp",
            "email",
            "email_verified",
            "name",
        ]),
        acr_values_supported: strings(&[postern_core::oidc::ACR_MFA, postern_core::oidc::ACR_SINGLE]),
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: Algorithm::ALL.iter().map(|a| a.as_str().into()).collect(),
        authorization_response_iss_parameter_supported: Some(true),
        request_parameter_supported: Some(false),
        request_uri_parameter_supported: Some(false),
        client_id_metadata_document_supported: documents.then_some(true),
    }
}

pub async fn metadata(State(state): State<AppState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        state.discovery_json.clone(),
    )
        .into_response()
}

/// The public keys. Cached for five minutes; `ETag` lets caches revalidate cheaply, and a
/// verifier that meets an unknown `kid` refetches.
pub async fn jwks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.keys.with_keys(|keys| {
        let etag = HeaderValue::from_str(&keys.jwks_etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        let cache = HeaderValue::from_static("public, max-age=300");
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == keys.jwks_etag || t.trim() == "*"));
        if fresh {
            return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag), (header::CACHE_CONTROL, cache)]).into_response();
        }
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json")),
                (header::CACHE_CONTROL, cache),
                (header::ETAG, etag),
            ],
            keys.jwks_json.clone(),
        )
            .into_response()
    })
}
