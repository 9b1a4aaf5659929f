//! The Device Authorization Grant end to end: endpoint, pages, polling, limits, races.

use crate::helpers::*;
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use serde_json::Value;

const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub async fn device_client(app: &TestApp, name: &str) -> String {
    let (id, _) = register(
        app,
        ClientType::Public,
        &[GrantType::DeviceCode, GrantType::RefreshToken],
        "openid offline_access read",
        AccessTokenFormat::Jwt,
    )
    .await;
    let mut c = app.state.store.client_by_id(&id).await.unwrap().unwrap().settings();
    c.name = name.into();
    app.state.store.update_client(&id, &c, NOW).await.unwrap();
    id
}

pub(crate) async fn start_device(app: &TestApp, client_id: &str, scope: &str) -> Value {
    let r = app
        .http
        .post(app.url("/oauth/device_authorization"))
        .form(&[("client_id", client_id), ("scope", scope)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub(crate) async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (u16, Value) {
    let form = [("grant_type", DEVICE), ("device_code", device_code), ("client_id", client_id)];
    let r = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Enters the code, signs in as Ann and answers on the confirmation page; returns the answer page.
async fn answer(v: &mut Visitor, user_code: &str, decision: &str) -> String {
    v.answer_device(user_code, "ann@example.org", "correct horse", decision).await
}

both!(the_device_flow_with_polling_rules, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let client = device_client(&app, "TV app").await;
    let d = start_device(&app, &client, "openid offline_access").await;
    let user_code = d["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert_eq!(d["verification_uri"], format!("{}/device", app.state.issuer));
    assert_eq!(d["verification_uri_complete"], format!("{}/device?user_code={user_code}", app.state.issuer));
    assert_eq!((d["expires_in"].as_i64(), d["interval"].as_i64()), (Some(600), Some(5)));
    let device_code = d["device_code"].as_str().unwrap();

    let (status, body) = poll(&app, &client, device_code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));
    let (_, body) = poll(&app, &client, device_code).await;
    assert_eq!(body["error"], "slow_down", "polled again at once: the interval grows to 10 s");
    app.clock.advance(10);
    assert_eq!(poll(&app, &client, device_code).await.1["error"], "authorization_pending", "10 s later");
    app.clock.advance(5);
    assert_eq!(
        poll(&app, &client, device_code).await.1["error"],
        "slow_down",
        "the grown interval stays: 5 s is too soon"
    );
    app.clock.advance(15);
    assert_eq!(poll(&app, &client, device_code).await.1["error"], "authorization_pending", "15 s is the interval now");

    let other = device_client(&app, "Other").await;
    app.clock.advance(20);
    assert_eq!(poll(&app, &other, device_code).await.1["error"], "invalid_grant", "another client");

    let mut v = visitor(&app);
    let done = answer(&mut v, user_code, "approve").await;
    assert!(done.contains("You can return to your device now."));
    app.clock.advance(20);
    let (status, tokens) = poll(&app, &client, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(
        tokens["access_token"].is_string() && tokens["id_token"].is_string() && tokens["refresh_token"].is_string()
    );
    app.clock.advance(20);
    assert_eq!(poll(&app, &client, device_code).await.1["error"], "invalid_grant", "tokens exactly once");
    let events = app.state.store.list_audit(0, Some("device.approve"), 10).await.unwrap();
    assert_eq!(events.len(), 1);
});

#[tokio::test]
async fn denial_expiry_and_wrong_codes() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let client = device_client(&app, "<script>alert(1)</script>").await;
    let d = start_device(&app, &client, "read").await;
    let mut v = visitor(&app);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
    // The confirmation page shows the client's name as text.
    let code = d["user_code"].as_str().unwrap().replace('-', "");
    let page = v.get(&format!("/device/confirm?user_code={code}")).await.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)"), "escaped");
    assert!(page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
    assert!(page.contains("Approve only if you started this on your own device"));
    let denied = answer(&mut v, d["user_code"].as_str().unwrap(), "deny").await;
    assert!(denied.contains("Request denied"));
    assert_eq!(poll(&app, &client, d["device_code"].as_str().unwrap()).await.1["error"], "access_denied");

    let expiring = start_device(&app, &client, "read").await;
    app.clock.advance(600);
    assert_eq!(poll(&app, &client, expiring["device_code"].as_str().unwrap()).await.1["error"], "expired_token");
    // Used, denied and expired codes all read the same at the activation page.
    for used in [d["user_code"].as_str().unwrap(), expiring["user_code"].as_str().unwrap(), "BCDF-GHJK"] {
        let page = v.get("/device").await.text().await.unwrap();
        let csrf = Visitor::hidden(&page, "csrf");
        let r = v.post_form("/device", &[("csrf", &csrf), ("user_code", used)]).await;
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("That code is not valid."));
    }
}

#[tokio::test]
async fn the_sixth_wrong_code_within_a_minute_gets_429() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let mut v = visitor(&app);
    let page = v.get("/device").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    for attempt in 1..=5 {
        let r = v.post_form("/device", &[("csrf", &csrf), ("user_code", "BCDF-GHJK")]).await;
        assert_eq!(r.status(), 400, "attempt {attempt}");
    }
    let r = v.post_form("/device", &[("csrf", &csrf), ("user_code", "BCDF-GHJK")]).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert!(r.text().await.unwrap().contains("Try again in 60 seconds"));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("postern_device_events_total{event=\"wrong_code\"} 5"), "{metrics}");
    app.clock.advance(60);
    let r = v.post_form("/device", &[("csrf", &csrf), ("user_code", "BCDF-GHJK")]).await;
    assert_eq!(r.status(), 400, "a minute later");
}

#[tokio::test]
async fn wrong_codes_at_the_confirmation_are_counted_too() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let client = device_client(&app, "TV").await;
    let d = start_device(&app, &client, "read").await;
    let mut v = visitor(&app);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
    let page = v.get("/device").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let decide = |code: &str| [("csrf", csrf.clone()), ("user_code", code.to_owned()), ("decision", "approve".into())];
    for attempt in 1..=5 {
        let fields = decide("BCDF-GHJK");
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(v.post_form("/device/confirm", &fields).await.status(), 400, "attempt {attempt}");
    }
    // Past the budget, the confirmation answers 429 without looking, even for a real code, and
    // so does the entry form: no oracle, and nobody else's request is answered.
    let fields = decide(d["user_code"].as_str().unwrap());
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(v.post_form("/device/confirm", &fields).await.status(), 429);
    let r = v.post_form("/device", &[("csrf", &csrf), ("user_code", d["user_code"].as_str().unwrap())]).await;
    assert_eq!(r.status(), 429);
    let (status, body) = poll(&app, &client, d["device_code"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));
}

both!(concurrent_polls_of_an_approved_code_get_tokens_once, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let client = device_client(&app, "TV").await;
    let d = start_device(&app, &client, "read").await;
    let mut v = visitor(&app);
    answer(&mut v, d["user_code"].as_str().unwrap(), "approve").await;
    let device_code = d["device_code"].as_str().unwrap().to_owned();
    let polls: Vec<_> = (0..200)
        .map(|_| {
            let (http, url, client, code) =
                (app.http.clone(), app.url("/oauth/token"), client.clone(), device_code.clone());
            tokio::spawn(async move {
                let form = [("grant_type", DEVICE), ("device_code", code.as_str()), ("client_id", client.as_str())];
                let r = http.post(url).form(&form).send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut tokens = 0;
    for p in polls {
        let (status, body) = p.await.unwrap();
        if status == 200 {
            tokens += 1;
        } else {
            assert!(matches!(body["error"].as_str(), Some("slow_down" | "invalid_grant")), "{body}");
        }
    }
    assert_eq!(tokens, 1, "exactly one token response");
});

#[tokio::test]
async fn json_bodies_and_client_checks_at_the_device_endpoint() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let client = device_client(&app, "TV").await;
    let r = app
        .http
        .post(app.url("/oauth/device_authorization"))
        .json(&serde_json::json!({"client_id": client, "scope": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "JSON accepted");
    let (code_only, _) =
        register(&app, ClientType::Public, &[GrantType::AuthorizationCode], "read", AccessTokenFormat::Jwt).await;
    let r = app
        .http
        .post(app.url("/oauth/device_authorization"))
        .form(&[("client_id", code_only.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unauthorized_client");
    let r =
        app.http.post(app.url("/oauth/device_authorization")).form(&[("client_id", "nobody")]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .http
        .post(app.url("/oauth/device_authorization"))
        .form(&[("client_id", client.as_str()), ("scope", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_scope");
}

#[tokio::test]
async fn the_oauth2_crate_runs_the_device_flow() {
    use oauth2::{
        ClientId, DeviceAuthorizationUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
    };
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let mut config = test_config(&db);
    config.device.interval_secs = 1;
    let app = start_real_time(config).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let id = device_client(&app, "CLI").await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let client = oauth2::basic::BasicClient::new(ClientId::new(id))
        .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
        .set_device_authorization_url(DeviceAuthorizationUrl::new(app.url("/oauth/device_authorization")).unwrap());
    let details: StandardDeviceAuthorizationResponse =
        client.exchange_device_code().add_scope(Scope::new("read".into())).request_async(&http).await.unwrap();
    // The user approves through the real pages while the library polls.
    let user_code = details.user_code().secret().clone();
    let approve = async {
        let mut v = visitor(&app);
        answer(&mut v, &user_code, "approve").await
    };
    let poll = client.exchange_device_access_token(&details).request_async(
        &http,
        tokio::time::sleep,
        Some(std::time::Duration::from_secs(30)),
    );
    let (page, token) = tokio::join!(approve, poll);
    assert!(page.contains("You can return to your device now."));
    let token = token.unwrap();
    assert!(token.refresh_token().is_some(), "refresh token for a plain OAuth scope");
    assert_eq!(token.scopes().map(|s| s.len()), Some(1));
}

#[tokio::test]
async fn device_authorizations_and_waiting_requests_are_rate_limited() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let mut config = test_config(&db);
    config.limits.device_authorizations_per_address = 3;
    config.limits.authorization_requests_per_address = 3;
    config.limits.per_client = 5;
    config.server.trusted_proxies = vec![postern_core::client_address::Cidr::parse("127.0.0.1").unwrap()];
    let app = start(config).await.unwrap();
    let client = device_client(&app, "TV").await;
    let from = |address: &'static str| {
        let request = app
            .http
            .post(app.url("/oauth/device_authorization"))
            .header("x-forwarded-for", address)
            .form(&[("client_id", client.as_str()), ("scope", "read")]);
        async move { request.send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(from("192.0.2.1").await.status(), 200);
    }
    let refused = from("192.0.2.1").await;
    assert_eq!(refused.status(), 429, "per address");
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "temporarily_unavailable");
    for _ in 0..2 {
        assert_eq!(from("192.0.2.2").await.status(), 200);
    }
    assert_eq!(from("192.0.2.3").await.status(), 429, "per client, whatever the address");

    // Authorization requests that must wait for a sign-in are stored: limited alike.
    let rp = crate::helpers::relying_party(&app, false).await;
    let url = app.url(&crate::helpers::authorize_url(&rp, ""));
    let get = || app.http.get(&url).header("x-forwarded-for", "198.51.100.4").send();
    for _ in 0..3 {
        assert_eq!(get().await.unwrap().status(), 303);
    }
    let refused = get().await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.text().await.unwrap().contains("Too many sign-in requests"));
    app.clock.advance(60);
    assert_eq!(get().await.unwrap().status(), 303, "a minute later");
}
