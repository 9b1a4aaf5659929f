//! The storage test suite. Every test runs twice, on SQLite and on PostgreSQL, each time on a
//! fresh database (see `postern-testkit`). One test binary for the crate, on purpose.
// Tests fail by panicking: unwrap, expect and panic are how they say what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use postern_core::client::{AccessTokenFormat, ClientType, GrantType, RedirectUri};
use postern_core::email::Email;
use postern_core::scope::Scope;
use postern_core::secret::TokenHash;
use postern_store::keys::NewKey;
use postern_store::setup::SetupOutcome;
use postern_store::{NewAuditEvent, NewClient, NewUser, PoolOptions, Store, StoreError};
use postern_testkit::Kind;

const NOW: i64 = 1_800_000_000;

/// Declares a test that runs on both backends: `both!(name, |store, db| async move { … })`.
macro_rules! both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::run(Kind::Sqlite, $body).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::run(Kind::Postgres, $body).await
            }
        }
    };
}

async fn run<F, Fut>(kind: Kind, body: F)
where
    F: FnOnce(Store, String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = postern_testkit::fresh(kind).await else {
        return;
    };
    let store = Store::connect(&db.url, PoolOptions::default()).await.unwrap();
    let report = store.migrate(NOW).await.unwrap();
    assert_eq!(report.applied, (1..=store.known_schema_version()).collect::<Vec<_>>());
    body(store, db.url.clone()).await;
    drop(db);
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        id: format!("id-{email}").into(),
        email: Email::parse(email).unwrap(),
        email_verified: false,
        password_hash: Some("$argon2id$fake".into()),
        display_name: Some("Ann".into()),
        is_admin: false,
    }
}

fn new_client(id: &str) -> NewClient {
    NewClient {
        client_id: id.into(),
        name: "Billing <script>".into(),
        client_type: ClientType::Confidential,
        secret_hash: Some(TokenHash::of("s3cret")),
        redirect_uris: vec![RedirectUri::parse("https://app.example.org/cb").unwrap()],
        post_logout_redirect_uris: vec![],
        policy: Default::default(),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        allowed_scopes: vec![Scope::parse("openid").unwrap(), Scope::parse("project:*").unwrap()],
        first_party: false,
        access_token_format: AccessTokenFormat::Jwt,
        access_token_ttl: 600,
        refresh_token_ttl: 86_400,
        registered_by: Default::default(),
    }
}

fn new_key(kid: &str, alg: &'static str) -> NewKey {
    NewKey { kid: kid.into(), alg, public_jwk: format!(r#"{{"kid":"{kid}"}}"#), private_key_sealed: vec![1, 2, 3] }
}

both!(every_statement_prepares, |store: Store, _db| async move {
    let failures = store.prepare_all_statements().await;
    assert!(failures.is_empty(), "statements that do not prepare: {failures:#?}");
    assert!(postern_store::sql::ALL.len() > 20);
});

both!(migrations_are_idempotent_and_refuse_a_newer_schema, |store: Store, url: String| async move {
    let again = store.migrate(NOW + 1).await.unwrap();
    assert!(again.applied.is_empty());
    assert_eq!(again.version, store.known_schema_version());
    // A newer binary has migrated this database further.
    let raw = Store::connect(&url, PoolOptions::default()).await.unwrap();
    raw.record_audit(&NewAuditEvent { actor: "t", action: "t", outcome: "ok", ..Default::default() }, NOW)
        .await
        .unwrap();
    sqlx_exec(&url, "INSERT INTO postern_migrations (version, name, applied_at) VALUES (999, 'future', 0)").await;
    match store.migrate(NOW + 2).await {
        Err(StoreError::SchemaTooNew { database: 999, known }) => assert_eq!(known, store.known_schema_version()),
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    // Nothing stored was lost by the refused migration.
    assert_eq!(store.list_audit(0, None, 10).await.unwrap().len(), 1);
});

/// A database made by a binary that knew schema 8 (service-account names unique across the
/// instance), upgraded: its keys keep working and still go with their service account.
async fn upgrade_keeps_service_accounts_and_keys(kind: Kind) {
    let Some(db) = postern_testkit::fresh(kind).await else {
        return;
    };
    let store = Store::connect(&db.url, PoolOptions::default()).await.unwrap();
    assert_eq!(store.migrate_to(8, NOW).await.unwrap().version, 8);
    // Only what schema 8 has: a user (today's client columns came later), and keys written
    // with schema 8's columns (today's came later too).
    let ann: String = store.create_user(&new_user("ann@example.org"), NOW).await.unwrap().id.into();
    let sa = store.create_service_account("sa1", "ci", "", &ann, NOW).await.unwrap();
    let key = |id: &str, kind_text: &str, user: Option<&str>, account: Option<&str>| {
        let hash: String = TokenHash::of(id).as_bytes().iter().map(|b| format!("{b:02x}")).collect();
        let blob = if db.url.starts_with("sqlite:") { format!("X'{hash}'") } else { format!("'\\x{hash}'::bytea") };
        let text = |v: Option<&str>| v.map_or("NULL".to_owned(), |v| format!("'{v}'"));
        format!(
            "INSERT INTO api_keys (id, key_hash, public_prefix, kind, user_id, service_account_id, name, scope, created_at) \
             VALUES ('{id}', {blob}, '{id}', '{kind_text}', {}, {}, 'k', 'read', {NOW})",
            text(user),
            text(account)
        )
    };
    sqlx_exec(&db.url, &key("personal", "personal", Some(&ann), None)).await;
    sqlx_exec(&db.url, &key("robot", "service_account", None, Some(&sa.id))).await;

    let report = store.migrate(NOW + 1).await.unwrap();
    assert_eq!((report.applied.first(), report.version), (Some(&9), store.known_schema_version()));
    let robot = store.api_key_by_hash(&TokenHash::of("robot")).await.unwrap().unwrap();
    assert_eq!((robot.service_account_name.as_deref(), robot.scope.as_str()), (Some("ci"), "read"));
    assert!(store.api_key_by_hash(&TokenHash::of("personal")).await.unwrap().is_some());
    let bob = store.create_user(&new_user("bob@example.org"), NOW).await.unwrap();
    store.create_service_account("sa2", "ci", "", &bob.id, NOW).await.unwrap();
    assert!(matches!(
        store.create_service_account("sa3", "ci", "", &ann, NOW).await,
        Err(StoreError::Conflict("service account"))
    ));
    // The key still belongs to its account: deleting the account deletes it.
    store.delete_service_account(&sa.id).await.unwrap();
    assert!(store.api_key_by_hash(&TokenHash::of("robot")).await.unwrap().is_none());
    assert_eq!(store.service_accounts().await.unwrap().len(), 1);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_keeps_service_accounts_and_keys_sqlite() {
    upgrade_keeps_service_accounts_and_keys(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_keeps_service_accounts_and_keys_postgres() {
    upgrade_keeps_service_accounts_and_keys(Kind::Postgres).await;
}

async fn sqlx_exec(url: &str, statement: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(statement).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(statement).execute(&mut c).await.unwrap();
    }
}

both!(users_round_trip_with_case_insensitive_email, |store: Store, _db| async move {
    let created = store.create_user(&new_user("Ann@Example.org"), NOW).await.unwrap();
    assert_eq!(created.email, "Ann@Example.org");
    assert!(!created.disabled && !created.is_admin && !created.email_verified);
    assert_eq!(created.created_at, NOW);
    let dup = store.create_user(&NewUser { id: "other".into(), ..new_user("ann@EXAMPLE.org") }, NOW).await;
    assert!(matches!(dup, Err(StoreError::Conflict("user"))), "{dup:?}");
    let found = store.user_by_email(&Email::parse("ANN@example.ORG").unwrap()).await.unwrap().unwrap();
    assert_eq!(found, created);
    store.disable_user(&created.id, NOW + 5).await.unwrap();
    store.set_user_password(&created.id, "$argon2id$new", None, NOW + 6).await.unwrap();
    let after = store.user_by_id(&created.id).await.unwrap().unwrap();
    assert!(after.disabled);
    assert_eq!(after.password_hash.as_deref(), Some("$argon2id$new"));
    assert_eq!(after.updated_at, NOW + 6);
    assert!(matches!(store.disable_user("nobody", NOW).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.enable_user("nobody", NOW).await, Err(StoreError::NotFound(_))));
    store.enable_user(&created.id, NOW + 7).await.unwrap();
    assert!(!store.user_by_id(&created.id).await.unwrap().unwrap().disabled);
    store.create_user(&new_user("bob@example.org"), NOW).await.unwrap();
    let list = store.list_users(10, 0).await.unwrap();
    assert_eq!(list.iter().map(|u| u.email.as_str()).collect::<Vec<_>>(), ["Ann@Example.org", "bob@example.org"]);
    assert_eq!(store.list_users(10, 1).await.unwrap().len(), 1);
    assert_eq!(store.count_admins().await.unwrap(), 0);
});

both!(clients_round_trip, |store: Store, _db| async move {
    let created = store.create_client(&new_client("c1"), NOW).await.unwrap();
    assert_eq!(created.name, "Billing <script>");
    assert_eq!(created.redirect_uris[0].as_str(), "https://app.example.org/cb");
    assert_eq!(created.grant_types, [GrantType::AuthorizationCode, GrantType::RefreshToken]);
    assert_eq!(created.secret_hash.as_deref(), Some(TokenHash::of("s3cret").as_bytes()));
    assert!(matches!(store.create_client(&new_client("c1"), NOW).await, Err(StoreError::Conflict("client"))));

    let mut update = created.settings();
    update.name = "Billing".into();
    update.first_party = true;
    update.access_token_format = AccessTokenFormat::Opaque;
    let updated = store.update_client("c1", &update, NOW + 1).await.unwrap();
    assert_eq!((updated.name.as_str(), updated.first_party, updated.updated_at), ("Billing", true, NOW + 1));
    assert_eq!(updated.access_token_format, AccessTokenFormat::Opaque);

    store.set_client_secret("c1", &TokenHash::of("new"), NOW + 2).await.unwrap();
    let public =
        NewClient { client_id: "p1".into(), client_type: ClientType::Public, secret_hash: None, ..new_client("p1") };
    store.create_client(&public, NOW).await.unwrap();
    assert!(matches!(store.set_client_secret("p1", &TokenHash::of("x"), NOW).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.list_clients().await.unwrap().len(), 2);
    store.delete_client("c1").await.unwrap();
    assert!(store.client_by_id("c1").await.unwrap().is_none());
    assert!(matches!(store.delete_client("c1").await, Err(StoreError::NotFound(_))));
});

both!(keys_rotate_publish_and_retire, |store: Store, _db| async move {
    assert!(store.insert_first_key(&new_key("k1", "EdDSA"), NOW).await.unwrap());
    assert!(!store.insert_first_key(&new_key("k2", "EdDSA"), NOW).await.unwrap(), "one active key per algorithm");
    assert!(store.insert_first_key(&new_key("r1", "RS256"), NOW).await.unwrap());

    store.rotate_key(&new_key("k3", "EdDSA"), NOW + 10, NOW + 100).await.unwrap();
    let active: Vec<_> = store.active_keys().await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(active, ["k3", "r1"]);
    let published: Vec<_> = store.published_keys(NOW + 50).await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(published, ["k3", "k1", "r1"]);
    let later: Vec<_> = store.published_keys(NOW + 101).await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(later, ["k3", "r1"]);

    assert_eq!(store.delete_expired(NOW + 50, 100).await.unwrap(), 0);
    assert_eq!(store.delete_expired(NOW + 101, 100).await.unwrap(), 1);
    assert_eq!(store.all_keys().await.unwrap().len(), 2);
    let conflict = store.rotate_key(&new_key("k3", "EdDSA"), NOW + 200, NOW + 300).await;
    assert!(matches!(conflict, Err(StoreError::Conflict(_))), "a duplicate kid is refused: {conflict:?}");
    assert_eq!(store.active_keys().await.unwrap().len(), 2, "a failed rotation changes nothing");
});

both!(kek_check_is_set_once, |store: Store, _db| async move {
    assert_eq!(store.init_kek_check(b"first", NOW).await.unwrap(), b"first");
    assert_eq!(store.init_kek_check(b"second", NOW).await.unwrap(), b"first");
});

both!(setup_links_are_single_use, |store: Store, _db| async move {
    let hash = TokenHash::of("link");
    store.create_setup_token(&hash, NOW, NOW + 3600).await.unwrap();
    assert!(store.setup_token_usable(&hash, NOW + 1).await.unwrap());
    assert!(!store.setup_token_usable(&TokenHash::of("other"), NOW + 1).await.unwrap());
    let admin = NewUser { is_admin: true, ..new_user("root@example.org") };
    assert_eq!(store.complete_setup(&hash, &admin, NOW + 2).await.unwrap(), SetupOutcome::Created);
    assert_eq!(store.count_admins().await.unwrap(), 1);
    let again = NewUser { id: "x".into(), ..new_user("second@example.org") };
    assert_eq!(store.complete_setup(&hash, &again, NOW + 3).await.unwrap(), SetupOutcome::Refused);
    assert!(!store.setup_token_usable(&hash, NOW + 3).await.unwrap());

    // A fresh link after an admin exists still cannot create a second one.
    let late = TokenHash::of("late");
    store.create_setup_token(&late, NOW, NOW + 3600).await.unwrap();
    assert_eq!(store.complete_setup(&late, &again, NOW + 4).await.unwrap(), SetupOutcome::Refused);
    assert!(store.user_by_id("x").await.unwrap().is_none());

    let expired = TokenHash::of("expired");
    store.create_setup_token(&expired, NOW, NOW + 10).await.unwrap();
    assert_eq!(store.complete_setup(&expired, &again, NOW + 11).await.unwrap(), SetupOutcome::Refused);
});

both!(expired_rows_are_deleted_in_batches, |store: Store, _db| async move {
    for i in 0..5 {
        store.create_setup_token(&TokenHash::of(&format!("t{i}")), NOW, NOW + 10).await.unwrap();
    }
    store.create_setup_token(&TokenHash::of("live"), NOW, NOW + 1000).await.unwrap();
    assert_eq!(store.delete_expired(NOW + 11, 2).await.unwrap(), 2);
    assert_eq!(store.delete_expired(NOW + 11, 2).await.unwrap(), 2);
    assert_eq!(store.delete_expired(NOW + 11, 2).await.unwrap(), 1);
    assert_eq!(store.delete_expired(NOW + 11, 2).await.unwrap(), 0);
    assert!(store.setup_token_usable(&TokenHash::of("live"), NOW + 11).await.unwrap());
});

both!(audit_filters_by_time_and_action, |store: Store, _db| async move {
    let ev = |action| NewAuditEvent {
        actor: "cli",
        action,
        target: Some("user:1"),
        outcome: "success",
        details: Some(serde_json::json!({"k": "v"})),
        ..Default::default()
    };
    store.record_audit(&ev("user.create"), NOW).await.unwrap();
    store.record_audit(&ev("client.create"), NOW + 10).await.unwrap();
    store.record_audit(&ev("user.create"), NOW + 20).await.unwrap();
    let all = store.list_audit(0, None, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), [NOW + 20, NOW + 10, NOW]);
    assert_eq!(all[0].details.as_deref(), Some(r#"{"k":"v"}"#));
    assert_eq!(store.list_audit(NOW + 5, None, 100).await.unwrap().len(), 2);
    assert_eq!(store.list_audit(0, Some("user.create"), 100).await.unwrap().len(), 2);
    assert_eq!(store.list_audit(0, None, 1).await.unwrap().len(), 1);
});

async fn user_and_client(store: &Store) -> (String, String) {
    let user = store.create_user(&new_user("ann@example.org"), NOW).await.unwrap();
    let client = store.create_client(&new_client("c1"), NOW).await.unwrap();
    (user.id.into(), client.client_id.into())
}

both!(sign_ins_keep_their_continuation_until_they_end_or_expire, |store: Store, _url| async move {
    use postern_store::{NewSignIn, SignInRow};
    let hash = TokenHash::of("sign-in-token");
    let new = NewSignIn {
        token_hash: hash,
        continuation: "authorize",
        target_sealed: Some(b"sealed handle"),
        now: NOW,
        expires_at: NOW + 600,
    };
    store.create_sign_in(&new).await.unwrap();
    let stored = SignInRow {
        continuation: "authorize".into(),
        target_sealed: Some(b"sealed handle".to_vec()),
        user_id: None,
        amr: None,
    };
    assert_eq!(store.sign_in(&hash, NOW + 599).await.unwrap(), Some(stored.clone()));

    // A right password with a second step to come: stored again under a new token, with whose
    // it is; the old token stops in the same transaction.
    let (user, _) = user_and_client(&store).await;
    let paused = NewSignIn { token_hash: TokenHash::of("paused"), expires_at: NOW + 300, ..new.clone() };
    store.pause_sign_in(&paused, Some(&hash), &user, "pwd").await.unwrap();
    let waiting = store.sign_in(&TokenHash::of("paused"), NOW).await.unwrap().unwrap();
    assert_eq!((waiting.user_id.as_deref(), waiting.amr.as_deref()), (Some(user.as_str()), Some("pwd")));
    assert_eq!(store.sign_in(&hash, NOW).await.unwrap(), None, "the old token stopped");
    store.create_sign_in(&new).await.unwrap();
    assert_eq!(store.sign_in(&hash, NOW + 600).await.unwrap(), None, "expired");
    let account = NewSignIn { token_hash: TokenHash::of("other"), continuation: "account", target_sealed: None, ..new };
    store.create_sign_in(&account).await.unwrap();
    let unknown = NewSignIn { token_hash: TokenHash::of("third"), continuation: "elsewhere", ..account.clone() };
    assert!(store.create_sign_in(&unknown).await.is_err(), "only the known continuations");
    store.delete_sign_in(&TokenHash::of("other")).await.unwrap();
    assert_eq!(store.sign_in(&TokenHash::of("other"), NOW).await.unwrap(), None);
    // The expired one is swept with the other expired rows.
    assert!(store.delete_expired(NOW + 601, 100).await.unwrap() >= 1);
    assert_eq!(store.sign_in(&hash, NOW).await.unwrap(), None);
});

both!(sessions_expire_absolutely_and_when_idle, |store: Store, _url| async move {
    let (user, _) = user_and_client(&store).await;
    let hash = TokenHash::of("session-token");
    let new = postern_store::NewSession {
        hash,
        user_id: &user,
        amr: "pwd",
        now: NOW,
        idle_secs: 100,
        absolute_secs: 1000,
        ip: Some("127.0.0.1"),
        user_agent: Some("test"),
    };
    store.create_session(&new).await.unwrap();
    let s = store.session(&hash, NOW + 50).await.unwrap().unwrap();
    assert_eq!((s.user_id.as_str(), s.auth_time, s.amr.as_str()), (user.as_str(), NOW, "pwd"));
    assert!(store.session(&hash, NOW + 100).await.unwrap().is_none(), "idle too long");
    store.touch_session(&hash, NOW + 90, NOW + 190).await.unwrap();
    assert!(store.session(&hash, NOW + 150).await.unwrap().is_some(), "touched");
    store.touch_session(&hash, NOW + 990, NOW + 1090).await.unwrap();
    assert!(store.session(&hash, NOW + 1000).await.unwrap().is_none(), "absolute limit");
    store.delete_session(&hash).await.unwrap();
    assert!(store.session(&hash, NOW + 1).await.unwrap().is_none());
    assert!(store.session(&TokenHash::of("other"), NOW).await.unwrap().is_none());
});

both!(consents_and_pending_requests, |store: Store, _url| async move {
    let (user, client) = user_and_client(&store).await;
    let (user, client) = (postern_store::UserId::new(user), postern_store::ClientId::new(client));
    assert_eq!(store.consent(&user, &client).await.unwrap(), None);
    let consent =
        |scope: &str, resources: &str| postern_store::Consent { scope: scope.into(), resources: resources.into() };
    store.save_consent(&user, &client, &consent("openid", ""), NOW).await.unwrap();
    let later = consent("openid email", "https://api.example.org");
    store.save_consent(&user, &client, &later, NOW + 1).await.unwrap();
    assert_eq!(store.consent(&user, &client).await.unwrap(), Some(later));

    let handle = TokenHash::of("request");
    store.save_authorization_request(&handle, &client, r#"{"x":1}"#, NOW, NOW + 600).await.unwrap();
    assert_eq!(store.authorization_request(&handle, NOW + 1).await.unwrap().as_deref(), Some(r#"{"x":1}"#));
    assert_eq!(store.authorization_request(&handle, NOW + 600).await.unwrap(), None, "expired");
    store.delete_authorization_request(&handle).await.unwrap();
    assert_eq!(store.authorization_request(&handle, NOW + 1).await.unwrap(), None);
});

both!(a_code_is_consumed_exactly_once_under_a_race, |store: Store, _url| async move {
    use postern_store::{CodeGrant, CodeOutcome, NewCode, Redemption};
    let (user, _client) = user_and_client(&store).await;
    let grant = CodeGrant {
        client_id: "c1".into(),
        user_id: user.into(),
        redirect_uri: "https://app.example.org/cb".into(),
        code_challenge: "challenge".into(),
        nonce: Some("n".into()),
        scope: "openid".into(),
        auth_time: NOW,
        amr: "pwd".into(),
        resource: "https://api.example.org".into(),
    };
    let hash = TokenHash::of("the-code");
    store.create_code(&NewCode { hash, grant: &grant, issued_at: NOW, expires_at: NOW + 60 }).await.unwrap();
    assert_eq!(store.code_resource(&hash).await.unwrap().as_deref(), Some("https://api.example.org"));
    assert_eq!(store.code_resource(&TokenHash::of("another code")).await.unwrap(), None);
    let redemption = |jti: &'static str| Redemption {
        client_id: "c1",
        redirect_uri: "https://app.example.org/cb",
        code_challenge: "challenge",
        access_jti: Some(jti),
        opaque_access: None,
        access_expires_at: NOW + 900,
        refresh: None,
        refresh_rule: postern_core::oauth::RefreshRule { client_allows_refresh: false, always: false },
    };
    // The wrong client, redirect URI or verifier never consumes the code.
    for wrong in [
        Redemption { client_id: "other", ..redemption("x") },
        Redemption { redirect_uri: "https://app.example.org/other", ..redemption("x") },
        Redemption { code_challenge: "wrong", ..redemption("x") },
    ] {
        assert_eq!(store.redeem_code(&hash, NOW + 1, &wrong).await.unwrap(), CodeOutcome::Invalid);
    }
    let attempts: Vec<_> = (0..200)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.redeem_code(&hash, NOW + 1, &redemption("jti-1")).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for a in attempts {
        match a.await.unwrap() {
            CodeOutcome::Consumed(g) => {
                assert_eq!(g, grant);
                won += 1;
            }
            CodeOutcome::Replayed(issued) => assert_eq!(issued.access_jti.as_deref(), Some("jti-1")),
            CodeOutcome::Invalid => panic!("the code exists and has not expired"),
        }
    }
    assert_eq!(won, 1, "exactly one redemption wins");

    // An opaque access token is stored in the same transaction as the redemption.
    let opaque = TokenHash::of("opaque-code");
    store.create_code(&NewCode { hash: opaque, grant: &grant, issued_at: NOW, expires_at: NOW + 60 }).await.unwrap();
    let token = TokenHash::of("opaque-access-token");
    let r = Redemption { access_jti: None, opaque_access: Some((token, "https://api")), ..redemption("unused") };
    assert!(matches!(store.redeem_code(&opaque, NOW + 1, &r).await.unwrap(), CodeOutcome::Consumed(_)));
    let record = store.access_token(&token, NOW + 2).await.unwrap().unwrap();
    assert_eq!(
        (record.subject.as_str(), record.audience.as_str(), record.expires_at),
        (grant.user_id.as_str(), "https://api", NOW + 900)
    );

    let late = TokenHash::of("late-code");
    store.create_code(&NewCode { hash: late, grant: &grant, issued_at: NOW, expires_at: NOW + 60 }).await.unwrap();
    assert_eq!(store.redeem_code(&late, NOW + 60, &redemption("j")).await.unwrap(), CodeOutcome::Invalid, "expired");
    let unknown = TokenHash::of("unknown");
    assert_eq!(store.redeem_code(&unknown, NOW, &redemption("j")).await.unwrap(), CodeOutcome::Invalid);
});

both!(concurrent_inserts_each_get_their_own_answer, |store: Store, _url| async move {
    use postern_store::{NewAccessToken, NewDeviceAuthorization};
    let (_user, _client) = user_and_client(&store).await;
    // 120 device authorizations at once (on SQLite they share group commits): one reuses a
    // user code and one names an unknown client; only those two fail, each with its own error.
    let inserts: Vec<_> = (0..120)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let device = TokenHash::of(&format!("device-{i}"));
                let user_code = TokenHash::of(&format!("user-{}", if i == 7 { 6 } else { i }));
                let client = if i == 50 { "no-such-client" } else { "c1" };
                let new = NewDeviceAuthorization {
                    device_code: device,
                    user_code,
                    client_id: client,
                    scope: "openid",
                    now: NOW,
                    expires_at: NOW + 600,
                    ip: Some("192.0.2.1"),
                    user_agent: None,
                    resource: "",
                };
                (i, store.create_device_authorization(&new).await)
            })
        })
        .collect();
    let mut conflicts = Vec::new();
    for insert in inserts {
        let (i, result) = insert.await.unwrap();
        match result {
            Ok(()) => {
                let stored = store.device_authorization(&TokenHash::of(&format!("device-{i}"))).await.unwrap();
                assert_eq!(
                    stored.map(|d| (d.status, d.client_id)),
                    Some((postern_store::DeviceStatus::Pending, "c1".into())),
                    "row {i}"
                );
            }
            Err(StoreError::Conflict(what)) => conflicts.push((i, what)),
            Err(StoreError::Database(_)) => assert_eq!(i, 50, "only the unknown client fails"),
            Err(e) => panic!("row {i}: {e}"),
        }
    }
    // Either 6 or 7 got the shared user code first; the other was refused.
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert!(matches!(conflicts[0], (6 | 7, "user code")), "{conflicts:?}");
    assert_eq!(store.device_authorization(&TokenHash::of("device-50")).await.unwrap(), None);

    let record = client_token();
    let tokens: Vec<_> = (0..60)
        .map(|i| {
            let (store, record) = (store.clone(), record.clone());
            tokio::spawn(async move {
                let hash = TokenHash::of(&format!("token-{i}"));
                store.insert_access_token(&NewAccessToken { hash, record: &record }).await.unwrap();
                hash
            })
        })
        .collect();
    for token in tokens {
        let hash = token.await.unwrap();
        assert_eq!(store.access_token(&hash, NOW + 1).await.unwrap().as_ref(), Some(&record));
    }
});

/// An opaque access token of client `c1`'s own, valid for 15 minutes from `NOW`.
fn client_token() -> postern_store::AccessTokenRecord {
    postern_store::AccessTokenRecord {
        client_id: "c1".into(),
        user_id: None,
        subject: "c1".into(),
        scope: "openid".into(),
        audience: "https://api".into(),
        auth_time: None,
        issued_at: NOW,
        expires_at: NOW + 900,
        amr: String::new(),
    }
}

/// SQLite: under a steady stream of writes the write-ahead log is still started over (its
/// header's salts change when it is), by the checkpoint task beside the group-commit writer,
/// and nothing written is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_is_started_over_while_writes_go_on() {
    use postern_store::NewAccessToken;
    let db = postern_testkit::sqlite();
    let store = Store::connect(&db.url, PoolOptions::default()).await.unwrap();
    store.migrate(NOW).await.unwrap();
    let (_user, _client) = user_and_client(&store).await;
    let wal = format!("{}-wal", db.url.strip_prefix("sqlite://").unwrap());
    let salts = || std::fs::read(&wal).ok().filter(|b| b.len() >= 32).map(|b| b[16..24].to_vec());
    let record = client_token();
    let mut first = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut written = 0;
    loop {
        let hash = TokenHash::of(&format!("wal-{written}"));
        store.insert_access_token(&NewAccessToken { hash, record: &record }).await.unwrap();
        written += 1;
        let now = salts();
        if first.is_none() {
            first = now.clone();
        }
        if now.is_some() && now != first {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the log was not started over in 20 s ({written} writes)");
    }
    for i in [0, written / 2, written - 1] {
        let hash = TokenHash::of(&format!("wal-{i}"));
        assert!(store.access_token(&hash, NOW + 1).await.unwrap().is_some(), "token {i} of {written}");
    }
}

both!(scopes_service_accounts_and_api_keys, |store: Store, _url| async move {
    use postern_store::{KeyOwner, KeyUse, NewApiKeyRow, RegisteredScope};
    let scope = |name: &str, takes_values| RegisteredScope {
        name: name.into(),
        description: format!("Use {name}"),
        takes_values,
        created_at: NOW,
    };
    store.add_scope(&scope("project", true)).await.unwrap();
    store.add_scope(&scope("billing:read", false)).await.unwrap();
    assert!(matches!(store.add_scope(&scope("project", false)).await, Err(StoreError::Conflict("scope"))));
    assert_eq!(store.scopes().await.unwrap(), vec![scope("billing:read", false), scope("project", true)]);
    store.remove_scope("billing:read").await.unwrap();
    assert!(matches!(store.remove_scope("billing:read").await, Err(StoreError::NotFound(_))));

    let (user, _) = user_and_client(&store).await;
    let sa = store.create_service_account("sa1", "ci-deploy", "Deploys from CI", &user, NOW).await.unwrap();
    assert_eq!((sa.owner_email.as_str(), sa.description.as_str()), ("ann@example.org", "Deploys from CI"));
    assert!(matches!(
        store.create_service_account("sa2", "ci-deploy", "", &user, NOW).await,
        Err(StoreError::Conflict("service account"))
    ));
    // Names are unique per owner: another user may use the same one.
    let bob = store.create_user(&new_user("bob@example.org"), NOW).await.unwrap();
    store.create_service_account("sa3", "ci-deploy", "", &bob.id, NOW).await.unwrap();
    let named: Vec<_> = store.service_accounts_named("ci-deploy").await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(named, ["sa1", "sa3"]);
    assert_eq!(store.service_account("sa3").await.unwrap().unwrap().owner_email, "bob@example.org");

    let scopes = [Scope::parse("project:*").unwrap(), Scope::parse("read").unwrap()];
    let personal = NewApiKeyRow {
        id: "k1",
        hash: TokenHash::of("pst_u_one"),
        public_prefix: "pst_u_one",
        owner: KeyOwner::User(&user),
        name: "laptop",
        scopes: &scopes,
        audience: "",
        created_at: NOW,
        expires_at: Some(NOW + 90 * 86_400),
    };
    let k1 = store.create_api_key(&personal).await.unwrap();
    assert_eq!(
        (k1.scope.as_str(), k1.user_email.as_deref(), k1.subject()),
        ("project:* read", Some("ann@example.org"), user.clone())
    );
    let k2 = store
        .create_api_key(&NewApiKeyRow {
            id: "k2",
            hash: TokenHash::of("pst_s_two"),
            public_prefix: "pst_s_two",
            owner: KeyOwner::ServiceAccount(&sa.id),
            expires_at: None,
            ..personal.clone()
        })
        .await
        .unwrap();
    assert_eq!((k2.service_account_name.as_deref(), k2.subject()), (Some("ci-deploy"), "sa:sa1".to_owned()));
    assert!(k2.usable_at(NOW + 1000 * 86_400), "no expiry");
    assert!(k1.usable_at(NOW) && !k1.usable_at(NOW + 90 * 86_400), "expires");

    assert_eq!(store.api_key_by_hash(&TokenHash::of("pst_u_one")).await.unwrap().map(|k| k.id), Some("k1".into()));
    assert_eq!(store.api_key_by_hash(&TokenHash::of("pst_u_nope")).await.unwrap(), None);
    let ids = |keys: Vec<postern_store::ApiKeyRecord>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    assert_eq!(ids(store.api_keys(None).await.unwrap()), ["k1", "k2"]);
    assert_eq!(ids(store.api_keys(Some(KeyOwner::User(&user))).await.unwrap()), ["k1"]);
    assert_eq!(ids(store.api_keys(Some(KeyOwner::ServiceAccount(&sa.id))).await.unwrap()), ["k2"]);

    // Last use: batched, and an older time never overwrites a newer one.
    let at = |t, ip: &str| KeyUse { key_id: "k1".into(), at: t, ip: Some(ip.into()) };
    store.touch_api_keys(&[at(NOW + 20, "192.0.2.2"), at(NOW + 10, "192.0.2.1")]).await.unwrap();
    let k1 = store.api_key("k1").await.unwrap().unwrap();
    assert_eq!((k1.last_used_at, k1.last_used_ip.as_deref()), (Some(NOW + 20), Some("192.0.2.2")));

    assert!(store.revoke_api_key("k1", NOW + 30).await.unwrap());
    assert!(!store.revoke_api_key("k1", NOW + 31).await.unwrap(), "already revoked");
    assert!(!store.api_key("k1").await.unwrap().unwrap().usable_at(NOW + 32));
    assert_eq!(
        store.revoke_api_key_by_hash(&TokenHash::of("pst_s_two"), NOW + 40).await.unwrap(),
        Some(("k2".into(), "pst_s_two".into()))
    );
    assert_eq!(store.revoke_api_key_by_hash(&TokenHash::of("pst_s_two"), NOW + 41).await.unwrap(), None);

    // A disabled user's personal keys stop working; deleting a service account deletes its keys.
    let k3 = store
        .create_api_key(&NewApiKeyRow { id: "k3", hash: TokenHash::of("pst_u_three"), ..personal.clone() })
        .await
        .unwrap();
    assert!(k3.usable_at(NOW));
    store.disable_user(&user, NOW).await.unwrap();
    let k3 = store.api_key("k3").await.unwrap().unwrap();
    assert!(!k3.usable_at(NOW) && k3.revoked_at == Some(NOW), "owner disabled: the key is revoked");
    store.enable_user(&user, NOW + 1).await.unwrap();
    assert!(!store.api_key("k3").await.unwrap().unwrap().usable_at(NOW + 1), "enabling brings no key back");
    store.delete_service_account(&sa.id).await.unwrap();
    assert_eq!(store.api_key("k2").await.unwrap(), None);
});

mod refresh;
