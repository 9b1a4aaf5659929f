//! OAuth scope tokens (RFC 6749 §3.3): `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, and
//! the one rule that decides whether granted scopes cover a required one, used alike for OAuth
//! clients, tokens and API keys.
//!
//! A scope that takes values is written `name:value` (`project:billing`); `name:*` grants every
//! value of `name`. Everything else matches exactly.

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

/// Whether `granted` covers `required`: the same scope, or `name:*` when `required` is
/// `name:value`.
pub fn covers(granted: &Scope, required: &Scope) -> bool {
    if granted == required {
        return true;
    }
    match granted.0.strip_suffix(":*") {
        Some(name) => required.0.strip_prefix(name).and_then(|r| r.strip_prefix(':')).is_some_and(|v| !v.is_empty()),
        None => false,
    }
}

/// Whether any of `granted` covers `required`.
pub fn any_covers(granted: &[Scope], required: &Scope) -> bool {
    granted.iter().any(|g| covers(g, required))
}

/// Parses a space-separated list, skipping what is not a scope (for stored, trusted lists).
pub fn parse_list(list: &str) -> Vec<Scope> {
    list.split(' ').filter_map(|s| Scope::parse(s).ok()).collect()
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
    fn wildcards_cover_values_of_their_name_only() {
        let s = |x: &str| Scope::parse(x).unwrap_or_else(|e| panic!("{e}"));
        assert!(covers(&s("read"), &s("read")));
        assert!(!covers(&s("read"), &s("write")));
        assert!(covers(&s("project:*"), &s("project:billing")));
        assert!(covers(&s("project:*"), &s("project:*")));
        assert!(!covers(&s("project:*"), &s("project")), "the bare name is another scope");
        assert!(!covers(&s("project:*"), &s("projects:x")), "a longer name is another scope");
        assert!(!covers(&s("project:billing"), &s("project:*")), "a value does not grant all values");
        assert!(!covers(&s("project:billing"), &s("project:sales")));
        assert!(!covers(&s("read"), &s("read:x")), "only name:* is a wildcard");
        assert!(any_covers(&parse_list("a project:* b"), &s("project:x")));
        assert_eq!(parse_list("a  b \"c"), vec![s("a"), s("b")]);
    }

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
