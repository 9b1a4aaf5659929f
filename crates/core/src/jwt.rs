//! JSON Web Tokens (RFC 7519) in JWS compact serialization (RFC 7515), signed with Postern's
//! own keys. Reading and verifying them is `postern-verify`'s (so that an application's guard
//! needs none of the signing side), re-exported here.

use crate::signing::PrivateKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use postern_verify::jwt::*;
use serde::Serialize;

/// Signs `claims` with `key`, naming it `kid`, with the given `typ` header.
pub fn sign(claims: &impl Serialize, key: &PrivateKey, kid: &str, typ: &str) -> Result<String, JwtError> {
    let header =
        Header { alg: key.algorithm().as_str().to_owned(), typ: Some(typ.to_owned()), kid: Some(kid.to_owned()) };
    let header = serde_json::to_vec(&header).map_err(|_| JwtError::Malformed)?;
    let payload = serde_json::to_vec(claims).map_err(|_| JwtError::Malformed)?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = key.sign(token.as_bytes()).map_err(|_| JwtError::Signing)?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::Algorithm;
    use rand_core::SeedableRng;
    use serde_json::{Value, json};

    #[test]
    fn sign_and_verify_with_each_algorithm() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg, &mut rng).unwrap();
            let public = key.public();
            let token = sign(&json!({"sub": "u1", "aud": "x"}), &key, "k1", "at+jwt").unwrap();
            let (header, claims): (Header, Value) =
                verify(&token, Some("at+jwt"), |kid| (kid == "k1").then_some(&public)).unwrap();
            assert_eq!(header.alg, alg.as_str());
            assert_eq!(claims["sub"], "u1");
            assert_eq!(verify::<Value>(&token, Some("JWT"), |_| Some(&public)).err(), Some(JwtError::Type));
            assert_eq!(verify::<Value>(&token, None, |_| None).err(), Some(JwtError::UnknownKey));
            // A changed payload breaks the signature.
            let parts: Vec<&str> = token.split('.').collect();
            let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(br#"{"sub":"admin"}"#), parts[2]);
            assert_eq!(verify::<Value>(&forged, None, |_| Some(&public)).err(), Some(JwtError::Signature));
        }
    }

    #[test]
    fn alg_none_and_algorithm_confusion_are_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
        let ed = PrivateKey::generate(Algorithm::EdDSA, &mut rng).unwrap();
        let public = ed.public();
        let token = sign(&json!({"sub": "u"}), &ed, "k", "at+jwt").unwrap();
        let payload = token.split('.').nth(1).unwrap();
        for alg in ["none", "RS256", "HS256"] {
            let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k"}}"#));
            let sig = token.split('.').nth(2).unwrap();
            for candidate in [format!("{header}.{payload}."), format!("{header}.{payload}.{sig}")] {
                let got = verify::<Value>(&candidate, None, |_| Some(&public)).err();
                assert!(matches!(got, Some(JwtError::Algorithm | JwtError::Malformed)), "{alg}: {got:?}");
            }
        }
        assert_eq!(verify::<Value>("a.b", None, |_| Some(&public)).err(), Some(JwtError::Malformed));
        assert_eq!(
            verify::<Value>(&"a".repeat(MAX_TOKEN_BYTES + 1), None, |_| Some(&public)).err(),
            Some(JwtError::Malformed)
        );
    }
}
