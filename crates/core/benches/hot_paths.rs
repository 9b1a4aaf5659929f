//! The hot paths of the server in isolation, without HTTP or a database: PKCE verification, JWT
//! signing and verification (EdDSA and RS256), API-key parsing and hashing, user-code
//! normalisation, and Argon2id with the default (production) parameters.
//!
//! `cargo bench -p postern-core --bench hot_paths` (add `-- --quick` for a short run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use postern_core::apikey::{self, KeyKind, NewApiKey};
use postern_core::jwt::{self, OneOrMany};
use postern_core::password::{self, Argon2Params};
use postern_core::secret::TokenHash;
use postern_core::signing::{Algorithm, PrivateKey};
use postern_core::token::{ACCESS_TOKEN_TYP, AccessClaims};
use postern_core::{device, pkce};
use rand_core::SeedableRng;
use std::hint::black_box;

fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
    rand_chacha::ChaCha20Rng::seed_from_u64(seed)
}

fn protocol(c: &mut Criterion) {
    let verifier = "dBjftJeZ4CVP-mJ92K9gMRW3xQbPSqFdH6t0v2Ys5YwXz1aBcDeFgHiJkLmNoPq";
    let challenge = pkce::s256(verifier);
    c.bench_function("PKCE S256 verification", |b| {
        b.iter(|| assert!(pkce::verify(black_box(verifier), black_box(&challenge))))
    });

    let key = NewApiKey::generate(KeyKind::Personal, &mut rng(1));
    let text = key.expose().to_owned();
    c.bench_function("API key: parse (format and checksum) and SHA-256", |b| {
        b.iter(|| {
            let parsed = apikey::parse(black_box(&text)).unwrap();
            black_box(parsed);
            TokenHash::of(black_box(&text))
        })
    });

    c.bench_function("user code normalisation", |b| {
        b.iter(|| device::UserCode::parse(black_box(" wdjb-mjht ")).unwrap())
    });
}

fn jwts(c: &mut Criterion) {
    let claims = AccessClaims {
        iss: "https://auth.example.org".into(),
        sub: "a32c67ffac750c64fe2efb5bebf25a02".into(),
        aud: OneOrMany(vec!["https://auth.example.org".into()]),
        client_id: "app".into(),
        scope: "openid read".into(),
        jti: "jwZb8rulJa3Td0158oWrqQ".into(),
        iat: 1_800_000_000,
        exp: 1_800_000_900,
        auth_time: None,
        amr: Vec::new(),
        acr: None,
    };
    for alg in [Algorithm::EdDSA, Algorithm::RS256] {
        let key = PrivateKey::generate(alg, &mut rng(2)).unwrap();
        let public = key.public();
        c.bench_function(&format!("JWT access token: sign ({alg})"), |b| {
            b.iter(|| jwt::sign(black_box(&claims), &key, "k1", ACCESS_TOKEN_TYP).unwrap())
        });
        let token = jwt::sign(&claims, &key, "k1", ACCESS_TOKEN_TYP).unwrap();
        c.bench_function(&format!("JWT access token: verify ({alg})"), |b| {
            b.iter(|| {
                let (_, decoded): (_, AccessClaims) =
                    jwt::verify(black_box(&token), Some(ACCESS_TOKEN_TYP), |_| Some(&public)).unwrap();
                decoded
            })
        });
    }
}

fn argon2id(c: &mut Criterion) {
    let params = Argon2Params::default();
    let phc = password::hash_password("correct horse battery staple", &params, &mut rng(3)).unwrap();
    let mut group = c.benchmark_group("Argon2id");
    group.sample_size(10);
    group.bench_function(
        format!("verify a password (m={} KiB, t={}, p={})", params.memory_kib, params.iterations, params.parallelism),
        |b| b.iter(|| assert!(password::verify_password(black_box("correct horse battery staple"), &phc))),
    );
    group.finish();
}

criterion_group!(benches, protocol, jwts, argon2id);
criterion_main!(benches);
