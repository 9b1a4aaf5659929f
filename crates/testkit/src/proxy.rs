//! A TCP relay in front of a real server, to take it away and bring it back: a database
//! outage as a node sees it (connections cut, new ones refused) without stopping the shared
//! test database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinSet;

pub struct TcpProxy {
    /// `127.0.0.1:{port}`, to put in place of the server's address.
    pub addr: String,
    up: Arc<AtomicBool>,
    relays: Arc<Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Relays every connection to `target` (`host:port`).
    pub async fn start(target: String) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let up = Arc::new(AtomicBool::new(true));
        let relays = Arc::new(Mutex::new(JoinSet::new()));
        let accept = {
            let (up, relays) = (up.clone(), relays.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let target = target.clone();
                    relays.lock().await.spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                }
            })
        };
        TcpProxy { addr, up, relays, accept }
    }

    /// The outage: every relayed connection is cut, new ones are closed at once.
    pub async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.relays.lock().await.abort_all();
    }

    /// The server is back.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
