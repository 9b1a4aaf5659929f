//! Refresh tokens: issuance rules, rotation, the reuse grace window, family revocation, races.

use crate::helpers::*;
use crate::helpers::{Rp, VERIFIER, exchange, sign_in_and_allow, urlencode};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use serde_json::Value;

/// A first-party confidential client with the refresh grant.
pub(crate) async fn offline_rp(app: &TestApp, format: AccessTokenFormat) -> Rp {
    let (id, secret) = register(
        app,
        ClientType::Confidential,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid email offline_access read write",
        format,
    )
    .await;
    let mut c = app.state.store.client_by_id(&id).await.unwrap().unwrap().settings();
    c.first_party = true;
    app.state.store.update_client(&id, &c, NOW).await.unwrap();
    Rp { id, secret, redirect: "https://app.example.org/cb".into() }
}

/// The authorization request for `scope` with the test PKCE verifier's challenge.
pub fn url(rp: &Rp, scope: &str) -> String {
    let challenge = postern_core::pkce::s256(VERIFIER);
    format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&code_challenge={challenge}&code_challenge_method=S256",
        rp.id,
        urlencode(&rp.redirect),
        urlencode(scope)
    )
}

/// Signs in, authorizes `scope` and exchanges the code; returns the token response.
pub(crate) async fn tokens_for(app: &TestApp, rp: &Rp, scope: &str) -> Value {
    let mut v = visitor(app);
    let params = sign_in_and_allow(&mut v, &url(rp, scope), "ann@example.org", "correct horse").await;
    let r = exchange(app, rp, &params["code"], VERIFIER).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub(crate) async fn refresh(app: &TestApp, rp: &Rp, token: &str, scope: Option<&str>) -> (u16, Value) {
    let secret = rp.secret.clone().unwrap();
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", &rp.id),
        ("client_secret", &secret),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Whether a refresh token is current (family alive, token not rotated), as stored: a public
/// client holding it cannot introspect it, and no other client may.
pub(crate) async fn refresh_is_current(app: &TestApp, token: &str) -> bool {
    let hash = postern_core::secret::stored_hash(token);
    let now = postern_core::system::Clock::now(app.clock.as_ref());
    app.state.store.refresh_token(&hash).await.unwrap().is_some_and(|r| r.is_current(now))
}

/// Introspects `token` as the client `rp` (client_secret_basic).
pub(crate) async fn introspect_as(app: &TestApp, rp: &Rp, token: &str) -> Value {
    let r =
        app.http.post(app.url("/oauth/introspect")).basic_auth(&rp.id, rp.secret.as_deref()).form(&[("token", token)]);
    r.send().await.unwrap().json().await.unwrap()
}

/// Introspects `token` as a new confidential client, which may see nothing but its own tokens.
pub(crate) async fn introspect_as_stranger(app: &TestApp, token: &str) -> Value {
    let (rs, rs_secret) =
        register(app, ClientType::Confidential, &[GrantType::ClientCredentials], "", AccessTokenFormat::Jwt).await;
    app.http
        .post(app.url("/oauth/introspect"))
        .basic_auth(rs, rs_secret)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_tokens_are_issued_to_openid_clients_only_with_offline_access() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    assert!(tokens_for(&app, &rp, "openid email").await.get("refresh_token").is_none());
    assert!(tokens_for(&app, &rp, "openid offline_access").await["refresh_token"].is_string());
    assert!(tokens_for(&app, &rp, "read").await["refresh_token"].is_string(), "plain OAuth");
    // A client without the refresh_token grant never gets one.
    let code_only = crate::helpers::relying_party(&app, true).await;
    let mut v = visitor(&app);
    let params = sign_in_and_allow(&mut v, &url(&code_only, "read"), "ann@example.org", "correct horse").await;
    let t: Value = exchange(&app, &code_only, &params["code"], VERIFIER).await.json().await.unwrap();
    assert!(t.get("refresh_token").is_none());
}

#[tokio::test]
async fn an_id_token_comes_with_a_refresh_only_when_the_client_asks() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let first = tokens_for(&app, &rp, "openid offline_access").await;
    let (status, plain) = refresh(&app, &rp, first["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 200, "{plain}");
    assert!(plain.get("id_token").is_none(), "{plain}");
    let mut c = app.state.store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.policy.id_token_on_refresh = true;
    app.state.store.update_client(&rp.id, &c, NOW).await.unwrap();
    app.clock.advance(app.state.config.clients.cache_secs + 1); // past the client cache
    let (status, with) = refresh(&app, &rp, plain["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 200, "{with}");
    // OIDC Core §12.2: the same issuer, subject and audience as the first, verified against
    // the published keys.
    let before = crate::authorize::verify_id_token(&app, first["id_token"].as_str().unwrap()).await;
    let after = crate::authorize::verify_id_token(&app, with["id_token"].as_str().unwrap()).await;
    assert_eq!((&after.iss, &after.sub, &after.aud), (&before.iss, &before.sub, &before.aud));
    assert_eq!(after.auth_time, before.auth_time);
}

both!(rotation_grace_window_and_reuse, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let first = tokens_for(&app, &rp, "openid offline_access read").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    // A refresh token is described to the client holding it, and to no other.
    let info = introspect_as(&app, &rp, &r1).await;
    assert_eq!((info["active"].as_bool(), info["token_type"].as_str()), (Some(true), Some("refresh_token")));
    assert_eq!(introspect_as_stranger(&app, &r1).await, serde_json::json!({"active": false}), "another client's");

    let (status, second) = refresh(&app, &rp, &r1, None).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r2, r1, "rotated");
    assert!(second["access_token"].is_string());
    assert!(second.get("id_token").is_none(), "no ID token unless the client asks (OIDC Core §12.2)");
    assert_eq!(second["scope"], "openid offline_access read");
    assert_eq!(introspect_as(&app, &rp, &r1).await, serde_json::json!({"active": false}), "the old token is spent");

    // Within the grace window, the old token gives the same pair back (a concurrent retry).
    app.clock.advance(10);
    let (status, again) = refresh(&app, &rp, &r1, None).await;
    assert_eq!(status, 200);
    assert_eq!(again, second);

    // After the window, reuse revokes the whole family.
    app.clock.advance(30);
    let (status, reused) = refresh(&app, &rp, &r1, None).await;
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = refresh(&app, &rp, &r2, None).await;
    assert_eq!(status, 400, "the newest token of the family is revoked too");
    let access = second["access_token"].as_str().unwrap();
    assert_eq!(introspect_as(&app, &rp, access).await["active"], false, "so are the access tokens of the family");
    let first_access = first["access_token"].as_str().unwrap();
    assert_eq!(introspect_as(&app, &rp, first_access).await["active"], false);
});

both!(concurrent_refreshes_all_get_the_same_successor, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let r1 = tokens_for(&app, &rp, "offline_access read").await["refresh_token"].as_str().unwrap().to_owned();
    let secret = rp.secret.clone().unwrap();
    let attempts: Vec<_> = (0..200)
        .map(|_| {
            let (http, url, id, secret, r1) =
                (app.http.clone(), app.url("/oauth/token"), rp.id.clone(), secret.clone(), r1.clone());
            tokio::spawn(async move {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", r1.as_str()),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ];
                let r = http.post(url).form(&form).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut successors = std::collections::BTreeSet::new();
    for a in attempts {
        let (status, body) = a.await.unwrap();
        assert_eq!(status, 200, "{body}");
        successors.insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_eq!(successors.len(), 1, "one successor for all");
    let r2 = successors.into_iter().next().unwrap();
    let (status, _) = refresh(&app, &rp, &r2, None).await;
    assert_eq!(status, 200, "the family stays valid");
});

#[tokio::test]
async fn scope_narrowing_client_binding_revocation_and_expiry() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Opaque).await;
    let other = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let t = tokens_for(&app, &rp, "offline_access read write").await;
    let r1 = t["refresh_token"].as_str().unwrap().to_owned();

    let (status, body) = refresh(&app, &rp, &r1, Some("admin")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, body) = refresh(&app, &other, &r1, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "bound to its client");
    let (status, narrowed) = refresh(&app, &rp, &r1, Some("read")).await;
    assert_eq!((status, narrowed["scope"].as_str()), (200, Some("read")));
    let r2 = narrowed["refresh_token"].as_str().unwrap().to_owned();
    let opaque_access = narrowed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect_as(&app, &rp, &opaque_access).await["scope"], "read");
    // The refresh token keeps the full scope.
    let (_, wide) = refresh(&app, &rp, &r2, None).await;
    assert_eq!(wide["scope"], "offline_access read write");
    let r3 = wide["refresh_token"].as_str().unwrap().to_owned();

    // Revoking a refresh token (RFC 7009) ends the family, access tokens included.
    let revoke = app
        .http
        .post(app.url("/oauth/revoke"))
        .form(&[("token", r3.as_str()), ("client_id", &rp.id), ("client_secret", rp.secret.as_deref().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    assert_eq!(refresh(&app, &rp, &r3, None).await.0, 400);
    assert_eq!(introspect_as(&app, &rp, wide["access_token"].as_str().unwrap()).await["active"], false);

    // Unused refresh tokens expire after the client's refresh lifetime.
    let idle = tokens_for(&app, &rp, "offline_access read").await["refresh_token"].as_str().unwrap().to_owned();
    app.clock.advance(86_400);
    assert_eq!(refresh(&app, &rp, &idle, None).await.0, 400);
}

#[tokio::test]
async fn replaying_a_code_revokes_the_refresh_family() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Jwt).await;
    let mut v = visitor(&app);
    let params = sign_in_and_allow(&mut v, &url(&rp, "offline_access read"), "ann@example.org", "correct horse").await;
    let t: Value = exchange(&app, &rp, &params["code"], VERIFIER).await.json().await.unwrap();
    let r1 = t["refresh_token"].as_str().unwrap();
    assert_eq!(exchange(&app, &rp, &params["code"], VERIFIER).await.status(), 400);
    assert_eq!(refresh(&app, &rp, r1, None).await.0, 400, "the family started by the code is revoked");
}

#[tokio::test]
async fn a_public_clients_grace_window_is_short() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let (id, _) = register(
        &app,
        ClientType::Public,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid offline_access",
        AccessTokenFormat::Jwt,
    )
    .await;
    let rp = Rp { id, secret: None, redirect: "https://app.example.org/cb".into() };
    let mut v = visitor(&app);
    let params =
        sign_in_and_allow(&mut v, &url(&rp, "openid offline_access"), "ann@example.org", "correct horse").await;
    let tokens: Value = exchange(&app, &rp, &params["code"], VERIFIER).await.json().await.unwrap();
    let old = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let form = [("grant_type", "refresh_token".to_owned()), ("refresh_token", token), ("client_id", rp.id.clone())];
        let request = app.http.post(app.url("/oauth/token")).form(&form);
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = refresh(old.clone()).await;
    assert_eq!(status, 200);
    app.clock.advance(5);
    let (status, again) = refresh(old.clone()).await;
    assert_eq!((status, &again["refresh_token"]), (200, &first["refresh_token"]), "a retry within 10 s");
    app.clock.advance(6);
    let (status, body) = refresh(old).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "past 10 s: reuse");
    let (status, _) = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 400, "and the family is revoked");
}

both!(the_clean_up_keeps_reuse_detection_and_deletes_ended_families, |kind| async move {
    use postern_core::secret::stored_hash;
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Opaque).await;
    let store = &app.state.store;
    let r1 = tokens_for(&app, &rp, "openid offline_access read").await["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = refresh(&app, &rp, &r1, None).await;
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    let (_, third) = refresh(&app, &rp, &r2, None).await;
    let r3 = third["refresh_token"].as_str().unwrap().to_owned();
    let idle = tokens_for(&app, &rp, "offline_access read").await["refresh_token"].as_str().unwrap().to_owned();

    // Past the grace window and the access tokens' lifetime (900 s), the spent tokens are cut
    // down to their hash and family.
    app.clock.advance(1_000);
    let (status, kept) = refresh(&app, &rp, &idle, None).await;
    assert_eq!(status, 200, "{kept}");
    let idle = kept["refresh_token"].as_str().unwrap().to_owned();
    postern_server::maintenance::run_once(&app.state).await;
    let spent = store.refresh_token(&stored_hash(&r1)).await.unwrap().unwrap();
    assert_eq!((spent.scope.as_str(), spent.successor_sealed), ("", None), "compacted");

    // Reusing one of them still revokes the family, and its live token and access token with it.
    let (status, reused) = refresh(&app, &rp, &r1, None).await;
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")), "{reused}");
    assert_eq!(refresh(&app, &rp, &r3, None).await.0, 400, "the family is revoked");
    assert_eq!(introspect_as(&app, &rp, third["access_token"].as_str().unwrap()).await["active"], false);

    // A minute after its revocation the family is deleted with all its tokens; presenting one
    // then is still invalid_grant. A family whose live token went idle goes too.
    app.clock.advance(61);
    postern_server::maintenance::run_once(&app.state).await;
    for token in [&r1, &r2, &r3] {
        assert!(store.refresh_token(&stored_hash(token)).await.unwrap().is_none(), "deleted");
    }
    assert_eq!(refresh(&app, &rp, &r2, None).await.1["error"], "invalid_grant");
    assert!(store.refresh_token(&stored_hash(&idle)).await.unwrap().is_some(), "the other family lives on");
    app.clock.advance(86_400 + 61);
    postern_server::maintenance::run_once(&app.state).await;
    assert!(store.refresh_token(&stored_hash(&idle)).await.unwrap().is_none(), "its idle family is gone");
    assert_eq!(refresh(&app, &rp, &idle, None).await.1["error"], "invalid_grant");
});
