//! A real headless Chromium for page tests, driven through ChromeDriver's W3C WebDriver API
//! with a few plain HTTP calls: fill inputs found by their visible label, press buttons found
//! by their text, read what the page says.
//!
//! When Chromium or ChromeDriver is missing, page tests fail under `CI=true` and are skipped,
//! loudly, elsewhere (`scripts/test` installs both).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    http: reqwest::Client,
    session: String,
    /// Kept for its `Drop`, which ends ChromeDriver and its browser.
    _driver: Driver,
    profile: tempfile::TempDir,
}

/// The ChromeDriver process, in a process group of its own with the Chromium it starts; the
/// whole group is killed however the test ends, so no browser outlives its test.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Browser {
    /// Starts ChromeDriver on a port of its choosing and opens a headless session.
    pub async fn start() -> Option<Browser> {
        if !std::path::Path::new(CHROMIUM).exists() || !std::path::Path::new(CHROMEDRIVER).exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("page tests need {CHROMIUM} and {CHROMEDRIVER} under CI (scripts/test installs them)");
            }
            eprintln!("SKIPPED: page test (Chromium or ChromeDriver not installed; scripts/test installs them)");
            return None;
        }
        let mut driver = Driver(
            Command::new(CHROMEDRIVER)
                .arg("--port=0")
                .process_group(0)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        // ChromeDriver says which port it took: "ChromeDriver was started successfully on port 12345."
        let stdout = driver.0.stdout.take().expect("chromedriver stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = loop {
            let line =
                lines.next().expect("chromedriver exited before saying its port").expect("read chromedriver output");
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest.trim_end_matches('.').trim().parse::<u16>().expect("a port number");
            }
        };
        std::thread::spawn(move || for _ in lines {});
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_until_ready(&http, &base).await;

        let profile = tempfile::tempdir().expect("profile directory");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args, "prefs": {
                "download.default_directory": profile.path().join("downloads"),
                "download.prompt_for_download": false,
            }},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Some(Browser { http, session: format!("{base}/session/{session}"), _driver: driver, profile })
    }

    async fn try_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response: Value = req.send().await.expect("webdriver call").json().await.expect("webdriver json");
        match response["value"]["error"].as_str() {
            Some(error) => Err(format!("webdriver {path}: {error}: {}", response["value"]["message"])),
            None => Ok(response["value"].clone()),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The WebDriver session's URL (`http://127.0.0.1:{port}/session/{id}`), for a helper
    /// outside the test that drives the same browser: `POST {this}/url` with `{"url": …}`
    /// navigates it, as a `$BROWSER` script does for `postern login --browser`.
    pub fn webdriver_session(&self) -> &str {
        &self.session
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn title(&self) -> String {
        self.call(reqwest::Method::GET, "/title", None).await.as_str().unwrap_or_default().to_owned()
    }

    async fn find_xpath(&self, xpath: &str) -> String {
        let found = self.call(reqwest::Method::POST, "/element", Some(json!({"using": "xpath", "value": xpath}))).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {xpath}")).to_owned()
    }

    /// The input a `<label>` with this exact text is for (so the page must label it).
    pub async fn input_labelled(&self, label: &str) -> String {
        let label_el = self.find_xpath(&format!("//label[normalize-space()='{label}']")).await;
        let target = self.call(reqwest::Method::GET, &format!("/element/{label_el}/attribute/for"), None).await;
        let id = target.as_str().unwrap_or_else(|| panic!("label {label:?} has no `for`"));
        self.find_xpath(&format!("//*[@id='{id}']")).await
    }

    pub async fn fill(&self, label: &str, text: &str) {
        let input = self.input_labelled(label).await;
        self.call(reqwest::Method::POST, &format!("/element/{input}/clear"), Some(json!({}))).await;
        self.call(reqwest::Method::POST, &format!("/element/{input}/value"), Some(json!({ "text": text }))).await;
    }

    /// Clicks the input this label is for (a checkbox, a radio button).
    pub async fn click_labelled(&self, label: &str) {
        let input = self.input_labelled(label).await;
        self.call(reqwest::Method::POST, &format!("/element/{input}/click"), Some(json!({}))).await;
    }

    /// The current value of the input this label is for.
    pub async fn value_labelled(&self, label: &str) -> String {
        let input = self.input_labelled(label).await;
        let value = self.call(reqwest::Method::GET, &format!("/element/{input}/property/value"), None).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    /// Clicks the button with this visible text; WebDriver waits for the navigation it causes.
    pub async fn press(&self, button: &str) {
        let el = self.find_xpath(&format!("//button[normalize-space()='{button}']")).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    /// Clicks the button with this visible text inside the list item that shows `item` (one
    /// "Sign out" among several, say).
    pub async fn press_within(&self, item: &str, button: &str) {
        self.press_in_item(&format!("contains(normalize-space(), '{item}')"), button).await;
    }

    /// Clicks the button with this visible text inside the first list item that does not show
    /// `item` (the other browser's "Sign out", say).
    pub async fn press_within_other(&self, item: &str, button: &str) {
        self.press_in_item(&format!("not(contains(normalize-space(), '{item}'))"), button).await;
    }

    async fn press_in_item(&self, condition: &str, button: &str) {
        let xpath = format!("//li[{condition}]//button[normalize-space()='{button}']");
        let el = self.find_xpath(&xpath).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    /// Adds a virtual authenticator to the browser (the WebAuthn WebDriver extension): a
    /// platform authenticator that keeps discoverable credentials and verifies its user, as a
    /// laptop's fingerprint reader does. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let id = self.call(reqwest::Method::POST, "/webauthn/authenticator", Some(options)).await;
        id.as_str().unwrap_or_else(|| panic!("no authenticator id: {id}")).to_owned()
    }

    /// The credentials a virtual authenticator holds (WebDriver's JSON: `credentialId`,
    /// `isResidentCredential`, `rpId`, `userHandle`, `signCount`, …).
    pub async fn authenticator_credentials(&self, authenticator: &str) -> Vec<Value> {
        let path = format!("/webauthn/authenticator/{authenticator}/credentials");
        self.call(reqwest::Method::GET, &path, None).await.as_array().cloned().unwrap_or_default()
    }

    /// Fills the sign-in form on the page showing and presses "Sign in" (the test then waits
    /// for what should follow: the account page, the second step, the client).
    pub async fn submit_sign_in(&self, email: &str, password: &str) {
        self.fill("Email", email).await;
        self.fill("Password", password).await;
        self.press("Sign in").await;
    }

    /// Clicks the link with this visible text.
    pub async fn follow(&self, link: &str) {
        let el = self.find_xpath(&format!("//a[normalize-space()='{link}']")).await;
        self.call(reqwest::Method::POST, &format!("/element/{el}/click"), Some(json!({}))).await;
    }

    /// Waits (10 s at most) until the browser has finished downloading a file of this name;
    /// returns its contents.
    pub async fn downloaded(&self, name: &str) -> String {
        let file = self.profile.path().join("downloads").join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                return text;
            }
            assert!(Instant::now() < deadline, "the browser never downloaded {name}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The visible text of the page as it is now (empty while a navigation replaces it).
    pub async fn text(&self) -> String {
        let Ok(found) =
            self.try_call(reqwest::Method::POST, "/element", Some(json!({"using": "xpath", "value": "//body"}))).await
        else {
            return String::new();
        };
        let Some(body) = found[ELEMENT].as_str() else {
            return String::new();
        };
        match self.try_call(reqwest::Method::GET, &format!("/element/{body}/text"), None).await {
            Ok(v) => v.as_str().unwrap_or_default().to_owned(),
            Err(_) => String::new(),
        }
    }

    /// Waits until the page shows `needle` (after a click that navigates, say); returns the
    /// page text. Fails after 10 s with what the page said instead.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "page never showed {needle:?}; it shows:\n{text}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Ends the session (ChromeDriver closes its Chromium), then the driver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        self.session.clear();
    }
}

impl Drop for Browser {
    /// A test that panics never reaches `quit`: end the session with a blocking request, so
    /// no Chromium outlives its test.
    fn drop(&mut self) {
        if let Some(rest) = self.session.strip_prefix("http://")
            && let Some((addr, path)) = rest.split_once('/')
        {
            let _ = delete_blocking(addr, &format!("/{path}"));
        }
    }
}

fn delete_blocking(addr: &str, path: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "DELETE {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink).map(|_| ())
}

/// Polls ChromeDriver's status until it reports ready (or gives up after 30 s).
async fn wait_until_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/status")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["value"]["ready"] == true
        {
            return;
        }
        assert!(Instant::now() < deadline, "chromedriver did not become ready");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
