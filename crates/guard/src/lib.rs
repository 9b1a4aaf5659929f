//! Protects an app with Postern.
//!
//! A [`Guard`] checks the credential on each request and yields a [`Principal`]: subject,
//! kind, client and scopes. It accepts
//! - **JWT access tokens** (RFC 9068), verified in-process: the keys come from the issuer's JWKS
//!   (found through discovery), are cached, and are fetched again when a token names an unknown
//!   `kid`, at most once per [`GuardBuilder::jwks_refetch_interval`]. `typ` must be `at+jwt`, the
//!   algorithm must be in the allow-list and match the key, and `iss`, `aud`, `exp`, `nbf` and
//!   `iat` are checked with a leeway for clock skew;
//! - **opaque access tokens and API keys** (`pst_…`), by introspection (RFC 7662) with the
//!   resource's introspection client (printed by `postern admin resource add`; Postern describes
//!   to it only the credentials issued for this resource), cached briefly (positive and negative) and shared between
//!   concurrent requests. An API key's checksum is checked offline first.
//!
//! Credentials are read from `Authorization: Bearer …` or, for API keys, `X-API-Key`; never
//! from the query string. Refusals follow RFC 6750 ([`GuardError`]).
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use postern_guard::{Guard, GuardError, Principal};
//!
//! async fn projects(principal: Principal) -> Result<String, GuardError> {
//!     principal.require("project:read")?;
//!     Ok(format!("hello {}", principal.subject))
//! }
//!
//! # async fn run() -> Result<(), postern_guard::BuildError> {
//! let guard = Guard::builder("https://auth.example.org", "https://api.example.org")
//!     .introspection_client("its introspection client id", "its secret")
//!     .build()
//!     .await?;
//! let app: Router = Router::new()
//!     .route("/projects", get(projects))
//!     .layer(guard.layer())
//!     .merge(guard.metadata_router());
//! # Ok(()) }
//! ```
//!
//! The audience is required: a token is accepted only if it was minted for this resource (RFC
//! 8707). The guard serves the resource's RFC 9728 metadata ([`Guard::metadata_router`]) and
//! names it in every challenge (`WWW-Authenticate: Bearer resource_metadata="…"`), so that a
//! client that knows only the resource's address (an MCP client, say) finds Postern.
//!
//! JWTs are checked locally, so a JWT revoked at Postern stays valid here until it expires:
//! keep access-token lifetimes short, or use opaque tokens where revocation must be immediate
//! (within the cache time).

mod cache;
mod error;
mod introspect;
mod jwks;
mod layer;
mod metadata;
mod principal;

pub use error::GuardError;
pub use layer::{GuardLayer, GuardService};
pub use principal::{CredentialKind, MFA_ACR, Principal, PrincipalKind};

use axum::http::{HeaderMap, header};
use cache::TtlCache;
use introspect::Introspector;
use jwks::Jwks;
use postern_verify::clock::{Clock, SystemClock};
use postern_verify::jwt::{self, OneOrMany};
use postern_verify::scope::parse_list;
use postern_verify::token::ACCESS_TOKEN_TYP;
use serde::Deserialize;
use std::sync::Arc;

/// Why a guard could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("could not read the issuer's discovery document at {url}: {reason}")]
    Discovery { url: String, reason: String },
    #[error("the discovery document names issuer {found:?}, expected {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("an introspection client is configured, but the issuer has no introspection endpoint")]
    NoIntrospection,
    #[error("could not build the HTTP client: {0}")]
    Http(String),
}

/// Settings of a [`Guard`]; see each method for the default.
pub struct GuardBuilder {
    issuer: String,
    audience: String,
    scopes_supported: Vec<String>,
    resource_name: Option<String>,
    client: Option<(String, String)>,
    algorithms: Vec<String>,
    leeway: i64,
    positive_ttl: i64,
    negative_ttl: i64,
    jwks_refetch: i64,
    max_cache_entries: usize,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
}

impl GuardBuilder {
    /// The scopes this resource understands, listed in its metadata (`scopes_supported`).
    pub fn scopes_supported(mut self, scopes: &[&str]) -> Self {
        self.scopes_supported = scopes.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// A human-readable name for the resource, listed in its metadata (`resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// The confidential client the guard introspects with: the resource's introspection client
    /// (`postern admin resource add` prints it), to which Postern describes only credentials
    /// whose audience is this resource. Without one, only JWT access tokens are accepted.
    pub fn introspection_client(mut self, client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client = Some((client_id.into(), secret.into()));
        self
    }

    /// JWS algorithms accepted (default `EdDSA`, `RS256` and `ES256`). The key named by `kid` must
    /// also be of that algorithm, so `none` or HMAC can never pass.
    pub fn algorithms(mut self, algorithms: &[&str]) -> Self {
        self.algorithms = algorithms.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds (default 30).
    pub fn leeway_secs(mut self, secs: i64) -> Self {
        self.leeway = secs.max(0);
        self
    }

    /// How long an introspection answer is reused: active (default 5 s; the longest a
    /// revocation goes unseen) and inactive (default 5 s).
    pub fn cache_secs(mut self, active: i64, inactive: i64) -> Self {
        (self.positive_ttl, self.negative_ttl) = (active.max(0), inactive.max(0));
        self
    }

    /// Shortest time between two JWKS fetches caused by unknown `kid`s (default 30 s).
    pub fn jwks_refetch_interval(mut self, secs: i64) -> Self {
        self.jwks_refetch = secs.max(0);
        self
    }

    /// Most introspection answers kept (default 100,000).
    pub fn max_cache_entries(mut self, n: usize) -> Self {
        self.max_cache_entries = n.max(1);
        self
    }

    /// The clock for token times and cache ages (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The HTTP client for discovery, JWKS and introspection (default: 5 s timeout).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// Reads the issuer's discovery document and its JWKS, then returns the guard.
    pub async fn build(self) -> Result<Guard, BuildError> {
        let http = match self.http {
            Some(h) => h,
            None => reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .map_err(|e| BuildError::Http(e.to_string()))?,
        };
        let issuer = self.issuer.trim_end_matches('/').to_owned();
        let url = format!("{issuer}/.well-known/openid-configuration");
        let discovery = |reason: String| BuildError::Discovery { url: url.clone(), reason };
        let response = http.get(&url).send().await.map_err(|e| discovery(e.to_string()))?;
        if !response.status().is_success() {
            return Err(discovery(format!("status {}", response.status())));
        }
        let metadata: Discovery = response.json().await.map_err(|e| discovery(e.to_string()))?;
        // OpenID Connect Discovery §4.3: the document must name exactly the issuer asked for.
        if metadata.issuer.trim_end_matches('/') != issuer {
            return Err(BuildError::IssuerMismatch { expected: issuer, found: metadata.issuer });
        }
        let introspector = match self.client {
            Some((id, secret)) => {
                let endpoint = metadata.introspection_endpoint.clone().ok_or(BuildError::NoIntrospection)?;
                let ttls = (self.positive_ttl, self.negative_ttl);
                Some(Introspector::new(endpoint, id, secret, ttls, self.max_cache_entries))
            }
            None => None,
        };
        let jwks = Jwks::new(metadata.jwks_uri.clone(), self.jwks_refetch);
        let now = self.clock.now();
        // The first fetch happens now, so a wrong JWKS address fails at start-up.
        jwks.refresh_for(&http, "", now).await.map_err(|e| discovery(e.to_string()))?;
        let resource =
            metadata::Resource::new(&self.audience, &metadata.issuer, self.scopes_supported, self.resource_name);
        Ok(Guard(Arc::new(Inner {
            audience: self.audience,
            resource,
            issuer: metadata.issuer,
            algorithms: self.algorithms,
            leeway: self.leeway,
            clock: self.clock,
            http,
            jwks,
            introspector,
            verified: TtlCache::new(self.max_cache_entries),
        })))
    }
}

struct Inner {
    issuer: String,
    audience: String,
    /// What the resource's RFC 9728 metadata says, and where it is served.
    resource: metadata::Resource,
    algorithms: Vec<String>,
    leeway: i64,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    jwks: Jwks,
    introspector: Option<Introspector>,
    /// JWTs already verified (by hash), so a token presented again skips the signature check.
    verified: TtlCache<Arc<Principal>>,
}

/// Longest a verified JWT is remembered, whatever its `exp`, so that a key withdrawn from the
/// JWKS stops being trusted within this time.
const VERIFIED_JWT_SECS: i64 = 300;

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardStats {
    pub jwks_fetches: u64,
    pub introspections: u64,
}

/// Checks credentials against one Postern issuer. Cheap to clone; share one per app.
#[derive(Clone)]
pub struct Guard(Arc<Inner>);

/// What the guard reads from the discovery document (the rest is ignored).
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

/// The claims the guard reads from a JWT access token.
#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: OneOrMany,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(default)]
    acr: Option<String>,
}

impl Guard {
    /// Settings for a guard of the Postern server at `issuer` (its exact issuer URL) in front
    /// of the resource `audience`: its identifier as registered at Postern (`postern admin
    /// resource add`), which tokens must carry in `aud`.
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> GuardBuilder {
        GuardBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            scopes_supported: Vec::new(),
            resource_name: None,
            client: None,
            algorithms: vec!["EdDSA".into(), "RS256".into(), "ES256".into()],
            leeway: 30,
            positive_ttl: 5,
            negative_ttl: 5,
            jwks_refetch: 30,
            max_cache_entries: 100_000,
            clock: Arc::new(SystemClock),
            http: None,
        }
    }

    /// A tower layer that authenticates every request, puts the [`Principal`] into its
    /// extensions, and refuses the request otherwise.
    pub fn layer(&self) -> GuardLayer {
        GuardLayer::new(self.clone())
    }

    pub fn stats(&self) -> GuardStats {
        GuardStats {
            jwks_fetches: self.0.jwks.fetches(),
            introspections: self.0.introspector.as_ref().map_or(0, Introspector::calls),
        }
    }

    /// Authenticates a request by its headers.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, GuardError> {
        let token = credential(headers)?;
        self.verify(token).await
    }

    /// Checks one credential: a JWT access token, an opaque access token or an API key.
    pub async fn verify(&self, token: &str) -> Result<Principal, GuardError> {
        if postern_verify::apikey::looks_like_key(token) {
            postern_verify::apikey::parse(token)
                .map_err(|_| GuardError::InvalidToken("the API key is malformed or mistyped".into()))?;
            return self.introspect(token, CredentialKind::ApiKey).await;
        }
        if jwt::looks_like_jwt(token) {
            return self.verify_jwt(token).await;
        }
        if token.is_empty() || token.len() > 512 {
            return Err(GuardError::InvalidToken("the token is malformed".into()));
        }
        self.introspect(token, CredentialKind::OpaqueToken).await
    }

    /// A JWT: from the verified-token cache when presented before (the claims' times are
    /// within the entry's life by construction), else checked in full and remembered.
    async fn verify_jwt(&self, token: &str) -> Result<Principal, GuardError> {
        let now = self.0.clock.now();
        let hash = postern_verify::secret::TokenHash::of(token);
        if let Some(p) = self.0.verified.get(&hash, now) {
            return Ok((*p).clone());
        }
        let principal = self.check_jwt(token, now).await?;
        let until = principal.expires_at.unwrap_or(now).saturating_add(self.0.leeway).min(now + VERIFIED_JWT_SECS);
        self.0.verified.insert(hash, Arc::new(principal.clone()), until, now);
        Ok(principal)
    }

    async fn check_jwt(&self, token: &str, now: i64) -> Result<Principal, GuardError> {
        let invalid = |why: &str| GuardError::InvalidToken(why.to_owned());
        let header = jwt::peek_header(token).map_err(|_| invalid("the token is malformed"))?;
        if !self.0.algorithms.contains(&header.alg) {
            return Err(invalid("the token's algorithm is not accepted"));
        }
        let kid = header.kid.as_deref().ok_or_else(|| invalid("the token names no key"))?;
        let mut keys = self.0.jwks.snapshot();
        if !keys.contains_key(kid) {
            keys = self.0.jwks.refresh_for(&self.0.http, kid, now).await?;
        }
        let (_, claims): (_, Claims) = jwt::verify(token, Some(ACCESS_TOKEN_TYP), |kid| keys.get(kid))
            .map_err(|e| GuardError::InvalidToken(format!("the token is not valid: {e}")))?;
        self.check_claims(&claims, now)?;
        let kind = match &claims.client_id {
            Some(client) if *client == claims.sub => PrincipalKind::Client,
            _ => PrincipalKind::User,
        };
        Ok(Principal {
            subject: claims.sub,
            kind,
            credential: CredentialKind::Jwt,
            client_id: claims.client_id,
            scopes: parse_list(&claims.scope),
            expires_at: Some(claims.exp),
            amr: claims.amr,
            acr: claims.acr,
        })
    }

    fn check_claims(&self, c: &Claims, now: i64) -> Result<(), GuardError> {
        let leeway = self.0.leeway;
        let why = if c.iss != self.0.issuer {
            "the token is from another issuer"
        } else if !c.aud.contains(&self.0.audience) {
            "the token is meant for another audience"
        } else if now >= c.exp.saturating_add(leeway) {
            "the token has expired"
        } else if c.nbf.is_some_and(|nbf| now.saturating_add(leeway) < nbf)
            || c.iat.is_some_and(|iat| now.saturating_add(leeway) < iat)
        {
            "the token is not valid yet"
        } else {
            return Ok(());
        };
        Err(GuardError::InvalidToken(why.into()))
    }

    async fn introspect(&self, token: &str, credential: CredentialKind) -> Result<Principal, GuardError> {
        let Some(introspector) = &self.0.introspector else {
            return Err(GuardError::InvalidToken("this resource accepts JWT access tokens only".into()));
        };
        let now = self.0.clock.now();
        let inactive = || GuardError::InvalidToken("the credential is invalid, expired or revoked".into());
        let answer = introspector.introspect(&self.0.http, token, now).await?.ok_or_else(inactive)?;
        // A refresh token is described by introspection too, but is never a bearer credential.
        if answer.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
            || answer.exp.is_some_and(|exp| now >= exp.saturating_add(self.0.leeway))
            || answer.iss.as_ref().is_some_and(|iss| *iss != self.0.issuer)
        {
            return Err(inactive());
        }
        if !answer.aud.as_ref().is_some_and(|aud| aud.iter().any(|a| *a == self.0.audience)) {
            return Err(GuardError::InvalidToken("the token is meant for another audience".into()));
        }
        let subject = answer.sub.clone().ok_or_else(inactive)?;
        let kind = match (answer.key_kind.as_deref(), &answer.client_id) {
            (Some("service_account"), _) => PrincipalKind::ServiceAccount,
            (Some(_), _) => PrincipalKind::User,
            (None, Some(client)) if *client == subject => PrincipalKind::Client,
            (None, _) => PrincipalKind::User,
        };
        Ok(Principal {
            subject,
            kind,
            credential,
            client_id: answer.client_id.clone(),
            scopes: parse_list(answer.scope.as_deref().unwrap_or_default()),
            expires_at: answer.exp,
            // Postern's introspection says how the person behind a token signed in (RFC 9470);
            // API keys carry no sign-in, so `require_mfa` refuses them.
            amr: answer.amr.clone().unwrap_or_default(),
            acr: answer.acr.clone(),
        })
    }
}

/// The one credential of a request: `Authorization: Bearer` or `X-API-Key`. Both at once is
/// a malformed request (RFC 6750 §2: one method only).
fn credential(headers: &HeaderMap) -> Result<&str, GuardError> {
    let bearer = match headers.get(header::AUTHORIZATION) {
        Some(v) => {
            let v = v.to_str().map_err(|_| GuardError::InvalidRequest("unreadable Authorization header".into()))?;
            match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                    Some(token.trim())
                }
                // Another scheme (Basic, …) is not a credential for this resource.
                _ => None,
            }
        }
        None => None,
    };
    let key = match headers.get("x-api-key") {
        Some(v) => {
            Some(v.to_str().map_err(|_| GuardError::InvalidRequest("unreadable X-API-Key header".into()))?.trim())
        }
        None => None,
    };
    match (bearer, key) {
        (Some(_), Some(_)) => Err(GuardError::InvalidRequest("present one credential, not two".into())),
        (Some(t), None) => Ok(t),
        (None, Some(k)) if postern_verify::apikey::looks_like_key(k) => Ok(k),
        (None, Some(_)) => Err(GuardError::InvalidToken("X-API-Key takes a Postern API key".into())),
        (None, None) => Err(GuardError::Missing),
    }
}

#[cfg(test)]
mod tests;
