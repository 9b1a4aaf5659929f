//! The test SMTP server's mailbox: scripts/test starts aiosmtpd (`SMTP_TEST_URL`), which writes
//! every message it receives to a Maildir (`SMTP_TEST_MAILDIR`). Tests send to addresses of
//! their own ([`unique_email`]) so that they can run in parallel on one mailbox.

use postern_server::config::{Config, Secret};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct Mailbox {
    dir: PathBuf,
}

/// A server of `kind` that sends through the test SMTP server, with `adjust` applied to its
/// configuration; `None` when there is no SMTP server (or no PostgreSQL): skipped.
pub async fn spawn_mailing(
    kind: postern_testkit::Kind,
    adjust: impl FnOnce(&mut Config),
) -> Option<(crate::helpers::TestApp, postern_testkit::TestDb, Mailbox)> {
    let db = postern_testkit::fresh(kind).await?;
    let mut config = crate::helpers::test_config(&db);
    let mailbox = Mailbox::configure(&mut config)?;
    adjust(&mut config);
    let app = crate::helpers::start(config).await.unwrap();
    Some((app, db, mailbox))
}

/// An address no other test uses: `{name}-{random}@example.org`.
pub fn unique_email(name: &str) -> String {
    format!("{name}-{}@example.org", &postern_core::id::random_id(&mut postern_core::system::os_rng())[..12])
}

impl Mailbox {
    /// Points `config` at the test SMTP server. `None` (the test is skipped, loudly) when no
    /// server was started, which under `CI=true` is a failure: scripts/test starts one.
    pub fn configure(config: &mut Config) -> Option<Mailbox> {
        let (Ok(url), Ok(dir)) = (std::env::var("SMTP_TEST_URL"), std::env::var("SMTP_TEST_MAILDIR")) else {
            assert!(
                std::env::var("CI").ok().as_deref() != Some("true"),
                "email tests need SMTP_TEST_URL and SMTP_TEST_MAILDIR under CI (scripts/test starts aiosmtpd)"
            );
            eprintln!("SKIPPED: email test (no SMTP_TEST_URL; scripts/test starts aiosmtpd)");
            return None;
        };
        config.email.smtp_url = Some(Secret::new(url));
        config.email.from = "Postern <postern@example.org>".into();
        Some(Mailbox { dir: PathBuf::from(dir).join("new") })
    }

    /// Every message delivered to `to` so far, decoded, oldest first.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let raw = std::fs::read_to_string(entry.path()).ok()?;
                let header_to = format!("\nTo: {to}\n");
                let normalized = raw.replace("\r\n", "\n");
                normalized.contains(&header_to).then(|| {
                    let at = entry.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                    (at, decode(&normalized))
                })
            })
            .collect();
        found.sort_by_key(|(at, _)| *at);
        found.into_iter().map(|(_, m)| m).collect()
    }

    /// Waits until `count` messages to `to` have arrived (10 s at most); returns the newest.
    pub async fn wait_for(&self, to: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.messages_to(to);
            if messages.len() >= count {
                return messages.last().cloned().unwrap_or_default();
            }
            assert!(Instant::now() < deadline, "{count} message(s) to {to} never arrived; {} did", messages.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a message to `to` whose subject contains `subject`; returns it.
    pub async fn wait_for_subject(&self, to: &str, subject: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let subject_line = format!("\nSubject: {subject}");
            if let Some(m) = self.messages_to(to).into_iter().find(|m| m.contains(&subject_line)) {
                return m;
            }
            assert!(Instant::now() < deadline, "no message to {to} about {subject:?} arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The first link in `message` whose path starts with `path` (on any host).
pub fn link(message: &str, path: &str) -> String {
    message
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .find(|word| word.starts_with("http") && word.split_once("://").is_some_and(|(_, rest)| rest.contains(path)))
        .unwrap_or_else(|| panic!("no link to {path} in {message}"))
        .replace("&#38;", "&")
}

/// Undoes quoted-printable transfer encoding where a part uses it (soft line breaks, `=XX`).
fn decode(message: &str) -> String {
    if !message.contains("Content-Transfer-Encoding: quoted-printable") {
        return message.to_owned();
    }
    let joined = message.replace("=\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
