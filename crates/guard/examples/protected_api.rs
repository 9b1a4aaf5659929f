//! A small API protected by Postern, to copy from.
//!
//! ```sh
//! postern admin scope add project --description "Your projects" --takes-values
//! postern admin resource add http://127.0.0.1:3000 --name "Example API"
//! postern admin client create --name "Example API"   # the guard's own client, for introspection
//! POSTERN_ISSUER=http://127.0.0.1:8080 GUARD_AUDIENCE=http://127.0.0.1:3000 \
//!     GUARD_CLIENT_ID=… GUARD_CLIENT_SECRET=… cargo run -p postern-guard --example protected_api
//! curl -H "Authorization: Bearer $(postern token)" http://127.0.0.1:3000/whoami
//! curl -H "X-API-Key: pst_u_…" http://127.0.0.1:3000/projects/web
//! ```
//!
//! - `GET /health` and `GET /.well-known/oauth-protected-resource` (RFC 9728): public.
//! - `GET /whoami`: any valid credential; answers who the caller is.
//! - `GET /projects/{name}`: needs `project:{name}` (or `project:*`), checked in the handler.
//! - `GET /admin/stats`: needs `admin`, required by the layer for the whole sub-router.

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use postern_guard::{Guard, GuardError, Principal};
use serde_json::{Value, json};

/// The app's routes behind `guard`.
pub fn app(guard: &Guard) -> Router {
    let user_routes =
        Router::new().route("/whoami", get(whoami)).route("/projects/{name}", get(project)).layer(guard.layer());
    let admin_routes = Router::new().route("/admin/stats", get(stats)).layer(guard.layer().require_scope("admin"));
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(user_routes)
        .merge(admin_routes)
        .merge(guard.metadata_router())
}

async fn whoami(principal: Principal) -> Json<Value> {
    Json(json!({
        "subject": principal.subject,
        "kind": format!("{:?}", principal.kind),
        "credential": format!("{:?}", principal.credential),
        "client_id": principal.client_id,
        "scopes": principal.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    }))
}

async fn project(principal: Principal, Path(name): Path<String>) -> Result<Json<Value>, GuardError> {
    principal.require(&format!("project:{name}"))?;
    Ok(Json(json!({ "project": name, "owner": principal.subject })))
}

async fn stats(principal: Principal) -> Json<Value> {
    Json(json!({ "requested_by": principal.subject }))
}

#[allow(dead_code)] // the server's tests include this file for `app` and do not call `main`
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).map_err(|_| format!("set {name}"));
    let mut builder = Guard::builder(var("POSTERN_ISSUER")?, var("GUARD_AUDIENCE")?);
    if let (Ok(id), Ok(secret)) = (var("GUARD_CLIENT_ID"), var("GUARD_CLIENT_SECRET")) {
        builder = builder.introspection_client(id, secret);
    }
    let guard = builder.build().await?;
    let listen = var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("example API on http://{}", listener.local_addr()?);
    axum::serve(listener, app(&guard)).await?;
    Ok(())
}
