//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, as the Model
//! Context Protocol uses them): a client nobody registered names itself by the https URL of a
//! JSON document, which Postern reads when the client is used.
//!
//! The document must name that URL as its `client_id`; the redirect URIs come from it alone;
//! unknown fields are ignored. Such a client is public (`none`), never first-party, and gets the
//! scopes and resources a client that registers itself gets (`crate::client_registration`). It
//! is kept as a client row (so codes, consents and refresh tokens refer to it) that each read
//! of the document brings up to date; a node reads a document again once its HTTP cache time
//! (at least a minute, at most a day) has passed.
//!
//! The URL is the attacker's choice, so the read is fenced (SSRF): https only; the host's
//! addresses, after DNS resolution, must all be public (no loopback, private, link-local,
//! shared, documentation or multicast range, IPv4 or IPv6), and the connection goes to the
//! address that was checked; no redirects; a time limit and a size limit. A setting allows
//! loopback addresses (and plain http to them), for tests; another adds trusted certificates.

use crate::config::Config;
use postern_core::client::{AccessTokenFormat, ClientType, GrantType, RedirectUri};
use postern_store::{Client, ClientId, ClientPolicy, NewClient, RegisteredBy, Store, StoreError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

/// Why a document could not be used; the text is shown to the person on the error page.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("the client's metadata document {0}")]
    Refused(String),
    /// Too many documents read for this client address: retry after this many seconds.
    #[error("too many client metadata documents read from here")]
    TooMany(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn refused(why: impl Into<String>) -> DocumentError {
    DocumentError::Refused(why.into())
}

/// Whether `client_id` names a metadata document (rather than a registered client).
pub fn is_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Whether an address may be reached by a document read: not loopback, private, link-local,
/// shared (CGNAT), benchmarking, documentation, multicast, reserved or unspecified, nor an
/// IPv6 form of one of those (mapped, compatible, 6to4, Teredo, NAT64).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (b & 0xc0) == 64)
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b & 0xfe) == 18))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || s[..6].iter().all(|x| *x == 0)
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x2001 && s[1] == 0)
                || s[0] == 0x2002
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

/// The address to read `url` from, after the checks: every address the host resolves to must
/// be public (or loopback, when tests allow it).
async fn vetted_address(url: &url::Url, allow_loopback: bool) -> Result<SocketAddr, DocumentError> {
    let host = url.host().ok_or_else(|| refused("URL has no host"))?;
    let port = url.port_or_known_default().ok_or_else(|| refused("URL has no port"))?;
    let addresses: Vec<SocketAddr> = match host {
        url::Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
        url::Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
        url::Host::Domain(name) => tokio::net::lookup_host((name, port))
            .await
            .map_err(|_| refused(format!("host {name} could not be resolved")))?
            .collect(),
    };
    let allowed = |ip: IpAddr| is_public(ip) || (allow_loopback && ip.is_loopback());
    match addresses.first() {
        None => Err(refused("host has no address")),
        Some(_) if !addresses.iter().all(|a| allowed(a.ip())) => {
            Err(refused("is on a private, loopback or otherwise internal address, which is never read"))
        }
        Some(first) => Ok(*first),
    }
}

/// A document read: its bytes and how long it may be kept.
struct Fetched {
    body: Vec<u8>,
    cache_secs: i64,
}

/// The time a response may be kept: `max-age`, between a minute and a day.
fn cache_secs(headers: &reqwest::header::HeaderMap) -> i64 {
    let directives = headers.get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let max_age = directives
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    max_age.clamp(60, 86_400)
}

async fn fetch(url: &url::Url, config: &Config) -> Result<Fetched, DocumentError> {
    let settings = &config.registration;
    let loopback_host = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    let loopback_http = settings.metadata_documents_allow_loopback && url.scheme() == "http" && loopback_host;
    if url.scheme() != "https" && !loopback_http {
        return Err(refused("must be at an https URL"));
    }
    let timeout = Duration::from_secs(settings.metadata_document_timeout_secs.max(1));
    let limit = settings.metadata_document_max_bytes;
    let read = async {
        let address = vetted_address(url, settings.metadata_documents_allow_loopback).await?;
        let mut builder = reqwest::Client::builder()
            // A proxy would resolve the name itself, past the address checks.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent("Postern (client ID metadata document)");
        if let Some(path) = &settings.metadata_document_ca_file {
            let pem = std::fs::read(path).map_err(|e| refused(format!("could not be read: the CA file: {e}")))?;
            for ca in
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| refused("could not be read: a bad CA file"))?
            {
                builder = builder.add_root_certificate(ca);
            }
        }
        if let Some(url::Host::Domain(name)) = url.host() {
            // Connect to the address that was checked, not to whatever a second lookup says.
            builder = builder.resolve(name, address);
        }
        let http = builder.build().map_err(|e| refused(format!("could not be read: {e}")))?;
        let mut response =
            http.get(url.clone()).header(reqwest::header::ACCEPT, "application/json").send().await.map_err(|e| {
                refused(format!("could not be read: {}", if e.is_timeout() { "too slow" } else { "no answer" }))
            })?;
        if response.status().is_redirection() {
            return Err(refused("answered with a redirect, which is never followed"));
        }
        if response.status() != reqwest::StatusCode::OK {
            return Err(refused(format!("answered {}", response.status().as_u16())));
        }
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(refused(format!("is larger than {limit} bytes")));
        }
        let cache_secs = cache_secs(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|_| refused("could not be read: too slow or cut off"))? {
            body.extend_from_slice(&chunk);
            if body.len() > limit {
                return Err(refused(format!("is larger than {limit} bytes")));
            }
        }
        Ok(Fetched { body, cache_secs })
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| refused("could not be read: too slow"))?
}

/// The parts of a document Postern uses.
#[derive(Debug, serde::Deserialize)]
struct Document {
    client_id: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    client_secret: Option<serde_json::Value>,
}

/// Checks a document read from `url` and returns the client it describes.
fn client_of(url: &str, body: &[u8]) -> Result<(String, Vec<RedirectUri>, Vec<GrantType>), DocumentError> {
    let doc: Document =
        serde_json::from_slice(body).map_err(|e| refused(format!("is not valid JSON metadata: {e}")))?;
    if doc.client_id != url {
        return Err(refused("names another client_id than its own URL"));
    }
    if doc.client_secret.is_some() {
        return Err(refused("holds a client_secret, which a public document must never do"));
    }
    if doc.token_endpoint_auth_method.as_deref().is_some_and(|m| m != "none") {
        return Err(refused("asks for a token_endpoint_auth_method other than none"));
    }
    let mut grants = Vec::new();
    for g in doc.grant_types.unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]) {
        match GrantType::from_wire(&g) {
            Some(grant @ (GrantType::AuthorizationCode | GrantType::RefreshToken)) if !grants.contains(&grant) => {
                grants.push(grant)
            }
            Some(GrantType::AuthorizationCode | GrantType::RefreshToken) => {}
            _ => return Err(refused(format!("asks for the grant type {g:?}, which such clients do not get"))),
        }
    }
    if !grants.contains(&GrantType::AuthorizationCode) {
        return Err(refused("does not ask for authorization_code"));
    }
    let mut redirect_uris = Vec::new();
    for r in &doc.redirect_uris {
        redirect_uris.push(RedirectUri::parse_native(r).map_err(|e| refused(format!("has a bad redirect URI: {e}")))?);
    }
    if redirect_uris.is_empty() {
        return Err(refused("names no redirect_uris"));
    }
    let host = url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
    let name = doc.client_name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).unwrap_or(host);
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(refused("has a client_name longer than 200 characters or with control characters"));
    }
    Ok((name, redirect_uris, grants))
}

/// When each document was read on this node, and until when it is fresh.
#[derive(Debug, Default)]
pub struct DocumentTimes(Mutex<HashMap<String, i64>>);

const MAX_DOCUMENTS: usize = 10_000;

impl DocumentTimes {
    fn fresh(&self, url: &str, now: i64) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(url).is_some_and(|until| now < *until)
    }

    fn read(&self, url: &str, until: i64) {
        let mut times = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if times.len() >= MAX_DOCUMENTS {
            times.clear();
        }
        times.insert(url.to_owned(), until);
    }
}

/// The client `client_id` names at the authorization endpoint: a registered client, or (an
/// http(s) URL, with documents on) the client its metadata document describes, read again
/// when this node's copy has gone stale. `permit` is asked before each read (a rate limit:
/// `Err` holds the seconds to wait).
pub async fn client(
    store: &Store,
    config: &Config,
    times: &DocumentTimes,
    client_id: &str,
    now: i64,
    permit: impl FnOnce() -> Result<(), i64>,
) -> Result<Option<Client>, DocumentError> {
    if !config.registration.metadata_documents || !is_document_url(client_id) {
        return Ok(store.client_by_id(client_id).await?);
    }
    if times.fresh(client_id, now)
        && let Some(c) = store.client_by_id(client_id).await?
    {
        return Ok(Some(c));
    }
    let url = url::Url::parse(client_id).map_err(|_| refused("URL is not a valid URL"))?;
    if url.as_str() != client_id || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(refused("URL must be in its plain form, without fragment or credentials"));
    }
    permit().map_err(DocumentError::TooMany)?;
    let fetched = fetch(&url, config).await?;
    let (name, redirect_uris, grant_types) = client_of(client_id, &fetched.body)?;
    let new = NewClient {
        client_id: ClientId::new(client_id.to_owned()),
        name,
        client_type: ClientType::Public,
        secret_hash: None,
        redirect_uris,
        post_logout_redirect_uris: Vec::new(),
        policy: ClientPolicy::default(),
        grant_types,
        allowed_scopes: crate::client_registration::permitted_scopes(store, config).await?,
        first_party: false,
        access_token_format: AccessTokenFormat::Jwt,
        access_token_ttl: config.tokens.access_token_ttl_secs,
        refresh_token_ttl: config.tokens.refresh_token_ttl_secs,
        registered_by: RegisteredBy::Document,
    };
    let client = store.upsert_document_client(&new, now).await.map_err(|e| match e {
        StoreError::Conflict(_) => refused("URL is the id of a client registered otherwise"),
        other => DocumentError::Store(other),
    })?;
    times.read(client_id, now + fetched.cache_secs);
    Ok(Some(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_read() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.0.8",
            "198.18.0.1",
            "203.0.113.9",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::10.0.0.1",
            "2002:a00:1::",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "ff02::1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn documents_are_checked_against_their_url() {
        let url = "https://agent.example/client.json";
        let good = br#"{"client_id":"https://agent.example/client.json","client_name":"Agent","redirect_uris":["http://127.0.0.1/cb"],"logo_uri":"ignored"}"#;
        let (name, redirect_uris, grants) = client_of(url, good).unwrap();
        assert_eq!((name.as_str(), redirect_uris.len()), ("Agent", 1));
        assert_eq!(grants, [GrantType::AuthorizationCode, GrantType::RefreshToken]);
        for bad in [
            r#"{"client_id":"https://other.example/client.json","redirect_uris":["http://127.0.0.1/cb"]}"#,
            r#"{"client_id":"https://agent.example/client.json","redirect_uris":[]}"#,
            r#"{"client_id":"https://agent.example/client.json","redirect_uris":["http://evil.example/cb"]}"#,
            r#"{"client_id":"https://agent.example/client.json","redirect_uris":["http://127.0.0.1/cb"],"client_secret":"x"}"#,
            r#"{"client_id":"https://agent.example/client.json","redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#,
            r#"{"client_id":"https://agent.example/client.json","redirect_uris":["http://127.0.0.1/cb"],"grant_types":["client_credentials"]}"#,
            r#"["not an object"]"#,
        ] {
            assert!(client_of(url, bad.as_bytes()).is_err(), "{bad}");
        }
        let unnamed = br#"{"client_id":"https://agent.example/client.json","redirect_uris":["http://localhost/cb"]}"#;
        assert_eq!(client_of(url, unnamed).unwrap().0, "agent.example", "named by its host");
    }

    #[test]
    fn cache_time_is_max_age_between_a_minute_and_a_day() {
        let with = |v: &str| {
            let mut h = reqwest::header::HeaderMap::new();
            h.insert(reqwest::header::CACHE_CONTROL, v.parse().unwrap());
            cache_secs(&h)
        };
        assert_eq!(with("public, max-age=600"), 600);
        assert_eq!(with("max-age=5"), 60);
        assert_eq!(with("max-age=99999999"), 86_400);
        assert_eq!(with("no-store"), 60);
        assert_eq!(cache_secs(&reqwest::header::HeaderMap::new()), 60);
    }
}
