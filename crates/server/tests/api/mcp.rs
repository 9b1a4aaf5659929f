//! An MCP client logging in end to end: the official MCP TypeScript SDK
//! (`@modelcontextprotocol/sdk` from npm, `crates/server/tests/mcp/agent.mjs`) against an
//! MCP-style service protected by `postern-guard`. The agent knows only the service's URL: it
//! reads the service's protected resource metadata, finds Postern, registers itself (RFC 7591),
//! sends the person's browser to Postern with PKCE and `resource`; the person (real Chromium)
//! signs in and allows; the agent takes the code at its localhost callback, gets a token for the
//! service, and the service accepts it. Another service refuses the same token. A second run
//! has the agent name itself by its client ID metadata document (served by the agent over https
//! under a test certificate authority Postern is told to trust) instead of registering.
//!
//! Node.js and the SDK come from `scripts/test` (`npm ci` in `crates/server/tests/mcp`); without
//! them the test is skipped, and under `CI=true` it fails.

use crate::helpers::*;
use axum::Json;
use postern_guard::{Guard, Principal};
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

fn agent_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp")
}

/// Whether Node.js and the SDK are there.
fn agent_ready() -> bool {
    let sdk = agent_dir().join("node_modules/@modelcontextprotocol/sdk/package.json").exists();
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !(sdk && node) && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("the MCP test needs node and `npm ci` in crates/server/tests/mcp under CI (scripts/test does both)");
    }
    sdk && node
}

/// An MCP-style service at `http://127.0.0.1:PORT/mcp`, registered as a resource open to
/// clients that register themselves, behind a guard for that audience that serves its
/// protected resource metadata. Returns its URL.
async fn service(app: &TestApp, name: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    add_resource(app, &url, name, &["notes:read"]).await;
    app.state.store.set_resource_open(&url, true, NOW).await.unwrap();
    let guard = Guard::builder(app.state.issuer.to_string(), &url)
        .scopes_supported(&["notes:read"])
        .resource_name(name)
        .clock(app.clock.clone())
        .build()
        .await
        .unwrap();
    let answer = |principal: Principal| async move {
        principal
            .require("notes:read")
            .map(|()| Json(serde_json::json!({ "tools": ["search_notes"], "caller": principal.subject })))
    };
    let router = axum::Router::new()
        .route("/mcp", axum::routing::get(answer).post(answer))
        .layer(guard.layer())
        .merge(guard.metadata_router());
    tokio::spawn(axum::serve(listener, router).into_future());
    url
}

/// A test certificate authority and a certificate for 127.0.0.1 it signed, made with the
/// openssl command: the PEM paths of the authority, the certificate and its key.
fn certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Postern test CA", "-days", "2"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "agent.key", "-out", "agent.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("agent.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "agent.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "agent.pem",
        "-days",
        "2",
        "-extfile",
        "agent.ext",
    ]);
    (dir.join("ca.pem"), dir.join("agent.pem"), dir.join("agent.key"))
}

/// Runs the agent against `notes` (and `other`, which must refuse its token), plays the person
/// in Chromium on the consent page, which must say `introduced`, and checks every step; the
/// client id the agent used (None: no Chromium here, and not under CI).
async fn log_in(notes: &str, other: &str, env: &[(&str, &std::path::Path)], introduced: &str) -> Option<String> {
    use crate::pages::sign_in;
    let browser = postern_testkit::browser::Browser::start().await?;
    let mut command = tokio::process::Command::new("node");
    command.arg("agent.mjs").arg(notes).arg(other).current_dir(agent_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut agent = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(agent.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    // Waits for the agent's next line starting with `prefix` (bounded, so a stuck agent fails
    // the test instead of hanging it).
    let mut next = async |prefix: &str, said: &mut Vec<String>| -> String {
        let wait = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                said.push(line.clone());
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Some(rest.trim().to_owned());
                }
            }
            None
        };
        match tokio::time::timeout(Duration::from_secs(60), wait).await {
            Ok(Some(rest)) => rest,
            _ => panic!("the agent never said {prefix}; it said {said:?}"),
        }
    };

    let client_id = next("REGISTERED", &mut said).await;
    let authorize = next("AUTHORIZE", &mut said).await;
    let request = url::Url::parse(&authorize).unwrap();
    let param = |name: &str| request.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("resource").as_deref(), Some(notes), "RFC 8707 resource: {authorize}");
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("client_id").as_deref(), Some(client_id.as_str()));

    browser.goto(&authorize).await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    let consent = browser.wait_for_text(introduced).await;
    assert!(consent.contains("Notes MCP server"), "names the service: {consent}");
    browser.press("Allow").await;
    browser.wait_for_text("Agent: authorization received").await;

    let call = next("CALL", &mut said).await;
    assert!(call.starts_with("200 ") && call.contains("search_notes"), "the service took the token: {call}");
    assert_eq!(next("OTHER", &mut said).await, "401", "another service refuses it");
    next("DONE", &mut said).await;
    let status = agent.wait().await.unwrap();
    assert!(status.success(), "{said:?}");
    browser.quit().await;
    Some(client_id)
}

/// A server whose settings `change` edits, with Ann, and two services.
async fn setup(
    change: impl FnOnce(&mut postern_server::config::Config),
) -> Option<(TestApp, postern_testkit::TestDb, String, String)> {
    if !agent_ready()
        || postern_testkit::browser::Browser::start().await.map(|b| async move { b.quit().await }).is_none()
    {
        return None;
    }
    let (app, db) = spawn_configured(postern_testkit::Kind::Sqlite, change).await?;
    create_user(&app, "ann@example.org", "correct horse").await;
    let notes = service(&app, "Notes MCP server").await;
    let other = service(&app, "Other MCP server").await;
    Some((app, db, notes, other))
}

#[tokio::test]
async fn the_mcp_typescript_sdk_registers_itself_logs_in_and_calls_a_guarded_service() {
    let Some((app, _db, notes, other)) =
        setup(|c| c.registration.dynamic = postern_server::config::DynamicRegistration::Open).await
    else {
        return;
    };
    let Some(client_id) = log_in(&notes, &other, &[], "MCP test agent registered itself").await else { return };
    let registered = app.state.store.client_by_id(&client_id).await.unwrap().unwrap();
    assert_eq!(registered.registered_by, postern_store::RegisteredBy::Dynamic);
}

#[tokio::test]
async fn the_mcp_typescript_sdk_logs_in_with_its_client_id_metadata_document() {
    let certs = tempfile::tempdir().unwrap();
    let Some((app, _db, notes, other)) = setup(|c| {
        // No dynamic registration: the document is the only way in.
        c.registration.dynamic = postern_server::config::DynamicRegistration::Off;
        c.registration.metadata_documents_allow_loopback = true;
        c.registration.metadata_document_ca_file = Some(certs.path().join("ca.pem"));
    })
    .await
    else {
        return;
    };
    let (_, cert, key) = certificates(certs.path());
    let env = [("AGENT_DOCUMENT_CERT", cert.as_path()), ("AGENT_DOCUMENT_KEY", key.as_path())];
    let Some(client_id) = log_in(&notes, &other, &env, "MCP test agent is described by 127.0.0.1").await else {
        return;
    };
    assert!(client_id.starts_with("https://127.0.0.1:") && client_id.ends_with("/client.json"), "{client_id}");
    let client = app.state.store.client_by_id(&client_id).await.unwrap().unwrap();
    assert_eq!(client.registered_by, postern_store::RegisteredBy::Document);
}
