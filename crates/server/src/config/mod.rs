//! Configuration: one typed struct, built from defaults, then an optional TOML file, then
//! `POSTERN_*` environment variables (see [`load`]).
//!
//! Every secret has a `*_file` twin (and so a `POSTERN_…_FILE` variable) for container
//! secrets; secrets print as `[redacted]` in `Debug` and in `postern config show`. Unknown
//! keys are refused, never ignored: a typo in a security setting must not pass silently.

mod load;

pub use load::{ConfigError, Sources, load};

use postern_core::password::Argon2Params;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A secret string: never printed, never serialized in clear.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// A database URL; its password is redacted whenever it is printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with any password replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("[redacted]"));
                u.to_string().replace("%5Bredacted%5D", "[redacted]")
            }
            Ok(_) => self.0.clone(),
            Err(_) if self.0.contains('@') => "[redacted: unparseable URL]".to_owned(),
            Err(_) => self.0.clone(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the SQLite database and the generated key file live.
    pub data_dir: PathBuf,
    /// The issuer identifier (RFC 8414 §2): https, or http on a loopback host. Defaults to
    /// `http://` + the listen address.
    pub issuer: Option<String>,
    /// The key-encryption key: 32 bytes in base64 or hex. Generated into the data directory
    /// when missing on SQLite; required on PostgreSQL, and the same on every node.
    pub secret_key: Option<Secret>,
    pub secret_key_file: Option<PathBuf>,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub tokens: TokenConfig,
    pub password: Argon2Params,
    pub admin: AdminConfig,
    pub sessions: SessionConfig,
    pub clients: ClientsConfig,
    pub device: DeviceConfig,
    pub api_keys: ApiKeysConfig,
    pub maintenance: MaintenanceConfig,
    pub limits: LimitsConfig,
    pub email: EmailConfig,
    pub accounts: AccountsConfig,
    pub webauthn: WebauthnConfig,
    pub registration: ClientRegistrationConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./postern-data"),
            issuer: None,
            secret_key: None,
            secret_key_file: None,
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            tokens: TokenConfig::default(),
            password: Argon2Params::default(),
            admin: AdminConfig::default(),
            sessions: SessionConfig::default(),
            clients: ClientsConfig::default(),
            device: DeviceConfig::default(),
            api_keys: ApiKeysConfig::default(),
            maintenance: MaintenanceConfig::default(),
            limits: LimitsConfig::default(),
            email: EmailConfig::default(),
            accounts: AccountsConfig::default(),
            webauthn: WebauthnConfig::default(),
            registration: ClientRegistrationConfig::default(),
        }
    }
}

/// Outgoing email over SMTP. Without `smtp_url`, nothing is sent: each message is written to
/// the log instead, clearly labelled, and `postern serve` says so at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailConfig {
    /// `smtp://host:port` (plain, for a relay on the same host), `smtp://host:port?tls=starttls`,
    /// `smtps://host:port`; credentials as `smtp://user:password@host…`.
    pub smtp_url: Option<Secret>,
    pub smtp_url_file: Option<PathBuf>,
    /// The `From` of every message.
    pub from: String,
    /// Messages waiting to be sent, at most; past that a message is refused (logged, counted).
    pub queue: usize,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self { smtp_url: None, smtp_url_file: None, from: "Postern <postern@localhost>".into(), queue: 1000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// How long in-flight requests may take to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Requests taking longer are answered 408.
    pub request_timeout_secs: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Open connections at most; past it the server stops accepting until one closes (kept
    /// below the open-file limit, which is raised to its hard maximum at start).
    pub max_connections: usize,
    /// A connection that sends no complete request head within this time (headers trickling
    /// in, or a keep-alive connection idle between requests) is closed.
    pub header_read_timeout_secs: u64,
    /// Reverse proxies whose `Forwarded` / `X-Forwarded-For` name the client (address blocks
    /// such as `10.0.0.0/8`; in the environment, comma-separated). Empty: the TCP peer is the
    /// client, and forwarding headers are ignored.
    pub trusted_proxies: Vec<postern_core::client_address::Cidr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_grace_secs: 10,
            request_timeout_secs: 30,
            max_body_bytes: 64 * 1024,
            max_connections: 10_000,
            header_read_timeout_secs: 10,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://…`; defaults to `sqlite://<data_dir>/postern.db`.
    pub url: Option<DatabaseUrl>,
    pub url_file: Option<PathBuf>,
    /// Pool size; 0 picks a default (16).
    pub max_connections: u32,
    /// How long a request waits for a database connection before it is answered 503 with
    /// `Retry-After`.
    pub acquire_timeout_secs: u64,
    /// PostgreSQL: statements running longer are cancelled (and answered 503).
    pub statement_timeout_secs: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: None, url_file: None, max_connections: 0, acquire_timeout_secs: 2, statement_timeout_secs: 10 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default on a terminal).
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, for example `info` or `postern_server=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Pretty, level: "info".into() }
    }
}

/// Token lifetimes, in seconds. Clients may set shorter access and refresh lifetimes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub access_token_ttl_secs: i64,
    pub id_token_ttl_secs: i64,
    /// Default lifetime of an unused refresh token (each rotation starts it again).
    pub refresh_token_ttl_secs: i64,
    /// A refresh-token family ends this long after the sign-in, however it is used.
    pub refresh_absolute_secs: i64,
    /// A rotated refresh token presented again within this window gets the same successor
    /// (two processes refreshing at once); after it, reuse revokes the whole family.
    pub refresh_reuse_grace_secs: i64,
    /// How often each node reads revocations of JWT access tokens made elsewhere.
    pub revocation_sync_secs: u64,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 900,
            id_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_absolute_secs: 90 * 24 * 3600,
            refresh_reuse_grace_secs: 30,
            revocation_sync_secs: 2,
        }
    }
}

impl TokenConfig {
    /// How long a rotated signing key stays in the JWKS: the longest a token it signed can
    /// live, plus a minute of clock skew. `longest_client_ttl` is the longest access-token
    /// lifetime any client has (clients may be given more than the default).
    pub fn key_publish_secs(&self, longest_client_ttl: i64) -> i64 {
        self.access_token_ttl_secs.max(self.id_token_ttl_secs).max(longest_client_ttl) + 60
    }
}

/// The first admin, created on first start when both are set and no admin exists.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub email: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
}

/// How many rows anonymous requests may make the server store (0: no limit).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Device authorizations per minute from one client address.
    pub device_authorizations_per_address: u32,
    /// Authorization requests kept waiting for a sign-in or consent, per minute per address.
    pub authorization_requests_per_address: u32,
    /// Either of the two per minute for one client, whatever the address.
    pub per_client: u32,
    /// Requests that send an email (registration, a reset link, a verification link), per
    /// minute per client address. Emails about one address are limited too, whatever the
    /// client address: three, then a wait that doubles from a minute up to an hour.
    pub emails_per_address: u32,
    /// Client registrations (RFC 7591) per minute per client address.
    pub client_registrations_per_address: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            device_authorizations_per_address: 30,
            authorization_requests_per_address: 60,
            per_client: 3000,
            emails_per_address: 10,
            client_registrations_per_address: 10,
        }
    }
}

/// Who may make an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Only admins create accounts or invite people (the default).
    #[default]
    Closed,
    /// Only people an admin invited; `/register` is closed.
    Invite,
    /// Anyone may register at `/register` (within `allowed_email_domains`, if set).
    Open,
}

/// Accounts people make and run themselves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    pub registration: Registration,
    /// With open registration, the only email domains accepted (`example.org`; none: any).
    pub allowed_email_domains: Vec<String>,
}

impl AccountsConfig {
    /// Whether open registration accepts an address in `domain`.
    pub fn domain_allowed(&self, domain: &str) -> bool {
        self.allowed_email_domains.is_empty()
            || self.allowed_email_domains.iter().any(|d| d.trim().trim_start_matches('@').eq_ignore_ascii_case(domain))
    }
}

/// Who may register a client over RFC 7591 dynamic client registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DynamicRegistration {
    /// No registration endpoint.
    Off,
    /// With an initial access token (`postern admin registration-token create`): the default.
    #[default]
    Token,
    /// Anyone (rate-limited per address): what MCP clients expect.
    Open,
}

/// Clients that register themselves: they are never first-party, are limited to `scopes` (and
/// the scopes of resources open to them), and are deleted once unused for `unused_client_secs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientRegistrationConfig {
    pub dynamic: DynamicRegistration,
    /// The scopes such a client may be allowed, besides those the resources open to it define.
    pub scopes: Vec<String>,
    /// A client that registered itself and got no token for this long is deleted.
    pub unused_client_secs: i64,
    /// Clients may name themselves by the https URL of a client ID metadata document.
    pub metadata_documents: bool,
    /// Also read documents over plain http from loopback addresses (for tests; never in
    /// production: the address checks are what stop a document URL reaching inside).
    pub metadata_documents_allow_loopback: bool,
    /// The longest a document may take to arrive, in seconds.
    pub metadata_document_timeout_secs: u64,
    /// The largest document accepted, in bytes.
    pub metadata_document_max_bytes: usize,
    /// PEM certificates trusted for reading documents besides the usual web roots (documents
    /// published under a private certificate authority; tests).
    pub metadata_document_ca_file: Option<PathBuf>,
}

impl Default for ClientRegistrationConfig {
    fn default() -> Self {
        Self {
            dynamic: DynamicRegistration::Token,
            scopes: ["openid", "profile", "email", "offline_access"].map(String::from).to_vec(),
            unused_client_secs: 30 * 86_400,
            metadata_documents: true,
            metadata_documents_allow_loopback: false,
            metadata_document_timeout_secs: 5,
            metadata_document_max_bytes: 5 * 1024,
            metadata_document_ca_file: None,
        }
    }
}

/// Passkeys (WebAuthn). The relying-party id is the issuer's host and the only origin allowed
/// is the issuer's: passkeys need the issuer to be a domain name (`localhost` included), never
/// an IP address, which WebAuthn does not accept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebauthnConfig {
    /// The name authenticators show for this instance when a passkey is made.
    pub rp_name: String,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        Self { rp_name: "Postern".into() }
    }
}

/// The Device Authorization Grant (RFC 8628).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// How long a device code and its user code stay valid.
    pub expires_secs: i64,
    /// The polling interval given to devices; polling faster gets `slow_down`.
    pub interval_secs: i64,
    /// Wrong user codes allowed per IP address and per browser within a minute.
    pub code_attempts_per_minute: u32,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self { expires_secs: 600, interval_secs: 5, code_attempts_per_minute: 5 }
    }
}

/// API keys (personal access tokens and service-account keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// Lifetime of a new key when none is given (90 days).
    pub default_ttl_secs: i64,
    /// The longest lifetime a key may be given (one year); longer is refused.
    pub max_ttl_secs: i64,
    /// Whether keys may be created without an expiry (an admin policy; off by default).
    pub allow_no_expiry: bool,
    /// How long a verified key is kept in memory; a revocation made on another node takes
    /// effect within this time (at once on the node that revoked). 0 turns the cache off.
    pub cache_secs: i64,
    /// How often last-use times are written (batched, off the request path; also at shutdown).
    pub last_used_flush_secs: u64,
    /// The Bearer credential of the secret scanner that reports leaked keys to
    /// `POST /api/keys/revoke-leaked` (unset: the endpoint refuses everyone).
    pub scanner_token: Option<Secret>,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        Self {
            default_ttl_secs: 90 * 86_400,
            max_ttl_secs: 366 * 86_400,
            allow_no_expiry: false,
            cache_secs: 5,
            last_used_flush_secs: 60,
            scanner_token: None,
        }
    }
}

/// OAuth clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// How long an authenticated client is kept in memory; changes made elsewhere (rotated
    /// secret, deleted client) take effect within this time. 0 turns the cache off.
    pub cache_secs: i64,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self { cache_secs: 5 }
    }
}

/// Browser sessions and sign-in.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused this long ends.
    pub idle_secs: i64,
    /// A session ends this long after sign-in, used or not.
    pub absolute_secs: i64,
    /// Sign-ins allowed to wait for a free core (per core) before the server answers 503.
    pub sign_in_queue_per_core: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { idle_secs: 24 * 3600, absolute_secs: 14 * 24 * 3600, sign_in_queue_per_core: 16 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaintenanceConfig {
    /// How often expired rows are deleted and signing keys re-read from the database.
    pub interval_secs: u64,
    /// Rows deleted per statement, so that a large backlog never holds a long lock.
    pub cleanup_batch: i64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self { interval_secs: 60, cleanup_batch: 500 }
    }
}

impl Config {
    /// The database URL in effect.
    pub fn database_url(&self) -> DatabaseUrl {
        self.database
            .url
            .clone()
            .unwrap_or_else(|| DatabaseUrl(format!("sqlite://{}", self.data_dir.join("postern.db").display())))
    }

    /// The issuer for a server listening on `bound` (the real port when configured with 0).
    pub fn issuer_for(&self, bound: SocketAddr) -> String {
        match &self.issuer {
            // Port 0 in a configured issuer stands for the port bound (a server on an ephemeral
            // port that must be reached by name, as passkeys need: `http://localhost:0`).
            Some(i) => match url::Url::parse(i) {
                Ok(mut url) if url.port() == Some(0) => {
                    let _ = url.set_port(Some(bound.port()));
                    url.as_str().trim_end_matches('/').to_owned()
                }
                _ => i.trim_end_matches('/').to_owned(),
            },
            None => {
                let host =
                    if bound.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], bound.port())) } else { bound };
                format!("http://{host}")
            }
        }
    }

    /// The configuration as `postern config show` prints it (TOML, secrets redacted).
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database.url = Some(self.database_url());
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}
