//! Interoperability with an independent OpenID Connect client library (the `openidconnect`
//! crate): discovery, code + PKCE, ID-token signature and claims, refresh, userinfo.

use crate::helpers::sign_in_and_allow;
use crate::helpers::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use postern_core::client::{AccessTokenFormat, ClientType, GrantType};
use postern_core::system::Clock;

#[tokio::test]
async fn the_openidconnect_crate_signs_in_refreshes_and_reads_userinfo() {
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    // The library checks expiry against the real time, so this server runs on it.
    let app = start_at(test_config(&db), postern_core::system::SystemClock.now()).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let (id, secret) = register(
        &app,
        ClientType::Confidential,
        &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        "openid email profile offline_access",
        AccessTokenFormat::Jwt,
    )
    .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http).await.unwrap();
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(id), Some(ClientSecret::new(secret.unwrap())))
            .set_redirect_uri(RedirectUrl::new("https://app.example.org/cb".into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let mut v = visitor(&app);
    let params = sign_in_and_allow(&mut v, url.as_str(), "ann@example.org", "correct horse").await;
    assert_eq!(&params["state"], csrf.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("a valid ID token");
    assert_eq!(claims.email().map(|e| e.as_str()), Some("ann@example.org"));
    assert_eq!(claims.issuer().as_str(), app.base);
    let at_hash = claims.access_token_hash().expect("at_hash");
    let expected = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&client.id_token_verifier()).unwrap(),
    )
    .unwrap();
    assert_eq!(at_hash, &expected);

    let userinfo: CoreUserInfoClaims =
        client.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.unwrap();
    assert_eq!(userinfo.subject(), claims.subject());
    assert_eq!(userinfo.email().map(|e| e.as_str()), Some("ann@example.org"));

    let refresh = tokens.refresh_token().expect("offline_access gives a refresh token");
    let refreshed = client.exchange_refresh_token(refresh).unwrap().request_async(&http).await.unwrap();
    assert_ne!(refreshed.refresh_token().unwrap().secret(), refresh.secret(), "rotated");
    assert_ne!(refreshed.access_token().secret(), tokens.access_token().secret());
    // OIDC Core §12.2: the refresh response may omit the ID token, and the crate accepts that.
    assert!(refreshed.extra_fields().id_token().is_none(), "no ID token unless the client asks for one");
}

#[tokio::test]
async fn the_openidconnect_crate_verifies_es256_id_tokens() {
    use openidconnect::core::CoreJwsSigningAlgorithm;
    let Some(db) = postern_testkit::fresh(postern_testkit::Kind::Sqlite).await else { return };
    let app = start_at(test_config(&db), postern_core::system::SystemClock.now()).await.unwrap();
    create_user(&app, "ann@example.org", "correct horse").await;
    let (id, secret) =
        register(&app, ClientType::Confidential, &[GrantType::AuthorizationCode], "openid", AccessTokenFormat::Jwt)
            .await;
    let store = &app.state.store;
    let mut settings = store.client_by_id(&id).await.unwrap().unwrap().settings();
    settings.policy.id_token_alg = postern_core::signing::Algorithm::ES256;
    settings.policy.access_token_alg = postern_core::signing::Algorithm::ES256;
    store.update_client(&id, &settings, app.clock.now()).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http).await.unwrap();
    let client =
        CoreClient::from_provider_metadata(metadata, ClientId::new(id), Some(ClientSecret::new(secret.unwrap())))
            .set_redirect_uri(RedirectUrl::new("https://app.example.org/cb".into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let mut v = visitor(&app);
    let params = sign_in_and_allow(&mut v, url.as_str(), "ann@example.org", "correct horse").await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    assert_eq!(*id_token.signing_alg().unwrap(), CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    // The library's own P-256 code checks the signature, with the key from the JWKS.
    let es256_only = client.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token.claims(&es256_only, &nonce).expect("a valid ES256 ID token");
    assert_eq!(claims.issuer().as_str(), app.base);
    let expected = openidconnect::AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&es256_only).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
    // The access token is ES256 too, verified with the published key.
    let access = verify_with_jwks_as(&app, tokens.access_token().secret(), "ES256").await;
    assert_eq!(access.sub, claims.subject().as_str());
}
