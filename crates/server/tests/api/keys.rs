//! Signing keys: stable across restarts, rotation, retirement, encryption at rest, the KEK.

use crate::helpers::*;
use postern_core::kek::KeyEncryptionKey;
use postern_core::signing::Algorithm;
use postern_server::{StartError, kek, keyring, maintenance};
use postern_store::{NewClient, Store};

async fn published_kids(app: &TestApp) -> Vec<String> {
    let set: postern_proto::JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let mut kids: Vec<String> = set.keys.into_iter().map(|k| k.kid).collect();
    kids.sort();
    kids
}

both!(restart_on_the_same_data_keeps_the_key_ids, |kind| async move {
    let Some((app, db)) = spawn(kind).await else { return };
    let before = published_kids(&app).await;
    assert_eq!(before.len(), 3, "one key per algorithm");
    app.stop().await.unwrap();
    let again = start(test_config(&db)).await.unwrap();
    assert_eq!(published_kids(&again).await, before);
});

both!(rotation_publishes_old_and_new_until_old_tokens_expire, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    let before = app.state.keys.keys();
    let old_eddsa = before.active[&Algorithm::EdDSA].kid.clone();
    let (kek, _) = kek::resolve(&app.state.config, store.backend()).unwrap();
    // A client whose access tokens live two hours, longer than any default lifetime: the old
    // key must stay published as long as such a token can live.
    let (long_lived, _) = register(
        &app,
        postern_core::client::ClientType::Confidential,
        &[postern_core::client::GrantType::ClientCredentials],
        "",
        postern_core::client::AccessTokenFormat::Jwt,
    )
    .await;
    let mut c = store.client_by_id(&long_lived).await.unwrap().unwrap().settings();
    c.access_token_ttl = 7200;
    store.update_client(&long_lived, &c, NOW).await.unwrap();
    let publish = app.state.config.tokens.key_publish_secs(store.longest_access_token_ttl().await.unwrap());
    assert_eq!(publish, 7200 + 60);
    let new_kid = keyring::rotate(store, &kek, Algorithm::EdDSA, NOW, publish).await.unwrap();
    assert_ne!(new_kid, old_eddsa);

    // A running server picks the rotation up on its next maintenance pass.
    maintenance::run_once(&app.state).await;
    let kids = published_kids(&app).await;
    assert_eq!(kids.len(), 4, "old and new EdDSA keys, the RS256 and the ES256 key: {kids:?}");
    assert!(kids.contains(&old_eddsa) && kids.contains(&new_kid));
    assert_eq!(app.state.keys.keys().active[&Algorithm::EdDSA].kid, new_kid, "the new key signs");

    // Once every token the old key signed has expired, it leaves the JWKS and the database.
    app.clock.advance(publish + 1);
    maintenance::run_once(&app.state).await;
    let kids = published_kids(&app).await;
    assert_eq!(kids.len(), 3);
    assert!(!kids.contains(&old_eddsa));
    assert_eq!(store.all_keys().await.unwrap().len(), 3);
});

/// Everything the database holds, as bytes: the SQLite files, or every PostgreSQL row as text
/// (`bytea` shows as hex there).
pub async fn database_bytes(store: &Store, url: &str, dir: &std::path::Path) -> Vec<u8> {
    if url.starts_with("sqlite") {
        let mut all = Vec::new();
        for name in ["postern.db", "postern.db-wal"] {
            if let Ok(bytes) = std::fs::read(dir.join(name)) {
                all.extend(bytes);
            }
        }
        assert!(!all.is_empty());
        all
    } else {
        use sqlx::Connection;
        let _ = store;
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        let mut all = Vec::new();
        // Every table there is, so that a new one cannot be forgotten here.
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        assert!(tables.iter().any(|t| t == "email_links"), "{tables:?}");
        for table in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT CAST(t.* AS TEXT) FROM {table} t"))
                .fetch_all(&mut c)
                .await
                .unwrap();
            for r in rows {
                all.extend(r.into_bytes());
            }
        }
        all
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

both!(signing_keys_and_client_secrets_are_not_stored_in_clear, |kind| async move {
    let Some((app, db)) = spawn(kind).await else { return };
    let store = &app.state.store;
    let secret = postern_core::secret::BearerSecret::generate(&mut postern_core::system::os_rng());
    let client = NewClient {
        client_id: "svc".into(),
        name: "Service".into(),
        client_type: postern_core::client::ClientType::Confidential,
        secret_hash: Some(secret.hash()),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        policy: Default::default(),
        grant_types: vec![postern_core::client::GrantType::ClientCredentials],
        allowed_scopes: vec![],
        first_party: false,
        access_token_format: postern_core::client::AccessTokenFormat::Jwt,
        access_token_ttl: 600,
        refresh_token_ttl: 3600,
        registered_by: Default::default(),
    };
    store.create_client(&client, NOW).await.unwrap();

    let bytes = database_bytes(store, &db.url, db.dir.path()).await;
    let keys = app.state.keys.keys();
    for active in keys.active.values() {
        let private = active.key.to_bytes().unwrap();
        // The raw private key, and its hex form (how PostgreSQL prints bytea), never appear.
        assert!(!contains(&bytes, &private), "private {} key in clear", active.kid);
        assert!(!contains(&bytes, hex(&private).as_bytes()));
        // A 32-byte window is enough to catch a partial leak of the RSA key too.
        assert!(!contains(&bytes, &private[private.len() - 32..]));
    }
    assert!(!contains(&bytes, secret.expose().as_bytes()), "client secret in clear");
    let stored = store.client_by_id("svc").await.unwrap().unwrap();
    assert_eq!(stored.secret_hash.as_deref(), Some(secret.hash().as_bytes()), "only the SHA-256 is kept");
});

both!(a_different_key_encryption_key_is_refused, |kind| async move {
    let Some((app, db)) = spawn(kind).await else { return };
    app.stop().await.unwrap();
    let mut config = test_config(&db);
    let other = KeyEncryptionKey::generate(&mut postern_core::system::os_rng());
    if db.url.starts_with("sqlite") {
        std::fs::write(db.dir.path().join("secret.key"), other.to_text().as_bytes()).unwrap();
    } else {
        config.secret_key = Some(postern_server::config::Secret::new(other.to_text().as_str()));
    }
    match start(config).await {
        Err(StartError::Kek(kek::KekError::Mismatch)) => {}
        Err(e) => panic!("expected a KEK mismatch, got {e}"),
        Ok(_) => panic!("started with the wrong key-encryption key"),
    }
});

#[tokio::test]
async fn postgres_without_a_key_encryption_key_is_refused_with_a_clear_message() {
    let Some(db) = postern_testkit::postgres().await else {
        return;
    };
    let mut config = test_config(&db);
    config.secret_key = None;
    match start(config).await {
        Err(e @ StartError::Kek(kek::KekError::MissingForPostgres)) => {
            let message = e.to_string();
            assert!(message.contains("POSTERN_SECRET_KEY") && message.contains("every node"), "{message}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("started on PostgreSQL without a key-encryption key"),
    }
}

#[tokio::test]
async fn the_generated_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let Some((_app, db)) = spawn(postern_testkit::Kind::Sqlite).await else {
        return;
    };
    let meta = std::fs::metadata(db.dir.path().join("secret.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}
