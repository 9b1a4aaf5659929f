//! The device authorization endpoint of RFC 8628 (§3.1–3.2). Polling at the token endpoint
//! (§3.4–3.5) is `crate::grants::device`.

use crate::error::server_error;
use crate::error::{WebError, no_store_json};
use crate::routes::oauth::client_auth;
use crate::routes::oauth::oauth_form::OAuthForm;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use postern_core::client::GrantType;
use postern_core::oauth::{OAuthError, grant_user_scopes, parse_scope_param, scope_string};
use postern_core::secret::BearerSecret;
use postern_store::{NewDeviceAuthorization, StoreError};
use serde_json::json;

pub const DEVICE_PATH: &str = "/device";

/// The body as form fields: `application/x-www-form-urlencoded` as the RFC says, or a JSON
/// object, which some device clients send.
fn body_form(headers: &HeaderMap, body: &[u8]) -> Result<OAuthForm, OAuthError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match media.as_str() {
        "application/x-www-form-urlencoded" => Ok(OAuthForm::parse(body)),
        "application/json" => OAuthForm::from_json(body)
            .ok_or_else(|| OAuthError::invalid_request("the JSON body must be an object of strings")),
        _ => Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded (or JSON)")),
    }
}

/// `POST /oauth/device_authorization`.
pub async fn authorize(
    State(state): State<AppState>,
    meta: crate::routes::ClientMeta,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match start(&state, &meta, &headers, &body).await {
        Ok(body) => no_store_json(&body),
        Err(Refused::OAuth(e)) => WebError::OAuth(e).into_response(),
        Err(Refused::TooMany(wait)) => crate::error::too_many_requests(wait),
    }
}

/// Why a device authorization was not made.
enum Refused {
    OAuth(OAuthError),
    /// A rate limit (`limits.*`): retry after this many seconds.
    TooMany(i64),
}

impl From<OAuthError> for Refused {
    fn from(e: OAuthError) -> Self {
        Refused::OAuth(e)
    }
}

async fn start(
    state: &AppState,
    meta: &crate::routes::ClientMeta,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, Refused> {
    let form = body_form(headers, body)?;
    let client = client_auth::authenticate(state, headers, &form).await?;
    if !client.grant_types.contains(&GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the device flow".into()).into());
    }
    let limits = &state.node.anonymous_writes;
    limits.device_authorization(&meta.limit_key(), &client.client_id, state.now()).map_err(Refused::TooMany)?;
    let requested = parse_scope_param(form.one("scope")?.unwrap_or_default())?;
    let scope = scope_string(&grant_user_scopes(&requested, &client.allowed_scopes)?);
    // RFC 8707 with RFC 8628: the resources named here bind the tokens' audience.
    let resources = form.all("resource")?;
    let resource = if resources.is_empty() {
        String::new()
    } else {
        crate::resources::audiences(&state.issuer, &client, &resources)?.join(" ")
    };
    let now = state.now();
    let expires_in = state.config.device.expires_secs;
    let mut rng = postern_core::system::os_rng();
    let device_code = BearerSecret::generate_ordered(&mut rng, state.now_millis());
    // A user code may collide with a stored one (live or recently expired): draw again.
    for _ in 0..5 {
        let user_code = postern_core::device::UserCode::generate(&mut rng);
        let new = NewDeviceAuthorization {
            device_code: device_code.hash(),
            user_code: state.keys.user_code_hash(&user_code),
            client_id: &client.client_id,
            scope: &scope,
            now,
            expires_at: now + expires_in,
            ip: meta.ip.as_deref(),
            user_agent: meta.user_agent.as_deref(),
            resource: &resource,
        };
        match state.store.create_device_authorization(&new).await {
            Ok(()) => {
                let shown = user_code.display();
                let uri = format!("{}{DEVICE_PATH}", state.issuer);
                state.metrics.device_event("authorization");
                return Ok(json!({
                    "device_code": device_code.expose(),
                    "user_code": shown,
                    "verification_uri": uri,
                    "verification_uri_complete": format!("{uri}?user_code={shown}"),
                    "expires_in": expires_in,
                    "interval": state.config.device.interval_secs,
                }));
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(server_error(e).into()),
        }
    }
    Err(server_error("could not draw a free user code").into())
}
