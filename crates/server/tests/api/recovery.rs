//! Forgotten passwords over real SMTP: the same answer for every address, a reset link that
//! works once and for 30 minutes, stored only as a hash, and a reset that signs out everything
//! signed in with the old password. In Chromium too.

use crate::cut_off::{refresh, signed_in, tokens_for, userinfo};
use crate::helpers::*;
use crate::keys::{contains, database_bytes, hex};
use crate::mailbox::{link, spawn_mailing, unique_email};
use crate::refresh::offline_rp;
use postern_core::client::AccessTokenFormat;
use postern_testkit::browser::Browser;

/// Posts the forgot-password form for `email`: the status and the page.
async fn ask_for_reset(v: &mut Visitor, email: &str) -> (u16, String) {
    let page = v.get("/password/forgot").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let r = v.post_form("/password/forgot", &[("csrf", &csrf), ("email", email)]).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Opens a reset link and posts `password`: the status and the page.
async fn set_password(v: &mut Visitor, url: &str, password: &str) -> (u16, String) {
    let form = v.get(url).await;
    if form.status() != 200 {
        return (form.status().as_u16(), form.text().await.unwrap());
    }
    let page = form.text().await.unwrap();
    let (csrf, token) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "token"));
    let r = v.post_form("/password/reset", &[("csrf", &csrf), ("token", &token), ("password", password)]).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

both!(a_reset_link_sets_a_new_password_and_signs_out_everything, |kind| async move {
    let Some((app, db, mailbox)) = spawn_mailing(kind, |_| {}).await else { return };
    let ann = unique_email("ann");
    create_user(&app, &ann, "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let mut v = visitor(&app);
    let before = tokens_for(&app, &mut v, &rp, &ann, "correct horse").await;
    let mut other = visitor(&app);
    assert_eq!(other.sign_in(&ann, "correct horse").await.status(), 303);

    // The same answer, status and body, for an account and for nobody.
    let (status, known) = ask_for_reset(&mut visitor(&app), &ann).await;
    let (unknown_status, unknown) = ask_for_reset(&mut visitor(&app), &unique_email("nobody")).await;
    assert_eq!((status, unknown_status), (200, 200));
    assert_eq!(known, unknown, "the answer does not tell whether the account exists");
    assert!(known.contains("Check your email"), "{known}");

    let message = mailbox.wait_for_subject(&ann, "Reset your password").await;
    assert!(message.contains("text/plain") && message.contains("text/html"), "{message}");
    assert!(message.contains("If you did not ask for this"), "{message}");
    let url = link(&message, "/password/reset?token=");
    let token = url.split("token=").nth(1).unwrap().to_owned();
    let bytes = database_bytes(&app.state.store, &db.url, db.dir.path()).await;
    assert!(!contains(&bytes, token.as_bytes()), "the link's token is stored only as a hash");
    let hash = postern_core::secret::TokenHash::of(&token);
    assert!(contains(&bytes, hash.as_bytes()) || contains(&bytes, hex(hash.as_bytes()).as_bytes()), "its hash is");

    // The policy holds; a refused password does not use the link up.
    let (status, page) = set_password(&mut visitor(&app), &url, "password123").await;
    assert_eq!(status, 400);
    assert!(page.contains("among the most common"), "{page}");
    let (status, page) = set_password(&mut visitor(&app), &url, "battery staple").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Password set"), "{page}");

    assert!(!signed_in(&mut v).await && !signed_in(&mut other).await, "every session ended");
    assert_eq!(refresh(&app, &rp, before["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");
    assert_eq!(userinfo(&app, before["access_token"].as_str().unwrap()).await, 401, "live JWTs refused");
    assert_eq!(visitor(&app).sign_in(&ann, "correct horse").await.status(), 401);
    assert_eq!(visitor(&app).sign_in(&ann, "battery staple").await.status(), 303);
    let changed = mailbox.wait_for_subject(&ann, "Your password for").await;
    assert!(changed.contains("was just changed"), "{changed}");

    // The link worked once.
    let (status, page) = set_password(&mut visitor(&app), &url, "another good one").await;
    assert_eq!(status, 404);
    assert!(page.contains("Link not valid"), "{page}");
    assert!(mailbox.messages_to(&unique_email("nobody")).is_empty());
});

#[tokio::test]
async fn a_reset_link_expires_after_30_minutes() {
    let Some((app, _db, mailbox)) = spawn_mailing(postern_testkit::Kind::Sqlite, |_| {}).await else { return };
    let ann = unique_email("ann");
    create_user(&app, &ann, "correct horse").await;
    assert_eq!(ask_for_reset(&mut visitor(&app), &ann).await.0, 200);
    let url = link(&mailbox.wait_for(&ann, 1).await, "/password/reset?token=");
    app.clock.advance(30 * 60 + 1);
    let (status, page) = set_password(&mut visitor(&app), &url, "battery staple").await;
    assert_eq!(status, 404, "{page}");
    assert_eq!(visitor(&app).sign_in(&ann, "correct horse").await.status(), 303, "the old password still works");
}

#[tokio::test]
async fn reset_requests_are_throttled_alike_for_every_address() {
    let Some((app, _db, mailbox)) = spawn_mailing(postern_testkit::Kind::Sqlite, |_| {}).await else { return };
    let ann = unique_email("ann");
    create_user(&app, &ann, "correct horse").await;
    let nobody = unique_email("nobody");
    for email in [&ann, &nobody] {
        for _ in 0..3 {
            assert_eq!(ask_for_reset(&mut visitor(&app), email).await.0, 200);
        }
        let mut v = visitor(&app);
        let page = v.get("/password/forgot").await.text().await.unwrap();
        let csrf = Visitor::hidden(&page, "csrf");
        let r = v.post_form("/password/forgot", &[("csrf", &csrf), ("email", email)]).await;
        assert_eq!(r.status(), 429, "the fourth request about {email} waits");
        let wait: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    mailbox.wait_for(&ann, 3).await;
    // A minute later, one more goes out.
    app.clock.advance(61);
    assert_eq!(ask_for_reset(&mut visitor(&app), &ann).await.0, 200);
    mailbox.wait_for(&ann, 4).await;
}

#[tokio::test]
async fn forgot_and_reset_in_a_browser_sign_out_the_other_browser() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db, mailbox)) = spawn_mailing(postern_testkit::Kind::Sqlite, |_| {}).await else { return };
    let ann = unique_email("ann");
    create_user(&app, &ann, "correct horse").await;
    let mut elsewhere = visitor(&app);
    assert_eq!(elsewhere.sign_in(&ann, "correct horse").await.status(), 303);

    browser.goto(&app.url("/login")).await;
    browser.wait_for_text("Forgot your password?").await;
    browser.goto(&app.url("/password/forgot")).await;
    browser.fill("Email", &ann).await;
    browser.press("Send reset link").await;
    browser.wait_for_text("Check your email").await;

    let url = link(&mailbox.wait_for(&ann, 1).await, "/password/reset?token=");
    browser.goto(&url).await;
    browser.wait_for_text(&format!("For {ann}")).await;
    browser.fill("New password", "password123").await;
    browser.press("Set password").await;
    browser.wait_for_text("Choose another password").await;
    browser.fill("New password", "battery staple").await;
    browser.press("Set password").await;
    browser.wait_for_text("Your new password is set").await;
    assert!(!signed_in(&mut elsewhere).await, "the other browser is signed out");

    browser.goto(&app.url("/login")).await;
    browser.fill("Email", &ann).await;
    browser.fill("Password", "battery staple").await;
    browser.press("Sign in").await;
    browser.wait_for_text(&format!("Signed in as {ann}")).await;
    browser.quit().await;
}
