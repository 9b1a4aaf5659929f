//! Admin command round trips with `--json`, on SQLite and PostgreSQL, and their errors.

use crate::Postern;
use postern_core::secret::TokenHash;
use postern_store::{PoolOptions, Store};

fn users_round_trip(p: &Postern) {
    let created = p.json(
        &[
            "admin",
            "user",
            "create",
            "--email",
            "Ann@Example.org",
            "--password-stdin",
            "--admin",
            "--verified",
            "--name",
            "Ann",
            "--json",
        ],
        Some("correct horse battery\n"),
    );
    assert_eq!(created["email"], "Ann@Example.org");
    assert_eq!((created["is_admin"].as_bool(), created["email_verified"].as_bool()), (Some(true), Some(true)));
    assert_eq!(created["has_password"], true);
    assert!(created.get("password_hash").is_none(), "the hash is never printed");
    let id = created["id"].as_str().unwrap().to_owned();

    let shown = p.json(&["admin", "user", "show", "ann@example.org", "--json"], None);
    assert_eq!(shown["id"], id.as_str());
    let list = p.json(&["admin", "user", "list", "--json"], None);
    assert_eq!(list.as_array().unwrap().len(), 1);

    assert_eq!(p.json(&["admin", "user", "disable", &id, "--json"], None)["disabled"], true);
    assert_eq!(p.json(&["admin", "user", "enable", "ann@example.org", "--json"], None)["disabled"], false);
    p.json(&["admin", "user", "set-password", &id, "--password-stdin", "--json"], Some("another long one\n"));

    let stderr = p.fails(&["admin", "user", "create", "--email", "ANN@example.org", "--json"], None, 1);
    assert!(stderr.contains("exists already"), "{stderr}");
    let stderr = p.fails(&["admin", "user", "create", "--email", "not-an-email"], None, 2);
    assert!(stderr.contains("not a valid email"), "{stderr}");
    let stderr =
        p.fails(&["admin", "user", "create", "--email", "b@example.org", "--password-stdin"], Some("short\n"), 2);
    assert!(stderr.contains("at least 8"), "{stderr}");
    let stderr = p.fails(&["admin", "user", "show", "nobody@example.org"], None, 1);
    assert!(stderr.contains("no user"), "{stderr}");

    let events = p.json(&["admin", "audit", "--since", "1h", "--action", "user.create", "--json"], None);
    assert_eq!(events.as_array().unwrap().len(), 1);
    assert_eq!(events[0]["target"], id.as_str());
    assert_eq!(events[0]["details"]["email"], "Ann@Example.org");
    let all = p.json(&["admin", "audit", "--json"], None);
    let actions: Vec<&str> = all.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["user.set_password", "user.enable", "user.disable", "user.create"]);
}

/// `user sessions` lists where a user is signed in; `user revoke-sessions` ends it all.
async fn sessions_round_trip(p: &Postern, url: &str) {
    let store = Store::connect(url, PoolOptions::default()).await.unwrap();
    let ann =
        store.user_by_email(&postern_core::email::Email::parse("ann@example.org").unwrap()).await.unwrap().unwrap();
    let now = postern_core::system::Clock::now(&postern_core::system::SystemClock);
    for (token, agent) in
        [("laptop-session", "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"), ("phone-session", "curl/8.5.0")]
    {
        let session = postern_store::NewSession {
            hash: TokenHash::of(token),
            user_id: &ann.id,
            amr: "pwd",
            now,
            idle_secs: 3600,
            absolute_secs: 7200,
            ip: Some("192.0.2.7"),
            user_agent: Some(agent),
        };
        store.create_session(&session).await.unwrap();
    }
    let listed = p.json(&["admin", "user", "sessions", "ann@example.org", "--json"], None);
    let mut devices: Vec<&str> = listed.as_array().unwrap().iter().map(|s| s["device"].as_str().unwrap()).collect();
    devices.sort_unstable();
    assert_eq!(devices, ["Firefox on Linux", "curl"]);
    assert_eq!(listed[0]["ip"], "192.0.2.7");
    let out = p.run(&["admin", "user", "sessions", "ann@example.org"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Firefox on Linux") && text.contains("LAST ACTIVE"), "{text}");

    let revoked = p.json(&["admin", "user", "revoke-sessions", "ann@example.org", "--json"], None);
    assert_eq!(revoked["ended"], 2);
    assert!(store.session(&TokenHash::of("laptop-session"), now).await.unwrap().is_none());
    assert_eq!(p.json(&["admin", "user", "sessions", "ann@example.org", "--json"], None), serde_json::json!([]));
    let events = p.json(&["admin", "audit", "--action", "user.revoke_sessions", "--json"], None);
    assert_eq!(events[0]["details"]["ended"], 2);

    // For the person who lost their phone and their recovery codes.
    assert!(store.begin_totp(&ann.id, b"sealed secret", now).await.unwrap());
    assert!(store.enable_totp(&ann.id, 1, &[TokenHash::of("recovery")], now).await.unwrap());
    let reset = p.json(&["admin", "user", "reset-mfa", "ann@example.org", "--json"], None);
    assert_eq!(reset["had_totp"], true);
    assert!(store.totp_factor(&ann.id).await.unwrap().is_none());
    assert_eq!(store.recovery_codes_left(&ann.id).await.unwrap(), 0);
    assert_eq!(p.json(&["admin", "audit", "--action", "user.reset_mfa", "--json"], None).as_array().unwrap().len(), 1);
}

/// `user invite` makes the account and prints the link when email is not set up; inviting
/// again sends a new one; `user delete` removes an account.
fn invitations_round_trip(p: &Postern) {
    p.json(&["admin", "scope", "add", "read", "--description", "Read things", "--json"], None);
    let invited = p.json(&["admin", "user", "invite", "Dan@example.org", "--scope", "read", "--json"], None);
    assert_eq!(invited["user"]["email"], "Dan@example.org");
    assert_eq!(invited["user"]["has_password"], false);
    assert_eq!(invited["email_sent"], false, "no email.smtp_url here");
    let link = invited["link"].as_str().unwrap();
    assert!(link.starts_with("http://127.0.0.1:8080/invitation?token="), "{link}");
    let again = p.json(&["admin", "user", "invite", "dan@example.org", "--json"], None);
    assert_eq!(again["user"]["id"], invited["user"]["id"], "an unanswered invitation is sent again");
    assert_ne!(again["link"], invited["link"]);
    let stderr = p.fails(&["admin", "user", "invite", "ann@example.org"], None, 1);
    assert!(stderr.contains("has an account already"), "{stderr}");
    let stderr = p.fails(&["admin", "user", "invite", "eve@example.org", "--scope", "nope"], None, 2);
    assert!(stderr.contains("not registered"), "{stderr}");

    let reset = p.json(&["admin", "user", "reset-mfa", "dan@example.org", "--json"], None);
    assert_eq!(reset["had_totp"], false);
    let deleted = p.json(&["admin", "user", "delete", "dan@example.org", "--json"], None);
    assert_eq!(deleted["deleted"], invited["user"]["id"]);
    let stderr = p.fails(&["admin", "user", "show", "dan@example.org"], None, 1);
    assert!(stderr.contains("no user"), "{stderr}");
    let events = p.json(&["admin", "audit", "--action", "user.invite", "--json"], None);
    assert_eq!(events.as_array().unwrap().len(), 2);
    assert!(events[0]["details"].is_null(), "details about a deleted user are cleared: {events}");
    assert_eq!(p.json(&["admin", "audit", "--action", "user.delete", "--json"], None).as_array().unwrap().len(), 1);
}

async fn clients_round_trip(p: &Postern, url: &str) {
    let created = p.json(
        &[
            "admin",
            "client",
            "create",
            "--name",
            "Billing",
            "--redirect-uri",
            "https://billing.example.org/cb",
            "--scope",
            "openid",
            "--scope",
            "project:*",
            "--json",
        ],
        None,
    );
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "≥ 256 bits");
    assert_eq!(created["client_type"], "confidential");
    assert_eq!(created["grant_types"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(created["access_token_format"], "jwt");

    // Stored only as its SHA-256.
    let store = Store::connect(url, PoolOptions::default()).await.unwrap();
    let stored = store.client_by_id(&client_id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash.as_deref(), Some(TokenHash::of(&secret).as_bytes()));

    let public = p.json(
        &[
            "admin",
            "client",
            "create",
            "--name",
            "CLI",
            "--public",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "device_code",
            "--first-party",
            "--access-token-format",
            "opaque",
            "--require-state",
            "--id-token-alg",
            "EdDSA",
            "--always-refresh-token",
            "--post-logout-redirect-uri",
            "http://127.0.0.1/signed-out",
            "--json",
        ],
        None,
    );
    assert!(public.get("client_secret").is_none(), "no secret for public clients");
    assert_eq!(
        (public["require_state"].as_bool(), public["id_token_alg"].as_str(), public["always_refresh_token"].as_bool()),
        (Some(true), Some("EdDSA"), Some(true))
    );
    assert_eq!(public["post_logout_redirect_uris"], serde_json::json!(["http://127.0.0.1/signed-out"]));
    assert_eq!(public["id_token_on_refresh"].as_bool(), Some(false), "refresh responses carry no ID token by default");
    let public_id = public["client_id"].as_str().unwrap().to_owned();
    let toggled = p.json(
        &[
            "admin",
            "client",
            "update",
            &public_id,
            "--require-state",
            "false",
            "--id-token-alg",
            "RS256",
            "--id-token-on-refresh",
            "true",
            "--json",
        ],
        None,
    );
    assert_eq!((toggled["require_state"].as_bool(), toggled["id_token_alg"].as_str()), (Some(false), Some("RS256")));
    assert_eq!(toggled["id_token_on_refresh"].as_bool(), Some(true));
    assert_eq!(
        public["grant_types"],
        serde_json::json!(["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"])
    );
    assert_eq!((public["first_party"].as_bool(), public["access_token_format"].as_str()), (Some(true), Some("opaque")));

    assert_eq!(p.json(&["admin", "client", "list", "--json"], None).as_array().unwrap().len(), 2);
    let updated = p.json(
        &[
            "admin",
            "client",
            "update",
            &client_id,
            "--name",
            "Billing v2",
            "--first-party",
            "true",
            "--access-token-ttl",
            "300",
            "--json",
        ],
        None,
    );
    assert_eq!((updated["name"].as_str(), updated["access_token_ttl"].as_i64()), (Some("Billing v2"), Some(300)));
    assert_eq!(
        updated["redirect_uris"],
        serde_json::json!(["https://billing.example.org/cb"]),
        "lists not given are kept"
    );

    let rotated = p.json(&["admin", "client", "rotate-secret", &client_id, "--json"], None);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let stored = store.client_by_id(&client_id).await.unwrap().unwrap();
    assert_eq!(stored.secret_hash.as_deref(), Some(TokenHash::of(new_secret).as_bytes()));
    let public_id = public["client_id"].as_str().unwrap();
    assert!(p.fails(&["admin", "client", "rotate-secret", public_id], None, 2).contains("public"));

    assert_eq!(p.json(&["admin", "client", "delete", &client_id, "--json"], None)["deleted"], true);
    assert!(p.fails(&["admin", "client", "show", &client_id], None, 1).contains("no client"));
    store.close().await;
}

fn resources_round_trip(p: &Postern) {
    const API: &str = "https://api.example.org";
    let added =
        p.json(&["admin", "resource", "add", API, "--name", "Projects API", "--scope", "projects", "--json"], None);
    assert_eq!((added["identifier"].as_str(), added["name"].as_str()), (Some(API), Some("Projects API")));
    assert_eq!(added["scopes"], serde_json::json!(["projects"]));
    // Its resource server's introspection credentials: a new confidential client, shown once.
    let introspector = added["introspector_id"].as_str().unwrap().to_owned();
    assert!(added["introspector_secret"].as_str().is_some_and(|s| s.len() >= 40), "{added}");
    let shown = p.json(&["admin", "client", "show", &introspector, "--json"], None);
    assert_eq!(
        (shown["name"].as_str(), shown["client_type"].as_str()),
        (Some("Projects API (introspection)"), Some("confidential"))
    );
    let listed = p.json(&["admin", "resource", "list", "--json"], None);
    assert_eq!(listed[0]["introspector_id"], introspector.as_str());
    assert!(listed[0].get("introspector_secret").is_none(), "never shown again");
    let stderr = p.fails(&["admin", "resource", "add", API, "--name", "Again"], None, 2);
    assert!(stderr.contains("registered already"), "{stderr}");
    let stderr = p.fails(&["admin", "resource", "add", "api.example.org", "--name", "Relative"], None, 2);
    assert!(stderr.contains("absolute URI"), "{stderr}");
    let updated = p.json(&["admin", "resource", "update", API, "--name", "Projects", "--json"], None);
    assert_eq!((updated["name"].as_str(), &updated["scopes"]), (Some("Projects"), &serde_json::json!(["projects"])));
    assert_eq!(p.json(&["admin", "resource", "list", "--json"], None).as_array().unwrap().len(), 1);
    // Relinked: to a new client (secret shown), or to an existing confidential one; never to a
    // public client, nor to one that does not exist.
    let relinked = p.json(&["admin", "resource", "update", API, "--new-introspector", "--json"], None);
    let fresh = relinked["introspector_id"].as_str().unwrap().to_owned();
    assert!(fresh != introspector && relinked["introspector_secret"].is_string(), "{relinked}");
    let relinked = p.json(&["admin", "resource", "update", API, "--introspector", &introspector, "--json"], None);
    assert_eq!(
        (relinked["introspector_id"].as_str(), relinked.get("introspector_secret")),
        (Some(introspector.as_str()), None)
    );
    let public = p.json(
        &["admin", "client", "create", "--name", "Pub", "--public", "--redirect-uri", "http://127.0.0.1/cb", "--json"],
        None,
    );
    let stderr = p.fails(
        &["admin", "resource", "update", API, "--introspector", public["client_id"].as_str().unwrap()],
        None,
        2,
    );
    assert!(stderr.contains("public client"), "{stderr}");
    assert!(
        p.fails(&["admin", "resource", "update", API, "--introspector", "nobody"], None, 2)
            .contains("no client nobody")
    );
    let stderr = p.fails(
        &["admin", "resource", "add", "https://b.example.org", "--name", "B", "--introspector", "nobody"],
        None,
        2,
    );
    assert!(stderr.contains("no client nobody"), "{stderr}");
    assert_eq!(
        p.json(&["admin", "resource", "list", "--json"], None).as_array().unwrap().len(),
        1,
        "nothing half-made"
    );

    // Open to clients that register themselves, or not.
    assert_eq!(added["open_to_self_registered"], false);
    let opened = p.json(&["admin", "resource", "update", API, "--open-to-self-registered", "true", "--json"], None);
    assert_eq!(opened["open_to_self_registered"], true);
    assert_eq!(p.json(&["admin", "resource", "list", "--json"], None)[0]["open_to_self_registered"], true);

    // Clients are allowed registered resources only.
    let stderr = p.fails(
        &[
            "admin",
            "client",
            "create",
            "--name",
            "X",
            "--grant-type",
            "client_credentials",
            "--resource",
            "https://nope.example.org",
        ],
        None,
        2,
    );
    assert!(stderr.contains("no resource https://nope.example.org"), "{stderr}");
    let created = p.json(
        &[
            "admin",
            "client",
            "create",
            "--name",
            "Worker",
            "--grant-type",
            "client_credentials",
            "--resource",
            API,
            "--json",
        ],
        None,
    );
    assert_eq!(created["resources"], serde_json::json!([API]));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let cleared = p.json(&["admin", "client", "update", &id, "--no-resources", "--json"], None);
    assert_eq!(cleared["resources"], serde_json::json!([]));
    p.json(&["admin", "client", "update", &id, "--resource", API, "--json"], None);
    // Removing the resource takes it from every client.
    p.json(&["admin", "resource", "remove", API, "--json"], None);
    assert_eq!(p.json(&["admin", "client", "show", &id, "--json"], None)["resources"], serde_json::json!([]));
    p.fails(&["admin", "resource", "remove", API], None, 2);
    let audit = p.json(&["admin", "audit", "--action", "resource.add", "--json"], None);
    assert_eq!(audit.as_array().unwrap().len(), 1);
}

fn registration_tokens_round_trip(p: &Postern) {
    let made = p.json(&["admin", "registration-token", "create", "--name", "CI agents", "--uses", "3", "--json"], None);
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(made["token"].as_str().is_some_and(|t| t.len() >= 40), "{made}");
    assert_eq!((made["uses_left"].as_i64(), made["name"].as_str()), (Some(3), Some("CI agents")));
    let listed = p.json(&["admin", "registration-token", "list", "--json"], None);
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(listed[0].get("token").is_none(), "never shown again");
    assert!(
        p.fails(&["admin", "registration-token", "create", "--name", "X", "--uses", "0"], None, 2)
            .contains("at least one")
    );
    assert_eq!(p.json(&["admin", "registration-token", "revoke", &id, "--json"], None)["revoked"], true);
    assert!(p.fails(&["admin", "registration-token", "revoke", &id], None, 2).contains("no live registration token"));
    let audit = p.json(&["admin", "audit", "--action", "registration_token.create", "--json"], None);
    assert_eq!(audit.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn admin_round_trips_on_sqlite() {
    let p = Postern::sqlite();
    users_round_trip(&p);
    let url = p.db.url.clone();
    sessions_round_trip(&p, &url).await;
    invitations_round_trip(&p);
    clients_round_trip(&p, &url).await;
    resources_round_trip(&p);
    registration_tokens_round_trip(&p);
}

#[tokio::test]
async fn admin_round_trips_on_postgres() {
    let Some(p) = Postern::postgres().await else { return };
    users_round_trip(&p);
    let url = p.db.url.clone();
    sessions_round_trip(&p, &url).await;
    invitations_round_trip(&p);
    clients_round_trip(&p, &url).await;
    resources_round_trip(&p);
    registration_tokens_round_trip(&p);
}

#[test]
fn bad_client_registrations_are_refused_with_a_clear_message() {
    let p = Postern::sqlite();
    let cases: [(&[&str], &str); 6] = [
        (&["--name", "X", "--redirect-uri", "http://app.example.org/cb"], "loopback"),
        (&["--name", "X", "--redirect-uri", "https://a.example/cb#frag"], "fragment"),
        (&["--name", "X", "--public", "--grant-type", "client_credentials"], "confidential"),
        (&["--name", "X", "--grant-type", "password"], "--grant-type"),
        (&["--name", "X", "--grant-type", "authorization_code"], "--redirect-uri"),
        (&["--name", "X", "--scope", "bad\"scope"], "invalid scope"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["admin", "client", "create"];
        full.extend_from_slice(args);
        let stderr = p.fails(&full, None, 2);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let stderr = p.fails(&["admin", "client", "create"], None, 2);
    assert!(stderr.contains("--name"), "clap names the missing argument: {stderr}");
    assert!(p.json(&["admin", "client", "list", "--json"], None).as_array().unwrap().is_empty(), "nothing was stored");
}

#[test]
fn keys_list_and_rotate() {
    let p = Postern::sqlite();
    let keys = p.json(&["admin", "keys", "list", "--json"], None);
    let keys = keys.as_array().unwrap();
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"], "one key per algorithm");
    assert!(keys.iter().all(|k| k["active"] == true));
    let rotated = p.json(&["admin", "keys", "rotate", "--alg", "EdDSA", "--json"], None);
    let rotated = rotated.as_array().unwrap();
    assert_eq!(rotated.len(), 4);
    assert_eq!(rotated.iter().filter(|k| k["active"] == true).count(), 3);
    let old = rotated.iter().find(|k| k["active"] == false).unwrap();
    assert_eq!((old["alg"].as_str(), old["published"].as_bool()), (Some("EdDSA"), Some(true)));
    let events = p.json(&["admin", "audit", "--action", "keys.rotate", "--json"], None);
    assert_eq!(events.as_array().unwrap().len(), 1);
}
