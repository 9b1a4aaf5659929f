//! Bad requests get a 4xx in the endpoint's own format, never a 500 and never a panic.

use crate::helpers::*;

// NUL and other control characters in every kind of value: PostgreSQL refuses NUL in text, so
// each must be turned away where input is parsed, never reach a query.
const NUL_FORM: &[u8] = b"grant_type=client_credentials&client_id=a%00b&client_secret=x%00&token=x%00y&scope=openid%00\
&code=a%00&refresh_token=r%00&device_code=d%00&code_verifier=v%00&redirect_uri=https%3A%2F%2Fx%00&email=a%00%40x.org\
&password=p%00&user_code=BC%00&name=k%00&description=d%00&post_logout_redirect_uri=%00&resource=https%3A%2F%2Fr%00";
const NUL_JSON: &[u8] = br#"{"client_id":"a\u0000b","token":"t\u0000","name":"k\u0000","scopes":["a\u0000"],"description":"d\u0000","service_account":"s\u0000"}"#;

both!(malformed_requests_never_yield_a_server_error, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let mut paths: Vec<String> = [
        "/oauth/authorize",
        "/logout",
        "/device",
        "/device/confirm",
        "/login",
        "/setup",
        "/register",
        "/password/forgot",
        "/password/reset",
        "/email/verify",
    ]
    .iter()
    .map(|p| format!("{p}?client_id=a%00b&redirect_uri=x%00&post_logout_redirect_uri=%00&user_code=%00&request=%00"))
    .collect();
    paths.extend(
        [
            "/healthz",
            "/readyz",
            "/metrics",
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
            "/.well-known/jwks.json",
            "/setup",
            "/setup?token=%ZZ%",
            "/setup?token=",
            "/setup?token=a&token=b",
            "/oauth/authorize",
            "/oauth/authorize?client_id=%FF&redirect_uri=%00",
            "/oauth/authorize/continue?request=x",
            "/oauth/authorize/consent",
            "/oauth/token",
            "/oauth/introspect",
            "/oauth/revoke",
            "/oauth/device_authorization",
            "/oauth/register",
            "/oauth/register/nobody",
            "/oauth/register/a%00b",
            "/userinfo",
            "/login",
            "/login?request=%ZZ",
            "/logout",
            "/logout?id_token_hint=a.b.c&post_logout_redirect_uri=javascript:alert(1)",
            "/account",
            "/account/keys",
            "/account/keys/unknown-id/revoke",
            "/account/service-accounts",
            "/assets/account.js",
            "/device",
            "/device?user_code=%00%00",
            "/device/confirm?user_code=BCDF-GHJK",
            "/api/keys",
            "/api/keys/unknown-id",
            "/api/keys?api_key=pst_u_x",
            "/api/service-accounts",
            "/api/service-accounts/nope/scopes",
            "/api/service-accounts/nope/scopes/deploy",
            "/api/sessions",
            "/api/sessions/unknown-id",
            "/api/apps",
            "/api/apps/unknown%00client",
            "/register",
            "/password/forgot",
            "/password/reset?token=%ZZ",
            "/password/reset?token=",
            "/email/verify?token=a&token=b",
            "/account/email/resend",
            "/account/sessions/end",
            "/account/sessions/end-others",
            "/account/apps/revoke",
            "/%00",
            "/..%2f..%2fetc/passwd",
        ]
        .map(str::to_owned),
    );
    paths.push(format!("/{}", "a".repeat(4000)));
    let methods = [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ];
    let bodies: [(&str, Vec<u8>); 7] = [
        ("application/x-www-form-urlencoded", NUL_FORM.to_vec()),
        ("application/json", NUL_JSON.to_vec()),
        ("application/x-www-form-urlencoded", b"token=%ZZ&email=\xff\xfe".to_vec()),
        ("application/x-www-form-urlencoded", b"=&&==&token".to_vec()),
        ("application/json", b"{not json".to_vec()),
        ("text/plain", vec![0u8; 100]),
        ("application/x-www-form-urlencoded", vec![b'a'; 200 * 1024]),
    ];
    let mut checked = 0;
    for path in &paths {
        for method in &methods {
            for (content_type, body) in &bodies {
                let response = app
                    .http
                    .request(method.clone(), app.url(path))
                    .header("content-type", *content_type)
                    .header("if-none-match", reqwest::header::HeaderValue::from_bytes(b"\xff\xfegarbage").unwrap())
                    .header("origin", "null")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                assert!(status.as_u16() < 500, "{method} {path} ({content_type}) gave {status}");
                checked += 1;
            }
        }
    }
    // Malformed credentials on every path, a NUL in a Basic client id among them.
    // "a\0b:secret" in base64.
    let nul_basic = "Basic YQBiOnNlY3JldA==".to_owned();
    for path in &paths {
        for authorization in [
            nul_basic.as_str(),
            "Basic !!!",
            "Basic Og==",
            "Bearer ",
            "Bearer a.b.c",
            "Bearer \u{7e}",
            "Digest x",
            "Basic dTo=",
            "Bearer pst_u_x",
        ] {
            let response = app
                .http
                .post(app.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", authorization)
                .body("grant_type=client_credentials&token=x&client_id=%FF")
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(status.as_u16() < 500, "POST {path} with {authorization:?} gave {status}");
            checked += 1;
        }
    }
    assert_eq!(checked, paths.len() * (methods.len() * bodies.len() + 9));

    // The same, signed in, against what a signed-in person can change.
    add_scope(&app, "deploy", "Deploy", false).await;
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    entitle(&app, &ann, &["deploy"]).await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let csrf = Visitor::hidden(&v.get("/account").await.text().await.unwrap(), "csrf");
    let session_json = |method: reqwest::Method, path: &str, body: Vec<u8>| {
        v.http
            .request(method, app.url(path))
            .header("cookie", v.cookie_header())
            .header("origin", &v.origin)
            .header("content-type", "application/json")
            .body(body)
    };
    let sa = session_json(reqwest::Method::POST, "/api/service-accounts", br#"{"name": "ci"}"#.to_vec());
    assert_eq!(sa.send().await.unwrap().status(), 201);
    for (method, path) in [
        (reqwest::Method::POST, "/api/keys"),
        (reqwest::Method::POST, "/api/service-accounts"),
        (reqwest::Method::POST, "/api/service-accounts/ci/scopes"),
        (reqwest::Method::DELETE, "/api/service-accounts/ci/scopes/a%00b"),
        (reqwest::Method::DELETE, "/api/keys/a%00b"),
        (reqwest::Method::DELETE, "/api/sessions/a%00b"),
        (reqwest::Method::DELETE, "/api/apps/a%00b"),
    ] {
        let r = session_json(method.clone(), path, NUL_JSON.to_vec()).send().await.unwrap();
        assert!(r.status().is_client_error(), "{method} {path} gave {}", r.status());
    }
    for path in
        ["/account/keys", "/account/service-accounts", "/account/sessions/end", "/account/apps/revoke", "/logout"]
    {
        let fields = [
            ("csrf", csrf.as_str()),
            ("name", "k\0"),
            ("description", "d\0"),
            ("scope", "deploy"),
            ("client_id", "a\0"),
            ("session", "s\0"),
        ];
        let r = v.post_form(path, &fields).await;
        assert!(r.status().as_u16() < 500, "POST {path} gave {}", r.status());
    }
    // The server is still healthy afterwards.
    assert_eq!(app.get("/readyz").await.status(), 200);
});

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let big = vec![b'a'; 200 * 1024];
    let r = app
        .http
        .post(app.url("/setup"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}
