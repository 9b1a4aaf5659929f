//! Liveness, readiness, metrics, request ids, shutdown.

use crate::helpers::*;

both!(health_readiness_and_metrics, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");

    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some_and(|v| !v.is_empty()));

    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<serde_json::Value>().await.unwrap()["error"], "not_found");

    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    assert!(text.contains(r#"postern_http_requests_total{method="GET",route="/readyz",status="200"} 1"#), "{text}");
    assert!(text.contains(r#"postern_http_requests_total{method="GET",route="unmatched",status="404"} 1"#), "{text}");
    assert!(
        text.contains(r#"postern_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1"#)
    );
    assert!(text.ends_with("# EOF\n"));
});

both!(readiness_fails_when_the_database_is_gone, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    app.state.store.close().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503);
    assert_eq!(app.get("/healthz").await.status(), 200, "liveness does not depend on the database");
});

#[tokio::test]
async fn request_ids_differ() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let a = app.get("/healthz").await.headers()["x-request-id"].clone();
    let b = app.get("/healthz").await.headers()["x-request-id"].clone();
    assert_ne!(a, b);
}

#[tokio::test]
async fn shutdown_stops_the_server_and_frees_the_port() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let url = app.url("/healthz");
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await.unwrap();
    let after = reqwest::Client::new().get(&url).send().await;
    assert!(after.is_err(), "no longer listening after shutdown");
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_private_even_when_they_existed() {
    use std::os::unix::fs::PermissionsExt;
    let db = postern_testkit::sqlite();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // A directory made by hand with the usual umask, and a database file left world-readable.
    std::fs::set_permissions(db.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let app = start(test_config(&db)).await.unwrap();
    assert_eq!(mode(db.dir.path()), 0o700, "the data directory is tightened");
    assert_eq!(mode(&db.dir.path().join("postern.db")), 0o600, "created 0600");
    app.stop().await.unwrap();
    std::fs::set_permissions(db.dir.path().join("postern.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let app = start(test_config(&db)).await.unwrap();
    assert_eq!(mode(&db.dir.path().join("postern.db")), 0o600, "narrowed at the next start");
    app.stop().await.unwrap();
}

/// Reads from `stream` until the server closes it (or 10 s pass); whether it closed.
async fn closed_by_server(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read_all).await.is_ok()
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_and_connections_are_capped() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let mut config = test_config(&db);
    config.server.header_read_timeout_secs = 1;
    config.server.max_connections = 2;
    let app = start(config).await.unwrap();
    let addr = app.base.trim_start_matches("http://").to_owned();

    // Headers trickling in: closed once the header-read timeout passes.
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(closed_by_server(&mut slow).await, "a connection trickling headers is closed");

    // A keep-alive connection idle after its request: closed too.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut idle).await, "an idle keep-alive connection is closed");

    // Two connections held open (each has sent part of a request): a third is not served
    // until one of them goes.
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    let third = tokio::time::timeout(std::time::Duration::from_millis(300), app.get("/healthz")).await;
    assert!(third.is_err(), "no third connection while two are open");
    drop(held);
    assert_eq!(app.get("/healthz").await.status(), 200, "served once a slot is free");
}

/// A server that reaches PostgreSQL through a relay the test can cut.
async fn behind_relay(db: &postern_testkit::TestDb) -> (TestApp, postern_testkit::proxy::TcpProxy) {
    let mut url = url::Url::parse(&db.url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let proxy = postern_testkit::proxy::TcpProxy::start(target).await;
    let (host, port) = proxy.addr.split_once(':').unwrap();
    url.set_host(Some(host)).unwrap();
    url.set_port(Some(port.parse().unwrap())).unwrap();
    let mut config = test_config(db);
    config.database.url = Some(postern_server::config::DatabaseUrl::new(url.to_string()));
    config.database.acquire_timeout_secs = 1;
    (start(config).await.unwrap(), proxy)
}

#[tokio::test]
async fn a_database_outage_is_answered_503_quickly_and_cached_clients_keep_working() {
    use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
    let Some(db) = postern_testkit::postgres().await else { return };
    let (app, proxy) = behind_relay(&db).await;
    let token = |format: AccessTokenFormat| {
        let app = &app;
        async move {
            let (id, secret) =
                register(app, ClientType::Confidential, &[GrantType::ClientCredentials], "", format).await;
            move || {
                let request = app
                    .http
                    .post(app.url("/oauth/token"))
                    .basic_auth(id.clone(), secret.clone())
                    .form(&[("grant_type", "client_credentials")]);
                async move { request.send().await.unwrap() }
            }
        }
    };
    let jwt = token(AccessTokenFormat::Jwt).await;
    let opaque = token(AccessTokenFormat::Opaque).await;
    assert_eq!(jwt().await.status(), 200);
    assert_eq!(opaque().await.status(), 200);
    app.clock.advance(60); // past clients.cache_secs

    proxy.cut().await;
    assert_eq!(app.get("/readyz").await.status(), 503, "not ready without a writable database");
    // A JWT for a client seen before needs no database: still served.
    assert_eq!(jwt().await.status(), 200);
    // An opaque token must be stored: 503 with Retry-After, in the protocol's format.
    let refused = opaque().await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(refused.json::<serde_json::Value>().await.unwrap()["error"], "temporarily_unavailable");

    proxy.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.get("/readyz").await.status() != 200 {
        assert!(std::time::Instant::now() < deadline, "ready again once the database is back");
    }
    assert_eq!(opaque().await.status(), 200);
}

/// A session that cannot be read during an outage is "try again", on the pages and the API,
/// never "signed out": nobody is sent to sign in again, and the session works once the
/// database is back.
#[tokio::test]
async fn a_database_outage_never_looks_like_signed_out() {
    let Some(db) = postern_testkit::postgres().await else { return };
    let (app, proxy) = behind_relay(&db).await;
    create_user(&app, "ann@example.org", "correct horse").await;
    let mut ann = visitor(&app);
    ann.sign_in("ann@example.org", "correct horse").await;
    assert_eq!(ann.get("/account").await.status(), 200);
    let keys = |ann: &Visitor| {
        let request = ann.http.get(ann.url("/api/keys")).header("cookie", ann.cookie_header());
        async move { request.send().await.unwrap() }
    };
    assert_eq!(keys(&ann).await.status(), 200);

    proxy.cut().await;
    for path in ["/account", "/login", "/logout"] {
        let r = ann.get(path).await;
        assert_eq!(r.status(), 503, "{path} during an outage");
        assert!(r.headers().contains_key("retry-after"), "{path}");
        assert!(r.text().await.unwrap().contains("Try again shortly"), "{path}");
    }
    let r = keys(&ann).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "temporarily_unavailable");

    proxy.restore();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.get("/readyz").await.status() != 200 {
        assert!(std::time::Instant::now() < deadline, "ready again once the database is back");
    }
    assert_eq!(ann.get("/account").await.status(), 200, "still signed in");
}

/// A small filesystem of its own, mounted over a temporary directory (needs root; unmounted on
/// drop, before the directory is removed).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path) -> Option<SmallDisk> {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status();
        status.is_ok_and(|s| s.success()).then(|| SmallDisk(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_and_every_connection_works_once_there_is_room() {
    use crate::helpers::{VERIFIER, authorize_url, exchange, location_params, relying_party};
    use sqlx::Connection;
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let Some(_disk) = SmallDisk::mount(dir.path()) else {
        eprintln!("SKIPPED: full-disk test (mounting a tmpfs needs root)");
        return;
    };
    let db = postern_testkit::TestDb { url: format!("sqlite://{}", dir.path().join("postern.db").display()), dir };
    let app = start(test_config(&db)).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = relying_party(&app, true).await;
    let mut v = visitor(&app);
    assert_eq!(v.sign_in("ann@example.org", "correct horse").await.status(), 303);
    let mut codes = Vec::new();
    for _ in 0..40 {
        let r = v.get(&authorize_url(&rp, "")).await;
        codes.push(location_params(&r).1["code"].clone());
    }

    // SQLite writes into the log's old frames once a checkpoint has started it over, so a full
    // disk is felt only by a write that needs new room: empty the log first (the test's own
    // connection, closed before the disk fills), then fill the disk to the last byte.
    let mut own = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (busy, _, _): (i64, i64, i64) =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(&mut own).await.unwrap();
        if busy == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the log was emptied");
    }
    own.close().await.unwrap();
    assert_eq!(std::fs::metadata(db.dir.path().join("postern.db-wal")).unwrap().len(), 0);
    let mut filler = std::fs::File::create(db.dir.path().join("filler")).unwrap();
    while filler.write_all(&[7u8; 4096]).is_ok() {}
    let _ = filler.flush();
    let mut refused = 0;
    for code in codes.drain(..20) {
        let status = exchange(&app, &rp, &code, VERIFIER).await.status().as_u16();
        assert!(status == 200 || status == 503, "a full disk is 503, never {status}");
        refused += usize::from(status == 503);
    }
    assert!(refused > 0, "the full disk was felt");

    // Room again: every exchange works, whichever pooled connection it gets.
    drop(filler);
    std::fs::remove_file(db.dir.path().join("filler")).unwrap();
    for code in codes {
        assert_eq!(exchange(&app, &rp, &code, VERIFIER).await.status(), 200);
    }
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.stop().await.unwrap();
}
