//! Protected resources (RFC 8707): a client gets tokens only for the resources it is allowed
//! (or the issuer), `invalid_target` otherwise; without `resource`, its one resource is the
//! audience, else the issuer. On both backends.

use crate::helpers::*;
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use serde_json::Value;

const API: &str = "https://api.example.org";
const OTHER: &str = "https://other.example.org";

/// A client-credentials token request with these `resource`s: the status and the body.
async fn ask(app: &TestApp, id: &str, secret: &str, resources: &[&str]) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    let r = app.http.post(app.url("/oauth/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The audience of the JWT access token in `body`, verified with the published keys.
async fn audience(app: &TestApp, body: &Value) -> Value {
    let token = body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}"));
    serde_json::json!(verify_with_jwks_as(app, token, "EdDSA").await.aud.0)
}

async fn client(app: &TestApp, resources: &[&str]) -> (String, String) {
    let (id, secret) =
        register(app, ClientType::Confidential, &[GrantType::ClientCredentials], "read", AccessTokenFormat::Jwt).await;
    let resources: Vec<String> = resources.iter().map(|r| (*r).to_owned()).collect();
    postern_server::resources::allow(&app.state.store, &id, &resources).await.unwrap();
    (id, secret.unwrap())
}

both!(tokens_are_only_for_the_resources_a_client_is_allowed, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    postern_server::resources::add(store, API, "Projects API", &["projects".into()], NOW).await.unwrap();
    postern_server::resources::add(store, OTHER, "Other API", &[], NOW).await.unwrap();
    let issuer = app.state.issuer.to_string();

    // One resource: it is the default audience; it, or the issuer, may be named; nothing else.
    let (id, secret) = client(&app, &[API]).await;
    let (status, body) = ask(&app, &id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(audience(&app, &body).await, serde_json::json!([API]));
    let (_, body) = ask(&app, &id, &secret, &[API]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([API]));
    let (_, body) = ask(&app, &id, &secret, &[&issuer]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([issuer]));
    for refused in [&[OTHER][..], &[API, OTHER], &["https://unregistered.example.org"]] {
        let (status, body) = ask(&app, &id, &secret, refused).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{refused:?}: {body}");
    }

    // Two resources: no default but the issuer; both may be named at once.
    let (id, secret) = client(&app, &[API, OTHER]).await;
    let (_, body) = ask(&app, &id, &secret, &[]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([issuer]));
    let (_, body) = ask(&app, &id, &secret, &[API, OTHER]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([API, OTHER]));

    // None: only the issuer.
    let (id, secret) = client(&app, &[]).await;
    let (_, body) = ask(&app, &id, &secret, &[]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([issuer]));
    let (status, body) = ask(&app, &id, &secret, &[API]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body}");

    // An unregistered resource cannot be allowed; a removed one is no longer allowed to anyone.
    let unknown = postern_server::resources::allow(store, &id, &["https://nope.example.org".into()]).await;
    assert!(matches!(unknown, Err(postern_server::resources::ResourceError::NotFound(_))));
    let duplicate = postern_server::resources::add(store, API, "Again", &[], NOW).await;
    assert!(matches!(duplicate, Err(postern_server::resources::ResourceError::Exists(_))));
    let (with_api, with_api_secret) = client(&app, &[API]).await;
    postern_server::resources::remove(store, API).await.unwrap();
    assert!(store.client_by_id(&with_api).await.unwrap().unwrap().resources.is_empty());
    let (status, _) = ask(&app, &with_api, &with_api_secret, &[API]).await;
    assert_eq!(status, 400);
});

/// A token request of `rp` (client_secret_post) with `fields` and these `resource`s.
async fn token(app: &TestApp, rp: &Rp, fields: &[(&str, &str)], resources: &[&str]) -> (u16, Value) {
    let secret = rp.secret.clone().unwrap();
    let mut form = vec![("client_id", rp.id.as_str()), ("client_secret", secret.as_str())];
    form.extend_from_slice(fields);
    form.extend(resources.iter().map(|r| ("resource", *r)));
    let r = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

both!(the_resources_a_person_approved_bind_the_code_and_the_refresh_family, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let store = &app.state.store;
    postern_server::resources::add(store, API, "Projects API", &[], NOW).await.unwrap();
    postern_server::resources::add(store, OTHER, "Other API", &[], NOW).await.unwrap();
    let rp = crate::refresh::offline_rp(&app, AccessTokenFormat::Jwt).await;
    let mut c = store.client_by_id(&rp.id).await.unwrap().unwrap().settings();
    c.first_party = false;
    store.update_client(&rp.id, &c, NOW).await.unwrap();
    postern_server::resources::allow(store, &rp.id, &[API.into(), OTHER.into()]).await.unwrap();
    let with = |resource: &str| {
        format!("{}&resource={}", crate::refresh::url(&rp, "openid offline_access"), urlencode(resource))
    };

    // The consent page names the API; the code is for it alone.
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let page = v.get(&with(API)).await.text().await.unwrap();
    assert!(page.contains("Projects API (https://api.example.org)"), "{page}");
    let params = sign_in_and_allow(&mut v, &with(API), "ann@example.org", "correct horse").await;
    let code = params["code"].clone();
    let exchange_fields = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &rp.redirect),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token(&app, &rp, &exchange_fields, &[OTHER]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "another resource: {body}");
    let (status, body) = token(&app, &rp, &exchange_fields, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(audience(&app, &body).await, serde_json::json!([API]));

    // Refreshing keeps the audience, or narrows it; never another resource, nor the issuer.
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    for other in [OTHER, app.state.issuer.as_ref()] {
        let (status, body) =
            token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token)], &[other]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{other}: {body}");
    }
    let (status, body) =
        token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token)], &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(audience(&app, &body).await, serde_json::json!([API]));
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    let (_, body) = token(&app, &rp, &[("grant_type", "refresh_token"), ("refresh_token", &next)], &[API]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([API]));

    // Consent is remembered for the resources allowed, not for others: the same API again
    // goes straight back to the client; another API asks again, naming it.
    let again = sign_in_and_allow(&mut v, &with(API), "ann@example.org", "correct horse").await;
    assert!(again.steps.is_empty() && again.contains_key("code"), "{:?}", again.steps);
    let page = v.get(&with(OTHER)).await.text().await.unwrap();
    assert!(page.contains("Other API (https://other.example.org)"), "{page}");
    let other = sign_in_and_allow(&mut v, &with(OTHER), "ann@example.org", "correct horse").await;
    assert_eq!(other.steps, [Step::Allowed]);
    let both = format!("{}&resource={}", with(API), urlencode(OTHER));
    assert!(sign_in_and_allow(&mut v, &both, "ann@example.org", "correct horse").await.steps.is_empty());

    // A resource the client may not use is refused at the authorization endpoint, back at the
    // client (RFC 8707 §2).
    let r = v.get(&with("https://unregistered.example.org")).await;
    let (location, params) = location_params(&r);
    assert!(location.starts_with(&rp.redirect), "{location}");
    assert_eq!(params["error"], "invalid_target");
});

both!(a_device_authorization_binds_the_resources_it_names, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let store = &app.state.store;
    postern_server::resources::add(store, API, "Projects API", &[], NOW).await.unwrap();
    postern_server::resources::add(store, OTHER, "Other API", &[], NOW).await.unwrap();
    let client = crate::device::device_client(&app, "TV").await;
    postern_server::resources::allow(store, &client, &[API.into()]).await.unwrap();
    let start = |resource: &'static str| {
        let (app, client) = (&app, client.clone());
        async move {
            let form = [("client_id", client.as_str()), ("scope", "openid"), ("resource", resource)];
            let r = app.http.post(app.url("/oauth/device_authorization")).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = start(OTHER).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body}");
    let (status, started) = start(API).await;
    assert_eq!(status, 200, "{started}");
    let user_code = started["user_code"].as_str().unwrap().replace('-', "");
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let page = v.get(&format!("/device/confirm?user_code={user_code}")).await.text().await.unwrap();
    assert!(page.contains("Projects API (https://api.example.org)"), "{page}");
    let csrf = Visitor::hidden(&page, "csrf");
    let fields = [("csrf", csrf.as_str()), ("user_code", &user_code), ("decision", "approve")];
    assert_eq!(v.post_form("/device/confirm", &fields).await.status(), 200);
    app.clock.advance(5);
    let (status, tokens) = crate::device::poll(&app, &client, started["device_code"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(audience(&app, &tokens).await, serde_json::json!([API]));
});

both!(an_api_key_is_for_the_resources_its_scopes_belong_to, |kind| async move {
    use postern_server::apikeys::{self, Expiry, KeyRequest};
    use postern_store::KeyOwner;
    let Some((app, _db)) = spawn(kind).await else { return };
    add_scope(&app, "project", "Projects", true).await;
    add_scope(&app, "admin", "Administration", false).await;
    let api_rs = add_resource(&app, API, "Projects API", &["project"]).await;
    let other_rs = add_resource(&app, OTHER, "Other API", &[]).await;
    let ann = create_user(&app, "ann@example.org", "correct horse").await;
    entitle(&app, &ann, &["project:*", "admin"]).await;
    let key = |scope: &'static str| {
        let (app, ann) = (&app, ann.clone());
        async move {
            let scopes = [scope.to_owned()];
            let request = KeyRequest {
                owner: KeyOwner::User(&ann),
                name: scope,
                scopes: &scopes,
                expiry: Expiry::After(3600),
                within: None,
            };
            let (key, record) =
                apikeys::create(&app.state.store, &app.state.config.api_keys, &request, NOW).await.unwrap();
            (key.expose().to_owned(), record)
        }
    };
    let (project_key, record) = key("project:web").await;
    assert_eq!(record.audience, API);
    let (admin_key, record) = key("admin").await;
    assert_eq!(record.audience, "", "for the issuer");
    let info = introspect_with(&app, &api_rs, &project_key).await;
    assert_eq!((info["active"].as_bool(), &info["aud"]), (Some(true), &serde_json::json!([API])), "{info}");
    assert_eq!(introspect_with(&app, &api_rs, &admin_key).await, serde_json::json!({"active": false}));
    assert_eq!(introspect_with(&app, &other_rs, &project_key).await, serde_json::json!({"active": false}));

    // A guard in front of the API takes the project key, not the admin key; one in front of
    // the other API neither.
    let guard_for = |audience: &'static str, (id, secret): (String, String)| {
        let app = &app;
        async move {
            postern_guard::Guard::builder(app.state.issuer.to_string(), audience)
                .introspection_client(id, secret)
                .clock(app.clock.clone())
                .build()
                .await
                .unwrap()
        }
    };
    let api_guard = guard_for(API, api_rs.clone()).await;
    assert!(api_guard.verify(&project_key).await.is_ok());
    assert!(matches!(api_guard.verify(&admin_key).await, Err(postern_guard::GuardError::InvalidToken(_))));
    let other_guard = guard_for(OTHER, other_rs).await;
    for key in [&project_key, &admin_key] {
        assert!(matches!(other_guard.verify(key).await, Err(postern_guard::GuardError::InvalidToken(_))));
    }
});

both!(introspection_describes_a_credential_only_to_its_client_and_the_resource_servers_it_is_for, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let api_rs = add_resource(&app, API, "Projects API", &[]).await;
    let other_rs = add_resource(&app, OTHER, "Other API", &[]).await;
    let stranger = client(&app, &[]).await;
    let active = |info: Value| info["active"].as_bool().unwrap_or_else(|| panic!("{info}"));

    for format in [AccessTokenFormat::Jwt, AccessTokenFormat::Opaque] {
        let (id, secret) =
            register(&app, ClientType::Confidential, &[GrantType::ClientCredentials], "read", format).await;
        let holder = (id.clone(), secret.unwrap());
        postern_server::resources::allow(&app.state.store, &id, &[API.into(), OTHER.into()]).await.unwrap();
        let token = |resources: &'static [&'static str]| {
            let (app, holder) = (&app, holder.clone());
            async move {
                let (status, body) = ask(app, &holder.0, &holder.1, resources).await;
                assert_eq!(status, 200, "{body}");
                body["access_token"].as_str().unwrap().to_owned()
            }
        };
        // For the API: its client and the API's resource server; not the other API's, nor a
        // client it was not issued to.
        let for_api = token(&[API]).await;
        assert!(active(introspect_with(&app, &holder, &for_api).await), "{format:?}");
        assert!(active(introspect_with(&app, &api_rs, &for_api).await), "{format:?}");
        assert!(!active(introspect_with(&app, &other_rs, &for_api).await), "{format:?}");
        assert!(!active(introspect_with(&app, &stranger, &for_api).await), "{format:?}");
        // For both APIs: both resource servers.
        let for_both = token(&[API, OTHER]).await;
        assert!(active(introspect_with(&app, &other_rs, &for_both).await), "{format:?}");
        assert!(active(introspect_with(&app, &api_rs, &for_both).await), "{format:?}");
        // For Postern itself (the issuer): its client only.
        let for_issuer = token(&[]).await;
        assert!(active(introspect_with(&app, &holder, &for_issuer).await), "{format:?}");
        assert!(!active(introspect_with(&app, &api_rs, &for_issuer).await), "{format:?}");
    }

    // A refresh token for the API: only the client holding it, never the API's resource server
    // (which would otherwise take it for an access token).
    let rp = crate::refresh::offline_rp(&app, AccessTokenFormat::Jwt).await;
    postern_server::resources::allow(&app.state.store, &rp.id, &[API.into()]).await.unwrap();
    let tokens = crate::refresh::tokens_for(&app, &rp, "openid offline_access").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(audience(&app, &tokens).await, serde_json::json!([API]));
    let info = crate::refresh::introspect_as(&app, &rp, refresh_token).await;
    assert_eq!(info["token_type"], "refresh_token", "{info}");
    assert!(!active(introspect_with(&app, &api_rs, refresh_token).await));
    let access_token = tokens["access_token"].as_str().unwrap();
    assert!(active(introspect_with(&app, &api_rs, access_token).await));

    // Relinking the API to another client moves the right (within the client cache time).
    let tokens_config = &app.state.config.tokens;
    let linked = postern_server::resources::set_introspector(
        &app.state.store,
        tokens_config,
        API,
        postern_server::resources::Introspector::Existing(&stranger.0),
        NOW,
    )
    .await
    .unwrap();
    assert_eq!((linked.0.as_str(), linked.1.is_none()), (stranger.0.as_str(), true));
    app.clock.advance(app.state.config.clients.cache_secs);
    assert!(active(introspect_with(&app, &stranger, access_token).await));
    assert!(!active(introspect_with(&app, &api_rs, access_token).await));
    // A public client cannot be a resource server's introspector.
    let (public, _) =
        register(&app, ClientType::Public, &[GrantType::AuthorizationCode], "", AccessTokenFormat::Jwt).await;
    let refused = postern_server::resources::set_introspector(
        &app.state.store,
        tokens_config,
        API,
        postern_server::resources::Introspector::Existing(&public),
        NOW,
    )
    .await;
    assert!(matches!(refused, Err(postern_server::resources::ResourceError::Invalid(_))));
});

#[tokio::test]
async fn the_consent_page_names_the_api_for_a_client_on_another_origin_in_a_browser() {
    use crate::pages::{code_request, rp_on_another_origin, sign_in};
    let Some(browser) = postern_testkit::browser::Browser::start().await else { return };
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let client = postern_testkit::client_app::ClientApp::start().await;
    create_user(&app, "ann@example.org", "correct horse").await;
    postern_server::resources::add(&app.state.store, API, "Projects API", &[], NOW).await.unwrap();
    let rp = rp_on_another_origin(&app, &client, false).await;
    postern_server::resources::allow(&app.state.store, &rp.id, &[API.into()]).await.unwrap();

    browser.goto(&code_request(&app, &rp, "r-1", &format!("&resource={}", urlencode(API)))).await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    let consent = browser.wait_for_text("With access to:").await;
    assert!(consent.contains("Projects API (https://api.example.org)"), "{consent}");
    browser.press("Allow").await;
    browser.wait_for_text("Application: code received").await;
    let answer = client.wait_for("/callback").await;
    let (status, body) = token(
        &app,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &answer.params["code"]),
            ("redirect_uri", &rp.redirect),
            ("code_verifier", VERIFIER),
        ],
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(audience(&app, &body).await, serde_json::json!([API]));
    browser.quit().await;
}
