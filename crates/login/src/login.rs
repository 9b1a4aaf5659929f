//! Choosing how to log in and telling the user what to do: the browser when this machine can
//! show one, the device flow otherwise (an SSH session, a container, a failed opener).

use crate::browser::{BrowserOptions, system_opener};
use crate::client::{Client, Tokens};
use crate::device::DeviceAuthorization;
use crate::error::Error;
use std::fmt;

/// How to log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Method {
    /// The browser when one can be opened, else the device flow.
    #[default]
    Auto,
    /// The loopback browser flow only (RFC 8252).
    Browser,
    /// The device flow only (RFC 8628).
    Device,
}

/// What to tell the user while logging in.
#[derive(Debug)]
#[non_exhaustive]
pub enum Prompt<'a> {
    /// Enter `user_code` at `verification_uri` (or open `verification_uri_complete`).
    Device(&'a DeviceAuthorization),
    /// A browser is being sent to `url`; if none appears, the user can open it by hand.
    Browser { url: &'a str },
    /// No browser could be opened; the device flow follows.
    NoBrowser { reason: &'a str },
}

impl fmt::Display for Prompt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prompt::Device(d) => {
                write!(f, "To log in, open {} and enter the code {}", d.verification_uri, d.user_code)?;
                if let Some(complete) = &d.verification_uri_complete {
                    write!(f, "\n(or open {complete})")?;
                }
                Ok(())
            }
            Prompt::Browser { url } => write!(f, "Opening a browser to log in. If none opens, visit:\n{url}"),
            Prompt::NoBrowser { reason } => write!(f, "Cannot open a browser ({reason}); using a code instead."),
        }
    }
}

/// Everything [`Client::login`] needs besides the client.
#[derive(Clone, Default)]
pub struct LoginOptions {
    pub method: Method,
    pub scopes: Vec<String>,
    pub browser: BrowserOptions,
}

impl Client {
    /// Logs a user in and returns the tokens. `prompt` is called with what to show the user.
    pub async fn login(&self, options: &LoginOptions, prompt: impl Fn(Prompt<'_>)) -> Result<Tokens, Error> {
        let scopes: Vec<&str> = options.scopes.iter().map(String::as_str).collect();
        let can_browse = self.metadata().authorization_endpoint.is_some();
        let method = match options.method {
            Method::Auto if !can_browse => Method::Device,
            Method::Auto if options.browser.opener.is_none() && !crate::browser::has_display() => {
                prompt(Prompt::NoBrowser { reason: "no display" });
                Method::Device
            }
            other => other,
        };
        if method != Method::Device {
            let login = self.prepare_browser_login(&scopes, &options.browser).await?;
            prompt(Prompt::Browser { url: &login.url });
            let opened = match &options.browser.opener {
                Some(open) => open(&login.url),
                None => system_opener(&login.url),
            };
            match opened {
                Ok(()) => return self.finish_browser_login(login, options.browser.timeout).await,
                Err(e) if method == Method::Browser => return Err(Error::NoBrowser(e.to_string())),
                Err(e) => prompt(Prompt::NoBrowser { reason: &e.to_string() }),
            }
        }
        let device = self.start_device_login(&scopes).await?;
        prompt(Prompt::Device(&device));
        self.finish_device_login(&device).await
    }
}
