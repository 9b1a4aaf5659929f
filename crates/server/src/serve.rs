//! The accept loop: HTTP/1.1 over hyper, with the limits a server facing the internet needs,
//! which `axum::serve` does not offer.
//!
//! - **Connection cap** (`server.max_connections`): past it the server stops accepting (the
//!   kernel's backlog queues the rest) instead of running out of file descriptors. At start the
//!   soft `NOFILE` limit is raised to the hard one, and the cap is kept below it.
//! - **Header-read timeout** (`server.header_read_timeout_secs`): hyper starts it whenever a
//!   connection waits for a request head, so it closes both a client trickling its headers and
//!   a keep-alive connection idle between requests.
//! - **Accept errors** (out of descriptors, say) are logged, at most once a second, and the
//!   loop backs off briefly rather than spinning.
//! - **Graceful shutdown**: when `shutdown` completes, no new connection is accepted, each open
//!   connection finishes its request in flight and closes, and the call returns when all have
//!   (the caller bounds that with `server.shutdown_grace_secs`).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// What the accept loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Raises the soft open-file limit to the hard one; returns the soft limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

/// The connection cap to use: the setting, kept 64 descriptors below the open-file limit
/// (for the database, the log and the key files).
pub fn connection_cap(setting: usize, open_files: Option<u64>) -> usize {
    let room = open_files.map_or(usize::MAX, |n| usize::try_from(n.saturating_sub(64)).unwrap_or(usize::MAX));
    setting.min(room).max(1)
}

/// Serves `router` on `listener` until `shutdown` completes and every connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()> + Send,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut last_error_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if last_error_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(error = %e, "could not accept a connection");
                        last_error_logged = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut closing = closing.clone();
        connections.spawn(async move {
            let _slot = slot;
            serve_connection(stream, peer, router, limits, &mut closing).await;
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = closing_tx.send(true);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    closing: &mut watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = closing.wait_for(|c| *c) => {}
    }
    // Shutting down: finish the request in flight, then close.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

#[cfg(test)]
mod tests {
    use super::connection_cap;

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(connection_cap(10_000, Some(1024)), 960);
        assert_eq!(connection_cap(500, Some(1_048_576)), 500);
        assert_eq!(connection_cap(500, None), 500);
        assert_eq!(connection_cap(500, Some(10)), 1);
    }
}
