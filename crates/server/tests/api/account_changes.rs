//! Changing the password, changing the email address, deleting the account, and accepting an
//! invitation, over real SMTP, on both backends, and in Chromium.

use crate::cut_off::{refresh, signed_in, tokens_for, userinfo};
use crate::helpers::*;
use crate::mailbox::{link, spawn_mailing, unique_email};
use crate::refresh::offline_rp;
use postern_core::client::AccessTokenFormat;
use postern_testkit::browser::Browser;
use serde_json::Value;

/// Opens a link from an email and presses its one button: the answer.
async fn press_link(v: &mut Visitor, url: &str, action: &str) -> (u16, String) {
    let page = v.get(url).await;
    if page.status() != 200 {
        return (page.status().as_u16(), page.text().await.unwrap());
    }
    let page = page.text().await.unwrap();
    let (csrf, token) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "token"));
    let r = v.post_form(action, &[("csrf", &csrf), ("token", &token)]).await;
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn userinfo_claims(app: &TestApp, token: &str) -> Value {
    let r = app.http.get(app.url("/userinfo")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn by_email(app: &TestApp, email: &str) -> Option<postern_store::User> {
    app.state.store.user_by_email(&postern_core::email::Email::parse(email).unwrap()).await.unwrap()
}

both!(a_new_password_needs_the_current_one_and_signs_out_the_rest, |kind| async move {
    let Some((app, _db, mailbox)) = spawn_mailing(kind, |_| {}).await else { return };
    let ann = unique_email("ann");
    create_user(&app, &ann, "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let mut here = visitor(&app);
    let before = tokens_for(&app, &mut here, &rp, &ann, "correct horse").await;
    let mut elsewhere = visitor(&app);
    assert_eq!(elsewhere.sign_in(&ann, "correct horse").await.status(), 303);

    let wrong = [("current_password", "not it"), ("new_password", "battery staple")];
    let (status, page) = account_form(&mut here, "/account/password", &wrong).await;
    assert_eq!(status, 400);
    assert!(page.contains("That is not your current password."), "{page}");
    let common = [("current_password", "correct horse"), ("new_password", "password123")];
    assert_eq!(account_form(&mut here, "/account/password", &common).await.0, 400);
    let right = [("current_password", "correct horse"), ("new_password", "battery staple")];
    let (status, page) = account_form(&mut here, "/account/password", &right).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Your password is changed."), "{page}");

    assert!(signed_in(&mut here).await, "this browser stays signed in");
    assert!(!signed_in(&mut elsewhere).await, "the other is signed out");
    assert_eq!(refresh(&app, &rp, before["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");
    assert_eq!(visitor(&app).sign_in(&ann, "correct horse").await.status(), 401);
    assert_eq!(visitor(&app).sign_in(&ann, "battery staple").await.status(), 303);
    mailbox.wait_for_subject(&ann, "Your password for").await;
});

both!(a_new_address_is_confirmed_by_a_link_and_the_old_one_is_told, |kind| async move {
    let Some((app, _db, mailbox)) = spawn_mailing(kind, |_| {}).await else { return };
    let (ann, new, taken) = (unique_email("ann"), unique_email("ann-new"), unique_email("bob"));
    create_user(&app, &ann, "correct horse").await;
    create_user(&app, &taken, "bobs password").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let mut v = visitor(&app);
    let code = sign_in_and_allow(&mut v, &crate::refresh::url(&rp, "openid email"), &ann, "correct horse").await;
    let tokens: Value = exchange(&app, &rp, &code["code"], VERIFIER).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo_claims(&app, access).await["email"], ann.as_str());

    let (status, _) = account_form(&mut v, "/account/email", &[("email", &new), ("password", "wrong")]).await;
    assert_eq!(status, 400);
    let (status, page) =
        account_form(&mut v, "/account/email", &[("email", &new), ("password", "correct horse")]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("We sent a link to {new}")), "{page}");
    assert_eq!(by_email(&app, &ann).await.unwrap().email, ann, "nothing changes before the link");

    // A link to an address someone else has by then changes nothing.
    let (_, _) = account_form(&mut v, "/account/email", &[("email", &taken), ("password", "correct horse")]).await;
    let to_taken = link(&mailbox.wait_for_subject(&taken, "Confirm your new email address").await, "/email/change");
    assert_eq!(press_link(&mut visitor(&app), &to_taken, "/email/change").await.0, 409);

    let message = mailbox.wait_for_subject(&new, "Confirm your new email address").await;
    let url = link(&message, "/email/change?token=");
    let (status, page) = press_link(&mut visitor(&app), &url, "/email/change").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("is now {new}")), "{page}");
    let user = by_email(&app, &new).await.expect("the account has the new address");
    assert!(user.email_verified && by_email(&app, &ann).await.is_none());
    assert_eq!(userinfo_claims(&app, access).await["email"], new.as_str(), "userinfo says so at once");
    let told = mailbox.wait_for_subject(&ann, "Your email address for").await;
    assert!(told.contains(&new), "{told}");
    assert_eq!(press_link(&mut visitor(&app), &url, "/email/change").await.0, 404, "single use");
    assert_eq!(visitor(&app).sign_in(&new, "correct horse").await.status(), 303);
});

both!(deleting_the_account_takes_everything_with_it, |kind| async move {
    let Some((app, db, mailbox)) = spawn_mailing(kind, |_| {}).await else { return };
    let ann = unique_email("ann");
    let id = create_user(&app, &ann, "correct horse").await;
    add_scope(&app, "read", "Read things", false).await;
    entitle(&app, &id, &["read"]).await;
    let sa = app.state.store.create_service_account("sa-1", "ci", "", &id, NOW).await.unwrap();
    entitle(&app, &format!("sa:{}", sa.id), &["read"]).await;
    let personal = crate::cut_off::api_key(&app, postern_store::KeyOwner::User(&id)).await;
    let robot = crate::cut_off::api_key(&app, postern_store::KeyOwner::ServiceAccount(&sa.id)).await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let mut v = visitor(&app);
    let tokens = tokens_for(&app, &mut v, &rp, &ann, "correct horse").await;

    let (status, page) = account_form(&mut v, "/account/delete", &[("password", "correct horse")]).await;
    assert_eq!(status, 400, "the box must be ticked: {page}");
    let (status, _) = account_form(&mut v, "/account/delete", &[("password", "nope"), ("confirm", "yes")]).await;
    assert_eq!(status, 400);
    assert!(by_email(&app, &ann).await.is_some());
    let (status, page) =
        account_form(&mut v, "/account/delete", &[("password", "correct horse"), ("confirm", "yes")]).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Account deleted"), "{page}");

    assert!(by_email(&app, &ann).await.is_none());
    assert!(!signed_in(&mut v).await);
    for k in [&personal, &robot] {
        let r = app.http.get(app.url("/userinfo")).bearer_auth(k).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let introspected: Value = app
            .http
            .post(app.url("/oauth/introspect"))
            .basic_auth(&rp.id, rp.secret.as_deref())
            .form(&[("token", k.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(introspected["active"], false, "keys go with the account");
    }
    assert!(app.state.store.service_accounts().await.unwrap().is_empty());
    assert_eq!(refresh(&app, &rp, tokens["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");
    assert_eq!(userinfo(&app, tokens["access_token"].as_str().unwrap()).await, 401);
    // The audit log keeps its events under the random id, without the person's address.
    let events = app.state.store.list_audit(0, None, 1000).await.unwrap();
    assert!(events.iter().any(|e| e.target.as_deref() == Some(id.as_str()) && e.action == "user.deleted"));
    let audit_text: String = events.iter().filter_map(|e| e.details.as_ref().map(|d| d.to_string())).collect();
    assert!(!audit_text.contains(&ann), "{audit_text}");
    // No row anywhere holds the address. (SQLite's files may keep deleted bytes in free pages
    // until they are reused, so the byte check is on PostgreSQL's rows.)
    if kind == postern_testkit::Kind::Postgres {
        let bytes = crate::keys::database_bytes(&app.state.store, &db.url, db.dir.path()).await;
        assert!(!crate::keys::contains(&bytes, ann.as_bytes()), "the address is gone from every table");
    }
    mailbox.wait_for_subject(&ann, "Your account at").await;
});

both!(an_invitation_is_accepted_once_and_signs_in, |kind| async move {
    let Some((app, _db, mailbox)) = spawn_mailing(kind, |_| {}).await else { return };
    let admin = unique_email("admin");
    let account = postern_server::accounts::NewAccount {
        email: &admin,
        password: Some("admin password"),
        is_admin: true,
        ..postern_server::accounts::NewAccount::default()
    };
    let params = postern_core::password::Argon2Params::INSECURE_FOR_TESTS;
    postern_server::accounts::create_user(&app.state.store, params, &account, NOW).await.unwrap();
    create_user(&app, "someone@example.org", "correct horse").await;
    add_scope(&app, "read", "Read things", false).await;
    let cara = unique_email("cara");
    let mut a = visitor(&app);
    assert_eq!(a.sign_in(&admin, "admin password").await.status(), 303);
    let post = |v: &Visitor, body: Value| {
        v.http
            .post(v.url("/api/admin/invitations"))
            .header("cookie", v.cookie_header())
            .header("origin", &v.origin)
            .json(&body)
            .send()
    };
    let r = post(&a, serde_json::json!({ "email": cara, "scopes": ["read"] })).await.unwrap();
    assert_eq!(r.status(), 201);
    let invited: Value = r.json().await.unwrap();
    assert_eq!(invited["user"]["email"], cara.as_str());
    assert!(invited.get("link").is_none(), "the link goes by email only");
    let r = post(&a, serde_json::json!({ "email": "someone@example.org" })).await.unwrap();
    assert_eq!(r.status(), 409, "a working account is not invited");
    let mut someone = visitor(&app);
    assert_eq!(someone.sign_in("someone@example.org", "correct horse").await.status(), 303);
    assert_eq!(post(&someone, serde_json::json!({ "email": "x@example.org" })).await.unwrap().status(), 403);

    let url = link(&mailbox.wait_for_subject(&cara, "You are invited").await, "/invitation?token=");
    let mut v = visitor(&app);
    let page = v.get(&url).await.text().await.unwrap();
    let (csrf, token) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "token"));
    let weak = [("csrf", csrf.as_str()), ("token", &token), ("name", "Cara"), ("password", "password123")];
    assert_eq!(v.post_form("/invitation", &weak).await.status(), 400);
    let fields = [("csrf", csrf.as_str()), ("token", &token), ("name", "Cara"), ("password", "correct horse")];
    let r = v.post_form("/invitation", &fields).await;
    assert_eq!(r.status(), 303);
    assert!(signed_in(&mut v).await);
    let user = by_email(&app, &cara).await.unwrap();
    assert!(user.email_verified && user.display_name.as_deref() == Some("Cara"));
    assert_eq!(app.state.store.entitlements(&user.id).await.unwrap().len(), 1, "entitled as invited");
    assert_eq!(visitor(&app).post_form("/invitation", &fields).await.status(), 403, "another browser: no CSRF");
    let mut again = visitor(&app);
    assert_eq!(again.get(&url).await.status(), 404, "single use");
    // Expired invitations: a new one, 7 days and a second later.
    let dan = unique_email("dan");
    assert_eq!(post(&a, serde_json::json!({ "email": dan })).await.unwrap().status(), 201);
    let url = link(&mailbox.wait_for(&dan, 1).await, "/invitation?token=");
    app.clock.advance(7 * 86_400 + 1);
    assert_eq!(visitor(&app).get(&url).await.status(), 404);
});

#[tokio::test]
async fn invitation_email_change_and_deletion_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let Some((app, _db, mailbox)) = spawn_mailing(postern_testkit::Kind::Sqlite, |_| {}).await else { return };
    let cara = unique_email("cara");
    let invited = postern_server::invitations::invite(&app.state.store, &cara, &[], NOW).await.unwrap();
    app.state.mail.send(app.state.letters().invitation(&cara, invited.token.expose(), 7));
    let url = link(&mailbox.wait_for(&cara, 1).await, "/invitation?token=");

    browser.goto(&url).await;
    browser.wait_for_text(&format!("An account for {cara} is waiting")).await;
    browser.fill("Name", "Cara").await;
    browser.fill("Password", "correct horse").await;
    browser.press("Accept invitation").await;
    browser.wait_for_text(&format!("Signed in as {cara}")).await;

    let new = unique_email("cara-new");
    browser.fill("New email address", &new).await;
    browser.fill("Password (to change the address)", "correct horse").await;
    browser.press("Change email").await;
    browser.wait_for_text(&format!("We sent a link to {new}")).await;
    let confirm = link(&mailbox.wait_for(&new, 1).await, "/email/change?token=");
    browser.goto(&confirm).await;
    browser.press("Use this address").await;
    browser.wait_for_text(&format!("Your account's email address is now {new}")).await;
    mailbox.wait_for_subject(&cara, "Your email address for").await;

    browser.goto(&app.url("/account")).await;
    browser.wait_for_text(&format!("Signed in as {new}")).await;
    browser.fill("Password (to delete the account)", "correct horse").await;
    browser.click_labelled("I understand this cannot be undone").await;
    browser.press("Delete account").await;
    browser.wait_for_text("Your account is deleted").await;
    browser.goto(&app.url("/account")).await;
    browser.wait_for_text("Forgot your password?").await;
    assert!(by_email(&app, &new).await.is_none());
    browser.quit().await;
}

#[tokio::test]
async fn a_new_address_link_expires_after_24_hours() {
    let Some((app, _db, mailbox)) = spawn_mailing(postern_testkit::Kind::Sqlite, |_| {}).await else { return };
    let (ann, new) = (unique_email("ann"), unique_email("ann-new"));
    create_user(&app, &ann, "correct horse").await;
    let mut v = visitor(&app);
    assert_eq!(v.sign_in(&ann, "correct horse").await.status(), 303);
    let (status, _) = account_form(&mut v, "/account/email", &[("email", &new), ("password", "correct horse")]).await;
    assert_eq!(status, 200);
    let url = link(&mailbox.wait_for(&new, 1).await, "/email/change?token=");
    app.clock.advance(24 * 3600 + 1);
    assert_eq!(press_link(&mut visitor(&app), &url, "/email/change").await.0, 404);
    assert!(by_email(&app, &ann).await.is_some() && by_email(&app, &new).await.is_none());
}
