//! Configuration layering, `*_FILE` secrets, unknown keys and redaction.

use postern_server::config::{self, ConfigError, LogFormat, Sources};
use std::io::Write;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_then_file_then_environment() {
    let defaults = config::load(&Sources::default()).unwrap();
    assert_eq!(defaults.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(defaults.data_dir, std::path::PathBuf::from("./postern-data"));
    assert_eq!(defaults.database_url().expose(), "sqlite://./postern-data/postern.db");
    assert_eq!(defaults.issuer_for(defaults.server.listen), "http://127.0.0.1:8080");

    let toml = file(
        "data_dir = \"/srv/postern\"\n[server]\nlisten = \"127.0.0.1:9000\"\nshutdown_grace_secs = 3\n[log]\nformat = \"json\"\n",
    );
    let from_file = config::load(&Sources { file: Some(toml.path()), env: vec![] }).unwrap();
    assert_eq!(from_file.server.listen.port(), 9000);
    assert_eq!(from_file.server.shutdown_grace_secs, 3);
    assert_eq!(from_file.log.format, LogFormat::Json);
    assert_eq!(from_file.database_url().expose(), "sqlite:///srv/postern/postern.db");

    let layered = config::load(&Sources {
        file: Some(toml.path()),
        env: env(&[
            ("POSTERN_SERVER__LISTEN", "127.0.0.1:9100"),
            ("POSTERN_LOG_FORMAT", "pretty"),
            ("POSTERN_DATABASE_URL", "postgres://postern:hunter2@db.internal/postern"),
            ("POSTERN_PASSWORD__MEMORY_KIB", "65536"),
            ("POSTERN_CONFIG", "ignored: names the file"),
            ("HOME", "/not/ours"),
        ]),
    })
    .unwrap();
    assert_eq!(layered.server.listen.port(), 9100, "environment beats the file");
    assert_eq!(layered.server.shutdown_grace_secs, 3, "the file beats the defaults");
    assert_eq!(layered.log.format, LogFormat::Pretty);
    assert_eq!(layered.password.memory_kib, 65536);
    assert_eq!(layered.database_url().expose(), "postgres://postern:hunter2@db.internal/postern");
}

#[test]
fn secrets_can_come_from_files() {
    let key = file("c2VjcmV0IGtleSBtYXRlcmlhbCB0aGF0IGlzIDMyIGI=\n");
    let password = file("s3cret password\n");
    let url = file("postgres://u:pw@localhost/db\n");
    let c = config::load(&Sources {
        file: None,
        env: env(&[
            ("POSTERN_SECRET_KEY_FILE", key.path().to_str().unwrap()),
            ("POSTERN_ADMIN_EMAIL", "ops@example.org"),
            ("POSTERN_ADMIN_PASSWORD_FILE", password.path().to_str().unwrap()),
            ("POSTERN_DATABASE__URL_FILE", url.path().to_str().unwrap()),
        ]),
    })
    .unwrap();
    assert_eq!(c.secret_key.as_ref().unwrap().expose(), "c2VjcmV0IGtleSBtYXRlcmlhbCB0aGF0IGlzIDMyIGI=");
    assert_eq!(c.admin.password.as_ref().unwrap().expose(), "s3cret password", "one trailing newline is dropped");
    assert_eq!(c.database_url().expose(), "postgres://u:pw@localhost/db");

    let both = config::load(&Sources {
        file: None,
        env: env(&[("POSTERN_SECRET_KEY", "x"), ("POSTERN_SECRET_KEY_FILE", key.path().to_str().unwrap())]),
    });
    assert_eq!(both.unwrap_err().key, "secret_key_file");
    let missing = config::load(&Sources { file: None, env: env(&[("POSTERN_SECRET_KEY_FILE", "/no/such/file")]) });
    let e = missing.unwrap_err();
    assert_eq!(e.key, "secret_key_file");
    assert!(e.message.contains("/no/such/file"));
}

fn error_of(toml: Option<&str>, vars: &[(&str, &str)]) -> ConfigError {
    let f = toml.map(file);
    config::load(&Sources { file: f.as_ref().map(|f| f.path()), env: env(vars) }).unwrap_err()
}

#[test]
fn unknown_keys_and_malformed_values_name_the_key() {
    assert_eq!(error_of(Some("[server]\nlisten_addr = \"x\"\n"), &[]).key, "server.listen_addr");
    let e = error_of(Some("[server]\nlisten_addr = \"x\"\n"), &[]);
    assert!(e.message.contains("listen_addr"), "{e}");
    assert_eq!(error_of(Some("colour = \"blue\"\n"), &[]).key, "colour");
    assert_eq!(error_of(None, &[("POSTERN_DATABSE_URL", "x")]).key, "POSTERN_DATABSE_URL");
    assert_eq!(error_of(Some("[server]\nlisten = \"not an address\"\n"), &[]).key, "server.listen");
    assert!(
        error_of(None, &[("POSTERN_SERVER__SHUTDOWN_GRACE_SECS", "soon")])
            .key
            .starts_with("POSTERN_SERVER__SHUTDOWN_GRACE_SECS")
    );
    assert_eq!(error_of(None, &[("POSTERN_LOG__FORMAT", "xml")]).key, "log.format");
    assert_eq!(error_of(None, &[("POSTERN_ISSUER", "http://auth.example.org")]).key, "issuer");
    assert_eq!(error_of(None, &[("POSTERN_DATABASE_URL", "mysql://x")]).key, "database.url");
    assert_eq!(error_of(None, &[("POSTERN_PASSWORD__ITERATIONS", "0")]).key, "password");
    assert_eq!(error_of(None, &[("POSTERN_ADMIN_EMAIL", "a@b.org")]).key, "admin");
    let broken = error_of(Some("[server\n"), &[]);
    assert!(broken.message.contains("line 1") || broken.message.contains("TOML"), "{broken}");
}

#[test]
fn show_redacts_every_secret() {
    let c = config::load(&Sources {
        file: None,
        env: env(&[
            ("POSTERN_SECRET_KEY", "c2VjcmV0IGtleSBtYXRlcmlhbCB0aGF0IGlzIDMyIGI="),
            ("POSTERN_DATABASE_URL", "postgres://postern:hunter2@db.internal:5432/postern?sslmode=require"),
            ("POSTERN_ADMIN_EMAIL", "ops@example.org"),
            ("POSTERN_ADMIN_PASSWORD", "correct horse"),
        ]),
    })
    .unwrap();
    let shown = c.to_redacted_toml();
    for secret in ["c2VjcmV0IGtleSBtYXRlcmlhbCB0aGF0IGlzIDMyIGI=", "hunter2", "correct horse"] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        assert!(!format!("{c:?}").contains(secret), "{secret} in Debug");
    }
    assert!(shown.contains("postgres://postern:[redacted]@db.internal:5432/postern?sslmode=require"), "{shown}");
    assert!(shown.contains("secret_key = \"[redacted]\""));
    assert!(shown.contains("ops@example.org"), "non-secrets are shown");
    // What `config show` prints is itself a valid configuration file (minus the redactions).
    assert!(toml::from_str::<toml::Table>(&shown).is_ok());
}

#[test]
fn trusted_proxies_from_the_file_or_a_comma_separated_variable() {
    let toml = file("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"fd00::/8\"]\n");
    let from_file = config::load(&Sources { file: Some(toml.path()), env: vec![] }).unwrap();
    let shown: Vec<String> = from_file.server.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["10.0.0.0/8", "fd00::/8"]);
    let from_env = config::load(&Sources {
        file: None,
        env: env(&[("POSTERN_SERVER__TRUSTED_PROXIES", "192.0.2.1, 10.1.0.0/16")]),
    })
    .unwrap();
    let shown: Vec<String> = from_env.server.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["192.0.2.1/32", "10.1.0.0/16"]);
    let bad = config::load(&Sources { file: None, env: env(&[("POSTERN_SERVER__TRUSTED_PROXIES", "10.0.0.0/40")]) });
    let message = bad.unwrap_err().to_string();
    assert!(message.contains("trusted_proxies") && message.contains("10.0.0.0/40"), "{message}");
    assert!(config::load(&Sources::default()).unwrap().server.trusted_proxies.is_empty(), "none by default");
}
