//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4–3.5).
//!
//! Polling keeps the last-poll time in memory: a pending poll writes nothing, and a poll that
//! comes too soon is answered `slow_down` without reading the database either (see
//! [`crate::device_polls`]). Tokens are handed out by one conditional update (approved →
//! consumed), so of any number of concurrent polls exactly one gets them.

use crate::error::server_error;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::state::AppState;
use crate::tokens::{self, AccessPlan, UserGrant};
use postern_core::oauth::OAuthError;
use postern_core::secret::{TokenHash, stored_hash};
use postern_proto::TokenResponse;
use postern_store::{Client, DeviceIssuance, DeviceStatus};

/// `grant_type=urn:ietf:params:oauth:grant-type:device_code` at the token endpoint.
pub async fn poll(state: &AppState, client: &Client, form: &OAuthForm) -> Result<TokenResponse, OAuthError> {
    let code = stored_hash(form.required("device_code")?);
    let now = state.now();
    if state.node.device_polls.too_soon(&code, &client.client_id, now).is_some() {
        state.metrics.device_event("slow_down");
        return Err(OAuthError::SlowDown);
    }
    let invalid = || OAuthError::InvalidGrant("the device code is invalid or was already used".into());
    let Some(auth) = state.store.device_authorization(&code).await.map_err(server_error)? else {
        return Err(invalid());
    };
    if auth.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant("the device code was issued to another client".into()));
    }
    if auth.status == DeviceStatus::Consumed {
        return Err(invalid());
    }
    if now >= auth.expires_at {
        state.node.device_polls.forget(&code);
        state.metrics.device_event("expired");
        return Err(OAuthError::ExpiredToken);
    }
    if auth.status == DeviceStatus::Denied {
        state.node.device_polls.forget(&code);
        return Err(OAuthError::AccessDenied);
    }
    let interval = state.config.device.interval_secs;
    if let Err(_interval) = state.node.device_polls.poll(&code, &client.client_id, auth.expires_at, now, interval) {
        state.metrics.device_event("slow_down");
        return Err(OAuthError::SlowDown);
    }
    if auth.status == DeviceStatus::Pending {
        return Err(OAuthError::AuthorizationPending);
    }
    issue(state, client, &code, &auth.resource, now).await
}

/// Consumes an approved authorization and issues its tokens, for the resources it named.
async fn issue(
    state: &AppState,
    client: &Client,
    code: &TokenHash,
    bound: &str,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let audience = crate::resources::bound_audiences(&state.issuer, client, bound, &[])?;
    let audience_text = audience.join(" ");
    let plan = AccessPlan::new(client, now, state.now_millis());
    let refresh_rule = tokens::refresh_rule(client);
    let (refresh, family) = tokens::planned_family(state, client, &audience, now).unzip();
    let issuance = DeviceIssuance {
        access_jti: plan.jti.as_deref(),
        access_token_hash: plan.opaque_hash(),
        audience: &audience_text,
        access_expires_at: plan.expires_at,
        refresh: family,
        refresh_rule,
    };
    let grant = state
        .store
        .consume_device_authorization(code, &client.client_id, now, &issuance)
        .await
        .map_err(server_error)?
        .ok_or_else(|| OAuthError::InvalidGrant("the device code was already used".into()))?;
    state.node.device_polls.forget(code);
    let user_id = grant.user_id.clone().ok_or_else(|| server_error("approved without a user"))?;
    let user = UserGrant {
        user_id: &user_id,
        scope: &grant.scope,
        auth_time: grant.auth_time.unwrap_or(now),
        amr: grant.amr.as_deref().unwrap_or("pwd"),
        nonce: None,
        id_token: true,
    };
    let refresh_token = refresh.filter(|_| refresh_rule.issues_for(&grant.scope)).map(|r| r.expose().to_owned());
    tokens::user_token_response(state, client, plan, audience, &user, None, refresh_token).await
}
