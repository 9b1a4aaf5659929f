//! Protocol details the specifications ask for: the authorization endpoint by POST, response
//! modes, request objects refused by name, `redirect_uri` at the token endpoint only when the
//! request named it, ID tokens only as logout hints, no null claims, Postern's own endpoints
//! only for tokens minted for it, and a page at `/`.

use crate::helpers::*;
use crate::helpers::{Rp, VERIFIER, exchange, location_params, relying_party, sign_in_and_allow, urlencode};
use serde_json::Value;

fn request(rp: &Rp, extra: &str) -> String {
    let challenge = postern_core::pkce::s256(VERIFIER);
    format!(
        "response_type=code&client_id={}&scope=openid%20profile&state=s1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        rp.id
    )
}

fn with_redirect(rp: &Rp) -> String {
    format!("&redirect_uri={}", urlencode(&rp.redirect))
}

#[tokio::test]
async fn authorization_errors_name_what_is_not_supported() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let rp = relying_party(&app, false).await;
    let v = visitor(&app);
    for (extra, code, words) in [
        ("&request=eyJhbGciOiJub25lIn0.e30.", "request_not_supported", "request objects"),
        ("&request_uri=https%3A%2F%2Fapp.example.org%2Fr", "request_uri_not_supported", "request_uri"),
        ("&response_mode=fragment", "invalid_request", "response_mode=query"),
        ("&response_mode=form_post", "invalid_request", "response_mode=query"),
    ] {
        let url = format!("/oauth/authorize?{}{}{extra}", request(&rp, ""), with_redirect(&rp));
        let r = v.http.get(app.url(&url)).send().await.unwrap();
        let (_, params) = location_params(&r);
        assert_eq!(params["error"], code, "{extra}");
        assert!(params["error_description"].contains(words), "{extra}: {params:?}");
    }
    let url = format!(
        "/oauth/authorize?{}{}",
        request(&rp, "").replace("response_type=code", "response_type=token"),
        with_redirect(&rp)
    );
    let (_, params) = location_params(&v.http.get(app.url(&url)).send().await.unwrap());
    assert_eq!(params["error"], "unsupported_response_type");
    assert_eq!(params["error_description"], "only response_type=code is supported");

    let metadata: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert_eq!(metadata["request_parameter_supported"], false);
    assert_eq!(metadata["request_uri_parameter_supported"], false);
}

#[tokio::test]
async fn the_authorization_endpoint_takes_a_posted_form() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let rp = relying_party(&app, false).await;
    let body = format!("{}{}", request(&rp, ""), with_redirect(&rp));
    let v = visitor(&app);
    let r = v
        .http
        .post(app.url("/oauth/authorize"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(Visitor::location(&r).starts_with("/login?request="), "sign-in, as for GET");
    let r = v.http.post(app.url("/oauth/authorize")).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn redirect_uri_at_the_token_endpoint_only_when_the_request_named_it() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = relying_party(&app, true).await;
    let token = |code: String, redirect: Option<String>| {
        let (app, rp) = (&app, &rp);
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("code_verifier", VERIFIER.to_owned()),
                ("client_id", rp.id.clone()),
                ("client_secret", rp.secret.clone().unwrap()),
            ];
            if let Some(r) = redirect {
                form.push(("redirect_uri", r));
            }
            let r = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // The client has one redirect URI and the request left it out: the token request may too.
    let mut v = visitor(&app);
    let code = sign_in_and_allow(
        &mut v,
        &format!("/oauth/authorize?{}", request(&rp, "")),
        "ann@example.org",
        "correct horse",
    )
    .await;
    assert_eq!(token(code["code"].clone(), None).await.0, 200);
    // The request named it: the token request must repeat it.
    let named = format!("/oauth/authorize?{}{}", request(&rp, ""), with_redirect(&rp));
    let code = sign_in_and_allow(&mut v, &named, "ann@example.org", "correct horse").await;
    let (status, body) = token(code["code"].clone(), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let code = sign_in_and_allow(&mut v, &named, "ann@example.org", "correct horse").await;
    assert_eq!(token(code["code"].clone(), Some(rp.redirect.clone())).await.0, 200);
}

#[tokio::test]
async fn userinfo_omits_empty_claims_and_takes_only_tokens_for_postern() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    sqlx_clear_name(&app, &ann).await;
    let rp = relying_party(&app, true).await;
    let mut v = visitor(&app);
    let named = format!("/oauth/authorize?{}{}", request(&rp, ""), with_redirect(&rp));
    let code = sign_in_and_allow(&mut v, &named, "ann@example.org", "correct horse").await;
    let tokens: Value = exchange(&app, &rp, &code["code"], VERIFIER).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let info: Value =
        app.http.get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap().json().await.unwrap();
    assert!(info.get("name").is_none(), "no null name: {info}");
    assert_eq!(info["sub"], ann);

    // A token minted for another API is not accepted by Postern's own endpoints.
    postern_server::resources::add(&app.state.store, "https://api.example.org", "API", &[], NOW).await.unwrap();
    postern_server::resources::allow(&app.state.store, &rp.id, &["https://api.example.org".into()]).await.unwrap();
    app.clock.advance(5); // past the client cache
    let code = sign_in_and_allow(&mut v, &named, "ann@example.org", "correct horse").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code["code"].as_str()),
        ("redirect_uri", rp.redirect.as_str()),
        ("code_verifier", VERIFIER),
        ("client_id", rp.id.as_str()),
        ("client_secret", rp.secret.as_deref().unwrap()),
        ("resource", "https://api.example.org"),
    ];
    let other: Value = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let other = other["access_token"].as_str().unwrap();
    for path in ["/userinfo", "/api/keys"] {
        let r = app.http.get(app.url(path)).bearer_auth(other).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    }
}

async fn sqlx_clear_name(app: &TestApp, id: &str) {
    // No store operation renames users yet: the test reaches into the table.
    let url = app.state.config.database_url().expose().to_owned();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("UPDATE users SET display_name = NULL WHERE id = $1").bind(id).execute(&mut conn).await.unwrap();
}

#[tokio::test]
async fn an_access_token_is_no_logout_hint() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = relying_party(&app, true).await;
    let mut v = visitor(&app);
    let named = format!("/oauth/authorize?{}{}", request(&rp, ""), with_redirect(&rp));
    let code = sign_in_and_allow(&mut v, &named, "ann@example.org", "correct horse").await;
    let tokens: Value = exchange(&app, &rp, &code["code"], VERIFIER).await.json().await.unwrap();
    let hint = |t: &str| format!("/logout?id_token_hint={t}");
    let r = v.get(&hint(tokens["access_token"].as_str().unwrap())).await;
    assert_eq!(r.status(), 400, "an access token is refused as a hint");
    let r = v.get(&hint(tokens["id_token"].as_str().unwrap())).await;
    assert_eq!(r.status(), 200, "an ID token ends the session");
    assert!(r.text().await.unwrap().contains("You are signed out."));
}

#[tokio::test]
async fn the_issuer_itself_leads_to_the_account_or_sign_in_page() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let mut v = visitor(&app);
    let r = v.get("/").await;
    assert_eq!(r.status(), 303);
    assert_eq!(Visitor::location(&r), "/account");
    let r = v.get("/account").await;
    assert!(Visitor::location(&r).starts_with("/login"));
}

#[tokio::test]
async fn a_public_client_is_never_approved_silently_nor_given_keys_unasked() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
    // postern-cli: public and first-party. Signed in, no scope named: still a confirmation
    // page, naming the loopback address the browser goes to.
    let challenge = postern_core::pkce::s256(VERIFIER);
    let redirect = "http://127.0.0.1:53817/callback";
    let url = format!(
        "/oauth/authorize?response_type=code&client_id=postern-cli&redirect_uri={}&state=s&code_challenge={challenge}&code_challenge_method=S256",
        urlencode(redirect)
    );
    for _ in 0..2 {
        let r = v.get(&url).await;
        assert_eq!(r.status(), 200, "a confirmation page, every time");
        let page = r.text().await.unwrap();
        assert!(page.contains(&format!("your browser goes to <code>{redirect}</code>")), "{page}");
        let (csrf, request) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "request"));
        let fields = [("csrf", csrf.as_str()), ("request", &request), ("decision", "allow")];
        let r = v.post_form("/oauth/authorize/consent", &fields).await;
        let (location, params) = location_params(&r);
        assert!(location.starts_with(redirect), "{location}");
        let form = [
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
            ("client_id", "postern-cli"),
        ];
        let tokens: Value =
            app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
        let scope = tokens["scope"].as_str().unwrap();
        assert!(
            !scope.contains("postern:keys") && !scope.contains("postern:account") && !scope.contains("offline_access"),
            "defaults only: {scope}"
        );
        assert!(scope.contains("openid"), "{scope}");
        assert!(tokens.get("refresh_token").is_none());
    }
}
