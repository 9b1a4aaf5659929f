//! OAuth scope tokens (RFC 6749 §3.3): `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Scope(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid scope {0:?}: a scope is 1-128 printable ASCII characters without spaces, quotes or backslashes")]
pub struct InvalidScope(pub String);

impl Scope {
    pub fn parse(s: &str) -> Result<Self, InvalidScope> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidScope(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Scope {
    type Error = InvalidScope;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Scope::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(s: Scope) -> String {
        s.0
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_syntax() {
        for good in ["openid", "project:*", "read:repo/x", "a"] {
            assert!(Scope::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "two words", "quote\"", "back\\slash", "é", &"x".repeat(129)] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }
}
