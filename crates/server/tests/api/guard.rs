//! The guard crate against a real running server, through the example app of
//! `crates/guard/examples`: JWT access tokens, opaque tokens and API keys, scope requirements,
//! revocation seen within the cache time, single-flight introspection and the JWKS refetch
//! limit. The guard shares the server's fixed clock, so cache ages are moved, not waited for.

use crate::helpers::*;
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_core::signing::Algorithm;
use postern_guard::{CredentialKind, Guard, GuardError, PrincipalKind};
use postern_server::apikeys::{self, Expiry, KeyRequest};
use postern_store::KeyOwner;
use serde_json::Value;

#[allow(dead_code)]
#[path = "../../../guard/examples/protected_api.rs"]
mod example;

/// A server, the example app on port 0 registered as a resource (its address is its identifier,
/// and it defines the scopes `project` and `admin`), and its guard, which introspects with the
/// resource's credentials.
struct Setup {
    app: TestApp,
    guard: Guard,
    api: String,
    http: reqwest::Client,
}

async fn setup(app: TestApp) -> Setup {
    add_scope(&app, "project", "Projects", true).await;
    add_scope(&app, "admin", "Administration", false).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let (id, secret) = add_resource(&app, &api, "Example API", &["project", "admin"]).await;
    let guard = Guard::builder(app.state.issuer.to_string(), &api)
        .introspection_client(id, secret)
        .clock(app.clock.clone())
        .build()
        .await
        .unwrap();
    tokio::spawn(axum::serve(listener, example::app(&guard)).into_future());
    Setup { app, guard, api, http: reqwest::Client::new() }
}

impl Setup {
    /// A client-credentials token for the API, of a new client of `format` allowed `scopes`.
    async fn service_token(&self, format: AccessTokenFormat, scopes: &str) -> String {
        let (id, secret) =
            register(&self.app, ClientType::Confidential, &[GrantType::ClientCredentials], scopes, format).await;
        postern_server::resources::allow(&self.app.state.store, &id, std::slice::from_ref(&self.api)).await.unwrap();
        let r = self
            .app
            .http
            .post(self.app.url("/oauth/token"))
            .basic_auth(id, secret)
            .form(&[("grant_type", "client_credentials"), ("scope", scopes)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    async fn personal_key(&self, scopes: &[&str]) -> (String, String) {
        self.key_expiring(scopes, 3600).await
    }

    /// A personal key of a new user, valid `secs` from `NOW`; its value and id.
    async fn key_expiring(&self, scopes: &[&str], secs: i64) -> (String, String) {
        let email = format!("{}@example.org", postern_core::id::random_id(&mut postern_core::system::os_rng()));
        let user = create_user(&self.app, &email.to_lowercase(), "correct horse").await;
        entitle(&self.app, &user, scopes).await;
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let request = KeyRequest {
            owner: KeyOwner::User(&user),
            name: "k",
            scopes: &scopes,
            expiry: Expiry::After(secs),
            within: None,
        };
        let (key, record) =
            apikeys::create(&self.app.state.store, &self.app.state.config.api_keys, &request, NOW).await.unwrap();
        (key.expose().to_owned(), record.id)
    }

    /// GET `path` on the example app with `header: value`; status, `WWW-Authenticate`, body.
    async fn call(&self, path: &str, header: Option<(&str, &str)>) -> (u16, String, Value) {
        let mut req = self.http.get(format!("{}{path}", self.api));
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, challenge, body)
    }

    async fn bearer(&self, path: &str, token: &str) -> (u16, String, Value) {
        self.call(path, Some(("authorization", &format!("Bearer {token}")))).await
    }
}

both!(the_guard_accepts_each_kind_of_credential, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let s = setup(app).await;

    // A JWT access token, verified locally: the whole scope list, the client as the principal.
    let jwt = s.service_token(AccessTokenFormat::Jwt, "project:web").await;
    let (status, _, me) = s.bearer("/whoami", &jwt).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!((me["kind"].as_str(), me["credential"].as_str()), (Some("Client"), Some("Jwt")));
    assert_eq!(me["subject"], me["client_id"]);
    assert_eq!(s.bearer("/projects/web", &jwt).await.0, 200);
    let (status, challenge, body) = s.bearer("/projects/billing", &jwt).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("insufficient_scope")));
    assert!(challenge.contains(r#"scope="project:billing""#), "{challenge}");
    let (status, challenge, _) = s.bearer("/admin/stats", &jwt).await;
    assert!(status == 403 && challenge.contains(r#"scope="admin""#), "{status} {challenge}");
    assert_eq!(s.guard.stats().introspections, 0, "JWTs need no call to Postern");

    // An opaque token, by introspection.
    let opaque = s.service_token(AccessTokenFormat::Opaque, "admin").await;
    let (status, _, me) = s.bearer("/whoami", &opaque).await;
    assert_eq!((status, me["credential"].as_str()), (200, Some("OpaqueToken")), "{me}");
    assert_eq!(s.bearer("/admin/stats", &opaque).await.0, 200);

    // An API key, in either header; `project:*` covers every project.
    let (key, _) = s.personal_key(&["project:*"]).await;
    for header in [("x-api-key", key.clone()), ("authorization", format!("Bearer {key}"))] {
        let (status, _, me) = s.call("/whoami", Some((header.0, &header.1))).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!((me["kind"].as_str(), me["credential"].as_str()), (Some("User"), Some("ApiKey")));
        assert_eq!(s.call("/projects/anything", Some((header.0, &header.1))).await.0, 200);
        assert_eq!(s.call("/admin/stats", Some((header.0, &header.1))).await.0, 403);
    }

    // Refusals: nothing (a bare challenge naming the resource's metadata), garbage, a
    // refresh-shaped random string, two credentials at once. The public route needs nothing.
    let (status, challenge, _) = s.call("/whoami", None).await;
    let metadata = format!("{}/.well-known/oauth-protected-resource", s.api);
    assert_eq!((status, challenge), (401, format!("Bearer resource_metadata=\"{metadata}\"")));
    for bad in ["not-a-token", "a.b.c", "pst_u_short"] {
        let (status, challenge, body) = s.bearer("/whoami", bad).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "{bad}");
        assert!(challenge.starts_with("Bearer error=\"invalid_token\""), "{challenge}");
    }
    let r = s.http.get(format!("{}/whoami", s.api)).bearer_auth(&jwt).header("x-api-key", &key).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.call("/health", None).await.0, 200);
});

both!(revocation_is_seen_within_the_cache_time, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let s = setup(app).await;
    let (key, key_id) = s.personal_key(&["project:*"]).await;
    let (short_lived, _) = s.key_expiring(&["admin"], 100).await;
    let opaque = s.service_token(AccessTokenFormat::Opaque, "admin").await;
    let header = ("x-api-key", key.as_str());
    assert_eq!(s.call("/whoami", Some(header)).await.0, 200);
    assert_eq!(s.bearer("/whoami", &opaque).await.0, 200);

    // Revoked elsewhere (the CLI, another node); the token through the revocation endpoint.
    assert!(s.app.state.store.revoke_api_key(&key_id, NOW).await.unwrap());
    s.app.state.store.delete_access_token(&postern_core::secret::stored_hash(&opaque)).await.unwrap();
    let before = s.guard.stats().introspections;
    assert_eq!(s.call("/whoami", Some(header)).await.0, 200, "still within the guard's cache time");
    assert_eq!(s.bearer("/whoami", &opaque).await.0, 200);
    assert_eq!(s.guard.stats().introspections, before, "answered from the cache");

    // Once the cache time (5 s here and at the server) has passed, both are refused.
    s.app.clock.advance(6);
    assert_eq!(s.call("/whoami", Some(header)).await.0, 401);
    assert_eq!(s.bearer("/whoami", &opaque).await.0, 401);

    // A JWT is refused once expired (900 s lifetime, 30 s leeway).
    let jwt = s.service_token(AccessTokenFormat::Jwt, "admin").await;
    assert_eq!(s.bearer("/admin/stats", &jwt).await.0, 200);
    s.app.clock.advance(900 + 29);
    assert_eq!(s.bearer("/admin/stats", &jwt).await.0, 200, "within the leeway");
    s.app.clock.advance(1);
    let (status, _, body) = s.bearer("/admin/stats", &jwt).await;
    assert_eq!((status, body["error_description"].as_str()), (401, Some("the token has expired")));
    // A key past its expiry (100 s) is refused too.
    assert_eq!(s.call("/admin/stats", Some(("x-api-key", &short_lived))).await.0, 401);
});

#[tokio::test]
async fn introspection_is_single_flight_and_jwks_refetches_are_limited() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let s = setup(app).await;
    let opaque = s.service_token(AccessTokenFormat::Opaque, "admin").await;
    let mut checks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (guard, token) = (s.guard.clone(), opaque.clone());
        checks.spawn(async move { guard.verify(&token).await });
    }
    let principals = checks.join_all().await;
    assert!(principals.iter().all(|p| p.as_ref().is_ok_and(|p| p.kind == PrincipalKind::Client)));
    assert_eq!(s.guard.stats().introspections, 1, "32 concurrent checks, one call");
    // Unknown credentials are remembered too (negative cache).
    let unknown = "x".repeat(43);
    for _ in 0..3 {
        assert!(matches!(s.guard.verify(&unknown).await, Err(GuardError::InvalidToken(_))));
    }
    assert_eq!(s.guard.stats().introspections, 2);

    // Key rotation: a token signed by a new key makes the guard fetch the JWKS again, once the
    // refetch interval (30 s) since the last fetch has passed.
    assert_eq!(s.guard.stats().jwks_fetches, 1, "fetched at start");
    let store = &s.app.state.store;
    let (kek, _) = postern_server::kek::resolve(&s.app.state.config, store.backend()).unwrap();
    s.app.clock.advance(31);
    let now = s.app.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    postern_server::keyring::rotate(store, &kek, Algorithm::EdDSA, now, 3600).await.unwrap();
    postern_server::maintenance::run_once(&s.app.state).await;
    let jwt = s.service_token(AccessTokenFormat::Jwt, "admin").await;
    let p = s.guard.verify(&jwt).await.unwrap();
    assert_eq!(p.credential, CredentialKind::Jwt);
    assert_eq!(s.guard.stats().jwks_fetches, 2);

    // Tokens naming made-up keys cannot make it fetch again within the interval.
    let forged_header = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6Im1hZGUtdXAifQ";
    let forged = format!("{forged_header}.e30.c2ln");
    for _ in 0..5 {
        assert!(matches!(s.guard.verify(&forged).await, Err(GuardError::InvalidToken(_))));
    }
    assert_eq!(s.guard.stats().jwks_fetches, 2);
    s.app.clock.advance(31);
    assert!(s.guard.verify(&forged).await.is_err());
    assert_eq!(s.guard.stats().jwks_fetches, 3, "one more fetch after the interval");
}

#[tokio::test]
async fn a_misconfigured_guard_answers_503_not_401() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let opaque = {
        let s = setup(app).await;
        let token = s.service_token(AccessTokenFormat::Opaque, "admin").await;
        let wrong = Guard::builder(s.app.state.issuer.to_string(), s.app.state.issuer.to_string())
            .introspection_client("nobody", "wrong secret")
            .clock(s.app.clock.clone())
            .build()
            .await
            .unwrap();
        let got = wrong.verify(&token).await;
        assert!(matches!(got, Err(GuardError::Unavailable(_))), "{got:?}");
        token
    };
    assert!(!opaque.is_empty());
    // An issuer that does not match its discovery document is refused at build time.
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let other = Guard::builder(format!("{}/elsewhere", app.state.issuer), "https://api.example.org").build().await;
    assert!(other.is_err());
}

#[tokio::test]
async fn the_guard_serves_its_resource_metadata_and_names_it_in_every_challenge() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    // The API's identifier is its own address (RFC 9728 §3: metadata lives under it).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    postern_server::resources::add(&app.state.store, &api, "Example API", &[], NOW).await.unwrap();
    let (id, secret) =
        register(&app, ClientType::Confidential, &[GrantType::ClientCredentials], "read", AccessTokenFormat::Jwt).await;
    postern_server::resources::allow(&app.state.store, &id, std::slice::from_ref(&api)).await.unwrap();
    let guard = Guard::builder(app.state.issuer.to_string(), &api)
        .scopes_supported(&["read"])
        .resource_name("Example API")
        .clock(app.clock.clone())
        .build()
        .await
        .unwrap();
    tokio::spawn(axum::serve(listener, example::app(&guard)).into_future());
    let http = reqwest::Client::new();
    let metadata_url = format!("{api}/.well-known/oauth-protected-resource");
    assert_eq!(guard.resource_metadata_url(), Some(metadata_url.as_str()));

    let document: Value = http.get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(document["resource"], api.as_str());
    assert_eq!(document["authorization_servers"], serde_json::json!([app.state.issuer.to_string()]));
    assert_eq!(document["scopes_supported"], serde_json::json!(["read"]));
    assert_eq!(document["bearer_methods_supported"], serde_json::json!(["header"]));

    let token_for = |resource: Option<&str>| {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(resource.map(|r| ("resource", r)));
        let request = app.http.post(app.url("/oauth/token")).basic_auth(&id, secret.as_deref()).form(&form);
        async move {
            request.send().await.unwrap().json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
        }
    };
    let named = format!("resource_metadata=\"{metadata_url}\"");
    let challenge = |r: &reqwest::Response| r.headers()["www-authenticate"].to_str().unwrap().to_owned();

    // No credential: a bare challenge naming the metadata.
    let r = http.get(format!("{api}/whoami")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(challenge(&r), format!("Bearer {named}"));
    // A token for Postern's own APIs is for another audience.
    let r =
        http.get(format!("{api}/whoami")).bearer_auth(token_for(Some(&app.state.issuer)).await).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(challenge(&r).contains("invalid_token") && challenge(&r).contains(&named), "{}", challenge(&r));
    // The API's own token (its one resource is the default audience) is accepted; a scope the
    // handler requires is refused with the metadata named too.
    let token = token_for(None).await;
    let r = http.get(format!("{api}/whoami")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(format!("{api}/projects/web")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(challenge(&r).contains("insufficient_scope") && challenge(&r).contains(&named), "{}", challenge(&r));
}
