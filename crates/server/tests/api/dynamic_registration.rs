//! Clients that register themselves: RFC 7591 registration under each `registration.dynamic`
//! setting, metadata errors (§3.2.2), RFC 7592 read, update and delete with the registration
//! access token, the per-address limit, resources open to such clients, and the deletion of
//! clients left unused. On both backends; one test registers through the `openidconnect` crate.

use crate::helpers::*;
use postern_server::config::{Config, DynamicRegistration};
use serde_json::{Value, json};

const API: &str = "https://mcp.example.org/mcp";

fn open(config: &mut Config) {
    config.registration.dynamic = DynamicRegistration::Open;
}

/// `POST /oauth/register` with `metadata`, and an initial access token if given.
async fn register_client(app: &TestApp, metadata: &Value, token: Option<&str>) -> (u16, Value) {
    let mut req = app.http.post(app.url("/oauth/register")).json(metadata);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    if status != 404 {
        assert_eq!(r.headers()["cache-control"], "no-store", "{status}");
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

/// What an MCP client sends: a public native client with a localhost callback.
fn agent() -> Value {
    json!({
        "client_name": "Research agent",
        "redirect_uris": ["http://localhost/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": "openid email offline_access",
        "software_id": "ignored-unknown-field",
    })
}

async fn client_count(app: &TestApp) -> usize {
    app.state.store.list_clients().await.unwrap().len()
}

both!(a_public_agent_registers_itself_and_signs_a_person_in_with_consent, |kind| async move {
    let Some((app, _db)) = spawn_configured(kind, open).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let (status, made) = register_client(&app, &agent(), None).await;
    assert_eq!(status, 201, "{made}");
    let id = made["client_id"].as_str().unwrap().to_owned();
    assert!(made.get("client_secret").is_none(), "public: {made}");
    assert_eq!(made["token_endpoint_auth_method"], "none");
    assert_eq!(made["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(made["redirect_uris"], json!(["http://localhost/callback"]));
    assert_eq!(made["registration_client_uri"], format!("{}/oauth/register/{id}", app.base));
    assert!(made["registration_access_token"].as_str().is_some_and(|t| t.len() >= 40));
    let stored = app.state.store.client_by_id(&id).await.unwrap().unwrap();
    assert!(!stored.first_party);
    assert_eq!(stored.registered_by, postern_store::RegisteredBy::Dynamic);

    // A localhost callback on any port; the person sees a consent page naming the agent.
    let rp = Rp { id: id.clone(), secret: None, redirect: "http://localhost:53682/callback".into() };
    let url = authorize_url(&rp, "");
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let page = v.get(&url).await.text().await.unwrap();
    assert!(page.contains("Research agent"), "{page}");
    let arrival = sign_in_and_allow(&mut v, &url, "ann@example.org", "correct horse").await;
    assert_eq!(arrival.steps, [Step::Allowed], "never first-party");
    let r = exchange(&app, &rp, &arrival["code"], VERIFIER).await;
    assert_eq!(r.status(), 200);

    // Its use is recorded off the request path, at the next maintenance pass.
    assert_eq!(app.state.store.client_by_id(&id).await.unwrap().unwrap().last_used_at, None);
    postern_server::maintenance::run_once(&app.state).await;
    assert_eq!(app.state.store.client_by_id(&id).await.unwrap().unwrap().last_used_at, Some(NOW));
});

both!(bad_metadata_is_refused_as_rfc_7591_says_and_nothing_is_stored, |kind| async move {
    // Every attempt counts against the per-address limit; this test makes more than ten.
    let Some((app, _db)) = spawn_configured(kind, |c| {
        open(c);
        c.limits.client_registrations_per_address = 100;
    })
    .await
    else {
        return;
    };
    let before = client_count(&app).await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut m = agent();
        change(&mut m);
        m
    };
    let cases: Vec<(Value, &str)> = vec![
        (with(&|m| m["redirect_uris"] = json!(["http://app.example.org/cb"])), "invalid_redirect_uri"),
        (with(&|m| m["redirect_uris"] = json!(["https://app.example.org/cb#frag"])), "invalid_redirect_uri"),
        (with(&|m| m["redirect_uris"] = json!([])), "invalid_redirect_uri"),
        (with(&|m| m["redirect_uris"] = json!("http://localhost/cb")), "invalid_client_metadata"),
        (with(&|m| m["grant_types"] = json!(["client_credentials"])), "invalid_client_metadata"),
        (with(&|m| m["grant_types"] = json!(["password"])), "invalid_client_metadata"),
        (with(&|m| m["response_types"] = json!(["token"])), "invalid_client_metadata"),
        (with(&|m| m["token_endpoint_auth_method"] = json!("private_key_jwt")), "invalid_client_metadata"),
        (with(&|m| m["scope"] = json!("openid admin")), "invalid_client_metadata"),
        (with(&|m| m["client_name"] = json!("x".repeat(201))), "invalid_client_metadata"),
        (with(&|m| m["client_name"] = json!("a\u{0}b")), "invalid_client_metadata"),
        (with(&|m| m["scope"] = json!("openid\u{0}")), "invalid_client_metadata"),
        (with(&|m| m["redirect_uris"] = json!(["http://localhost/\u{0}"])), "invalid_redirect_uri"),
    ];
    for (metadata, code) in cases {
        let (status, body) = register_client(&app, &metadata, None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{metadata}: {body}");
        assert!(body["error_description"].is_string());
    }
    let r = app.http.post(app.url("/oauth/register")).body("redirect_uris=x").send().await.unwrap();
    assert_eq!(r.status(), 400, "not JSON");
    let r = app.http.post(app.url("/oauth/register")).header("content-type", "application/json").body("{").send().await;
    assert_eq!(r.unwrap().json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
    assert_eq!(client_count(&app).await, before);
});

both!(a_registration_is_read_replaced_and_deleted_with_its_registration_access_token, |kind| async move {
    let Some((app, _db)) = spawn_configured(kind, open).await else { return };
    let mut confidential = agent();
    confidential["token_endpoint_auth_method"] = json!("client_secret_basic");
    let (status, made) = register_client(&app, &confidential, None).await;
    assert_eq!(status, 201, "{made}");
    assert!(made["client_secret"].as_str().is_some_and(|s| s.len() >= 40));
    assert_eq!(made["client_secret_expires_at"], 0);
    let (_, other) = register_client(&app, &agent(), None).await;
    let uri = made["registration_client_uri"].as_str().unwrap().to_owned();
    let token = made["registration_access_token"].as_str().unwrap().to_owned();
    let call = |method: reqwest::Method, uri: String, token: Option<String>, body: Option<Value>| {
        let mut req = app.http.request(method, uri);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
            (status, challenge, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (status, _, read) = call(reqwest::Method::GET, uri.clone(), Some(token.clone()), None).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!((read["client_name"].as_str(), read.get("client_secret")), (Some("Research agent"), None));
    // No token, a wrong one, another client's: the same 401.
    let other_token = other["registration_access_token"].as_str().unwrap().to_owned();
    for bad in [None, Some("wrong".to_owned()), Some(other_token)] {
        let (status, challenge, body) = call(reqwest::Method::GET, uri.clone(), bad.clone(), None).await;
        assert_eq!(status, 401, "{bad:?}: {body}");
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")));
    }
    let unknown = format!("{}/oauth/register/nobody", app.base);
    assert_eq!(call(reqwest::Method::GET, unknown, Some(token.clone()), None).await.0, 401);

    // Replaced: a new name and callback; the kind of client cannot change.
    let mut replacement = confidential.clone();
    replacement["client_id"] = made["client_id"].clone();
    replacement["client_name"] = json!("Renamed agent");
    replacement["redirect_uris"] = json!(["http://127.0.0.1/cb"]);
    let (status, _, updated) =
        call(reqwest::Method::PUT, uri.clone(), Some(token.clone()), Some(replacement.clone())).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["client_name"].as_str(), &updated["redirect_uris"]),
        (Some("Renamed agent"), &json!(["http://127.0.0.1/cb"]))
    );
    replacement["token_endpoint_auth_method"] = json!("none");
    let (status, _, body) =
        call(reqwest::Method::PUT, uri.clone(), Some(token.clone()), Some(replacement.clone())).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client_metadata")), "{body}");
    replacement["token_endpoint_auth_method"] = json!("client_secret_basic");
    replacement["client_id"] = json!("someone-else");
    assert_eq!(call(reqwest::Method::PUT, uri.clone(), Some(token.clone()), Some(replacement)).await.0, 400);

    // Deleted: gone, and its token with it.
    let (status, _, _) = call(reqwest::Method::DELETE, uri.clone(), Some(token.clone()), None).await;
    assert_eq!(status, 204);
    let id = made["client_id"].as_str().unwrap();
    assert!(app.state.store.client_by_id(id).await.unwrap().is_none());
    assert_eq!(call(reqwest::Method::GET, uri, Some(token), None).await.0, 401);
    let audit = app.state.store.list_audit(0, Some("client.delete"), 10).await.unwrap();
    assert_eq!(audit.len(), 1);
});

both!(the_default_asks_for_an_initial_access_token_and_off_means_no_endpoint, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let discovery: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert_eq!(discovery["registration_endpoint"], format!("{}/oauth/register", app.base));
    let (status, body) = register_client(&app, &agent(), None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_request")), "{body}");
    assert_eq!(register_client(&app, &agent(), Some("made-up")).await.0, 401);

    let store = &app.state.store;
    let create = postern_server::client_registration::create_token;
    let (once, token) = create(store, "one agent", 3600, Some(1), NOW).await.unwrap();
    let mut mistaken = agent();
    mistaken["grant_types"] = json!(["client_credentials"]);
    let (status, body) = register_client(&app, &mistaken, Some(token.expose())).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_client_metadata")));
    assert_eq!(register_client(&app, &agent(), Some(token.expose())).await.0, 201, "the mistake cost no use");
    let (status, body) = register_client(&app, &agent(), Some(token.expose())).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_token")), "used up: {body}");
    assert!(store.registration_tokens().await.unwrap().iter().any(|t| t.id == once.id && t.uses_left == Some(0)));

    let (many, token) = create(store, "team", 3600, None, NOW).await.unwrap();
    for _ in 0..2 {
        assert_eq!(register_client(&app, &agent(), Some(token.expose())).await.0, 201);
    }
    assert!(store.revoke_registration_token(&many.id, NOW).await.unwrap());
    assert_eq!(register_client(&app, &agent(), Some(token.expose())).await.0, 401, "revoked");
    let (_, short) = create(store, "short", 60, None, NOW).await.unwrap();
    app.clock.advance(61);
    assert_eq!(register_client(&app, &agent(), Some(short.expose())).await.0, 401, "expired");
    assert!(create(store, "never", 60, Some(0), NOW).await.is_err());

    let Some((off, _db)) = spawn_configured(kind, |c| c.registration.dynamic = DynamicRegistration::Off).await else {
        return;
    };
    let discovery: Value = off.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert!(discovery.get("registration_endpoint").is_none(), "{discovery}");
    assert_eq!(register_client(&off, &agent(), None).await.0, 404);
});

both!(registrations_are_limited_per_address, |kind| async move {
    let Some((app, _db)) = spawn_configured(kind, |c| {
        open(c);
        c.limits.client_registrations_per_address = 2;
    })
    .await
    else {
        return;
    };
    for _ in 0..2 {
        assert_eq!(register_client(&app, &agent(), None).await.0, 201);
    }
    let r = app.http.post(app.url("/oauth/register")).json(&agent()).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    app.clock.advance(61);
    assert_eq!(register_client(&app, &agent(), None).await.0, 201, "a minute later");
});

both!(resources_open_to_self_registered_clients_and_their_scopes, |kind| async move {
    let Some((app, _db)) = spawn_configured(kind, open).await else { return };
    let store = &app.state.store;
    add_resource(&app, API, "Notes MCP server", &["notes:read"]).await;
    let closed = "https://internal.example.org";
    add_resource(&app, closed, "Internal API", &["internal"]).await;
    // The resource's scope is not available until the resource is open to such clients.
    let mut with_scope = agent();
    with_scope["scope"] = json!("openid notes:read");
    assert_eq!(register_client(&app, &with_scope, None).await.1["error"], "invalid_client_metadata");
    store.set_resource_open(API, true, NOW).await.unwrap();
    let (status, made) = register_client(&app, &with_scope, None).await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["scope"], "openid notes:read");
    let client = store.client_by_id(made["client_id"].as_str().unwrap()).await.unwrap().unwrap();
    assert_eq!(client.resources, [API], "the open resource, not the closed one");
    let mut internal = agent();
    internal["scope"] = json!("internal");
    assert_eq!(register_client(&app, &internal, None).await.1["error"], "invalid_client_metadata");
});

both!(clients_left_unused_are_deleted_by_maintenance, |kind| async move {
    let Some((app, _db)) = spawn_configured(kind, open).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let (_, idle) = register_client(&app, &agent(), None).await;
    let (_, busy) = register_client(&app, &agent(), None).await;
    let unused = app.state.config.registration.unused_client_secs;
    // The busy one gets a token late on; the idle one never does.
    app.clock.advance(unused - 10);
    let rp = Rp {
        id: busy["client_id"].as_str().unwrap().to_owned(),
        secret: None,
        redirect: "http://localhost:1/callback".into(),
    };
    let mut v = visitor(&app);
    let arrival = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), "ann@example.org", "correct horse").await;
    assert_eq!(exchange(&app, &rp, &arrival["code"], VERIFIER).await.status(), 200);
    app.clock.advance(20);
    postern_server::maintenance::run_once(&app.state).await;
    let store = &app.state.store;
    assert!(store.client_by_id(idle["client_id"].as_str().unwrap()).await.unwrap().is_none(), "unused: deleted");
    assert!(store.client_by_id(&rp.id).await.unwrap().is_some(), "used within the time: kept");
    let expired = store.list_audit(0, Some("client.expired"), 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    // Clients an administrator registered are never deleted for being unused.
    let (admin_made, _) = register(
        &app,
        postern_core::client::ClientType::Public,
        &[postern_core::client::GrantType::DeviceCode],
        "",
        postern_core::client::AccessTokenFormat::Jwt,
    )
    .await;
    app.clock.advance(unused * 2);
    postern_server::maintenance::run_once(&app.state).await;
    assert!(store.client_by_id(&admin_made).await.unwrap().is_some());
    assert!(store.client_by_id(&rp.id).await.unwrap().is_none(), "and the busy one, unused since");
});

#[tokio::test]
async fn the_openidconnect_crate_registers_a_client_and_signs_in_with_it() {
    use openidconnect::core::{
        CoreClient, CoreClientAuthMethod, CoreClientRegistrationRequest, CoreGrantType, CoreProviderMetadata,
    };
    use openidconnect::{
        AuthorizationCode, ClientName, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, TokenResponse,
    };
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let mut config = test_config(&db);
    open(&mut config);
    let app = start_at(config, postern_core::system::Clock::now(&postern_core::system::SystemClock)).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http).await.unwrap();
    let endpoint = metadata.registration_endpoint().expect("discovery names the registration endpoint").clone();
    let redirect = RedirectUrl::new("http://127.0.0.1/callback".into()).unwrap();
    let registered = CoreClientRegistrationRequest::new(vec![redirect.clone()], Default::default())
        .set_client_name(Some(vec![(None, ClientName::new("Library client".into()))].into_iter().collect()))
        .set_grant_types(Some(vec![CoreGrantType::AuthorizationCode]))
        .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::ClientSecretBasic))
        .register_async(&endpoint, &http)
        .await
        .expect("registered");
    let client = CoreClient::from_provider_metadata(
        metadata,
        registered.client_id().clone(),
        registered.client_secret().cloned(),
    )
    .set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            openidconnect::core::CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let mut v = visitor(&app);
    let arrival = sign_in_and_allow(&mut v, url.as_str(), "ann@example.org", "correct horse").await;
    assert!(arrival.steps.contains(&Step::Allowed), "a consent page: {:?}", arrival.steps);
    let tokens = client
        .exchange_code(AuthorizationCode::new(arrival["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let claims = tokens.id_token().unwrap().claims(&client.id_token_verifier(), &nonce).unwrap();
    assert_eq!(claims.issuer().as_str(), app.base);
}

#[tokio::test]
async fn an_agent_that_registered_itself_gets_its_code_at_a_localhost_callback_in_a_browser() {
    use crate::pages::{code_request, sign_in};
    let Some(browser) = postern_testkit::browser::Browser::start().await else { return };
    let Some((app, _db)) = spawn_configured(postern_testkit::Kind::Sqlite, open).await else { return };
    let client = postern_testkit::client_app::ClientApp::start().await;
    create_user(&app, "ann@example.org", "correct horse").await;
    let (status, made) = register_client(&app, &agent(), None).await;
    assert_eq!(status, 201, "{made}");
    // The agent listens on a loopback port it picked, under the name localhost: another
    // origin than Postern's.
    let port = url::Url::parse(&client.redirect_uri()).unwrap().port().unwrap();
    let rp = Rp {
        id: made["client_id"].as_str().unwrap().to_owned(),
        secret: None,
        redirect: format!("http://localhost:{port}/callback"),
    };
    browser.goto(&code_request(&app, &rp, "s-agent", "")).await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    let consent = browser.wait_for_text("registered itself").await;
    assert!(consent.contains("Research agent registered itself with this server"), "{consent}");
    assert!(consent.contains(&format!("your browser goes to http://localhost:{port}/callback")), "{consent}");
    browser.press("Allow").await;
    browser.wait_for_text("Application: code received").await;
    let answer = client.wait_for("/callback").await;
    assert_eq!(answer.params["state"], "s-agent");
    assert_eq!(exchange(&app, &rp, &answer.params["code"], VERIFIER).await.status(), 200);
    browser.quit().await;
}
