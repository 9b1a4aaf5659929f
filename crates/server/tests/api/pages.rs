//! Pages in a real headless Chromium. Every flow that ends at a client ends at an application on
//! another origin ([`ClientApp`], its own loopback port), as in a deployment.

use crate::helpers::*;
use crate::helpers::{Rp, VERIFIER, exchange, relying_party, urlencode};
use postern_core::client::RedirectUri;
use postern_server::bootstrap::FirstAdmin;
use postern_testkit::browser::Browser;
use postern_testkit::client_app::ClientApp;

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

/// A relying party whose application lives on another origin (`client`): its redirect URI and
/// post-logout redirect URI are registered there, and its name carries markup.
pub(crate) async fn rp_on_another_origin(app: &TestApp, client: &ClientApp, first_party: bool) -> Rp {
    let mut rp = relying_party(app, first_party).await;
    rp.redirect = client.redirect_uri();
    let mut c = app.state.store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.redirect_uris = vec![RedirectUri::parse(&rp.redirect).unwrap()];
    c.post_logout_redirect_uris = vec![RedirectUri::parse(&client.post_logout_uri()).unwrap()];
    c.name = "Billing <Admin>".into();
    app.state.store.update_client(&rp.id, &c, NOW).await.unwrap();
    rp
}

pub(crate) fn code_request(app: &TestApp, rp: &Rp, state: &str, extra: &str) -> String {
    let challenge = postern_core::pkce::s256(VERIFIER);
    app.url(&format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20email&state={state}&code_challenge={challenge}&code_challenge_method=S256{extra}",
        rp.id,
        urlencode(&rp.redirect)
    ))
}

pub(crate) async fn sign_in(browser: &Browser, email: &str, password: &str) {
    browser.wait_for_text("Sign in").await;
    browser.submit_sign_in(email, password).await;
}

/// Waits until the application on the other origin got the authorization response with this
/// `state` and `iss`, exchanges its code and reads userinfo with the access token.
async fn code_reached(app: &TestApp, client: &ClientApp, rp: &Rp, state: &str) {
    let answer = client.wait_for("/callback").await;
    assert_eq!(answer.params["state"], state);
    assert_eq!(answer.params["iss"], app.state.issuer.to_string());
    let tokens = exchange(app, rp, &answer.params["code"], VERIFIER).await;
    assert_eq!(tokens.status(), 200);
    // The application's next step: who signed in, from userinfo with the access token.
    let tokens: serde_json::Value = tokens.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let info = app.http.get(app.url("/userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(info.status(), 200);
    let info: serde_json::Value = info.json().await.unwrap();
    assert!(info["sub"].as_str().is_some_and(|s| !s.is_empty()), "{info}");
    assert!(info["email"].as_str().is_some_and(|e| e.contains('@')) && info["email_verified"].is_boolean(), "{info}");
}

#[tokio::test]
async fn sign_in_consent_and_code_for_a_client_on_another_origin() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let client = ClientApp::start().await;
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = rp_on_another_origin(&app, &client, false).await;

    browser.goto(&code_request(&app, &rp, "b-1", "")).await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    let consent = browser.wait_for_text("Allow Billing <Admin> to access your account?").await;
    assert!(consent.contains("See your email address") && consent.contains("Confirm who you are"), "{consent}");
    browser.press("Allow").await;
    browser.wait_for_text("Application: code received").await;
    assert!(browser.current_url().await.starts_with(&format!("{}/callback?", client.origin)));
    code_reached(&app, &client, &rp, "b-1").await;
    browser.quit().await;
}

#[tokio::test]
async fn remembered_consent_and_a_first_party_client_sign_in_straight_to_the_client() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let client = ClientApp::start().await;
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    let rp = rp_on_another_origin(&app, &client, false).await;
    let (ann, client_id) = (postern_store::UserId::new(ann), postern_store::ClientId::new(rp.id.clone()));
    let consent = postern_store::Consent { scope: "openid email".into(), resources: String::new() };
    app.state.store.save_consent(&ann, &client_id, &consent, NOW).await.unwrap();

    // Consent is remembered: the sign-in form's POST ends at the client, two redirects later.
    browser.goto(&code_request(&app, &rp, "r-1", "")).await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    browser.wait_for_text("Application: code received").await;
    code_reached(&app, &client, &rp, "r-1").await;

    // prompt=login asks for a fresh sign-in over the live session: the same chain again, and
    // once more after a failed attempt (the form shown again must allow the client too).
    let other = ClientApp::start().await;
    let first_party = rp_on_another_origin(&app, &other, true).await;
    app.clock.advance(5);
    browser.goto(&code_request(&app, &first_party, "f-1", "&prompt=login")).await;
    sign_in(&browser, "ann@example.org", "not it").await;
    browser.wait_for_text("Incorrect email or password.").await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    browser.wait_for_text("Application: code received").await;
    code_reached(&app, &other, &first_party, "f-1").await;
    browser.quit().await;
}

#[tokio::test]
async fn rp_initiated_logout_returns_to_a_client_on_another_origin() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let client = ClientApp::start().await;
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = rp_on_another_origin(&app, &client, true).await;
    browser.goto(&code_request(&app, &rp, "s-1", "")).await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    code_reached(&app, &client, &rp, "s-1").await;

    // Without an id_token_hint the person confirms; the confirmation's POST ends at the client.
    let logout = format!(
        "/logout?client_id={}&post_logout_redirect_uri={}&state=bye-1",
        rp.id,
        urlencode(&client.post_logout_uri())
    );
    browser.goto(&app.url(&logout)).await;
    browser.wait_for_text("Billing <Admin> asks to sign you out of Postern.").await;
    browser.press("Sign out").await;
    browser.wait_for_text("Application: signed out").await;
    let back = client.wait_for("/signed-out").await;
    assert_eq!(back.params["state"], "bye-1");
    // The session is over: the account page asks for a sign-in again.
    browser.goto(&app.url("/account")).await;
    browser.wait_for_text("Sign in").await;
    assert!(browser.current_url().await.starts_with(&app.url("/login")));
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
    add_scope(&app, "admin", "Administration", false).await;
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    entitle(&app, &ann, &["deploy", "project:web"]).await;
    browser.goto(&app.url("/login")).await;
    browser.fill("Email", "ann@example.org").await;
    browser.fill("Password", "correct horse").await;
    browser.press("Sign in").await;
    let page = browser.wait_for_text("You have no API keys.").await;
    // Only what Ann may hold is offered: deploy and project:web, not admin or all projects.
    assert!(page.contains("Deploy releases") && page.contains("Projects: web"), "{page}");
    assert!(!page.contains("Administration") && !page.contains("project:*"), "{page}");

    browser.fill("Key name", "laptop <b>").await;
    browser.click_labelled("deploy").await;
    browser.fill("More scopes (space-separated, such as project:web)", "project:web").await;
    browser.press("Create key").await;
    browser.wait_for_text("Your new key").await;
    let key = browser.value_labelled("New API key").await;
    assert!(key.starts_with("pst_u_"), "{key}");
    let record = app.state.node.api_keys.verify(store, &key, None, NOW).await.unwrap().expect("the shown key works");
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
    assert!(app.state.node.api_keys.verify(store, &key, None, NOW).await.unwrap().is_none());
    browser.quit().await;
}
