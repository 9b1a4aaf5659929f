//! Signing keys: generation, the public JWK, the private part's storable form, and JWS
//! signatures (RS256 for ID tokens, OpenID Connect's default; EdDSA/Ed25519 for access tokens,
//! because it is fast to sign and verify; ES256 for resource servers and relying parties that
//! verify nothing newer than ECDSA).
//!
//! The key id is the RFC 7638 JWK thumbprint, so it is derived from the key and stable across
//! restarts and nodes.
//!
//! RS256 signatures are made by ring, whose RSA private-key operations run in constant time;
//! the `rsa` crate's do not (RUSTSEC-2023-0071, the Marvin attack), so it only generates keys,
//! once and offline from any request. With the `openssl` feature (the server's build) they are
//! made by OpenSSL instead, also in constant time and with blinding, and more than twice as
//! fast (issue 18: 327 µs against ring's 777 µs on the benchmark machine, which is most of a
//! code exchange); PKCS#1 v1.5 signatures are deterministic, so both give the same bytes. ES256 keys are ring's too, generated, stored (PKCS#8) and
//! used by it alone. Public keys and verification are `postern-verify`'s, re-exported here.

pub use postern_verify::key::{Algorithm, PublicKey};
use rand_core::CryptoRngCore;
use ring::signature::RsaPublicKeyComponents;
use rsa::pkcs8::EncodePrivateKey;
use rsa::signature::Signer;
use zeroize::Zeroizing;

/// RSA modulus size for RS256 keys.
pub const RSA_BITS: usize = 2048;

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
    Es256(std::sync::Arc<EcSigner>),
}

/// A P-256 private key: ring's key pair, its PKCS#8 document (the storable form) and the
/// public key.
pub struct EcSigner {
    pair: ring::signature::EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
    rng: ring::rand::SystemRandom,
}

impl EcSigner {
    fn from_pkcs8(der: &[u8]) -> Result<Self, SigningError> {
        use ring::signature::KeyPair;
        let rng = crate::system::ring_rng();
        let pair =
            ring::signature::EcdsaKeyPair::from_pkcs8(&ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                .map_err(|_| SigningError::Malformed)?;
        let public = PublicKey::p256(pair.public_key().as_ref()).ok_or(SigningError::Malformed)?;
        Ok(Self { pair, pkcs8: Zeroizing::new(der.to_vec()), public, rng })
    }
}

/// An RSA private key: ring's key pair to sign with, the PKCS#8 document it was read from (the
/// storable form), and the public key.
pub struct RsaSigner {
    // With the `openssl` feature ring only checks the key and compares signatures in tests.
    #[cfg_attr(feature = "openssl", allow(dead_code))]
    pair: ring::signature::RsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicKey,
    #[cfg_attr(feature = "openssl", allow(dead_code))]
    rng: ring::rand::SystemRandom,
    #[cfg(feature = "openssl")]
    openssl: openssl::pkey::PKey<openssl::pkey::Private>,
}

impl RsaSigner {
    fn from_pkcs8(der: &[u8]) -> Result<Self, SigningError> {
        let pair = ring::signature::RsaKeyPair::from_pkcs8(der).map_err(|_| SigningError::Malformed)?;
        let components: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let public = PublicKey::rsa(&components.n, &components.e);
        Ok(Self {
            pair,
            pkcs8: Zeroizing::new(der.to_vec()),
            public,
            rng: crate::system::ring_rng(),
            #[cfg(feature = "openssl")]
            openssl: openssl::pkey::PKey::private_key_from_pkcs8(der).map_err(|_| SigningError::Malformed)?,
        })
    }

    /// The RS256 signature: OpenSSL's with the `openssl` feature, ring's without.
    fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        #[cfg(feature = "openssl")]
        {
            let mut signer = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &self.openssl)
                .map_err(|_| SigningError::Sign)?;
            signer.sign_oneshot_to_vec(signing_input).map_err(|_| SigningError::Sign)
        }
        #[cfg(not(feature = "openssl"))]
        self.sign_with_ring(signing_input)
    }

    #[cfg_attr(feature = "openssl", allow(dead_code))]
    fn sign_with_ring(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&ring::signature::RSA_PKCS1_SHA256, &self.rng, signing_input, &mut signature)
            .map_err(|_| SigningError::Sign)?;
        Ok(signature)
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
            // ring draws from the operating system's generator itself.
            Algorithm::ES256 => {
                let der = ring::signature::EcdsaKeyPair::generate_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &crate::system::ring_rng(),
                )
                .map_err(|_| SigningError::Generate("P-256".into()))?;
                PrivateKey::Es256(std::sync::Arc::new(EcSigner::from_pkcs8(der.as_ref())?))
            }
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            PrivateKey::Rs256(_) => Algorithm::RS256,
            PrivateKey::EdDsa(_) => Algorithm::EdDSA,
            PrivateKey::Es256(_) => Algorithm::ES256,
        }
    }

    /// The storable form of the private part, to be sealed with the KEK: PKCS#8 DER for RSA,
    /// the 32-byte seed for Ed25519, PKCS#8 DER for P-256.
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, SigningError> {
        match self {
            PrivateKey::Rs256(k) => Ok(k.pkcs8.clone()),
            PrivateKey::Es256(k) => Ok(k.pkcs8.clone()),
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
            Algorithm::ES256 => Ok(PrivateKey::Es256(std::sync::Arc::new(EcSigner::from_pkcs8(bytes)?))),
        }
    }

    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::Rs256(k) => k.public.clone(),
            PrivateKey::Es256(k) => k.public.clone(),
            PrivateKey::EdDsa(k) => PublicKey::EdDsa(k.verifying_key().to_bytes()),
        }
    }

    /// The JWS signature over `signing_input` (`base64url(header) "." base64url(payload)`).
    pub fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, SigningError> {
        match self {
            PrivateKey::Rs256(k) => k.sign(signing_input),
            PrivateKey::EdDsa(k) => Ok(k.sign(signing_input).to_bytes().to_vec()),
            // The fixed-length `r || s` form JWS uses (RFC 7518 §3.4).
            PrivateKey::Es256(k) => {
                Ok(k.pair.sign(&k.rng, signing_input).map_err(|_| SigningError::Sign)?.as_ref().to_vec())
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
    fn ring_and_the_signer_in_use_sign_rs256_alike() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let key = PrivateKey::generate(Algorithm::RS256, &mut rng).unwrap();
        let PrivateKey::Rs256(signer) = &key else { panic!("an RSA key") };
        for input in [&b"header.payload"[..], b"", &[0xff; 1000]] {
            assert_eq!(signer.sign(input).unwrap(), signer.sign_with_ring(input).unwrap());
        }
    }

    #[test]
    fn ring_signs_rs256_exactly_as_pkcs1_v1_5_specifies() {
        // PKCS#1 v1.5 signatures are deterministic: ring's must equal the rsa crate's.
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let key = PrivateKey::generate(Algorithm::RS256, &mut rng).unwrap();
        let der = key.to_bytes().unwrap();
        use rsa::pkcs8::DecodePrivateKey;
        let private = rsa::RsaPrivateKey::from_pkcs8_der(&der).unwrap();
        let reference = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private);
        let expected =
            rsa::signature::SignatureEncoding::to_vec(&rsa::signature::Signer::sign(&reference, b"header.payload"));
        assert_eq!(key.sign(b"header.payload").unwrap(), expected);
    }

    #[test]
    fn malformed_stored_keys_are_refused() {
        assert!(PrivateKey::from_bytes(Algorithm::EdDSA, b"short").is_err());
        assert!(PrivateKey::from_bytes(Algorithm::RS256, b"not der").is_err());
        assert!(PrivateKey::from_bytes(Algorithm::ES256, b"not der").is_err());
        assert_eq!(Algorithm::parse("none"), None);
    }
}
