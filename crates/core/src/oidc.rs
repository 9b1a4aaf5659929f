//! OpenID Connect Core 1.0: ID-token claims, `at_hash`, `prompt`, and the claims each scope
//! releases.

use crate::jwt::OneOrMany;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// ID-token claims (OIDC Core §2). `email`/`email_verified` appear with the `email` scope,
/// `name` with `profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: OneOrMany,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The authentication context: [`ACR_MFA`] when a second factor was used, else
    /// [`ACR_SINGLE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// OIDC Core §2: "azp" when the ID token has a single audience equal to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The `acr` of a sign-in with a second factor; a request naming it in `acr_values` (or a
/// client registered with `require_mfa`) gets a second step even inside a session without one.
pub const ACR_MFA: &str = "urn:postern:mfa";
/// The `acr` of a sign-in with one factor (a password, or a link from an email).
pub const ACR_SINGLE: &str = "urn:postern:single-factor";

/// The `acr` for what a sign-in used (its `amr` values).
pub fn acr_for(amr: &[String]) -> &'static str {
    if amr.iter().any(|a| a == "mfa") { ACR_MFA } else { ACR_SINGLE }
}

/// OIDC Core §3.1.3.6: the base64url of the left half of the SHA-256 of the access token (for
/// RS256, ES256 and EdDSA keys alike, which all use SHA-256 here).
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// OIDC Core §3.1.2.1 `prompt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

impl Prompt {
    /// Parses the space-separated list; `none` with anything else, and values we do not
    /// implement, are errors (the caller answers `invalid_request`).
    pub fn parse(value: Option<&str>) -> Result<Prompt, String> {
        let mut p = Prompt::default();
        for v in value.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                // Postern has one account per session; there is nothing to select.
                "select_account" => {}
                other => return Err(format!("unsupported prompt value {other:?}")),
            }
        }
        if p.none && (p.login || p.consent) {
            return Err("prompt=none cannot be combined with other values".into());
        }
        Ok(p)
    }
}

/// Plain-language descriptions of the standard scopes, for consent pages.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "openid" => "Confirm who you are (your account identifier)".into(),
        "profile" => "See your name".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Stay connected when you are not using it".into(),
        "postern:keys" => "Create, list and revoke your API keys".into(),
        "postern:account" => "See where you are signed in and which apps have access, and end either".into(),
        "postern:admin" => "Administer this server (if you are an administrator)".into(),
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half() {
        // OIDC Core §A.3 example access token and its at_hash for RS256.
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"), "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn prompt_values() {
        assert_eq!(Prompt::parse(None).unwrap(), Prompt::default());
        let p = Prompt::parse(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("bogus")).is_err());
        assert!(Prompt::parse(Some("select_account")).is_ok());
    }
}
