//! Router-level tests: requests handed to the router directly (`oneshot`, no socket), for the
//! extractors and the error edge cases of each surface. The flows themselves are tested over
//! real sockets elsewhere.

use crate::helpers::*;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

async fn send(app: &TestApp, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let router = postern_server::routes::router(app.state.clone());
    let response = router.oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (parts.status, parts.headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path).header(header::CONTENT_TYPE, content_type).body(body.into()).unwrap()
}

#[tokio::test]
async fn each_surface_answers_bad_input_in_its_own_format() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let form = "application/x-www-form-urlencoded";

    // OAuth: RFC 6749 JSON, never a 500, never cached.
    let (status, headers, body) = send(&app, post("/oauth/token", "application/json", "{}")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"], "invalid_request");
    let (status, _, body) =
        send(&app, post("/oauth/token", form, "grant_type=client_credentials&client_id=a%00b")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid_request"), "a control character is refused where it is parsed: {body}");
    let (status, _, body) = send(&app, post("/oauth/token", form, "grant_type=password")).await;
    assert!(status == 400 || status == 401, "{status}: {body}");
    assert!(body.contains("\"error\""), "{body}");

    // The JSON API: RFC 6750, a challenge that cannot be broken out of.
    let request = Request::get("/api/keys").header(header::AUTHORIZATION, "Bearer a\"b").body(Body::empty()).unwrap();
    let (status, headers, body) = send(&app, request).await;
    assert_eq!(status, 401, "{body}");
    let challenge = headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer realm=\"postern\", error=\"invalid_token\""), "{challenge}");
    assert_eq!(challenge.matches('"').count(), 6, "three quoted values, nothing more: {challenge}");
    let (status, headers, _) = send(&app, Request::get("/api/keys").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (status.as_u16(), headers[header::WWW_AUTHENTICATE].to_str().unwrap()),
        (401, "Bearer realm=\"postern\"")
    );

    // Pages: an HTML page with the pages' headers, whatever was wrong with the form.
    let (status, headers, body) = send(&app, post("/login", "application/json", "{}")).await;
    assert_eq!(status, 415, "{body}");
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(body.contains("The form could not be read"), "{body}");
    let too_big = "a".repeat(app.state.config.server.max_body_bytes + 1);
    let (status, _, _) = send(&app, post("/login", form, too_big)).await;
    assert_eq!(status, 413);
    let (status, _, body) =
        send(&app, Request::get("/oauth/authorize/continue?request=%ZZ").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("expired or was already completed"), "{body}");

    // Anything else: JSON 404.
    let (status, _, body) = send(&app, Request::get("/no/such/thing").body(Body::empty()).unwrap()).await;
    assert_eq!((status.as_u16(), body.contains("not_found")), (404, true));
}

#[tokio::test]
async fn a_request_without_a_socket_is_served_and_counted_as_an_unknown_address() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    // The sign-in page works without a peer address (no ConnectInfo): the extractor never fails.
    let (status, headers, body) = send(&app, Request::get("/login").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.get_all(header::SET_COOKIE).iter().any(|c| c.to_str().unwrap().starts_with("postern_csrf=")));
    // A failed sign-in from nowhere is audited with no address rather than refused.
    let csrf = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .find_map(|c| {
            c.to_str().unwrap().strip_prefix("postern_csrf=").map(|v| v.split(';').next().unwrap().to_owned())
        })
        .unwrap();
    let request = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("postern_csrf={csrf}"))
        .body(Body::from(format!("csrf={csrf}&email=nobody%40example.org&password=wrong+password")))
        .unwrap();
    let (status, _, body) = send(&app, request).await;
    assert_eq!(status, 401, "{body}");
    let events = app.state.store.list_audit(0, Some("login"), 10).await.unwrap();
    assert_eq!((events.len(), events[0].ip.as_deref()), (1, None));
}
