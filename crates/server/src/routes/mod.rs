//! HTTP routes, split by surface, each with its own error type: `pages` (HTML for people),
//! `oauth` (the protocol endpoints), `api` (JSON for people's own credentials), `ops` (health,
//! readiness, metrics). Handlers are thin adapters: they parse, call the use cases
//! (`crate::sign_in`, `crate::authorization`, `crate::accounts`, `crate::apikeys`,
//! `crate::tokens`), and render. Here: the router and the extractors every surface shares.

pub mod api;
pub mod oauth;
pub mod ops;
pub mod pages;

use api::access as api_access;
use api::admin as api_admin;
use api::keys as api_keys;
use oauth::{authorize, device, discovery, introspection, register, token, userinfo};
use pages::passkeys as page_passkeys;
use pages::{
    account, account_access, account_security, activation, invitation, login, logout, password, registration,
    second_step, setup,
};

use crate::error::WebError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::time::Duration;

pub const AUTHORIZATION_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth/device_authorization";
pub const USERINFO_PATH: &str = "/userinfo";
pub const END_SESSION_PATH: &str = "/logout";
pub const INTROSPECTION_PATH: &str = "/oauth/introspect";
pub const REVOCATION_PATH: &str = "/oauth/revoke";

/// Every route of the server, with its middleware.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.server.request_timeout_secs);
    let max_body = state.config.server.max_body_bytes;
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        // A person who opens the issuer lands on their account page (or the sign-in page).
        .route("/", get(|| async { axum::response::Redirect::to("/account") }))
        .route("/.well-known/openid-configuration", get(discovery::metadata))
        .route("/.well-known/oauth-authorization-server", get(discovery::metadata))
        .route(discovery::JWKS_PATH, get(discovery::jwks))
        .route("/setup", get(setup::form).post(setup::submit))
        .route("/login", get(login::form).post(login::submit))
        .route("/login/verify", get(second_step::form).post(second_step::submit))
        .route("/register", get(registration::form).post(registration::submit))
        .route("/email/verify", get(registration::verify_form).post(registration::verify))
        .route("/account/email/resend", post(account::resend_verification))
        .route("/account/sessions/end", post(account_access::end_session))
        .route("/account/sessions/end-others", post(account_access::end_other_sessions))
        .route("/account/apps/revoke", post(account_access::revoke_app))
        .route("/account/password", post(account_security::change_password))
        .route("/account/email", post(account_security::change_email))
        .route("/account/delete", post(account_security::delete_account))
        .route("/account/totp/setup", post(account_security::totp_setup))
        .route("/account/totp/enable", post(account_security::totp_enable))
        .route("/account/totp/disable", post(account_security::totp_disable))
        .route("/account/totp/recovery-codes", post(account_security::recovery_codes))
        .route("/email/change", get(account_security::confirm_form).post(account_security::confirm))
        .route("/invitation", get(invitation::form).post(invitation::accept))
        .route("/password/forgot", get(password::forgot_form).post(password::forgot))
        .route("/password/reset", get(password::reset_form).post(password::reset))
        .route(END_SESSION_PATH, get(logout::start).post(logout::confirm))
        .route("/account", get(account::show))
        .route("/account/keys", post(account::create_key))
        .route("/account/keys/{id}/revoke", post(account::revoke_key))
        .route("/account/service-accounts", post(account::create_service_account))
        .route("/assets/account.js", get(account::script))
        .route("/assets/passkey.js", get(account::passkey_script))
        .route("/account/passkeys/options", post(page_passkeys::account_options))
        .route("/account/passkeys", post(page_passkeys::add))
        .route("/account/passkeys/remove", post(page_passkeys::remove))
        .route("/login/passkey/options", post(page_passkeys::sign_in_options))
        .route("/login/passkey", post(page_passkeys::sign_in))
        .route("/login/verify/passkey/options", post(page_passkeys::second_step_options))
        .route(AUTHORIZATION_PATH, get(authorize::authorize).post(authorize::authorize_posted))
        .route("/oauth/authorize/continue", get(authorize::resume))
        .route("/oauth/authorize/consent", post(authorize::consent))
        .route(USERINFO_PATH, get(userinfo::userinfo).post(userinfo::userinfo))
        .route(TOKEN_PATH, post(token::token))
        .route(DEVICE_AUTHORIZATION_PATH, post(device::authorize))
        .route(device::DEVICE_PATH, get(activation::form).post(activation::submit))
        .route("/device/confirm", get(activation::confirm).post(activation::decide))
        .route(INTROSPECTION_PATH, post(introspection::introspect))
        .route(REVOCATION_PATH, post(introspection::revoke))
        .route(register::REGISTRATION_PATH, post(register::register))
        .route("/oauth/register/{client_id}", get(register::read).put(register::update).delete(register::delete))
        .route("/api/sessions", get(api_access::sessions).delete(api_access::end_other_sessions))
        .route("/api/sessions/{id}", axum::routing::delete(api_access::end_session))
        .route("/api/apps", get(api_access::apps))
        .route("/api/apps/{client_id}", axum::routing::delete(api_access::revoke_app))
        .route("/api/admin/invitations", post(api_admin::invite))
        .route("/api/keys", get(api_keys::list).post(api_keys::create))
        .route("/api/keys/{id}", axum::routing::delete(api_keys::revoke))
        .route("/api/keys/revoke-leaked", post(api_keys::revoke_leaked))
        .route("/api/service-accounts", get(api_keys::list_service_accounts).post(api_keys::create_service_account))
        .route(
            "/api/service-accounts/{name}/scopes",
            get(api_keys::service_account_scopes).post(api_keys::grant_service_account_scopes),
        )
        .route(
            "/api/service-accounts/{name}/scopes/{scope}",
            axum::routing::delete(api_keys::revoke_service_account_scope),
        )
        .fallback(|| async { WebError::NotFound })
        .layer(crate::edge::Edge::new(state.metrics.clone(), timeout, max_body))
        .with_state(state)
}

/// Who is calling, for the audit log and the rate limits: the client's address (behind a
/// trusted proxy, the one it forwarded; see `postern_core::client_address`) and the user
/// agent. Never fails (a request served without a socket, as in `oneshot` tests, has no
/// address).
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    pub addr: Option<std::net::IpAddr>,
    /// `addr` as text, for the audit log and the pages.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl ClientMeta {
    /// The key rate limits count this client under: `ip:192.0.2.1`, `ip:2001:db8:1:2::/64`.
    pub fn limit_key(&self) -> String {
        match self.addr {
            Some(ip) => format!("ip:{}", postern_core::client_address::limit_key(ip)),
            None => "ip:unknown".to_owned(),
        }
    }
}

impl FromRequestParts<AppState> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| {
            let trusted = &state.config.server.trusted_proxies;
            postern_core::client_address::client_address(
                c.0.ip(),
                trusted,
                header("forwarded"),
                header("x-forwarded-for"),
            )
        });
        let user_agent = header("user-agent").map(|s| s.chars().take(256).collect());
        Ok(ClientMeta { addr, ip: addr.map(|a| a.to_string()), user_agent })
    }
}
