//! Layering: defaults → TOML file → `POSTERN_*` environment → `*_file` secrets → checks.
//!
//! The defaults, serialized, are the map of every key there is. A nested key `a.b` is set by
//! `POSTERN_A__B` (the `__` form) or `POSTERN_A_B` (the short form, for example
//! `POSTERN_DATABASE_URL`); an environment value is read as the default's type (number, bool
//! or string). A `POSTERN_` variable that names no key is refused, like an unknown TOML key.

use super::Config;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// The environment variable naming the config file; the only `POSTERN_` variable that is not
/// a configuration key.
pub const CONFIG_ENV: &str = "POSTERN_CONFIG";

/// What a configuration is built from. The environment is passed in, not read here, so tests
/// need not touch the process environment.
#[derive(Debug, Default)]
pub struct Sources<'a> {
    pub file: Option<&'a Path>,
    pub env: Vec<(String, String)>,
}

impl Sources<'_> {
    /// The `POSTERN_*` variables of this process.
    pub fn process_env() -> Vec<(String, String)> {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().unwrap_or_default())))
            .filter(|(k, _)| k.starts_with("POSTERN_"))
            .collect()
    }
}

/// A configuration mistake, naming the key (or variable, or file) at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), message: message.into() }
}

pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
    let defaults = serde_json::to_value(Config::default()).map_err(|e| err("(defaults)", e.to_string()))?;
    let mut merged = defaults.clone();

    if let Some(path) = sources.file {
        let text =
            std::fs::read_to_string(path).map_err(|e| err(path.display().to_string(), format!("cannot read: {e}")))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| err(path.display().to_string(), e.to_string()))?;
        let value = serde_json::to_value(table).map_err(|e| err(path.display().to_string(), e.to_string()))?;
        merge(&mut merged, value);
    }

    let names = env_names(&defaults);
    let mut env: Vec<_> = sources.env.iter().filter(|(k, _)| k.starts_with("POSTERN_") && k != CONFIG_ENV).collect();
    env.sort();
    for (name, raw) in env {
        let Some(path) = names.get(name.as_str()) else {
            return Err(err(name.clone(), "unknown configuration variable (see `postern config show` for the keys)"));
        };
        let template = lookup(&defaults, path);
        let value = typed(template, raw)
            .ok_or_else(|| err(format!("{name} ({})", path.join(".")), format!("invalid value {raw:?}")))?;
        set(&mut merged, path, value);
    }

    let mut config: Config = serde_path_to_error::deserialize(merged).map_err(|e| {
        let path = e.path().to_string();
        err(if path == "." { "(top level)".to_owned() } else { path }, e.into_inner().to_string())
    })?;
    resolve_secret_files(&mut config)?;
    check(&config)?;
    Ok(config)
}

/// Deep merge: objects key by key, anything else replaced.
fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Every leaf key of the defaults, by its environment variable names.
fn env_names(defaults: &Value) -> BTreeMap<String, Vec<String>> {
    fn walk(v: &Value, path: &mut Vec<String>, out: &mut BTreeMap<String, Vec<String>>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {
                let upper: Vec<String> = path.iter().map(|p| p.to_ascii_uppercase()).collect();
                out.insert(format!("POSTERN_{}", upper.join("__")), path.clone());
                out.entry(format!("POSTERN_{}", upper.join("_"))).or_insert_with(|| path.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(defaults, &mut Vec::new(), &mut out);
    out
}

fn lookup<'v>(v: &'v Value, path: &[String]) -> &'v Value {
    path.iter().fold(v, |v, k| v.get(k).unwrap_or(&Value::Null))
}

fn set(v: &mut Value, path: &[String], value: Value) {
    let mut slot = v;
    for k in path {
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(map) = slot else { return };
        slot = map.entry(k.clone()).or_insert(Value::Null);
    }
    *slot = value;
}

/// Reads an environment string as the type of the key's default.
fn typed(template: &Value, raw: &str) -> Option<Value> {
    match template {
        Value::Number(n) if n.is_f64() => {
            raw.trim().parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Value::Number)
        }
        Value::Number(_) => raw.trim().parse::<i64>().ok().map(Value::from),
        Value::Bool(_) => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Some(Value::Bool(false)),
            _ => None,
        },
        // Lists: comma-separated (`10.0.0.0/8, 192.0.2.1`).
        Value::Array(_) => Some(Value::Array(
            raw.split(',').map(str::trim).filter(|v| !v.is_empty()).map(|v| Value::String(v.to_owned())).collect(),
        )),
        _ => Some(Value::String(raw.to_owned())),
    }
}

fn read_secret_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| err(key, format!("cannot read {}: {e}", path.display())))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn resolve_secret_files(c: &mut Config) -> Result<(), ConfigError> {
    use super::{DatabaseUrl, Secret};
    if let Some(path) = c.secret_key_file.take() {
        if c.secret_key.is_some() {
            return Err(err("secret_key_file", "set secret_key or secret_key_file, not both"));
        }
        c.secret_key = Some(Secret::new(read_secret_file("secret_key_file", &path)?));
    }
    if let Some(path) = c.email.smtp_url_file.take() {
        if c.email.smtp_url.is_some() {
            return Err(err("email.smtp_url_file", "set email.smtp_url or email.smtp_url_file, not both"));
        }
        c.email.smtp_url = Some(Secret::new(read_secret_file("email.smtp_url_file", &path)?));
    }
    if let Some(path) = c.database.url_file.take() {
        if c.database.url.is_some() {
            return Err(err("database.url_file", "set database.url or database.url_file, not both"));
        }
        c.database.url = Some(DatabaseUrl::new(read_secret_file("database.url_file", &path)?));
    }
    if let Some(path) = c.admin.password_file.take() {
        if c.admin.password.is_some() {
            return Err(err("admin.password_file", "set admin.password or admin.password_file, not both"));
        }
        c.admin.password = Some(Secret::new(read_secret_file("admin.password_file", &path)?));
    }
    Ok(())
}

fn check(c: &Config) -> Result<(), ConfigError> {
    if let Some(issuer) = &c.issuer {
        check_issuer(issuer).map_err(|m| err("issuer", m))?;
    }
    let url = c.database_url();
    if postern_store::Backend::of_url(url.expose()).is_none() {
        return Err(err("database.url", "expected sqlite://PATH or postgres://…"));
    }
    c.password.validate().map_err(|e| err("password", e.to_string()))?;
    tracing_subscriber::EnvFilter::try_new(&c.log.level).map_err(|e| err("log.level", e.to_string()))?;
    for (key, v) in [
        ("tokens.access_token_ttl_secs", c.tokens.access_token_ttl_secs),
        ("tokens.id_token_ttl_secs", c.tokens.id_token_ttl_secs),
        ("tokens.refresh_token_ttl_secs", c.tokens.refresh_token_ttl_secs),
        ("tokens.refresh_absolute_secs", c.tokens.refresh_absolute_secs),
        ("maintenance.cleanup_batch", c.maintenance.cleanup_batch),
        ("device.expires_secs", c.device.expires_secs),
        ("device.interval_secs", c.device.interval_secs),
        ("api_keys.default_ttl_secs", c.api_keys.default_ttl_secs),
        ("api_keys.max_ttl_secs", c.api_keys.max_ttl_secs),
    ] {
        if v <= 0 {
            return Err(err(key, "must be positive"));
        }
    }
    for (key, v) in [
        ("maintenance.interval_secs", c.maintenance.interval_secs),
        ("tokens.revocation_sync_secs", c.tokens.revocation_sync_secs),
        ("server.request_timeout_secs", c.server.request_timeout_secs),
        ("server.header_read_timeout_secs", c.server.header_read_timeout_secs),
        ("api_keys.last_used_flush_secs", c.api_keys.last_used_flush_secs),
    ] {
        if v == 0 {
            return Err(err(key, "must be positive"));
        }
    }
    if c.server.max_connections == 0 {
        return Err(err("server.max_connections", "must be positive"));
    }
    if c.api_keys.default_ttl_secs > c.api_keys.max_ttl_secs {
        return Err(err("api_keys.default_ttl_secs", "must not exceed api_keys.max_ttl_secs"));
    }
    if c.admin.email.is_some() != c.admin.password.is_some() {
        return Err(err("admin", "set both admin.email and admin.password (or neither)"));
    }
    Ok(())
}

/// RFC 8414 §2: the issuer is an https URL without query or fragment; plain http is accepted
/// only on a loopback host, for development.
pub fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("not a URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("must use https (plain http is only for loopback hosts)".into()),
        _ => Err("must be an https URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_env_names_never_collide_with_a_different_key() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let names = env_names(&defaults);
        for wanted in [
            "POSTERN_DATABASE_URL",
            "POSTERN_DATABASE__URL",
            "POSTERN_LOG_FORMAT",
            "POSTERN_SECRET_KEY_FILE",
            "POSTERN_ADMIN_PASSWORD_FILE",
            "POSTERN_DATA_DIR",
        ] {
            assert!(names.contains_key(wanted), "{wanted}");
        }
        // The short form of one key is never the `__` form of another.
        let mut short_forms = BTreeMap::new();
        for (name, path) in &names {
            if let Some(other) = short_forms.insert(name.replace("__", "_"), path.clone()) {
                assert_eq!(&other, path, "{name} is ambiguous");
            }
        }
    }

    #[test]
    fn issuer_rules() {
        assert!(check_issuer("https://auth.example.org").is_ok());
        assert!(check_issuer("http://127.0.0.1:8080").is_ok());
        assert!(check_issuer("http://localhost:8080").is_ok());
        assert!(check_issuer("http://auth.example.org").is_err());
        assert!(check_issuer("https://auth.example.org/?x=1").is_err());
        assert!(check_issuer("auth.example.org").is_err());
    }
}
