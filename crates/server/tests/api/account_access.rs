//! Where a person is signed in and which apps hold access, on the account page, over the JSON
//! API and in Chromium: sessions listed with their browser and address, ended at once (one, or
//! every other), never someone else's; apps listed with what they may do, revoked with every
//! token and the remembered consent.

use crate::cut_off::{code_url, refresh, signed_in, tokens_for, userinfo};
use crate::helpers::*;
use crate::refresh::offline_rp;
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_testkit::browser::Browser;
use serde_json::Value;

/// A visitor whose requests say they come from `agent`.
fn visitor_as(app: &TestApp, agent: &str) -> Visitor {
    let mut v = visitor(app);
    v.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent.to_owned())
        .build()
        .unwrap();
    v
}

const FIREFOX_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME_ANDROID: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36";

async fn api(v: &Visitor, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = v
        .http
        .request(method, v.url(path))
        .header("cookie", v.cookie_header())
        .header("origin", &v.origin)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

both!(sessions_are_listed_and_ended_at_once, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    create_user(&app, "bob@example.org", "bobs password").await;
    let mut laptop = visitor_as(&app, FIREFOX_MAC);
    let mut phone = visitor_as(&app, CHROME_ANDROID);
    let mut bob = visitor(&app);
    for (v, email, pw) in
        [(&mut laptop, "ann@example.org", "correct horse"), (&mut phone, "ann@example.org", "correct horse")]
    {
        assert_eq!(v.sign_in(email, pw).await.status(), 303);
    }
    assert_eq!(bob.sign_in("bob@example.org", "bobs password").await.status(), 303);

    let page = laptop.get("/account").await.text().await.unwrap();
    assert!(page.contains("Firefox on macOS</strong> <em>(This browser)</em>"), "{page}");
    assert!(page.contains("Chrome on Android") && page.contains("Sign out everywhere else"), "{page}");
    let (status, listed) = api(&laptop, reqwest::Method::GET, "/api/sessions").await;
    assert_eq!(status, 200);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    let phone_id = sessions.iter().find(|s| s["device"] == "Chrome on Android").unwrap()["id"].as_str().unwrap();
    assert!(sessions.iter().any(|s| s["device"] == "Firefox on macOS" && s["current"] == true));

    // Nobody ends another person's session, by the page or the API.
    let (_, bobs) = api(&bob, reqwest::Method::GET, "/api/sessions").await;
    let bob_id = bobs["sessions"][0]["id"].as_str().unwrap().to_owned();
    let (status, page) = account_form(&mut laptop, "/account/sessions/end", &[("session", &bob_id)]).await;
    assert_eq!(status, 400, "{page}");
    assert_eq!(api(&laptop, reqwest::Method::DELETE, &format!("/api/sessions/{bob_id}")).await.0, 404);
    assert!(signed_in(&mut bob).await);

    let (status, page) = account_form(&mut laptop, "/account/sessions/end", &[("session", phone_id)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("That browser is signed out."), "{page}");
    assert!(!signed_in(&mut phone).await, "ended at once");
    assert!(signed_in(&mut laptop).await);

    // Every other session, over the API; a cross-origin call is refused.
    let mut tablet = visitor(&app);
    assert_eq!(tablet.sign_in("ann@example.org", "correct horse").await.status(), 303);
    let mut forged = visitor_as(&app, FIREFOX_MAC);
    forged.cookies = laptop.cookies.clone();
    forged.origin = "https://evil.example".into();
    assert_eq!(api(&forged, reqwest::Method::DELETE, "/api/sessions").await.0, 403);
    assert!(signed_in(&mut tablet).await);
    let (status, ended) = api(&laptop, reqwest::Method::DELETE, "/api/sessions").await;
    assert_eq!((status, ended["ended"].as_u64()), (200, Some(1)));
    assert!(!signed_in(&mut tablet).await && signed_in(&mut laptop).await && signed_in(&mut bob).await);
});

both!(the_sessions_and_apps_api_takes_sessions_and_account_tokens_never_keys, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let (id, secret) = register(
        &app,
        ClientType::Confidential,
        &[GrantType::AuthorizationCode],
        "openid postern:account",
        AccessTokenFormat::Jwt,
    )
    .await;
    let rp = Rp { id, secret, redirect: "https://app.example.org/cb".into() };
    let token = |scope: &'static str| {
        let (app, rp) = (&app, &rp);
        async move {
            let mut v = visitor(app);
            let url = authorize_url(rp, "").replace("scope=openid%20email", &format!("scope={scope}"));
            let code = sign_in_and_allow(&mut v, &url, "ann@example.org", "correct horse").await;
            let tokens: Value = exchange(app, rp, &code["code"], VERIFIER).await.json().await.unwrap();
            tokens["access_token"].as_str().unwrap().to_owned()
        }
    };
    let account = token("openid%20postern:account").await;
    let plain = token("openid").await;
    let get = |bearer: String| {
        let app = &app;
        async move { app.http.get(app.url("/api/sessions")).bearer_auth(bearer).send().await.unwrap() }
    };
    let r = get(account.clone()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sessions"].as_array().unwrap().len(), 2, "the two browsers that signed in: {body}");
    let r = get(plain).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
    let apps: Value =
        app.http.get(app.url("/api/apps")).bearer_auth(&account).send().await.unwrap().json().await.unwrap();
    assert_eq!(apps["apps"][0]["client_id"], rp.id.as_str(), "{apps}");
    assert!(apps["apps"][0]["scope"].as_str().unwrap().contains("postern:account"), "{apps}");

    let ann = app.state.store.user_by_email(&postern_core::email::Email::parse("ann@example.org").unwrap()).await;
    let ann_id = ann.unwrap().unwrap().id;
    add_scope(&app, "read", "Read things", false).await;
    entitle(&app, &ann_id, &["read"]).await;
    let key = crate::cut_off::api_key(&app, postern_store::KeyOwner::User(&ann_id)).await;
    assert_eq!(get(key).await.status(), 403, "an API key never");
    assert_eq!(app.http.get(app.url("/api/apps")).send().await.unwrap().status(), 401);
});

both!(revoking_an_app_ends_its_tokens_and_its_consent, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    // A third-party app: the person's consent is remembered.
    let mut c = app.state.store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.first_party = false;
    app.state.store.update_client(&rp.id, &c, NOW).await.unwrap();
    let mut v = visitor(&app);
    let tokens = tokens_for(&app, &mut v, &rp, "ann@example.org", "correct horse").await;
    let (status, rotated) = refresh(&app, &rp, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);

    let page = v.get("/account").await.text().await.unwrap();
    assert!(page.contains("Apps with access"), "{page}");
    assert!(page.contains("Stay connected when you are not using it"), "scopes in plain words: {page}");
    assert!(!page.contains("last used never"), "the refresh was a use: {page}");
    let (status, page) = account_form(&mut v, "/account/apps/revoke", &[("client_id", &rp.id)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("access is revoked."), "{page}");
    assert!(page.contains("No app holds access to your account."), "{page}");

    assert_eq!(refresh(&app, &rp, rotated["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");
    assert_eq!(userinfo(&app, rotated["access_token"].as_str().unwrap()).await, 401, "its JWTs are refused");
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await, 401);
    // The consent is forgotten: the next request asks again.
    let again = v.get(&code_url(&rp)).await;
    assert_eq!(again.status(), 200, "the consent page, not a code");
    assert!(again.text().await.unwrap().contains("Allow"));
    assert!(signed_in(&mut v).await, "the browser session is not the app's");
    let (status, page) = account_form(&mut v, "/account/apps/revoke", &[("client_id", &rp.id)]).await;
    assert_eq!(status, 400, "nothing left to revoke: {page}");
});

#[tokio::test]
async fn two_browsers_one_signs_the_other_out_and_an_app_is_revoked() {
    let Some(first) = Browser::start().await else { return };
    let Some(second) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Opaque).await;
    let tokens = tokens_for(&app, &mut visitor(&app), &rp, "ann@example.org", "correct horse").await;

    for browser in [&first, &second] {
        browser.goto(&app.url("/login")).await;
        browser.fill("Email", "ann@example.org").await;
        browser.fill("Password", "correct horse").await;
        browser.press("Sign in").await;
        browser.wait_for_text("Signed in as ann@example.org").await;
    }
    first.goto(&app.url("/account")).await;
    let page = first.wait_for_text("Where you are signed in").await;
    assert_eq!(page.matches("Chrome on Linux").count(), 2, "the two browsers: {page}");
    assert!(page.contains("Unknown browser"), "and the HTTP client that signed in for the tokens: {page}");
    assert!(page.contains("(This browser)"), "{page}");

    first.press_within_other("This browser", "Sign out").await;
    first.wait_for_text("That browser is signed out.").await;
    // The tokens' visitor was a browser too; end it as well, then the second Chromium.
    first.press("Sign out everywhere else").await;
    first.wait_for_text("Every other browser is signed out.").await;
    second.goto(&app.url("/account")).await;
    second.wait_for_text("Forgot your password?").await;
    assert!(second.current_url().await.ends_with("/login"), "the other browser is sent to sign in");

    first.press_within("Stay connected", "Revoke").await;
    first.wait_for_text("No app holds access to your account.").await;
    assert_eq!(refresh(&app, &rp, tokens["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");
    first.quit().await;
    second.quit().await;
}
