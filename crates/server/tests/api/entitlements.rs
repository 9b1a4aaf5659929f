//! Scopes are entitlements: keys carry only what their owner may hold (and what the token
//! they were made with covers); taking an entitlement away revokes the keys that carry it,
//! down to the grants a user made to their service accounts.

use crate::helpers::*;
use crate::helpers::{Rp, VERIFIER, exchange, sign_in_and_allow};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_server::entitlements::{self, Entitled, Grantor};
use postern_store::KeyOwner;
use serde_json::{Value, json};

async fn post_key(app: &TestApp, auth: Auth<'_>, body: Value) -> (u16, Value) {
    let request = app.http.post(app.url("/api/keys")).json(&body);
    let request = match auth {
        Auth::Session(v) => request.header("cookie", v.cookie_header()).header("origin", &v.origin),
        Auth::Token(t) => request.bearer_auth(t),
    };
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

enum Auth<'a> {
    Session(&'a Visitor),
    Token(&'a str),
}

async fn make_key(app: &TestApp, owner: KeyOwner<'_>, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
    let request = postern_server::apikeys::KeyRequest {
        owner,
        name: "k",
        scopes: &scopes,
        expiry: postern_server::apikeys::Expiry::Default,
        within: None,
    };
    let (key, _) =
        postern_server::apikeys::create(&app.state.store, &app.state.config.api_keys, &request, NOW).await.unwrap();
    key.expose().to_owned()
}

async fn works(app: &TestApp, key: &str) -> bool {
    app.state.node.api_keys.verify(&app.state.store, key, None, NOW + 1).await.unwrap().is_some()
}

both!(keys_carry_only_what_their_owner_may_hold, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    add_scope(&app, "deploy", "Deploy", false).await;
    add_scope(&app, "admin", "Administration", false).await;
    add_scope(&app, "project", "Projects", true).await;
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;

    // Registered is not entitled.
    let (status, body) = post_key(&app, Auth::Session(&v), json!({ "name": "k", "scopes": ["deploy"] })).await;
    assert_eq!(status, 400);
    assert!(body["error_description"].as_str().unwrap().contains("not entitled to the scope \"deploy\""), "{body}");

    entitle(&app, &ann, &["deploy", "project:*"]).await;
    let (status, _) =
        post_key(&app, Auth::Session(&v), json!({ "name": "k", "scopes": ["deploy", "project:web"] })).await;
    assert_eq!(status, 201);
    let (status, _) = post_key(&app, Auth::Session(&v), json!({ "name": "k", "scopes": ["admin"] })).await;
    assert_eq!(status, 400, "admin is registered, not granted");

    // An admin user is entitled to every registered scope.
    let root = postern_store::NewUser {
        id: "root-id".into(),
        email: postern_core::email::Email::parse("root@example.org").unwrap(),
        email_verified: true,
        password_hash: None,
        display_name: None,
        is_admin: true,
    };
    app.state.store.create_user(&root, NOW).await.unwrap();
    assert_eq!(entitlements::of(&app.state.store, KeyOwner::User("root-id")).await.unwrap(), Entitled::Every);
});

both!(a_key_made_with_a_token_is_no_wider_than_the_token, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    add_scope(&app, "deploy", "Deploy", false).await;
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    entitle(&app, &ann, &["deploy"]).await;
    let (id, secret) = register(
        &app,
        ClientType::Confidential,
        &[GrantType::AuthorizationCode],
        "openid postern:keys deploy",
        AccessTokenFormat::Jwt,
    )
    .await;
    let rp = Rp { id, secret, redirect: "https://app.example.org/cb".into() };
    let token = |scope: &'static str| {
        let app = &app;
        let rp = &rp;
        async move {
            let mut v = visitor(app);
            let code =
                sign_in_and_allow(&mut v, &crate::refresh::url(rp, scope), "ann@example.org", "correct horse").await;
            let t: Value = exchange(app, rp, &code["code"], VERIFIER).await.json().await.unwrap();
            t["access_token"].as_str().unwrap().to_owned()
        }
    };
    let narrow = token("openid postern:keys").await;
    let wide = token("openid postern:keys deploy").await;
    let key = json!({ "name": "k", "scopes": ["deploy"] });
    let (status, body) = post_key(&app, Auth::Token(&narrow), key.clone()).await;
    assert_eq!(status, 400);
    assert!(body["error_description"].as_str().unwrap().contains("does not cover the scope \"deploy\""), "{body}");
    assert_eq!(post_key(&app, Auth::Token(&wide), key).await.0, 201);
});

both!(taking_an_entitlement_away_revokes_the_keys_and_grants_that_carry_it, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    add_scope(&app, "deploy", "Deploy", false).await;
    add_scope(&app, "read", "Read", false).await;
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    entitle(&app, &ann, &["deploy", "read"]).await;
    let sa = postern_server::apikeys::create_service_account(store, &ann, "ci", "", NOW).await.unwrap();
    let robot = KeyOwner::ServiceAccount(&sa.id);
    // Ann grants her service account within her own entitlements, and no further.
    let granted = entitlements::grant(store, robot, &["deploy".into()], Grantor::Owner(&ann), NOW).await;
    assert!(granted.is_ok());
    add_scope(&app, "admin", "Administration", false).await;
    let refused = entitlements::grant(store, robot, &["admin".into()], Grantor::Owner(&ann), NOW).await;
    assert!(matches!(refused, Err(entitlements::GrantError::Invalid(_))));

    let deploy_key = make_key(&app, KeyOwner::User(&ann), &["deploy", "read"]).await;
    let read_key = make_key(&app, KeyOwner::User(&ann), &["read"]).await;
    let robot_key = make_key(&app, robot, &["deploy"]).await;

    let revoked = entitlements::revoke(store, KeyOwner::User(&ann), &["deploy".into()], NOW + 1).await.unwrap();
    assert_eq!(revoked.len(), 2, "Ann's deploy key and her service account's");
    app.state.node.api_keys.forget_all();
    assert!(!works(&app, &deploy_key).await);
    assert!(!works(&app, &robot_key).await);
    assert!(works(&app, &read_key).await, "keys within what is left keep working");
    assert!(store.entitlements(&format!("sa:{}", sa.id)).await.unwrap().is_empty(), "Ann's grant went too");
});
