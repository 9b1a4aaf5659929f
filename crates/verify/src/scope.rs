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

/// A set of scopes, parsed once, compared only through [`covers`]: what a token, a client, a
/// consent or an entitlement holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// A space-separated list, skipping what is not a scope and repeats (for stored, trusted
    /// lists; requests are parsed strictly where they arrive).
    pub fn parse_list(list: &str) -> Self {
        let mut set = ScopeSet::default();
        for scope in parse_list(list) {
            set.insert(scope);
        }
        set
    }

    /// Adds `scope` unless it is already there (as written).
    pub fn insert(&mut self, scope: Scope) {
        if !self.0.contains(&scope) {
            self.0.push(scope);
        }
    }

    /// Whether the set covers `required` (the `name:*` rule included).
    pub fn covers(&self, required: &Scope) -> bool {
        any_covers(&self.0, required)
    }

    /// Whether the set covers every scope of `other`.
    pub fn covers_all(&self, other: &ScopeSet) -> bool {
        other.0.iter().all(|s| self.covers(s))
    }

    /// This set with the scopes of `other` it does not have yet, in order.
    pub fn union(mut self, other: &ScopeSet) -> ScopeSet {
        for s in &other.0 {
            self.insert(s.clone());
        }
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The space-separated form (RFC 6749 §3.3).
impl std::fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
        }
        Ok(())
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

    #[test]
    fn a_scope_set_covers_through_the_one_rule() {
        let held = ScopeSet::parse_list("openid project:* openid  bad\\scope");
        assert_eq!(held.to_string(), "openid project:*");
        let wanted = ScopeSet::parse_list("project:web openid");
        assert!(held.covers_all(&wanted), "project:* covers project:web");
        assert!(!wanted.covers_all(&held), "project:web does not cover project:*");
        assert!(!held.covers(&Scope::parse("project").unwrap()));
        let more = held.union(&ScopeSet::parse_list("email openid"));
        assert_eq!(more.to_string(), "openid project:* email");
        assert!(ScopeSet::parse_list("").is_empty());
    }
}
