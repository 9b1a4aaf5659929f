//! Sign-in, sessions, CSRF, throttling, sign-out.

use crate::helpers::*;

both!(signing_in_creates_a_fresh_session_each_time, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    let r = v.sign_in("Ann@Example.org", "correct horse").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find(|c| c.starts_with("postern_session="))
        .unwrap()
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"), "{cookie}");
    let first = v.cookies["postern_session"].clone();
    let page = v.get("/account").await.text().await.unwrap();
    assert!(page.contains("Signed in as <strong>ann@example.org</strong>"), "{page}");

    // The token is stored only as its hash.
    let hash = postern_core::secret::TokenHash::of(&first);
    assert!(app.state.store.session(&hash, NOW).await.unwrap().is_some());

    // Posting the sign-in form again while signed in replaces the session.
    let csrf = v.cookies["postern_csrf"].clone();
    let fields = [("csrf", csrf.as_str()), ("email", "ann@example.org"), ("password", "correct horse")];
    let again = v.post_form("/login", &fields).await;
    assert_eq!(again.status(), 303);
    assert_ne!(v.cookies["postern_session"], first);
    assert!(app.state.store.session(&hash, NOW).await.unwrap().is_none(), "the old session ended");

    // Signing out ends it.
    let page = v.get("/account").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    assert_eq!(v.post_form("/logout", &[("csrf", &csrf)]).await.status(), 200);
    assert!(!v.cookies.contains_key("postern_session"));
    assert_eq!(v.get("/account").await.headers()["location"], "/login");
});

#[tokio::test]
async fn argon2id_working_memory_is_given_back_seconds_after_the_last_sign_in() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    create_user(&app, "ann@example.org", "correct horse").await;
    let pool = &app.state.node.passwords;
    assert_eq!(pool.kept_blocks(), 0, "none before the first sign-in");
    assert_eq!(visitor(&app).sign_in("ann@example.org", "correct horse").await.status(), 303);
    assert_eq!(pool.kept_blocks(), 1, "kept for the next sign-in");
    // The server's own task gives it back once no sign-in came for one of its periods (5 s),
    // not at the minute-long maintenance pass.
    let freed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while pool.kept_blocks() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    });
    assert!(freed.await.is_ok(), "the working memory was not given back");
    assert_eq!(app.state.config.maintenance.interval_secs, 60, "the maintenance pass did not do it");
    assert_eq!(visitor(&app).sign_in("ann@example.org", "correct horse").await.status(), 303, "and signs in again");
    assert_eq!(pool.kept_blocks(), 1);
}

#[tokio::test]
async fn every_failed_sign_in_looks_the_same() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let id = create_user(&app, "ann@example.org", "correct horse").await;
    let disabled = create_user(&app, "bob@example.org", "correct horse").await;
    app.state.store.disable_user(&disabled, NOW).await.unwrap();
    let mut bodies = Vec::new();
    for (email, password) in [
        ("ann@example.org", "wrong"),
        ("nobody@example.org", "correct horse"),
        ("bob@example.org", "correct horse"),
        ("not an email", "x"),
    ] {
        let mut v = visitor(&app);
        let r = v.sign_in(email, password).await;
        assert_eq!(r.status(), 401, "{email}");
        assert!(!v.cookies.contains_key("postern_session"));
        let body = r.text().await.unwrap();
        assert!(body.contains("Incorrect email or password."), "{email}");
        bodies.push(
            body.replace(email, "")
                .split("name=\"csrf\"")
                .nth(1)
                .unwrap_or_default()
                .split('>')
                .skip(1)
                .collect::<String>(),
        );
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the same page whatever went wrong");
    let events = app.state.store.list_audit(0, Some("login"), 10).await.unwrap();
    assert_eq!(events.len(), 4);
    assert!(events.iter().all(|e| e.outcome == "failure"));
    assert!(events.iter().any(|e| e.target.as_deref() == Some(id.as_str())));
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_our_origin() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    let page = v.get("/login").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let fields = |token: &str| {
        vec![("csrf", token.to_owned()), ("email", "ann@example.org".into()), ("password", "correct horse".into())]
    };
    let r = v.post_form("/login", &fields("").iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(r.status(), 403, "no token");
    let r =
        v.post_form("/login", &fields(&"x".repeat(43)).iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(r.status(), 403, "wrong token");
    v.origin = "https://evil.example".into();
    let r = v.post_form("/login", &fields(&csrf).iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(r.status(), 403, "foreign origin");
    v.origin = app.state.issuer_origin();
    let r = v.post_form("/login", &fields(&csrf).iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(r.status(), 303, "token and origin right");
}

#[tokio::test]
async fn repeated_failures_back_off_with_429() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    for attempt in 1..=5 {
        assert_eq!(v.sign_in("ann@example.org", "wrong").await.status(), 401, "attempt {attempt}");
    }
    let blocked = v.sign_in("ann@example.org", "correct horse").await;
    assert_eq!(blocked.status(), 429, "even the right password waits");
    assert_eq!(blocked.headers()["retry-after"], "2");
    assert!(blocked.text().await.unwrap().contains("Try again in 2 seconds"));
    // Another account from the same address is not blocked yet.
    create_user(&app, "bob@example.org", "correct horse").await;
    assert_eq!(visitor(&app).sign_in("bob@example.org", "correct horse").await.status(), 303);
    app.clock.advance(2);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
}

#[tokio::test]
async fn a_full_hashing_queue_answers_503() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let mut config = test_config(&db);
    config.sessions.sign_in_queue_per_core = 0;
    let app = start(config).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let r = visitor(&app).sign_in("ann@example.org", "correct horse").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
}

#[tokio::test]
async fn https_issuers_get_host_prefixed_secure_cookies() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let mut config = test_config(&db);
    config.issuer = Some("https://auth.example.test".into());
    let app = start(config).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut v = visitor(&app);
    assert_eq!(v.origin, "https://auth.example.test");
    let r = v.sign_in("ann@example.org", "correct horse").await;
    assert_eq!(r.status(), 303);
    let cookies: Vec<String> =
        r.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap().to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with("__Host-postern_session=")).unwrap();
    assert!(session.contains("; Secure") && session.contains("Path=/") && !session.contains("Domain"), "{session}");
    assert!(v.cookies.contains_key("__Host-postern_csrf"));
}

/// A visitor whose requests carry `X-Forwarded-For: forwarded` (as a proxy would add).
fn visitor_via_proxy(app: &TestApp, forwarded: &str) -> Visitor {
    let mut v = visitor(app);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", forwarded.parse().unwrap());
    v.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    v
}

/// Twenty-one failed sign-ins for twenty-one different accounts: over any address's budget,
/// without blocking an account.
async fn spray(app: &TestApp, forwarded: &str) {
    for i in 0..21 {
        let r = visitor_via_proxy(app, forwarded).sign_in(&format!("guess{i}@example.org"), "wrong").await;
        assert_eq!(r.status(), 401);
    }
}

async fn last_login_ip(app: &TestApp) -> Option<String> {
    app.state.store.list_audit(0, Some("login"), 1).await.unwrap().remove(0).ip
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget_and_address() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let mut config = test_config(&db);
    config.server.trusted_proxies = vec![postern_core::client_address::Cidr::parse("127.0.0.0/8").unwrap()];
    let app = start(config).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;

    // One client behind the proxy guesses a lot; another signs in at once, and is recorded
    // under its own address (a client's own prefix is not believed).
    spray(&app, "203.0.113.7").await;
    assert_eq!(last_login_ip(&app).await.as_deref(), Some("203.0.113.7"));
    let r = visitor_via_proxy(&app, "6.6.6.6, 198.51.100.9").sign_in("ann@example.org", "correct horse").await;
    assert_eq!(r.status(), 303);
    assert_eq!(last_login_ip(&app).await.as_deref(), Some("198.51.100.9"));
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let r = visitor_via_proxy(&app, "198.51.100.9").sign_in("ann@example.org", "correct horse").await;
    assert_eq!(r.status(), 303);
    assert_eq!(last_login_ip(&app).await.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn an_address_over_its_budget_is_slowed_but_a_correct_password_still_signs_in() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    spray(&app, "ignored").await;
    let r = visitor(&app).sign_in("ann@example.org", "correct horse").await;
    assert_eq!(r.status(), 303, "slowed down, not refused");
}

#[tokio::test]
async fn parallel_guesses_cannot_spend_more_than_the_accounts_budget() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut guesses = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let mut v = visitor(&app);
        guesses.spawn(async move { v.sign_in("ann@example.org", "wrong").await.status().as_u16() });
    }
    let answers = guesses.join_all().await;
    let verified = answers.iter().filter(|s| **s == 401).count();
    assert_eq!(verified, 5, "exactly the budget was verified: {answers:?}");
    assert!(answers.iter().all(|s| *s == 401 || *s == 429), "{answers:?}");
    let events = app.state.store.list_audit(0, Some("login"), 100).await.unwrap();
    assert_eq!(events.len(), 5, "one audit event per verified guess");
}

// Where a sign-in goes on to is kept on the server, typed, under a token of its own: the
// sign-in page never takes a request handle or a user code from the URL, and a sign-in's
// token is spent by the sign-in it started.
both!(a_sign_in_continues_with_what_the_server_kept_for_it, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = crate::helpers::relying_party(&app, false).await;
    let mut v = visitor(&app);
    let first = v.get(&crate::helpers::authorize_url(&rp, "")).await;
    let (location, params) = crate::helpers::location_params(&first);
    let token = params["request"].clone();
    assert!(location.starts_with("/login?request="), "{location}");

    // The page carries the sign-in's token; signing in continues with the waiting request.
    let page = v.get(&location).await.text().await.unwrap();
    assert_eq!(Visitor::hidden(&page, "request"), token);
    let csrf = Visitor::hidden(&page, "csrf");
    let signed_in =
        [("csrf", csrf.as_str()), ("request", &token), ("email", "ann@example.org"), ("password", "correct horse")];
    let r = v.post_form("/login", &signed_in).await;
    let next = Visitor::location(&r);
    assert!(next.starts_with("/oauth/authorize/continue?request="), "{next}");
    let handle = next.split("request=").nth(1).unwrap().to_owned();
    assert_ne!(handle, token, "the browser's sign-in token is not the request's handle");
    let stored = app.state.store.sign_in(&postern_core::secret::TokenHash::of(&token), NOW).await.unwrap();
    assert!(stored.is_none(), "a sign-in is spent once it succeeds");

    // A request handle given where a sign-in token belongs is not taken for one: the page
    // carries nothing, and signing in with it ends at the account page.
    let mut w = visitor(&app);
    let page = w.get(&format!("/login?request={handle}")).await.text().await.unwrap();
    assert_eq!(Visitor::hidden(&page, "request"), "");
    let csrf = Visitor::hidden(&page, "csrf");
    let fields =
        [("csrf", csrf.as_str()), ("request", &handle), ("email", "ann@example.org"), ("password", "correct horse")];
    assert_eq!(Visitor::location(&w.post_form("/login", &fields).await), "/account");
    // Nor is a spent sign-in token.
    let mut x = visitor(&app);
    let page = x.get(&format!("/login?request={token}")).await.text().await.unwrap();
    assert_eq!(Visitor::hidden(&page, "request"), "");

    // A device waiting for approval: the sign-in continues with its confirmation page.
    let device = crate::device::device_client(&app, "TV").await;
    let started = crate::device::start_device(&app, &device, "read").await;
    let code = started["user_code"].as_str().unwrap().replace('-', "");
    let mut d = visitor(&app);
    let page = d.get("/device").await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let r = d.post_form("/device", &[("csrf", &csrf), ("user_code", &code)]).await;
    let to_login = Visitor::location(&r);
    assert!(to_login.starts_with("/login?request=") && !to_login.contains(&code), "{to_login}");
    let page = d.get(&to_login).await.text().await.unwrap();
    let csrf = Visitor::hidden(&page, "csrf");
    let request = Visitor::hidden(&page, "request");
    let fields =
        [("csrf", csrf.as_str()), ("request", &request), ("email", "ann@example.org"), ("password", "correct horse")];
    let r = d.post_form("/login", &fields).await;
    assert_eq!(Visitor::location(&r), format!("/device/confirm?user_code={code}"));
});
