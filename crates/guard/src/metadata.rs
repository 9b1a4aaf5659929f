//! The protected resource's metadata (RFC 9728): what it is (`resource`, its identifier and
//! the tokens' audience), who issues its tokens (`authorization_servers`), how tokens are sent
//! and which scopes it understands. Served at the well-known address derived from the
//! identifier (§3.1: `/.well-known/oauth-protected-resource` inserted before the identifier's
//! path), and named in every challenge the guard answers with (§5.1).

use crate::Guard;
use axum::Json;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata of one resource, and where it is served.
pub(crate) struct Resource {
    document: Value,
    /// The path the document is served at (on the resource's own origin).
    path: String,
    /// Its absolute URL, for challenges; `None` when the identifier is not an http(s) URL.
    url: Option<String>,
}

impl Resource {
    pub(crate) fn new(identifier: &str, issuer: &str, scopes: Vec<String>, name: Option<String>) -> Self {
        let mut document = json!({
            "resource": identifier,
            "authorization_servers": [issuer],
            "bearer_methods_supported": ["header"],
        });
        if !scopes.is_empty() {
            document["scopes_supported"] = json!(scopes);
        }
        if let Some(name) = name {
            document["resource_name"] = json!(name);
        }
        let parsed = url::Url::parse(identifier).ok().filter(|u| matches!(u.scheme(), "https" | "http"));
        let path = match parsed.as_ref().map(url::Url::path) {
            Some("/") | None => WELL_KNOWN.to_owned(),
            Some(p) => format!("{WELL_KNOWN}{p}"),
        };
        let url = parsed.map(|u| format!("{}{path}", u.origin().ascii_serialization()));
        Resource { document, path, url }
    }
}

impl Guard {
    /// The resource's metadata document (RFC 9728 §2).
    pub fn resource_metadata(&self) -> &Value {
        &self.0.resource.document
    }

    /// Where the metadata is served, absolute (`https://api.example.org/.well-known/oauth-protected-resource`),
    /// as challenges name it; `None` when the audience is not an http(s) URL.
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.0.resource.url.as_deref()
    }

    /// A router serving the metadata at its well-known path; merge it into the app, outside
    /// the guard's layer (the document is public).
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        let document = self.0.resource.document.clone();
        axum::Router::new().route(
            &self.0.resource.path,
            axum::routing::get(move || {
                let document = document.clone();
                async move {
                    let mut r = Json(document).into_response();
                    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
                    r
                }
            }),
        )
    }

    /// Adds `resource_metadata="…"` to a response's Bearer challenge (RFC 9728 §5.1), whether
    /// the guard refused the request or the handler did (`principal.require(…)?`).
    pub(crate) fn name_metadata(&self, response: &mut Response) {
        let Some(url) = self.resource_metadata_url() else { return };
        let Some(challenge) = response.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()) else {
            return;
        };
        if !challenge.starts_with("Bearer") || challenge.contains("resource_metadata=") {
            return;
        }
        let joined = if challenge == "Bearer" {
            format!("Bearer resource_metadata=\"{url}\"")
        } else {
            format!("{challenge}, resource_metadata=\"{url}\"")
        };
        if let Ok(v) = HeaderValue::from_str(&joined) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_well_known_address_keeps_the_identifiers_path() {
        let at = |id: &str| Resource::new(id, "https://auth.example.org", Vec::new(), None);
        let root = at("https://api.example.org");
        assert_eq!(root.path, "/.well-known/oauth-protected-resource");
        assert_eq!(root.url.as_deref(), Some("https://api.example.org/.well-known/oauth-protected-resource"));
        let nested = at("https://api.example.org/mcp");
        assert_eq!(nested.path, "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(nested.url.as_deref(), Some("https://api.example.org/.well-known/oauth-protected-resource/mcp"));
        assert_eq!(at("urn:example:api").url, None);
        let doc = &at("https://api.example.org").document;
        assert_eq!(doc["authorization_servers"], json!(["https://auth.example.org"]));
        assert_eq!(doc["resource"], "https://api.example.org");
    }
}
