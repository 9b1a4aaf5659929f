//! No bearer secret is stored in clear: after a full sign-in, code exchange and refresh, none of
//! the codes, tokens or session tokens appear in the database's bytes.

use crate::helpers::*;
use crate::helpers::{VERIFIER, exchange, sign_in_and_allow, urlencode};
use crate::keys::{contains, database_bytes, hex};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_core::secret::{BearerSecret, TokenHash, stored_hash};
use serde_json::Value;

both!(no_bearer_secret_is_stored_in_clear, |kind| async move {
    let Some((app, db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let (id, secret) = register(
        &app,
        ClientType::Confidential,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid offline_access",
        AccessTokenFormat::Opaque,
    )
    .await;
    let rp = crate::helpers::Rp { id, secret: secret.clone(), redirect: "https://app.example.org/cb".into() };
    let challenge = postern_core::pkce::s256(VERIFIER);
    let url = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20offline_access&code_challenge={challenge}&code_challenge_method=S256",
        rp.id,
        urlencode(&rp.redirect)
    );
    let mut v = visitor(&app);
    // A pending request handle, kept before sign-in.
    let first = v.get(&url).await;
    let handle = first.headers()["location"].to_str().unwrap().split("request=").nth(1).unwrap().to_owned();
    let params = sign_in_and_allow(&mut v, &url, "ann@example.org", "correct horse").await;
    let code = params["code"].clone();
    let session = v.cookies["postern_session"].clone();
    let tokens: Value = exchange(&app, &rp, &code, VERIFIER).await.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", rp.id.as_str()),
        ("client_secret", secret.as_deref().unwrap()),
    ];
    let rotated: Value = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let successor = rotated["refresh_token"].as_str().unwrap().to_owned();
    let successor_access = rotated["access_token"].as_str().unwrap().to_owned();

    let bytes = database_bytes(&app.state.store, &db.url, db.dir.path()).await;
    assert!(!contains(&bytes, handle.as_bytes()), "request handle stored in clear");
    for (what, value) in [
        ("authorization code", code.as_str()),
        ("session token", session.as_str()),
        ("opaque access token", access.as_str()),
        ("refresh token", refresh.as_str()),
        ("rotated refresh token", successor.as_str()),
        ("rotated access token", successor_access.as_str()),
        ("client secret", secret.as_deref().unwrap()),
    ] {
        assert!(!contains(&bytes, value.as_bytes()), "{what} stored in clear");
        assert!(!contains(&bytes, hex(value.as_bytes()).as_bytes()), "{what} stored in clear (hex)");
        // What is stored is its hash (`stored_hash`: SHA-256, after the time for a time-ordered
        // secret; raw in SQLite's file, hex in PostgreSQL's text form).
        let hash = stored_hash(value);
        let stored = contains(&bytes, hash.as_bytes()) || contains(&bytes, hex(hash.as_bytes()).as_bytes());
        assert!(stored, "{what}: its hash is what is stored");
    }
});

both!(what_a_copy_of_the_database_gives_away_is_bounded, |kind| async move {
    let Some((app, db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    // User codes are hashed under a key derived from the KEK: the plain SHA-256 of a code,
    // which anyone could compute for all 20^8 codes, is not what is stored.
    let (device_client, _) =
        register(&app, ClientType::Public, &[GrantType::DeviceCode], "openid", AccessTokenFormat::Jwt).await;
    let d = crate::device::start_device(&app, &device_client, "openid").await;
    let code = postern_core::device::UserCode::parse(d["user_code"].as_str().unwrap()).unwrap();
    let bytes = database_bytes(&app.state.store, &db.url, db.dir.path()).await;
    let plain = TokenHash::of(code.as_str());
    assert!(!contains(&bytes, plain.as_bytes()) && !contains(&bytes, hex(plain.as_bytes()).as_bytes()));
    let keyed = app.state.keys.user_code_hash(&code);
    assert!(contains(&bytes, keyed.as_bytes()) || contains(&bytes, hex(keyed.as_bytes()).as_bytes()));

    // A rotated refresh token's successor pair is sealed with a key derived from that token:
    // the KEK, which sits beside the database, cannot open it.
    let rp = crate::refresh::offline_rp(&app, AccessTokenFormat::Jwt).await;
    let secret = rp.secret.clone();
    let tokens = crate::refresh::tokens_for(&app, &rp, "openid offline_access").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", rp.id.as_str()),
        ("client_secret", secret.as_deref().unwrap()),
    ];
    let rotated: Value = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let record = app.state.store.refresh_token(&stored_hash(&refresh)).await.unwrap().unwrap();
    let sealed = record.successor_sealed.expect("kept for the grace window");
    let aad = postern_server::grants::refresh::successor_aad(&stored_hash(&refresh));
    assert!(app.state.keys.kek().open(&sealed, &aad).is_err(), "the KEK cannot open a successor");
    let opened = postern_server::grants::refresh::successor_key(&refresh).open(&sealed, &aad).unwrap();
    let pair: Value = serde_json::from_slice(&opened).unwrap();
    assert_eq!(pair["refresh_token"], rotated["refresh_token"], "the old token opens it");
    // And presenting the old token again within the window still gets the same pair.
    let again: Value = app.http.post(app.url("/oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    assert_eq!(again["refresh_token"], rotated["refresh_token"]);
});

/// Points a stored row at another hash, as a test's own connection: a row written by a Postern
/// from before time-ordered secrets, whose hash was the plain SHA-256 of a 43-character secret.
async fn rekey(kind: postern_testkit::Kind, url: &str, table: &str, from: &TokenHash, to: &TokenHash) {
    use sqlx::Connection;
    let sql = format!("UPDATE {table} SET token_hash = $1 WHERE token_hash = $2");
    let (to, from) = (to.as_bytes().to_vec(), from.as_bytes().to_vec());
    let rows = match kind {
        postern_testkit::Kind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query(&sql).bind(to).bind(from).execute(&mut c).await.unwrap().rows_affected()
        }
        postern_testkit::Kind::Postgres => {
            let mut c = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(&sql).bind(to).bind(from).execute(&mut c).await.unwrap().rows_affected()
        }
    };
    assert_eq!(rows, 1, "{table}");
}

both!(secrets_made_before_time_ordering_still_work, |kind| async move {
    use crate::refresh::{introspect_as, offline_rp, refresh, tokens_for};
    let Some((app, _db)) = spawn(kind).await else { return };
    create_user(&app, "ann@example.org", "correct horse").await;
    let rp = offline_rp(&app, AccessTokenFormat::Opaque).await;
    let tokens = tokens_for(&app, &rp, "openid offline_access read").await;
    let (refresh_token, access) = (tokens["refresh_token"].as_str().unwrap(), tokens["access_token"].as_str().unwrap());
    // Made now, so time-ordered: the stored hash starts with the time, not with the SHA-256.
    for token in [refresh_token, access] {
        assert_eq!(token.len(), postern_core::secret::ORDERED_LEN);
        assert_ne!(stored_hash(token), TokenHash::of(token));
    }

    // The same rows as an older Postern stored them: 43-character secrets, plain SHA-256.
    let mut rng = postern_core::system::os_rng();
    let (old_refresh, old_access) = (BearerSecret::generate(&mut rng), BearerSecret::generate(&mut rng));
    let url = app.state.config.database_url().expose().to_owned();
    rekey(kind, &url, "refresh_tokens", &stored_hash(refresh_token), &TokenHash::of(old_refresh.expose())).await;
    rekey(kind, &url, "access_tokens", &stored_hash(access), &TokenHash::of(old_access.expose())).await;

    assert_eq!(introspect_as(&app, &rp, old_access.expose()).await["active"], true, "an old access token");
    let r = app.http.get(app.url("/userinfo")).bearer_auth(old_access.expose()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(introspect_as(&app, &rp, access).await["active"], false, "the row is the old token's now");
    let (status, rotated) = refresh(&app, &rp, old_refresh.expose(), None).await;
    assert_eq!(status, 200, "an old refresh token rotates: {rotated}");
    assert_eq!(rotated["refresh_token"].as_str().unwrap().len(), postern_core::secret::ORDERED_LEN, "into a new one");
    // A retry with the old token within the grace window gets the same pair back.
    let (status, again) = refresh(&app, &rp, old_refresh.expose(), None).await;
    assert_eq!((status, &again["refresh_token"]), (200, &rotated["refresh_token"]));
    let (status, next) = refresh(&app, &rp, rotated["refresh_token"].as_str().unwrap(), None).await;
    assert_eq!(status, 200, "{next}");
});
