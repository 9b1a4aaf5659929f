//! `postern admin scope|service-account|key …` round trips, on SQLite and PostgreSQL.

use crate::Postern;
use postern_core::secret::TokenHash;
use postern_store::{KeyOwner, PoolOptions, Store};

async fn keys_round_trip(p: &Postern) {
    // The registry.
    let added = p.json(
        &["admin", "scope", "add", "project", "--takes-values", "--description", "Work on a project", "--json"],
        None,
    );
    assert_eq!((added["name"].as_str(), added["takes_values"].as_bool()), (Some("project"), Some(true)));
    p.json(&["admin", "scope", "add", "deploy", "--description", "Deploy <b>services</b>", "--json"], None);
    p.json(&["admin", "scope", "add", "gone", "--description", "Removed soon", "--json"], None);
    assert!(
        p.fails(&["admin", "scope", "add", "deploy", "--description", "again"], None, 2).contains("already exists")
    );
    assert!(
        p.fails(&["admin", "scope", "add", "project:*", "--takes-values", "--description", "x"], None, 2)
            .contains("bare name")
    );
    p.json(&["admin", "scope", "remove", "gone", "--json"], None);
    assert!(p.fails(&["admin", "scope", "remove", "gone"], None, 1).contains("no scope"));
    let names: Vec<String> = p
        .json(&["admin", "scope", "list", "--json"], None)
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["deploy", "project"]);

    // A user and a service account owned by them.
    let user = p.json(&["admin", "user", "create", "--email", "dev@example.org", "--json"], None);
    let user_id = user["id"].as_str().unwrap().to_owned();
    let sa = p.json(
        &[
            "admin",
            "service-account",
            "create",
            "ci-deploy",
            "--owner",
            "dev@example.org",
            "--description",
            "CI",
            "--json",
        ],
        None,
    );
    assert_eq!(sa["owner_email"], "dev@example.org");
    assert!(
        p.fails(&["admin", "service-account", "create", "ci deploy", "--owner", "dev@example.org"], None, 2)
            .contains("name")
    );
    assert_eq!(p.json(&["admin", "service-account", "list", "--json"], None).as_array().unwrap().len(), 1);

    // Registered scopes are not entitlements: an admin grants them first.
    let create_deploy = ["admin", "key", "create", "--user", "dev@example.org", "--name", "x", "--scope", "deploy"];
    assert!(p.fails(&create_deploy, None, 2).contains("not entitled to the scope \"deploy\""));
    let granted = p.json(&["admin", "user", "grant", "dev@example.org", "project:*", "deploy", "--json"], None);
    assert_eq!(granted["scopes"], serde_json::json!(["deploy", "project:*"]));
    assert!(p.fails(&["admin", "user", "grant", "dev@example.org", "nope"], None, 2).contains("not registered"));
    p.json(&["admin", "service-account", "grant", "ci-deploy", "project:web", "--json"], None);

    // Keys: shown once, stored only as a hash.
    let personal = p.json(
        &[
            "admin",
            "key",
            "create",
            "--user",
            "dev@example.org",
            "--name",
            "laptop",
            "--scope",
            "project:*",
            "--scope",
            "deploy",
            "--expires-in",
            "30d",
            "--json",
        ],
        None,
    );
    let key = personal["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("pst_u_") && key.len() == 55, "{key}");
    assert_eq!(personal["scope"], "project:* deploy");
    assert_eq!(personal["public_prefix"].as_str(), Some(&key[..14]));
    let expires = personal["expires_at"].as_i64().unwrap() - personal["created_at"].as_i64().unwrap();
    assert_eq!(expires, 30 * 86_400);
    let robot = p.json(
        &[
            "admin",
            "key",
            "create",
            "--service-account",
            "ci-deploy",
            "--name",
            "ci",
            "--scope",
            "project:web",
            "--json",
        ],
        None,
    );
    let robot_key = robot["key"].as_str().unwrap().to_owned();
    assert!(robot_key.starts_with("pst_s_"));
    assert_eq!(
        robot["expires_at"].as_i64().unwrap() - robot["created_at"].as_i64().unwrap(),
        90 * 86_400,
        "default expiry"
    );

    for (args, message) in [
        (vec!["--scope", "nope"], "not registered"),
        (vec!["--scope", "project"], "not registered"),
        (vec!["--scope", "deploy", "--expires-in", "never"], "allow_no_expiry"),
        (vec!["--scope", "deploy", "--expires-in", "soon"], "--expires-in"),
    ] {
        let mut cmd = vec!["admin", "key", "create", "--user", "dev@example.org", "--name", "x"];
        cmd.extend(args);
        assert!(p.fails(&cmd, None, 2).contains(message), "{message}");
    }

    let listed = p.json(&["admin", "key", "list", "--json"], None);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|k| k.get("key").is_none()), "lists never show keys");
    let mine = p.json(&["admin", "key", "list", "--user", &user_id, "--json"], None);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let text = String::from_utf8(p.run(&["admin", "key", "list"], None).stdout).unwrap();
    assert!(text.contains(&format!("{}\u{2026}", &key[..14])) && !text.contains(&key), "{text}");

    // What the database holds: the hash and the prefix, never the key.
    let store = Store::connect(&p.db.url, PoolOptions::default()).await.unwrap();
    let stored = store.api_key_by_hash(&TokenHash::of(&key)).await.unwrap().unwrap();
    assert_eq!(stored.id, personal["id"].as_str().unwrap());
    assert_eq!(store.api_keys(Some(KeyOwner::User(&user_id))).await.unwrap().len(), 1);
    store.close().await;

    // Taking an entitlement away revokes the keys carrying it at once.
    let revoked = p.json(&["admin", "user", "revoke", "dev@example.org", "deploy", "--json"], None);
    assert_eq!(revoked["scopes"], serde_json::json!(["project:*"]));
    assert_eq!(revoked["revoked_keys"], serde_json::json!([personal["id"]]));
    let id = personal["id"].as_str().unwrap();
    assert_eq!(p.json(&["admin", "key", "revoke", id, "--json"], None)["revoked"], false, "already revoked");
    assert!(p.fails(&["admin", "key", "revoke", "nope"], None, 1).contains("no API key"));

    let actions: Vec<String> = p
        .json(&["admin", "audit", "--json"], None)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for action in [
        "scope.added",
        "scope.removed",
        "service_account.created",
        "api_key.created",
        "entitlement.granted",
        "entitlement.revoked",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }

    // Names are unique per owner: another user's "ci-deploy" makes the bare name ambiguous.
    p.json(&["admin", "user", "create", "--email", "ops@example.org", "--json"], None);
    p.json(&["admin", "service-account", "create", "ci-deploy", "--owner", "ops@example.org", "--json"], None);
    assert!(
        p.fails(&["admin", "service-account", "create", "ci-deploy", "--owner", "ops@example.org"], None, 2)
            .contains("already exists")
    );
    let ambiguous = p.fails(&["admin", "service-account", "delete", "ci-deploy"], None, 2);
    assert!(ambiguous.contains("dev@example.org, ops@example.org") && ambiguous.contains("--owner"), "{ambiguous}");
    let ops_keys = ["admin", "key", "list", "--service-account", "ci-deploy", "--owner", "ops@example.org", "--json"];
    assert_eq!(p.json(&ops_keys, None).as_array().unwrap().len(), 0);
    let deleted =
        p.json(&["admin", "service-account", "delete", "ci-deploy", "--owner", "dev@example.org", "--json"], None);
    assert_eq!(deleted["owner_email"], "dev@example.org");
    assert_eq!(p.json(&["admin", "key", "list", "--json"], None).as_array().unwrap().len(), 1, "its keys went with it");
    let left = p.json(&["admin", "service-account", "list", "--json"], None);
    assert_eq!(left[0]["owner_email"], "ops@example.org");
    p.json(&["admin", "service-account", "delete", "ci-deploy", "--json"], None);
}

#[tokio::test]
async fn api_keys_on_sqlite() {
    keys_round_trip(&Postern::sqlite()).await;
}

#[tokio::test]
async fn api_keys_on_postgres() {
    let Some(p) = Postern::postgres().await else { return };
    keys_round_trip(&p).await;
}
