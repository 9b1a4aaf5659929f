//! Protected resources (RFC 8707): a client gets tokens only for the resources it is allowed
//! (or the issuer), `invalid_target` otherwise; without `resource`, its one resource is the
//! audience, else the issuer. On both backends.

use crate::helpers::*;
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use serde_json::Value;

const API: &str = "https://api.example.org";
const OTHER: &str = "https://other.example.org";

/// A client-credentials token request with these `resource`s: the status and the body.
async fn ask(app: &TestApp, id: &str, secret: &str, resources: &[&str]) -> (u16, Value) {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend(resources.iter().map(|r| ("resource", *r)));
    let r = app.http.post(app.url("/oauth/token")).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The audience the token in `body` is for (introspected, as a resource server sees it).
async fn audience(app: &TestApp, body: &Value) -> Value {
    let token = body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}"));
    crate::refresh::introspect(app, token).await["aud"].clone()
}

async fn client(app: &TestApp, resources: &[&str]) -> (String, String) {
    let (id, secret) =
        register(app, ClientType::Confidential, &[GrantType::ClientCredentials], "read", AccessTokenFormat::Jwt).await;
    let resources: Vec<String> = resources.iter().map(|r| (*r).to_owned()).collect();
    postern_server::resources::allow(&app.state.store, &id, &resources).await.unwrap();
    (id, secret.unwrap())
}

both!(tokens_are_only_for_the_resources_a_client_is_allowed, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    postern_server::resources::add(store, API, "Projects API", &["projects".into()], NOW).await.unwrap();
    postern_server::resources::add(store, OTHER, "Other API", &[], NOW).await.unwrap();
    let issuer = app.state.issuer.to_string();

    // One resource: it is the default audience; it, or the issuer, may be named; nothing else.
    let (id, secret) = client(&app, &[API]).await;
    let (status, body) = ask(&app, &id, &secret, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(audience(&app, &body).await, serde_json::json!([API]));
    let (_, body) = ask(&app, &id, &secret, &[API]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([API]));
    let (_, body) = ask(&app, &id, &secret, &[&issuer]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([issuer]));
    for refused in [&[OTHER][..], &[API, OTHER], &["https://unregistered.example.org"]] {
        let (status, body) = ask(&app, &id, &secret, refused).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{refused:?}: {body}");
    }

    // Two resources: no default but the issuer; both may be named at once.
    let (id, secret) = client(&app, &[API, OTHER]).await;
    let (_, body) = ask(&app, &id, &secret, &[]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([issuer]));
    let (_, body) = ask(&app, &id, &secret, &[API, OTHER]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([API, OTHER]));

    // None: only the issuer.
    let (id, secret) = client(&app, &[]).await;
    let (_, body) = ask(&app, &id, &secret, &[]).await;
    assert_eq!(audience(&app, &body).await, serde_json::json!([issuer]));
    let (status, body) = ask(&app, &id, &secret, &[API]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_target")), "{body}");

    // An unregistered resource cannot be allowed; a removed one is no longer allowed to anyone.
    let unknown = postern_server::resources::allow(store, &id, &["https://nope.example.org".into()]).await;
    assert!(matches!(unknown, Err(postern_server::resources::ResourceError::NotFound(_))));
    let duplicate = postern_server::resources::add(store, API, "Again", &[], NOW).await;
    assert!(matches!(duplicate, Err(postern_server::resources::ResourceError::Exists(_))));
    let (with_api, with_api_secret) = client(&app, &[API]).await;
    postern_server::resources::remove(store, API).await.unwrap();
    assert!(store.client_by_id(&with_api).await.unwrap().unwrap().resources.is_empty());
    let (status, _) = ask(&app, &with_api, &with_api_secret, &[API]).await;
    assert_eq!(status, 400);
});
