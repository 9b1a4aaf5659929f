//! API keys against a running server: introspection answers for them (RFC 7662), with expiry,
//! revocation seen within the cache time, offline format checks, last use written off the
//! request path (at shutdown at the latest), and the key never stored in clear.

use crate::helpers::*;
use crate::keys::{contains, database_bytes, hex};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_server::apikeys::{self, Expiry, KeyRequest};
use postern_store::{KeyOwner, PoolOptions, RegisteredScope, Store};
use serde_json::Value;

async fn introspect(app: &TestApp, rs: &(String, String), token: &str) -> Value {
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth(&rs.0, Some(&rs.1))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

both!(introspection_answers_for_api_keys, |kind| async move {
    let Some((app, db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    let scope =
        RegisteredScope { name: "project".into(), description: "Projects".into(), takes_values: true, created_at: NOW };
    store.add_scope(&scope).await.unwrap();
    let user = create_user(&app, "dev@example.org", "correct horse").await;
    let scopes = ["project:*".to_owned()];
    let request =
        KeyRequest { owner: KeyOwner::User(&user), name: "laptop", scopes: &scopes, expiry: Expiry::After(3600) };
    let (key, record) = apikeys::create(store, &app.state.config.api_keys, &request, NOW).await.unwrap();
    let (rs_id, rs_secret) =
        register(&app, ClientType::Confidential, &[GrantType::ClientCredentials], "read", AccessTokenFormat::Jwt).await;
    let rs = (rs_id, rs_secret.unwrap());

    let info = introspect(&app, &rs, key.expose()).await;
    assert_eq!(info["active"], true);
    assert_eq!(
        (info["sub"].as_str(), info["scope"].as_str(), info["key_kind"].as_str(), info["exp"].as_i64()),
        (Some(user.as_str()), Some("project:*"), Some("personal"), Some(NOW + 3600))
    );
    assert!(info.get("client_id").is_none());

    // Offline checks: a typo fails the checksum; a well-formed unknown key is simply unknown.
    let mut typo = key.expose().to_owned().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let other = postern_core::apikey::NewApiKey::generate(
        postern_core::apikey::KeyKind::Personal,
        &mut postern_core::system::os_rng(),
    );
    for inactive in [typo.as_str(), other.expose(), "pst_u_short"] {
        assert_eq!(introspect(&app, &rs, inactive).await, serde_json::json!({ "active": false }), "{inactive}");
    }

    // Revoked elsewhere (another node, the CLI): seen once the cache time has passed.
    app.clock.advance(10);
    assert!(store.revoke_api_key(&record.id, NOW + 10).await.unwrap());
    app.clock.advance(app.state.config.api_keys.cache_secs);
    assert_eq!(introspect(&app, &rs, key.expose()).await["active"], false, "revoked");

    // Expired.
    let (short, _) = apikeys::create(
        store,
        &app.state.config.api_keys,
        &KeyRequest { expiry: Expiry::After(60), ..request.clone() },
        app.state.now(),
    )
    .await
    .unwrap();
    assert_eq!(introspect(&app, &rs, short.expose()).await["active"], true);
    let used_at = app.state.now();
    app.clock.advance(60);
    assert_eq!(introspect(&app, &rs, short.expose()).await["active"], false, "expired");

    let bytes = database_bytes(store, &db.url, db.dir.path()).await;
    for k in [key.expose(), short.expose()] {
        assert!(!contains(&bytes, k.as_bytes()) && !contains(&bytes, hex(k.as_bytes()).as_bytes()), "key in clear");
    }
    // Using a key wrote nothing yet; stopping the server writes the last uses.
    let short_id = store.api_key_by_hash(&short.hash()).await.unwrap().unwrap().id;
    assert_eq!(store.api_key(&short_id).await.unwrap().unwrap().last_used_at, None);
    app.stop().await.unwrap();
    let reopened = Store::connect(&db.url, PoolOptions::default()).await.unwrap();
    assert_eq!(reopened.api_key(&short_id).await.unwrap().unwrap().last_used_at, Some(used_at));
    reopened.close().await;
});
