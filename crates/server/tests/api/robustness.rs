//! Bad requests get a 4xx in the endpoint's own format, never a 500 and never a panic.

use crate::helpers::*;

#[tokio::test]
async fn malformed_requests_never_yield_a_server_error() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let paths = [
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
        "/%00",
        "/..%2f..%2fetc/passwd",
        &format!("/{}", "a".repeat(4000)),
    ];
    let methods = [
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
    ];
    let bodies: [(&str, Vec<u8>); 5] = [
        ("application/x-www-form-urlencoded", b"token=%ZZ&email=\xff\xfe".to_vec()),
        ("application/x-www-form-urlencoded", b"=&&==&token".to_vec()),
        ("application/json", b"{not json".to_vec()),
        ("text/plain", vec![0u8; 100]),
        ("application/x-www-form-urlencoded", vec![b'a'; 200 * 1024]),
    ];
    let mut checked = 0;
    for path in paths {
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
    // Malformed credentials on every path.
    for path in paths {
        for authorization in [
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
    assert_eq!(checked, paths.len() * (methods.len() * bodies.len() + 8));
    // The server is still healthy afterwards.
    assert_eq!(app.get("/readyz").await.status(), 200);
}

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
