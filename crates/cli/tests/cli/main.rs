//! Tests of the `postern` binary itself: configuration errors and exit codes, `config show`,
//! the admin commands with `--json`, and `serve` started and stopped with a signal. One test
//! binary for the crate.
// Tests fail by panicking: unwrap, expect and panic are how they say what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod apikeys;
mod config;
mod login;
mod serve;

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// A `postern` command line with its own data directory (or database) and environment.
pub struct Postern {
    pub db: postern_testkit::TestDb,
    pub env: Vec<(String, String)>,
}

impl Postern {
    /// SQLite in a fresh data directory, cheap Argon2 parameters.
    pub fn sqlite() -> Self {
        Self::on(postern_testkit::sqlite())
    }

    /// A fresh PostgreSQL database (None: skipped), with the KEK every node must share.
    pub async fn postgres() -> Option<Self> {
        let db = postern_testkit::postgres().await?;
        let mut p = Self::on(db);
        let url = p.db.url.clone();
        p.env.push(("POSTERN_DATABASE_URL".into(), url));
        p.env.push(("POSTERN_SECRET_KEY".into(), "ab".repeat(32)));
        Some(p)
    }

    fn on(db: postern_testkit::TestDb) -> Self {
        let env = vec![
            ("POSTERN_DATA_DIR".to_owned(), db.dir.path().display().to_string()),
            ("POSTERN_PASSWORD__MEMORY_KIB".to_owned(), "64".to_owned()),
            ("POSTERN_PASSWORD__ITERATIONS".to_owned(), "1".to_owned()),
            ("POSTERN_LOG__LEVEL".to_owned(), "warn".to_owned()),
        ];
        Self { db, env }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postern"));
        // Only this test's configuration: nothing from the developer's shell.
        for (k, _) in std::env::vars() {
            if k.starts_with("POSTERN_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(args).envs(self.env.iter().map(|(k, v)| (k, v))).current_dir(self.db.dir.path());
        cmd
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start postern");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed and print JSON.
    pub fn json(&self, args: &[&str], stdin: Option<&str>) -> Value {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "postern {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("postern {args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>, code: i32) -> String {
        let out = self.run(args, stdin);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "postern {args:?}: stderr: {stderr}");
        stderr
    }
}
