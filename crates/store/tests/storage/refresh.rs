//! Refresh families in storage: rotation under a race, and the trimming that keeps their rows
//! from piling up.

use super::*;
use postern_store::{CodeGrant, CodeOutcome, NewCode, NewFamily, Redemption};

/// Starts refresh family `grant_id` for user `user` of client c1 by redeeming a code at `NOW`;
/// its first token's hash is that of `first`, idle until `idle`, its access token until `access`.
async fn start_family(store: &Store, user: &str, grant_id: &str, first: &str, idle: i64, access: i64) -> TokenHash {
    let grant = CodeGrant {
        client_id: "c1".into(),
        user_id: user.to_owned().into(),
        redirect_uri: "https://app.example.org/cb".into(),
        code_challenge: "challenge".into(),
        nonce: None,
        scope: "openid offline_access".into(),
        auth_time: NOW,
        amr: "pwd".into(),
        resource: String::new(),
    };
    let code = TokenHash::of(&format!("code-{grant_id}"));
    store.create_code(&NewCode { hash: code, grant: &grant, issued_at: NOW, expires_at: NOW + 60 }).await.unwrap();
    let first = TokenHash::of(first);
    let family = NewFamily {
        grant_id: grant_id.into(),
        token_hash: first,
        expires_at: NOW + 86_400,
        idle_expires_at: idle,
        audience: String::new(),
    };
    let redemption = Redemption {
        client_id: "c1",
        redirect_uri: "https://app.example.org/cb",
        code_challenge: "challenge",
        access_jti: Some("jti-0"),
        opaque_access: None,
        access_expires_at: access,
        refresh: Some(family),
        refresh_rule: postern_core::oauth::RefreshRule { client_allows_refresh: true, always: true },
    };
    assert!(matches!(store.redeem_code(&code, NOW, &redemption).await.unwrap(), CodeOutcome::Consumed(_)));
    first
}

both!(a_refresh_token_is_rotated_exactly_once_under_a_race, |store: Store, _url| async move {
    use postern_store::{AccessTokenRecord, NewAccessToken, NewRefresh};
    let (user, _client) = user_and_client(&store).await;
    let first = start_family(&store, &user, "family-1", "refresh-0", NOW + 3_600, NOW + 900).await;

    // Forty refreshes with the same token at once, each with its own successor (and, on every
    // other one, an opaque access token): on SQLite they meet in the group-commit writer's
    // batches, several of them in one.
    let record = AccessTokenRecord {
        client_id: "c1".into(),
        user_id: Some(user.clone().into()),
        subject: user.clone(),
        scope: "openid".into(),
        audience: String::new(),
        auth_time: Some(NOW),
        issued_at: NOW + 1,
        expires_at: NOW + 900,
        amr: "pwd".into(),
    };
    let attempts: Vec<_> = (1..=40)
        .map(|i| {
            let (store, record) = (store.clone(), record.clone());
            tokio::spawn(async move {
                let new = NewRefresh {
                    hash: TokenHash::of(&format!("refresh-{i}")),
                    grant_id: "family-1",
                    scope: "openid offline_access",
                    issued_at: NOW + 1,
                    idle_expires_at: NOW + 3_600,
                    access_jti: None,
                    access_token_hash: None,
                    access_expires_at: NOW + 900,
                };
                let access = NewAccessToken { hash: TokenHash::of(&format!("access-{i}")), record: &record };
                let opaque = (i % 2 == 0).then_some(&access);
                let sealed = format!("successor-{i}").into_bytes();
                (i, store.rotate_refresh(&first, NOW + 1, &sealed, &new, opaque).await.unwrap())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for a in attempts {
        let (i, won) = a.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {winners:?}");
    let w = winners[0];
    let old = store.refresh_token(&first).await.unwrap().unwrap();
    assert_eq!(old.rotated_at, Some(NOW + 1));
    assert_eq!(old.successor_sealed, Some(format!("successor-{w}").into_bytes()), "the winner's successor is kept");
    for i in 1..=40 {
        let new = store.refresh_token(&TokenHash::of(&format!("refresh-{i}"))).await.unwrap();
        assert_eq!(new.is_some(), i == w, "only the winner's new token is stored ({i})");
        let access = store.access_token(&TokenHash::of(&format!("access-{i}")), NOW + 2).await.unwrap();
        assert_eq!(access.is_some(), i == w && i % 2 == 0, "only the winner's access token is stored ({i})");
    }
    let with_user = store.refresh_token_with_user(&TokenHash::of(&format!("refresh-{w}"))).await.unwrap().unwrap();
    assert_eq!((with_user.user.id.as_str(), with_user.token.grant_id.as_str()), (user.as_str(), "family-1"));
    // Rotating the rotated token again loses, and writes nothing.
    let again = NewRefresh { hash: TokenHash::of("refresh-late"), ..store_refresh("family-1") };
    assert!(!store.rotate_refresh(&first, NOW + 2, b"late", &again, None).await.unwrap());
    assert!(store.refresh_token(&TokenHash::of("refresh-late")).await.unwrap().is_none());
});

fn store_refresh(grant_id: &str) -> postern_store::NewRefresh<'_> {
    postern_store::NewRefresh {
        hash: TokenHash::of("unused"),
        grant_id,
        scope: "openid",
        issued_at: NOW,
        idle_expires_at: NOW + 60,
        access_jti: None,
        access_token_hash: None,
        access_expires_at: NOW + 60,
    }
}

/// Rotates `old` at `at` to a new token named `new`, idle until `idle`, its access token (JWT id
/// `jti`) until `access`.
async fn rotate(store: &Store, old: &TokenHash, at: i64, new: &str, jti: &str, idle: i64, access: i64) -> TokenHash {
    let hash = TokenHash::of(new);
    let next = postern_store::NewRefresh {
        hash,
        scope: "openid offline_access",
        issued_at: at,
        idle_expires_at: idle,
        access_jti: Some(jti),
        access_expires_at: access,
        ..store_refresh("family-1")
    };
    assert!(store.rotate_refresh(old, at, b"sealed successor", &next, None).await.unwrap());
    hash
}

/// Runs the trimming at `now` until it has nothing left to do; returns how many rows it touched.
async fn trim(store: &Store, now: i64) -> u64 {
    let mut total = 0;
    loop {
        match store.trim_refresh(now, 30, 2).await.unwrap() {
            0 => return total,
            n => total += n,
        }
    }
}

both!(refresh_families_shrink_to_what_reuse_detection_needs_and_go_when_they_end, |store: Store, _url| async move {
    let (user, _client) = user_and_client(&store).await;
    // Family 1 lives on: refresh-0 → refresh-1 (at +10) → refresh-2 (at +20), each access token
    // good for 900 s, the live token idle until +3,600.
    let r0 = start_family(&store, &user, "family-1", "refresh-0", NOW + 3_600, NOW + 900).await;
    let r1 = rotate(&store, &r0, NOW + 10, "refresh-1", "jti-1", NOW + 3_600, NOW + 910).await;
    let r2 = rotate(&store, &r1, NOW + 20, "refresh-2", "jti-2", NOW + 3_600, NOW + 920).await;
    // Family 2 is revoked at +30; family 3's only token goes idle at +100.
    let f2 = start_family(&store, &user, "family-2", "f2-token", NOW + 3_600, NOW + 900).await;
    store.revoke_grant("family-2", NOW + 30).await.unwrap();
    let f3 = start_family(&store, &user, "family-3", "f3-token", NOW + 100, NOW + 100).await;
    let token = |h: TokenHash| {
        let store = store.clone();
        async move { store.refresh_token(&h).await.unwrap() }
    };

    // Within the grace window (30 s) nothing changes.
    assert_eq!(trim(&store, NOW + 40).await, 0);
    assert_eq!(token(r1).await.unwrap().successor_sealed.as_deref(), Some(&b"sealed successor"[..]));

    // After it, the successor goes; the scope and access token stay while that token is valid
    // (revoking the family must still reach it).
    assert_eq!(trim(&store, NOW + 45).await, 1, "refresh-0's successor, rotated at +10");
    let t0 = token(r0).await.unwrap();
    assert_eq!((t0.successor_sealed, t0.scope.as_str()), (None, "openid offline_access"));
    assert_eq!(token(r1).await.unwrap().successor_sealed.as_deref(), Some(&b"sealed successor"[..]));

    // Once the access tokens have expired, rotated rows keep only what reuse detection needs;
    // the revoked family (a minute after its revocation) and the idle one are deleted.
    assert!(trim(&store, NOW + 1_000).await >= 5);
    for spent in [r0, r1] {
        let t = token(spent).await.unwrap();
        assert_eq!(
            (t.grant_id.as_str(), t.rotated_at.is_some(), t.scope.as_str(), t.successor_sealed),
            ("family-1", true, "", None),
            "a spent token still names its family, so a reuse revokes it"
        );
    }
    let live = token(r2).await.unwrap();
    assert!(live.is_current(NOW + 1_000), "the live token is untouched: {live:?}");
    assert_eq!(live.scope, "openid offline_access");
    assert!(token(f2).await.is_none(), "the revoked family is gone");
    assert!(token(f3).await.is_none(), "the idle family is gone");
    assert_eq!(
        store.revoke_grant("family-1", NOW + 1_000).await.unwrap(),
        Vec::new(),
        "no access token left to revoke"
    );

    // Family 1, revoked now, goes a minute later with all its tokens.
    assert_eq!(trim(&store, NOW + 1_030).await, 0);
    assert!(token(r0).await.is_some());
    assert!(trim(&store, NOW + 1_061).await >= 1);
    for gone in [r0, r1, r2] {
        assert!(token(gone).await.is_none(), "the ended family's tokens go with it");
    }
});

/// A database made by a binary that knew schema 21 kept successor pairs on the rotated rows:
/// after the upgrade they are where the replay looks for them, until their window ends.
async fn upgrade_moves_successor_pairs(kind: Kind) {
    let Some(db) = postern_testkit::fresh(kind).await else {
        return;
    };
    let store = Store::connect(&db.url, PoolOptions::default()).await.unwrap();
    assert_eq!(store.migrate_to(21, NOW).await.unwrap().version, 21);
    let (user, _client) = user_and_client(&store).await;
    let r0 = start_family(&store, &user, "family-1", "refresh-0", NOW + 3_600, NOW + 900).await;
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let blob = |bytes: &[u8]| {
        if db.url.starts_with("sqlite:") { format!("X'{}'", hex(bytes)) } else { format!("'\\x{}'::bytea", hex(bytes)) }
    };
    let rotate = format!(
        "UPDATE refresh_tokens SET rotated_at = {}, successor_sealed = {} WHERE token_hash = {}",
        NOW + 10,
        blob(b"old successor"),
        blob(r0.as_bytes())
    );
    sqlx_exec(&db.url, &rotate).await;

    assert_eq!(store.migrate(NOW + 11).await.unwrap().applied, vec![22]);
    let t = store.refresh_token(&r0).await.unwrap().unwrap();
    assert_eq!((t.rotated_at, t.successor_sealed.as_deref()), (Some(NOW + 10), Some(&b"old successor"[..])));
    assert_eq!(trim(&store, NOW + 41).await, 1, "the pair goes when its window ends");
    assert_eq!(store.refresh_token(&r0).await.unwrap().unwrap().successor_sealed, None);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_moves_successor_pairs_sqlite() {
    upgrade_moves_successor_pairs(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upgrade_moves_successor_pairs_postgres() {
    upgrade_moves_successor_pairs(Kind::Postgres).await;
}
