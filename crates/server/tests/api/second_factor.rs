//! Two-step verification with an authenticator app (TOTP): set up on the account page from the
//! key it shows, asked for after the password in every sign-in (the page, the code flow to a
//! client, the device flow), never twice for one code, throttled, with recovery codes that work
//! once, and turned off only with the password. In Chromium too.

use crate::authorize::verify_id_token;
use crate::cut_off::signed_in;
use crate::helpers::*;
use crate::keys::{contains, database_bytes};
use postern_core::system::Clock;
use postern_core::totp::{self, TotpSecret};
use postern_testkit::browser::Browser;
use serde_json::Value;

/// The key the account page shows while TOTP is being set up.
fn shown_key(page: &str) -> TotpSecret {
    let start = page.find("id=\"totp-key\">").unwrap() + "id=\"totp-key\">".len();
    let key = &page[start..start + page[start..].find('<').unwrap()];
    TotpSecret::from_bytes(postern_testkit::base32_decode(key))
}

/// The code an authenticator app shows at `now`.
fn code(secret: &TotpSecret, now: i64) -> String {
    totp::code_at(secret, totp::step_at(now))
}

/// Turns TOTP on for the signed-in visitor; returns the secret and the recovery codes.
async fn turn_on(app: &TestApp, v: &mut Visitor) -> (TotpSecret, Vec<String>) {
    let (status, page) = account_form(v, "/account/totp/setup", &[]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Enter this key instead") && page.contains("<svg"), "{page}");
    let secret = shown_key(&page);
    assert_eq!(account_form(v, "/account/totp/enable", &[("code", "000000")]).await.0, 400);
    let (status, page) = account_form(v, "/account/totp/enable", &[("code", &code(&secret, app.clock.now()))]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Two-step verification is on"), "{page}");
    let codes: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_owned())
        .filter(|c| c.len() == 11 && c.as_bytes()[5] == b'-')
        .collect();
    assert_eq!(codes.len(), 10, "{page}");
    (secret, codes)
}

/// Posts the password; returns the answer (a redirect to the second step, for a user with TOTP).
async fn password_step(v: &mut Visitor, login_url: &str, email: &str) -> reqwest::Response {
    let page = v.get(login_url).await.text().await.unwrap();
    let (csrf, request) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "request"));
    let fields = [("csrf", csrf.as_str()), ("request", &request), ("email", email), ("password", "correct horse")];
    v.post_form("/login", &fields).await
}

/// Posts a code (or a recovery code) on the second-step page.
async fn second_step(v: &mut Visitor, field: &str, value: &str) -> reqwest::Response {
    let page = v.get("/login/verify").await.text().await.unwrap();
    assert!(page.contains("Two-step verification"), "{page}");
    let csrf = Visitor::hidden(&page, "csrf");
    v.post_form("/login/verify", &[("csrf", &csrf), (field, value)]).await
}

both!(totp_is_set_up_and_asked_for_after_the_password, |kind| async move {
    let Some((app, db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
    let (secret, recovery) = turn_on(&app, &mut v).await;
    let bytes = database_bytes(&app.state.store, &db.url, db.dir.path()).await;
    assert!(!contains(&bytes, secret.as_bytes()), "the seed is sealed");
    assert!(!contains(&bytes, totp::base32(secret.as_bytes()).as_bytes()));
    assert!(!contains(&bytes, recovery[0].as_bytes()), "recovery codes are hashed");

    // The password alone makes nothing: no session until the code.
    let mut fresh = visitor(&app);
    let r = password_step(&mut fresh, "/login", "ann@example.org").await;
    assert_eq!((r.status().as_u16(), Visitor::location(&r)), (303, "/login/verify".to_owned()));
    assert!(!fresh.cookies.contains_key("postern_session"));
    assert!(!signed_in(&mut fresh).await);
    // The code that turned TOTP on was used: it does not work again.
    let r = second_step(&mut fresh, "code", &code(&secret, app.clock.now())).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("That code is not right."));
    app.clock.advance(30);
    let r = second_step(&mut fresh, "code", &code(&secret, app.clock.now())).await;
    assert_eq!((r.status().as_u16(), Visitor::location(&r)), (303, "/account".to_owned()));
    assert!(signed_in(&mut fresh).await);
    // The same code in another sign-in: refused.
    let mut again = visitor(&app);
    password_step(&mut again, "/login", "ann@example.org").await;
    assert_eq!(second_step(&mut again, "code", &code(&secret, app.clock.now())).await.status(), 401);

    // A recovery code works once.
    let r = second_step(&mut again, "recovery_code", &recovery[3].to_uppercase()).await;
    assert_eq!(r.status(), 303);
    let mut third = visitor(&app);
    password_step(&mut third, "/login", "ann@example.org").await;
    assert_eq!(second_step(&mut third, "recovery_code", &recovery[3]).await.status(), 401);
    let page = third.get("/login/verify?recovery=1").await.text().await.unwrap();
    assert!(page.contains("Recovery code"), "{page}");

    // Off only with the password; then the password alone signs in again.
    let (status, _) = account_form(&mut v, "/account/totp/disable", &[("password", "wrong")]).await;
    assert_eq!(status, 400);
    let (status, page) = account_form(&mut v, "/account/totp/disable", &[("password", "correct horse")]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Set up authenticator app"), "{page}");
    let r = password_step(&mut visitor(&app), "/login", "ann@example.org").await;
    assert_eq!(Visitor::location(&r), "/account");
});

#[tokio::test]
async fn wrong_codes_are_throttled_and_new_recovery_codes_replace_the_old() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let (_, old) = turn_on(&app, &mut v).await;
    let (status, page) = account_form(&mut v, "/account/totp/recovery-codes", &[("password", "correct horse")]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("the old ones no longer work"), "{page}");
    let mut other = visitor(&app);
    password_step(&mut other, "/login", "ann@example.org").await;
    assert_eq!(second_step(&mut other, "recovery_code", &old[0]).await.status(), 401, "old codes stopped");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(second_step(&mut other, "code", "123456").await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = second_step(&mut other, "code", "123456").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

both!(the_code_flow_and_the_device_flow_wait_for_the_second_step, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let (secret, _) = turn_on(&app, &mut v).await;

    // The code flow: password, code, then back to the client with amr saying so.
    let rp = relying_party(&app, true).await;
    let mut browser = visitor(&app);
    let first = browser.get(&authorize_url(&rp, "")).await;
    let login = Visitor::location(&first);
    let r = password_step(&mut browser, &login, "ann@example.org").await;
    assert_eq!(Visitor::location(&r), "/login/verify");
    app.clock.advance(30);
    let r = second_step(&mut browser, "code", &code(&secret, app.clock.now())).await;
    let resumed = browser.get(&Visitor::location(&r)).await;
    let (_, params) = location_params(&resumed);
    let tokens: Value = exchange(&app, &rp, &params["code"], VERIFIER).await.json().await.unwrap();
    let claims = verify_id_token(&app, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);

    // The device flow: the device keeps hearing authorization_pending until the code is in.
    let client = crate::device::device_client(&app, "TV").await;
    let started = crate::device::start_device(&app, &client, "openid").await;
    let poll = || async {
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", started["device_code"].as_str().unwrap()),
            ("client_id", &client),
        ];
        let r = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap();
        r.json::<Value>().await.unwrap()
    };
    let user_code = started["user_code"].as_str().unwrap().replace('-', "");
    let mut phone = visitor(&app);
    let page = phone.get(&format!("/device?user_code={user_code}")).await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let r = phone.post_form("/device", &[("csrf", &csrf), ("user_code", &user_code)]).await;
    let r = password_step(&mut phone, &Visitor::location(&r), "ann@example.org").await;
    assert_eq!(Visitor::location(&r), "/login/verify");
    assert_eq!(poll().await["error"], "authorization_pending");
    app.clock.advance(30);
    let r = second_step(&mut phone, "code", &code(&secret, app.clock.now())).await;
    let confirm = Visitor::location(&r);
    assert!(confirm.starts_with("/device/confirm"), "{confirm}");
    let page = phone.get(&confirm).await.text().await.unwrap();
    let (csrf, code_field) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "user_code"));
    let fields = [("csrf", csrf.as_str()), ("user_code", &code_field), ("decision", "approve")];
    assert_eq!(phone.post_form("/device/confirm", &fields).await.status(), 200);
    app.clock.advance(10);
    let tokens = poll().await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
});

/// In a browser: signs ann in with the password and turns TOTP on from the key the page shows
/// (on the real clock); returns the secret and the step the first code used.
async fn browser_turn_on(browser: &Browser, app: &TestApp) -> (TotpSecret, i64) {
    browser.goto(&app.url("/login")).await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    browser.press("Set up authenticator app").await;
    let page = browser.wait_for_text("Enter this key instead").await;
    let key = page.split("Enter this key instead: ").nth(1).unwrap().lines().next().unwrap().to_owned();
    let secret = TotpSecret::from_bytes(postern_testkit::base32_decode(&key));
    let used = totp::step_at(postern_core::system::SystemClock.now());
    browser.fill("Code", &totp::code_at(&secret, used)).await;
    browser.press("Turn on").await;
    browser.wait_for_text("Your recovery codes").await;
    (secret, used)
}

#[tokio::test]
async fn set_up_totp_then_sign_in_with_codes_recovery_codes_and_turn_it_off_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    // The real clock: the browser's codes are computed for now.
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let app = start_real_time(test_config(&db)).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let (secret, used) = browser_turn_on(&browser, &app).await;
    let now = || postern_core::system::SystemClock.now();
    // The codes shown once, and the same in the file "Download" saves.
    let page = browser.text().await;
    let recovery: Vec<String> = page
        .split_whitespace()
        .filter(|w| {
            w.len() == 11 && w.as_bytes()[5] == b'-' && w.bytes().all(|b| b == b'-' || b.is_ascii_alphanumeric())
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(recovery.len(), 10, "{page}");
    browser.follow("Download").await;
    let file = browser.downloaded("postern-recovery-codes.txt").await;
    assert_eq!(file.lines().collect::<Vec<_>>(), recovery);
    browser.press("Sign out").await;
    browser.wait_for_text("You are signed out.").await;

    let password_step = || async {
        browser.goto(&app.url("/login")).await;
        browser.submit_sign_in("ann@example.org", "correct horse").await;
        browser.wait_for_text("Two-step verification").await;
    };
    password_step().await;
    // The step the set-up used cannot be used again; the next one is within the window.
    let step = totp::step_at(now()).max(used + 1);
    let code = totp::code_at(&secret, step);
    browser.fill("Code", &code).await;
    browser.press("Verify").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    browser.press("Sign out").await;
    browser.wait_for_text("You are signed out.").await;

    // The same code again is refused; a recovery code works, once.
    password_step().await;
    browser.fill("Code", &code).await;
    browser.press("Verify").await;
    browser.wait_for_text("That code is not right.").await;
    browser.follow("Use a recovery code").await;
    browser.wait_for_text("Recovery code").await;
    browser.fill("Recovery code", &recovery[0]).await;
    browser.press("Verify").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    browser.wait_for_text("9 recovery codes are left").await;
    browser.press("Sign out").await;
    browser.wait_for_text("You are signed out.").await;
    password_step().await;
    browser.follow("Use a recovery code").await;
    browser.wait_for_text("Recovery code").await;
    browser.fill("Recovery code", &recovery[0]).await;
    browser.press("Verify").await;
    browser.wait_for_text("That recovery code is not right or was used.").await;
    browser.fill("Recovery code", &recovery[1]).await;
    browser.press("Verify").await;
    browser.wait_for_text("Signed in as ann@example.org").await;

    // Turning it off needs the password again; then the password alone signs in.
    browser.fill("Password (to turn off two-step verification)", "not my password").await;
    browser.press("Turn off").await;
    browser.wait_for_text("That is not your current password.").await;
    browser.fill("Password (to turn off two-step verification)", "correct horse").await;
    browser.press("Turn off").await;
    browser.wait_for_text("Two-step verification is off.").await;
    browser.press("Sign out").await;
    browser.wait_for_text("You are signed out.").await;
    browser.goto(&app.url("/login")).await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    browser.quit().await;
}

#[tokio::test]
async fn a_verification_link_does_not_sign_in_someone_with_two_step_verification() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let user = create_unverified_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    turn_on(&app, &mut v).await;
    let token = "v".repeat(43);
    let link = postern_store::NewEmailLink {
        hash: postern_core::secret::TokenHash::of(&token),
        purpose: postern_store::LinkPurpose::Verify,
        user_id: &user.id,
        email: &user.email,
        now: NOW,
        expires_at: NOW + 3600,
    };
    app.state.store.create_email_link(&link).await.unwrap();
    let mut fresh = visitor(&app);
    let page = fresh.get(&format!("/email/verify?token={token}")).await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let r = fresh.post_form("/email/verify", &[("csrf", &csrf), ("token", &token)]).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign in to go on"));
    assert!(!signed_in(&mut fresh).await, "the link is one factor; two are needed");
    assert!(app.state.store.user_by_id(&user.id).await.unwrap().unwrap().email_verified);
}

/// Requires a second factor of `rp`'s users.
/// A first-party client whose redirect URI is `client`'s (another origin), with require_mfa.
pub(crate) async fn strict_party_at(app: &TestApp, client: &postern_testkit::client_app::ClientApp) -> Rp {
    let mut rp = relying_party(app, true).await;
    rp.redirect = client.redirect_uri();
    let mut c = app.state.store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.redirect_uris = vec![postern_core::client::RedirectUri::parse(&rp.redirect).unwrap()];
    app.state.store.update_client(&rp.id, &c, NOW).await.unwrap();
    require_mfa(app, &rp).await;
    rp
}

async fn require_mfa(app: &TestApp, rp: &Rp) {
    let mut c = app.state.store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.policy.require_mfa = true;
    app.state.store.update_client(&rp.id, &c, NOW).await.unwrap();
}

both!(a_client_requiring_a_second_factor_steps_up_a_password_only_session, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    create_user(&app, "bob@example.org", "bobs password").await;
    let plain = relying_party(&app, true).await;
    let strict = relying_party(&app, true).await;
    require_mfa(&app, &strict).await;

    // Signed in with the password alone (then TOTP turned on in that same session).
    let (mut v, mut w) = (visitor(&app), visitor(&app));
    v.sign_in("ann@example.org", "correct horse").await;
    w.sign_in("ann@example.org", "correct horse").await;
    let (secret, _) = turn_on(&app, &mut v).await;
    let tokens = |rp: &Rp, params: std::collections::HashMap<String, String>| {
        let (app, rp) = (&app, rp.clone());
        async move {
            let t: Value = exchange(app, &rp, &params["code"], VERIFIER).await.json().await.unwrap();
            verify_id_token(app, t["id_token"].as_str().unwrap()).await
        }
    };
    let (_, params) = location_params(&v.get(&authorize_url(&plain, "")).await);
    let claims = tokens(&plain, params).await;
    assert_eq!(
        (claims.amr.clone(), claims.acr.as_deref()),
        (vec!["pwd".to_owned()], Some("urn:postern:single-factor"))
    );

    let none = v.get(&authorize_url(&strict, "&prompt=none")).await;
    assert_eq!(location_params(&none).1["error"], "interaction_required");
    // Two sessions with the password alone: one asked by the client, one by the request.
    for (browser, rp, extra) in [(&mut v, &strict, ""), (&mut w, &plain, "&acr_values=urn%3Apostern%3Amfa")] {
        let r = browser.get(&authorize_url(rp, extra)).await;
        assert_eq!(Visitor::location(&r), "/login/verify", "step-up, not a code");
        app.clock.advance(30);
        let r = second_step(browser, "code", &code(&secret, app.clock.now())).await;
        let (_, params) = location_params(&browser.get(&Visitor::location(&r)).await);
        let claims = tokens(rp, params).await;
        assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
        assert_eq!(claims.acr.as_deref(), Some("urn:postern:mfa"));
    }
    // Now the session has a second factor: no more steps. Its access token says so, and a
    // resource guarded with require_mfa lets it in (a password-only token gets RFC 9470's
    // insufficient_user_authentication).
    let (_, params) = location_params(&v.get(&authorize_url(&strict, "")).await);
    assert!(params.contains_key("code"), "{params:?}");
    let stepped_up: Value = exchange(&app, &strict, &params["code"], VERIFIER).await.json().await.unwrap();
    let guard = postern_guard::Guard::builder(app.state.issuer.to_string(), app.state.issuer.to_string())
        .clock(app.clock.clone())
        .build()
        .await
        .unwrap();
    let principal = guard.verify(stepped_up["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!((principal.amr.len(), principal.acr.as_deref()), (3, Some("urn:postern:mfa")));
    assert_eq!(principal.require_mfa(), Ok(()));
    let (_, params) = location_params(&visitor(&app).get(&authorize_url(&plain, "")).await);
    assert!(!params.contains_key("code"), "not signed in: to the sign-in page");
    let mut bob_first = visitor(&app);
    bob_first.sign_in("bob@example.org", "bobs password").await;
    let (_, params) = location_params(&bob_first.get(&authorize_url(&plain, "")).await);
    let password_only: Value = exchange(&app, &plain, &params["code"], VERIFIER).await.json().await.unwrap();
    let principal = guard.verify(password_only["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(principal.amr, ["pwd"]);
    let refused = principal.require_mfa().unwrap_err();
    assert_eq!(refused.code(), Some("insufficient_user_authentication"));
    assert!(refused.challenge().contains("acr_values=\"urn:postern:mfa\""));

    // Someone without a second factor is told to set one up.
    let mut bob = visitor(&app);
    bob.sign_in("bob@example.org", "bobs password").await;
    let r = bob.get(&authorize_url(&strict, "")).await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Two-step verification needed"));
});

#[tokio::test]
async fn step_up_for_a_client_on_another_origin_in_a_browser() {
    use postern_testkit::client_app::ClientApp;
    let Some(browser) = Browser::start().await else { return };
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let app = start_real_time(test_config(&db)).await.unwrap();
    let client = ClientApp::start().await;
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = strict_party_at(&app, &client).await;

    let (secret, used) = browser_turn_on(&browser, &app).await;
    let now = || postern_core::system::SystemClock.now();

    // The session used the password alone; the client requires more.
    browser.goto(&app.url(&authorize_url(&rp, ""))).await;
    browser.wait_for_text("Two-step verification").await;
    browser.fill("Code", &totp::code_at(&secret, totp::step_at(now()).max(used + 1))).await;
    browser.press("Verify").await;
    browser.wait_for_text("Application: code received").await;
    let answer = client.wait_for("/callback").await;
    let tokens: Value = exchange(&app, &rp, &answer.params["code"], VERIFIER).await.json().await.unwrap();
    assert_eq!(verify_id_token(&app, tokens["id_token"].as_str().unwrap()).await.amr, ["pwd", "otp", "mfa"]);
    browser.quit().await;
}

both!(a_device_client_requiring_a_second_factor_steps_up_too, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let (secret, _) = turn_on(&app, &mut v).await;
    let client = crate::device::device_client(&app, "TV").await;
    let mut c = app.state.store.client_by_id(&client).await.unwrap().unwrap().settings();
    c.policy.require_mfa = true;
    app.state.store.update_client(&client, &c, NOW).await.unwrap();
    let started = crate::device::start_device(&app, &client, "openid").await;
    let user_code = started["user_code"].as_str().unwrap().replace('-', "");

    // Approving straight away, with the password-only session, is refused.
    let page = v.get("/account").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let fields = [("csrf", csrf.as_str()), ("user_code", &user_code), ("decision", "approve")];
    assert_eq!(v.post_form("/device/confirm", &fields).await.status(), 403);
    // The confirmation page asks for the code first, then comes back.
    let r = v.get(&format!("/device/confirm?user_code={user_code}")).await;
    assert_eq!(Visitor::location(&r), "/login/verify");
    app.clock.advance(30);
    let r = second_step(&mut v, "code", &code(&secret, app.clock.now())).await;
    let back = Visitor::location(&r);
    assert!(back.starts_with("/device/confirm"), "{back}");
    let page = v.get(&back).await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let fields = [("csrf", csrf.as_str()), ("user_code", &user_code), ("decision", "approve")];
    assert_eq!(v.post_form("/device/confirm", &fields).await.status(), 200);
});

#[tokio::test]
async fn a_device_is_approved_through_the_second_step_while_it_polls_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let (secret, _) = turn_on(&app, &mut v).await;
    let client = crate::device::device_client(&app, "Living-room TV").await;
    let started = crate::device::start_device(&app, &client, "openid").await;
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let pending = || async {
        app.clock.advance(5);
        let (status, body) = crate::device::poll(&app, &client, &device_code).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")), "{body}");
    };

    pending().await;
    browser.goto(started["verification_uri_complete"].as_str().unwrap()).await;
    browser.wait_for_text("Enter the code shown on your device.").await;
    browser.press("Continue").await;
    browser.wait_for_text("Sign in").await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    browser.wait_for_text("Two-step verification").await;
    // A right password alone approves nothing: the device still waits.
    pending().await;
    app.clock.advance(30);
    browser.fill("Code", &code(&secret, app.clock.now())).await;
    browser.press("Verify").await;
    browser.wait_for_text("Approve only if you started this on your own device").await;
    pending().await;
    browser.press("Approve").await;
    browser.wait_for_text("You can return to your device now.").await;
    app.clock.advance(5);
    let (status, tokens) = crate::device::poll(&app, &client, &device_code).await;
    assert_eq!(status, 200, "{tokens}");
    let claims = verify_id_token(&app, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims.amr, ["pwd", "otp", "mfa"]);
    browser.quit().await;
}

/// The access token the signed-in visitor's code flow to `rp` ends with.
async fn access_token(app: &TestApp, rp: &Rp, v: &mut Visitor) -> String {
    let (_, params) = location_params(&v.get(&authorize_url(rp, "")).await);
    let t: Value = exchange(app, rp, &params["code"], VERIFIER).await.json().await.unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

both!(introspection_says_how_the_person_behind_an_opaque_token_signed_in, |kind| async move {
    use postern_core::client::AccessTokenFormat;
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    create_user(&app, "bob@example.org", "bobs password").await;
    let rp = relying_party(&app, true).await;
    let mut c = app.state.store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.access_token_format = AccessTokenFormat::Opaque;
    app.state.store.update_client(&rp.id, &c, NOW).await.unwrap();
    // The client's tokens are for an API, whose resource server introspects them.
    let api = "https://api.example.org";
    let (rs, rs_secret) = add_resource(&app, api, "API", &[]).await;
    postern_server::resources::allow(&app.state.store, &rp.id, &[api.into()]).await.unwrap();
    let guard = postern_guard::Guard::builder(app.state.issuer.to_string(), api)
        .introspection_client(rs.clone(), rs_secret.clone())
        .clock(app.clock.clone())
        .build()
        .await
        .unwrap();

    // Ann signs in with the password and a code.
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let (secret, _) = turn_on(&app, &mut v).await;
    let mut ann = visitor(&app);
    let r = password_step(&mut ann, "/login", "ann@example.org").await;
    assert_eq!(Visitor::location(&r), "/login/verify");
    app.clock.advance(30);
    second_step(&mut ann, "code", &code(&secret, app.clock.now())).await;
    let strong = access_token(&app, &rp, &mut ann).await;
    assert!(!strong.contains('.'), "an opaque token");
    let described = crate::refresh::introspect_as(&app, &rp, &strong).await;
    assert_eq!(described["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{described}");
    assert_eq!(described["acr"], "urn:postern:mfa");
    assert!(described["auth_time"].is_i64());
    let principal = guard.verify(&strong).await.unwrap();
    assert_eq!(principal.require_mfa(), Ok(()));

    // Bob, with the password alone: single-factor, refused by require_mfa.
    let mut bob = visitor(&app);
    bob.sign_in("bob@example.org", "bobs password").await;
    let weak = access_token(&app, &rp, &mut bob).await;
    let described = crate::refresh::introspect_as(&app, &rp, &weak).await;
    assert_eq!(described["amr"], serde_json::json!(["pwd"]));
    assert_eq!(described["acr"], "urn:postern:single-factor");
    let refused = guard.verify(&weak).await.unwrap().require_mfa().unwrap_err();
    assert_eq!(refused.code(), Some("insufficient_user_authentication"));

    // A client's own token describes no sign-in.
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&rs, Some(&rs_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let own = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let described = introspect_with(&app, &(rs, rs_secret), &own).await;
    assert_eq!(described["active"], true, "{described}");
    assert!(described.get("amr").is_none() && described.get("acr").is_none(), "{described}");
});
