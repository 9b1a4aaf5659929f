//! `/api/keys` and `/api/service-accounts`: a user's personal access tokens, their service
//! accounts and those accounts' keys, over HTTP.
//!
//! Authenticated by the browser session (state-changing calls must come from our own origin and
//! send JSON, which a cross-site form cannot) or by a user's access token carrying the
//! [`KEYS_SCOPE`] scope. A request authenticated by an API key is refused with 403, whatever the
//! key's scopes: keys cannot mint keys, so a leaked key cannot be turned into more keys. Errors
//! follow RFC 6750: 401 `invalid_token` with `WWW-Authenticate`, 403 `insufficient_scope`.
//! Keys are never accepted in a query parameter.

use crate::apikeys::{self, CreateError, Expiry, Holdings, KeyRequest};
use crate::entitlements::{self, GrantError, Grantor};
use crate::error::ApiError;
use crate::routes::api::{Caller, authenticate, invalid_token, json_response};
use crate::routes::oauth::userinfo::bearer_token;
use crate::routes::pages::account::audit;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_core::secret::TokenHash;
use postern_store::{ApiKeyRecord, KeyOwner, ServiceAccount};
use serde::Deserialize;
use serde_json::json;

/// The scope a user's access token needs to manage that user's keys.
pub const KEYS_SCOPE: &str = "postern:keys";

fn key_json(k: &ApiKeyRecord) -> serde_json::Value {
    json!({
        "id": k.id,
        "prefix": postern_core::apikey::display_prefix(&k.public_prefix),
        "kind": k.kind().as_str(),
        "name": k.name,
        "scopes": k.scope.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "last_used_at": k.last_used_at,
        "last_used_ip": k.last_used_ip,
        "revoked_at": k.revoked_at,
    })
}

/// `GET /api/keys`: the caller's personal keys, then those of the service accounts they own.
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, false, KEYS_SCOPE).await?;
    let h = Holdings::of(&state.store, &caller.user_id).await?;
    Ok(json_response(StatusCode::OK, json!({ "keys": h.keys.iter().map(key_json).collect::<Vec<_>>() })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    name: String,
    scopes: Vec<String>,
    /// Lifetime in seconds; absent: `api_keys.default_ttl_secs`.
    expires_in: Option<i64>,
    /// `true` for a key without expiry (if the server allows it).
    #[serde(default)]
    no_expiry: bool,
    /// The name of a service account the caller owns: the key is that account's.
    service_account: Option<String>,
}

/// `POST /api/keys` with a JSON body: creates a key and shows it, this once.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, KEYS_SCOPE).await?;
    let body: CreateBody = json_body(&headers, &body)?;
    let expiry = match (body.no_expiry, body.expires_in) {
        (true, None) => Expiry::Never,
        (true, Some(_)) => return Err(bad_request("give expires_in or no_expiry, not both")),
        (false, Some(secs)) => Expiry::After(secs),
        (false, None) => Expiry::Default,
    };
    let holdings = Holdings::of(&state.store, &caller.user_id).await?;
    let owner = match &body.service_account {
        None => KeyOwner::User(&caller.user_id),
        Some(name) => match holdings.service_account(name) {
            Some(sa) => KeyOwner::ServiceAccount(&sa.id),
            None => return Err(not_found("no such service account among yours")),
        },
    };
    let within = caller.token_scope.as_deref();
    let request = KeyRequest { owner, name: &body.name, scopes: &body.scopes, expiry, within };
    let now = state.now();
    match apikeys::create(&state.store, &state.config.api_keys, &request, now).await {
        Ok((key, record)) => {
            let details = json!({ "public_prefix": record.public_prefix });
            audit(&state, &caller.user_id, "api_key.created", &record.id, details).await;
            let mut body = key_json(&record);
            body["key"] = json!(key.expose());
            Ok(json_response(StatusCode::CREATED, body))
        }
        Err(CreateError::Invalid(m)) => Err(bad_request(m)),
        Err(CreateError::Store(e)) => Err(e.into()),
    }
}

/// `DELETE /api/keys/{id}`: revokes one of the caller's keys.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, KEYS_SCOPE).await?;
    if Holdings::of(&state.store, &caller.user_id).await?.key(&id).is_none() {
        return Err(not_found("no such key"));
    }
    let revoked = state.store.revoke_api_key(&id, state.now()).await?;
    state.node.api_keys.forget_all();
    if revoked {
        audit(&state, &caller.user_id, "api_key.revoked", &id, json!({})).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn not_found(description: &'static str) -> ApiError {
    ApiError::NotFound(description.into())
}

/// `GET /api/service-accounts`: the service accounts the caller owns.
pub async fn list_service_accounts(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, false, KEYS_SCOPE).await?;
    let h = Holdings::of(&state.store, &caller.user_id).await?;
    let accounts: Vec<_> = h.service_accounts.iter().map(service_account_json).collect();
    Ok(json_response(StatusCode::OK, json!({ "service_accounts": accounts })))
}

fn service_account_json(s: &ServiceAccount) -> serde_json::Value {
    json!({ "id": s.id, "name": s.name, "description": s.description, "created_at": s.created_at })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountBody {
    name: String,
    #[serde(default)]
    description: String,
}

/// `POST /api/service-accounts` with a JSON body: a service account owned by the caller.
pub async fn create_service_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, KEYS_SCOPE).await?;
    let body: ServiceAccountBody = json_body(&headers, &body)?;
    let now = state.now();
    match apikeys::create_service_account(&state.store, &caller.user_id, &body.name, &body.description, now).await {
        Ok(sa) => {
            let details = json!({ "name": sa.name, "owner": caller.user_id });
            audit(&state, &caller.user_id, "service_account.created", &sa.id, details).await;
            Ok(json_response(StatusCode::CREATED, service_account_json(&sa)))
        }
        Err(CreateError::Invalid(m)) => Err(bad_request(m)),
        Err(CreateError::Store(e)) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopesBody {
    scopes: Vec<String>,
}

/// The caller's service account `name` and what it may hold, or the answer to give instead.
async fn owned_service_account(state: &AppState, caller: &Caller, name: &str) -> Result<ServiceAccount, ApiError> {
    let holdings = Holdings::of(&state.store, &caller.user_id).await?;
    holdings.service_account(name).cloned().ok_or_else(|| not_found("no such service account among yours"))
}

async fn scopes_json(state: &AppState, sa: &ServiceAccount) -> Result<Response, ApiError> {
    let held = state.store.entitlements(&entitlements::principal(KeyOwner::ServiceAccount(&sa.id))).await?;
    let scopes: Vec<String> = held.into_iter().map(|e| e.scope).collect();
    Ok(json_response(StatusCode::OK, json!({ "service_account": sa.name, "scopes": scopes })))
}

/// `GET /api/service-accounts/{name}/scopes`: what one of the caller's service accounts may
/// hold on its keys.
pub async fn service_account_scopes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, false, KEYS_SCOPE).await?;
    let sa = owned_service_account(&state, &caller, &name).await?;
    scopes_json(&state, &sa).await
}

/// `POST /api/service-accounts/{name}/scopes` with `{"scopes": […]}`: the owner entitles their
/// service account, within the owner's own entitlements (and the access token's scope).
pub async fn grant_service_account_scopes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, KEYS_SCOPE).await?;
    let body: ScopesBody = json_body(&headers, &body)?;
    let sa = owned_service_account(&state, &caller, &name).await?;
    if let Some(s) = entitlements::beyond_token(caller.token_scope.as_deref(), &body.scopes) {
        return Err(bad_request(format!("the access token used does not cover the scope {s:?}")));
    }
    let owner = KeyOwner::ServiceAccount(&sa.id);
    match entitlements::grant(&state.store, owner, &body.scopes, Grantor::Owner(&caller.user_id), state.now()).await {
        Ok(()) => {
            let details = json!({ "scopes": body.scopes, "service_account": sa.name });
            audit(&state, &caller.user_id, "entitlement.granted", &entitlements::principal(owner), details).await;
            scopes_json(&state, &sa).await
        }
        Err(GrantError::Invalid(m)) => Err(bad_request(m)),
        Err(GrantError::Store(e)) => Err(e.into()),
    }
}

/// `DELETE /api/service-accounts/{name}/scopes/{scope}`: takes a scope away from one of the
/// caller's service accounts; its keys carrying it are revoked.
pub async fn revoke_service_account_scope(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, scope)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, &headers, true, KEYS_SCOPE).await?;
    let sa = owned_service_account(&state, &caller, &name).await?;
    if let Err(e) = postern_core::scope::Scope::parse(&scope) {
        return Err(bad_request(e.to_string()));
    }
    let owner = KeyOwner::ServiceAccount(&sa.id);
    let revoked = entitlements::revoke(&state.store, owner, std::slice::from_ref(&scope), state.now()).await?;
    state.node.api_keys.forget_all();
    let details = json!({ "scopes": [scope], "revoked_keys": revoked });
    audit(&state, &caller.user_id, "entitlement.revoked", &entitlements::principal(owner), details).await;
    scopes_json(&state, &sa).await
}

/// A JSON request body (`Content-Type: application/json`, which a cross-site form cannot send).
fn json_body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !is_json {
        return Err(bad_request("the body must be application/json"));
    }
    serde_json::from_slice(body).map_err(|e| bad_request(format!("invalid body: {e}")))
}

fn bad_request(description: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::BadRequest(description.into())
}

/// One report, in GitHub's secret-scanning format (`[{"token": …, "type": …, "url": …}]`) or as
/// a bare string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum LeakReport {
    Plain(String),
    Scanner { token: String },
}

/// `POST /api/keys/revoke-leaked`: a secret scanner reports keys found in public. Existing live
/// keys are revoked and audited; the answer is the same whether or not a key existed.
pub async fn revoke_leaked(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let expected = state.config.api_keys.scanner_token.as_ref().map(|t| TokenHash::of(t.expose()));
    let presented = bearer_token(&headers).map(TokenHash::of);
    let allowed = match (expected, presented) {
        (Some(e), Some(p)) => postern_core::secret::constant_time_eq(e.as_bytes(), p.as_bytes()),
        _ => false,
    };
    if !allowed {
        return Err(invalid_token("the scanner credential is missing or wrong"));
    }
    let reports: Vec<LeakReport> =
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("expected a JSON array of reports: {e}")))?;
    if reports.len() > 1000 {
        return Err(bad_request("at most 1000 reports per request"));
    }
    let now = state.now();
    for report in &reports {
        let (LeakReport::Plain(token) | LeakReport::Scanner { token }) = report;
        let Ok(parsed) = postern_core::apikey::parse(token.trim()) else { continue };
        if let Some((id, prefix)) = state.store.revoke_api_key_by_hash(&parsed.hash, now).await? {
            let event = postern_store::NewAuditEvent {
                actor: "secret-scanner",
                action: "api_key.revoked_leaked",
                target: Some(&id),
                outcome: "success",
                details: Some(json!({ "public_prefix": prefix })),
                ..Default::default()
            };
            if let Err(e) = state.store.record_audit(&event, now).await {
                tracing::error!(error = %e, "could not record a leaked-key revocation");
            }
            tracing::warn!(key = %id, prefix = %prefix, "API key reported as leaked: revoked");
        }
    }
    state.node.api_keys.forget_all();
    Ok(json_response(StatusCode::OK, json!({ "received": reports.len() })))
}
