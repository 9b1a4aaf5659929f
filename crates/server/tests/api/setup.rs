//! The first admin: from configuration, or through the one-time setup link.

use crate::helpers::*;
use postern_server::bootstrap::FirstAdmin;
use postern_server::config::Secret;

fn link_of(app: &TestApp) -> String {
    match &app.app_first_admin {
        FirstAdmin::SetupLink { url } => url.clone(),
        other => panic!("expected a setup link, got {other:?}"),
    }
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_owned()
}

both!(setup_link_creates_the_first_admin_once, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let link = link_of(&app);
    assert!(link.starts_with(&format!("{}/setup?token=", app.base)));
    let token = token_of(&link);

    let page = app.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    for label in
        ["<label for=\"email\">Email</label>", "<label for=\"password\">Password</label>", "Create admin account"]
    {
        assert!(html.contains(label), "{label} missing");
    }

    let post = |fields: Vec<(&'static str, String)>, origin: Option<String>| {
        let mut req = app.http.post(app.url("/setup")).form(&fields);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let form = |password: &str, confirm: &str| {
        vec![
            ("token", token.clone()),
            ("email", "Root@Example.org".to_owned()),
            ("name", "Root <admin>".to_owned()),
            ("password", password.to_owned()),
            ("password_confirm", confirm.to_owned()),
        ]
    };

    let foreign = post(form("long password", "long password"), Some("https://evil.example".into())).await.unwrap();
    assert_eq!(foreign.status(), 403);
    let differ = post(form("long password", "other password"), Some(app.base.clone())).await.unwrap();
    assert_eq!(differ.status(), 400);
    let body = differ.text().await.unwrap();
    assert!(body.contains("The two passwords differ."));
    assert!(body.contains("Root &#60;admin&#62;"), "the form keeps (escaped) what was typed");
    let short = post(form("short", "short"), Some(app.base.clone())).await.unwrap();
    assert_eq!(short.status(), 400);
    assert_eq!(app.state.store.count_admins().await.unwrap(), 0, "nothing created by refused attempts");

    let ok = post(form("long password", "long password"), Some(app.base.clone())).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("Admin account created"));
    let email = postern_core::email::Email::parse("root@example.org").unwrap();
    let admin = app.state.store.user_by_email(&email).await.unwrap().unwrap();
    assert!(admin.is_admin && !admin.disabled);
    assert_eq!(admin.display_name.as_deref(), Some("Root <admin>"));
    assert!(postern_core::password::verify_password("long password", admin.password_hash.as_deref().unwrap()));

    let events = app.state.store.list_audit(0, Some("admin.setup"), 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].outcome.as_str(), events[0].ip.as_deref()), ("success", Some("127.0.0.1")));

    // Single use: the link is spent, for reading and for posting.
    assert_eq!(app.http.get(&link).send().await.unwrap().status(), 404);
    let again = post(form("another password", "another password"), None).await.unwrap();
    assert_eq!(again.status(), 404);
    assert_eq!(app.state.store.count_admins().await.unwrap(), 1);
});

#[tokio::test]
async fn unknown_and_expired_setup_links_get_the_same_answer() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let link = link_of(&app);
    let unknown = app.get("/setup?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").await;
    assert_eq!(unknown.status(), 404);
    let unknown_body = unknown.text().await.unwrap();
    assert_eq!(app.get("/setup").await.status(), 404);
    app.clock.advance(3601);
    let expired = app.http.get(&link).send().await.unwrap();
    assert_eq!(expired.status(), 404);
    assert_eq!(expired.text().await.unwrap(), unknown_body);
}

both!(first_admin_from_configuration, |kind| async move {
    let Some(db) = postern_testkit::fresh(kind).await else {
        return;
    };
    let mut config = test_config(&db);
    config.admin.email = Some("ops@example.org".into());
    config.admin.password = Some(Secret::new("correct horse battery"));
    let app = start(config.clone()).await.unwrap();
    assert_eq!(app.app_first_admin, FirstAdmin::Created { email: "ops@example.org".into() });
    let email = postern_core::email::Email::parse("ops@example.org").unwrap();
    let admin = app.state.store.user_by_email(&email).await.unwrap().unwrap();
    assert!(admin.is_admin && admin.email_verified);
    assert!(postern_core::password::verify_password("correct horse battery", admin.password_hash.as_deref().unwrap()));
    app.stop().await.unwrap();
    // Later starts leave the existing admin alone.
    let again = start(config).await.unwrap();
    assert_eq!(again.app_first_admin, FirstAdmin::Exists);
    assert_eq!(again.state.store.count_admins().await.unwrap(), 1);
});

both!(the_cli_client_is_registered_on_first_start, |kind| async move {
    use postern_core::client::{ClientType, GrantType};
    use postern_server::bootstrap::CLI_CLIENT_ID;
    let Some(db) = postern_testkit::fresh(kind).await else { return };
    let app = start(test_config(&db)).await.unwrap();
    let cli = app.state.store.client_by_id(CLI_CLIENT_ID).await.unwrap().expect("registered at start");
    assert_eq!((cli.client_type, cli.first_party), (ClientType::Public, true));
    for grant in [GrantType::DeviceCode, GrantType::AuthorizationCode, GrantType::RefreshToken] {
        assert!(cli.grant_types.contains(&grant), "{grant:?}");
    }
    let scopes: Vec<&str> = cli.allowed_scopes.iter().map(|s| s.as_str()).collect();
    assert_eq!(scopes, ["openid", "profile", "email", "offline_access", "postern:keys", "postern:account"]);
    assert_eq!(cli.redirect_uris.len(), 2);
    assert!(cli.redirect_uris.iter().all(|u| u.is_loopback()));
    // Usable as is: a device authorization for it.
    let r = app
        .http
        .post(app.url("/oauth/device_authorization"))
        .form(&[("client_id", CLI_CLIENT_ID), ("scope", "openid offline_access")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await.unwrap();

    // A restart keeps it; deleted, it comes back at the next start.
    let app = start(test_config(&db)).await.unwrap();
    assert_eq!(app.state.store.client_by_id(CLI_CLIENT_ID).await.unwrap().map(|c| c.created_at), Some(cli.created_at));
    app.state.store.delete_client(CLI_CLIENT_ID).await.unwrap();
    app.stop().await.unwrap();
    let app = start(test_config(&db)).await.unwrap();
    assert!(app.state.store.client_by_id(CLI_CLIENT_ID).await.unwrap().is_some());
});
