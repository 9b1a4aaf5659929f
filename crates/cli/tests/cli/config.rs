//! Configuration errors exit with code 2 and name the key; `config show` redacts secrets.

use crate::Postern;

#[test]
fn unknown_keys_exit_2_naming_the_key() {
    let mut p = Postern::sqlite();
    p.env.push(("POSTERN_SERVER__LISTN".into(), "127.0.0.1:1".into()));
    let stderr = p.fails(&["config", "show"], None, 2);
    assert!(stderr.contains("POSTERN_SERVER__LISTN"), "{stderr}");

    let p = Postern::sqlite();
    let file = p.db.dir.path().join("postern.toml");
    std::fs::write(&file, "[tokens]\naccess_token_lifetime = 60\n").unwrap();
    let stderr = p.fails(&["--config", file.to_str().unwrap(), "config", "show"], None, 2);
    assert!(stderr.contains("tokens.access_token_lifetime"), "{stderr}");

    std::fs::write(&file, "[server]\nlisten = 8080\n").unwrap();
    let stderr = p.fails(&["--config", file.to_str().unwrap(), "serve"], None, 2);
    assert!(stderr.contains("server.listen"), "{stderr}");
}

#[test]
fn config_show_prints_the_effective_configuration_with_secrets_redacted() {
    let mut p = Postern::sqlite();
    let key_file = p.db.dir.path().join("kek");
    std::fs::write(&key_file, format!("{}\n", "cd".repeat(32))).unwrap();
    let file = p.db.dir.path().join("postern.toml");
    std::fs::write(&file, "issuer = \"https://auth.example.org\"\n[tokens]\naccess_token_ttl_secs = 120\n").unwrap();
    p.env.push(("POSTERN_SECRET_KEY_FILE".into(), key_file.display().to_string()));
    p.env.push(("POSTERN_DATABASE_URL".into(), "postgres://postern:hunter2@db.internal/postern".into()));
    p.env.push(("POSTERN_CONFIG".into(), file.display().to_string()));
    let out = p.run(&["config", "show"], None);
    assert!(out.status.success());
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(!shown.contains("hunter2") && !shown.contains(&"cd".repeat(32)), "{shown}");
    assert!(shown.contains("issuer = \"https://auth.example.org\""));
    assert!(shown.contains("access_token_ttl_secs = 120"));
    assert!(shown.contains("url = \"postgres://postern:[redacted]@db.internal/postern\""), "{shown}");
    assert!(shown.contains("secret_key = \"[redacted]\""));
}

#[test]
fn help_reads_well() {
    let p = Postern::sqlite();
    let out = p.run(&["--help"], None);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for command in ["serve", "migrate", "config", "admin"] {
        assert!(help.contains(command), "{command} missing from --help");
    }
    let out = p.run(&["admin", "client", "create", "--help"], None);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--redirect-uri") && help.contains("--access-token-format"));
}
