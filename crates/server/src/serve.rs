//! The accept loop: HTTP/1.1 over hyper, with the limits a server facing the internet needs,
//! which `axum::serve` does not offer.
//!
//! - **Connection cap** (`server.max_connections`): past it the server stops accepting (the
//!   kernel's backlog queues the rest) instead of running out of file descriptors. At start the
//!   soft `NOFILE` limit is raised to the hard one, and the cap is kept below it.
//! - **Header-read timeout** (`server.header_read_timeout_secs`): a connection on which no
//!   request head has arrived for that long, and none is being answered, is closed: a client
//!   trickling its headers, and a keep-alive connection idle between requests. A watchdog per
//!   connection checks twice a period, so the close comes between one and one and a half
//!   periods after the last request. (hyper's own header-read timer does the same, but arms a
//!   timer for every request on a keep-alive connection: 0.26 µs of a 9 µs request.)
//! - **Accept errors** (out of descriptors, say) are logged, at most once a second, and the
//!   loop backs off briefly rather than spinning.
//! - **Graceful shutdown**: when `shutdown` completes, no new connection is accepted, each open
//!   connection finishes its request in flight and closes, and the call returns when all have
//!   (the caller bounds that with `server.shutdown_grace_secs`).

use axum::Router;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

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
    let activity = Arc::new(Activity::default());
    let counted = activity.clone();
    // The connection's own router, called in place: cloning it for each request (as
    // `oneshot` would) writes its shared reference count from whichever core serves the
    // request. hyper calls the service from this connection's task alone.
    let router = std::cell::RefCell::new(router);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        counted.started.fetch_add(1, Ordering::Relaxed);
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let done = counted.clone();
        let answer = tower::Service::call(&mut *router.borrow_mut(), request.map(axum::body::Body::new));
        async move {
            let response = answer.await;
            done.answered.fetch_add(1, Ordering::Relaxed);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.header_read_timeout(None).keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        // Dropping the connection closes it; no request is being answered.
        () = activity.quiet_for(limits.header_read_timeout) => return,
        _ = closing.wait_for(|c| *c) => {}
    }
    // Shutting down: finish the request in flight, then close.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// A connection's requests as its service sees them: how many heads have arrived, and how
/// many of those have had their answer. Touched by that connection's task alone, twice a
/// request.
#[derive(Debug, Default)]
struct Activity {
    started: AtomicU64,
    answered: AtomicU64,
}

impl Activity {
    /// Completes once no request has started and none has been in hand for a whole `period`,
    /// as seen by checks every half period: between one and one and a half periods after the
    /// last request started or was answered.
    async fn quiet_for(&self, period: Duration) {
        let half = period / 2;
        // As a check at the connection's start would see it.
        let mut seen = (0, 0);
        let mut quiet_checks = 0;
        loop {
            tokio::time::sleep(half).await;
            let now = (self.started.load(Ordering::Relaxed), self.answered.load(Ordering::Relaxed));
            let in_hand = now.0 != now.1;
            quiet_checks = if in_hand || now != seen { 0 } else { quiet_checks + 1 };
            seen = now;
            if quiet_checks == 2 {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Activity, connection_cap};
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};
    use tokio::time::timeout;

    #[tokio::test]
    async fn a_connection_is_quiet_after_a_whole_period_with_no_request_in_hand() {
        let period = Duration::from_millis(100);
        let activity = Activity::default();
        let began = Instant::now();
        activity.quiet_for(period).await;
        assert!(began.elapsed() >= period, "a new connection has a whole period to send its head");

        // A request being answered, however long it takes: not quiet.
        activity.started.fetch_add(1, Ordering::Relaxed);
        let watching = activity.quiet_for(period);
        tokio::pin!(watching);
        assert!(timeout(period * 5, watching.as_mut()).await.is_err(), "closed with a request in hand");

        // Answered: quiet a whole period after the answer.
        activity.answered.fetch_add(1, Ordering::Relaxed);
        let answered = Instant::now();
        watching.await;
        assert!(answered.elapsed() >= period, "closed {:?} after the answer", answered.elapsed());
    }

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(connection_cap(10_000, Some(1024)), 960);
        assert_eq!(connection_cap(500, Some(1_048_576)), 500);
        assert_eq!(connection_cap(500, None), 500);
        assert_eq!(connection_cap(500, Some(10)), 1);
    }
}
