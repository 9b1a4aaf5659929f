//! Issuing and recognising access tokens.
//!
//! JWT access tokens (RFC 9068) are signed with the client's algorithm (EdDSA unless it asked
//! for RS256) and issued without any database write; they are recognised by signature, issuer,
//! expiry and the `jti` deny-list.
//! Opaque access tokens are 256-bit random strings stored only as their SHA-256 hash, recognised
//! by a lookup, and revoked by deleting the row.

use crate::error::server_error;
use crate::state::AppState;
use postern_core::client::{AccessTokenFormat, GrantType};
use postern_core::jwt::{self, OneOrMany};
use postern_core::oauth::{OAuthError, RefreshRule, scope_string};
use postern_core::scope::Scope;
use postern_core::secret::{BearerSecret, TokenHash, stored_hash};
use postern_core::signing::Algorithm;
use postern_core::token::{ACCESS_TOKEN_TYP, AccessClaims, new_jti};
use postern_store::{AccessTokenRecord, Client, NewAccessToken, NewFamily};
use std::sync::Arc;

/// What a new access token stands for.
pub struct Grant<'a> {
    pub client: &'a Client,
    pub user_id: Option<&'a str>,
    /// `sub`: the user id, or the client id for client credentials.
    pub subject: &'a str,
    pub scopes: &'a [Scope],
    pub audience: Vec<String>,
    pub auth_time: Option<i64>,
}

pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// An access token for a grant that needs no other write (client credentials): an opaque
/// token is stored here; a JWT needs no write at all.
pub async fn issue_access_token(state: &AppState, grant: &Grant<'_>) -> Result<Issued, OAuthError> {
    let plan = AccessPlan::new(grant.client, state.now(), state.now_millis());
    let scope = scope_string(grant.scopes);
    let bearer = Bearer {
        user_id: grant.user_id,
        subject: grant.subject,
        scope: &scope,
        audience: &grant.audience,
        auth_time: grant.auth_time,
        amr: "",
    };
    if let Some(hash) = plan.opaque_hash() {
        let record = plan.record(grant.client, &bearer);
        state.store.insert_access_token(&NewAccessToken { hash, record: &record }).await.map_err(server_error)?;
    }
    let access_token = plan.into_token(state, grant.client, &bearer)?;
    Ok(Issued { access_token, expires_in: grant.client.access_token_ttl, scope })
}

/// An access token that is valid now, described by the claims of a JWT access token: a JWT's
/// own claims, shared with the node's cache of verified tokens rather than copied for each
/// request, or those an opaque token's row stands for.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    claims: Arc<AccessClaims>,
    jwt: bool,
}

impl ActiveToken {
    /// The claims of an active JWT (`jwt`), or those an opaque token's row stands for.
    pub fn new(claims: Arc<AccessClaims>, jwt: bool) -> Self {
        ActiveToken { claims, jwt }
    }

    /// Whether the token was minted for `audience` (Postern's own endpoints, `/userinfo` and
    /// `/api/keys`, take only tokens whose audience is the issuer).
    pub fn is_for(&self, audience: &str) -> bool {
        self.claims.aud.0.iter().any(|a| a == audience)
    }

    /// The token's `jti`, which only a JWT has.
    pub fn jti(&self) -> Option<&str> {
        self.jwt.then_some(self.claims.jti.as_str())
    }
}

impl std::ops::Deref for ActiveToken {
    type Target = AccessClaims;

    fn deref(&self) -> &AccessClaims {
        &self.claims
    }
}

/// Verifies one of our JWT access tokens (signature, type, issuer), without the time checks.
///
/// A token verified before on this thread is found by its signature instead of being verified again
/// ([`crate::verified_tokens`]); expiry and revocation are the caller's to check either way.
pub fn verify_jwt(state: &AppState, token: &str) -> Option<Arc<AccessClaims>> {
    state.keys.with_keys(|keys| {
        if let Some(claims) = state.node.verified_tokens.get(token, |kid| keys.verifying.contains_key(kid)) {
            return Some(claims);
        }
        let (header, claims): (_, AccessClaims) =
            jwt::verify(token, Some(ACCESS_TOKEN_TYP), |kid| keys.verifying.get(kid)).ok()?;
        if claims.iss != *state.issuer {
            return None;
        }
        let claims = Arc::new(claims);
        state.node.verified_tokens.insert(token, header.kid.unwrap_or_default(), claims.clone());
        Some(claims)
    })
}

/// The token, if it is one of ours and active: not expired, not revoked.
pub async fn inspect_access_token(
    state: &AppState,
    token: &str,
) -> Result<Option<ActiveToken>, postern_store::StoreError> {
    let now = state.now();
    if jwt::looks_like_jwt(token) {
        let Some(claims) = verify_jwt(state, token) else {
            return Ok(None);
        };
        if !claims.is_current(now) || state.node.revoked.is_revoked(&claims.jti, &claims.sub, claims.iat) {
            return Ok(None);
        }
        return Ok(Some(ActiveToken::new(claims, true)));
    }
    if token.is_empty() || token.len() > 512 {
        return Ok(None);
    }
    Ok(state.store.access_token(&stored_hash(token), now).await?.map(|r| {
        let amr: Vec<String> = r.amr.split(' ').filter(|a| !a.is_empty()).map(str::to_owned).collect();
        let acr = r.user_id.as_ref().map(|_| postern_core::oidc::acr_for(&amr).to_owned());
        let claims = AccessClaims {
            iss: state.issuer.to_string(),
            sub: r.subject,
            aud: OneOrMany(r.audience.split(' ').filter(|a| !a.is_empty()).map(str::to_owned).collect()),
            client_id: r.client_id.into(),
            scope: r.scope,
            jti: String::new(),
            iat: r.issued_at,
            exp: r.expires_at,
            auth_time: r.auth_time,
            amr,
            acr,
        };
        ActiveToken::new(Arc::new(claims), false)
    }))
}

/// Revokes a token issued to `client_id` (RFC 7009): a refresh token revokes its whole family
/// (and the access tokens issued in it), opaque access tokens are deleted, JWTs go on the
/// deny-list until they expire. Tokens of other clients, unknown and expired tokens are left
/// alone (and the caller still answers 200, RFC 7009 §2.2).
pub async fn revoke_token(state: &AppState, token: &str, client_id: &str) -> Result<bool, postern_store::StoreError> {
    if jwt::looks_like_jwt(token) {
        let Some(claims) = verify_jwt(state, token) else {
            return Ok(false);
        };
        if claims.client_id != client_id || claims.exp <= state.now() {
            return Ok(false);
        }
        revoke_jwt(state, &claims.jti, claims.exp).await?;
        return Ok(true);
    }
    let hash = stored_hash(token);
    if let Some(refresh) = state.store.refresh_token(&hash).await? {
        if refresh.client_id != client_id {
            return Ok(false);
        }
        revoke_grant(state, &refresh.grant_id).await?;
        return Ok(true);
    }
    state.store.revoke_access_token(&hash, client_id).await
}

/// A refresh token that is current (for introspection only; it is never an access token).
pub async fn inspect_refresh_token(
    state: &AppState,
    token: &str,
) -> Result<Option<postern_store::RefreshRecord>, postern_store::StoreError> {
    if token.is_empty() || token.len() > 512 || jwt::looks_like_jwt(token) {
        return Ok(None);
    }
    Ok(state.store.refresh_token(&stored_hash(token)).await?.filter(|r| r.is_current(state.now())))
}

/// What an ID token says about its user.
pub struct IdTokenFor<'a> {
    pub client_id: &'a str,
    /// The client's ID-token algorithm (RS256 unless the client chose EdDSA).
    pub alg: Algorithm,
    pub user: &'a postern_store::User,
    pub scope: &'a str,
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a str,
    pub access_token: &'a str,
}

/// An ID token (OIDC Core §2, §3.1.3.6): `email` claims with the `email` scope, `name` with
/// `profile`, `at_hash` of the access token issued with it.
pub fn id_token(state: &AppState, t: &IdTokenFor<'_>) -> Result<String, OAuthError> {
    let now = state.now();
    let has = |s: &str| t.scope.split(' ').any(|x| x == s);
    let amr: Vec<String> = t.amr.split(' ').filter(|a| !a.is_empty()).map(str::to_owned).collect();
    let claims = postern_core::oidc::IdClaims {
        iss: state.issuer.to_string(),
        sub: t.user.id.to_string(),
        aud: OneOrMany(vec![t.client_id.to_owned()]),
        exp: now + state.config.tokens.id_token_ttl_secs,
        iat: now,
        auth_time: t.auth_time,
        nonce: t.nonce.map(str::to_owned),
        at_hash: Some(postern_core::oidc::at_hash(t.access_token)),
        amr: amr.clone(),
        acr: Some(postern_core::oidc::acr_for(&amr).to_owned()),
        azp: Some(t.client_id.to_owned()),
        email: has("email").then(|| t.user.email.clone()),
        email_verified: has("email").then_some(t.user.email_verified),
        name: if has("profile") { t.user.display_name.clone() } else { None },
    };
    let keys = state.keys.keys();
    let key = keys.active.get(&t.alg).ok_or_else(|| server_error("no active key for the ID-token algorithm"))?;
    jwt::sign(&claims, &key.key, &key.kid, "JWT").map_err(server_error)
}

/// Puts a JWT on the deny-list: in the database (for other nodes and restarts) and in this
/// node's memory at once.
pub async fn revoke_jwt(state: &AppState, jti: &str, exp: i64) -> Result<(), postern_store::StoreError> {
    state.store.revoke_jwt(jti, exp, state.now()).await?;
    state.node.revoked.add(jti.to_owned(), exp);
    Ok(())
}

/// Revokes a refresh-token family and every access token issued in it.
pub async fn revoke_grant(state: &AppState, grant_id: &str) -> Result<(), postern_store::StoreError> {
    for (jti, exp) in state.store.revoke_grant(grant_id, state.now()).await? {
        state.node.revoked.add(jti, exp);
    }
    Ok(())
}

/// An access token decided before the write that records it (a code redemption, a rotation, a
/// device consumption): a JWT's `jti`, or an opaque token, and when it expires.
pub struct AccessPlan {
    pub jti: Option<String>,
    pub opaque: Option<BearerSecret>,
    pub expires_at: i64,
}

impl AccessPlan {
    /// `millis` orders an opaque token ([`BearerSecret::generate_ordered`]).
    pub fn new(client: &Client, now: i64, millis: i64) -> Self {
        let mut rng = postern_core::system::os_rng();
        let (jti, opaque) = match client.access_token_format {
            AccessTokenFormat::Jwt => (Some(new_jti(&mut rng)), None),
            AccessTokenFormat::Opaque => (None, Some(BearerSecret::generate_ordered(&mut rng, millis))),
        };
        Self { jti, opaque, expires_at: now + client.access_token_ttl }
    }

    pub fn opaque_hash(&self) -> Option<TokenHash> {
        self.opaque.as_ref().map(BearerSecret::hash)
    }

    /// The stored form of the planned opaque token: what introspection will answer.
    pub fn record(&self, client: &Client, b: &Bearer<'_>) -> AccessTokenRecord {
        AccessTokenRecord {
            client_id: client.client_id.clone(),
            user_id: b.user_id.map(postern_store::UserId::new),
            subject: b.subject.to_owned(),
            scope: b.scope.to_owned(),
            audience: b.audience.join(" "),
            auth_time: b.auth_time,
            issued_at: self.expires_at - client.access_token_ttl,
            expires_at: self.expires_at,
            amr: b.amr.to_owned(),
        }
    }

    /// The access token itself, once every write it depends on has succeeded: a JWT whose
    /// claims (RFC 9068) are built here and nowhere else, signed with the active key of the
    /// client's algorithm; or the opaque token, already stored.
    pub fn into_token(self, state: &AppState, client: &Client, b: &Bearer<'_>) -> Result<String, OAuthError> {
        match (self.jti, self.opaque) {
            (Some(jti), _) => {
                let amr: Vec<String> = b.amr.split(' ').filter(|a| !a.is_empty()).map(str::to_owned).collect();
                let claims = AccessClaims {
                    iss: state.issuer.to_string(),
                    sub: b.subject.to_owned(),
                    aud: OneOrMany(b.audience.to_vec()),
                    client_id: client.client_id.to_string(),
                    scope: b.scope.to_owned(),
                    jti,
                    iat: self.expires_at - client.access_token_ttl,
                    exp: self.expires_at,
                    auth_time: b.auth_time,
                    amr: amr.clone(),
                    acr: b.user_id.map(|_| postern_core::oidc::acr_for(&amr).to_owned()),
                };
                let alg = client.policy.access_token_alg;
                state.keys.with_keys(|keys| {
                    let key = keys.active.get(&alg).ok_or_else(|| server_error("no active key for access tokens"))?;
                    jwt::sign(&claims, &key.key, &key.kid, ACCESS_TOKEN_TYP).map_err(server_error)
                })
            }
            (None, Some(secret)) => Ok(secret.expose().to_owned()),
            (None, None) => Err(server_error("no access token planned")),
        }
    }
}

/// Whom and what an access token is for.
pub struct Bearer<'a> {
    pub user_id: Option<&'a str>,
    /// `sub`: the user id, or the client id for client credentials.
    pub subject: &'a str,
    pub scope: &'a str,
    pub audience: &'a [String],
    pub auth_time: Option<i64>,
    /// How the user signed in (space-separated RFC 8176 values; empty for a client).
    pub amr: &'a str,
}

/// When `client`'s grants start a refresh-token family.
pub fn refresh_rule(client: &Client) -> RefreshRule {
    RefreshRule {
        client_allows_refresh: client.grant_types.contains(&GrantType::RefreshToken),
        always: client.policy.always_refresh,
    }
}

/// A refresh token and the family it would start, decided before the write that may start it
/// (a code redemption, a device consumption); `None` when the client has no refresh grant.
pub fn planned_family(
    state: &AppState,
    client: &Client,
    audience: &[String],
    now: i64,
) -> Option<(BearerSecret, NewFamily)> {
    if !refresh_rule(client).client_allows_refresh {
        return None;
    }
    let mut rng = postern_core::system::os_rng();
    let token = BearerSecret::generate_ordered(&mut rng, state.now_millis());
    let family = NewFamily {
        grant_id: postern_core::id::ordered_id(&mut rng, state.now_millis()),
        token_hash: token.hash(),
        expires_at: now + state.config.tokens.refresh_absolute_secs,
        idle_expires_at: now + client.refresh_token_ttl,
        audience: audience.join(" "),
    };
    Some((token, family))
}

/// Who a user's tokens are for.
pub struct UserGrant<'a> {
    pub user_id: &'a str,
    pub scope: &'a str,
    pub auth_time: i64,
    pub amr: &'a str,
    pub nonce: Option<&'a str>,
    /// Whether an ID token goes with the response when `openid` was granted: always for a code
    /// or a device grant; for a refresh only when the client asks (OpenID Connect Core §12.2).
    pub id_token: bool,
}

/// The token response for a user once the write has succeeded: the planned access token (a
/// JWT signed now, or the opaque token already stored), an ID token when `openid` was granted
/// and `grant.id_token` says so,
/// and the refresh token, if any. The user is looked up unless given; a disabled user gets
/// `invalid_grant`.
pub async fn user_token_response(
    state: &AppState,
    client: &Client,
    plan: AccessPlan,
    audience: Vec<String>,
    grant: &UserGrant<'_>,
    user: Option<&postern_store::User>,
    refresh_token: Option<String>,
) -> Result<postern_proto::TokenResponse, OAuthError> {
    // Tokens go only to an active user, however the grant reached here (a code or a device
    // request approved before the account was disabled, a refresh).
    let looked_up;
    let user = match user {
        Some(u) => u,
        None => {
            looked_up = state.store.user_by_id(grant.user_id).await.map_err(server_error)?;
            looked_up.as_ref().ok_or_else(|| OAuthError::InvalidGrant("the user no longer exists".into()))?
        }
    };
    if user.disabled {
        return Err(OAuthError::InvalidGrant("the user's account is disabled".into()));
    }
    let bearer = Bearer {
        user_id: Some(grant.user_id),
        subject: grant.user_id,
        scope: grant.scope,
        audience: &audience,
        auth_time: Some(grant.auth_time),
        amr: grant.amr,
    };
    let access_token = plan.into_token(state, client, &bearer)?;
    let id_token = if grant.id_token && grant.scope.split(' ').any(|s| s == "openid") {
        let ctx = IdTokenFor {
            client_id: &client.client_id,
            alg: client.policy.id_token_alg,
            user,
            scope: grant.scope,
            nonce: grant.nonce,
            auth_time: grant.auth_time,
            amr: grant.amr,
            access_token: &access_token,
        };
        Some(id_token(state, &ctx)?)
    } else {
        None
    };
    Ok(postern_proto::TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: client.access_token_ttl,
        scope: (!grant.scope.is_empty()).then(|| grant.scope.to_owned()),
        refresh_token,
        id_token,
    })
}
