//! Access tokens: the RFC 9068 JWT profile, as issued and as verified.

use crate::jwt::OneOrMany;
use serde::{Deserialize, Serialize};

/// RFC 9068 §2.1: the `typ` header of JWT access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user, or for client credentials the client itself.
    pub sub: String,
    pub aud: OneOrMany,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How the user signed in (RFC 8176 values); empty for client credentials.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The authentication context (`urn:postern:mfa` after a second factor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl AccessClaims {
    /// Valid at `now` (expiry is exclusive).
    pub fn is_current(&self, now: i64) -> bool {
        now < self.exp && self.iat <= now + 60
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_and_wire_shape() {
        let c = AccessClaims {
            iss: "https://i".into(),
            sub: "svc".into(),
            aud: OneOrMany(vec!["https://api".into()]),
            client_id: "svc".into(),
            scope: String::new(),
            jti: "j".into(),
            iat: 100,
            exp: 200,
            auth_time: None,
            amr: Vec::new(),
            acr: None,
        };
        assert!(c.is_current(100) && c.is_current(199) && !c.is_current(200));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["aud"], "https://api");
        assert!(json.get("scope").is_none() && json.get("auth_time").is_none());
        assert!(json.get("amr").is_none() && json.get("acr").is_none());
    }
}
