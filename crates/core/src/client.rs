//! OAuth clients: their type, grant types, token format and redirect URIs, and the rules that
//! make a registration consistent.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// RFC 6749 §2.1 client types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientType {
    /// Cannot keep a secret (CLIs, native and browser apps): authenticates with `none` + PKCE.
    Public,
    /// Holds a server-generated secret.
    Confidential,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Public => "public",
            ClientType::Confidential => "confidential",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "confidential" => Some(Self::Confidential),
            _ => None,
        }
    }
}

/// The grant types a client may be allowed. No implicit, no password grant (OAuth 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
}

impl GrantType {
    pub const ALL: [GrantType; 4] =
        [Self::AuthorizationCode, Self::RefreshToken, Self::ClientCredentials, Self::DeviceCode];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }

    /// The exact wire value of a `grant_type` parameter.
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// Accepts the RFC names, and `device_code` as a short form of the RFC 8628 URN (for the
    /// admin command line; the token endpoint takes only [`GrantType::from_wire`]).
    pub fn parse(s: &str) -> Option<Self> {
        if s == "device_code" {
            return Some(Self::DeviceCode);
        }
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// The form of access tokens issued to a client: self-contained JWTs (RFC 9068) that resource
/// servers verify locally, or opaque handles checked by introspection (revocable at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenFormat {
    Jwt,
    Opaque,
}

impl AccessTokenFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Opaque => "opaque",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jwt" => Some(Self::Jwt),
            "opaque" => Some(Self::Opaque),
            _ => None,
        }
    }
}

/// A registered redirect URI, parsed once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RedirectUri(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidRedirectUri {
    #[error("redirect URI {0:?} is not an absolute URI")]
    NotAbsolute(String),
    #[error("redirect URI {0:?} must not contain spaces or control characters")]
    Characters(String),
    #[error("redirect URI {0:?} must not contain a fragment (RFC 6749 §3.1.2)")]
    Fragment(String),
    #[error(
        "redirect URI {0:?}: plain http is allowed only for loopback IP literals (http://127.0.0.1/… or http://[::1]/…, RFC 8252 §7.3)"
    )]
    InsecureHttp(String),
    #[error(
        "redirect URI {0:?}: scheme not allowed (use https, a loopback http URI, or a private-use scheme such as com.example.app:/cb)"
    )]
    Scheme(String),
}

impl RedirectUri {
    pub fn parse(s: &str) -> Result<Self, InvalidRedirectUri> {
        // The URL parser would quietly drop or encode them; the exact string is what matches.
        if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(InvalidRedirectUri::Characters(s.to_owned()));
        }
        let url = url::Url::parse(s).map_err(|_| InvalidRedirectUri::NotAbsolute(s.to_owned()))?;
        if url.fragment().is_some() || s.contains('#') {
            return Err(InvalidRedirectUri::Fragment(s.to_owned()));
        }
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" => {
                if !is_loopback_ip_host(&url) {
                    return Err(InvalidRedirectUri::InsecureHttp(s.to_owned()));
                }
            }
            // RFC 8252 §7.1: private-use URI schemes are reverse domain names.
            scheme if scheme.contains('.') => {}
            _ => return Err(InvalidRedirectUri::Scheme(s.to_owned())),
        }
        Ok(Self(s.to_owned()))
    }

    /// Like [`RedirectUri::parse`], and also `http://localhost[:port]/…`, for native clients that
    /// register themselves: RFC 8252 §8.3 discourages the name (it may not resolve to the
    /// loopback interface) but permits it, and many such clients use it.
    pub fn parse_native(s: &str) -> Result<Self, InvalidRedirectUri> {
        match Self::parse(s) {
            Err(InvalidRedirectUri::InsecureHttp(_)) if url::Url::parse(s).is_ok_and(|u| is_localhost(&u)) => {
                Ok(Self(s.to_owned()))
            }
            other => other,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `http://127.0.0.1/…`, `http://[::1]/…` and (native clients that registered
    /// themselves) `http://localhost/…` registrations, which match a request on any port
    /// (RFC 8252 §7.3).
    pub fn is_loopback(&self) -> bool {
        url::Url::parse(&self.0).is_ok_and(|u| u.scheme() == "http" && is_loopback_host(&u))
    }

    /// Whether a `redirect_uri` from a request matches this registration: exact string match,
    /// except that a loopback IP registration matches any port.
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        if !self.is_loopback() {
            return false;
        }
        let (Ok(mut reg), Ok(mut req)) = (url::Url::parse(&self.0), url::Url::parse(requested)) else {
            return false;
        };
        if req.fragment().is_some() || req.scheme() != "http" || !is_loopback_host(&req) {
            return false;
        }
        let ports_erased = reg.set_port(None).is_ok() && req.set_port(None).is_ok();
        ports_erased && reg == req
    }
}

fn is_localhost(url: &url::Url) -> bool {
    url.scheme() == "http" && url.host() == Some(url::Host::Domain("localhost"))
}

/// A loopback IP literal, or `localhost`; the host itself must still be the same for a request
/// to match (the ports aside).
fn is_loopback_host(url: &url::Url) -> bool {
    is_loopback_ip_host(url) || is_localhost(url)
}

fn is_loopback_ip_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        _ => false,
    }
}

/// Read back from storage: whatever was accepted at registration, `localhost` included.
impl TryFrom<String> for RedirectUri {
    type Error = InvalidRedirectUri;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RedirectUri::parse_native(&s)
    }
}

impl From<RedirectUri> for String {
    fn from(r: RedirectUri) -> String {
        r.0
    }
}

/// A registration that does not hold together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidRegistration {
    #[error("the authorization_code grant needs at least one --redirect-uri")]
    CodeWithoutRedirect,
    #[error("the client_credentials grant needs a confidential client (a public client has no secret)")]
    CredentialsForPublic,
    #[error("a client needs at least one grant type")]
    NoGrant,
    #[error("token lifetimes must be between 1 second and 1 year")]
    Lifetime,
    #[error("the client name must be 1-200 characters")]
    Name,
}

/// The grant types a new client gets when none are named: the browser flow when it has
/// redirect URIs, otherwise client credentials (confidential) or the device flow (public).
pub fn default_grant_types(client_type: ClientType, has_redirects: bool) -> Vec<GrantType> {
    match (has_redirects, client_type) {
        (true, _) => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        (false, ClientType::Confidential) => vec![GrantType::ClientCredentials],
        (false, ClientType::Public) => vec![GrantType::DeviceCode, GrantType::RefreshToken],
    }
}

const YEAR_SECS: i64 = 366 * 24 * 3600;

/// Checks that a client's settings are consistent with each other.
pub fn check_registration(
    name: &str,
    client_type: ClientType,
    redirect_uris: &[RedirectUri],
    grant_types: &[GrantType],
    lifetimes: &[i64],
) -> Result<(), InvalidRegistration> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(InvalidRegistration::Name);
    }
    if grant_types.is_empty() {
        return Err(InvalidRegistration::NoGrant);
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(InvalidRegistration::CodeWithoutRedirect);
    }
    if grant_types.contains(&GrantType::ClientCredentials) && client_type == ClientType::Public {
        return Err(InvalidRegistration::CredentialsForPublic);
    }
    if lifetimes.iter().any(|&t| !(1..=YEAR_SECS).contains(&t)) {
        return Err(InvalidRegistration::Lifetime);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_rules() {
        for good in [
            "https://app.example.org/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(RedirectUri::parse(good).is_ok(), "{good}");
        }
        assert!(matches!(RedirectUri::parse("http://app.example.org/cb"), Err(InvalidRedirectUri::InsecureHttp(_))));
        assert!(matches!(RedirectUri::parse("http://localhost/cb"), Err(InvalidRedirectUri::InsecureHttp(_))));
        assert!(matches!(RedirectUri::parse("https://a.example/cb#x"), Err(InvalidRedirectUri::Fragment(_))));
        assert!(matches!(RedirectUri::parse("javascript:alert(1)"), Err(InvalidRedirectUri::Scheme(_))));
        assert!(matches!(RedirectUri::parse("/relative"), Err(InvalidRedirectUri::NotAbsolute(_))));
        for bad in ["https://app.example.org/\u{0}", "https://app.example.org/a b", "https://app.example.org/\n"] {
            assert!(matches!(RedirectUri::parse(bad), Err(InvalidRedirectUri::Characters(_))), "{bad:?}");
        }
    }

    #[test]
    fn native_clients_may_use_localhost_on_any_port() {
        assert!(RedirectUri::parse("http://localhost:4000/cb").is_err(), "not for clients an admin registers");
        let native = RedirectUri::parse_native("http://localhost/callback").unwrap();
        assert!(native.matches("http://localhost:53682/callback"));
        assert!(!native.matches("http://127.0.0.1:53682/callback"), "the host stays the same");
        assert!(!native.matches("http://localhost.evil.example/callback"));
        assert!(!native.matches("http://localhost:1/other"));
        assert!(RedirectUri::parse_native("http://localhost.example/cb").is_err());
        assert!(RedirectUri::parse_native("http://app.example.org/cb").is_err());
    }

    #[test]
    fn exact_matching_with_loopback_port_exception() {
        let web = RedirectUri::parse("https://app.example.org/cb").unwrap();
        assert!(web.matches("https://app.example.org/cb"));
        assert!(!web.matches("https://app.example.org/cb/"));
        assert!(!web.matches("https://app.example.org:8443/cb"));
        assert!(!web.matches("https://app.example.org/cb?x=1"));
        let native = RedirectUri::parse("http://127.0.0.1/callback").unwrap();
        assert!(native.matches("http://127.0.0.1:53817/callback"));
        assert!(!native.matches("http://127.0.0.1:53817/other"));
        assert!(!native.matches("http://localhost:53817/callback"));
        assert!(!native.matches("http://127.0.0.1:53817/callback#frag"));
        assert!(!native.matches("https://127.0.0.1:53817/callback"));
    }

    #[test]
    fn registration_consistency() {
        let cb = vec![RedirectUri::parse("https://a.example/cb").unwrap()];
        let code = [GrantType::AuthorizationCode];
        assert_eq!(check_registration("App", ClientType::Public, &cb, &code, &[600]), Ok(()));
        assert_eq!(
            check_registration("App", ClientType::Public, &[], &code, &[600]),
            Err(InvalidRegistration::CodeWithoutRedirect)
        );
        assert_eq!(
            check_registration("App", ClientType::Public, &[], &[GrantType::ClientCredentials], &[600]),
            Err(InvalidRegistration::CredentialsForPublic)
        );
        assert_eq!(check_registration(" ", ClientType::Public, &cb, &code, &[600]), Err(InvalidRegistration::Name));
        assert_eq!(check_registration("App", ClientType::Public, &cb, &code, &[0]), Err(InvalidRegistration::Lifetime));
        assert_eq!(GrantType::parse("device_code"), Some(GrantType::DeviceCode));
        assert_eq!(GrantType::parse("password"), None);
        assert_eq!(GrantType::parse("implicit"), None);
    }
}
