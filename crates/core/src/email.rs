//! Email addresses as account identifiers: parsed once, compared case-insensitively.

/// A syntactically plausible email address. Uniqueness is decided on [`Email::normalized`]
/// (the whole address lower-cased), so `Ann@Example.org` and `ann@example.org` are one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid email address")]
pub struct InvalidEmail;

impl Email {
    pub fn parse(input: &str) -> Result<Self, InvalidEmail> {
        let s = input.trim();
        let (local, domain) = s.rsplit_once('@').ok_or(InvalidEmail)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && s.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
            && !domain.contains('@');
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidEmail) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }

    /// The part after the last `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes() {
        let e = Email::parse("  Ann.Lee@Example.ORG ").unwrap();
        assert_eq!(e.as_str(), "Ann.Lee@Example.ORG");
        assert_eq!(e.normalized(), "ann.lee@example.org");
        for bad in ["", "ann", "@example.org", "ann@", "ann@localhost", "a b@example.org", "ann@.org", "<a>@x.org"] {
            assert_eq!(Email::parse(bad), Err(InvalidEmail), "{bad:?}");
        }
    }
}
