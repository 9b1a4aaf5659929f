//! Signing keys: generation, the public JWK, the private part's storable form, and JWS
//! signatures (RS256 for ID tokens, OpenID Connect's default; EdDSA/Ed25519 for access tokens,
//! because it is fast to sign and verify).
//!
//! The key id is the RFC 7638 JWK thumbprint, so it is derived from the key and stable across
//! restarts and nodes.
//!
//! RS256 signatures are made by ring, whose RSA private-key operations run in constant time;
//! the `rsa` crate's do not (RUSTSEC-2023-0071, the Marvin attack), so it only generates keys
//! (once, offline from any request) and verifies signatures (public operations).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use postern_proto::Jwk;
use rand_core::CryptoRngCore;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::signature::{Signer, Verifier};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// RSA modulus size for RS256 keys.
pub const RSA_BITS: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), the default for ID tokens.
    RS256,
    /// Ed25519 (RFC 8037), used for access tokens.
    EdDSA,
}

impl Algorithm {
    pub const ALL: [Algorithm; 2] = [Algorithm::RS256, Algorithm::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("could not generate an RSA key: {0}")]
    Generate(String),
    #[error("stored private key is malformed")]
    Malformed,
    #[error("the signature could not be made")]
    Sign,
}

/// A private signing key in memory. `Debug` prints only the algorithm.
#[derive(Clone)]
pub enum PrivateKey {
    Rs256(std::sync::Arc<RsaSigner>),
    EdDsa(Box<ed25519_dalek::SigningKey>),
}

/// An RSA private key: ring's key pair to sign with, the PKCS#8 document it was read from (the
/// storable form), and the public key.
pub struct RsaSigner {
    pair: ring::signature::RsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    public: rsa::RsaPublicKey,
    rng: ring::rand::SystemRandom,
}

impl RsaSigner {
    fn from_pkcs8(der: &[u8]) -> Result<Self, SigningError> {
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der).map_err(|_| SigningError::Malformed)?;
        let public = rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(|_| SigningError::Malformed)?.to_public_key();
        Ok(Self { pair, pkcs8: Zeroizing::new(der.to_vec()), public, rng: crate::system::ring_rng() })
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({}, [redacted])", self.algorithm())
    }
}

impl PrivateKey {
    pub fn generate(alg: Algorithm, rng: &mut impl CryptoRngCore) -> Result<Self, SigningError> {
        Ok(match alg {
            Algorithm::RS256 => {
                let key = rsa::RsaPrivateKey::new(rng, RSA_BITS).map_err(|e| SigningError::Generate(e.to_string()))?;
                let der = key.to_pkcs8_der().map_err(|e| SigningError::Generate(e.to_string()))?;
                PrivateKey::Rs256(std::sync::Arc::new(RsaSigner::from_pkcs8(der.as_bytes())?))
            }
            Algorithm::EdDSA => PrivateKey::EdDsa(Box::new(ed25519_dalek::SigningKey::generate(rng))),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            PrivateKey::Rs256(_) => Algorithm::RS256,
            PrivateKey::EdDsa(_) => Algorithm::EdDSA,
        }
    }

    /// The storable form of the private part, to be sealed with the KEK: PKCS#8 DER for RSA,
    /// the 32-byte seed for Ed25519.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, SigningError> {
        match self {
            PrivateKey::Rs256(k) => Ok(k.pkcs8.clone()),
            PrivateKey::EdDsa(k) => Ok(Zeroizing::new(k.to_bytes().to_vec())),
        }
    }

    pub fn from_bytes(alg: Algorithm, bytes: &[u8]) -> Result<Self, SigningError> {
        match alg {
            Algorithm::RS256 => Ok(PrivateKey::Rs256(std::sync::Arc::new(RsaSigner::from_pkcs8(bytes)?))),
            Algorithm::EdDSA => {
                let seed: [u8; 32] = bytes.try_into().map_err(|_| SigningError::Malformed)?;
                Ok(PrivateKey::EdDsa(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed))))
            }
        }
    }

    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::Rs256(k) => PublicKey::Rs256(k.public.clone()),
            PrivateKey::EdDsa(k) => PublicKey::EdDsa(k.verifying_key()),
        }
    }

    /// The JWS signature over `signing_input` (`base64url(header) "." base64url(payload)`).
    pub fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        match self {
            PrivateKey::Rs256(k) => {
                let mut signature = vec![0; k.pair.public().modulus_len()];
                k.pair
                    .sign(&ring::signature::RSA_PKCS1_SHA256, &k.rng, signing_input, &mut signature)
                    .map_err(|_| SigningError::Sign)?;
                Ok(signature)
            }
            PrivateKey::EdDsa(k) => Ok(k.sign(signing_input).to_bytes().to_vec()),
        }
    }
}

/// A public verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rs256(rsa::RsaPublicKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rs256(_) => Algorithm::RS256,
            PublicKey::EdDsa(_) => Algorithm::EdDSA,
        }
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let canonical = match self {
            PublicKey::Rs256(k) => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(k.e().to_bytes_be()),
                URL_SAFE_NO_PAD.encode(k.n().to_bytes_be())
            ),
            PublicKey::EdDsa(k) => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(k.as_bytes()))
            }
        };
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The public JWK, with `kid` set to the thumbprint.
    pub fn to_jwk(&self) -> Jwk {
        let kid = self.thumbprint();
        let alg = self.algorithm().as_str().to_owned();
        match self {
            PublicKey::Rs256(k) => Jwk {
                kty: "RSA".into(),
                kid,
                use_: "sig".into(),
                alg,
                n: Some(URL_SAFE_NO_PAD.encode(k.n().to_bytes_be())),
                e: Some(URL_SAFE_NO_PAD.encode(k.e().to_bytes_be())),
                crv: None,
                x: None,
            },
            PublicKey::EdDsa(k) => Jwk {
                kty: "OKP".into(),
                kid,
                use_: "sig".into(),
                alg,
                n: None,
                e: None,
                crv: Some("Ed25519".into()),
                x: Some(URL_SAFE_NO_PAD.encode(k.as_bytes())),
            },
        }
    }

    /// Reads a public JWK as published by a JWKS endpoint.
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let b64 = |s: &Option<String>| s.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        match (jwk.kty.as_str(), jwk.alg.as_str()) {
            ("RSA", "RS256") => {
                let n = rsa::BigUint::from_bytes_be(&b64(&jwk.n)?);
                let e = rsa::BigUint::from_bytes_be(&b64(&jwk.e)?);
                rsa::RsaPublicKey::new(n, e).ok().map(PublicKey::Rs256)
            }
            ("OKP", "EdDSA") if jwk.crv.as_deref() == Some("Ed25519") => {
                let x: [u8; 32] = b64(&jwk.x)?.try_into().ok()?;
                ed25519_dalek::VerifyingKey::from_bytes(&x).ok().map(PublicKey::EdDsa)
            }
            _ => None,
        }
    }

    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Rs256(k) => {
                let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
                    return false;
                };
                rsa::pkcs1v15::VerifyingKey::<Sha256>::new(k.clone()).verify(signing_input, &sig).is_ok()
            }
            PublicKey::EdDsa(k) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
                    return false;
                };
                k.verify(signing_input, &sig).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn keys_survive_storage_and_verify_through_their_jwk() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
        for alg in Algorithm::ALL {
            let key = PrivateKey::generate(alg, &mut rng).unwrap();
            let restored = PrivateKey::from_bytes(alg, &key.to_bytes().unwrap()).unwrap();
            let jwk = key.public().to_jwk();
            assert_eq!(jwk.kid, restored.public().thumbprint(), "{alg}: kid must be stable");
            assert_eq!(jwk.alg, alg.as_str());
            let public = PublicKey::from_jwk(&jwk).unwrap();
            let sig = restored.sign(b"header.payload").unwrap();
            assert!(public.verify(b"header.payload", &sig), "{alg}");
            assert!(!public.verify(b"header.payloaD", &sig), "{alg}");
            assert!(!format!("{key:?}").contains(&jwk.kid));
        }
    }

    #[test]
    fn ring_signs_rs256_exactly_as_pkcs1_v1_5_specifies() {
        // PKCS#1 v1.5 signatures are deterministic: ring's must equal the rsa crate's.
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let key = PrivateKey::generate(Algorithm::RS256, &mut rng).unwrap();
        let der = key.to_bytes().unwrap();
        let reference = rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap());
        let expected =
            rsa::signature::SignatureEncoding::to_vec(&rsa::signature::Signer::sign(&reference, b"header.payload"));
        assert_eq!(key.sign(b"header.payload").unwrap(), expected);
    }

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1 example key and its thumbprint.
        let jwk = Jwk {
            kty: "RSA".into(),
            kid: String::new(),
            use_: "sig".into(),
            alg: "RS256".into(),
            n: Some("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw".into()),
            e: Some("AQAB".into()),
            crv: None,
            x: None,
        };
        let public = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(public.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn malformed_stored_keys_are_refused() {
        assert!(PrivateKey::from_bytes(Algorithm::EdDSA, b"short").is_err());
        assert!(PrivateKey::from_bytes(Algorithm::RS256, b"not der").is_err());
        assert_eq!(Algorithm::parse("none"), None);
    }
}
