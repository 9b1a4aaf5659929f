//! A browser played by an HTTP client: cookies kept by name, forms posted with the page's
//! `Origin`, redirects left to the test. Shared by the server's tests and the CLI's, so that
//! both sign in and approve device codes through the real pages.

/// A browser-like conversation with a Postern server.
pub struct Visitor {
    /// The server's base URL, for example `http://127.0.0.1:41234`.
    pub base: String,
    /// What the visitor's forms send as `Origin` (the issuer's origin, or a forged one).
    pub origin: String,
    pub http: reqwest::Client,
    pub cookies: std::collections::BTreeMap<String, String>,
}

impl Visitor {
    /// A visitor of the server at `base` whose issuer has origin `origin`.
    pub fn new(base: &str, origin: impl Into<String>) -> Self {
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client");
        Self { base: base.trim_end_matches('/').to_owned(), origin: origin.into(), http, cookies: Default::default() }
    }

    /// `path` on the server, or `path` itself when it is an absolute URL.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let text = v.to_str().expect("ASCII cookie");
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let r = self.http.get(self.url(path)).header("cookie", self.cookie_header()).send().await.expect("GET");
        self.keep(&r);
        r
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let r = self
            .http
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .header("origin", &self.origin)
            .form(fields)
            .send()
            .await
            .expect("POST");
        self.keep(&r);
        r
    }

    /// The value of a hidden input in a page.
    pub fn hidden(html: &str, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = html.find(&marker).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + marker.len();
        html[start..].split('"').next().unwrap_or_default().to_owned()
    }

    /// Opens the sign-in page and signs in; returns the response to the form.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> reqwest::Response {
        let page = self.get("/login").await.text().await.expect("sign-in page");
        let csrf = Self::hidden(&page, "csrf");
        self.post_form("/login", &[("csrf", &csrf), ("request", ""), ("email", email), ("password", password)]).await
    }

    /// Enters `user_code` on the device page, signs in as `email` / `password` if asked, and
    /// answers the confirmation with `decision` (`approve` or `deny`); returns the last page.
    pub async fn answer_device(&mut self, user_code: &str, email: &str, password: &str, decision: &str) -> String {
        let page = self.get(&format!("/device?user_code={user_code}")).await.text().await.expect("device page");
        assert!(page.contains(&format!("value=\"{user_code}\"")), "pre-filled, not approved: {page}");
        let csrf = Self::hidden(&page, "csrf");
        let r = self.post_form("/device", &[("csrf", &csrf), ("user_code", &user_code.to_lowercase())]).await;
        assert_eq!(r.status(), 303);
        let mut location = Self::location(&r);
        if location.starts_with("/login") {
            let page = self.get(&location).await.text().await.expect("sign-in page");
            let (csrf, request) = (Self::hidden(&page, "csrf"), Self::hidden(&page, "request"));
            let fields = [("csrf", csrf.as_str()), ("request", &request), ("email", email), ("password", password)];
            let r = self.post_form("/login", &fields).await;
            location = Self::location(&r);
        }
        assert!(location.starts_with("/device/confirm"), "{location}");
        let page = self.get(&location).await.text().await.expect("confirmation page");
        let (csrf, code) = (Self::hidden(&page, "csrf"), Self::hidden(&page, "user_code"));
        let r =
            self.post_form("/device/confirm", &[("csrf", &csrf), ("user_code", &code), ("decision", decision)]).await;
        assert_eq!(r.status(), 200);
        r.text().await.expect("answer page")
    }

    /// The `Location` of a redirect.
    pub fn location(r: &reqwest::Response) -> String {
        let value = r.headers().get("location").unwrap_or_else(|| panic!("no Location in a {} answer", r.status()));
        value.to_str().expect("ASCII Location").to_owned()
    }
}
