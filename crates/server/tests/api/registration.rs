//! Registration and email verification over real SMTP: the same answer for new and existing
//! addresses, the verification link (single use, 24 hours, stored as a hash) that verifies and
//! signs in, `email_verified` in ID tokens, the verified-email gate, and the modes
//! (`closed`, `invite`, `open`, allowed domains). In Chromium too.

use crate::authorize::verify_id_token;
use crate::helpers::*;
use crate::keys::{contains, database_bytes};
use crate::mailbox::{link, spawn_mailing, unique_email};
use postern_server::config::Registration;
use postern_testkit::browser::Browser;

async fn spawn_open(
    kind: postern_testkit::Kind,
    domains: &[&str],
) -> Option<(TestApp, postern_testkit::TestDb, crate::mailbox::Mailbox)> {
    spawn_mailing(kind, |config| {
        config.accounts.registration = Registration::Open;
        config.accounts.allowed_email_domains = domains.iter().map(|d| (*d).to_owned()).collect();
    })
    .await
}

/// Posts the registration form: the status and the page.
async fn register(v: &mut Visitor, email: &str, name: &str, password: &str) -> (u16, String) {
    let page = v.get("/register").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let r =
        v.post_form("/register", &[("csrf", &csrf), ("email", email), ("name", name), ("password", password)]).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Opens a verification link and presses its button: the answer to the button.
async fn follow_verification(v: &mut Visitor, url: &str) -> reqwest::Response {
    let form = v.get(url).await;
    if form.status() != 200 {
        return form;
    }
    let page = form.text().await.unwrap();
    let (csrf, token) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "token"));
    v.post_form("/email/verify", &[("csrf", &csrf), ("token", &token)]).await
}

async fn user(app: &TestApp, email: &str) -> Option<postern_store::User> {
    app.state.store.user_by_email(&postern_core::email::Email::parse(email).unwrap()).await.unwrap()
}

both!(registration_answers_alike_and_a_link_verifies_and_signs_in, |kind| async move {
    let Some((app, db, mailbox)) = spawn_open(kind, &[]).await else { return };
    let (ann, bob) = (unique_email("ann"), unique_email("bob"));
    create_user(&app, &bob, "bobs own password").await;

    let (status, new) = register(&mut visitor(&app), &ann, "Ann", "correct horse").await;
    let (existing_status, existing) = register(&mut visitor(&app), &bob, "Bob", "correct horse").await;
    assert_eq!((status, existing_status), (200, 200));
    assert_eq!(new, existing, "the answer does not tell whether the address has an account");
    assert!(new.contains("Check your email"), "{new}");

    let tried = mailbox.wait_for_subject(&bob, "Someone tried to make an account").await;
    assert!(tried.contains("If it was not you"), "{tried}");
    assert!(user(&app, &bob).await.unwrap().email_verified, "the existing account is unchanged");
    let message = mailbox.wait_for_subject(&ann, "Confirm your email address").await;
    let made = user(&app, &ann).await.expect("the account is made");
    assert!(!made.email_verified && made.display_name.as_deref() == Some("Ann"));

    // Unverified, the person may sign in, and ID tokens say the address is not verified.
    let rp = relying_party(&app, true).await;
    let mut v = visitor(&app);
    let code = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), &ann, "correct horse").await;
    let tokens: serde_json::Value = exchange(&app, &rp, &code["code"], VERIFIER).await.json().await.unwrap();
    let claims = verify_id_token(&app, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims.email_verified, Some(false));

    let url = link(&message, "/email/verify?token=");
    let token = url.split("token=").nth(1).unwrap().to_owned();
    assert!(!contains(&database_bytes(&app.state.store, &db.url, db.dir.path()).await, token.as_bytes()));
    // Opening the link uses nothing (a mail scanner may fetch it); the button does.
    assert_eq!(visitor(&app).get(&url).await.status(), 200);
    let mut fresh = visitor(&app);
    let done = follow_verification(&mut fresh, &url).await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/account");
    let account = fresh.get("/account").await.text().await.unwrap();
    assert!(account.contains(&format!("Signed in as <strong>{ann}</strong>")), "{account}");
    assert!(!account.contains("not verified yet"), "{account}");
    assert!(user(&app, &ann).await.unwrap().email_verified);
    let code = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), &ann, "correct horse").await;
    let tokens: serde_json::Value = exchange(&app, &rp, &code["code"], VERIFIER).await.json().await.unwrap();
    assert_eq!(verify_id_token(&app, tokens["id_token"].as_str().unwrap()).await.email_verified, Some(true));

    assert_eq!(follow_verification(&mut visitor(&app), &url).await.status(), 404, "single use");
});

#[tokio::test]
async fn registration_checks_what_it_can_without_looking_anyone_up() {
    let Some((app, _db, mailbox)) = spawn_open(postern_testkit::Kind::Sqlite, &["example.org"]).await else {
        return;
    };
    let ann = unique_email("ann");
    for (email, password, expected) in [
        (ann.as_str(), "password123", "among the most common"),
        (ann.as_str(), &format!("my {ann} pw"), "must not contain your email"),
        (ann.as_str(), "short", "at least 8 characters"),
        ("not an address", "correct horse", "Enter a valid email address."),
        ("ann@elsewhere.example", "correct horse", "Addresses in this domain cannot register here."),
    ] {
        let (status, page) = register(&mut visitor(&app), email, "Ann", password).await;
        assert_eq!(status, 400, "{email} {password}");
        assert!(page.contains(expected), "{expected}: {page}");
        assert!(page.contains("value=\"Ann\""), "the form keeps what was typed");
    }
    assert!(user(&app, &ann).await.is_none());
    assert!(mailbox.messages_to(&ann).is_empty());
    let login = visitor(&app).get("/login").await.text().await.unwrap();
    assert!(login.contains("Create an account"), "open registration is offered on the sign-in page");
}

#[tokio::test]
async fn closed_and_invite_only_registration_make_nobody() {
    for mode in [Registration::Closed, Registration::Invite] {
        let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
        let mut config = test_config(&db);
        config.accounts.registration = mode;
        let app = start(config).await.unwrap();
        let mut v = visitor(&app);
        let form = v.get("/register").await;
        assert_eq!(form.status(), 404);
        let page = form.text().await.unwrap();
        assert!(page.contains("Registration is closed"), "{page}");
        assert_eq!(page.contains("by invitation"), mode == Registration::Invite, "{page}");
        let csrf = Visitor::hidden(&v.get("/login").await.text().await.unwrap(), "csrf");
        let fields =
            [("csrf", csrf.as_str()), ("email", "ann@example.org"), ("name", "Ann"), ("password", "correct horse")];
        assert_eq!(v.post_form("/register", &fields).await.status(), 404);
        assert!(user(&app, "ann@example.org").await.is_none(), "{mode:?}");
        assert!(!v.get("/login").await.text().await.unwrap().contains("Create an account"));
    }
}

#[tokio::test]
async fn a_verification_link_expires_after_24_hours() {
    let Some((app, _db, mailbox)) = spawn_open(postern_testkit::Kind::Sqlite, &[]).await else { return };
    let ann = unique_email("ann");
    assert_eq!(register(&mut visitor(&app), &ann, "", "correct horse").await.0, 200);
    let url = link(&mailbox.wait_for(&ann, 1).await, "/email/verify?token=");
    app.clock.advance(24 * 3600 + 1);
    let r = follow_verification(&mut visitor(&app), &url).await;
    assert_eq!(r.status(), 404);
    assert!(!user(&app, &ann).await.unwrap().email_verified);
}

both!(a_client_requiring_verified_email_refuses_until_verified, |kind| async move {
    let Some((app, _db, mailbox)) = spawn_open(kind, &[]).await else { return };
    let ann = unique_email("ann");
    create_unverified_user(&app, &ann, "correct horse").await;
    let rp = relying_party(&app, true).await;
    let mut c = app.state.store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.policy.require_verified_email = true;
    app.state.store.update_client(&rp.id, &c, NOW).await.unwrap();

    let mut v = visitor(&app);
    let first = v.get(&authorize_url(&rp, "")).await;
    let (login, _) = location_params(&first);
    let page = v.get(&login).await.text().await.unwrap();
    let (csrf, request) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "request"));
    let fields = [("csrf", csrf.as_str()), ("request", &request), ("email", &ann), ("password", "correct horse")];
    let signed_in = v.post_form("/login", &fields).await;
    let gate = v.get(signed_in.headers()["location"].to_str().unwrap()).await;
    assert_eq!(gate.status(), 403);
    let page = gate.text().await.unwrap();
    assert!(page.contains("Verify your email address") && page.contains(&ann), "{page}");
    let none = v.get(&authorize_url(&rp, "&prompt=none")).await;
    assert_eq!(location_params(&none).1["error"], "access_denied", "prompt=none gets an error, not the page");

    // "Resend" sends a new link, three times; then the limit answers.
    let csrf = Visitor::hidden(&page, "csrf");
    for n in 1..=3 {
        assert_eq!(v.post_form("/account/email/resend", &[("csrf", &csrf)]).await.status(), 200);
        mailbox.wait_for(&ann, n).await;
    }
    let limited = v.post_form("/account/email/resend", &[("csrf", &csrf)]).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));

    let url = link(&mailbox.wait_for(&ann, 3).await, "/email/verify?token=");
    let r = follow_verification(&mut v, &url).await;
    assert_eq!(r.status(), 200, "signed in already: the address is verified, the session kept");
    let code = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), &ann, "correct horse").await;
    assert!(code.contains_key("code"), "verified, the client lets the person in");
});

#[tokio::test]
async fn register_verify_and_land_signed_in_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db, mailbox)) = spawn_open(postern_testkit::Kind::Sqlite, &[]).await else { return };
    let ann = unique_email("ann");
    browser.goto(&app.url("/login")).await;
    browser.wait_for_text("Create an account").await;
    browser.goto(&app.url("/register")).await;
    browser.fill("Email", &ann).await;
    browser.fill("Name", "Ann <Example>").await;
    browser.fill("Password", "correct horse").await;
    browser.press("Create account").await;
    browser.wait_for_text("Check your email").await;

    let url = link(&mailbox.wait_for(&ann, 1).await, "/email/verify?token=");
    browser.goto(&url).await;
    browser.wait_for_text(&format!("Confirm that {ann} is your address")).await;
    browser.press("Verify email").await;
    let page = browser.wait_for_text(&format!("Signed in as {ann}")).await;
    assert!(page.contains("Ann <Example>"), "{page}");
    assert!(!page.contains("not verified yet"), "{page}");
    browser.quit().await;
}

#[tokio::test]
async fn the_verified_email_gate_holds_in_the_device_flow_too() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_unverified_user(&app, "ann@example.org", "correct horse").await;
    let client = crate::device::device_client(&app, "TV").await;
    let mut c = app.state.store.client_by_id(&client).await.unwrap().unwrap().settings();
    c.policy.require_verified_email = true;
    app.state.store.update_client(&client, &c, NOW).await.unwrap();
    let started = crate::device::start_device(&app, &client, "openid").await;
    let user_code = started["user_code"].as_str().unwrap().replace('-', "");

    let mut v = visitor(&app);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
    let gate = v.get(&format!("/device/confirm?user_code={user_code}")).await;
    assert_eq!(gate.status(), 403);
    let page = gate.text().await.unwrap();
    assert!(page.contains("Verify your email address"), "{page}");
    let csrf = Visitor::hidden(&page, "csrf");
    let fields = [("csrf", csrf.as_str()), ("user_code", &user_code), ("decision", "approve")];
    assert_eq!(v.post_form("/device/confirm", &fields).await.status(), 403, "approving directly is refused too");
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", started["device_code"].as_str().unwrap()),
        ("client_id", &client),
    ];
    let polled: serde_json::Value =
        app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    assert_eq!(polled["error"], "authorization_pending");
}
