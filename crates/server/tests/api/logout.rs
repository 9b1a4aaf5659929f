//! RP-initiated logout.

use crate::helpers::*;
use crate::helpers::{VERIFIER, authorize_url, exchange, location_params, relying_party, sign_in_and_allow, urlencode};
use serde_json::Value;

/// Signs in through the code flow and returns the visitor and an ID token.
async fn signed_in(app: &TestApp) -> (Visitor, crate::helpers::Rp, String) {
    create_user(app, "ann@example.org", "correct horse").await;
    let rp = relying_party(app, true).await;
    let mut v = visitor(app);
    let params = sign_in_and_allow(&mut v, &authorize_url(&rp, ""), "ann@example.org", "correct horse").await;
    let tokens: Value = exchange(app, &rp, &params["code"], VERIFIER).await.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    (v, rp, id_token)
}

fn signed_in_now(v: &Visitor) -> bool {
    v.cookies.contains_key("postern_session")
}

#[tokio::test]
async fn a_valid_hint_signs_out_at_once_and_returns_to_a_registered_address() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let (mut v, rp, id_token) = signed_in(&app).await;
    let bye = urlencode("https://app.example.org/bye");
    let r = v.get(&format!("/logout?id_token_hint={id_token}&post_logout_redirect_uri={bye}&state=s-3")).await;
    let (location, params) = location_params(&r);
    assert!(location.starts_with("https://app.example.org/bye"), "{location}");
    assert_eq!(params["state"], "s-3");
    assert!(!signed_in_now(&v));
    assert_eq!(v.get("/account").await.headers()["location"], "/login");
    let _ = rp;
}

#[tokio::test]
async fn unregistered_addresses_and_forged_hints_are_refused_without_redirecting() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let (mut v, rp, id_token) = signed_in(&app).await;
    for query in [
        format!("id_token_hint={id_token}&post_logout_redirect_uri={}", urlencode("https://evil.example/bye")),
        format!("client_id={}&post_logout_redirect_uri={}", rp.id, urlencode("https://app.example.org/cb")),
        format!("post_logout_redirect_uri={}", urlencode("https://app.example.org/bye")),
        "id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned(),
        format!("id_token_hint={id_token}&client_id=someone-else"),
    ] {
        let r = v.get(&format!("/logout?{query}")).await;
        assert_eq!(r.status(), 400, "{query}");
        assert!(r.headers().get("location").is_none(), "{query}");
        assert!(signed_in_now(&v), "{query}: still signed in");
    }
}

#[tokio::test]
async fn without_a_hint_the_user_confirms() {
    let Some((app, _db)) = spawn(postern_testkit::Kind::Sqlite).await else { return };
    let (mut v, rp, _) = signed_in(&app).await;
    let bye = urlencode("https://app.example.org/bye");
    let r = v.get(&format!("/logout?client_id={}&post_logout_redirect_uri={bye}&state=s-4", rp.id)).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("asks to sign you out") && html.contains(">Sign out</button>"));
    assert!(signed_in_now(&v), "nothing happens before the user confirms");
    let field = |name| Visitor::hidden(&html, name);
    let fields = [
        ("csrf", field("csrf")),
        ("client_id", field("client_id")),
        ("post_logout_redirect_uri", field("post_logout_redirect_uri")),
        ("state", field("state")),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = v.post_form("/logout", &fields).await;
    let (location, params) = location_params(&r);
    assert!(location.starts_with("https://app.example.org/bye"));
    assert_eq!(params["state"], "s-4");
    assert!(!signed_in_now(&v));
}
