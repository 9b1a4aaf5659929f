//! Unit tests of the parts that need no server: reading the credential, the claim checks.

use super::*;
use axum::http::HeaderValue;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

const KEY: &str = "pst_u_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG_x";

#[test]
fn the_credential_comes_from_one_header() {
    assert_eq!(credential(&headers(&[("authorization", "Bearer abc")])), Ok("abc"));
    assert_eq!(credential(&headers(&[("authorization", "bearer  abc ")])), Ok("abc"));
    assert_eq!(credential(&headers(&[("x-api-key", KEY)])), Ok(KEY));
    assert_eq!(credential(&headers(&[])), Err(GuardError::Missing));
    assert_eq!(credential(&headers(&[("authorization", "Basic YTpi")])), Err(GuardError::Missing));
    assert_eq!(credential(&headers(&[("authorization", "Bearer ")])), Err(GuardError::Missing));
    assert!(matches!(
        credential(&headers(&[("authorization", "Bearer abc"), ("x-api-key", KEY)])),
        Err(GuardError::InvalidRequest(_))
    ));
    assert!(matches!(credential(&headers(&[("x-api-key", "abc")])), Err(GuardError::InvalidToken(_))));
}

fn guard(leeway: i64) -> Guard {
    Guard(Arc::new(Inner {
        issuer: "https://auth.example.org".into(),
        audience: "https://api.example.org".into(),
        resource: crate::metadata::Resource::new(
            "https://api.example.org",
            "https://auth.example.org",
            Vec::new(),
            None,
        ),
        algorithms: vec!["EdDSA".into()],
        leeway,
        clock: Arc::new(SystemClock),
        http: reqwest::Client::new(),
        jwks: Jwks::new("http://127.0.0.1:9/jwks".into(), 30),
        introspector: None,
        verified: cache::TtlCache::new(10),
    }))
}

fn claims() -> Claims {
    Claims {
        iss: "https://auth.example.org".into(),
        sub: "u1".into(),
        aud: OneOrMany(vec!["https://other".into(), "https://api.example.org".into()]),
        client_id: Some("app".into()),
        scope: "read".into(),
        exp: 1_000,
        nbf: None,
        iat: Some(900),
        amr: Vec::new(),
        acr: None,
    }
}

#[test]
fn claims_are_checked_with_leeway() {
    let g = guard(30);
    assert_eq!(g.check_claims(&claims(), 950), Ok(()));
    assert_eq!(g.check_claims(&claims(), 1_029), Ok(()), "within the leeway after exp");
    assert!(g.check_claims(&claims(), 1_030).is_err(), "past the leeway");
    assert_eq!(g.check_claims(&claims(), 871), Ok(()), "iat slightly ahead of our clock");
    assert!(g.check_claims(&claims(), 860).is_err(), "iat far in the future");
    let not_yet = Claims { nbf: Some(990), ..claims() };
    assert!(g.check_claims(&not_yet, 950).is_err());
    assert_eq!(g.check_claims(&not_yet, 961), Ok(()));
    let other_issuer = Claims { iss: "https://evil.example".into(), ..claims() };
    assert!(g.check_claims(&other_issuer, 950).is_err());
    let other_audience = Claims { aud: OneOrMany(vec!["https://other".into()]), ..claims() };
    assert!(g.check_claims(&other_audience, 950).is_err());
    assert!(guard(0).check_claims(&claims(), 1_000).is_err(), "exp is exclusive");
}

#[tokio::test]
async fn refused_before_any_network_call() {
    let g = guard(30);
    // A mistyped key fails its checksum offline; a JWT with an algorithm outside the
    // allow-list is refused before its key is looked up; without an introspection client an
    // opaque token cannot be checked.
    let key = postern_core::apikey::NewApiKey::generate(
        postern_core::apikey::KeyKind::Personal,
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(1),
    );
    let mut typo = key.expose().to_owned();
    typo.replace_range(8..9, if &typo[8..9] == "a" { "b" } else { "a" });
    assert!(matches!(g.verify(&typo).await, Err(GuardError::InvalidToken(_))));
    let rs256 = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.e30.c2ln";
    assert!(matches!(g.verify(rs256).await, Err(GuardError::InvalidToken(d)) if d.contains("algorithm")));
    assert!(matches!(g.verify("opaque-token").await, Err(GuardError::InvalidToken(_))));
    assert_eq!(g.stats(), GuardStats { jwks_fetches: 0, introspections: 0 });
}

use rand_core::SeedableRng;
