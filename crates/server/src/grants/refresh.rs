//! `grant_type=refresh_token` (RFC 6749 §6) with rotation on every use (OAuth 2.1 §4.3.1,
//! RFC 9700 §4.14.2).
//!
//! The new pair is built first, then one transaction rotates the old token (conditional on it
//! not being rotated yet) and stores the new one. Of concurrent refreshes with the same token
//! exactly one rotates; the others find the successor pair sealed on the old row and, within the
//! grace window, get that same pair, so two processes refreshing at once both succeed and
//! neither logs the user out. Outside the window, a rotated token presented again means it
//! leaked: the whole family is revoked.

use crate::error::server_error;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::state::AppState;
use crate::tokens::{self, AccessPlan, Bearer, UserGrant};
use postern_core::oauth::{OAuthError, parse_scope_param, scope_string, scope_within};
use postern_core::secret::{BearerSecret, TokenHash, stored_hash};
use postern_proto::TokenResponse;
use postern_store::{Client, NewAccessToken, NewRefresh, RefreshRecord};

/// The longest grace window a public client gets (see `retry_or_reuse`).
const PUBLIC_GRACE_SECS: i64 = 10;

fn invalid() -> OAuthError {
    OAuthError::InvalidGrant("the refresh token is invalid, expired or revoked".into())
}

/// The key a rotated token's successor pair is sealed with: derived from the old refresh token
/// itself, which the database holds only as a hash, so that the pair can be opened only by
/// whoever presents that token again, never from a copy of the data directory (KEK included).
pub fn successor_key(token: &str) -> postern_core::kek::KeyEncryptionKey {
    postern_core::kek::KeyEncryptionKey::derived_from(token.as_bytes(), b"postern:refresh-successor-key:v1")
}

/// What binds a sealed successor to the row it is kept on.
pub fn successor_aad(old: &TokenHash) -> Vec<u8> {
    let mut aad = b"postern:refresh-successor:".to_vec();
    aad.extend_from_slice(old.as_bytes());
    aad
}

pub async fn refresh(state: &AppState, client: &Client, form: &OAuthForm) -> Result<TokenResponse, OAuthError> {
    let token = form.required("refresh_token")?;
    let requested = parse_scope_param(form.one("scope")?.unwrap_or_default())?;
    let old = stored_hash(token);
    let now = state.now();
    let found = state.store.refresh_token_with_user(&old).await.map_err(server_error)?.ok_or_else(invalid)?;
    let (record, user) = (found.token, found.user);
    // RFC 6749 §6: the token is bound to the client it was issued to.
    if record.client_id != client.client_id || record.revoked_at.is_some() || now >= record.grant_expires_at {
        return Err(invalid());
    }
    if let Some(rotated_at) = record.rotated_at {
        return retry_or_reuse(state, client, &record, &user, token, &old, rotated_at).await;
    }
    if now >= record.idle_expires_at {
        return Err(invalid());
    }
    // The scope may only narrow (RFC 6749 §6); the new refresh token keeps the old one's scope.
    if !scope_within(&requested, &record.scope) {
        return Err(OAuthError::InvalidScope("a refresh may only narrow the scope".into()));
    }
    let access_scope = if requested.is_empty() { record.scope.clone() } else { scope_string(&requested) };
    if user.disabled {
        tokens::revoke_grant(state, &record.grant_id).await.map_err(server_error)?;
        return Err(invalid());
    }

    let mut rng = postern_core::system::os_rng();
    // The family's audience may narrow, never widen (RFC 8707 §2.2).
    let audience = crate::resources::bound_audiences(&state.issuer, client, &record.audience, &form.all("resource")?)?;
    let plan = AccessPlan::new(client, now, state.now_millis());
    let (access_jti, opaque_hash, access_expires_at) = (plan.jti.clone(), plan.opaque_hash(), plan.expires_at);
    let bearer = Bearer {
        user_id: Some(&record.user_id),
        subject: &record.user_id,
        scope: &access_scope,
        audience: &audience,
        auth_time: Some(record.auth_time),
        amr: &record.amr,
    };
    let opaque_record = opaque_hash.map(|_| plan.record(client, &bearer));
    let new_refresh = BearerSecret::generate_ordered(&mut rng, state.now_millis());
    let grant = UserGrant {
        user_id: &record.user_id,
        scope: &access_scope,
        auth_time: record.auth_time,
        amr: &record.amr,
        nonce: None,
        id_token: client.policy.id_token_on_refresh,
    };
    let refresh_token = Some(new_refresh.expose().to_owned());
    let response =
        tokens::user_token_response(state, client, plan, audience.clone(), &grant, Some(&user), refresh_token).await?;
    let plain = serde_json::to_vec(&response).map_err(server_error)?;
    let sealed = successor_key(token).seal(&plain, &successor_aad(&old), &mut rng).map_err(server_error)?;
    let opaque_access = opaque_hash.zip(opaque_record.as_ref()).map(|(hash, record)| NewAccessToken { hash, record });
    let new = NewRefresh {
        hash: new_refresh.hash(),
        grant_id: &record.grant_id,
        scope: &record.scope,
        issued_at: now,
        idle_expires_at: (now + client.refresh_token_ttl).min(record.grant_expires_at),
        access_jti: access_jti.as_deref(),
        access_token_hash: opaque_hash,
        access_expires_at,
    };
    if state.store.rotate_refresh(&old, now, &sealed, &new, opaque_access.as_ref()).await.map_err(server_error)? {
        return Ok(response);
    }
    // Another request rotated it first: answer as a retry of that one.
    let found = state.store.refresh_token_with_user(&old).await.map_err(server_error)?.ok_or_else(invalid)?;
    let rotated_at = found.token.rotated_at.ok_or_else(|| server_error("rotation lost but no rotation recorded"))?;
    retry_or_reuse(state, client, &found.token, &found.user, token, &old, rotated_at).await
}

/// A rotated token again: the same successor within the grace window; otherwise reuse, which
/// revokes the family.
async fn retry_or_reuse(
    state: &AppState,
    client: &Client,
    record: &RefreshRecord,
    user: &postern_store::User,
    token: &str,
    old: &TokenHash,
    rotated_at: i64,
) -> Result<TokenResponse, OAuthError> {
    let now = state.now();
    // The replay goes only to the client the family belongs to, authenticated if it is
    // confidential; a public client cannot prove it is the first presenter, so its window is
    // short, just enough for two of its processes refreshing at once.
    let mut grace = state.config.tokens.refresh_reuse_grace_secs;
    if client.client_type == postern_core::client::ClientType::Public {
        grace = grace.min(PUBLIC_GRACE_SECS);
    }
    let within = now - rotated_at <= grace;
    if let (true, Some(sealed)) = (within, &record.successor_sealed) {
        // The replay answers only for a family still live and a user still active.
        if record.revoked_at.is_some() || user.disabled {
            return Err(invalid());
        }
        let aad = successor_aad(old);
        // Successors sealed with the KEK by an earlier version live out their grace window.
        let plain = successor_key(token)
            .open(sealed, &aad)
            .or_else(|_| state.keys.kek().open(sealed, &aad))
            .map_err(server_error)?;
        return serde_json::from_slice(&plain).map_err(server_error);
    }
    tracing::warn!(grant = %record.grant_id, client = %record.client_id, "rotated refresh token reused; revoking the family");
    tokens::revoke_grant(state, &record.grant_id).await.map_err(server_error)?;
    Err(OAuthError::InvalidGrant("the refresh token was already used; the session is revoked".into()))
}
