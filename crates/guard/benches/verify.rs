//! How long the guard takes to accept a credential in-process: a JWT access token seen for the
//! first time (signature and claims, keys already fetched) and again (verified-token cache), an
//! API key whose introspection answer is cached, and the Ed25519 check alone as the floor.
//!
//! `cargo bench -p postern-guard --bench verify`. The issuer is a stand-in served on loopback
//! (discovery, JWKS, introspection) so that the figures are the guard's own work; the guard is
//! tested against a real Postern in the server's tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::routing::{get, post};
use axum::{Json, Router};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use postern_core::jwt::{self, OneOrMany};
use postern_core::signing::{Algorithm, PrivateKey};
use postern_core::system::{Clock, SystemClock};
use postern_core::token::{ACCESS_TOKEN_TYP, AccessClaims};
use postern_guard::Guard;
use postern_proto::{IntrospectionResponse, JwkSet};
use rand_core::SeedableRng;
use serde_json::json;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let key = PrivateKey::generate(Algorithm::EdDSA, &mut rand_chacha::ChaCha20Rng::seed_from_u64(7)).unwrap();
    let now = SystemClock.now();
    let (guard, jwt, api_key, claims) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let mut jwk = key.public().to_jwk();
        jwk.kid = "k1".into();
        let jwks = JwkSet { keys: vec![jwk] };
        let meta = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}/jwks"),
            "introspection_endpoint": format!("{issuer}/introspect"),
        });
        let exp = now + 3600;
        let audience = issuer.clone();
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { Json(meta) }))
            .route("/jwks", get(move || async move { Json(jwks) }))
            .route(
                "/introspect",
                post(move || async move {
                    Json(IntrospectionResponse {
                        active: true,
                        aud: Some(vec![audience]),
                        scope: Some("read".into()),
                        token_type: Some("Bearer".into()),
                        exp: Some(exp),
                        sub: Some("u1".into()),
                        key_kind: Some("personal".into()),
                        ..Default::default()
                    })
                }),
            );
        tokio::spawn(axum::serve(listener, app).into_future());
        // A cache time longer than the run, so that every measured check is a cache hit.
        let guard = Guard::builder(&issuer, &issuer)
            .introspection_client("rs", "secret")
            .cache_secs(3600, 5)
            .build()
            .await
            .unwrap();
        let claims = AccessClaims {
            iss: issuer.clone(),
            sub: "u1".into(),
            aud: OneOrMany(vec![issuer.clone()]),
            client_id: "app".into(),
            scope: "read".into(),
            jti: "j1".into(),
            iat: now,
            exp,
            auth_time: None,
            amr: Vec::new(),
            acr: None,
        };
        let jwt = jwt::sign(&claims, &key, "k1", ACCESS_TOKEN_TYP).unwrap();
        let api_key = postern_core::apikey::NewApiKey::generate(
            postern_core::apikey::KeyKind::Personal,
            &mut rand_chacha::ChaCha20Rng::seed_from_u64(8),
        );
        let api_key = api_key.expose().to_owned();
        // The first check fills the cache; the benchmark measures the cached path.
        guard.verify(&api_key).await.unwrap();
        guard.verify(&jwt).await.unwrap();
        (guard, jwt, api_key, claims)
    });
    // The floor under the JWT figure: the Ed25519 signature check alone.
    let public = key.public();
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    let signature = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature).unwrap();
    c.bench_function("Ed25519 signature check alone", |b| {
        b.iter(|| assert!(public.verify(std::hint::black_box(input.as_bytes()), &signature)))
    });
    // A token seen for the first time: signature and claims checked in full.
    let mut n = 0u64;
    c.bench_function("guard: JWT access token (EdDSA), first presentation", |b| {
        b.iter_batched(
            || {
                n += 1;
                let claims = AccessClaims { jti: format!("j{n}"), ..claims.clone() };
                jwt::sign(&claims, &key, "k1", ACCESS_TOKEN_TYP).unwrap()
            },
            |token| rt.block_on(guard.verify(&token)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    // The same token again (a client reuses its access token): the verified-token cache.
    c.bench_function("guard: JWT access token (EdDSA), presented again", |b| {
        b.iter(|| rt.block_on(guard.verify(std::hint::black_box(&jwt))).unwrap())
    });
    c.bench_function("guard: API key, cached introspection answer", |b| {
        b.iter(|| rt.block_on(guard.verify(std::hint::black_box(&api_key))).unwrap())
    });
    assert_eq!(guard.stats().introspections, 1, "the key was introspected once, then served from the cache");
}

criterion_group!(benches, bench);
criterion_main!(benches);
