//! The issuer as this tool sees it: discovery (RFC 8414 / OIDC Discovery), the token endpoint's
//! grants, revocation (RFC 7009) and userinfo. Every answer is read into a typed result; an
//! OAuth error answer becomes [`Error`] by its RFC code.

use crate::error::Error;
use postern_proto::{OAuthErrorBody, ProviderMetadata, TokenResponse};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A public client of one issuer, found by discovery. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    metadata: ProviderMetadata,
    client_id: String,
}

/// Tokens from the token endpoint, with the expiry turned into a point in time.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Unix seconds, by this machine's clock.
    pub expires_at: Option<i64>,
    pub scope: Option<String>,
    pub id_token: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Reads the issuer's metadata and checks that it names the same issuer (RFC 8414 §3.3).
    pub async fn discover(issuer: &str, client_id: &str) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            // Never follow a redirect with a token or a code in hand.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("postern-login/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Unsupported(format!("cannot build an HTTP client: {e}")))?;
        Self::discover_with(http, issuer, client_id).await
    }

    /// [`Client::discover`] with the caller's HTTP client (proxies, TLS roots, timeouts). The
    /// client should not follow redirects.
    pub async fn discover_with(http: reqwest::Client, issuer: &str, client_id: &str) -> Result<Client, Error> {
        let issuer = issuer.trim_end_matches('/');
        check_issuer(issuer)?;
        let url = format!("{issuer}/.well-known/openid-configuration");
        let response = http.get(&url).send().await.map_err(|e| Error::network(&url, &e))?;
        if !response.status().is_success() {
            return Err(Error::protocol(&url, format!("HTTP {} instead of the issuer's metadata", response.status())));
        }
        let metadata: ProviderMetadata =
            response.json().await.map_err(|e| Error::protocol(&url, format!("not provider metadata: {e}")))?;
        if metadata.issuer.trim_end_matches('/') != issuer {
            return Err(Error::protocol(&url, format!("the metadata is for issuer {:?}", metadata.issuer)));
        }
        Ok(Client { inner: Arc::new(Inner { http, metadata, client_id: client_id.to_owned() }) })
    }

    pub fn issuer(&self) -> &str {
        &self.inner.metadata.issuer
    }

    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    pub fn metadata(&self) -> &ProviderMetadata {
        &self.inner.metadata
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn endpoint(&self, which: Option<&String>, name: &str) -> Result<String, Error> {
        which.cloned().ok_or_else(|| Error::Unsupported(format!("{} offers no {name}", self.issuer())))
    }

    /// POSTs a form to the token endpoint (or another endpoint with token-endpoint errors) and
    /// reads the token response.
    pub(crate) async fn token_request(&self, url: &str, form: &[(&str, &str)]) -> Result<Tokens, Error> {
        let now = crate::unix_now();
        let mut fields = vec![("client_id", self.client_id())];
        fields.extend_from_slice(form);
        let response = self.http().post(url).form(&fields).send().await.map_err(|e| Error::network(url, &e))?;
        let body: TokenResponse = read_json(url, response).await?;
        if !body.token_type.eq_ignore_ascii_case("bearer") {
            return Err(Error::protocol(url, format!("token type {:?}, expected Bearer", body.token_type)));
        }
        Ok(Tokens {
            access_token: body.access_token,
            refresh_token: body.refresh_token,
            expires_at: (body.expires_in > 0).then(|| now.saturating_add(body.expires_in)),
            scope: body.scope,
            id_token: body.id_token,
        })
    }

    /// Spends `refresh_token` for new tokens (RFC 6749 §6). The server may rotate the refresh
    /// token; when it does not send one, the old one stays valid and is kept.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, Error> {
        let url = self.endpoint(self.metadata().token_endpoint.as_ref(), "token endpoint")?;
        let mut tokens =
            self.token_request(&url, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await?;
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.to_owned());
        }
        Ok(tokens)
    }

    /// Revokes a token (RFC 7009). `hint` is `refresh_token` or `access_token`.
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<(), Error> {
        let url = self.endpoint(self.metadata().revocation_endpoint.as_ref(), "revocation endpoint")?;
        let form = [("client_id", self.client_id()), ("token", token), ("token_type_hint", hint)];
        let response = self.http().post(&url).form(&form).send().await.map_err(|e| Error::network(&url, &e))?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(error_answer(&url, response).await)
    }

    /// The userinfo claims for `access_token`. A refused token is `OAuth { InvalidToken }`.
    pub async fn userinfo(&self, access_token: &str) -> Result<serde_json::Value, Error> {
        let url = self.endpoint(self.metadata().userinfo_endpoint.as_ref(), "userinfo endpoint")?;
        let response =
            self.http().get(&url).bearer_auth(access_token).send().await.map_err(|e| Error::network(&url, &e))?;
        read_json(&url, response).await
    }
}

/// Reads a success body as `T`, or the error answer as [`Error`].
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    url: &str,
    response: reqwest::Response,
) -> Result<T, Error> {
    if response.status().is_success() {
        let bytes = response.bytes().await.map_err(|e| Error::network(url, &e))?;
        return serde_json::from_slice(&bytes).map_err(|e| Error::protocol(url, format!("unexpected JSON: {e}")));
    }
    Err(error_answer(url, response).await)
}

/// An error answer: the RFC 6749 §5.2 body when there is one, the `WWW-Authenticate` challenge of
/// RFC 6750 §3 on a 401 without one, otherwise the HTTP status.
pub(crate) async fn error_answer(url: &str, response: reqwest::Response) -> Error {
    let status = response.status();
    let challenge =
        response.headers().get(reqwest::header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.unwrap_or_default();
    if let Ok(err) = serde_json::from_slice::<OAuthErrorBody>(&body) {
        return Error::oauth(&err.error, err.error_description);
    }
    if status == reqwest::StatusCode::UNAUTHORIZED {
        let code = challenge
            .as_deref()
            .and_then(|c| c.split("error=\"").nth(1))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or("invalid_token");
        return Error::oauth(code, None);
    }
    Error::protocol(url, format!("HTTP {status}"))
}

/// An issuer must be https, or plain http on this machine only (tokens in clear over a
/// network would be anyone's).
fn check_issuer(issuer: &str) -> Result<(), Error> {
    let parsed = url::Url::parse(issuer).map_err(|e| Error::Unsupported(format!("issuer {issuer:?}: {e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match parsed.scheme() {
        "https" => {}
        // Tokens in clear over a network: only on this machine.
        "http" if loopback => {}
        "http" => return Err(Error::Unsupported(format!("issuer {issuer:?}: plain http only on loopback; use https"))),
        _ => return Err(Error::Unsupported(format!("issuer {issuer:?}: not an http(s) URL"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_issuer;

    #[test]
    fn plain_http_issuers_only_on_loopback() {
        for ok in ["https://auth.example.org", "http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost:8080"] {
            assert!(check_issuer(ok).is_ok(), "{ok}");
        }
        for bad in ["http://auth.example.org", "http://10.0.0.5:8080", "ftp://auth.example.org", "not a url"] {
            assert!(check_issuer(bad).is_err(), "{bad}");
        }
    }
}
