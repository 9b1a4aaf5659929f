//! `bench-baseline [ADDR]`: the fastest an HTTP server can answer on this machine, as the
//! benchmark harness's reference. One axum route, `GET /json`, answers a small JSON body, on
//! the same runtime, HTTP/1 stack and build profile as Postern, and nothing else: no
//! middleware, no state. The harness divides every scenario's rate by this one.
//!
//! A second route, `POST /form`, reads the request's body and answers the same JSON: with the
//! request an introspection sends (a form body, `Authorization: Basic`), it shows what that
//! request's shape costs before any server does any work with it.
//!
//! Prints `listening on http://ADDR` once it accepts connections (ADDR defaults to
//! `127.0.0.1:0`, a free port), and stops on SIGTERM or Ctrl-C.
//!
//! `bench-baseline --signatures [ROUNDS]` serves nothing: it prints what one signature costs
//! on this machine ([`signatures`]), a floor under every scenario that signs a token.

mod signatures;

use axum::Json;
use axum::body::Bytes;
use axum::routing::{get, post};
use std::process::ExitCode;

fn main() -> ExitCode {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    if addr == "--signatures" {
        let rounds = std::env::args().nth(2).and_then(|n| n.parse().ok()).unwrap_or(7);
        return match signatures::measure(rounds) {
            Ok(figures) => {
                println!("{}", signatures::json(&figures));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(&addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = axum::Router::new()
        .route("/json", get(|| async { Json(serde_json::json!({ "status": "ok" })) }))
        .route("/form", post(|_body: Bytes| async { Json(serde_json::json!({ "status": "ok" })) }));
    axum::serve(listener, app).with_graceful_shutdown(stopped()).await
}

async fn stopped() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return ctrl_c.await;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
