//! Pages in a real headless Chromium.

use crate::helpers::*;
use postern_server::bootstrap::FirstAdmin;
use postern_testkit::browser::Browser;

#[tokio::test]
async fn first_admin_setup_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let FirstAdmin::SetupLink { url } = app.app_first_admin.clone() else { panic!("expected a setup link") };

    browser.goto(&url).await;
    assert!(browser.title().await.starts_with("Create the first admin"));
    browser.fill("Email", "root@example.org").await;
    browser.fill("Name", "Root <b>admin</b>").await;
    browser.fill("Password", "long enough password").await;
    browser.fill("Confirm password", "a different password").await;
    browser.press("Create admin account").await;
    browser.wait_for_text("The two passwords differ.").await;
    assert_eq!(app.state.store.count_admins().await.unwrap(), 0);

    // The form kept what was typed (escaped, so the name shows as text, not markup).
    browser.fill("Password", "long enough password").await;
    browser.fill("Confirm password", "long enough password").await;
    browser.press("Create admin account").await;
    browser.wait_for_text("Admin account created").await;
    let email = postern_core::email::Email::parse("root@example.org").unwrap();
    let admin = app.state.store.user_by_email(&email).await.unwrap().unwrap();
    assert!(admin.is_admin);
    assert_eq!(admin.display_name.as_deref(), Some("Root <b>admin</b>"));

    // The link is spent.
    browser.goto(&url).await;
    browser.wait_for_text("This setup link is not valid").await;
    browser.quit().await;
}

#[tokio::test]
async fn sign_in_and_a_failed_sign_in_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    create_user(&app, "ann@example.org", "correct horse").await;
    browser.goto(&app.url("/login")).await;
    assert!(browser.title().await.starts_with("Sign in"));
    browser.fill("Email", "ann@example.org").await;
    browser.fill("Password", "not it").await;
    browser.press("Sign in").await;
    browser.wait_for_text("Incorrect email or password.").await;
    browser.fill("Password", "correct horse").await;
    browser.press("Sign in").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    browser.press("Sign out").await;
    browser.wait_for_text("You are signed out.").await;
    browser.quit().await;
}

#[tokio::test]
async fn sign_in_consent_and_redirect_with_a_code_in_a_browser() {
    use crate::authorize::{VERIFIER, exchange, relying_party, urlencode};
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut rp = relying_party(&app, false).await;
    // The "application" is the server's own /healthz page on the loopback: the browser lands
    // there with the code in its address bar.
    rp.redirect = app.url("/healthz");
    let mut c = app.state.store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.redirect_uris = vec![postern_core::client::RedirectUri::parse(&rp.redirect).unwrap()];
    c.name = "Billing <Admin>".into();
    app.state.store.update_client(&rp.id, &c, NOW).await.unwrap();
    let challenge = postern_core::pkce::s256(VERIFIER);
    let url = app.url(&format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20email&state=b-1&code_challenge={challenge}&code_challenge_method=S256",
        rp.id,
        urlencode(&rp.redirect)
    ));

    browser.goto(&url).await;
    browser.wait_for_text("Sign in").await;
    browser.fill("Email", "ann@example.org").await;
    browser.fill("Password", "correct horse").await;
    browser.press("Sign in").await;
    let consent = browser.wait_for_text("Allow Billing <Admin> to access your account?").await;
    assert!(consent.contains("See your email address") && consent.contains("Confirm who you are"), "{consent}");
    browser.press("Allow").await;
    browser.wait_for_text("ok").await;
    let landed = url::Url::parse(&browser.current_url().await).unwrap();
    let params: std::collections::HashMap<_, _> = landed.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "b-1");
    assert_eq!(params["iss"], app.state.issuer.to_string());
    let tokens = exchange(&app, &rp, &params["code"], VERIFIER).await;
    assert_eq!(tokens.status(), 200);
    browser.quit().await;
}

#[tokio::test]
async fn device_activation_in_a_browser_approve_and_deny() {
    use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let (client, _) =
        register(&app, ClientType::Public, &[GrantType::DeviceCode], "openid read", AccessTokenFormat::Jwt).await;
    let mut c = app.state.store.client_by_id(&client).await.unwrap().unwrap().settings();
    c.name = "<script>document.title='owned'</script>".into();
    app.state.store.update_client(&client, &c, NOW).await.unwrap();
    let start = || async {
        let r = app
            .http
            .post(app.url("/oauth/device_authorization"))
            .form(&[("client_id", client.as_str()), ("scope", "openid read")]);
        r.send().await.unwrap().json::<serde_json::Value>().await.unwrap()
    };
    let poll = |code: String| {
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code".to_owned()),
            ("device_code", code),
            ("client_id", client.clone()),
        ];
        let req = app.http.post(app.url("/oauth/token")).form(&form);
        async move { req.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };

    // Approve: open verification_uri_complete (its issuer is this server), sign in, confirm.
    let d = start().await;
    let complete = d["verification_uri_complete"].as_str().unwrap().replace(&app.state.issuer.to_string(), &app.base);
    browser.goto(&complete).await;
    browser.wait_for_text("Enter the code shown on your device.").await;
    browser.press("Continue").await;
    browser.wait_for_text("Sign in").await;
    browser.fill("Email", "ann@example.org").await;
    browser.fill("Password", "correct horse").await;
    browser.press("Sign in").await;
    let confirm = browser.wait_for_text("Approve only if you started this on your own device").await;
    assert!(confirm.contains("<script>document.title='owned'</script>"), "the name shows as text: {confirm}");
    assert!(confirm.contains("Confirm who you are") && confirm.contains("Use the permission"));
    assert_ne!(browser.title().await, "owned");
    browser.press("Approve").await;
    browser.wait_for_text("You can return to your device now.").await;
    let tokens = poll(d["device_code"].as_str().unwrap().to_owned()).await;
    assert!(tokens["access_token"].is_string(), "{tokens}");

    // Deny: the user is signed in now; the code typed by hand.
    let d = start().await;
    browser.goto(&app.url("/device")).await;
    browser.fill("Code", &d["user_code"].as_str().unwrap().to_lowercase()).await;
    browser.press("Continue").await;
    browser.wait_for_text("Approve only if you started this").await;
    browser.press("Deny").await;
    browser.wait_for_text("The device was not connected.").await;
    assert_eq!(poll(d["device_code"].as_str().unwrap().to_owned()).await["error"], "access_denied");
    browser.quit().await;
}

#[tokio::test]
async fn an_api_key_is_created_shown_once_and_revoked_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let store = &app.state.store;
    add_scope(&app, "deploy", "Deploy releases", false).await;
    add_scope(&app, "project", "Projects", true).await;
    create_user(&app, "ann@example.org", "correct horse").await;
    browser.goto(&app.url("/login")).await;
    browser.fill("Email", "ann@example.org").await;
    browser.fill("Password", "correct horse").await;
    browser.press("Sign in").await;
    browser.wait_for_text("You have no API keys.").await;

    browser.fill("Key name", "laptop <b>").await;
    browser.click_labelled("deploy").await;
    browser.fill("More scopes (space-separated, such as project:web)", "project:web").await;
    browser.press("Create key").await;
    browser.wait_for_text("Your new key").await;
    let key = browser.value_labelled("New API key").await;
    assert!(key.starts_with("pst_u_"), "{key}");
    let record = app.state.api_keys.verify(store, &key, None, NOW).await.unwrap().expect("the shown key works");
    assert_eq!(record.scope, "deploy project:web");
    assert_eq!(record.name, "laptop <b>");

    // The copy button runs (the page's policy allows our own script) and copies the key.
    browser.press("Copy").await;
    let text = browser.wait_for_text("Copied to the clipboard.").await;
    assert!(text.contains("laptop <b>"), "the name is shown as text, not markup");

    // Opened again, the page shows the key's prefix, never the key.
    browser.goto(&app.url("/account")).await;
    let text = browser.wait_for_text("laptop <b>").await;
    assert!(!text.contains(&key) && !text.contains("Your new key"));
    assert!(text.contains(&postern_core::apikey::display_prefix(&record.public_prefix)));

    browser.press("Revoke").await;
    browser.wait_for_text("The key laptop <b> is revoked.").await;
    assert!(app.state.api_keys.verify(store, &key, None, NOW).await.unwrap().is_none());
    browser.quit().await;
}
