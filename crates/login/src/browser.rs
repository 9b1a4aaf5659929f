//! The authorization code flow for a native app (RFC 8252): a one-shot listener on loopback,
//! the system browser sent to the authorization endpoint with S256 PKCE and `state`, the answer
//! checked for `state` and `iss` (RFC 9207), then the code exchanged.
//!
//! The listener is written here rather than on an HTTP server crate: it serves one `GET` to a
//! browser on this machine, reads at most 8 KiB, and answers a fixed page, which is less code
//! than wiring a server framework for it.

use crate::client::{Client, Tokens};
use crate::error::Error;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Opens a URL in a browser; replaceable so that tests and unusual desktops can bring their own.
pub type Opener = Arc<dyn Fn(&str) -> std::io::Result<()> + Send + Sync>;

/// How the browser login runs.
#[derive(Clone)]
pub struct BrowserOptions {
    /// The loopback port to listen on; 0 takes a free one.
    pub port: u16,
    /// How long to wait for the browser to come back.
    pub timeout: Duration,
    /// What opens the browser; [`system_opener`] when `None`.
    pub opener: Option<Opener>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self { port: 0, timeout: Duration::from_secs(300), opener: None }
    }
}

/// What the browser brought back to the listener.
enum Answer {
    Code(String),
    Refused(Error),
}

/// A browser login ready to start: the listener is bound and the URL built.
pub(crate) struct BrowserLogin {
    listener: TcpListener,
    pub url: String,
    redirect_uri: String,
    state: String,
    verifier: String,
}

impl Client {
    /// Binds the loopback listener and builds the authorization URL.
    pub(crate) async fn prepare_browser_login(
        &self,
        scopes: &[&str],
        options: &BrowserOptions,
    ) -> Result<BrowserLogin, Error> {
        let endpoint = self.endpoint(self.metadata().authorization_endpoint.as_ref(), "authorization endpoint")?;
        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| Error::NoBrowser(format!("cannot listen on 127.0.0.1:{}: {e}", options.port)))?;
        let port = listener.local_addr().map_err(|e| Error::NoBrowser(e.to_string()))?.port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let (state, verifier) = (crate::random_token(), crate::random_token());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let mut url = url::Url::parse(&endpoint).map_err(|e| Error::protocol(&endpoint, e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id())
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(BrowserLogin { listener, url: url.into(), redirect_uri, state, verifier })
    }

    /// Waits for the browser's answer, then exchanges the code.
    pub(crate) async fn finish_browser_login(&self, login: BrowserLogin, timeout: Duration) -> Result<Tokens, Error> {
        let code = match tokio::time::timeout(timeout, self.wait_for_answer(&login)).await {
            Err(_) => return Err(Error::ExpiredToken),
            Ok(Answer::Refused(e)) => return Err(e),
            Ok(Answer::Code(code)) => code,
        };
        let url = self.endpoint(self.metadata().token_endpoint.as_ref(), "token endpoint")?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &login.redirect_uri),
            ("code_verifier", &login.verifier),
        ];
        self.token_request(&url, &form).await
    }

    async fn wait_for_answer(&self, login: &BrowserLogin) -> Answer {
        loop {
            let Ok((stream, _)) = login.listener.accept().await else { continue };
            if let Some(answer) = self.serve_one(stream, login).await {
                return answer;
            }
        }
    }

    /// Reads one request; answers it; returns the outcome when it was the awaited callback.
    async fn serve_one(&self, mut stream: TcpStream, login: &BrowserLogin) -> Option<Answer> {
        let target = match tokio::time::timeout(Duration::from_secs(10), read_request_target(&mut stream)).await {
            Ok(Some(target)) => target,
            _ => return None,
        };
        let Some(query) = target.strip_prefix("/callback?").or((target == "/callback").then_some("")) else {
            respond(&mut stream, "404 Not Found", "Not found", "This is not the page you are looking for.").await;
            return None;
        };
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        // An answer for another attempt (an old tab, or a page probing the port) is turned away
        // without ending this one.
        if !params.get("state").is_some_and(|s| crate::constant_time_eq(s, &login.state)) {
            let text = "This answer belongs to another login attempt. Go back to the terminal.";
            respond(&mut stream, "400 Bad Request", "Login not completed", text).await;
            return None;
        }
        let answer = self.check_answer(&params);
        let (status, title, text) = match &answer {
            Answer::Code(_) => ("200 OK", "Logged in", "You are logged in. You can close this window."),
            Answer::Refused(_) => ("400 Bad Request", "Login not completed", "Go back to the terminal for the reason."),
        };
        respond(&mut stream, status, title, text).await;
        Some(answer)
    }

    fn check_answer(&self, params: &HashMap<String, String>) -> Answer {
        let iss = params.get("iss");
        let required = self.metadata().authorization_response_iss_parameter_supported == Some(true);
        match iss {
            Some(iss) if iss != self.issuer() => {
                let e = Error::IssuerMismatch { expected: self.issuer().to_owned(), got: Some(iss.clone()) };
                return Answer::Refused(e);
            }
            None if required => {
                return Answer::Refused(Error::IssuerMismatch { expected: self.issuer().to_owned(), got: None });
            }
            _ => {}
        }
        if let Some(code) = params.get("error") {
            return Answer::Refused(Error::oauth(code, params.get("error_description").cloned()));
        }
        match params.get("code") {
            Some(code) if !code.is_empty() => Answer::Code(code.clone()),
            _ => Answer::Refused(Error::oauth("invalid_request", Some("the answer carries no code".into()))),
        }
    }
}

/// The request target of a `GET`, from at most 8 KiB of request head.
async fn read_request_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > 8192 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = std::str::from_utf8(&head).ok()?.lines().next()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, title: &str, text: &str) {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}</style>\
         </head><body><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nreferrer-policy: no-referrer\r\n\
         content-security-policy: default-src 'none'; style-src 'unsafe-inline'\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Opens `url` the way the platform does: `$BROWSER` when set, else `xdg-open` (`open` on
/// macOS, the URL protocol handler on Windows). Fails when there is nothing to show a browser
/// on. No shell ever sees the URL: it is one argument of the program that opens it.
pub fn system_opener(url: &str) -> std::io::Result<()> {
    use std::process::{Command, Stdio};
    let platform = if cfg!(target_os = "macos") {
        Platform::MacOs
    } else if cfg!(windows) {
        Platform::Windows
    } else {
        Platform::Other
    };
    let browser = std::env::var_os("BROWSER").filter(|b| !b.is_empty());
    if browser.is_none() && platform == Platform::Other && !has_display() {
        return Err(std::io::Error::other("no display (an SSH session?)"));
    }
    let (program, args) = open_command(platform, browser, url);
    let status =
        Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if status.success() { Ok(()) } else { Err(std::io::Error::other(format!("the opener exited with {status}"))) }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Platform {
    MacOs,
    Windows,
    Other,
}

/// The program and arguments that open `url`. On Windows that is the URL protocol handler
/// through `rundll32` (what `ShellExecute` does for a URL), not `cmd /C start`: `cmd` would
/// split the URL at `&` and run what follows as a command.
fn open_command(
    platform: Platform,
    browser: Option<std::ffi::OsString>,
    url: &str,
) -> (std::ffi::OsString, Vec<std::ffi::OsString>) {
    let url = std::ffi::OsString::from(url);
    match (browser, platform) {
        (Some(browser), _) => (browser, vec![url]),
        (None, Platform::MacOs) => ("open".into(), vec![url]),
        (None, Platform::Windows) => ("rundll32".into(), vec!["url.dll,FileProtocolHandler".into(), url]),
        (None, Platform::Other) => ("xdg-open".into(), vec![url]),
    }
}

/// Whether a graphical session could show a browser (always true off Linux and the BSDs).
pub fn has_display() -> bool {
    if cfg!(any(target_os = "macos", windows)) {
        return std::env::var_os("SSH_CONNECTION").is_none();
    }
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_one_argument_and_no_shell_sees_it() {
        let url = "https://auth.example/authorize?a=1&b=2&calc.exe|x";
        let (program, args) = open_command(Platform::Windows, None, url);
        assert_eq!(program, "rundll32");
        assert_eq!(args, ["url.dll,FileProtocolHandler", url]);
        assert_eq!(open_command(Platform::MacOs, None, url), ("open".into(), vec![url.into()]));
        assert_eq!(open_command(Platform::Other, None, url), ("xdg-open".into(), vec![url.into()]));
        let browser = Some(std::ffi::OsString::from("/usr/bin/firefox"));
        assert_eq!(open_command(Platform::Windows, browser, url), ("/usr/bin/firefox".into(), vec![url.into()]));
    }
}
