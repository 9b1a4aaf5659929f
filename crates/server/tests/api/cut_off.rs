//! Disabling a user and setting a new password take effect everywhere at once: sessions,
//! codes in flight, approved device requests, refresh families, opaque and JWT access tokens,
//! API keys (personal and of owned service accounts). Enabling brings nothing back.

use crate::device::start_device;
use crate::helpers::*;
use crate::helpers::{Rp, VERIFIER, exchange, sign_in_and_allow, urlencode};
use crate::refresh::{introspect_as, offline_rp};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_store::KeyOwner;
use serde_json::Value;

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(crate) fn code_url(rp: &Rp) -> String {
    let challenge = postern_core::pkce::s256(VERIFIER);
    format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20offline_access&code_challenge={challenge}&code_challenge_method=S256",
        rp.id,
        urlencode(&rp.redirect)
    )
}

async fn tokens(app: &TestApp, v: &mut Visitor, rp: &Rp, password: &str) -> Value {
    tokens_for(app, v, rp, "ann@example.org", password).await
}

/// Signs `email` in, allows `rp`, and exchanges the code: the token response.
pub(crate) async fn tokens_for(app: &TestApp, v: &mut Visitor, rp: &Rp, email: &str, password: &str) -> Value {
    let code = sign_in_and_allow(v, &code_url(rp), email, password).await;
    let r = exchange(app, rp, &code["code"], VERIFIER).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub(crate) async fn refresh(app: &TestApp, rp: &Rp, token: &str) -> (u16, Value) {
    let secret = rp.secret.clone().unwrap();
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", &rp.id), ("client_secret", &secret)];
    let r = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

pub(crate) async fn userinfo(app: &TestApp, token: &str) -> u16 {
    app.http.get(app.url("/userinfo")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

/// Whether the visitor's session is live: `/account` shows the page rather than sending to
/// the sign-in page.
pub(crate) async fn signed_in(v: &mut Visitor) -> bool {
    v.get("/account").await.status() == 200
}

/// A key for `owner` with the scope `read` (registered and entitled by the caller).
pub(crate) async fn api_key(app: &TestApp, owner: KeyOwner<'_>) -> String {
    let request = postern_server::apikeys::KeyRequest {
        owner,
        name: "laptop",
        scopes: &["read".to_owned()],
        expiry: postern_server::apikeys::Expiry::Default,
        within: None,
    };
    let (key, _) =
        postern_server::apikeys::create(&app.state.store, &app.state.config.api_keys, &request, NOW).await.unwrap();
    key.expose().to_owned()
}

both!(disabling_a_user_cuts_off_everything_and_enabling_brings_nothing_back, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    add_scope(&app, "read", "Read things", false).await;
    // The API the keys are for, and its resource server's introspection credentials.
    let rs = add_resource(&app, "https://api.example.org", "API", &["read"]).await;
    let jwt_rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let opaque_rp = offline_rp(&app, AccessTokenFormat::Opaque).await;
    let mut v = visitor(&app);
    let jwt = tokens(&app, &mut v, &jwt_rp, "correct horse").await;
    let opaque = tokens(&app, &mut v, &opaque_rp, "correct horse").await;
    // A code in flight, a device request approved but not yet collected, two keys.
    let pending_code = sign_in_and_allow(&mut v, &code_url(&jwt_rp), "ann@example.org", "correct horse").await;
    let (device_client, _) =
        register(&app, ClientType::Public, &[GrantType::DeviceCode], "openid", AccessTokenFormat::Jwt).await;
    let d = start_device(&app, &device_client, "openid").await;
    v.answer_device(d["user_code"].as_str().unwrap(), "ann@example.org", "correct horse", "approve").await;
    entitle(&app, &ann, &["read"]).await;
    let personal = api_key(&app, KeyOwner::User(&ann)).await;
    let sa = postern_server::apikeys::create_service_account(&app.state.store, &ann, "ci", "", NOW).await.unwrap();
    entitle(&app, &format!("sa:{}", sa.id), &["read"]).await;
    let sa_key = api_key(&app, KeyOwner::ServiceAccount(&sa.id)).await;
    assert!(signed_in(&mut v).await);
    assert_eq!(userinfo(&app, jwt["access_token"].as_str().unwrap()).await, 200);
    for key in [&personal, &sa_key] {
        assert_eq!(introspect_with(&app, &rs, key).await["active"], true);
    }

    let here = Some(app.state.node.as_ref());
    postern_server::accounts::disable_user(&app.state.store, here, &ann, NOW).await.unwrap();

    assert!(!signed_in(&mut v).await, "the session ended");
    for (t, rp) in [(&jwt, &jwt_rp), (&opaque, &opaque_rp)] {
        let access = t["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&app, access).await, 401);
        assert_eq!(introspect_as(&app, rp, access).await["active"], false);
    }
    assert_eq!(refresh(&app, &jwt_rp, jwt["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");
    assert_eq!(refresh(&app, &opaque_rp, opaque["refresh_token"].as_str().unwrap()).await.0, 400);
    let late = exchange(&app, &jwt_rp, &pending_code["code"], VERIFIER).await;
    assert_eq!(late.status(), 400, "the code in flight is gone");
    let form =
        [("grant_type", DEVICE), ("device_code", d["device_code"].as_str().unwrap()), ("client_id", &device_client)];
    let polled: Value = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    assert_eq!(polled["error"], "access_denied", "the approval was withdrawn: {polled}");
    for key in [&personal, &sa_key] {
        assert!(app.state.node.api_keys.verify(&app.state.store, key, None, NOW).await.unwrap().is_none());
        assert_eq!(introspect_with(&app, &rs, key).await["active"], false);
    }
    // A sign-in is refused like any failed one.
    let r = visitor(&app).sign_in("ann@example.org", "correct horse").await;
    assert_eq!(r.status(), 401);

    // Enabled again: a new sign-in works; nothing from before does.
    app.state.store.enable_user(&ann, NOW).await.unwrap();
    let mut fresh = visitor(&app);
    assert_eq!(fresh.sign_in("ann@example.org", "correct horse").await.status(), 303);
    assert!(signed_in(&mut fresh).await && !signed_in(&mut v).await);
    assert_eq!(userinfo(&app, jwt["access_token"].as_str().unwrap()).await, 401, "the old JWT stays refused");
    assert_eq!(refresh(&app, &jwt_rp, jwt["refresh_token"].as_str().unwrap()).await.0, 400);
    assert!(app.state.node.api_keys.verify(&app.state.store, &personal, None, NOW).await.unwrap().is_none());

    // Another node, which learns of the cut-off from the database only, refuses the old JWT too.
    let list = postern_server::revocations::DenyList::load(&app.state.store, NOW).await.unwrap();
    let claims = postern_server::tokens::verify_jwt(&app.state, jwt["access_token"].as_str().unwrap()).unwrap();
    assert!(list.is_revoked(&claims.jti, &claims.sub, claims.iat));
    assert!(!list.is_revoked("another-jti", &claims.sub, NOW + 1), "tokens issued after the cut-off are fine");
});

both!(userinfo_refuses_a_user_disabled_elsewhere_within_the_sync_time, |kind| async move {
    // Long enough that this node's deny-list does not hear of the cut-off during the test.
    let Some((app, _db)) = spawn_configured(kind, |c| c.tokens.revocation_sync_secs = 60).await else { return };
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let t = tokens(&app, &mut visitor(&app), &rp, "correct horse").await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await, 200);

    // The admin command (another process) disables her: this node learns it from the database.
    postern_server::accounts::disable_user(&app.state.store, None, &ann, NOW).await.unwrap();
    app.clock.advance(59);
    assert_eq!(userinfo(&app, access).await, 200, "what this node read stands for the sync time");
    app.clock.advance(1);
    let claims = postern_server::tokens::verify_jwt(&app.state, access).unwrap();
    assert!(!app.state.node.revoked.is_revoked(&claims.jti, &claims.sub, claims.iat), "not yet from the deny-list");
    assert_eq!(userinfo(&app, access).await, 401, "the user is read again, and refused");
    // Enabled again by the admin command: the disabled row was not kept, so the next call reads
    // the row again (the deny-list, not yet synchronised here, has not refused the token).
    app.state.store.enable_user(&ann, NOW).await.unwrap();
    assert_eq!(userinfo(&app, access).await, 200, "a disabled user is never kept");
});

both!(a_new_password_ends_every_session_and_refresh_family, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let mut v = visitor(&app);
    let before = tokens(&app, &mut v, &rp, "correct horse").await;
    let mut other = visitor(&app);
    assert_eq!(other.sign_in("ann@example.org", "correct horse").await.status(), 303);

    let (here, params) = (Some(app.state.node.as_ref()), postern_core::password::Argon2Params::INSECURE_FOR_TESTS);
    let user = app.state.store.user_by_id(&ann).await.unwrap().unwrap();
    postern_server::accounts::set_password(&app.state.store, here, params, &user, "battery staple", None, NOW)
        .await
        .unwrap();

    assert!(!signed_in(&mut v).await && !signed_in(&mut other).await, "every session ended");
    assert_eq!(refresh(&app, &rp, before["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");
    assert_eq!(userinfo(&app, before["access_token"].as_str().unwrap()).await, 401, "issued in the family");
    assert_eq!(visitor(&app).sign_in("ann@example.org", "correct horse").await.status(), 401);
    let mut again = visitor(&app);
    let after = tokens(&app, &mut again, &rp, "battery staple").await;
    assert_eq!(refresh(&app, &rp, after["refresh_token"].as_str().unwrap()).await.0, 200);
});

both!(the_deny_list_follows_database_order_not_clocks, |kind| async move {
    use postern_server::revocations::DenyList;
    let Some((app, db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    let list = DenyList::load(store, NOW).await.unwrap();
    store.revoke_jwt("first", NOW + 900, NOW).await.unwrap();
    list.sync(store, NOW).await.unwrap();
    assert!(list.is_revoked("first", "u", NOW));
    // Revoked by a node whose clock is behind: its time is long past, its order is not.
    store.revoke_jwt("skewed", NOW + 900, NOW - 300).await.unwrap();
    list.sync(store, NOW).await.unwrap();
    assert!(list.is_revoked("skewed", "u", NOW), "a revocation stamped in the past is still read");

    // PostgreSQL numbers a row when it is inserted, not when it is committed: a revocation
    // whose transaction commits after a later one's is still read at the next sync.
    if kind == postern_testkit::Kind::Postgres {
        use sqlx::Connection;
        let mut slow = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let mut tx = slow.begin().await.unwrap();
        sqlx::query("INSERT INTO revoked_jwts (jti, expires_at, revoked_at) VALUES ('late', $1, $2)")
            .bind(NOW + 900)
            .bind(NOW)
            .execute(&mut *tx)
            .await
            .unwrap();
        store.revoke_jwt("meanwhile", NOW + 900, NOW).await.unwrap();
        list.sync(store, NOW).await.unwrap();
        assert!(list.is_revoked("meanwhile", "u", NOW) && !list.is_revoked("late", "u", NOW));
        tx.commit().await.unwrap();
        list.sync(store, NOW).await.unwrap();
        assert!(list.is_revoked("late", "u", NOW), "committed late, read all the same");
    }
});
