//! `postern serve` as a process: banner, readiness, SIGTERM, restart on the same data.

use crate::Postern;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// Starts `postern serve` on port 0 and reads the banner; logs go to `stderr`.
pub(crate) fn serve_logging(p: &Postern, stderr: Stdio) -> (Child, String, Vec<String>) {
    let mut child = p
        .command(&["serve"])
        .env("POSTERN_SERVER__LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
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

fn serve(p: &Postern) -> (Child, String, Vec<String>) {
    serve_logging(p, Stdio::null())
}

pub(crate) fn sigterm(child: &Child) {
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
    let jwks: serde_json::Value =
        reqwest::get(format!("{base}/.well-known/jwks.json")).await.unwrap().json().await.unwrap();
    sigterm(&child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "graceful shutdown exits 0");

    // Same data directory: same keys; and once an admin exists, no setup link.
    p.json(&["admin", "user", "create", "--email", "root@example.org", "--admin", "--json"], None);
    let (mut child, base, banner) = serve(&p);
    assert!(!banner.join("\n").contains("/setup?token="));
    let again: serde_json::Value =
        reqwest::get(format!("{base}/.well-known/jwks.json")).await.unwrap().json().await.unwrap();
    assert_eq!(again, jwks);
    sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn migrate_runs_alone() {
    let p = Postern::sqlite();
    let out = p.run(&["migrate"], None);
    assert!(out.status.success());
    let first = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(first.starts_with("applied migrations [1, "), "{first}");
    let version = first.trim().rsplit(' ').next().unwrap();
    let out = p.run(&["migrate"], None);
    let second = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(second.trim(), format!("database schema is current (version {version})"));
}

#[tokio::test]
async fn json_logs_carry_request_ids_and_never_a_secret() {
    let mut p = Postern::sqlite();
    p.env.retain(|(k, _)| k != "POSTERN_LOG__LEVEL");
    p.env.push(("POSTERN_LOG_FORMAT".into(), "json".into()));
    p.env.push(("POSTERN_LOG_LEVEL".into(), "debug".into()));
    let log_path = p.db.dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (mut child, base, banner) = serve_logging(&p, Stdio::from(log));
    let banner = banner.join("\n");
    let token = banner.split("token=").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();

    let page = reqwest::get(format!("{base}/setup?token={token}")).await.unwrap();
    assert_eq!(page.status(), 200);
    let id = page.headers()["x-request-id"].to_str().unwrap().to_owned();
    sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(!logs.contains(&token), "the setup token reached the log");
    let mut served = false;
    for line in logs.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(entry.get("level").is_some() && entry.get("timestamp").is_some(), "{line}");
        if entry["message"] == "served" && entry["span"]["id"] == id.as_str() {
            assert_eq!(entry["span"]["path"], "/setup", "the path is logged, never the query");
            served = true;
        }
    }
    assert!(served, "the request was logged with its id: {logs}");
}

#[tokio::test]
async fn api_keys_never_reach_the_log() {
    let mut p = Postern::sqlite();
    p.env.retain(|(k, _)| k != "POSTERN_LOG__LEVEL");
    p.env.push(("POSTERN_LOG_LEVEL".into(), "debug".into()));
    p.env.push(("POSTERN_API_KEYS__SCANNER_TOKEN".into(), "scanner-credential".into()));
    p.json(&["admin", "scope", "add", "deploy", "--description", "Deploy", "--json"], None);
    p.json(&["admin", "user", "create", "--email", "dev@example.org", "--json"], None);
    p.json(&["admin", "user", "grant", "dev@example.org", "deploy", "--json"], None);
    let created = p.json(
        &["admin", "key", "create", "--user", "dev@example.org", "--name", "ci", "--scope", "deploy", "--json"],
        None,
    );
    let key = created["key"].as_str().unwrap().to_owned();
    let rs =
        p.json(&["admin", "client", "create", "--name", "rs", "--grant-type", "client_credentials", "--json"], None);
    let log_path = p.db.dir.path().join("stderr.log");
    let (mut child, base, _) = serve_logging(&p, Stdio::from(std::fs::File::create(&log_path).unwrap()));

    // The key used every way it can be: accepted, refused, mistyped, in a query, reported.
    let http = reqwest::Client::new();
    let mut typo = key.clone();
    typo.replace_range(10..11, if &key[10..11] == "a" { "b" } else { "a" });
    for presented in [&key, &typo] {
        let r = http.get(format!("{base}/api/keys")).header("x-api-key", presented).send().await.unwrap();
        assert!(r.status() == 403 || r.status() == 401);
        let r = http.get(format!("{base}/api/keys?api_key={presented}")).send().await.unwrap();
        assert_eq!(r.status(), 401);
        let r = http
            .post(format!("{base}/oauth/introspect"))
            .basic_auth(rs["client_id"].as_str().unwrap(), rs["client_secret"].as_str())
            .form(&[("token", presented.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = http
        .post(format!("{base}/api/keys/revoke-leaked"))
        .bearer_auth("scanner-credential")
        .json(&serde_json::json!([{ "token": key, "type": "postern_api_key", "url": "https://example.org" }]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&child);
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("reported as leaked"), "the revocation is logged (by prefix): {logs}");
    let secret_part = &key[6..];
    assert!(!logs.contains(secret_part) && !logs.contains(&typo[6..]), "a key reached the log: {logs}");
}
