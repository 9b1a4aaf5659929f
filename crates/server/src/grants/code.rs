//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5–4.6).
//!
//! The code is redeemed by one conditional update that also matches the client, the redirect
//! URI and the S256 challenge of the presented verifier, so of many concurrent attempts exactly
//! one gets tokens. The access token is decided before the redemption and recorded on the code,
//! so that a replay can revoke it.

use crate::error::server_error;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::state::AppState;
use crate::tokens::{self, AccessPlan, UserGrant};
use postern_core::oauth::OAuthError;
use postern_core::secret::{TokenHash, stored_hash};
use postern_proto::TokenResponse;
use postern_store::{Client, CodeOutcome, Redemption};

pub async fn exchange(state: &AppState, client: &Client, form: &OAuthForm) -> Result<TokenResponse, OAuthError> {
    let code = form.required("code")?;
    // Required only when the authorization request named one (RFC 6749 §4.1.3); the code
    // records which (an empty redirect URI matches any).
    let redirect_uri = form.one("redirect_uri")?.unwrap_or_default();
    let verifier = form
        .one("code_verifier")?
        .ok_or_else(|| OAuthError::invalid_request("PKCE is required: missing code_verifier"))?;
    if !postern_core::pkce::verifier_syntax_ok(verifier) {
        return Err(OAuthError::invalid_request("code_verifier must be 43-128 unreserved characters"));
    }
    let challenge = postern_core::pkce::s256(verifier);
    // The resources the authorization request named bind the audience (RFC 8707 §2.2).
    let hash = stored_hash(code);
    let bound = state.store.code_resource(&hash).await.map_err(server_error)?.unwrap_or_default();
    let audience = crate::resources::bound_audiences(&state.issuer, client, &bound, &form.all("resource")?)?;
    let now = state.now();
    let plan = AccessPlan::new(client, now, state.now_millis());
    let audience_text = audience.join(" ");
    let refresh_rule = tokens::refresh_rule(client);
    let (refresh, family) = tokens::planned_family(state, client, &audience, now).unzip();
    let redemption = Redemption {
        client_id: &client.client_id,
        redirect_uri,
        code_challenge: &challenge,
        access_jti: plan.jti.as_deref(),
        opaque_access: plan.opaque_hash().map(|h| (h, audience_text.as_str())),
        access_expires_at: plan.expires_at,
        refresh: family,
        refresh_rule,
    };
    let outcome = state.store.redeem_code(&hash, now, &redemption).await.map_err(server_error)?;
    let grant = match outcome {
        CodeOutcome::Consumed(grant) => grant,
        CodeOutcome::Replayed(issued) => {
            tracing::warn!(client = %client.client_id, "authorization code replayed; revoking what it issued");
            if let (Some(jti), Some(exp)) = (&issued.access_jti, issued.access_expires_at) {
                tokens::revoke_jwt(state, jti, exp).await.map_err(server_error)?;
            }
            if let Some(hash) = issued.access_token_hash.as_deref().and_then(|h| <[u8; 32]>::try_from(h).ok()) {
                state.store.delete_access_token(&TokenHash(hash)).await.map_err(server_error)?;
            }
            if let Some(grant_id) = &issued.grant_id {
                tokens::revoke_grant(state, grant_id).await.map_err(server_error)?;
            }
            return Err(OAuthError::InvalidGrant("the authorization code was already used".into()));
        }
        CodeOutcome::Invalid => {
            return Err(OAuthError::InvalidGrant(
                "the authorization code is invalid, expired, or was issued for another client, redirect URI or code_verifier".into(),
            ));
        }
    };
    let user = UserGrant {
        user_id: &grant.user_id,
        scope: &grant.scope,
        auth_time: grant.auth_time,
        amr: &grant.amr,
        nonce: grant.nonce.as_deref(),
        id_token: true,
    };
    let refresh_token = refresh.filter(|_| refresh_rule.issues_for(&grant.scope)).map(|r| r.expose().to_owned());
    tokens::user_token_response(state, client, plan, audience, &user, None, refresh_token).await
}
