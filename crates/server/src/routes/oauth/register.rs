//! The client registration endpoint (RFC 7591) and each registration's configuration endpoint
//! (RFC 7592): thin adapters over `crate::client_registration`.
//!
//! `registration.dynamic` decides who may register: nobody (`off`: 404), holders of an initial
//! access token (`token`, the default) or anyone (`open`). Registrations are counted per client
//! address before any token is looked at (`limits.client_registrations_per_address`). Metadata
//! errors are RFC 7591 §3.2.2 JSON (400 `invalid_redirect_uri`, `invalid_client_metadata`);
//! credential errors RFC 6750's (401 `invalid_token` with a challenge), the same for an unknown
//! client as for a wrong token.

use crate::client_registration::{self, Metadata, RegistrationError};
use crate::config::DynamicRegistration;
use crate::error::{ApiError, no_store};
use crate::routes::ClientMeta;
use crate::routes::oauth::userinfo::bearer_token;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_core::secret::TokenHash;
use postern_store::Client;
use serde_json::json;

pub const REGISTRATION_PATH: &str = "/oauth/register";

/// A JSON answer that is never cached.
fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    no_store(&mut r);
    r
}

fn refused(e: RegistrationError) -> Response {
    match e {
        RegistrationError::Store(e) => ApiError::from(e).into_response(),
        other => {
            answer(StatusCode::BAD_REQUEST, json!({ "error": other.code(), "error_description": other.to_string() }))
        }
    }
}

/// The metadata in a JSON body.
fn metadata(headers: &HeaderMap, body: &[u8]) -> Result<Metadata, RegistrationError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.split(';').next().unwrap_or_default().trim().eq_ignore_ascii_case("application/json") {
        return Err(RegistrationError::InvalidClientMetadata("the body must be application/json".into()));
    }
    serde_json::from_slice(body).map_err(|e| RegistrationError::InvalidClientMetadata(format!("client metadata: {e}")))
}

/// `POST /oauth/register`.
pub async fn register(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mode = state.config.registration.dynamic;
    if mode == DynamicRegistration::Off {
        return ApiError::NotFound("dynamic client registration is off".into()).into_response();
    }
    let now = state.now();
    if let Err(wait) = state.node.anonymous_writes.client_registration(&meta.limit_key(), now) {
        return crate::error::too_many_requests(wait);
    }
    // With `token`, a request without one is refused before anything else; the metadata is
    // checked before a use of the token is spent, so a mistake does not cost a single-use token.
    let token = bearer_token(&headers);
    if mode == DynamicRegistration::Token && token.is_none() {
        return ApiError::Unauthenticated("an initial access token is required".into()).into_response();
    }
    let checked = match metadata(&headers, &body) {
        Ok(m) => client_registration::check(&state.store, &state.config, &m).await,
        Err(e) => Err(e),
    };
    let settings = match checked {
        Ok(settings) => settings,
        Err(e) => return refused(e),
    };
    if let (DynamicRegistration::Token, Some(token)) = (mode, token) {
        match state.store.use_registration_token(&TokenHash::of(token), now).await {
            Ok(true) => {}
            Ok(false) => {
                return ApiError::InvalidToken("the initial access token is unknown, expired or used up".into())
                    .into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    match client_registration::register(&state.store, &state.config, settings, now).await {
        Ok(made) => {
            let id = made.client.client_id.to_string();
            crate::audit::by(&state, &meta, "dynamic-registration", "client.register", &id).await;
            answer(StatusCode::CREATED, client_registration::describe(state.issuer.as_ref(), &made.client, Some(&made)))
        }
        Err(e) => refused(e),
    }
}

/// The client the request's registration access token manages.
async fn managed(state: &AppState, headers: &HeaderMap, client_id: &str) -> Result<Client, ApiError> {
    let Some(token) = bearer_token(headers) else {
        return Err(ApiError::Unauthenticated("the registration access token is required".into()));
    };
    if client_id.chars().any(char::is_control) {
        return Err(ApiError::InvalidToken("no such registration for this registration access token".into()));
    }
    client_registration::managed(&state.store, client_id, token)
        .await?
        .ok_or_else(|| ApiError::InvalidToken("no such registration for this registration access token".into()))
}

/// `GET /oauth/register/{client_id}` (RFC 7592 §2.1).
pub async fn read(State(state): State<AppState>, headers: HeaderMap, Path(client_id): Path<String>) -> Response {
    match managed(&state, &headers, &client_id).await {
        Ok(client) => answer(StatusCode::OK, client_registration::describe(state.issuer.as_ref(), &client, None)),
        Err(e) => e.into_response(),
    }
}

/// `PUT /oauth/register/{client_id}` (RFC 7592 §2.2): the metadata sent replaces the old.
pub async fn update(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let client = match managed(&state, &headers, &client_id).await {
        Ok(client) => client,
        Err(e) => return e.into_response(),
    };
    let updated = match metadata(&headers, &body) {
        Ok(m) => client_registration::update(&state.store, &state.config, &client, &m, state.now()).await,
        Err(e) => Err(e),
    };
    match updated {
        Ok(client) => {
            crate::audit::by(&state, &meta, "dynamic-registration", "client.update", &client_id).await;
            answer(StatusCode::OK, client_registration::describe(state.issuer.as_ref(), &client, None))
        }
        Err(e) => refused(e),
    }
}

/// `DELETE /oauth/register/{client_id}` (RFC 7592 §2.3): the client and its grants are gone.
pub async fn delete(
    State(state): State<AppState>,
    meta: ClientMeta,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    if let Err(e) = managed(&state, &headers, &client_id).await {
        return e.into_response();
    }
    if let Err(e) = state.store.delete_client(&client_id).await {
        return ApiError::from(e).into_response();
    }
    crate::audit::by(&state, &meta, "dynamic-registration", "client.delete", &client_id).await;
    let mut r = StatusCode::NO_CONTENT.into_response();
    no_store(&mut r);
    r
}
