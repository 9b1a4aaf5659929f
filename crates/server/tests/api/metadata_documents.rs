//! Client ID metadata documents: a client named by the URL of its document signs a person in,
//! the document is read again only when its cache time has passed, and documents that are
//! wrong, redirect, are too large or too slow, or live on internal addresses are refused
//! without being trusted (or, for internal addresses, without being asked at all). On both
//! backends, against a document server on a loopback port; a browser test too.

use crate::helpers::*;
use axum::http::{HeaderMap, StatusCode, header};
use postern_server::config::Config;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A site serving client documents on a loopback port, counting what it is asked.
struct DocumentSite {
    base: String,
    hits: Arc<AtomicUsize>,
}

impl DocumentSite {
    /// `redirect` is the callback the good document names.
    async fn start(redirect: &str) -> DocumentSite {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let document = |id: String, redirect: &str| {
            serde_json::json!({
                "client_id": id,
                "client_name": "Notes agent",
                "redirect_uris": [redirect],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "logo_uri": "https://ignored.example/logo.png",
            })
            .to_string()
        };
        let good = document(format!("{base}/client.json"), redirect);
        let other = document(format!("{base}/someone-else.json"), redirect);
        let big = format!("{{\"client_id\":\"{base}/big.json\",\"pad\":\"{}\"}}", "x".repeat(10_000));
        let counted = hits.clone();
        let app = axum::Router::new()
            .route(
                "/client.json",
                axum::routing::get(move || async move {
                    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "max-age=600")], good)
                }),
            )
            .route("/other.json", axum::routing::get(move || async move { other }))
            .route("/big.json", axum::routing::get(move || async move { big }))
            .route("/moved.json", axum::routing::get(|| async { axum::response::Redirect::temporary("/client.json") }))
            .route("/missing.json", axum::routing::get(|| async { StatusCode::NOT_FOUND }))
            // Never answers: only the server's time limit ends the wait.
            .route("/slow.json", axum::routing::get(std::future::pending::<String>))
            .layer(axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    next.run(req).await
                }
            }));
        tokio::spawn(axum::serve(listener, app).into_future());
        DocumentSite { base, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Documents on loopback allowed (plain http), read within a second.
fn loopback_documents(config: &mut Config) {
    config.registration.metadata_documents_allow_loopback = true;
    config.registration.metadata_document_timeout_secs = 1;
}

const CALLBACK: &str = "http://127.0.0.1:4455/callback";

/// The authorization request of the client `client_id`, back to `redirect`.
fn request(client_id: &str, redirect: &str) -> String {
    let rp = Rp { id: urlencode(client_id), secret: None, redirect: redirect.to_owned() };
    authorize_url(&rp, "")
}

/// Asks to authorize `client_id` as a signed-in person: the status and the page (never a
/// redirect to the callback, which is not trusted yet).
async fn ask(v: &mut Visitor, client_id: &str) -> (u16, String) {
    let r = v.get(&request(client_id, CALLBACK)).await;
    let status = r.status().as_u16();
    let headers: HeaderMap = r.headers().clone();
    assert!(headers.get(header::LOCATION).is_none(), "never sent to an untrusted redirect");
    (status, r.text().await.unwrap())
}

both!(a_client_named_by_its_document_signs_a_person_in, |kind| async move {
    let Some((app, _db)) = spawn_configured(kind, loopback_documents).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let site = DocumentSite::start(CALLBACK).await;
    let id = site.url("/client.json");
    let discovery: serde_json::Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert_eq!(discovery["client_id_metadata_document_supported"], true);
    assert!(discovery["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&"none".into()));

    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let page = v.get(&request(&id, "http://127.0.0.1:5566/callback")).await.text().await.unwrap();
    assert!(page.contains("Notes agent is described by 127.0.0.1"), "names the document's host: {page}");
    assert!(page.contains("http://127.0.0.1:5566/callback"), "names where the browser goes");
    assert!(page.contains("on your own computer"), "warns of a loopback redirect");
    assert_eq!(site.hits(), 1);
    let arrival = sign_in_and_allow(&mut v, &request(&id, CALLBACK), "ann@example.org", "correct horse").await;
    assert_eq!(arrival.steps, [Step::Allowed], "never first-party");
    let rp = Rp { id: id.clone(), secret: None, redirect: CALLBACK.into() };
    let r = exchange(&app, &rp, &arrival["code"], VERIFIER).await;
    assert_eq!(r.status(), 200, "a public client at the token endpoint");
    let client = app.state.store.client_by_id(&id).await.unwrap().unwrap();
    assert_eq!(client.registered_by, postern_store::RegisteredBy::Document);
    assert!(!client.first_party && client.secret_hash.is_none());

    // Read once within its cache time (max-age=600), again after it.
    assert_eq!(site.hits(), 1);
    app.clock.advance(601);
    let again = sign_in_and_allow(&mut v, &request(&id, CALLBACK), "ann@example.org", "correct horse").await;
    assert!(again.contains_key("code"));
    assert_eq!(site.hits(), 2);
    // A redirect URI the document does not name is refused on Postern's own page.
    let (status, page) = ask(&mut v, &id).await;
    assert_eq!(status, 200, "the registered callback: {page}");
    let r = v.get(&request(&id, "http://127.0.0.1/elsewhere")).await;
    assert_eq!(r.status(), 400);
});

both!(wrong_redirecting_large_slow_and_missing_documents_are_refused, |kind| async move {
    let Some((app, _db)) = spawn_configured(kind, loopback_documents).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let site = DocumentSite::start(CALLBACK).await;
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    for (path, why) in [
        ("/other.json", "names another client_id"),
        ("/moved.json", "redirect"),
        ("/big.json", "larger than 5120 bytes"),
        ("/slow.json", "too slow"),
        ("/missing.json", "answered 404"),
        ("/client.json#frag", "plain form"),
    ] {
        let (status, page) = ask(&mut v, &site.url(path)).await;
        assert_eq!(status, 400, "{path}: {page}");
        assert!(page.contains(why), "{path}: {page}");
    }
    assert!(app.state.store.list_clients().await.unwrap().iter().all(|c| !c.client_id.as_str().starts_with("http")));
});

both!(documents_on_internal_addresses_are_never_asked_for, |kind| async move {
    // The production setting: https only, and no loopback either.
    let Some((app, _db)) = spawn_configured(kind, |_| {}).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let site = DocumentSite::start(CALLBACK).await;
    let port = url::Url::parse(&site.base).unwrap().port().unwrap();
    let mut v = visitor(&app);
    v.sign_in("ann@example.org", "correct horse").await;
    let (status, page) = ask(&mut v, &site.url("/client.json")).await;
    assert!(status == 400 && page.contains("https"), "plain http: {page}");
    for internal in [
        format!("https://127.0.0.1:{port}/client.json"),
        format!("https://localhost:{port}/client.json"),
        format!("https://[::1]:{port}/client.json"),
        "https://10.0.0.7/client.json".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://[fd00::1]/client.json".to_owned(),
    ] {
        let (status, page) = ask(&mut v, &internal).await;
        assert_eq!(status, 400, "{internal}: {page}");
        assert!(page.contains("internal address"), "{internal}: {page}");
    }
    assert_eq!(site.hits(), 0, "nothing was asked of the internal site");

    // Documents off: a URL is just an unknown client, and discovery does not offer them.
    let Some((off, _db)) = spawn_configured(kind, |c| c.registration.metadata_documents = false).await else { return };
    let discovery: serde_json::Value = off.get("/.well-known/openid-configuration").await.json().await.unwrap();
    assert!(discovery.get("client_id_metadata_document_supported").is_none());
    let mut v = visitor(&off);
    let (status, page) = ask(&mut v, "https://agent.example/client.json").await;
    assert!(status == 400 && page.contains("not registered"), "{page}");
});

#[tokio::test]
async fn a_document_client_on_another_origin_gets_its_code_in_a_browser() {
    use crate::pages::{code_request, sign_in};
    let Some(browser) = postern_testkit::browser::Browser::start().await else { return };
    let Some((app, _db)) = spawn_configured(postern_testkit::Kind::Sqlite, loopback_documents).await else { return };
    let client = postern_testkit::client_app::ClientApp::start().await;
    create_user(&app, "ann@example.org", "correct horse").await;
    let site = DocumentSite::start(&client.redirect_uri()).await;
    let rp = Rp { id: urlencode(&site.url("/client.json")), secret: None, redirect: client.redirect_uri() };
    browser.goto(&code_request(&app, &rp, "s-doc", "")).await;
    sign_in(&browser, "ann@example.org", "correct horse").await;
    let consent = browser.wait_for_text("is described by").await;
    assert!(consent.contains("Notes agent is described by 127.0.0.1"), "{consent}");
    browser.press("Allow").await;
    browser.wait_for_text("Application: code received").await;
    let answer = client.wait_for("/callback").await;
    assert_eq!(answer.params["state"], "s-doc");
    let rp = Rp { id: site.url("/client.json"), secret: None, redirect: client.redirect_uri() };
    assert_eq!(exchange(&app, &rp, &answer.params["code"], VERIFIER).await.status(), 200);
    browser.quit().await;
}

both!(document_reads_are_limited_per_address, |kind| async move {
    let Some((app, _db)) = spawn_configured(kind, |c| {
        loopback_documents(c);
        c.limits.client_registrations_per_address = 2;
    })
    .await
    else {
        return;
    };
    let site = DocumentSite::start(CALLBACK).await;
    let mut v = visitor(&app);
    for _ in 0..2 {
        assert_eq!(ask(&mut v, &site.url("/missing.json")).await.0, 400);
    }
    let r = v.get(&request(&site.url("/missing.json"), CALLBACK)).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(site.hits(), 2, "the third was not read");
    // A document read before and still fresh needs no read, so it is not limited.
    app.clock.advance(61);
    for _ in 0..3 {
        let r = v.get(&request(&site.url("/client.json"), CALLBACK)).await;
        assert!(Visitor::location(&r).starts_with("/login"), "to the sign-in page: {}", r.status());
    }
    assert_eq!(site.hits(), 3, "read once, then from the cache");
});
