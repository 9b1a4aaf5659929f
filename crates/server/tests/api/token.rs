//! The token endpoint with client credentials, introspection and revocation.

use crate::helpers::*;
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_core::token::AccessClaims;
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";

async fn post(app: &TestApp, path: &str, body: &str, basic: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = app.http.post(app.url(path)).header("content-type", FORM).body(body.to_owned());
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    req.send().await.unwrap()
}

async fn service(app: &TestApp, format: AccessTokenFormat) -> (String, String) {
    let (id, secret) =
        register(app, ClientType::Confidential, &[GrantType::ClientCredentials], "read write", format).await;
    (id, secret.unwrap())
}

/// Verifies a JWT access token with the keys the server publishes.
async fn verify_with_jwks(app: &TestApp, token: &str) -> AccessClaims {
    verify_with_jwks_as(app, token, "EdDSA").await
}

both!(client_credentials_issue_a_verifiable_jwt_without_storing_it, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let (id, secret) = service(&app, AccessTokenFormat::Jwt).await;
    let r = post(&app, "/oauth/token", "grant_type=client_credentials&scope=read", Some((&id, &secret))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_i64(), body["scope"].as_str()),
        (Some("Bearer"), Some(900), Some("read"))
    );
    assert!(body.get("refresh_token").is_none(), "no refresh token for client credentials");
    let claims = verify_with_jwks(&app, body["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (claims.iss.as_str(), claims.sub.as_str(), claims.client_id.as_str()),
        (app.base.as_str(), id.as_str(), id.as_str())
    );
    assert_eq!(claims.aud.0, vec![app.base.to_string()]);
    assert_eq!((claims.scope.as_str(), claims.exp - claims.iat, claims.iat), ("read", 900, NOW));
    // A JWT access token is not written anywhere.
    let hash = postern_core::secret::TokenHash::of(body["access_token"].as_str().unwrap());
    assert!(app.state.store.access_token(&hash, NOW).await.unwrap().is_none());

    // client_secret_post, no scope (all allowed), and RFC 8707 resources the client may use as
    // audiences.
    for r in ["https://api.example.org", "https://b.example.org"] {
        postern_server::resources::add(&app.state.store, r, "API", &[], NOW).await.unwrap();
    }
    let both = ["https://api.example.org".to_owned(), "https://b.example.org".to_owned()];
    postern_server::resources::allow(&app.state.store, &id, &both).await.unwrap();
    app.clock.advance(5); // past the client cache
    let body = format!(
        "grant_type=client_credentials&client_id={id}&client_secret={secret}&resource=https%3A%2F%2Fapi.example.org&resource=https%3A%2F%2Fb.example.org"
    );
    let r: Value = post(&app, "/oauth/token", &body, None).await.json().await.unwrap();
    let claims = verify_with_jwks(&app, r["access_token"].as_str().unwrap()).await;
    assert_eq!(claims.scope, "read write");
    assert_eq!(claims.aud.0, ["https://api.example.org", "https://b.example.org"]);
});

both!(a_client_may_have_rs256_or_es256_access_tokens_for_resource_servers_without_eddsa, |kind| async move {
    use postern_core::signing::Algorithm;
    let Some((app, _db)) = spawn(kind).await else { return };
    let guard = postern_guard::Guard::builder(app.state.issuer.to_string(), app.state.issuer.to_string())
        .clock(app.clock.clone())
        .build()
        .await
        .unwrap();
    for alg in [Algorithm::RS256, Algorithm::ES256] {
        let (id, secret) = service(&app, AccessTokenFormat::Jwt).await;
        let mut c = app.state.store.client_by_id(&id).await.unwrap().unwrap().settings();
        c.policy.access_token_alg = alg;
        app.state.store.update_client(&id, &c, NOW).await.unwrap();
        let r: Value = post(&app, "/oauth/token", "grant_type=client_credentials", Some((&id, &secret)))
            .await
            .json()
            .await
            .unwrap();
        let token = r["access_token"].as_str().unwrap();
        // Verified with the published key of that algorithm, typ at+jwt.
        let claims = verify_with_jwks_as(&app, token, alg.as_str()).await;
        assert_eq!(claims.client_id, id);
        // Recognised like any access token: introspection and the guard (whose JWKS, fetched
        // at start, has every algorithm's key).
        let info: Value = post(&app, "/oauth/introspect", &format!("token={token}"), Some((&id, &secret)))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(info["active"], true, "{alg}: {info}");
        assert_eq!(guard.verify(token).await.unwrap().client_id.as_deref(), Some(id.as_str()), "{alg}");
    }
    assert_eq!(guard.stats().jwks_fetches, 1);
});

both!(opaque_tokens_are_stored_hashed_and_introspected, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let (id, secret) = service(&app, AccessTokenFormat::Opaque).await;
    let r: Value =
        post(&app, "/oauth/token", "grant_type=client_credentials", Some((&id, &secret))).await.json().await.unwrap();
    let token = r["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), postern_core::secret::ORDERED_LEN, "the time, then 256 random bits");
    assert!(!postern_core::jwt::looks_like_jwt(&token) || token.split('.').count() != 3);
    let stored = app.state.store.access_token(&postern_core::secret::stored_hash(&token), NOW).await.unwrap().unwrap();
    assert_eq!((stored.subject.as_str(), stored.expires_at), (id.as_str(), NOW + 900));

    // Described to the client holding it; to another client (not a resource server it is
    // for), not at all.
    let (rs, rs_secret) = service(&app, AccessTokenFormat::Jwt).await;
    let info: Value =
        post(&app, "/oauth/introspect", &format!("token={token}"), Some((&rs, &rs_secret))).await.json().await.unwrap();
    assert_eq!(info, serde_json::json!({"active": false}));
    let info: Value =
        post(&app, "/oauth/introspect", &format!("token={token}"), Some((&id, &secret))).await.json().await.unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(
        (info["client_id"].as_str(), info["sub"].as_str(), info["scope"].as_str()),
        (Some(id.as_str()), Some(id.as_str()), Some("read write"))
    );
    assert_eq!(info["exp"].as_i64(), Some(NOW + 900));

    // Revoked by its client: gone.
    let r =
        post(&app, "/oauth/revoke", &format!("token={token}&token_type_hint=access_token"), Some((&id, &secret))).await;
    assert_eq!(r.status(), 200);
    let info: Value =
        post(&app, "/oauth/introspect", &format!("token={token}"), Some((&id, &secret))).await.json().await.unwrap();
    assert_eq!(info, serde_json::json!({"active": false}));
});

both!(introspection_and_revocation_of_jwt_access_tokens, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let (id, secret) = service(&app, AccessTokenFormat::Jwt).await;
    let (rs, rs_secret) = service(&app, AccessTokenFormat::Jwt).await;
    let issue = || async {
        let r: Value = post(&app, "/oauth/token", "grant_type=client_credentials", Some((&id, &secret)))
            .await
            .json()
            .await
            .unwrap();
        r["access_token"].as_str().unwrap().to_owned()
    };
    let introspect = |token: String| {
        let app = &app;
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            post(app, "/oauth/introspect", &format!("token={token}"), Some((&id, &secret)))
                .await
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let token = issue().await;
    let info = introspect(token.clone()).await;
    assert_eq!((info["active"].as_bool(), info["token_type"].as_str()), (Some(true), Some("Bearer")));
    assert_eq!(info["iss"].as_str(), Some(app.base.as_str()));
    assert!(info["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // Another client cannot see it, nor revoke it (200, nothing happens); its own client can.
    let seen: Value =
        post(&app, "/oauth/introspect", &format!("token={token}"), Some((&rs, &rs_secret))).await.json().await.unwrap();
    assert_eq!(seen, serde_json::json!({"active": false}));
    assert_eq!(post(&app, "/oauth/revoke", &format!("token={token}"), Some((&rs, &rs_secret))).await.status(), 200);
    assert_eq!(introspect(token.clone()).await["active"], true);
    assert_eq!(post(&app, "/oauth/revoke", &format!("token={token}"), Some((&id, &secret))).await.status(), 200);
    assert_eq!(introspect(token.clone()).await, serde_json::json!({"active": false}));

    // Expiry, of a token whose signature this node has already checked (and remembers).
    let fresh = issue().await;
    assert_eq!(introspect(fresh.clone()).await["active"], true);
    // The same token with another signature is checked on its own, and refused.
    let (signed, signature) = fresh.rsplit_once('.').unwrap();
    let other = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{other}{}", &signature[1..]);
    assert_eq!(introspect(forged).await, serde_json::json!({"active": false}), "a changed signature");
    app.clock.advance(900);
    assert_eq!(introspect(fresh).await, serde_json::json!({"active": false}));

    // Not ours: a garbage string, a JWT-shaped forgery, an unknown opaque token.
    for bogus in ["garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "a.b.c", &"x".repeat(43), &"x".repeat(51)] {
        assert_eq!(introspect(bogus.to_owned()).await, serde_json::json!({"active": false}), "{bogus}");
        assert_eq!(post(&app, "/oauth/revoke", &format!("token={bogus}"), Some((&id, &secret))).await.status(), 200);
    }
});

/// Asserts an RFC 6749 §5.2 error: status, code, no-store, and WWW-Authenticate on 401.
async fn expect_error(r: reqwest::Response, status: u16, code: &str, context: &str) {
    assert_eq!(r.status().as_u16(), status, "{context}");
    assert_eq!(r.headers().get("cache-control").map(|v| v.to_str().unwrap()), Some("no-store"), "{context}");
    if status == 401 {
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"postern\"", "{context}");
    }
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], code, "{context}: {body}");
    assert!(body["error_description"].is_string(), "{context}");
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let (id, secret) = service(&app, AccessTokenFormat::Jwt).await;
    let (code_only, code_secret) =
        register(&app, ClientType::Confidential, &[GrantType::AuthorizationCode], "read", AccessTokenFormat::Jwt).await;
    let code_secret = code_secret.unwrap();
    let (public, _) =
        register(&app, ClientType::Public, &[GrantType::AuthorizationCode], "read", AccessTokenFormat::Jwt).await;
    let cc = "grant_type=client_credentials";
    let ok = Some((id.as_str(), secret.as_str()));
    // (body, Basic credentials, status, error code, what is wrong)
    type Case<'a> = (String, Option<(&'a str, &'a str)>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (cc.into(), None, 401, "invalid_client", "no client authentication"),
        (cc.into(), Some((id.as_str(), "wrong")), 401, "invalid_client", "wrong secret (Basic)"),
        (format!("{cc}&client_id={id}&client_secret=wrong"), None, 401, "invalid_client", "wrong secret (post)"),
        (format!("{cc}&client_id=nobody&client_secret=x"), None, 401, "invalid_client", "unknown client"),
        (format!("{cc}&client_id={id}"), None, 401, "invalid_client", "confidential client without its secret"),
        (
            format!("{cc}&client_id={public}&client_secret=x"),
            None,
            401,
            "invalid_client",
            "public client with a secret",
        ),
        (format!("{cc}&client_id={public}"), None, 400, "unauthorized_client", "public client, grant not allowed"),
        (cc.into(), Some((code_only.as_str(), code_secret.as_str())), 400, "unauthorized_client", "grant not allowed"),
        (format!("{cc}&client_secret={secret}"), ok, 400, "invalid_request", "two authentication methods"),
        ("scope=read".into(), ok, 400, "invalid_request", "missing grant_type"),
        (format!("{cc}&grant_type=client_credentials"), ok, 400, "invalid_request", "repeated grant_type"),
        ("grant_type=password&username=a&password=b".into(), ok, 400, "unsupported_grant_type", "password grant"),
        ("grant_type=implicit".into(), ok, 400, "unsupported_grant_type", "implicit"),
        ("grant_type=device_code".into(), ok, 400, "unsupported_grant_type", "short form is not the wire value"),
        (format!("{cc}&scope=admin"), ok, 400, "invalid_scope", "scope not allowed"),
        (format!("{cc}&scope=bad%22scope"), ok, 400, "invalid_scope", "malformed scope"),
        (
            format!("{cc}&resource=https%3A%2F%2Fapi.example.org%2F%23frag"),
            ok,
            400,
            "invalid_target",
            "resource with a fragment",
        ),
        (format!("{cc}&resource=relative%2Fpath"), ok, 400, "invalid_target", "relative resource"),
    ];
    for (body, basic, status, code, context) in cases {
        expect_error(post(&app, "/oauth/token", &body, basic).await, status, code, context).await;
    }
    let json = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    expect_error(json, 400, "invalid_request", "JSON body").await;
    let bad_header = app
        .http
        .post(app.url("/oauth/token"))
        .header("authorization", "Basic %%%")
        .header("content-type", FORM)
        .body(cc)
        .send()
        .await
        .unwrap();
    expect_error(bad_header, 401, "invalid_client", "malformed Basic header").await;
    assert_eq!(app.get("/oauth/token").await.status(), 405);
}

#[tokio::test]
async fn introspection_needs_a_confidential_client() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let (public, _) =
        register(&app, ClientType::Public, &[GrantType::AuthorizationCode], "", AccessTokenFormat::Jwt).await;
    expect_error(post(&app, "/oauth/introspect", "token=x", None).await, 401, "invalid_client", "anonymous").await;
    expect_error(
        post(&app, "/oauth/introspect", &format!("token=x&client_id={public}"), None).await,
        401,
        "invalid_client",
        "public client",
    )
    .await;
    let (rs, rs_secret) = service(&app, AccessTokenFormat::Jwt).await;
    expect_error(
        post(&app, "/oauth/introspect", "", Some((&rs, &rs_secret))).await,
        400,
        "invalid_request",
        "no token",
    )
    .await;
    expect_error(
        post(&app, "/oauth/revoke", "", Some((&rs, &rs_secret))).await,
        400,
        "invalid_request",
        "no token to revoke",
    )
    .await;
}

#[tokio::test]
async fn an_independent_oauth2_client_gets_and_uses_a_token() {
    use oauth2::{
        ClientId, ClientSecret, IntrospectionUrl, Scope, TokenIntrospectionResponse, TokenResponse, TokenUrl,
    };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let (id, secret) = service(&app, AccessTokenFormat::Jwt).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let client = oauth2::basic::BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret.clone()))
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(app.url("/oauth/introspect")).unwrap());
    let token =
        client.exchange_client_credentials().add_scope(Scope::new("write".into())).request_async(&http).await.unwrap();
    assert_eq!(
        token.scopes().map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["write".to_owned()])
    );
    assert_eq!(token.expires_in(), Some(std::time::Duration::from_secs(900)));
    let info = client.introspect(token.access_token()).request_async(&http).await.unwrap();
    assert!(info.active());
    assert_eq!(info.client_id().map(|c| c.to_string()), Some(id));
}

#[tokio::test]
async fn a_rotated_secret_takes_effect_within_the_client_cache_time() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let (id, old) = service(&app, AccessTokenFormat::Jwt).await;
    let body = "grant_type=client_credentials";
    assert_eq!(post(&app, "/oauth/token", body, Some((&id, &old))).await.status(), 200);
    let new = postern_core::secret::BearerSecret::generate(&mut postern_core::system::os_rng());
    app.state.store.set_client_secret(&id, &new.hash(), NOW).await.unwrap();
    assert_eq!(
        post(&app, "/oauth/token", body, Some((&id, &old))).await.status(),
        200,
        "cached for clients.cache_secs"
    );
    app.clock.advance(app.state.config.clients.cache_secs);
    assert_eq!(post(&app, "/oauth/token", body, Some((&id, &old))).await.status(), 401);
    assert_eq!(post(&app, "/oauth/token", body, Some((&id, new.expose()))).await.status(), 200);
}

#[tokio::test]
async fn a_revocation_on_one_node_reaches_the_others() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    // Nodes of one deployment share the issuer.
    let mut config = test_config(&db);
    config.issuer = Some("http://127.0.0.1:9".into());
    let a = start(config.clone()).await.unwrap();
    let b = start(config).await.unwrap();
    let (id, secret) = service(&a, AccessTokenFormat::Jwt).await;
    let issued: Value =
        post(&a, "/oauth/token", "grant_type=client_credentials", Some((&id, &secret))).await.json().await.unwrap();
    let token = issued["access_token"].as_str().unwrap();
    let introspect = |app: &TestApp, token: &str| {
        let body = format!("token={token}");
        let (id, secret) = (id.clone(), secret.clone());
        let req = app
            .http
            .post(app.url("/oauth/introspect"))
            .header("content-type", FORM)
            .basic_auth(id, Some(secret))
            .body(body);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap()["active"].as_bool().unwrap() }
    };
    assert!(introspect(&b, token).await);
    assert_eq!(post(&a, "/oauth/revoke", &format!("token={token}"), Some((&id, &secret))).await.status(), 200);
    assert!(!introspect(&a, token).await, "at once on the node that revoked it");
    assert!(introspect(&b, token).await, "the other node has not synchronised yet");
    b.state.node.revoked.sync(&b.state.store, NOW).await.unwrap();
    assert!(!introspect(&b, token).await, "after its next synchronisation");
    // Entries leave the deny-list when the token would have expired.
    b.state.node.revoked.sync(&b.state.store, NOW + 900).await.unwrap();
    assert!(b.state.node.revoked.is_empty());
}
