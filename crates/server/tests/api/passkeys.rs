//! Passkeys in real Chromium, through ChromeDriver's virtual authenticator (the WebAuthn
//! WebDriver extension): made on the account page, used alone on the sign-in page, used as the
//! second step after a password (and for a client on another origin that requires one), and
//! removed with the password. Over HTTP: what a forged or replayed answer gets, and an issuer
//! that is an IP address, where passkeys cannot exist.

use crate::authorize::verify_id_token;
use crate::helpers::*;
use postern_testkit::browser::Browser;
use serde_json::Value;

/// A server whose issuer is a domain name (`localhost`), as WebAuthn requires.
async fn spawn_by_name() -> Option<(TestApp, postern_testkit::TestDb)> {
    let db = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await?;
    let mut config = test_config(&db);
    config.issuer = Some("http://localhost:0".into());
    let app = start_real_time(config).await.unwrap();
    assert!(app.state.issuer.starts_with("http://localhost:") && !app.state.issuer.ends_with(":0"));
    Some((app, db))
}

fn at(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.state.issuer)
}

/// Signs ann in with her password in the browser and adds a passkey named `name`.
async fn add_passkey(browser: &Browser, app: &TestApp, name: &str) {
    browser.goto(&at(app, "/login")).await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    browser.fill("Passkey name", name).await;
    browser.press("Add a passkey").await;
    browser.wait_for_text(&format!("Your passkey {name} is added.")).await;
}

async fn sign_out(browser: &Browser) {
    browser.press("Sign out").await;
    browser.wait_for_text("You are signed out.").await;
}

#[tokio::test]
async fn a_passkey_is_added_signs_in_alone_serves_as_second_step_and_is_removed_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn_by_name().await else { return };
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    let authenticator = browser.add_virtual_authenticator().await;

    add_passkey(&browser, &app, "Work laptop").await;
    let page = browser.text().await;
    assert!(page.contains("Work laptop") && page.contains("last used never"), "{page}");
    // The authenticator keeps a discoverable credential for this relying party, whose user
    // handle is a random one, never the user's id.
    let held = browser.authenticator_credentials(&authenticator).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["rpId"], "localhost");
    assert_eq!(held[0]["isResidentCredential"], true);
    let stored = app.state.store.passkeys(&ann).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "Work laptop");
    assert!(!held[0]["userHandle"].as_str().unwrap_or_default().is_empty());
    assert!(!stored[0].credential.contains(&ann));

    // Alone: no password, no email.
    sign_out(&browser).await;
    browser.goto(&at(&app, "/login")).await;
    browser.press("Sign in with a passkey").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    let used = app.state.store.passkeys(&ann).await.unwrap();
    assert!(used[0].last_used_at.is_some(), "the use is recorded");
    assert_ne!(used[0].credential, stored[0].credential, "the counter moved on");

    // After a password: the second step offers the passkey, and no code input (no TOTP).
    sign_out(&browser).await;
    browser.goto(&at(&app, "/login")).await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    let page = browser.wait_for_text("Two-step verification").await;
    assert!(!page.contains("Use a recovery code"), "{page}");
    browser.press("Use a passkey").await;
    browser.wait_for_text("Signed in as ann@example.org").await;

    // Removing needs the password again; then the password alone signs in.
    browser.fill("Password (to remove Work laptop)", "not my password").await;
    browser.press_within("Work laptop", "Remove").await;
    browser.wait_for_text("That is not your current password.").await;
    assert_eq!(app.state.store.passkeys(&ann).await.unwrap().len(), 1);
    browser.fill("Password (to remove Work laptop)", "correct horse").await;
    browser.press_within("Work laptop", "Remove").await;
    browser.wait_for_text("The passkey is removed.").await;
    assert!(app.state.store.passkeys(&ann).await.unwrap().is_empty());
    sign_out(&browser).await;
    browser.goto(&at(&app, "/login")).await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    // And the removed passkey no longer signs in.
    sign_out(&browser).await;
    browser.goto(&at(&app, "/login")).await;
    browser.press("Sign in with a passkey").await;
    browser.wait_for_text("That passkey could not sign you in.").await;
    browser.quit().await;
}

#[tokio::test]
async fn a_passkey_steps_up_for_a_client_on_another_origin_and_signs_in_alone_there_in_a_browser() {
    use postern_testkit::client_app::ClientApp;
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn_by_name().await else { return };
    let client = ClientApp::start().await;
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = crate::second_factor::strict_party_at(&app, &client).await;
    browser.add_virtual_authenticator().await;
    let id_token_of = |code: String| {
        let (app, rp) = (&app, rp.clone());
        async move {
            let tokens: Value = exchange(app, &rp, &code, VERIFIER).await.json().await.unwrap();
            verify_id_token(app, tokens["id_token"].as_str().unwrap()).await
        }
    };

    // The session that added the passkey used the password alone; the client requires more,
    // and the passkey is the second factor.
    add_passkey(&browser, &app, "Phone").await;
    browser.goto(&at(&app, &authorize_url(&rp, ""))).await;
    browser.wait_for_text("Two-step verification").await;
    browser.press("Use a passkey").await;
    browser.wait_for_text("Application: code received").await;
    let answer = client.wait_for("/callback").await;
    let claims = id_token_of(answer.params["code"].clone()).await;
    assert_eq!(claims.amr, ["pwd", "hwk", "user", "mfa"]);
    assert_eq!(claims.acr.as_deref(), Some(postern_core::oidc::ACR_MFA));

    // Signed out, the passkey alone signs in for the client: multi-factor by itself (user
    // verification), so no second step follows.
    browser.goto(&at(&app, "/account")).await;
    sign_out(&browser).await;
    browser.goto(&at(&app, &authorize_url(&rp, ""))).await;
    browser.press("Sign in with a passkey").await;
    browser.wait_for_text("Application: code received").await;
    let answer = client.received().into_iter().filter(|r| r.path == "/callback").nth(1).unwrap();
    let claims = id_token_of(answer.params["code"].clone()).await;
    assert_eq!(claims.amr, ["hwk", "user", "mfa"]);
    assert_eq!(claims.acr.as_deref(), Some(postern_core::oidc::ACR_MFA));
    browser.quit().await;
}

/// The page's CSRF token and a form post with it, as the passkey script makes.
async fn post_with_csrf(v: &mut Visitor, page: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let html = v.get(page).await.text().await.unwrap();
    let csrf = Visitor::hidden(&html, "csrf");
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    v.post_form(path, &all).await
}

#[tokio::test]
async fn forged_replayed_and_misdirected_passkey_answers_are_refused() {
    let Some((app, _db)) = spawn_by_name().await else { return };
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);

    // Without the page's CSRF token, nothing starts.
    assert_eq!(v.post_form("/login/passkey/options", &[]).await.status(), 403);
    let r = post_with_csrf(&mut v, "/login", "/login/passkey/options", &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let started: Value = r.json().await.unwrap();
    let ceremony = started["ceremony"].as_str().unwrap().to_owned();
    let options = &started["options"]["publicKey"];
    assert_eq!(options["rpId"], "localhost");
    assert_eq!(options["userVerification"], "required");
    assert!(options["challenge"].as_str().is_some_and(|c| c.len() >= 43), "{options}");

    // A made-up answer, then the same ceremony again: refused on the sign-in page, no session.
    let forged = serde_json::json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key", "extensions": {},
        "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": "AAAA"}
    })
    .to_string();
    for _ in 0..2 {
        let fields = [("ceremony", ceremony.as_str()), ("credential", forged.as_str())];
        let r = post_with_csrf(&mut v, "/login", "/login/passkey", &fields).await;
        assert_eq!(r.status(), 401);
        assert!(r.text().await.unwrap().contains("That passkey could not sign you in."));
    }
    for garbage in ["", "not json", "{}", "[1,2]"] {
        let fields = [("ceremony", "x"), ("credential", garbage)];
        assert_eq!(post_with_csrf(&mut v, "/login", "/login/passkey", &fields).await.status(), 401);
    }
    assert_eq!(v.get("/account").await.status(), 303, "not signed in");

    // No paused sign-in: the second step has nothing to offer.
    let r = post_with_csrf(&mut v, "/login", "/login/verify/passkey/options", &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    // Making one: the authenticator gets a random handle, never the user's id or address, and
    // is asked for a discoverable credential with user verification.
    v.sign_in("ann@example.org", "correct horse").await;
    let r = post_with_csrf(&mut v, "/account", "/account/passkeys/options", &[]).await;
    assert_eq!(r.status(), 200);
    let started: Value = r.json().await.unwrap();
    let options = &started["options"]["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["rp"]["name"], "Postern");
    assert_eq!(options["user"]["name"], "ann@example.org");
    assert!(!options["user"]["id"].to_string().contains(&ann));
    assert_eq!(options["authenticatorSelection"]["residentKey"], "preferred");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    let ceremony = started["ceremony"].as_str().unwrap().to_owned();
    // A made-up attestation adds nothing; nor does a sign-in ceremony's id at this endpoint.
    let fields = [("ceremony", ceremony.as_str()), ("name", "Laptop"), ("credential", forged.as_str())];
    let r = post_with_csrf(&mut v, "/account", "/account/passkeys", &fields).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("The passkey could not be added."));
    let long = "x".repeat(65);
    let fields = [("ceremony", ceremony.as_str()), ("name", long.as_str()), ("credential", "{}")];
    let r = post_with_csrf(&mut v, "/account", "/account/passkeys", &fields).await;
    assert!(r.text().await.unwrap().contains("at most 64 characters"));
    assert!(app.state.store.passkeys(&ann).await.unwrap().is_empty());
    // Removing a passkey that is not there says so (after the password).
    let fields = [("id", "nope"), ("password", "correct horse")];
    let r = post_with_csrf(&mut v, "/account", "/account/passkeys/remove", &fields).await;
    assert!(r.text().await.unwrap().contains("That passkey is not on your account."));
}

#[tokio::test]
async fn an_issuer_that_is_an_ip_address_offers_no_passkeys() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    assert!(app.state.issuer.starts_with("http://127.0.0.1:"));
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    let page = v.get("/login").await.text().await.unwrap();
    assert!(!page.contains("Sign in with a passkey") && !page.contains("passkey.js"), "{page}");
    let r = post_with_csrf(&mut v, "/login", "/login/passkey/options", &[]).await;
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("domain name"));
    v.sign_in("ann@example.org", "correct horse").await;
    let page = v.get("/account").await.text().await.unwrap();
    assert!(page.contains("Passkeys need this server to be reached by a domain name"), "{page}");
    assert!(!page.contains("Add a passkey"));
}
