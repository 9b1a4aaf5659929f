//! Public signing keys: read from a JWK, written as one, named by their RFC 7638 thumbprint,
//! and used to verify JWS signatures (RS256, OpenID Connect's default for ID tokens; EdDSA
//! with Ed25519 for access tokens; ES256, ECDSA on P-256, for resource servers that take it).
//!
//! Keys are kept as their raw public components and verified with ring, so a verifier needs no
//! other cryptography. RSA moduli below 2048 bits are refused, as RFC 7518 §3.3 asks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use postern_proto::Jwk;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), the default for ID tokens.
    RS256,
    /// Ed25519 (RFC 8037), used for access tokens.
    EdDSA,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4): the signature is `r || s`, 64 bytes.
    ES256,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::RS256, Algorithm::EdDSA, Algorithm::ES256];

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
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

/// A public verification key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An RSA key: modulus and exponent, big-endian without leading zeros.
    Rs256 { n: Vec<u8>, e: Vec<u8> },
    /// An Ed25519 key.
    EdDsa([u8; 32]),
    /// A P-256 key: its point's coordinates, big-endian, 32 bytes each.
    Es256 { x: [u8; 32], y: [u8; 32] },
}

/// Big-endian bytes without leading zeros, the form JWKs and thumbprints use.
fn unsigned(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}

impl PublicKey {
    /// An RSA key from its modulus and exponent (big-endian; leading zeros are dropped).
    pub fn rsa(n: &[u8], e: &[u8]) -> Self {
        PublicKey::Rs256 { n: unsigned(n), e: unsigned(e) }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::Rs256 { .. } => Algorithm::RS256,
            PublicKey::EdDsa(_) => Algorithm::EdDSA,
            PublicKey::Es256 { .. } => Algorithm::ES256,
        }
    }

    /// A P-256 key from its uncompressed SEC 1 point (`0x04 || x || y`).
    pub fn p256(point: &[u8]) -> Option<Self> {
        match point {
            [4, rest @ ..] if rest.len() == 64 => {
                Some(PublicKey::Es256 { x: rest[..32].try_into().ok()?, y: rest[32..].try_into().ok()? })
            }
            _ => None,
        }
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let canonical = match self {
            PublicKey::Rs256 { n, e } => {
                format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, URL_SAFE_NO_PAD.encode(e), URL_SAFE_NO_PAD.encode(n))
            }
            PublicKey::EdDsa(x) => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(x)),
            PublicKey::Es256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            ),
        };
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
    }

    /// The public JWK, with `kid` set to the thumbprint.
    pub fn to_jwk(&self) -> Jwk {
        let kid = self.thumbprint();
        let alg = self.algorithm().as_str().to_owned();
        match self {
            PublicKey::Rs256 { n, e } => Jwk {
                kty: "RSA".into(),
                kid,
                use_: "sig".into(),
                alg,
                n: Some(URL_SAFE_NO_PAD.encode(n)),
                e: Some(URL_SAFE_NO_PAD.encode(e)),
                crv: None,
                x: None,
                y: None,
            },
            PublicKey::EdDsa(x) => Jwk {
                kty: "OKP".into(),
                kid,
                use_: "sig".into(),
                alg,
                n: None,
                e: None,
                crv: Some("Ed25519".into()),
                x: Some(URL_SAFE_NO_PAD.encode(x)),
                y: None,
            },
            PublicKey::Es256 { x, y } => Jwk {
                kty: "EC".into(),
                kid,
                use_: "sig".into(),
                alg,
                n: None,
                e: None,
                crv: Some("P-256".into()),
                x: Some(URL_SAFE_NO_PAD.encode(x)),
                y: Some(URL_SAFE_NO_PAD.encode(y)),
            },
        }
    }

    /// Reads a public JWK as published by a JWKS endpoint.
    pub fn from_jwk(jwk: &Jwk) -> Option<Self> {
        let b64 = |s: &Option<String>| s.as_deref().and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
        match (jwk.kty.as_str(), jwk.alg.as_str()) {
            ("RSA", "RS256") => {
                let key = PublicKey::rsa(&b64(&jwk.n)?, &b64(&jwk.e)?);
                match &key {
                    PublicKey::Rs256 { n, e } if !n.is_empty() && !e.is_empty() => Some(key),
                    _ => None,
                }
            }
            ("OKP", "EdDSA") if jwk.crv.as_deref() == Some("Ed25519") => {
                Some(PublicKey::EdDsa(b64(&jwk.x)?.try_into().ok()?))
            }
            ("EC", "ES256") if jwk.crv.as_deref() == Some("P-256") => {
                Some(PublicKey::Es256 { x: b64(&jwk.x)?.try_into().ok()?, y: b64(&jwk.y)?.try_into().ok()? })
            }
            _ => None,
        }
    }

    pub fn verify(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::Rs256 { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(&RSA_PKCS1_2048_8192_SHA256, signing_input, signature).is_ok()
            }
            PublicKey::EdDsa(x) => UnparsedPublicKey::new(&ED25519, x).verify(signing_input, signature).is_ok(),
            PublicKey::Es256 { x, y } => {
                // ring checks that the point is on the curve.
                let mut point = [4u8; 65];
                point[1..33].copy_from_slice(x);
                point[33..].copy_from_slice(y);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).verify(signing_input, signature).is_ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8037_ed25519_example_verifies_and_has_its_thumbprint() {
        // RFC 8037 Appendix A.1 (the key), A.3 (its thumbprint) and A.4 (a signature over
        // "Example of Ed25519 signing").
        let jwk = Jwk {
            kty: "OKP".into(),
            kid: String::new(),
            use_: "sig".into(),
            alg: "EdDSA".into(),
            n: None,
            e: None,
            crv: Some("Ed25519".into()),
            x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
            y: None,
        };
        let key = PublicKey::from_jwk(&jwk).unwrap_or(PublicKey::EdDsa([0; 32]));
        assert_eq!(key.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let signature = URL_SAFE_NO_PAD
            .decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg")
            .unwrap_or_default();
        assert!(key.verify(input, &signature));
        assert!(!key.verify(b"something else", &signature));
        assert_eq!(PublicKey::from_jwk(&key.to_jwk()), Some(key));
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
            y: None,
        };
        let public = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(public.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn rsa_components_drop_leading_zeros_and_empty_ones_are_refused() {
        assert_eq!(PublicKey::rsa(&[0, 0, 1, 2], &[1, 0, 1]), PublicKey::Rs256 { n: vec![1, 2], e: vec![1, 0, 1] });
        let mut jwk = PublicKey::rsa(&[1, 2], &[1, 0, 1]).to_jwk();
        assert!(PublicKey::from_jwk(&jwk).is_some());
        jwk.n = Some("AA".into());
        assert_eq!(PublicKey::from_jwk(&jwk), None);
        // A key too small for RS256 verifies nothing.
        assert!(!PublicKey::rsa(&[1, 2], &[1, 0, 1]).verify(b"x", &[0; 2]));
    }
}
