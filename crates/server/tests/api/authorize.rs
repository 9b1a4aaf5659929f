//! The authorization code flow: authorization endpoint, sign-in, consent, code exchange, ID
//! token, userinfo, replay; and every error path by RFC code.

use crate::helpers::*;
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_core::oidc::IdClaims;
use serde_json::Value;

pub(crate) async fn verify_id_token(app: &TestApp, token: &str) -> IdClaims {
    let set: postern_proto::JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let keys: Vec<_> =
        set.keys.iter().map(|k| (k.kid.clone(), postern_core::signing::PublicKey::from_jwk(k).unwrap())).collect();
    let (header, claims) = postern_core::jwt::verify::<IdClaims>(token, None, |kid| {
        keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    })
    .unwrap();
    assert_eq!(header.alg, "RS256");
    claims
}

both!(the_code_flow_end_to_end, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let user = create_user(&app, "ann@example.org", "correct horse").await;
    let rp = relying_party(&app, false).await;
    let mut v = visitor(&app);

    let first = v.get(&authorize_url(&rp, "")).await;
    let (location, _) = location_params(&first);
    assert!(location.starts_with("/login?request="), "not signed in: to the sign-in page, {location}");
    let params = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), "ann@example.org", "correct horse").await;
    assert_eq!(params.steps, [Step::SignedIn, Step::Resumed, Step::Allowed], "a third-party client asks consent");
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], app.state.issuer.to_string(), "RFC 9207");
    let code = params["code"].clone();
    assert_eq!(code.len(), postern_core::secret::ORDERED_LEN, "the time, then 256 random bits");

    let r = exchange(&app, &rp, &code, VERIFIER).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let tokens: Value = r.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(tokens["scope"], "openid email");
    let id = verify_id_token(&app, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(
        (id.sub.as_str(), id.nonce.as_deref(), id.iss.as_str()),
        (user.as_str(), Some("n-1"), app.base.as_str())
    );
    assert!(id.aud.contains(&rp.id));
    assert_eq!(id.at_hash, Some(postern_core::oidc::at_hash(&access)));
    assert_eq!(
        (id.email.as_deref(), id.email_verified, id.name.as_deref()),
        (Some("ann@example.org"), Some(true), None)
    );
    assert_eq!(id.amr, ["pwd"]);
    assert_eq!(id.auth_time, NOW);

    let info: Value =
        app.http.get(app.url("/userinfo")).bearer_auth(&access).send().await.unwrap().json().await.unwrap();
    assert_eq!(info, serde_json::json!({"sub": user, "email": "ann@example.org", "email_verified": true}));

    // Consent is remembered: the next authorization goes straight back with a code.
    let again = v.get(&authorize_url(&rp, "")).await;
    let (location, params) = location_params(&again);
    assert!(location.starts_with(&rp.redirect) && params.contains_key("code"), "{location}");

    // Replaying the first code fails and revokes the token it gave.
    let replay = exchange(&app, &rp, &code, VERIFIER).await;
    assert_eq!(replay.status(), 400);
    assert_eq!(replay.json::<Value>().await.unwrap()["error"], "invalid_grant");
    let after = app.http.get(app.url("/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(after.status(), 401);
    assert!(after.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
});

#[tokio::test]
async fn first_party_clients_skip_consent_and_denial_is_reported() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    create_user(&app, "ann@example.org", "correct horse").await;
    let first = relying_party(&app, true).await;
    let mut v = visitor(&app);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
    let r = v.get(&authorize_url(&first, "")).await;
    let (_, params) = location_params(&r);
    assert!(params.contains_key("code"), "no consent page for a first-party client");

    let third = relying_party(&app, false).await;
    // A registered scope is described in the registry's words.
    add_scope(&app, "read", "Read your invoices", false).await;
    let url = authorize_url(&third, "").replace("scope=openid%20email", "scope=openid%20email%20read");
    let page = v.get(&url).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Test client") && html.contains("See your email address"), "{html}");
    assert!(html.contains("Read your invoices"), "{html}");
    let (csrf, request) = (Visitor::hidden(&html, "csrf"), Visitor::hidden(&html, "request"));
    let r =
        v.post_form("/oauth/authorize/consent", &[("csrf", &csrf), ("request", &request), ("decision", "deny")]).await;
    let (location, params) = location_params(&r);
    assert!(location.starts_with(&third.redirect));
    assert_eq!((params["error"].as_str(), params["state"].as_str()), ("access_denied", "st-1"));
    assert!(!params.contains_key("code"));
    // The handle is spent.
    let again =
        v.post_form("/oauth/authorize/consent", &[("csrf", &csrf), ("request", &request), ("decision", "allow")]).await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn errors_before_the_redirect_uri_is_trusted_are_never_redirected() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let rp = relying_party(&app, false).await;
    let (native, _) =
        register(&app, ClientType::Public, &[GrantType::AuthorizationCode], "openid", AccessTokenFormat::Jwt).await;
    let mut c = app.state.store.client_by_id(&native).await.unwrap().unwrap().settings();
    c.redirect_uris = vec![postern_core::client::RedirectUri::parse("http://127.0.0.1/callback").unwrap()];
    app.state.store.update_client(&native, &c, NOW).await.unwrap();
    let challenge = postern_core::pkce::s256(VERIFIER);
    let base = format!("response_type=code&code_challenge={challenge}&code_challenge_method=S256&state=s");
    for (query, what) in [
        (base.clone(), "no client_id"),
        (format!("{base}&client_id=unknown&redirect_uri=https%3A%2F%2Fapp.example.org%2Fcb"), "unknown client"),
        (format!("{base}&client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", rp.id), "open redirect attempt"),
        (
            format!("{base}&client_id={}&redirect_uri=https%3A%2F%2Fapp.example.org%2Fcb%2F..%2Fevil", rp.id),
            "path tampering",
        ),
        (
            format!("{base}&client_id={native}&redirect_uri=http%3A%2F%2Flocalhost%3A5000%2Fcallback"),
            "unregistered loopback host",
        ),
        (
            format!("{base}&client_id={native}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fother"),
            "loopback, other path",
        ),
        (format!("{base}&client_id={}&client_id={}", rp.id, rp.id), "repeated client_id"),
    ] {
        let r = app.get(&format!("/oauth/authorize?{query}")).await;
        assert_eq!(r.status(), 400, "{what}");
        assert!(r.headers().get("location").is_none(), "{what}: must not redirect");
    }
    // A registered loopback redirect matches on any port.
    let r = app
        .get(&format!(
            "/oauth/authorize?{base}&client_id={native}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback"
        ))
        .await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login?request="));
}

#[tokio::test]
async fn errors_after_the_redirect_uri_is_trusted_go_back_with_state_and_iss() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let rp = relying_party(&app, false).await;
    let challenge = postern_core::pkce::s256(VERIFIER);
    let base = format!("client_id={}&redirect_uri={}&state=s-9", rp.id, urlencode(&rp.redirect));
    for (extra, code, what) in [
        (format!("&code_challenge={challenge}&code_challenge_method=S256"), "invalid_request", "missing response_type"),
        (
            format!("&response_type=token&code_challenge={challenge}&code_challenge_method=S256"),
            "unsupported_response_type",
            "implicit",
        ),
        ("&response_type=code".to_owned(), "invalid_request", "no PKCE"),
        (
            format!("&response_type=code&code_challenge={challenge}&code_challenge_method=plain"),
            "invalid_request",
            "plain PKCE",
        ),
        (format!("&response_type=code&code_challenge={challenge}"), "invalid_request", "no challenge method"),
        (
            "&response_type=code&code_challenge=short&code_challenge_method=S256".to_owned(),
            "invalid_request",
            "malformed challenge",
        ),
        (
            format!("&response_type=code&code_challenge={challenge}&code_challenge_method=S256&scope=admin"),
            "invalid_scope",
            "scope not allowed",
        ),
        (
            format!("&response_type=code&code_challenge={challenge}&code_challenge_method=S256&prompt=none"),
            "login_required",
            "prompt=none, signed out",
        ),
        (
            format!("&response_type=code&code_challenge={challenge}&code_challenge_method=S256&prompt=bogus"),
            "invalid_request",
            "unknown prompt",
        ),
        (
            format!("&response_type=code&code_challenge={challenge}&code_challenge_method=S256&max_age=-1"),
            "invalid_request",
            "bad max_age",
        ),
        (
            format!("&response_type=code&code_challenge={challenge}&code_challenge_method=S256&request=eyJ"),
            "request_not_supported",
            "request object",
        ),
    ] {
        let r = app.get(&format!("/oauth/authorize?{base}{extra}")).await;
        assert_eq!(r.status(), 303, "{what}");
        let (location, params) = location_params(&r);
        assert!(location.starts_with(&rp.redirect), "{what}: {location}");
        assert_eq!(params.get("error").map(String::as_str), Some(code), "{what}");
        assert_eq!(params["state"], "s-9", "{what}");
        assert_eq!(params["iss"], app.state.issuer.to_string(), "{what}");
        assert!(!params.contains_key("code"));
    }
}

#[tokio::test]
async fn code_exchange_errors() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = relying_party(&app, true).await;
    let other = relying_party(&app, true).await;
    let mut v = visitor(&app);
    let params = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), "ann@example.org", "correct horse").await;
    let code = params["code"].clone();
    let post = |fields: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let r = app.http.post(app.url("/oauth/token")).form(&fields).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap()["error"].as_str().unwrap_or_default().to_owned())
        }
    };
    let with = |client: &Rp, code: &str, redirect: &str, verifier: Option<&str>| {
        let mut f: Vec<(&'static str, String)> = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect.to_owned()),
            ("client_id", client.id.clone()),
            ("client_secret", client.secret.clone().unwrap()),
        ];
        if let Some(v) = verifier {
            f.push(("code_verifier", v.to_owned()));
        }
        f
    };
    let wrong_verifier = "b-perfectly-fine-pkce-verifier-of-sufficient-length-0123456789";
    for (fields, status, error, what) in [
        (with(&rp, &code, &rp.redirect, None), 400, "invalid_request", "missing verifier"),
        (with(&rp, &code, &rp.redirect, Some("short")), 400, "invalid_request", "malformed verifier"),
        (with(&rp, &code, &rp.redirect, Some(wrong_verifier)), 400, "invalid_grant", "wrong verifier"),
        (with(&rp, &code, "https://app.example.org/other", Some(VERIFIER)), 400, "invalid_grant", "other redirect URI"),
        (with(&other, &code, &rp.redirect, Some(VERIFIER)), 400, "invalid_grant", "other client"),
        (with(&rp, "not-a-code", &rp.redirect, Some(VERIFIER)), 400, "invalid_grant", "unknown code"),
    ] {
        assert_eq!(post(fields).await, (status, error.to_owned()), "{what}");
    }
    // None of those spent the code.
    assert_eq!(post(with(&rp, &code, &rp.redirect, Some(VERIFIER))).await.0, 200);

    // Codes live 60 seconds.
    let params = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), "ann@example.org", "correct horse").await;
    app.clock.advance(60);
    assert_eq!(post(with(&rp, &params["code"], &rp.redirect, Some(VERIFIER))).await, (400, "invalid_grant".to_owned()));
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_fresh_sign_in() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = relying_party(&app, true).await;
    let mut v = visitor(&app);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
    app.clock.advance(100);
    for extra in ["&prompt=login", "&max_age=50"] {
        let r = v.get(&authorize_url(&rp, extra)).await;
        let (location, _) = location_params(&r);
        assert!(location.starts_with("/login?request="), "{extra}: {location}");
    }
    let r = v.get(&authorize_url(&rp, "&max_age=500")).await;
    assert!(location_params(&r).1.contains_key("code"), "recent enough");
    let params =
        sign_in_and_allow(&mut v, &authorize_url(&rp, "&prompt=login"), "ann@example.org", "correct horse").await;
    assert!(params.contains_key("code"), "after signing in again");
}

#[tokio::test]
async fn userinfo_errors_follow_rfc_6750() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let r = app.get("/userinfo").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"postern\"");
    let r = app.http.get(app.url("/userinfo")).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    // A client-credentials token has no openid scope.
    let (id, secret) =
        register(&app, ClientType::Confidential, &[GrantType::ClientCredentials], "read", AccessTokenFormat::Jwt).await;
    let t: Value = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&id, secret)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = app.http.post(app.url("/userinfo")).bearer_auth(t["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
}

#[tokio::test]
async fn client_policies_require_state_choose_the_id_token_algorithm_and_always_refresh() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let (id, secret) = register(
        &app,
        ClientType::Confidential,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid email",
        AccessTokenFormat::Jwt,
    )
    .await;
    let mut c = app.state.store.client_by_id(&id).await.unwrap().unwrap().settings();
    c.first_party = true;
    c.policy = postern_store::ClientPolicy {
        require_state: true,
        id_token_alg: postern_core::signing::Algorithm::EdDSA,
        always_refresh: true,
        ..Default::default()
    };
    app.state.store.update_client(&id, &c, NOW).await.unwrap();
    let rp = Rp { id, secret, redirect: "https://app.example.org/cb".into() };

    let without_state = authorize_url(&rp, "").replace("&state=st-1", "");
    let r = app.get(&without_state).await;
    let (_, params) = location_params(&r);
    assert_eq!(params["error"], "invalid_request", "state is required for this client");

    let mut v = visitor(&app);
    let params = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), "ann@example.org", "correct horse").await;
    let tokens: Value = exchange(&app, &rp, &params["code"], VERIFIER).await.json().await.unwrap();
    assert!(tokens["refresh_token"].is_string(), "no offline_access needed for this client");
    let id_token = tokens["id_token"].as_str().unwrap();
    let set: postern_proto::JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let keys: Vec<_> =
        set.keys.iter().map(|k| (k.kid.clone(), postern_core::signing::PublicKey::from_jwk(k).unwrap())).collect();
    let (header, claims) = postern_core::jwt::verify::<IdClaims>(id_token, None, |kid| {
        keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    })
    .unwrap();
    assert_eq!(header.alg, "EdDSA");
    assert_eq!(claims.nonce.as_deref(), Some("n-1"));
}

// A remembered consent is compared through the one scope rule: `project:*` allowed once
// covers `project:web` asked later (no second consent page), and `project:web` allowed once
// does not cover `project:*`.
both!(remembered_consent_covers_through_the_scope_rule, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let (id, secret) = register(
        &app,
        ClientType::Confidential,
        &[GrantType::AuthorizationCode],
        "openid project:*",
        AccessTokenFormat::Jwt,
    )
    .await;
    let rp = Rp { id, secret, redirect: "https://app.example.org/cb".into() };
    let url = |scope: &str| {
        authorize_url(&rp, "").replace("scope=openid%20email", &format!("scope=openid%20{}", urlencode(scope)))
    };
    let mut v = visitor(&app);
    // The first time: sign-in, then the consent page, allowed.
    let params = sign_in_and_allow(&mut v, &url("project:*"), "ann@example.org", "correct horse").await;
    assert!(params.contains_key("code") && params.steps.contains(&Step::Allowed));
    // project:web is covered by the remembered project:*: straight back with a code.
    let r = v.get(&url("project:web")).await;
    assert_eq!(r.status(), 303);
    let (location, params) = location_params(&r);
    assert!(location.starts_with(&rp.redirect) && params.contains_key("code"), "{location}");

    // Another person allows project:web only; asking for project:* shows the page again.
    create_user(&app, "bob@example.org", "correct horse").await;
    let mut w = visitor(&app);
    sign_in_and_allow(&mut w, &url("project:web"), "bob@example.org", "correct horse").await;
    let r = w.get(&url("project:*")).await;
    assert_eq!(r.status(), 200, "consent asked again");
    assert!(r.text().await.unwrap().contains("Allow"));
});
