//! Starting a real server for a test: fresh database, port 0, fixed clock, cheap Argon2.

use postern_core::password::Argon2Params;
use postern_core::system::FixedClock;
use postern_server::config::{Config, Secret};
use postern_server::state::AppState;
use postern_server::{Application, StartError};
pub use postern_testkit::Visitor;
use postern_testkit::{Kind, TestDb};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const NOW: i64 = 1_800_000_000;

/// Declares a test run on both backends: `both!(name, |kind| async move { … })`.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)(postern_testkit::Kind::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                ($body)(postern_testkit::Kind::Postgres).await
            }
        }
    };
}
pub(crate) use both;

/// The configuration a test server starts with. PostgreSQL needs an explicit KEK; on SQLite
/// the key file is generated in the data directory, as in production.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config { data_dir: db.dir.path().to_path_buf(), ..Config::default() };
    config.database.url = Some(postern_server::config::DatabaseUrl::new(db.url.clone()));
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.password = Argon2Params::INSECURE_FOR_TESTS;
    config.database.max_connections = 4;
    if db.url.starts_with("postgres") {
        config.secret_key = Some(Secret::new(kek_for(&db.url)));
    }
    config
}

/// A KEK that is stable for one test database (so a restart finds the same one).
fn kek_for(url: &str) -> String {
    let h = postern_core::secret::TokenHash::of(url);
    h.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub clock: Arc<FixedClock>,
    pub app_first_admin: postern_server::bootstrap::FirstAdmin,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), StartError>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// Stops the server and waits until it has stopped; returns how `run_until_stopped` ended.
    pub async fn stop(mut self) -> Result<(), StartError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(h) => h.await.unwrap(),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Builds and starts a server on `config`.
pub async fn start(config: Config) -> Result<TestApp, StartError> {
    start_at(config, NOW).await
}

/// Like [`start`], with the fixed clock at `now` (tests with libraries that check tokens
/// against the real time start at the real time).
pub async fn start_at(config: Config, now: i64) -> Result<TestApp, StartError> {
    let clock = Arc::new(FixedClock::new(now));
    start_with(config, clock.clone(), clock).await
}

/// A server on the real clock (for client libraries that poll and sleep for real); the
/// returned `clock` is then not the server's.
pub async fn start_real_time(config: Config) -> Result<TestApp, StartError> {
    let unused = Arc::new(FixedClock::new(NOW));
    start_with(config, Arc::new(postern_core::system::SystemClock), unused).await
}

async fn start_with(
    config: Config,
    server_clock: Arc<dyn postern_core::system::Clock>,
    clock: Arc<FixedClock>,
) -> Result<TestApp, StartError> {
    let app = Application::build_with_clock(config, server_clock).await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let app_first_admin = app.first_admin().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Ok(TestApp { base, http, state, clock, app_first_admin, shutdown: Some(tx), handle: Some(handle) })
}

/// A fresh database of `kind` (None: PostgreSQL skipped) and a server on it.
pub async fn spawn(kind: Kind) -> Option<(TestApp, TestDb)> {
    let db = postern_testkit::fresh(kind).await?;
    let app = start(test_config(&db)).await.unwrap();
    Some((app, db))
}

/// Registers a client directly in the store; returns its id and secret (confidential only).
pub async fn register(
    app: &TestApp,
    client_type: postern_core::client::ClientType,
    grants: &[postern_core::client::GrantType],
    scopes: &str,
    format: postern_core::client::AccessTokenFormat,
) -> (String, Option<String>) {
    use postern_core::client::RedirectUri;
    use postern_server::clients::{self, Registration};
    let registration = Registration {
        redirect_uris: vec![RedirectUri::parse("https://app.example.org/cb").unwrap()],
        post_logout_redirect_uris: vec![RedirectUri::parse("https://app.example.org/bye").unwrap()],
        grant_types: grants.to_vec(),
        allowed_scopes: postern_core::oauth::parse_scope_param(scopes).unwrap(),
        access_token_format: format,
        access_token_ttl: Some(900),
        refresh_token_ttl: Some(86_400),
        ..Registration::new("Test client", client_type)
    };
    let registered = clients::register(&app.state.store, &app.state.config.tokens, registration, NOW).await.unwrap();
    (registered.client.client_id, registered.secret.map(|s| s.expose().to_owned()))
}

/// Creates a user with a password (cheap Argon2 parameters); returns the id.
pub async fn create_user(app: &TestApp, email: &str, password: &str) -> String {
    let account = postern_server::accounts::NewAccount {
        email,
        password: Some(password),
        display_name: Some("Ann Example"),
        email_verified: true,
        is_admin: false,
    };
    let params = Argon2Params::INSECURE_FOR_TESTS;
    postern_server::accounts::create_user(&app.state.store, params, &account, NOW).await.unwrap().id
}

/// A browser played by an HTTP client, on this server, posting with the issuer's origin.
pub fn visitor(app: &TestApp) -> Visitor {
    Visitor::new(&app.base, app.state.issuer_origin())
}

/// Adds a scope to the registry.
pub async fn add_scope(app: &TestApp, name: &str, description: &str, takes_values: bool) {
    let scope = postern_store::RegisteredScope {
        name: name.into(),
        description: description.into(),
        takes_values,
        created_at: NOW,
    };
    app.state.store.add_scope(&scope).await.unwrap();
}

/// Entitles a user (or a service account, `sa:<id>`) to registered scopes, as an admin would.
pub async fn entitle(app: &TestApp, principal: &str, scopes: &[&str]) {
    app.state.store.grant_entitlements(principal, scopes, "admin", NOW).await.unwrap();
}
