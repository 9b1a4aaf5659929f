//! The body of OAuth endpoints: `application/x-www-form-urlencoded` (RFC 6749 §3.2), read once
//! into pairs. A parameter "MUST NOT be included more than once" (RFC 6749 §3.1, §3.2), except
//! the few that the RFCs let repeat (`resource`, RFC 8707); empty values count as absent. No
//! value may hold a control character (NUL, which PostgreSQL refuses in text, among them): such
//! a parameter is `invalid_request`, so it never reaches a query.

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;
use postern_core::oauth::OAuthError;

#[derive(Debug, Default)]
pub struct OAuthForm {
    pairs: Vec<(String, String)>,
}

impl OAuthForm {
    pub fn parse(body: &[u8]) -> Self {
        if !body.iter().any(|b| matches!(b, b'%' | b'+')) {
            return Self::parse_plain(body);
        }
        let pairs = url::form_urlencoded::parse(body)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Self { pairs }
    }

    /// [`OAuthForm::parse`] of a body with nothing to decode (no `%`, no `+`): the same pairs,
    /// split without the decoder's character-by-character pass (a token's body is such a one).
    fn parse_plain(body: &[u8]) -> Self {
        let text = |b: &[u8]| match std::str::from_utf8(b) {
            Ok(t) => t.to_owned(),
            Err(_) => String::from_utf8_lossy(b).into_owned(),
        };
        let pairs = body
            .split(|b| *b == b'&')
            .filter_map(|pair| {
                let (k, v) = pair.split_at(pair.iter().position(|b| *b == b'=')?);
                let v = &v[1..];
                (!v.is_empty()).then(|| (text(k), text(v)))
            })
            .collect();
        Self { pairs }
    }

    /// Reads the form of a request with these headers. The body's size is bounded by the
    /// edge layer in front of every route (`server.max_body_bytes`), so it is read as it is.
    async fn read(headers: &HeaderMap, body: Body) -> Result<Self, OAuthError> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
        }
        let body = body
            .collect()
            .await
            .map_err(|_| OAuthError::invalid_request("the request body could not be read (too large?)"))?;
        Ok(OAuthForm::parse(&body.to_bytes()))
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
    // One pass without early exit over the bytes (it vectorises), the char-by-char check only
    // when some byte is not printable ASCII.
    let printable_ascii = value.bytes().fold(true, |all, b| all & (b' '..=b'~').contains(&b));
    if !printable_ascii && value.chars().any(char::is_control) {
        return Err(OAuthError::invalid_request(format!("parameter {name} contains a control character")));
    }
    Ok(value)
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = crate::error::WebError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        Ok(OAuthForm::read(&parts.headers, body).await?)
    }
}

/// An OAuth endpoint's request: its headers (for client authentication), moved out of the
/// request rather than copied, and its form, or why it could not be read.
pub struct OAuthRequest {
    pub headers: HeaderMap,
    pub form: Result<OAuthForm, OAuthError>,
}

impl<S: Send + Sync> FromRequest<S> for OAuthRequest {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let form = OAuthForm::read(&parts.headers, body).await;
        Ok(OAuthRequest { headers: parts.headers, form })
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
    fn a_body_with_nothing_to_decode_reads_as_the_decoder_reads_it() {
        let general = |body: &[u8]| {
            let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body)
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            pairs
        };
        let bodies: [&[u8]; 9] = [
            b"token=eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1MSJ9.c2ln&token_type_hint=access_token",
            b"",
            b"&&a=1&&b=2&",
            b"a&b=&=c&d==e&f=g=h",
            b"novalue&x=1",
            b"k=caf\xc3\xa9&bad=\xff\xfe&ctl=a\x01b",
            b"a=1&a=2&scope=",
            b"==&=&x",
            b"a;b=c d",
        ];
        for body in bodies {
            assert!(!body.iter().any(|b| matches!(b, b'%' | b'+')));
            assert_eq!(OAuthForm::parse_plain(body).pairs, general(body), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn control_characters_are_refused() {
        let f = OAuthForm::parse(b"client_id=a%00b&resource=x&resource=y%07&code=ok");
        assert!(f.one("client_id").is_err_and(|e| e.code() == "invalid_request"));
        assert!(f.all("resource").is_err());
        assert_eq!(f.one("code").unwrap(), Some("ok"));
        let plain = OAuthForm::parse(b"a=x\x7fy&b=caf\xc3\xa9&c=\xc2\x85&d=tab\there");
        assert!(plain.one("a").is_err(), "DEL");
        assert_eq!(plain.one("b").unwrap(), Some("caf\u{e9}"));
        assert!(plain.one("c").is_err(), "U+0085, a C1 control");
        assert!(plain.one("d").is_err(), "tab");
    }
}
