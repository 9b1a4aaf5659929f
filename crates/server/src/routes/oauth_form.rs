//! The body of OAuth endpoints: `application/x-www-form-urlencoded` (RFC 6749 §3.2), read once
//! into pairs. A parameter "MUST NOT be included more than once" (RFC 6749 §3.1, §3.2), except
//! the few that the RFCs let repeat (`resource`, RFC 8707); empty values count as absent.

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
        Ok(first)
    }

    /// A required parameter that may appear once.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.one(name)?.ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }

    /// Every value of a parameter that may repeat.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
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
        assert_eq!(f.all("resource"), ["a", "b"]);
        assert!(f.one("x").is_err());
        assert!(f.required("code").is_err());
    }
}
