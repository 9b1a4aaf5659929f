//! An MCP client logging in end to end: the official MCP TypeScript SDK
//! (`@modelcontextprotocol/sdk` from npm, `crates/server/tests/mcp/agent.mjs`) against an
//! MCP-style service protected by `postern-guard`. The agent knows only the service's URL: it
//! reads the service's protected resource metadata, finds Postern, registers itself (RFC 7591),
//! sends the person's browser to Postern with PKCE and `resource`; the person (real Chromium)
//! signs in and allows; the agent takes the code at its localhost callback, gets a token for the
//! service, and the service accepts it. Another service refuses the same token.
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

#[tokio::test]
async fn the_mcp_typescript_sdk_registers_itself_logs_in_and_calls_a_guarded_service() {
    use crate::pages::sign_in;
    if !agent_ready() {
        return;
    }
    let Some(browser) = postern_testkit::browser::Browser::start().await else { return };
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let mut config = test_config(&db);
    config.registration.dynamic = postern_server::config::DynamicRegistration::Open;
    let app = start(config).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let notes = service(&app, "Notes MCP server").await;
    let other = service(&app, "Other MCP server").await;

    let mut agent = tokio::process::Command::new("node")
        .arg("agent.mjs")
        .arg(&notes)
        .arg(&other)
        .current_dir(agent_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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

    let authorize = next("AUTHORIZE", &mut said).await;
    let client_id = said.iter().find_map(|l| l.strip_prefix("REGISTERED ")).expect("registered first").to_owned();
    let request = url::Url::parse(&authorize).unwrap();
    let param = |name: &str| request.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("resource").as_deref(), Some(notes.as_str()), "RFC 8707 resource: {authorize}");
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(param("client_id").as_deref(), Some(client_id.as_str()));

    browser.goto(&authorize).await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    let consent = browser.wait_for_text("registered itself").await;
    assert!(consent.contains("MCP test agent registered itself"), "{consent}");
    assert!(consent.contains("Notes MCP server"), "names the service: {consent}");
    browser.press("Allow").await;
    browser.wait_for_text("Agent: authorization received").await;

    let call = next("CALL", &mut said).await;
    assert!(call.starts_with("200 ") && call.contains("search_notes"), "the service took the token: {call}");
    assert_eq!(next("OTHER", &mut said).await, "401", "another service refuses it");
    next("DONE", &mut said).await;
    let status = agent.wait().await.unwrap();
    assert!(status.success(), "{said:?}");
    let registered = app.state.store.client_by_id(&client_id).await.unwrap().unwrap();
    assert_eq!(registered.registered_by, postern_store::RegisteredBy::Dynamic);
    browser.quit().await;
}
