//! Postern's HTML pages. Each page is one view struct rendered by an askama template; askama
//! escapes every interpolated value for HTML, so names and messages that come from users or
//! clients cannot inject markup. Templates live in `templates/` and share `base.html`.

use askama::Template;

/// The account page's script (the copy button), served from `/assets/account.js` so that the
/// page's content security policy can stay `script-src 'self'`.
pub const ACCOUNT_JS: &str = include_str!("../assets/account.js");
/// The passkey script of the sign-in, second-step and account pages.
pub const PASSKEY_JS: &str = include_str!("../assets/passkey.js");

/// Renders a page; a template error (which askama checks at compile time, so it is only a
/// formatting failure) becomes a plain message rather than a panic.
pub fn render(page: &impl Template) -> String {
    page.render()
        .unwrap_or_else(|_| "<!doctype html><title>Error</title><p>This page could not be shown.</p>".to_owned())
}

/// The first-admin setup form, reached through the one-time link printed at start.
#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupPage<'a> {
    pub token: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub error: Option<&'a str>,
}

/// The sign-in form. `request` is the handle of an authorization request waiting for it (empty
/// when signing in directly).
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub csrf: &'a str,
    pub request: &'a str,
    pub email: &'a str,
    pub client_name: Option<&'a str>,
    pub error: Option<&'a str>,
    /// Whether to offer "Create an account" (registration is open).
    pub can_register: bool,
    /// Whether to offer "Sign in with a passkey" (the issuer is a domain name).
    pub passkeys: bool,
}

/// Asks the user to allow a client the scopes it requested, each described in plain words.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub csrf: &'a str,
    pub request: &'a str,
    pub client_name: &'a str,
    pub email: &'a str,
    pub scopes: &'a [String],
    /// The APIs the access is for (RFC 8707 resources, "Name (identifier)"); empty: none named.
    pub resources: &'a [String],
    /// Where the browser goes next, shown for public clients: anything on the machine can
    /// listen on a loopback port and claim a public client's name.
    pub redirect: Option<&'a str>,
    /// The client registered itself (RFC 7591): nobody checked its name.
    pub self_registered: bool,
    /// The host of the client ID metadata document the client's details come from.
    pub document_host: Option<&'a str>,
    /// The browser goes back to a loopback address: any program on this computer could listen.
    pub loopback_redirect: bool,
}

/// Confirms an RP-initiated logout that came without a usable `id_token_hint`.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub csrf: &'a str,
    pub client_name: Option<&'a str>,
    pub client_id: &'a str,
    pub redirect: &'a str,
    pub state: &'a str,
}

/// The device activation form: the user types the code their device shows.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage<'a> {
    pub csrf: &'a str,
    pub code: &'a str,
    pub error: Option<&'a str>,
}

/// Confirms a device authorization: who asks, for what, from where, with a warning.
#[derive(Template)]
#[template(path = "device_confirm.html")]
pub struct DeviceConfirmPage<'a> {
    pub csrf: &'a str,
    pub code: &'a str,
    pub client_name: &'a str,
    pub email: &'a str,
    pub scopes: &'a [String],
    /// The APIs the access is for ("Name (identifier)"); empty: none named.
    pub resources: &'a [String],
    pub requested_at: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

/// The signed-in user's account page: their API keys and service accounts. `new_key` is set
/// only on the answer to the creation form, the one time a key is shown.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub csrf: &'a str,
    pub email: &'a str,
    pub email_verified: bool,
    pub name: Option<&'a str>,
    pub new_key: Option<&'a str>,
    pub error: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub keys: &'a [KeyRow],
    pub service_accounts: &'a [ServiceAccountRow],
    pub scopes: &'a [ScopeChoice],
    pub allow_no_expiry: bool,
    pub sessions: &'a [SessionRow],
    pub apps: &'a [AppRow],
    pub totp: TotpView<'a>,
    pub passkeys: PasskeysView<'a>,
}

/// Passkeys on the account page.
pub struct PasskeysView<'a> {
    /// Whether passkeys can be made here (the issuer is a domain name).
    pub available: bool,
    pub list: &'a [PasskeyRow],
}

/// One passkey in the account page's list (times already formatted).
pub struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

/// Two-step verification on the account page.
pub struct TotpView<'a> {
    pub on: bool,
    /// Being set up: the QR code (an SVG element drawn by the server from the key URI, never
    /// from anything a user typed) and the key as text.
    pub setting_up: Option<(&'a str, &'a str)>,
    pub recovery_codes_left: i64,
    /// Shown once, right after they were made.
    pub new_recovery_codes: Option<&'a [String]>,
}

/// One signed-in browser in the account page's list (times already formatted).
pub struct SessionRow {
    pub id: String,
    /// "Chrome on Linux".
    pub device: String,
    pub ip: String,
    pub signed_in: String,
    pub last_active: String,
    /// The browser showing the page.
    pub current: bool,
}

/// One app holding access, with what it may do in plain words.
pub struct AppRow {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub since: String,
    pub last_used: String,
}

/// One key in the account page's list (times already formatted).
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// "you" or the service account's name.
    pub owner: String,
    pub scopes: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
    /// Revoked or expired: listed, without a revoke button.
    pub status: Option<&'static str>,
}

pub struct ServiceAccountRow {
    pub id: String,
    pub name: String,
    pub description: String,
}

/// A scope offered by the key form: a registered name, or `name:*` for one that takes values.
pub struct ScopeChoice {
    pub value: String,
    pub description: String,
}

/// Asks for the address to send a password-reset link to.
#[derive(Template)]
#[template(path = "password_forgot.html")]
pub struct PasswordForgotPage<'a> {
    pub csrf: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

/// The page a reset link opens: the new password.
#[derive(Template)]
#[template(path = "password_reset.html")]
pub struct PasswordResetPage<'a> {
    pub csrf: &'a str,
    pub token: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

/// Registration: email, name and password.
#[derive(Template)]
#[template(path = "register.html")]
pub struct RegisterPage<'a> {
    pub csrf: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub error: Option<&'a str>,
}

/// The page a verification link opens: one button, so that a mail scanner fetching the link
/// uses nothing.
#[derive(Template)]
#[template(path = "email_verify.html")]
pub struct EmailVerifyPage<'a> {
    pub csrf: &'a str,
    pub token: &'a str,
    pub email: &'a str,
}

/// The verified-email gate: a client admits only verified addresses.
#[derive(Template)]
#[template(path = "email_unverified.html")]
pub struct EmailUnverifiedPage<'a> {
    pub csrf: &'a str,
    pub client_name: &'a str,
    pub email: &'a str,
}

/// The page an invitation link opens: name and password.
#[derive(Template)]
#[template(path = "invitation.html")]
pub struct InvitationPage<'a> {
    pub csrf: &'a str,
    pub token: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub error: Option<&'a str>,
}

/// A link from an email, confirmed with one button (a mail scanner fetching the link uses
/// nothing). `action` is one of our own paths.
#[derive(Template)]
#[template(path = "confirm_link.html")]
pub struct ConfirmLinkPage<'a> {
    pub csrf: &'a str,
    pub token: &'a str,
    pub title: &'a str,
    pub text: &'a str,
    pub action: &'a str,
    pub button: &'a str,
}

/// The second step of a sign-in: a code from the authenticator app, or a recovery code.
#[derive(Template)]
#[template(path = "second_step.html")]
pub struct SecondStepPage<'a> {
    pub csrf: &'a str,
    pub email: &'a str,
    /// Ask for a recovery code instead of a TOTP code.
    pub recovery: bool,
    /// The user has TOTP (the "Code" input and recovery codes).
    pub totp: bool,
    /// The user has a passkey ("Use a passkey").
    pub passkey: bool,
    pub error: Option<&'a str>,
}

/// A page with a title and one message: setup done, link expired, errors.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

/// An email, as its plain-text and HTML parts share it: who it is from (`instance`, the
/// issuer's host), what happened, the one link to follow, and what to do if the person did
/// not ask for it.
pub struct Letter {
    pub instance: String,
    pub subject: String,
    pub greeting: String,
    pub paragraphs: Vec<String>,
    pub action: Option<Action>,
    /// Paragraphs after the link.
    pub after: Vec<String>,
    /// What to do if the person did not ask for this message.
    pub unasked: String,
}

/// The link a letter asks the person to follow, with its label.
pub struct Action {
    pub label: String,
    pub url: String,
}

/// A letter's plain-text part (not escaped: it is not HTML).
#[derive(Template)]
#[template(path = "letter.txt")]
pub struct LetterText<'a> {
    pub letter: &'a Letter,
}

/// A letter's HTML part (escaped, like every page).
#[derive(Template)]
#[template(path = "letter.html")]
pub struct LetterHtml<'a> {
    pub letter: &'a Letter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_input_is_escaped() {
        let html = render(&SetupPage {
            token: "t\"><x",
            email: "<script>alert(1)</script>",
            name: "A & B",
            error: Some("<b>"),
        });
        assert!(!html.contains("<script>alert(1)"));
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        assert!(html.contains("A &#38; B"));
        assert!(!html.contains("\"><x"));
        assert!(html.contains("<label for=\"email\">Email</label>"));
        let letter = Letter {
            instance: "id.example.org".into(),
            subject: "Reset".into(),
            greeting: "Hello <Ann>,".into(),
            paragraphs: vec!["Someone asked & waited.".into()],
            action: Some(Action {
                label: "Set a new password".into(),
                url: "https://id.example.org/r?token=a&b".into(),
            }),
            after: vec![],
            unasked: "If you did not ask, ignore this message.".into(),
        };
        let text = render(&LetterText { letter: &letter });
        assert!(text.contains("Hello <Ann>,") && text.contains("https://id.example.org/r?token=a&b"), "{text}");
        assert!(text.contains("If you did not ask") && text.contains("id.example.org"), "{text}");
        let html = render(&LetterHtml { letter: &letter });
        assert!(html.contains("Hello &#60;Ann&#62;,") && html.contains("Someone asked &#38; waited."), "{html}");
        assert!(html.contains("href=\"https://id.example.org/r?token=a&#38;b\""), "{html}");
        let msg = render(&MessagePage { title: "Done", message: "<i>ok</i>" });
        assert!(msg.contains("&#60;i&#62;ok&#60;/i&#62;"));
    }
}
