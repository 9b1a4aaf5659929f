//! An application on another origin than Postern, for browser tests: a listener on its own
//! loopback port that receives the authorization response (`/callback`) and the browser back
//! from RP-initiated logout (`/signed-out`), records each request, and shows a small page.
//!
//! Tests that end in a redirect to a client use it, never one of Postern's own pages: a page
//! on Postern's origin would hide what a deployment does (CSP `form-action` across origins,
//! cookies, redirects).

use axum::extract::{OriginalUri, State};
use axum::response::Html;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// What the application received: the path and the query parameters of one request.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub params: HashMap<String, String>,
}

#[derive(Default)]
struct Log {
    received: Mutex<Vec<Received>>,
    arrived: Notify,
}

/// The running application; stops when dropped.
pub struct ClientApp {
    /// `http://127.0.0.1:{port}`, another origin than the server's.
    pub origin: String,
    log: Arc<Log>,
    task: tokio::task::JoinHandle<()>,
}

impl ClientApp {
    pub async fn start() -> ClientApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the client app");
        let origin = format!("http://{}", listener.local_addr().expect("local address"));
        let log = Arc::new(Log::default());
        let app = axum::Router::new().fallback(record).with_state(log.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ClientApp { origin, log, task }
    }

    /// The redirect URI to register: `{origin}/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}/callback", self.origin)
    }

    /// The post-logout redirect URI to register: `{origin}/signed-out`.
    pub fn post_logout_uri(&self) -> String {
        format!("{}/signed-out", self.origin)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.log.received.lock().expect("log").clone()
    }

    /// Waits (10 s at most) until a request for `path` has arrived; returns the first one.
    pub async fn wait_for(&self, path: &str) -> Received {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.log.arrived.notified();
                if let Some(r) = self.received().into_iter().find(|r| r.path == path) {
                    return r;
                }
                notified.await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("the client app never received {path}; it received {:?}", self.received()))
    }
}

impl Drop for ClientApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(log): State<Arc<Log>>, OriginalUri(uri): OriginalUri) -> Html<String> {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let path = uri.path().to_owned();
    let title = match path.as_str() {
        "/callback" if params.contains_key("code") => "Application: code received",
        "/callback" => "Application: error received",
        "/signed-out" => "Application: signed out",
        _ => "Application page",
    };
    log.received.lock().expect("log").push(Received { path, params });
    log.arrived.notify_waiters();
    Html(format!("<!doctype html><title>{title}</title><h1>{title}</h1>"))
}
