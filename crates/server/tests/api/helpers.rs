//! Starting a real server for a test: fresh database, port 0, fixed clock, cheap Argon2.

use postern_core::password::Argon2Params;
use postern_core::system::FixedClock;
use postern_server::config::{Config, Secret};
use postern_server::state::AppState;
use postern_server::{Application, StartError};
pub use postern_testkit::Visitor;
use postern_testkit::{Kind, TestDb};
use std::collections::HashMap;
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

/// Like [`spawn`], with the configuration `change` edits first.
pub async fn spawn_configured(kind: Kind, change: impl FnOnce(&mut Config)) -> Option<(TestApp, TestDb)> {
    let db = postern_testkit::fresh(kind).await?;
    let mut config = test_config(&db);
    change(&mut config);
    Some((start(config).await.unwrap(), db))
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
    (registered.client.client_id.into(), registered.secret.map(|s| s.expose().to_owned()))
}

/// Registers a protected resource defining `scopes`, with a new client for its resource server
/// to introspect with; returns that client's id and secret.
pub async fn add_resource(app: &TestApp, identifier: &str, name: &str, scopes: &[&str]) -> (String, String) {
    use postern_server::resources::{self, Introspector};
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let store = &app.state.store;
    resources::add(store, identifier, name, &scopes, NOW).await.unwrap();
    let tokens = &app.state.config.tokens;
    let (id, secret) = resources::set_introspector(store, tokens, identifier, Introspector::New, NOW).await.unwrap();
    (id.into(), secret.unwrap().expose().to_owned())
}

/// Introspects `token` as the confidential client `caller` (id, secret).
pub async fn introspect_with(app: &TestApp, caller: &(String, String), token: &str) -> serde_json::Value {
    let r =
        app.http.post(app.url("/oauth/introspect")).basic_auth(&caller.0, Some(&caller.1)).form(&[("token", token)]);
    r.send().await.unwrap().json().await.unwrap()
}

/// Verifies an access token with the keys the server publishes (typ at+jwt), signed with `alg`.
pub async fn verify_with_jwks_as(app: &TestApp, token: &str, alg: &str) -> postern_core::token::AccessClaims {
    let set: postern_proto::JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let keys: Vec<_> =
        set.keys.iter().map(|k| (k.kid.clone(), postern_core::signing::PublicKey::from_jwk(k).unwrap())).collect();
    let (header, claims) =
        postern_core::jwt::verify::<postern_core::token::AccessClaims>(token, Some("at+jwt"), |kid| {
            keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
        })
        .unwrap();
    assert_eq!(header.alg, alg);
    claims
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
    postern_server::accounts::create_user(&app.state.store, params, &account, NOW).await.unwrap().id.into()
}

/// Creates a user whose address is not verified (as registration leaves an account).
pub async fn create_unverified_user(app: &TestApp, email: &str, password: &str) -> postern_store::User {
    let account = postern_server::accounts::NewAccount {
        email,
        password: Some(password),
        ..postern_server::accounts::NewAccount::default()
    };
    let params = Argon2Params::INSECURE_FOR_TESTS;
    postern_server::accounts::create_user(&app.state.store, params, &account, NOW).await.unwrap()
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

// --- The authorization code flow, as a relying party on another site drives it.

pub const VERIFIER: &str = "a-perfectly-fine-pkce-verifier-of-sufficient-length-0123456789";

#[derive(Debug, Clone)]
pub struct Rp {
    pub id: String,
    pub secret: Option<String>,
    pub redirect: String,
}

pub async fn relying_party(app: &TestApp, first_party: bool) -> Rp {
    let (id, secret) = register(
        app,
        postern_core::client::ClientType::Confidential,
        &[postern_core::client::GrantType::AuthorizationCode],
        "openid email profile read",
        postern_core::client::AccessTokenFormat::Jwt,
    )
    .await;
    if first_party {
        let mut c = app.state.store.client_by_id(&id).await.unwrap().unwrap().settings();
        c.first_party = true;
        app.state.store.update_client(&id, &c, NOW).await.unwrap();
    }
    Rp { id, secret, redirect: "https://app.example.org/cb".into() }
}

pub fn authorize_url(rp: &Rp, extra: &str) -> String {
    let challenge = postern_core::pkce::s256(VERIFIER);
    format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20email&state=st-1&nonce=n-1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        rp.id,
        urlencode(&rp.redirect)
    )
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The query parameters of a redirect's `Location`.
pub fn location_params(r: &reqwest::Response) -> (String, HashMap<String, String>) {
    let location = r
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no redirect: {}", r.status()))
        .to_str()
        .unwrap()
        .to_owned();
    let url = url::Url::parse(&location).or_else(|_| url::Url::parse(&format!("http://x{location}"))).unwrap();
    let params = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    (location, params)
}

/// What a browser did on its way from an authorization request to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Signed in on the sign-in page.
    SignedIn,
    /// Allowed the client on the consent page.
    Allowed,
    /// Followed Postern's own redirect back to the waiting request.
    Resumed,
}

/// Where a flow ended: the parameters of the final redirect to the client, and the steps the
/// browser took to get there (a test that means "no consent page" checks `steps`).
#[derive(Debug)]
pub struct Arrival {
    pub params: HashMap<String, String>,
    pub steps: Vec<Step>,
}

impl std::ops::Deref for Arrival {
    type Target = HashMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.params
    }
}

/// Follows the flow from the authorization request to the client, signing in on the sign-in
/// page and allowing on the consent page whenever they are shown, and says which it did.
pub async fn sign_in_and_allow(v: &mut Visitor, url: &str, email: &str, password: &str) -> Arrival {
    let mut steps = Vec::new();
    let mut r = v.get(url).await;
    loop {
        if r.status() == 200 {
            // The consent page.
            let page = r.text().await.unwrap();
            assert!(page.contains("Allow"), "{page}");
            let csrf = Visitor::hidden(&page, "csrf");
            let request = Visitor::hidden(&page, "request");
            r = v
                .post_form("/oauth/authorize/consent", &[("csrf", &csrf), ("request", &request), ("decision", "allow")])
                .await;
            steps.push(Step::Allowed);
            continue;
        }
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
        let (location, params) = location_params(&r);
        if location.starts_with("/login") {
            let page = v.get(&location).await.text().await.unwrap();
            let csrf = Visitor::hidden(&page, "csrf");
            let request = Visitor::hidden(&page, "request");
            r = v
                .post_form(
                    "/login",
                    &[("csrf", &csrf), ("request", &request), ("email", email), ("password", password)],
                )
                .await;
            steps.push(Step::SignedIn);
        } else if location.starts_with("/oauth/authorize/continue") {
            r = v.get(&location).await;
            steps.push(Step::Resumed);
        } else {
            return Arrival { params, steps };
        }
    }
}

pub async fn exchange(app: &TestApp, rp: &Rp, code: &str, verifier: &str) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", rp.redirect.as_str()),
        ("code_verifier", verifier),
    ];
    let secret;
    if let Some(s) = &rp.secret {
        secret = s.clone();
        form.push(("client_id", rp.id.as_str()));
        form.push(("client_secret", secret.as_str()));
    } else {
        form.push(("client_id", rp.id.as_str()));
    }
    app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap()
}

/// Posts a form of the account page (its CSRF token read from the page).
pub async fn account_form(v: &mut Visitor, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let page = v.get("/account").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    let r = v.post_form(path, &all).await;
    (r.status().as_u16(), r.text().await.unwrap())
}
