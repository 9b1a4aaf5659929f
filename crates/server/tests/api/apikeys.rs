//! API keys against a running server: introspection answers for them (RFC 7662), with expiry,
//! revocation seen within the cache time, offline format checks, last use written off the
//! request path (at shutdown at the latest), and the key never stored in clear.

use crate::helpers::*;
use crate::keys::{contains, database_bytes, hex};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_server::apikeys::{self, Expiry, KeyRequest};
use postern_store::{KeyOwner, PoolOptions, Store};
use serde_json::Value;

async fn introspect(app: &TestApp, rs: &(String, String), token: &str) -> Value {
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth(&rs.0, Some(&rs.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

both!(introspection_answers_for_api_keys, |kind| async move {
    let Some((app, db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    add_scope(&app, "project", "Projects", true).await;
    // The API the key's scope belongs to: its resource server may introspect the key.
    let rs = add_resource(&app, "https://api.example.org", "Projects API", &["project"]).await;
    let user = create_user(&app, "dev@example.org", "correct horse").await;
    entitle(&app, &user, &["project:*"]).await;
    let scopes = ["project:*".to_owned()];
    let request = KeyRequest {
        owner: KeyOwner::User(&user),
        name: "laptop",
        scopes: &scopes,
        expiry: Expiry::After(3600),
        within: None,
    };
    let (key, record) = apikeys::create(store, &app.state.config.api_keys, &request, NOW).await.unwrap();

    let info = introspect(&app, &rs, key.expose()).await;
    assert_eq!(info["active"], true);
    assert_eq!(
        (info["sub"].as_str(), info["scope"].as_str(), info["key_kind"].as_str(), info["exp"].as_i64()),
        (Some(user.as_str()), Some("project:*"), Some("personal"), Some(NOW + 3600))
    );
    assert!(info.get("client_id").is_none());

    // Offline checks: a typo fails the checksum; a well-formed unknown key is simply unknown.
    let mut typo = key.expose().to_owned().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let other = postern_core::apikey::NewApiKey::generate(
        postern_core::apikey::KeyKind::Personal,
        &mut postern_core::system::os_rng(),
    );
    for inactive in [typo.as_str(), other.expose(), "pst_u_short"] {
        assert_eq!(introspect(&app, &rs, inactive).await, serde_json::json!({ "active": false }), "{inactive}");
    }

    // Revoked elsewhere (another node, the CLI): seen once the cache time has passed.
    app.clock.advance(10);
    assert!(store.revoke_api_key(&record.id, NOW + 10).await.unwrap());
    app.clock.advance(app.state.config.api_keys.cache_secs);
    assert_eq!(introspect(&app, &rs, key.expose()).await["active"], false, "revoked");

    // Expired.
    let (short, _) = apikeys::create(
        store,
        &app.state.config.api_keys,
        &KeyRequest { expiry: Expiry::After(60), ..request.clone() },
        app.state.now(),
    )
    .await
    .unwrap();
    assert_eq!(introspect(&app, &rs, short.expose()).await["active"], true);
    // Used again before the last uses are written: the later use is the one kept.
    app.clock.advance(10);
    assert_eq!(introspect(&app, &rs, short.expose()).await["active"], true);
    let used_at = app.state.now();
    app.clock.advance(50);
    assert_eq!(introspect(&app, &rs, short.expose()).await["active"], false, "expired");

    let bytes = database_bytes(store, &db.url, db.dir.path()).await;
    for k in [key.expose(), short.expose()] {
        assert!(!contains(&bytes, k.as_bytes()) && !contains(&bytes, hex(k.as_bytes()).as_bytes()), "key in clear");
    }
    // Using a key wrote nothing yet; stopping the server writes the last uses.
    let short_id = store.api_key_by_hash(&short.hash()).await.unwrap().unwrap().id;
    assert_eq!(store.api_key(&short_id).await.unwrap().unwrap().last_used_at, None);
    app.stop().await.unwrap();
    let reopened = Store::connect(&db.url, PoolOptions::default()).await.unwrap();
    assert_eq!(reopened.api_key(&short_id).await.unwrap().unwrap().last_used_at, Some(used_at));
    reopened.close().await;
});

both!(the_keys_api_takes_sessions_and_user_tokens_never_keys, |kind| async move {
    use crate::helpers::{Rp, VERIFIER, exchange, sign_in_and_allow};
    let Some((app, _db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    add_scope(&app, "deploy", "Deploy", false).await;
    let dev = create_user(&app, "dev@example.org", "correct horse").await;
    entitle(&app, &dev, &["deploy"]).await;
    let api = app.url("/api/keys");

    // Nobody: 401 with a Bearer challenge. A key in the query string is not a credential.
    for url in [api.clone(), format!("{api}?api_key=pst_u_x")] {
        let r = app.http.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    }

    // Signed in: create (JSON, our origin), see it listed without the key.
    let mut v = visitor(&app);
    v.sign_in("dev@example.org", "correct horse").await;
    let create = |body: Value, origin: &str| {
        app.http.post(&api).header("cookie", v.cookie_header()).header("origin", origin.to_owned()).json(&body)
    };
    let r = create(serde_json::json!({ "name": "ci", "scopes": ["deploy"], "expires_in": 3600 }), &v.origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["scopes"], serde_json::json!(["deploy"]));
    let r =
        create(serde_json::json!({ "name": "x", "scopes": ["deploy"] }), "https://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403, "cross-origin");
    let r = create(serde_json::json!({ "name": "x", "scopes": ["admin"] }), &v.origin).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("not registered"));
    let listed: Value =
        app.http.get(&api).header("cookie", v.cookie_header()).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    assert!(listed["keys"][0].get("key").is_none() && !listed.to_string().contains(&key));

    // The key itself, as Bearer or X-API-Key: 403, whatever it may otherwise do.
    let by_key = [
        app.http.get(&api).bearer_auth(&key),
        app.http.post(&api).header("x-api-key", &key).json(&serde_json::json!({ "name": "y", "scopes": ["deploy"] })),
        app.http.delete(format!("{api}/{id}")).bearer_auth(&key),
    ];
    for request in by_key {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    }

    // A user's access token with postern:keys may; without it, 403.
    let (client_id, secret) = register(
        &app,
        ClientType::Confidential,
        &[GrantType::AuthorizationCode],
        "openid postern:keys",
        AccessTokenFormat::Jwt,
    )
    .await;
    let rp = Rp { id: client_id, secret, redirect: "https://app.example.org/cb".into() };
    let mut tokens = Vec::new();
    for scope in ["openid postern:keys", "openid"] {
        let mut browser = visitor(&app);
        let code =
            sign_in_and_allow(&mut browser, &crate::refresh::url(&rp, scope), "dev@example.org", "correct horse").await
                ["code"]
                .clone();
        let t: Value = exchange(&app, &rp, &code, VERIFIER).await.json().await.unwrap();
        tokens.push(t["access_token"].as_str().unwrap().to_owned());
    }
    let r = app.http.get(&api).bearer_auth(&tokens[0]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["keys"][0]["id"], id.as_str());
    let r = app.http.get(&api).bearer_auth(&tokens[1]).send().await.unwrap();
    assert_eq!(r.status(), 403, "no postern:keys scope");

    // Revoked through the API: the key is refused at once on this node.
    let r = app.http.delete(format!("{api}/{id}")).bearer_auth(&tokens[0]).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = app.http.get(&api).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 401, "revoked");
    assert_eq!(app.http.delete(format!("{api}/nope")).bearer_auth(&tokens[0]).send().await.unwrap().status(), 404);
    let events = store.list_audit(0, None, 100).await.unwrap();
    for action in ["api_key.created", "api_key.revoked"] {
        assert!(events.iter().any(|e| e.action == action), "{action}");
    }
});

/// A personal key with the `deploy` scope, for a new user entitled to it.
async fn deploy_key(app: &TestApp) -> (postern_core::apikey::NewApiKey, postern_store::ApiKeyRecord) {
    add_scope(app, "deploy", "Deploy", false).await;
    let user = create_user(app, "dev@example.org", "correct horse").await;
    entitle(app, &user, &["deploy"]).await;
    let scopes = ["deploy".to_owned()];
    let request =
        KeyRequest { owner: KeyOwner::User(&user), name: "ci", scopes: &scopes, expiry: Expiry::Default, within: None };
    apikeys::create(&app.state.store, &app.state.config.api_keys, &request, NOW).await.unwrap()
}

both!(a_secret_scanner_revokes_leaked_keys, |kind| async move {
    let Some(db) = postern_testkit::fresh(kind).await else { return };
    let mut config = test_config(&db);
    config.api_keys.scanner_token = Some(postern_server::config::Secret::new("scanner-credential"));
    let app = start(config).await.unwrap();
    let store = &app.state.store;
    let (key, record) = deploy_key(&app).await;
    let unknown = postern_core::apikey::NewApiKey::generate(
        postern_core::apikey::KeyKind::Personal,
        &mut postern_core::system::os_rng(),
    );
    let url = app.url("/api/keys/revoke-leaked");
    let reports = serde_json::json!([
        { "token": key.expose(), "type": "postern_api_key", "url": "https://github.com/x/y/blob/main/.env" },
        { "token": unknown.expose(), "type": "postern_api_key", "url": "https://example.org" },
        "not-a-key",
    ]);
    for wrong in [None, Some("guess")] {
        let mut r = app.http.post(&url).json(&reports);
        if let Some(w) = wrong {
            r = r.bearer_auth(w);
        }
        assert_eq!(r.send().await.unwrap().status(), 401, "scanner credential {wrong:?}");
    }
    assert!(store.api_key(&record.id).await.unwrap().unwrap().revoked_at.is_none(), "nothing revoked yet");
    let r = app.http.post(&url).bearer_auth("scanner-credential").json(&reports).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), serde_json::json!({ "received": 3 }), "no word on which existed");
    assert_eq!(store.api_key(&record.id).await.unwrap().unwrap().revoked_at, Some(NOW));
    let r = app.http.get(app.url("/api/keys")).header("x-api-key", key.expose()).send().await.unwrap();
    assert_eq!(r.status(), 401, "the leaked key is dead at once");
    let events = store.list_audit(0, Some("api_key.revoked_leaked"), 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.as_deref(), Some(record.id.as_str()));
    let r = app.http.post(&url).bearer_auth("scanner-credential").body("{oops").send().await.unwrap();
    assert_eq!(r.status(), 400);
});

/// A JSON call with the visitor's session, from our own origin.
async fn session_json(v: &Visitor, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut r = v.http.request(method, v.url(path)).header("cookie", v.cookie_header()).header("origin", &v.origin);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

both!(owners_manage_their_service_accounts_and_keys, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    add_scope(&app, "deploy", "Deploy", false).await;
    let ann_id = create_user(&app, "ann@example.org", "correct horse").await;
    entitle(&app, &ann_id, &["deploy"]).await;
    create_user(&app, "bob@example.org", "battery staple").await;
    let mut ann = visitor(&app);
    ann.sign_in("ann@example.org", "correct horse").await;
    let mut bob = visitor(&app);
    bob.sign_in("bob@example.org", "battery staple").await;

    // Ann creates a service account and a key for it over the API.
    let body = serde_json::json!({ "name": "ci-runner", "description": "Deploys from CI" });
    let r = session_json(&ann, reqwest::Method::POST, "/api/service-accounts", Some(body.clone())).await;
    assert_eq!(r.status(), 201);
    let r = session_json(&ann, reqwest::Method::POST, "/api/service-accounts", Some(body)).await;
    assert_eq!(r.status(), 400, "names are unique");
    let bad = serde_json::json!({ "name": "has space" });
    assert_eq!(session_json(&ann, reqwest::Method::POST, "/api/service-accounts", Some(bad)).await.status(), 400);
    let key_body = serde_json::json!({ "name": "deployer", "scopes": ["deploy"], "service_account": "ci-runner" });
    let r = session_json(&ann, reqwest::Method::POST, "/api/keys", Some(key_body.clone())).await;
    assert_eq!(r.status(), 400, "the service account is not entitled yet");
    assert!(r.text().await.unwrap().contains("the service account is not entitled to the scope"));
    // Ann entitles it, within her own entitlements.
    let grants = "/api/service-accounts/ci-runner/scopes";
    add_scope(&app, "admin", "Administration", false).await;
    let r = session_json(&ann, reqwest::Method::POST, grants, Some(serde_json::json!({ "scopes": ["admin"] }))).await;
    assert_eq!(r.status(), 400, "Ann is not entitled to admin herself");
    let r = session_json(&ann, reqwest::Method::POST, grants, Some(serde_json::json!({ "scopes": ["deploy"] }))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["scopes"], serde_json::json!(["deploy"]));
    let r = session_json(&ann, reqwest::Method::POST, "/api/keys", Some(key_body.clone())).await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert!(created["key"].as_str().unwrap().starts_with("pst_s_"));
    assert_eq!(created["kind"], "service_account");
    let key_id = created["id"].as_str().unwrap().to_owned();

    // Bob sees none of it and can touch none of it.
    let listed: Value =
        session_json(&bob, reqwest::Method::GET, "/api/service-accounts", None).await.json().await.unwrap();
    assert_eq!(listed["service_accounts"], serde_json::json!([]));
    let r = session_json(&bob, reqwest::Method::POST, "/api/keys", Some(key_body)).await;
    assert_eq!(r.status(), 404, "not Bob's service account");
    let r = session_json(&bob, reqwest::Method::DELETE, &format!("/api/keys/{key_id}"), None).await;
    assert_eq!(r.status(), 404);
    assert!(store.api_key(&key_id).await.unwrap().unwrap().revoked_at.is_none());
    // Names are scoped to their owner: Bob's own "ci-runner" is another account, holding nothing
    // of Ann's, and creating it tells him nothing about hers.
    let body = serde_json::json!({ "name": "ci-runner" });
    let r = session_json(&bob, reqwest::Method::POST, "/api/service-accounts", Some(body)).await;
    assert_eq!(r.status(), 201);
    let held: Value = session_json(&bob, reqwest::Method::GET, grants, None).await.json().await.unwrap();
    assert_eq!(held["scopes"], serde_json::json!([]));
    assert_eq!(store.service_accounts_named("ci-runner").await.unwrap().len(), 2);
    let held: Value = session_json(&ann, reqwest::Method::GET, grants, None).await.json().await.unwrap();
    assert_eq!(held["scopes"], serde_json::json!(["deploy"]));

    // Ann lists it with her keys and revokes it.
    let listed: Value = session_json(&ann, reqwest::Method::GET, "/api/keys", None).await.json().await.unwrap();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 1);
    let r = session_json(&ann, reqwest::Method::DELETE, &format!("/api/keys/{key_id}"), None).await;
    assert_eq!(r.status(), 204);
    assert!(store.api_key(&key_id).await.unwrap().unwrap().revoked_at.is_some());
    let events = store.list_audit(0, Some("service_account.created"), 10).await.unwrap();
    assert_eq!(events.len(), 2);
});

both!(the_account_page_creates_shows_once_and_revokes, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    add_scope(&app, "deploy", "Deploy", false).await;
    let ann_id = create_user(&app, "ann@example.org", "correct horse").await;
    entitle(&app, &ann_id, &["deploy"]).await;
    let mut ann = visitor(&app);
    ann.sign_in("ann@example.org", "correct horse").await;
    let page = ann.get("/account").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");

    // Without the CSRF token, or from another origin: refused, nothing created.
    let r = ann.post_form("/account/keys", &[("name", "laptop"), ("scope", "deploy")]).await;
    assert_eq!(r.status(), 403);
    ann.origin = "https://evil.example".into();
    let r = ann.post_form("/account/keys", &[("csrf", &csrf), ("name", "laptop"), ("scope", "deploy")]).await;
    assert_eq!(r.status(), 403);
    ann.origin = app.state.issuer_origin();
    assert!(store.api_keys(None).await.unwrap().is_empty());

    // An unregistered scope is explained on the page.
    let r = ann.post_form("/account/keys", &[("csrf", &csrf), ("name", "x"), ("more_scopes", "admin")]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("is not registered"));

    // A service account from the page, then a key for it, shown once.
    let r =
        ann.post_form("/account/service-accounts", &[("csrf", &csrf), ("name", "nightly"), ("description", "")]).await;
    assert_eq!(r.status(), 201);
    let sa = store.service_accounts_named("nightly").await.unwrap().remove(0);
    entitle(&app, &format!("sa:{}", sa.id), &["deploy"]).await;
    let fields =
        [("csrf", csrf.as_str()), ("name", "backup"), ("owner", &sa.id), ("scope", "deploy"), ("expires", "30")];
    let r = ann.post_form("/account/keys", &fields).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    let start = html.find("pst_s_").expect("the key is shown");
    let key = html[start..].split('"').next().unwrap().to_owned();
    let record = app.state.node.api_keys.verify(store, &key, None, NOW).await.unwrap().unwrap();
    assert_eq!(
        (record.service_account_id.as_deref(), record.expires_at),
        (Some(sa.id.as_str()), Some(NOW + 30 * 86_400))
    );
    let again = ann.get("/account").await.text().await.unwrap();
    assert!(!again.contains(&key) && again.contains("backup"));
    let r = ann.post_form(&format!("/account/keys/{}/revoke", record.id), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 200);
    assert!(app.state.node.api_keys.verify(store, &key, None, NOW).await.unwrap().is_none());
});

both!(key_lifetimes_are_capped_and_any_stored_time_is_shown, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    add_scope(&app, "deploy", "Deploy", false).await;
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    entitle(&app, &ann, &["deploy"]).await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    for expires_in in [i64::MAX, 400 * 86_400] {
        let body = serde_json::json!({ "name": "k", "scopes": ["deploy"], "expires_in": expires_in });
        let r = session_json(&v, reqwest::Method::POST, "/api/keys", Some(body)).await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("at most 366 days"));
    }
    let body = serde_json::json!({ "name": "k", "scopes": ["deploy"], "expires_in": 366 * 86_400 });
    assert_eq!(session_json(&v, reqwest::Method::POST, "/api/keys", Some(body)).await.status(), 201);

    // A key stored with an expiry past the year 9999 (by an older version, say) is still shown.
    let scopes = [postern_core::scope::Scope::parse("deploy").unwrap()];
    let row = postern_store::NewApiKeyRow {
        id: "far",
        hash: postern_core::secret::TokenHash::of("pst_u_far"),
        public_prefix: "pst_u_far0000",
        owner: KeyOwner::User(&ann),
        name: "far future",
        scopes: &scopes,
        audience: "",
        created_at: NOW,
        expires_at: Some(i64::MAX / 2),
    };
    app.state.store.create_api_key(&row).await.unwrap();
    let r = v.get("/account").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("far future"));
});

/// Each runtime thread keeps its own copies of the keys it verified. A revocation made on this
/// node from any thread is in force at once on every thread, and a key used in a new second is
/// recorded again even though the same second is not.
#[tokio::test]
async fn thread_copies_of_keys_follow_revocations_and_new_uses() {
    // Only this test writes the last uses.
    let no_flush = |c: &mut postern_server::config::Config| c.api_keys.last_used_flush_secs = 3600;
    let Some((app, _db)) = spawn_configured(postern_testkit::Kind::Sqlite, no_flush).await else { return };
    let store = &app.state.store;
    let (key, record) = deploy_key(&app).await;
    let verifier = &app.state.node.api_keys;
    let verify = |at: i64| verifier.verify(store, key.expose(), Some("192.0.2.7"), at);

    // Read from the database, then from the shared cache (copied for this thread), then from
    // this thread's copy.
    for _ in 0..3 {
        assert!(verify(NOW).await.unwrap().is_some());
    }
    assert_eq!(verifier.flush(store).await.unwrap(), 1);
    assert_eq!(store.api_key(&record.id).await.unwrap().unwrap().last_used_at, Some(NOW));
    // The same second again: nothing new to write. The next second is written.
    assert!(verify(NOW).await.unwrap().is_some());
    assert_eq!(verifier.flush(store).await.unwrap(), 0, "the same use is not written twice");
    assert!(verify(NOW + 1).await.unwrap().is_some());
    assert_eq!(verifier.flush(store).await.unwrap(), 1);
    assert_eq!(store.api_key(&record.id).await.unwrap().unwrap().last_used_at, Some(NOW + 1));

    // Revoked in the database and forgotten from another thread: this thread's copy goes too.
    assert!(store.revoke_api_key(&record.id, NOW + 1).await.unwrap());
    assert!(verify(NOW + 1).await.unwrap().is_some(), "still cached: no revocation on this node yet");
    let elsewhere = app.state.clone();
    std::thread::spawn(move || elsewhere.node.api_keys.forget_all()).join().unwrap();
    assert!(verify(NOW + 1).await.unwrap().is_none(), "revoked at once");
}
