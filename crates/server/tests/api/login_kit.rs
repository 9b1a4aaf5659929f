//! The CLI login kit (postern-login) against a real server: device login approved through the
//! pages, browser login with the "browser" played by an HTTP client that signs in and follows
//! the redirects to the loopback listener, and sessions that refresh themselves.

use crate::helpers::*;
use postern_login::{BrowserOptions, Client, Error, LoginOptions, MemoryStore, Method, Prompt, Session, TokenStore};
use postern_server::bootstrap::CLI_CLIENT_ID;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

const SCOPES: [&str; 4] = ["openid", "email", "profile", "offline_access"];

fn options(method: Method) -> LoginOptions {
    LoginOptions { method, scopes: SCOPES.map(String::from).to_vec(), browser: BrowserOptions::default() }
}

/// A server on the real clock (the device flow's pace is judged by it) with a 1 s interval.
async fn real_time_server() -> (TestApp, postern_testkit::TestDb) {
    let db = postern_testkit::sqlite();
    let mut config = test_config(&db);
    config.device.interval_secs = 1;
    let app = start_real_time(config).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    (app, db)
}

/// Runs `login` with `method`; prompts go to the returned channel as text, the device's user
/// code as `code:<user code>`.
fn prompts() -> (impl Fn(Prompt<'_>), mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let prompt = move |p: Prompt<'_>| {
        if let Prompt::Device(d) = &p {
            let _ = tx.send(format!("code:{}", d.user_code));
        }
        let _ = tx.send(p.to_string());
    };
    (prompt, rx)
}

async fn next_code(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    while let Some(line) = rx.recv().await {
        if let Some(code) = line.strip_prefix("code:") {
            return code.to_owned();
        }
    }
    panic!("no device code was shown");
}

#[tokio::test]
async fn device_login_approved_through_the_pages() {
    let (app, _db) = real_time_server().await;
    let client = Client::discover(&app.base, CLI_CLIENT_ID).await.unwrap();
    let (prompt, mut shown) = prompts();
    let device = options(Method::Device);
    let login = client.login(&device, prompt);
    let approve = async {
        let code = next_code(&mut shown).await;
        visitor(&app).answer_device(&code, "ann@example.org", "correct horse", "approve").await
    };
    let (tokens, page) = tokio::join!(login, approve);
    assert!(page.contains("You can return to your device now."), "{page}");
    let tokens = tokens.unwrap();
    assert!(tokens.refresh_token.is_some() && tokens.expires_at.is_some());

    let store = Arc::new(MemoryStore::new());
    let session = Session::start(&client, store.clone(), "default", tokens).await.unwrap();
    let stored = session.stored().await;
    assert_eq!(stored.display_name.as_deref(), Some("ann@example.org"), "who logged in, from userinfo");
    assert!(stored.subject.is_some());
    assert_eq!(session.userinfo().await.unwrap()["email"], "ann@example.org");
    let again = Session::open(&client, store, "default").await.unwrap().expect("stored");
    assert_eq!(again.stored().await, stored);
}

#[tokio::test]
async fn device_login_denied_and_expired_are_told_apart() {
    let (app, _db) = real_time_server().await;
    let client = Client::discover(&app.base, CLI_CLIENT_ID).await.unwrap();
    let (prompt, mut shown) = prompts();
    let device = options(Method::Device);
    let login = client.login(&device, prompt);
    let deny = async {
        let code = next_code(&mut shown).await;
        visitor(&app).answer_device(&code, "ann@example.org", "correct horse", "deny").await
    };
    let (denied, _) = tokio::join!(login, deny);
    assert!(matches!(denied, Err(Error::AccessDenied(_))), "{denied:?}");

    let db = postern_testkit::sqlite();
    let mut config = test_config(&db);
    (config.device.interval_secs, config.device.expires_secs) = (1, 2);
    let app = start_real_time(config).await.unwrap();
    let client = Client::discover(&app.base, CLI_CLIENT_ID).await.unwrap();
    let device = client.start_device_login(&["openid"]).await.unwrap();
    assert_eq!(device.expires_in, 2);
    assert!(device.verification_uri_complete.as_deref().is_some_and(|u| u.contains(&device.user_code)));
    let expired = client.finish_device_login(&device).await;
    assert!(matches!(expired, Err(Error::ExpiredToken)), "{expired:?}");
}

/// Plays the browser: opens `url` with the visitor's cookies, signs in when sent to the
/// sign-in page, allows on the confirmation page, and follows redirects until the loopback listener answers; `tamper` may change
/// the callback URL first. Returns the listener's status and page.
async fn browse(mut v: Visitor, url: String, tamper: impl Fn(String) -> String) -> (u16, String) {
    let mut next = url;
    for _ in 0..10 {
        if next.starts_with("http://127.0.0.1:") && next.contains("/callback") && !next.starts_with(&v.base) {
            let r = reqwest::get(tamper(next)).await.unwrap();
            return (r.status().as_u16(), r.text().await.unwrap());
        }
        let r = v.get(&next).await;
        if r.status() == 200 {
            let page = r.text().await.unwrap();
            if page.contains("value=\"allow\"") {
                // A public client is always confirmed, with the loopback address shown.
                assert!(page.contains("your browser goes to <code>http://127.0.0.1:"), "{page}");
                let (csrf, request) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "request"));
                let fields = [("csrf", csrf.as_str()), ("request", &request), ("decision", "allow")];
                next = Visitor::location(&v.post_form("/oauth/authorize/consent", &fields).await);
                continue;
            }
            assert!(page.contains("name=\"password\""), "expected the sign-in page: {page}");
            let (csrf, request) = (Visitor::hidden(&page, "csrf"), Visitor::hidden(&page, "request"));
            let fields = [("csrf", csrf.as_str()), ("request", &request), ("email", "ann@example.org")];
            let r = v.post_form("/login", &[fields.as_slice(), &[("password", "correct horse")]].concat()).await;
            next = Visitor::location(&r);
            continue;
        }
        assert_eq!(r.status(), 303, "{next}");
        next = Visitor::location(&r);
    }
    panic!("too many redirects");
}

/// An opener that hands the URL to [`browse`] once, and the listener's answer to the channel.
fn playing_browser(
    v: Visitor,
    tamper: impl Fn(String) -> String + Send + Sync + Clone + 'static,
) -> (BrowserOptions, mpsc::UnboundedReceiver<(u16, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let visitor = Arc::new(Mutex::new(Some(v)));
    let opener = move |url: &str| {
        let v = visitor.lock().unwrap().take().expect("the browser is opened once");
        let (url, tx, tamper) = (url.to_owned(), tx.clone(), tamper.clone());
        tokio::spawn(async move {
            let _ = tx.send(browse(v, url, tamper).await);
        });
        Ok(())
    };
    (BrowserOptions { opener: Some(Arc::new(opener)), ..Default::default() }, rx)
}

#[tokio::test]
async fn browser_login_signs_in_and_comes_back_to_the_loopback_listener() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let client = Client::discover(&app.base, CLI_CLIENT_ID).await.unwrap();
    let (browser, mut pages) = playing_browser(visitor(&app), |url| url);
    let (prompt, mut shown) = prompts();
    let tokens = client.login(&LoginOptions { browser, ..options(Method::Browser) }, prompt).await.unwrap();
    let (status, page) = pages.recv().await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("You can close this window."), "{page}");
    let url = shown.recv().await.unwrap();
    assert!(url.contains("code_challenge_method=S256") && url.contains("state="), "{url}");
    assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A"), "{url}");
    let session = Session::start(&client, Arc::new(MemoryStore::new()), "default", tokens).await.unwrap();
    assert_eq!(session.userinfo().await.unwrap()["email"], "ann@example.org");
}

#[tokio::test]
async fn the_listener_refuses_a_mixed_up_issuer_and_ignores_strangers() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let client = Client::discover(&app.base, CLI_CLIENT_ID).await.unwrap();
    assert_eq!(client.metadata().authorization_response_iss_parameter_supported, Some(true));

    // An answer claiming another issuer (RFC 9207) ends the login with an error.
    let (browser, mut pages) = playing_browser(visitor(&app), |url| {
        let (before, _) = url.split_once("&iss=").unwrap();
        format!("{before}&iss=https%3A%2F%2Fevil.example")
    });
    let result = client.login(&LoginOptions { browser, ..options(Method::Browser) }, |_| {}).await;
    assert!(
        matches!(&result, Err(Error::IssuerMismatch { got: Some(g), .. }) if g == "https://evil.example"),
        "{result:?}"
    );
    assert_eq!(pages.recv().await.unwrap().0, 400);

    // A request with the wrong state (another tab, a probe) is turned away and the login goes
    // on; here it then times out, as the real browser never comes.
    let (tx, mut probes) = mpsc::unbounded_channel();
    let opener = move |url: &str| {
        let redirect = url::Url::parse(url).unwrap();
        let back = redirect.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
        let tx = tx.clone();
        tokio::spawn(async move {
            let stranger = reqwest::get(format!("{back}?code=stolen&state=guess")).await.unwrap();
            let favicon = reqwest::get(back.replace("/callback", "/favicon.ico")).await.unwrap();
            let _ = tx.send((stranger.status().as_u16(), favicon.status().as_u16()));
        });
        Ok(())
    };
    let browser =
        BrowserOptions { opener: Some(Arc::new(opener)), timeout: std::time::Duration::from_secs(2), port: 0 };
    let result = client.login(&LoginOptions { browser, ..options(Method::Browser) }, |_| {}).await;
    assert!(matches!(result, Err(Error::ExpiredToken)), "{result:?}");
    assert_eq!(probes.recv().await.unwrap(), (400, 404));
}

#[tokio::test]
async fn without_a_browser_the_login_falls_back_to_a_code_and_can_be_cancelled() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let client = Client::discover(&app.base, CLI_CLIENT_ID).await.unwrap();
    let opener = |_: &str| Err(std::io::Error::other("no browser here"));
    let browser = BrowserOptions { opener: Some(Arc::new(opener)), ..Default::default() };
    let (prompt, mut shown) = prompts();
    let auto = LoginOptions { browser, ..options(Method::Auto) };
    let login = client.login(&auto, prompt);
    let mut lines = Vec::new();
    let until_code = async {
        while let Some(line) = shown.recv().await {
            let done = line.starts_with("code:");
            lines.push(line);
            if done {
                break;
            }
        }
    };
    tokio::select! {
        result = login => panic!("the login cannot finish unapproved: {result:?}"),
        () = until_code => {}
    }
    // The login future is dropped here, which cancels it. What the user was told, in order:
    assert!(lines[0].starts_with("Opening a browser to log in. If none opens, visit:\nhttp://127.0.0.1:"), "{lines:?}");
    assert_eq!(lines[1], "Cannot open a browser (no browser here); using a code instead.");
    assert_eq!(lines[2].len(), "code:XXXX-XXXX".len(), "{lines:?}");
    assert!(shown.recv().await.unwrap().starts_with("To log in, open http://127.0.0.1:"));
}

/// Ann, logged in with the browser flow; the client and fresh tokens.
async fn logged_in(app: &TestApp) -> (Client, postern_login::Tokens) {
    create_user(app, "ann@example.org", "correct horse").await;
    let client = Client::discover(&app.base, CLI_CLIENT_ID).await.unwrap();
    let (browser, _pages) = playing_browser(visitor(app), |url| url);
    let tokens = client.login(&LoginOptions { browser, ..options(Method::Browser) }, |_| {}).await.unwrap();
    (client, tokens)
}

/// The stored "default" session, made to expire `secs` after it was logged in (time passing,
/// as far as the client can tell), and opened again.
async fn expiring_in(client: &Client, store: Arc<dyn TokenStore>, secs: i64) -> Session {
    let key = Session::open(client, store.clone(), "default").await.unwrap().unwrap().key().clone();
    let mut stored = store.load(&key).unwrap().unwrap();
    stored.expires_at = Some(stored.logged_in_at + secs);
    store.save(&stored).unwrap();
    Session::open(client, store, "default").await.unwrap().unwrap()
}

#[tokio::test]
async fn sessions_refresh_ahead_of_expiry_once_for_all_callers() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let (client, tokens) = logged_in(&app).await;
    let store = Arc::new(MemoryStore::new());
    let session = Session::start(&client, store.clone(), "default", tokens.clone()).await.unwrap();
    let issued = postern_testkit::tokens_issued(&app.base).await;

    // Valid for 15 minutes: used as it is.
    assert_eq!(session.access_token().await.unwrap(), tokens.access_token);
    assert_eq!(postern_testkit::tokens_issued(&app.base).await, issued);

    // Within a minute of expiry: 16 callers at once, one refresh, one new token for all.
    let session = expiring_in(&client, store.clone(), 30).await;
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let s = session.clone();
        callers.spawn(async move { s.access_token().await.unwrap() });
    }
    let fresh: std::collections::HashSet<String> = callers.join_all().await.into_iter().collect();
    assert_eq!(fresh.len(), 1, "one token for every caller");
    assert!(!fresh.contains(&tokens.access_token));
    assert_eq!(postern_testkit::tokens_issued(&app.base).await, issued + 1, "a single refresh");
    let stored = store.load(session.key()).unwrap().unwrap();
    assert!(fresh.contains(&stored.access_token), "the refresh reached the store");
    assert_ne!(stored.refresh_token, tokens.refresh_token, "rotated");
    assert!(stored.refreshed_at.is_some());
    // The rotated token family is alive: the old refresh token was spent once only.
    let rt = stored.refresh_token.unwrap();
    assert!(crate::refresh::refresh_is_current(&app, &rt).await);
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let (client, tokens) = logged_in(&app).await;
    let session = Session::start(&client, Arc::new(MemoryStore::new()), "default", tokens.clone()).await.unwrap();
    // The server stops accepting the access token before it expires.
    client.revoke(&tokens.access_token, "access_token").await.unwrap();
    let issued = postern_testkit::tokens_issued(&app.base).await;
    let claims = session.userinfo().await.unwrap();
    assert_eq!(claims["email"], "ann@example.org");
    assert_eq!(postern_testkit::tokens_issued(&app.base).await, issued + 1, "one refresh");
    let now = session.stored().await.access_token;
    assert_ne!(now, tokens.access_token);
    // A second 401 for the old token, reported late, costs nothing.
    assert_eq!(session.refresh_rejected(&tokens.access_token).await.unwrap(), now);
    assert_eq!(postern_testkit::tokens_issued(&app.base).await, issued + 1);
}

#[tokio::test]
async fn a_refused_refresh_token_logs_out_cleanly_and_logout_revokes() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let (client, tokens) = logged_in(&app).await;
    let store = Arc::new(MemoryStore::new());
    let session = Session::start(&client, store.clone(), "default", tokens.clone()).await.unwrap();
    client.revoke(tokens.refresh_token.as_deref().unwrap(), "refresh_token").await.unwrap();
    assert_eq!(session.access_token().await.unwrap(), tokens.access_token, "not due for a refresh");
    let session = expiring_in(&client, store.clone(), -5).await;
    let ended = session.access_token().await;
    assert!(matches!(&ended, Err(Error::SessionEnded(_))), "{ended:?}");
    assert!(ended.unwrap_err().to_string().ends_with("log in again"));
    assert!(Session::open(&client, store.clone(), "default").await.unwrap().is_none(), "logged out");

    // Logging out revokes the refresh token at the server, then forgets the session.
    let (client, tokens) = (client.clone(), client.login(&browser_again(&app), |_| {}).await.unwrap());
    let session = Session::start(&client, store.clone(), "default", tokens.clone()).await.unwrap();
    let rt = tokens.refresh_token.unwrap();
    assert!(crate::refresh::refresh_is_current(&app, &rt).await);
    session.logout().await.unwrap();
    assert!(!crate::refresh::refresh_is_current(&app, &rt).await);
    assert!(Session::open(&client, store, "default").await.unwrap().is_none());
}

fn browser_again(app: &TestApp) -> LoginOptions {
    let (browser, _pages) = playing_browser(visitor(app), |url| url);
    LoginOptions { browser, ..options(Method::Browser) }
}

#[tokio::test]
async fn two_sessions_on_one_file_take_turns_and_spend_the_refresh_token_once() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let (client, tokens) = logged_in(&app).await;
    let dir = tempfile::tempdir().unwrap();
    // Two stores on the same file, as two processes would have: the file lock is what orders
    // them, not anything they share in memory.
    let (one, two) = (postern_login::FileStore::in_dir(dir.path()), postern_login::FileStore::in_dir(dir.path()));
    Session::start(&client, Arc::new(one.clone()), "default", tokens.clone()).await.unwrap();
    let a = expiring_in(&client, Arc::new(one), -5).await;
    let b = Session::open(&client, Arc::new(two.clone()), "default").await.unwrap().unwrap();
    let issued = postern_testkit::tokens_issued(&app.base).await;
    let (ta, tb) = tokio::join!(a.access_token(), b.access_token());
    assert_eq!(ta.unwrap(), tb.unwrap(), "the second re-read what the first stored");
    assert_eq!(postern_testkit::tokens_issued(&app.base).await, issued + 1, "one refresh between them");
    let stored = two.list().unwrap();
    assert_eq!(stored.len(), 1);
    let rt = stored[0].refresh_token.clone().unwrap();
    assert!(crate::refresh::refresh_is_current(&app, &rt).await, "the family is not revoked");
}
