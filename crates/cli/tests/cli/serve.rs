//! `postern serve` as a process: banner, readiness, SIGTERM, restart on the same data.

use crate::Postern;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// Starts `postern serve` on port 0 and reads the banner up to the listen address.
fn serve(p: &Postern) -> (Child, String, Vec<String>) {
    let mut child = p
        .command(&["serve"])
        .env("POSTERN_SERVER__LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut base = None;
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    // The banner always ends with the line that says how to stop.
    for line in (&mut reader).lines() {
        let line = line.unwrap();
        if let Some(addr) = line.trim().strip_prefix("listen:") {
            base = Some(addr.trim().to_owned());
        }
        let done = line.starts_with("Stop with Ctrl-C");
        lines.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in reader.lines() {});
    (child, base.expect("banner shows the listen address"), lines)
}

fn sigterm(child: &Child) {
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn serve_starts_answers_and_stops_cleanly_on_sigterm() {
    let p = Postern::sqlite();
    let (mut child, base, banner) = serve(&p);
    let text = banner.join("\n");
    assert!(text.contains("issuer:   http://127.0.0.1:"), "{text}");
    assert!(text.contains("/setup?token="), "no admin yet, so a setup link: {text}");
    assert!(text.contains("postern admin user create"));

    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let jwks: serde_json::Value = reqwest::get(format!("{base}/.well-known/jwks.json")).await.unwrap().json().await.unwrap();
    sigterm(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");

    // Same data directory: same keys; and once an admin exists, no setup link.
    p.json(&["admin", "user", "create", "--email", "root@example.org", "--admin", "--json"], None);
    let (mut child, base, banner) = serve(&p);
    assert!(!banner.join("\n").contains("/setup?token="));
    let again: serde_json::Value = reqwest::get(format!("{base}/.well-known/jwks.json")).await.unwrap().json().await.unwrap();
    assert_eq!(again, jwks);
    sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn migrate_runs_alone() {
    let p = Postern::sqlite();
    let out = p.run(&["migrate"], None);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("applied migrations [1]"));
    let out = p.run(&["migrate"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("schema is current (version 1)"));
}
