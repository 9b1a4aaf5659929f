//! `postern login / whoami / status / token / logout` as processes against `postern serve`:
//! device login approved through the real pages, the token file on disk, two `postern token`
//! processes racing a refresh, exit codes, the login screen in a real terminal (tmux), and
//! `postern login --browser` with a real headless Chromium as the opened browser.

use crate::Postern;
use crate::serve::{serve_logging, sigterm};
use postern_testkit::Visitor;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `postern serve` with Ann, and a config directory for the client commands.
struct World {
    p: Postern,
    server: Child,
    base: String,
    config: tempfile::TempDir,
}

impl World {
    fn start() -> World {
        let mut p = Postern::sqlite();
        p.env.push(("POSTERN_DEVICE__INTERVAL_SECS".into(), "1".into()));
        p.json(
            &["admin", "user", "create", "--email", "ann@example.org", "--password-stdin", "--json"],
            Some("correct horse\n"),
        );
        let (server, base, _) = serve_logging(&p, Stdio::null());
        World { p, server, base, config: tempfile::tempdir().unwrap() }
    }

    /// A client command: its own config directory, no browser, no display.
    fn client(&self, args: &[&str]) -> Command {
        let mut cmd = self.p.command(args);
        cmd.env("XDG_CONFIG_HOME", self.config.path()).env("HOME", self.config.path());
        for var in ["BROWSER", "DISPLAY", "WAYLAND_DISPLAY"] {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.client(args).output().unwrap()
    }

    fn store_dir(&self) -> PathBuf {
        self.config.path().join("postern")
    }

    fn tokens_file(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.store_dir().join("tokens.json")).unwrap()).unwrap()
    }

    /// `postern login --device`, approved (or denied) through the pages; the finished process.
    async fn login(&self, decision: &str) -> Output {
        let mut child = self
            .client(&["login", "--device", "--issuer", &self.base])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut shown = Vec::new();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let code = loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "login ended before showing a code: {shown:?}");
            shown.push(line.clone());
            if let Some((_, code)) = line.trim().split_once("enter the code ") {
                break code.to_owned();
            }
        };
        let mut v = Visitor::new(&self.base, self.base.clone());
        v.answer_device(&code, "ann@example.org", "correct horse", decision).await;
        let rest = std::thread::spawn(move || {
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
            rest
        });
        let mut out = child.wait_with_output().unwrap();
        out.stdout = [shown.concat(), rest.join().unwrap()].concat().into_bytes();
        out
    }

    /// Whether an access token of the CLI works where it is for: Postern's own APIs (its
    /// audience is the issuer, so only Postern accepts it), here the UserInfo endpoint.
    async fn token_works(&self, token: &str) -> bool {
        let r = reqwest::Client::new().get(format!("{}/userinfo", self.base)).bearer_auth(token).send().await.unwrap();
        r.status() == reqwest::StatusCode::OK
    }

    /// Whether the refresh token is current (its family alive, itself not rotated), read from
    /// the server's database: introspection describes a refresh token only to the client
    /// holding it, and postern-cli is public.
    async fn refresh_is_current(&self, token: &str) -> bool {
        let store = postern_store::Store::connect(&self.p.db.url, postern_store::PoolOptions::default()).await.unwrap();
        let hash = postern_core::secret::stored_hash(token);
        let now = postern_core::system::Clock::now(&postern_core::system::SystemClock);
        let current = store.refresh_token(&hash).await.unwrap().is_some_and(|r| r.is_current(now));
        store.close().await;
        current
    }

    fn stop(mut self) {
        self.stop_server();
    }

    fn stop_server(&mut self) {
        sigterm(&self.server);
        assert_eq!(self.server.wait().unwrap().code(), Some(0));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn login_whoami_status_token_and_logout() {
    let w = World::start();
    let out = w.login("approve").await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.starts_with(&format!("To log in, open {}/device and enter the code ", w.base)), "{stdout}");
    assert!(stdout.contains("(or open http://"), "plain lines when stdout is not a terminal: {stdout}");
    assert!(stdout.ends_with(&format!("Logged in as ann@example.org at {} (profile default).\n", w.base)), "{stdout}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&w.store_dir()), 0o700);
        assert_eq!(mode(&w.store_dir().join("tokens.json")), 0o600);
    }
    let file = w.tokens_file();
    assert_eq!(file["version"], 1);
    assert_eq!(file["sessions"][0]["client_id"], "postern-cli");

    let who = w.run(&["whoami"]);
    assert!(text(&who.stdout).starts_with(&format!("ann@example.org at {} (profile default, subject ", w.base)));
    let who: Value = serde_json::from_slice(&w.run(&["whoami", "--json"]).stdout).unwrap();
    assert_eq!(who["userinfo"]["email"], "ann@example.org");

    let status = text(&w.run(&["status"]).stdout);
    let row = status.lines().nth(1).unwrap();
    assert!(row.starts_with("default") && row.contains(&w.base) && row.contains("ann@example.org"), "{status}");
    assert!(row.contains("expires in 14m") || row.contains("expires in 15m"), "{status}");

    // `postern token` prints the token and nothing else.
    let token = w.run(&["token"]);
    assert!(token.status.success());
    let token = text(&token.stdout);
    assert_eq!(token.lines().count(), 1);
    let userinfo =
        reqwest::Client::new().get(format!("{}/userinfo", w.base)).bearer_auth(token.trim()).send().await.unwrap();
    assert_eq!(userinfo.status(), 200, "usable as a bearer token");

    // Logging out revokes the refresh token at the server.
    let refresh = file["sessions"][0]["refresh_token"].as_str().unwrap().to_owned();
    assert!(w.refresh_is_current(&refresh).await);
    let out = w.run(&["logout"]);
    assert_eq!(text(&out.stdout), format!("Logged out of {} (profile default).\n", w.base));
    assert!(!w.refresh_is_current(&refresh).await, "revoked at the server");
    assert_eq!(w.tokens_file()["sessions"], serde_json::json!([]));
    let out = w.run(&["token"]);
    assert_eq!(out.status.code(), Some(3), "not logged in");
    assert!(out.stdout.is_empty());
    assert_eq!(text(&w.run(&["status"]).stdout), "Not logged in anywhere.\n");
    w.stop();
}

/// `$BROWSER` for `postern login --browser`: a script that drives the test's headless Chromium
/// through WebDriver to the URL it is given, as a desktop browser opens a link.
fn chromium_opener(dir: &Path, webdriver_session: &str) -> PathBuf {
    let script = dir.join("open-in-chromium");
    let text = format!(
        "#!/usr/bin/env python3\n\
         import json, sys, urllib.request\n\
         request = urllib.request.Request({session:?} + '/url', data=json.dumps({{'url': sys.argv[1]}}).encode(),\n\
         \x20   headers={{'Content-Type': 'application/json'}})\n\
         urllib.request.urlopen(request, timeout=30).read()\n",
        session = webdriver_session
    );
    std::fs::write(&script, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    script
}

/// Starts `postern login --browser` with `$BROWSER` driving the test's Chromium; the handle
/// gives its output once it exits.
fn start_browser_login(
    w: &World,
    browser: &postern_testkit::browser::Browser,
) -> std::thread::JoinHandle<std::process::Output> {
    let opener = chromium_opener(w.config.path(), browser.webdriver_session());
    let child = w
        .client(&["login", "--browser", "--issuer", &w.base])
        .env("BROWSER", &opener)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::spawn(move || child.wait_with_output().unwrap())
}

#[tokio::test]
async fn browser_login_in_chromium_then_token() {
    let Some(browser) = postern_testkit::browser::Browser::start().await else { return };
    let w = World::start();
    let waiting = start_browser_login(&w, &browser);

    // The opener brought Chromium to the sign-in page; signing in ends at the CLI's loopback
    // listener, another origin than the server's.
    browser.wait_for_text("Sign in").await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    // postern-cli is public: the person confirms, seeing the loopback address it goes to.
    let confirm = browser.wait_for_text("Allow Postern CLI to access your account?").await;
    assert!(confirm.contains("your browser goes to http://127.0.0.1:"), "{confirm}");
    browser.press("Allow").await;
    browser.wait_for_text("You are logged in. You can close this window.").await;
    assert!(browser.current_url().await.starts_with("http://127.0.0.1:"));
    assert!(!browser.current_url().await.starts_with(&w.base), "the listener is another origin");

    let out = waiting.join().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.ends_with(&format!("Logged in as ann@example.org at {} (profile default).\n", w.base)), "{stdout}");
    let token = w.run(&["token"]);
    assert!(token.status.success(), "{}", text(&token.stderr));
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", w.base))
        .bearer_auth(text(&token.stdout).trim())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    assert_eq!(userinfo.json::<Value>().await.unwrap()["email"], "ann@example.org");
    browser.quit().await;
    w.stop();
}

#[tokio::test]
async fn browser_login_with_two_step_verification_in_chromium() {
    use postern_core::totp::{self, TotpSecret};
    let Some(browser) = postern_testkit::browser::Browser::start().await else { return };
    let w = World::start();
    // `postern serve` runs on the real clock; so do the codes.
    let now = || postern_core::system::Clock::now(&postern_core::system::SystemClock);
    // Ann turns TOTP on in the browser (the key from the page), then signs out.
    browser.goto(&format!("{}/login", w.base)).await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    browser.wait_for_text("Signed in as ann@example.org").await;
    browser.press("Set up authenticator app").await;
    let page = browser.wait_for_text("Enter this key instead").await;
    let key = page.split("Enter this key instead: ").nth(1).unwrap().lines().next().unwrap().to_owned();
    let secret = TotpSecret::from_bytes(postern_testkit::base32_decode(&key));
    let used = totp::step_at(now());
    browser.fill("Code", &totp::code_at(&secret, used)).await;
    browser.press("Turn on").await;
    browser.wait_for_text("Your recovery codes").await;
    browser.press("Sign out").await;
    browser.wait_for_text("You are signed out.").await;

    let waiting = start_browser_login(&w, &browser);
    browser.wait_for_text("Sign in").await;
    browser.submit_sign_in("ann@example.org", "correct horse").await;
    // The password alone does not reach the CLI: the code comes first.
    browser.wait_for_text("Two-step verification").await;
    browser.fill("Code", &totp::code_at(&secret, totp::step_at(now()).max(used + 1))).await;
    browser.press("Verify").await;
    browser.wait_for_text("Allow Postern CLI to access your account?").await;
    browser.press("Allow").await;
    browser.wait_for_text("You are logged in. You can close this window.").await;

    let out = waiting.join().unwrap();
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let token = w.run(&["token"]);
    assert!(token.status.success(), "{}", text(&token.stderr));
    // The CLI's access token (a JWT, accepted) says how ann signed in.
    let access = text(&token.stdout).trim().to_owned();
    assert!(w.token_works(&access).await);
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], postern_core::oidc::ACR_MFA);
    browser.quit().await;
    w.stop();
}

#[tokio::test]
async fn two_token_processes_after_expiry_refresh_once() {
    let w = World::start();
    assert!(w.login("approve").await.status.success());
    // Time passes, as far as the client can tell: the stored token has expired.
    let path = w.store_dir().join("tokens.json");
    let mut file = w.tokens_file();
    file["sessions"][0]["expires_at"] = serde_json::json!(file["sessions"][0]["logged_in_at"].as_i64().unwrap() - 5);
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    let before = postern_testkit::tokens_issued(&w.base).await;

    let spawn = || w.client(&["token"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (one, two) = (spawn(), spawn());
    let (one, two) = (one.wait_with_output().unwrap(), two.wait_with_output().unwrap());
    assert!(one.status.success() && two.status.success(), "{}{}", text(&one.stderr), text(&two.stderr));
    let (one, two) = (text(&one.stdout), text(&two.stdout));
    assert_eq!(one, two, "the second process used what the first stored");
    assert_ne!(one.trim(), file["sessions"][0]["access_token"].as_str().unwrap(), "refreshed");
    assert_eq!(postern_testkit::tokens_issued(&w.base).await, before + 1, "one refresh between the two processes");

    let after = w.tokens_file();
    assert_eq!(after["sessions"].as_array().unwrap().len(), 1, "the store is consistent");
    assert_eq!(after["sessions"][0]["access_token"].as_str().unwrap(), one.trim());
    let refresh = after["sessions"][0]["refresh_token"].as_str().unwrap();
    assert!(w.refresh_is_current(refresh).await, "the token family is not revoked");
    assert!(w.token_works(one.trim()).await);
    w.stop();
}

#[tokio::test]
async fn exit_codes_and_an_unreadable_store() {
    let w = World::start();
    let out = w.run(&["whoami"]);
    assert_eq!(out.status.code(), Some(3), "not logged in");
    assert!(text(&out.stderr).contains("not logged in"));

    let out = w.login("deny").await;
    assert_eq!(out.status.code(), Some(4), "denied: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("access_denied"));

    let out = w.run(&["login", "--device", "--issuer", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(6), "unreachable: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot reach http://127.0.0.1:9/.well-known/openid-configuration"));

    // A damaged token file means logged out, with a warning; it is kept aside at the next login.
    std::fs::create_dir_all(w.store_dir()).unwrap();
    std::fs::write(w.store_dir().join("tokens.json"), "{\"version\": 1, \"sessions\": [{\"half\"").unwrap();
    let out = w.run(&["token"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is not a token file") && stderr.contains("treating it as logged out"), "{stderr}");
    std::fs::write(w.store_dir().join("tokens.json"), "{\"version\": 7, \"sessions\": {}}").unwrap();
    let out = w.run(&["status"]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("format version 7"), "{}", text(&out.stderr));
    assert!(w.login("approve").await.status.success());
    assert!(w.run(&["token"]).status.success());
    let kept = std::fs::read_dir(w.store_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("tokens.json.unreadable-"))
        .count();
    assert_eq!(kept, 1);

    // With the server gone, logging out still forgets the session here, and says what it could not do.
    let mut w = w;
    w.stop_server();
    let out = w.run(&["logout"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("the server was not told"), "{}", text(&out.stderr));
    assert_eq!(w.tokens_file()["sessions"], serde_json::json!([]));
    assert_eq!(w.run(&["token"]).status.code(), Some(3));
}

/// The login screen in a real terminal: tmux runs `postern login`, capture-pane reads it.
#[tokio::test]
async fn the_login_screen_in_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(std::env::var("CI").is_err(), "tmux is missing (scripts/test installs it)");
        eprintln!("SKIPPED: tmux is not installed");
        return;
    }
    let w = World::start();
    let socket = w.config.path().join("tmux.sock");
    let tmux = |args: &[&str]| {
        let out = Command::new("tmux").arg("-S").arg(&socket).args(args).output().unwrap();
        assert!(out.status.success(), "tmux {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let login = w.client(&["login", "--device", "--issuer", &w.base]);
    let mut line = format!("env -u BROWSER -u DISPLAY -u WAYLAND_DISPLAY XDG_CONFIG_HOME={:?}", w.config.path());
    for (k, v) in login.get_envs() {
        if let (k, Some(v)) = (k.to_string_lossy(), v) {
            line += &format!(" {k}={:?}", v.to_string_lossy());
        }
    }
    line += &format!(" {:?} login --device --issuer {}", env!("CARGO_BIN_EXE_postern"), w.base);
    tmux(&["new-session", "-d", "-s", "login", "-x", "100", "-y", "60", "sh"]);
    tmux(&["set-option", "-t", "login", "remain-on-exit", "on"]);
    tmux(&["send-keys", "-t", "login", &line, "Enter"]);
    let screen_with = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = tmux(&["capture-pane", "-p", "-t", "login"]);
            if screen.contains(needle) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never showed {needle:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let screen = screen_with("Waiting for approval");
    assert!(screen.contains(&format!("To log in, open {}/device and enter the code:", w.base)), "{screen}");
    assert!(screen.contains("scan this code with a phone"), "{screen}");
    assert!(screen.lines().filter(|l| l.contains('▀') || l.contains('▄')).count() > 10, "a QR code: {screen}");
    let code = screen.lines().map(str::trim).find(|l| l.len() == 9 && l.as_bytes()[4] == b'-').unwrap().to_owned();
    // The spinner turns.
    let frame = |s: &str| s.lines().find(|l| l.contains("Waiting for approval")).unwrap().to_owned();
    let first = frame(&screen);
    let turned = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = frame(&screen_with("Waiting for approval"));
            if now != first {
                break now;
            }
            assert!(Instant::now() < deadline, "the spinner did not move: {first}");
            std::thread::sleep(Duration::from_millis(30));
        }
    };
    assert_ne!(turned, first);

    Visitor::new(&w.base, w.base.clone()).answer_device(&code, "ann@example.org", "correct horse", "approve").await;
    let screen = screen_with("Logged in as ann@example.org");
    assert!(!screen.contains("Waiting for approval"), "the spinner is cleared: {screen}");
    let _ = Command::new("tmux").arg("-S").arg(&socket).arg("kill-server").output();
    w.stop();
}
