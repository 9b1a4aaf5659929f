//! The body of OAuth endpoints: `application/x-www-form-urlencoded` (RFC 6749 §3.2), read once
//! into pairs. A parameter "MUST NOT be included more than once" (RFC 6749 §3.1, §3.2), except
//! the few that the RFCs let repeat (`resource`, RFC 8707); empty values count as absent. No
//! value may hold a control character (NUL, which PostgreSQL refuses in text, among them): such
//! a parameter is `invalid_request`, so it never reaches a query.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use postern_core::oauth::OAuthError;

#[derive(Debug, Default)]
pub struct OAuthForm {
    pairs: Vec<(String, String)>,
}

impl OAuthForm {
    pub fn parse(body: &[u8]) -> Self {
        let pairs = url::form_urlencoded::parse(body)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self { pairs }
    }

    /// A form from a JSON object (for clients that send JSON bodies): strings as they are,
    /// numbers and booleans as text; nested values are refused.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let serde_json::Value::Object(map) = serde_json::from_slice(body).ok()? else { return None };
        let mut pairs = Vec::new();
        for (k, v) in map {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => return None,
            };
            if !text.is_empty() {
                pairs.push((k, text));
            }
        }
        Some(Self { pairs })
    }

    /// A parameter that may appear at most once.
    pub fn one(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::invalid_request(format!("parameter {name} is repeated")));
        }
        first.map(|v| printable(name, v)).transpose()
    }

    /// A required parameter that may appear once.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.one(name)?.ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }

    /// Every value of a parameter that may repeat.
    pub fn all(&self, name: &str) -> Result<Vec<&str>, OAuthError> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| printable(name, v)).collect()
    }
}

/// `value`, unless it holds a control character.
fn printable<'v>(name: &str, value: &'v str) -> Result<&'v str, OAuthError> {
    if value.chars().any(char::is_control) {
        return Err(OAuthError::invalid_request(format!("parameter {name} contains a control character")));
    }
    Ok(value)
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = crate::error::WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded").into());
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| OAuthError::invalid_request("the request body could not be read (too large?)"))?;
        Ok(OAuthForm::parse(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_empty_parameters() {
        let f = OAuthForm::parse(b"grant_type=client_credentials&scope=&resource=a&resource=b&x=1&x=2");
        assert_eq!(f.one("grant_type").unwrap(), Some("client_credentials"));
        assert_eq!(f.one("scope").unwrap(), None, "empty counts as absent");
        assert_eq!(f.all("resource").unwrap(), ["a", "b"]);
        assert!(f.one("x").is_err());
        assert!(f.required("code").is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        let f = OAuthForm::parse(b"client_id=a%00b&resource=x&resource=y%07&code=ok");
        assert!(f.one("client_id").is_err_and(|e| e.code() == "invalid_request"));
        assert!(f.all("resource").is_err());
        assert_eq!(f.one("code").unwrap(), Some("ok"));
    }
}
