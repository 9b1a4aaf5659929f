//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, or `none` for public clients. Exactly one method
//! per request; secrets are compared as SHA-256 hashes in constant time.

use crate::oauth::OAuthError;
use crate::secret::TokenHash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// What a request presented to identify its client.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented {
    /// HTTP Basic (`client_secret_basic`).
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the body (`client_secret_post`).
    Post { client_id: String, secret: String },
    /// Only a `client_id` (`none`: public clients).
    None { client_id: String },
}

impl std::fmt::Debug for Presented {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Presented({:?}, {})",
            self.client_id(),
            if self.secret().is_some() { "with secret" } else { "no secret" }
        )
    }
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Presented::Basic { client_id, .. } | Presented::Post { client_id, .. } | Presented::None { client_id } => {
                client_id
            }
        }
    }

    pub fn secret(&self) -> Option<&str> {
        match self {
            Presented::Basic { secret, .. } | Presented::Post { secret, .. } => Some(secret),
            Presented::None { .. } => None,
        }
    }

    pub fn is_basic(&self) -> bool {
        matches!(self, Presented::Basic { .. })
    }

    /// The error for a failed authentication with these credentials.
    pub fn failure(&self) -> OAuthError {
        OAuthError::InvalidClient { basic: self.is_basic() }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    // RFC 6749 §2.3.1: the client id and secret are form-urlencoded before Basic encoding.
    // Most are plain (Postern's own ids and secrets are): nothing to decode, nothing to parse.
    if !s.bytes().any(|b| matches!(b, b'%' | b'+' | b'&')) {
        return Some(s.to_owned());
    }
    let decoded: String =
        url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned())?;
    Some(decoded)
}

/// Parses an `Authorization` header value for the Basic scheme.
pub fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::InvalidClient { basic: true };
    let (scheme, rest) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(
            "unsupported Authorization scheme; use Basic for client authentication",
        ));
    }
    // Decoded on the stack: the credentials of a usual client fit, longer ones take the heap.
    let encoded = rest.trim();
    let mut buf = [0u8; 256];
    let heap;
    let raw = match STANDARD.decode_slice(encoded, &mut buf) {
        Ok(n) => buf.get(..n).ok_or_else(bad)?,
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
            heap = STANDARD.decode(encoded).map_err(|_| bad())?;
            heap.as_slice()
        }
        Err(base64::DecodeSliceError::DecodeError(_)) => return Err(bad()),
    };
    let text = std::str::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let (id, secret) = (percent_decode(id).ok_or_else(bad)?, percent_decode(secret).ok_or_else(bad)?);
    if id.is_empty() || id.chars().any(char::is_control) || secret.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok((id, secret))
}

/// Decides which method a request used, refusing mixtures (RFC 6749 §2.3: "MUST NOT use more
/// than one authentication method in each request").
pub fn presented(
    authorization: Option<&str>,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Presented, OAuthError> {
    match (authorization, form_client_id, form_secret) {
        (Some(header), id, secret) => {
            let (client_id, basic_secret) = parse_basic(header)?;
            if secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not Basic and client_secret",
                ));
            }
            if id.is_some_and(|id| id != client_id) {
                return Err(OAuthError::invalid_request("client_id differs from the Basic credentials"));
            }
            Ok(Presented::Basic { client_id, secret: basic_secret })
        }
        (None, Some(id), Some(secret)) => Ok(Presented::Post { client_id: id.to_owned(), secret: secret.to_owned() }),
        (None, Some(id), None) => Ok(Presented::None { client_id: id.to_owned() }),
        (None, None, Some(_)) => Err(OAuthError::invalid_request("client_secret without client_id")),
        (None, None, None) => Err(OAuthError::InvalidClient { basic: false }),
    }
}

/// Whether `presented` authenticates a client with this stored secret hash. Confidential clients
/// (with a hash) need the matching secret; public clients (no hash) must present none. The hash
/// comparison runs in constant time.
pub fn verify(presented: &Presented, stored_hash: Option<&[u8]>) -> bool {
    match (presented.secret(), stored_hash) {
        (Some(secret), Some(hash)) => TokenHash::of(secret).matches(hash),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn plain_credentials_decode_as_the_form_decoder_would() {
        let decoder =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        for s in ["", "app", "pst_c_AbC-123_x", "a=b", "a;b", "é~!*'()", "a%20b", "a+b", "a&b", "%zz", "%", "a%2"] {
            assert_eq!(percent_decode(s), decoder(s), "{s:?}");
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(parse_basic(&basic("my%20app", "s%3Acret")).unwrap(), ("my app".into(), "s:cret".into()));
        assert_eq!(parse_basic(&basic("app", "a:b")).unwrap(), ("app".into(), "a:b".into()));
        assert!(matches!(parse_basic("Basic !!!"), Err(OAuthError::InvalidClient { basic: true })));
        assert!(matches!(parse_basic(&basic("", "x")), Err(OAuthError::InvalidClient { basic: true })));
        assert!(matches!(parse_basic("Bearer abc"), Err(OAuthError::InvalidRequest(_))));
        // Around and past the stack buffer: the same answer from the heap.
        for len in [180, 250, 254, 255, 256, 300, 2000] {
            let secret = "s".repeat(len);
            assert_eq!(parse_basic(&basic("app", &secret)).unwrap(), ("app".into(), secret), "{len}");
        }
        assert!(matches!(
            parse_basic(&format!("Basic {}!", "QUFB".repeat(100))),
            Err(OAuthError::InvalidClient { .. })
        ));
    }

    #[test]
    fn one_method_per_request() {
        let h = basic("app", "s");
        assert!(matches!(presented(Some(&h), None, None), Ok(Presented::Basic { .. })));
        assert!(matches!(presented(Some(&h), Some("app"), None), Ok(Presented::Basic { .. })));
        assert!(matches!(presented(Some(&h), Some("other"), None), Err(OAuthError::InvalidRequest(_))));
        assert!(matches!(presented(Some(&h), None, Some("s")), Err(OAuthError::InvalidRequest(_))));
        assert!(matches!(presented(None, Some("app"), Some("s")), Ok(Presented::Post { .. })));
        assert!(matches!(presented(None, Some("app"), None), Ok(Presented::None { .. })));
        assert!(matches!(presented(None, None, None), Err(OAuthError::InvalidClient { basic: false })));
        assert!(!format!("{:?}", presented(None, Some("app"), Some("topsecret")).unwrap()).contains("topsecret"));
    }

    #[test]
    fn verification_by_client_type() {
        let hash = TokenHash::of("s3cret");
        let post = |s: &str| Presented::Post { client_id: "c".into(), secret: s.into() };
        assert!(verify(&post("s3cret"), Some(hash.as_bytes())));
        assert!(!verify(&post("s3creT"), Some(hash.as_bytes())));
        assert!(
            !verify(&Presented::None { client_id: "c".into() }, Some(hash.as_bytes())),
            "confidential needs its secret"
        );
        assert!(verify(&Presented::None { client_id: "c".into() }, None), "public presents none");
        assert!(!verify(&post("anything"), None), "a public client cannot authenticate with a secret");
    }
}
