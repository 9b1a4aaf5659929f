//! The commands a person or a script runs against a Postern server: `login`, `logout`,
//! `whoami`, `status` and `token`, on the postern-login crate. Sessions are kept in
//! `$XDG_CONFIG_HOME/postern/tokens.json` (the platform's configuration directory elsewhere),
//! one per profile.
//!
//! Exit codes: 0 success, 1 failure, 2 bad usage, 3 not logged in (or the session has ended),
//! 4 access denied, 5 the login expired before it was approved, 6 the server cannot be reached.

use crate::cli::{LoginArgs, LoginCommand, SessionArgs, StatusArgs};
use crate::output;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use postern_login::{Client, Error, LoginOptions, Method, Prompt, Session, SessionKey, StoredSession, TokenStore};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The issuer of a server started with `postern serve` and no configuration.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:8080";
/// The first-party client every Postern server registers for this command line.
pub const DEFAULT_CLIENT_ID: &str = "postern-cli";
const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Runs a client command; `now` is the time `status` measures expiry against.
pub async fn run(command: LoginCommand, now: i64) -> Result<(), Error> {
    match command {
        LoginCommand::Login(args) => login(args).await,
        LoginCommand::Logout(args) => logout(args).await,
        LoginCommand::Whoami(args) => whoami(args).await,
        LoginCommand::Status(args) => status(args, now),
        LoginCommand::Token(args) => token(args).await,
    }
}

/// The exit code for a failed client command.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::NotLoggedIn | Error::SessionEnded(_) => 3,
        Error::AccessDenied(_) => 4,
        Error::ExpiredToken => 5,
        Error::Network { .. } => 6,
        _ => 1,
    }
}

/// Warnings of the login kit (an unreadable token file, an unreachable server) on stderr.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn store() -> Result<Arc<dyn TokenStore>, Error> {
    #[cfg(feature = "keyring")]
    return Ok(Arc::new(postern_login::KeyringStore::for_app("postern")?));
    #[cfg(not(feature = "keyring"))]
    Ok(Arc::new(postern_login::FileStore::for_app("postern")?))
}

/// The stored session a command means: the profile's, narrowed by `--issuer` / `--client-id`.
fn stored(store: &dyn TokenStore, args: &SessionArgs) -> Result<Option<StoredSession>, Error> {
    let issuer = args.issuer.as_deref().map(|i| i.trim_end_matches('/'));
    Ok(store.list()?.into_iter().find(|s| {
        s.profile == args.profile
            && issuer.is_none_or(|i| s.issuer.trim_end_matches('/') == i)
            && args.client_id.as_deref().is_none_or(|c| s.client_id == c)
    }))
}

/// Removes a stored session, under the store's lock.
fn forget(store: &dyn TokenStore, key: &SessionKey) -> Result<(), Error> {
    let _lock = store.lock()?;
    store.remove(key)
}

/// The session a command works on, or "not logged in".
async fn session(args: &SessionArgs) -> Result<Session, Error> {
    let store = store()?;
    let found = stored(&*store, args)?.ok_or(Error::NotLoggedIn)?;
    let client = Client::discover(&found.issuer, &found.client_id).await?;
    Session::open(&client, store, &found.profile).await?.ok_or(Error::NotLoggedIn)
}

async fn login(args: LoginArgs) -> Result<(), Error> {
    let store = store()?;
    let earlier = stored(&*store, &SessionArgs { issuer: None, client_id: None, ..args.session.clone() })?;
    let issuer = args.session.issuer.clone().or(earlier.as_ref().map(|s| s.issuer.clone()));
    let client_id = args.session.client_id.clone().or(earlier.as_ref().map(|s| s.client_id.clone()));
    let client = Client::discover(
        issuer.as_deref().unwrap_or(DEFAULT_ISSUER),
        client_id.as_deref().unwrap_or(DEFAULT_CLIENT_ID),
    )
    .await?;
    let method = match (args.device, args.browser) {
        (true, _) => Method::Device,
        (_, true) => Method::Browser,
        _ => Method::Auto,
    };
    let mut scopes: Vec<String> = args.scopes.iter().flat_map(|s| s.split_whitespace()).map(String::from).collect();
    if scopes.is_empty() {
        scopes = DEFAULT_SCOPES.map(String::from).to_vec();
    }
    let options = LoginOptions { method, scopes, ..Default::default() };
    let screen = Screen::new(std::io::stdout().is_terminal());
    let tokens = client.login(&options, |prompt| screen.show(prompt)).await;
    screen.done();
    let tokens = tokens?;

    // A profile is one session: one logged in elsewhere before is replaced.
    if let Some(old) = earlier.filter(|s| s.issuer != client.issuer() || s.client_id != client.client_id()) {
        forget(&*store, &old.key())?;
    }
    let session = Session::start(&client, store, &args.session.profile, tokens).await?;
    let stored = session.stored().await;
    let who = stored.display_name.or(stored.subject).unwrap_or_else(|| "an unnamed user".into());
    let (who, issuer) = (postern_login::printable(&who), postern_login::printable(client.issuer()));
    println!("Logged in as {who} at {issuer} (profile {}).", stored.profile);
    Ok(())
}

async fn logout(args: SessionArgs) -> Result<(), Error> {
    let store = store()?;
    let found = stored(&*store, &args)?.ok_or(Error::NotLoggedIn)?;
    let revoked = match Client::discover(&found.issuer, &found.client_id).await {
        Ok(client) => match Session::open(&client, store.clone(), &found.profile).await? {
            Some(session) => session.logout().await,
            None => return Err(Error::NotLoggedIn),
        },
        // The server cannot be asked: the session is forgotten here all the same.
        Err(e) => {
            forget(&*store, &found.key())?;
            Err(e)
        }
    };
    match revoked {
        Ok(()) => {
            println!("Logged out of {} (profile {}).", found.issuer, found.profile);
            Ok(())
        }
        Err(e) => {
            eprintln!(
                "Logged out here, but the server was not told, so the session stays valid there until it expires."
            );
            Err(e)
        }
    }
}

async fn whoami(args: SessionArgs) -> Result<(), Error> {
    let session = session(&args).await?;
    let claims = session.userinfo().await?;
    let issuer = session.client().issuer().to_owned();
    let value = serde_json::json!({ "issuer": issuer, "profile": args.profile, "userinfo": claims });
    output::emit(args.json, &value, || {
        let text = |name: &str| postern_login::printable(claims.get(name).and_then(|v| v.as_str()).unwrap_or(""));
        let who = [text("email"), text("name"), text("sub")].into_iter().find(|s| !s.is_empty()).unwrap_or_default();
        format!("{who} at {issuer} (profile {}, subject {})", args.profile, text("sub"))
    });
    Ok(())
}

async fn token(args: SessionArgs) -> Result<(), Error> {
    let session = session(&args).await?;
    println!("{}", session.access_token().await?);
    Ok(())
}

fn status(args: StatusArgs, now: i64) -> Result<(), Error> {
    let sessions = store()?.list()?;
    let value: Vec<serde_json::Value> = sessions
        .iter()
        .map(|s| {
            serde_json::json!({
                "profile": s.profile, "issuer": s.issuer, "client_id": s.client_id,
                "user": s.display_name, "subject": s.subject, "scope": s.scope,
                "expires_at": s.expires_at, "refreshable": s.refresh_token.is_some(),
                "logged_in_at": s.logged_in_at,
            })
        })
        .collect();
    output::emit(args.json, &serde_json::Value::Array(value), || {
        if sessions.is_empty() {
            return "Not logged in anywhere.".to_owned();
        }
        let rows: Vec<Vec<String>> = sessions
            .iter()
            .map(|s| {
                let user = s.display_name.clone().or(s.subject.clone()).unwrap_or_default();
                let token = match s.expires_at {
                    None => "no expiry".to_owned(),
                    Some(at) if at > now => format!("expires in {}", span(at - now)),
                    Some(at) => format!("expired {} ago", span(now - at)),
                };
                let refresh = if s.refresh_token.is_some() { "yes" } else { "no" };
                vec![s.profile.clone(), s.issuer.clone(), user, token, refresh.to_owned()]
            })
            .collect();
        output::table(&["PROFILE", "ISSUER", "USER", "ACCESS TOKEN", "REFRESHABLE"], &rows)
    });
    Ok(())
}

/// A duration in its largest whole unit.
fn span(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// What the login shows: on a terminal, the code, a QR code of the link and a spinner; plain
/// lines otherwise.
struct Screen {
    tty: bool,
    spinner: Mutex<Option<ProgressBar>>,
}

impl Screen {
    fn new(tty: bool) -> Self {
        Self { tty, spinner: Mutex::new(None) }
    }

    fn show(&self, prompt: Prompt<'_>) {
        self.done();
        match &prompt {
            Prompt::Device(d) if self.tty => {
                println!("To log in, open {} and enter the code:\n\n    {}\n", d.verification_uri, d.user_code);
                if let Some(link) = &d.verification_uri_complete {
                    println!("or scan this code with a phone:\n\n{}", qr(link));
                }
                self.spin(format!("Waiting for approval (code {}, valid {} min)…", d.user_code, d.expires_in / 60));
            }
            Prompt::Browser { .. } if self.tty => {
                println!("{prompt}\n");
                self.spin("Waiting for the browser…".into());
            }
            _ => println!("{prompt}"),
        }
    }

    fn spin(&self, message: String) {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.spinner.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }

    fn done(&self) {
        if let Some(bar) = self.spinner.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// A QR code drawn with half-block characters, two modules per character cell.
fn qr(link: &str) -> String {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(link.as_bytes()) {
        Ok(code) => code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).build(),
        Err(_) => String::new(),
    }
}
