//! Building and running the application (see the crate docs).

use crate::bootstrap::{self, FirstAdmin};
use crate::client_cache::ClientCache;
use crate::config::Config;
use crate::device_polls::DevicePolls;
use crate::kek::{self, KekSource};
use crate::keyring::{self, KeyRing};
use crate::metrics::Metrics;
use crate::node::NodeState;
use crate::passwords::PasswordPool;
use crate::revocations::DenyList;
use crate::routes;
use crate::state::AppState;
use crate::throttle::SignInThrottle;
use postern_core::system::{Clock, SystemClock};
use postern_store::{Backend, PoolOptions, Store};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("database: {0}")]
    Store(#[from] postern_store::StoreError),
    #[error(transparent)]
    Kek(#[from] kek::KekError),
    #[error(transparent)]
    Keys(#[from] keyring::KeyError),
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server error: {0}")]
    Serve(std::io::Error),
}

/// Opens the configured database (creating the data directory for SQLite) and applies the
/// migrations. Used by `serve`, `migrate` and the admin commands alike.
pub async fn open_store(config: &Config, now: i64) -> Result<(Store, postern_store::MigrationReport), StartError> {
    let url = config.database_url();
    if Backend::of_url(url.expose()) == Some(Backend::Sqlite) {
        let dir = sqlite_dir(url.expose()).unwrap_or_else(|| config.data_dir.clone());
        let data_dir = |source| StartError::DataDir { path: dir.clone(), source };
        create_private_dir(&dir, dir == config.data_dir).map_err(data_dir)?;
        if let Some(file) = sqlite_file(url.expose()) {
            private_database_file(&file).map_err(|source| StartError::DataDir { path: file.clone(), source })?;
        }
    }
    // SQLite reads a local file and writes one at a time; the token endpoints' reads do not use
    // the pool (they run in place, see `postern_store`'s readers) and their writes go through
    // the group-commit writer, so 4 connections serve the rest, and each one more is a thread
    // and a page cache more. PostgreSQL gets more for its round trips.
    let default_pool = if Backend::of_url(url.expose()) == Some(Backend::Sqlite) { 4 } else { 16 };
    let options = PoolOptions {
        max_connections: if config.database.max_connections == 0 {
            default_pool
        } else {
            config.database.max_connections
        },
        acquire_timeout: Duration::from_secs(config.database.acquire_timeout_secs.max(1)),
        statement_timeout: Duration::from_secs(config.database.statement_timeout_secs.max(1)),
    };
    let store = Store::connect(url.expose(), options).await?;
    let report = store.migrate(now).await?;
    Ok((store, report))
}

/// The directory of a `sqlite://PATH[?…]` URL's file.
fn sqlite_dir(url: &str) -> Option<PathBuf> {
    let file = sqlite_file(url)?;
    file.parent().map(|p| if p.as_os_str().is_empty() { PathBuf::from(".") } else { p.to_path_buf() })
}

/// Creates `dir` 0700; an existing one is tightened to 0700 (with a warning) when `tighten`
/// (the data directory: the database and the key file live there).
fn create_private_dir(dir: &std::path::Path, tighten: bool) -> std::io::Result<()> {
    if dir.exists() {
        if tighten {
            restrict(dir, 0o700)?;
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Narrows `path` to `mode` if group or others have any access, with a warning.
fn restrict(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
        if current & 0o077 != 0 {
            tracing::warn!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "restricting permissions");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The SQLite database file is created 0600 before SQLite opens it (SQLite gives its WAL and
/// shared-memory files the same permissions); an existing one is narrowed to 0600.
fn private_database_file(file: &std::path::Path) -> std::io::Result<()> {
    if file.exists() {
        return restrict(file, 0o600);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict(file, 0o600),
        Err(e) => Err(e),
    }
}

/// The file of a `sqlite://PATH[?…]` URL.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

/// A built application: database open, keys loaded, listener bound.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    first_admin: FirstAdmin,
    kek_source: KekSource,
    applied_migrations: Vec<i64>,
    mail_worker: crate::mail::Worker,
}

impl Application {
    /// Builds with the system clock.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let (store, report) = open_store(&config, clock.now()).await?;
        let (kek, kek_source) = kek::resolve(&config, store.backend())?;
        kek::verify(&store, &kek, clock.now()).await?;
        let created = keyring::ensure_keys(&store, &kek, clock.now()).await?;
        for kid in &created {
            tracing::info!(%kid, "generated a signing key");
        }
        let keys = KeyRing::load(&store, kek, clock.now()).await?;

        let addr = config.server.listen;
        let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
        let bound = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
        let issuer = config.issuer_for(bound);
        if config.issuer.is_none() && !bound.ip().is_loopback() {
            tracing::warn!(
                %issuer,
                "listening beyond loopback without a configured issuer: set `issuer` (POSTERN_ISSUER) to the public https URL clients use"
            );
        }
        let first_admin = bootstrap::first_admin(&store, &config, &issuer, clock.now()).await?;
        if bootstrap::cli_client(&store, &config.tokens, clock.now()).await? {
            tracing::info!(client_id = bootstrap::CLI_CLIENT_ID, "registered the first-party CLI client");
        }

        let revoked = DenyList::load(&store, clock.now()).await?;
        let registration = config.registration.dynamic != crate::config::DynamicRegistration::Off;
        let documents = config.registration.metadata_documents;
        let metadata = routes::oauth::discovery::provider_metadata(&issuer, registration, documents);
        let discovery_json = serde_json::to_string(&metadata).map_err(|e| StartError::Config(e.to_string()))?;
        let metrics = Arc::new(Metrics::new());
        let (mail, mail_worker) =
            crate::mail::Outbox::new(&config.email, metrics.clone()).map_err(|e| StartError::Config(e.to_string()))?;
        let webauthn = crate::passkeys::relying_party(&issuer, &config.webauthn);
        let state = AppState::new(crate::state::Shared {
            webauthn,
            store,
            issuer: issuer.into(),
            clock,
            keys,
            metrics,
            mail,
            discovery_json: discovery_json.into(),
            node: Arc::new(NodeState {
                passwords: PasswordPool::new(config.password, config.sessions.sign_in_queue_per_core).await,
                throttle: SignInThrottle::default(),
                anonymous_writes: crate::limits::AnonymousWrites::new(&config.limits),
                clients: ClientCache::new(config.clients.cache_secs),
                revoked,
                device_polls: DevicePolls::default(),
                verified_tokens: Default::default(),
                users: crate::known_users::KnownUsers::new(config.tokens.revocation_sync_secs),
                api_keys: crate::apikeys::KeyVerifier::new(&config.api_keys),
                client_uses: Default::default(),
                documents: Default::default(),
                device_attempts: std::sync::Mutex::new(postern_core::throttle::Throttle::new(
                    postern_core::throttle::Policy {
                        free: config.device.code_attempts_per_minute,
                        base_secs: 60,
                        max_secs: 60,
                        forget_secs: 60,
                    },
                    100_000,
                )),
            }),
            config: Arc::new(config),
        });
        Ok(Self { listener, state, first_admin, kek_source, applied_migrations: report.applied, mail_worker })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn first_admin(&self) -> &FirstAdmin {
        &self.first_admin
    }

    /// What the server is serving, printed once at start. Holds the setup link when there is
    /// one (it is single use and expires in an hour), and never another secret.
    pub fn banner(&self) -> String {
        let config = &self.state.config;
        let listen = self.listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let mut out = format!(
            "Postern {version}\n  issuer:   {issuer}\n  listen:   http://{listen}\n  database: {db}\n",
            version = env!("CARGO_PKG_VERSION"),
            issuer = self.state.issuer,
            db = config.database_url().redacted(),
        );
        if !self.applied_migrations.is_empty() {
            out += &format!("  migrations applied: {:?}\n", self.applied_migrations);
        }
        match &self.kek_source {
            KekSource::Configured => out += "  key-encryption key: from configuration\n",
            KekSource::File(p) => out += &format!("  key-encryption key: {}\n", p.display()),
            KekSource::Generated(p) => {
                out += &format!("  key-encryption key: generated {} (back it up with the database)\n", p.display())
            }
        }
        match &self.first_admin {
            FirstAdmin::Exists => {}
            FirstAdmin::Created { email } => out += &format!("  first admin created: {email}\n"),
            FirstAdmin::SetupLink { url } => {
                out += &format!(
                    "\nNo admin account exists yet. Create the first one:\n  - open {url}\n    (works once, within an hour), or\n  - run: postern admin user create --email you@example.org --admin --password-stdin\n"
                )
            }
        }
        if !self.state.mail.sends {
            out += "\nEmail is not configured (email.smtp_url): messages are written to the log, not sent.";
        }
        out += "\nStop with Ctrl-C (or SIGTERM): requests in flight are finished first.";
        out
    }

    /// Serves until `shutdown` completes; then stops accepting, lets in-flight requests finish
    /// within `server.shutdown_grace_secs`, stops the background task and closes the pool.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let state = self.state;
        let grace = Duration::from_secs(state.config.server.shutdown_grace_secs);
        let (stop_tx, stop_rx) = watch::channel(false);

        let maintenance = tokio::spawn(crate::maintenance::run(state.clone(), stop_rx.clone()));
        let revocations = tokio::spawn(crate::maintenance::sync_revocations(state.clone(), stop_rx.clone()));
        let key_uses = tokio::spawn(crate::maintenance::flush_key_uses(state.clone(), stop_rx.clone()));
        let password_memory = tokio::spawn(crate::maintenance::release_password_memory(state.clone(), stop_rx.clone()));
        let mail = tokio::spawn(crate::mail::run(self.mail_worker, stop_rx.clone()));

        let store = state.store.clone();
        let node = state.node.clone();
        let limits = crate::serve::Limits {
            max_connections: crate::serve::connection_cap(
                state.config.server.max_connections,
                crate::serve::raise_open_file_limit(),
            ),
            header_read_timeout: Duration::from_secs(state.config.server.header_read_timeout_secs),
        };
        let app = routes::router(state);
        let signal = {
            let stop_tx = stop_tx.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down: no new connections, finishing requests in flight");
                let _ = stop_tx.send(true);
            }
        };
        let server = crate::serve::serve(self.listener, app, limits, signal);
        let mut stopped = stop_rx.clone();
        let deadline = async move {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            () = server => Ok(()),
            _ = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "requests still running after the grace period; closing them");
                Ok(())
            }
        };
        let _ = stop_tx.send(true);
        let _ = maintenance.await;
        let _ = revocations.await;
        let _ = key_uses.await;
        let _ = password_memory.await;
        // Queued email gets its last try before the server stops.
        let _ = mail.await;
        // Requests that finished after the flush task's last pass.
        if let Err(e) = node.api_keys.flush(&store).await {
            tracing::warn!(error = %e, "could not record API keys' last use at shutdown");
        }
        store.close().await;
        tracing::info!("stopped");
        result
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
