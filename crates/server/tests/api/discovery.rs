//! Discovery documents and the JWKS.

use crate::helpers::*;
use postern_core::signing::PublicKey;
use postern_proto::{JwkSet, ProviderMetadata};

both!(discovery_describes_what_is_implemented, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let raw: serde_json::Value = r.json().await.unwrap();
        let meta: ProviderMetadata = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(meta.issuer, app.base);
        assert_eq!(meta.jwks_uri, format!("{}/.well-known/jwks.json", app.base));
        assert_eq!(
            meta.id_token_signing_alg_values_supported,
            ["RS256", "EdDSA", "ES256"],
            "RS256 by default, EdDSA or ES256 per client"
        );
        assert_eq!(meta.subject_types_supported, ["public"]);
        assert_eq!(meta.token_endpoint, Some(format!("{}/oauth/token", app.base)));
        assert_eq!(meta.introspection_endpoint, Some(format!("{}/oauth/introspect", app.base)));
        assert_eq!(meta.revocation_endpoint, Some(format!("{}/oauth/revoke", app.base)));
        assert_eq!(
            meta.grant_types_supported,
            [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "urn:ietf:params:oauth:grant-type:device_code"
            ]
        );
        assert_eq!(meta.device_authorization_endpoint, Some(format!("{}/oauth/device_authorization", app.base)));
        assert_eq!(meta.authorization_endpoint, Some(format!("{}/oauth/authorize", app.base)));
        assert_eq!(meta.userinfo_endpoint, Some(format!("{}/userinfo", app.base)));
        assert_eq!(meta.response_types_supported, ["code"]);
        assert_eq!(meta.code_challenge_methods_supported, ["S256"], "never plain");
        assert_eq!(meta.authorization_response_iss_parameter_supported, Some(true));
        assert_eq!(meta.token_endpoint_auth_methods_supported, ["client_secret_basic", "client_secret_post", "none"]);
        // Nothing is advertised that does not exist yet.
    }
});

both!(jwks_serves_the_public_keys_with_caching_headers, |kind| async move {
    let Some((app, _db)) = spawn(kind).await else { return };
    let r = app.get("/.well-known/jwks.json").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jwk-set+json");
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let body = r.text().await.unwrap();
    let set: JwkSet = serde_json::from_str(&body).unwrap();
    let mut algs: Vec<_> = set.keys.iter().map(|k| k.alg.as_str()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for jwk in &set.keys {
        let public = PublicKey::from_jwk(jwk).expect("a usable public key");
        assert_eq!(jwk.kid, public.thumbprint(), "kid is the RFC 7638 thumbprint");
        assert_eq!(jwk.use_, "sig");
    }
    // No private member of any kind is published.
    for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
        assert!(!body.contains(private), "{private} in JWKS");
    }
    // The active keys sign, and what they sign verifies with the published keys.
    let keys = app.state.keys.keys();
    for (alg, active) in &keys.active {
        let jwk = set.keys.iter().find(|k| k.kid == active.kid).unwrap_or_else(|| panic!("{alg} key published"));
        let sig = active.key.sign(b"payload").unwrap();
        assert!(PublicKey::from_jwk(jwk).unwrap().verify(b"payload", &sig));
    }

    let again = app.http.get(app.url("/.well-known/jwks.json")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.text().await.unwrap().is_empty());
    let stale =
        app.http.get(app.url("/.well-known/jwks.json")).header("if-none-match", "\"other\"").send().await.unwrap();
    assert_eq!(stale.status(), 200);
});
