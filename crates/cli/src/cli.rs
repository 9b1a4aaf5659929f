//! The command line, declared with clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "postern",
    version,
    about = "Postern: a self-hostable authentication server (OAuth 2.1, OpenID Connect, device flow)"
)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables POSTERN_* override it.
    #[arg(long, global = true, env = "POSTERN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (zero configuration: SQLite in ./postern-data, http://127.0.0.1:8080).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Administer users, clients, keys; read the audit log.
    Admin(AdminArgs),
    #[command(flatten)]
    Login(LoginCommand),
}

/// The commands of a person or a script logging in to a Postern server.
#[derive(Subcommand, Debug)]
pub enum LoginCommand {
    /// Log in to a Postern server (browser when one can be opened, else a device code).
    Login(LoginArgs),
    /// Revoke the session's refresh token at the server and forget the session.
    Logout(SessionArgs),
    /// Show who is logged in where (from the server's userinfo).
    Whoami(SessionArgs),
    /// Show the stored sessions and when their tokens expire.
    Status(StatusArgs),
    /// Print a valid access token (refreshed if needed) and nothing else, for scripts.
    Token(SessionArgs),
}

/// Which stored session a client command uses.
#[derive(Args, Debug, Clone)]
pub struct SessionArgs {
    /// The server (issuer URL); by default the one the profile logged in to.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// The OAuth client to log in as.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// A name for this session, so that several accounts or servers can be logged in at once.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub profile: String,
    /// Print machine-readable JSON (whoami, status).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct LoginArgs {
    #[command(flatten)]
    pub session: SessionArgs,
    /// Log in with a code entered on another device (RFC 8628).
    #[arg(long, conflicts_with = "browser")]
    pub device: bool,
    /// Log in with this machine's browser (RFC 8252); fails rather than falling back to a code.
    #[arg(long)]
    pub browser: bool,
    /// Scopes to ask for (repeat or separate with spaces); default: openid profile email offline_access.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// Print machine-readable JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective configuration (TOML, secrets redacted).
    Show,
}

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Manage user accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage OAuth clients.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Manage protected resources (RFC 8707): the APIs tokens are minted for.
    Resource {
        #[command(subcommand)]
        command: ResourceCommand,
    },
    /// Manage initial access tokens for dynamic client registration (RFC 7591).
    RegistrationToken {
        #[command(subcommand)]
        command: RegistrationTokenCommand,
    },
    /// Manage the scope registry (names and plain-language descriptions).
    Scope {
        #[command(subcommand)]
        command: ScopeCommand,
    },
    /// Manage service accounts (non-human principals owned by a user).
    ServiceAccount {
        #[command(subcommand)]
        command: ServiceAccountCommand,
    },
    /// Manage API keys: personal access tokens and service-account keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// List or rotate the signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Read the audit log, newest first.
    Audit {
        /// Only events newer than this (for example 1h, 7d, 30m).
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// Only events of this action (for example user.create).
        #[arg(long)]
        action: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Mark the email address as verified.
        #[arg(long)]
        verified: bool,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List,
    /// Show one user (by email or id).
    Show { user: String },
    /// Disable a user: they can no longer sign in.
    Disable { user: String },
    /// Enable a disabled user.
    Enable { user: String },
    /// Set a user's password, read from standard input.
    SetPassword {
        user: String,
        /// Read the password from standard input (one line). Required.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Invite someone: their account is made without a password, and a link to choose one (7
    /// days, single use) is emailed to them (printed instead when no email.smtp_url is set).
    Invite {
        email: String,
        /// A registered scope they are entitled to (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
    },
    /// Delete a user: cut off everywhere, their API keys and service accounts deleted, the
    /// account removed (audit events keep the id, without personal details).
    Delete { user: String },
    /// Turn off a user's two-step verification (their authenticator app, recovery codes and
    /// passkeys), for the person who lost them; they sign in with the password alone until they
    /// set it up again.
    ResetMfa { user: String },
    /// List where a user is signed in (their browser sessions).
    Sessions { user: String },
    /// Sign a user out of every browser, at once.
    RevokeSessions { user: String },
    /// Entitle a user to registered scopes, which they may then put on their API keys.
    Grant {
        user: String,
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// Take scopes away from a user; their keys (and their service accounts' grants and keys)
    /// that carry them are revoked at once.
    Revoke {
        user: String,
        #[arg(required = true)]
        scopes: Vec<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum TokenFormatArg {
    Jwt,
    Opaque,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// A public client (CLI, native or browser app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// An allowed redirect URI (repeatable); exact match, except the port of loopback IPs.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may return the browser (repeatable; exact match).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// An allowed grant type (repeatable): authorization_code, refresh_token,
        /// client_credentials, device_code.
        #[arg(long = "grant-type", value_name = "TYPE")]
        grant_types: Vec<String>,
        /// An allowed scope (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A registered resource the client may ask tokens for (repeatable); with exactly one,
        /// it is the audience of tokens that name none.
        #[arg(long = "resource", value_name = "URI")]
        resources: Vec<String>,
        /// A first-party client: users are not asked for consent.
        #[arg(long)]
        first_party: bool,
        /// Refuse authorization requests without `state`.
        #[arg(long)]
        require_state: bool,
        /// The algorithm of this client's ID tokens.
        #[arg(long, value_enum, default_value = "RS256")]
        id_token_alg: IdTokenAlgArg,
        /// Issue refresh tokens to OpenID requests even without the offline_access scope.
        #[arg(long)]
        always_refresh_token: bool,
        /// Refresh responses carry a new ID token (OpenID Connect Core §12.2 makes it
        /// optional; without this flag they carry none, which makes a refresh much cheaper).
        #[arg(long)]
        id_token_on_refresh: bool,
        /// Only people whose email address is verified may sign in to this client.
        #[arg(long)]
        require_verified_email: bool,
        /// People must use a second factor to sign in to this client (a session without one
        /// is asked for it: step-up).
        #[arg(long)]
        require_mfa: bool,
        #[arg(long, value_enum, default_value = "jwt")]
        access_token_format: TokenFormatArg,
        /// The algorithm of this client's JWT access tokens: EdDSA, or RS256 or ES256 for
        /// resource servers that verify nothing newer.
        #[arg(long, value_enum, default_value = "EdDSA")]
        access_token_alg: IdTokenAlgArg,
        /// Access-token lifetime in seconds (default: tokens.access_token_ttl_secs).
        #[arg(long)]
        access_token_ttl: Option<i64>,
        /// Refresh-token lifetime in seconds (default: tokens.refresh_token_ttl_secs).
        #[arg(long)]
        refresh_token_ttl: Option<i64>,
    },
    /// List clients.
    List,
    /// Show one client.
    Show { client_id: String },
    /// Change a client's settings; lists given replace the stored ones.
    Update {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may return the browser (repeatable; exact match).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        #[arg(long = "grant-type", value_name = "TYPE")]
        grant_types: Vec<String>,
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        #[arg(long, value_name = "true|false")]
        first_party: Option<bool>,
        #[arg(long, value_name = "true|false")]
        require_state: Option<bool>,
        #[arg(long, value_enum)]
        id_token_alg: Option<IdTokenAlgArg>,
        #[arg(long, value_name = "true|false")]
        always_refresh_token: Option<bool>,
        #[arg(long, value_name = "true|false")]
        id_token_on_refresh: Option<bool>,
        #[arg(long, value_name = "true|false")]
        require_verified_email: Option<bool>,
        #[arg(long, value_name = "true|false")]
        require_mfa: Option<bool>,
        #[arg(long, value_enum)]
        access_token_format: Option<TokenFormatArg>,
        #[arg(long, value_enum)]
        access_token_alg: Option<IdTokenAlgArg>,
        #[arg(long)]
        access_token_ttl: Option<i64>,
        #[arg(long)]
        refresh_token_ttl: Option<i64>,
        /// The resources the client may ask tokens for (repeatable; replaces the list).
        #[arg(long = "resource", value_name = "URI")]
        resources: Vec<String>,
        /// The client may ask for no resource but the issuer.
        #[arg(long, conflicts_with = "resources")]
        no_resources: bool,
    },
    /// Delete a client.
    Delete { client_id: String },
    /// Replace a confidential client's secret; the new one is printed once.
    RotateSecret { client_id: String },
}

#[derive(Subcommand, Debug)]
pub enum ResourceCommand {
    /// Register a resource: its identifier (an absolute URI) is the audience of its tokens.
    /// Its resource server gets introspection credentials (a new client, secret shown once).
    Add {
        identifier: String,
        #[arg(long)]
        name: String,
        /// A scope the resource defines (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Introspect with this existing confidential client instead of a new one.
        #[arg(long, value_name = "CLIENT_ID")]
        introspector: Option<String>,
        /// Clients that register themselves (dynamic registration) may ask tokens for it.
        #[arg(long)]
        open_to_self_registered: bool,
    },
    /// List resources.
    List,
    /// Rename a resource or replace its scopes.
    Update {
        identifier: String,
        #[arg(long)]
        name: Option<String>,
        /// The scopes it defines (repeatable; replaces the list).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Introspect with this existing confidential client from now on.
        #[arg(long, value_name = "CLIENT_ID", conflicts_with = "new_introspector")]
        introspector: Option<String>,
        /// Introspect with a new client from now on (secret shown once); the previous one
        /// stops seeing this resource's tokens.
        #[arg(long)]
        new_introspector: bool,
        /// Whether clients that register themselves may ask tokens for it.
        #[arg(long, value_name = "true|false")]
        open_to_self_registered: Option<bool>,
    },
    /// Remove a resource: no client may ask tokens for it any more.
    Remove { identifier: String },
}

#[derive(Subcommand, Debug)]
pub enum RegistrationTokenCommand {
    /// Make an initial access token (shown once) that lets clients register themselves.
    Create {
        #[arg(long)]
        name: String,
        /// How long it works (for example 1h, 7d).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "7d")]
        expires_in: std::time::Duration,
        /// How many registrations it allows (default: any number until it expires).
        #[arg(long)]
        uses: Option<i64>,
    },
    /// List initial access tokens (never the tokens themselves).
    List,
    /// Revoke an initial access token.
    Revoke { id: String },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdTokenAlgArg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "EdDSA")]
    EdDsa,
    #[value(name = "ES256")]
    Es256,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgArg {
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "EdDSA")]
    EdDsa,
    #[value(name = "ES256")]
    Es256,
    All,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List signing keys: active, and rotated ones still published.
    List,
    /// Make new active keys; old ones stay published until their tokens have expired.
    Rotate {
        #[arg(long, value_enum, default_value = "all")]
        alg: AlgArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum ScopeCommand {
    /// Register a scope.
    Add {
        name: String,
        /// What the scope allows, in plain words (shown on consent pages and key creation).
        #[arg(long)]
        description: String,
        /// The scope is used as NAME:VALUE, and NAME:* grants every value.
        #[arg(long)]
        takes_values: bool,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceAccountCommand {
    Create {
        /// Unique among the owner's service accounts (1-64 of A-Z a-z 0-9 - _ .).
        name: String,
        /// The owning user (email or id).
        #[arg(long)]
        owner: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
    /// Delete a service account and all its keys.
    Delete {
        #[command(flatten)]
        account: ServiceAccountRef,
    },
    /// Entitle a service account to registered scopes.
    Grant {
        #[command(flatten)]
        account: ServiceAccountRef,
        #[arg(required = true)]
        scopes: Vec<String>,
    },
    /// Take scopes away from a service account; its keys carrying them are revoked at once.
    Revoke {
        #[command(flatten)]
        account: ServiceAccountRef,
        #[arg(required = true)]
        scopes: Vec<String>,
    },
}

/// A service account by name; names are unique per owner, so `--owner` says whose when
/// several users have one of that name.
#[derive(clap::Args, Debug)]
pub struct ServiceAccountRef {
    pub name: String,
    /// The owning user (email or id), needed when several owners use the name.
    #[arg(long)]
    pub owner: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create a key; it is printed once and never again.
    Create {
        /// A personal access token of this user (email or id).
        #[arg(long, required_unless_present = "service_account", conflicts_with = "service_account")]
        user: Option<String>,
        /// A key of this service account.
        #[arg(long)]
        service_account: Option<String>,
        /// The service account's owner (email or id), when several owners use its name.
        #[arg(long, requires = "service_account")]
        owner: Option<String>,
        #[arg(long)]
        name: String,
        /// A registered scope (repeatable; NAME:VALUE or NAME:* for scopes that take values).
        #[arg(long = "scope", value_name = "SCOPE", required = true)]
        scopes: Vec<String>,
        /// For example 30d or 12h; `never` if api_keys.allow_no_expiry (default: 90 days).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// List keys (never the keys themselves), all or one owner's.
    List {
        #[arg(long, conflicts_with = "service_account")]
        user: Option<String>,
        #[arg(long)]
        service_account: Option<String>,
        /// The service account's owner (email or id), when several owners use its name.
        #[arg(long, requires = "service_account")]
        owner: Option<String>,
    },
    Revoke {
        id: String,
    },
}
