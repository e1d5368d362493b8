//! A provider's signing keys, as `openidconnect` selects them, with RSA signatures checked by
//! ring.
//!
//! `openidconnect`'s own key type checks an RSA signature with the `rsa` crate, whose big-number
//! arithmetic takes most of a sign-in's CPU (about 200 µs for RS256 on the project's machine).
//! [`SigningKey`] wraps that key type and changes one thing: RS256/384/512 and PS256/384/512
//! are verified by ring, which the workspace builds already (rustls, the envelope). Everything
//! else is the wrapped key's: key id, type, use and algorithm (so key selection is
//! `openidconnect`'s), hashing, and the EC and EdDSA checks.
//!
//! Two differences, both stricter, and both what RFC 7518 section 3.3 asks: an RSA modulus under
//! 2,048 bits is refused (ring's `*_2048_8192_*` parameters), and one up to 8,192 bits is
//! accepted (the `rsa` crate stops at 4,096).

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreJsonWebKey, CoreJsonWebKeyType, CoreJsonWebKeyUse, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    JsonWebKey, JsonWebKeyAlgorithm, JsonWebKeyId, JsonWebKeySet, JsonWebKeyUse as _,
    JwsSigningAlgorithm as _, SignatureVerificationError,
};
use ring::signature::{self as ring_sig, RsaParameters, RsaPublicKeyComponents};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A provider's key set as the relying party keeps it.
pub(crate) type KeySet = JsonWebKeySet<SigningKey>;

/// One key of a provider's set: `openidconnect`'s key, with its RSA components ready for ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SigningKey {
    core: CoreJsonWebKey,
    /// The modulus and public exponent, big-endian without leading zeros, for an RSA key that
    /// has both. Shared: the verifier is given a copy of the key set for every token.
    rsa: Option<Arc<(Vec<u8>, Vec<u8>)>>,
}

impl From<CoreJsonWebKey> for SigningKey {
    fn from(core: CoreJsonWebKey) -> Self {
        let rsa = rsa_components(&core).map(Arc::new);
        SigningKey { core, rsa }
    }
}

/// The key set `keys` holds, as [`SigningKey`]s.
pub(crate) fn key_set(keys: &JsonWebKeySet<CoreJsonWebKey>) -> KeySet {
    JsonWebKeySet::new(keys.keys().iter().cloned().map(SigningKey::from).collect())
}

/// `n` and `e` of an RSA key. `openidconnect` keeps them private, so they are read back from
/// the key's own JSON form (once per key set, not per token).
fn rsa_components(core: &CoreJsonWebKey) -> Option<(Vec<u8>, Vec<u8>)> {
    if *core.key_type() != CoreJsonWebKeyType::RSA {
        return None;
    }
    let json = serde_json::to_value(core).ok()?;
    let field = |name: &str| {
        let bytes = URL_SAFE_NO_PAD
            .decode(json.get(name)?.as_str()?.trim_end_matches('='))
            .ok()?;
        let first = bytes.iter().position(|&b| b != 0)?;
        Some(bytes[first..].to_vec())
    };
    Some((field("n")?, field("e")?))
}

/// ring's parameters for an RSA algorithm; `None` for any other.
fn rsa_parameters(alg: &CoreJwsSigningAlgorithm) -> Option<&'static RsaParameters> {
    Some(match alg {
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256 => &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384 => &ring_sig::RSA_PKCS1_2048_8192_SHA384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512 => &ring_sig::RSA_PKCS1_2048_8192_SHA512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256 => &ring_sig::RSA_PSS_2048_8192_SHA256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384 => &ring_sig::RSA_PSS_2048_8192_SHA384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512 => &ring_sig::RSA_PSS_2048_8192_SHA512,
        _ => return None,
    })
}

impl SigningKey {
    /// Whether this key may check a signature of `alg`: the same rules `openidconnect` applies
    /// before its own check (use, key type, the key's `alg` if it names one).
    fn allows(&self, alg: &CoreJwsSigningAlgorithm) -> Result<(), &'static str> {
        if self.key_use().is_some_and(|u| !u.allows_signature()) {
            return Err("key usage not permitted for digital signatures");
        }
        if alg.key_type().as_ref() != Some(self.key_type()) {
            return Err("key type does not match signature algorithm");
        }
        match self.signing_alg() {
            JsonWebKeyAlgorithm::Unspecified => Ok(()),
            JsonWebKeyAlgorithm::Algorithm(a) if a == alg => Ok(()),
            JsonWebKeyAlgorithm::Algorithm(_) => Err("incompatible key algorithm"),
            JsonWebKeyAlgorithm::Unsupported => Err("key algorithm is not a signing algorithm"),
        }
    }
}

impl JsonWebKey for SigningKey {
    type KeyUse = CoreJsonWebKeyUse;
    type SigningAlgorithm = CoreJwsSigningAlgorithm;

    fn key_id(&self) -> Option<&JsonWebKeyId> {
        self.core.key_id()
    }

    fn key_type(&self) -> &CoreJsonWebKeyType {
        self.core.key_type()
    }

    fn key_use(&self) -> Option<&CoreJsonWebKeyUse> {
        self.core.key_use()
    }

    fn signing_alg(&self) -> JsonWebKeyAlgorithm<&CoreJwsSigningAlgorithm> {
        self.core.signing_alg()
    }

    fn new_symmetric(key: Vec<u8>) -> Self {
        SigningKey {
            core: CoreJsonWebKey::new_symmetric(key),
            rsa: None,
        }
    }

    fn verify_signature(
        &self,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), SignatureVerificationError> {
        let (Some(params), Some(rsa)) = (rsa_parameters(alg), &self.rsa) else {
            // Not RSA, or a key without usable components: the wrapped key's own check, which
            // also gives its own refusal for a mismatch.
            return self.core.verify_signature(alg, message, signature);
        };
        self.allows(alg)
            .map_err(|why| SignatureVerificationError::InvalidKey(why.to_owned()))?;
        let (n, e) = &**rsa;
        RsaPublicKeyComponents { n, e }
            .verify(params, message, signature)
            .map_err(|_| SignatureVerificationError::CryptoError("bad signature".to_owned()))
    }

    fn hash_bytes(&self, bytes: &[u8], alg: &CoreJwsSigningAlgorithm) -> Result<Vec<u8>, String> {
        self.core.hash_bytes(bytes, alg)
    }
}

impl Serialize for SigningKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.core.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SigningKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        CoreJsonWebKey::deserialize(deserializer).map(SigningKey::from)
    }
}

#[cfg(test)]
mod tests {
    //! Every outcome of ring's check is compared with `openidconnect`'s own on the same key,
    //! message and signature, for each RSA algorithm. The keys are fixed test keys made with
    //! `openssl genpkey` (zt-core/tests/data/); signatures are made here by ring, except the
    //! 1,024-bit one, which ring will not make.
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "test set-up")]

    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{RsaEncoding, RsaKeyPair};

    const RSA_2048: &[u8] = include_bytes!("../../../tests/data/rsa-2048.pk8");

    fn pair(der: &[u8]) -> RsaKeyPair {
        RsaKeyPair::from_pkcs8(der)
            .or_else(|_| RsaKeyPair::from_der(der))
            .unwrap()
    }

    /// The JWK of `pair`'s public key, with `extra` members.
    fn jwk(n: &[u8], e: &[u8], extra: serde_json::Value) -> serde_json::Value {
        let mut key = serde_json::json!({
            "kty": "RSA",
            "kid": "k1",
            "n": URL_SAFE_NO_PAD.encode(n),
            "e": URL_SAFE_NO_PAD.encode(e),
        });
        for (k, v) in extra.as_object().unwrap() {
            key[k] = v.clone();
        }
        key
    }

    fn public(pair: &RsaKeyPair) -> (Vec<u8>, Vec<u8>) {
        let key = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        (key.n, key.e)
    }

    const ALGORITHMS: [(CoreJwsSigningAlgorithm, &dyn RsaEncoding); 6] = [
        (
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            &ring_sig::RSA_PKCS1_SHA256,
        ),
        (
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
            &ring_sig::RSA_PKCS1_SHA384,
        ),
        (
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
            &ring_sig::RSA_PKCS1_SHA512,
        ),
        (
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            &ring_sig::RSA_PSS_SHA256,
        ),
        (
            CoreJwsSigningAlgorithm::RsaSsaPssSha384,
            &ring_sig::RSA_PSS_SHA384,
        ),
        (
            CoreJwsSigningAlgorithm::RsaSsaPssSha512,
            &ring_sig::RSA_PSS_SHA512,
        ),
    ];

    fn sign(pair: &RsaKeyPair, encoding: &'static dyn RsaEncoding, message: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(encoding, &SystemRandom::new(), message, &mut signature)
            .unwrap();
        signature
    }

    /// Both checks on the same input: `Ok` or the same kind of refusal.
    fn both(
        key: &serde_json::Value,
        alg: &CoreJwsSigningAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> (bool, bool) {
        let core: CoreJsonWebKey = serde_json::from_value(key.clone()).unwrap();
        let ours: SigningKey = serde_json::from_value(key.clone()).unwrap();
        let theirs = core.verify_signature(alg, message, signature);
        let mine = ours.verify_signature(alg, message, signature);
        if let (Err(a), Err(b)) = (&theirs, &mine) {
            assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "{a:?} / {b:?}"
            );
        }
        (theirs.is_ok(), mine.is_ok())
    }

    #[test]
    fn ring_agrees_with_openidconnect_on_every_rsa_algorithm() {
        let pair = pair(RSA_2048);
        let (n, e) = public(&pair);
        let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9";
        for (alg, encoding) in ALGORITHMS {
            let signature = sign(&pair, encoding, message);
            let plain = jwk(&n, &e, serde_json::json!({}));
            assert_eq!(both(&plain, &alg, message, &signature), (true, true));
            // A leading zero in `n` (seen from some providers) is the same key.
            let mut padded = vec![0];
            padded.extend_from_slice(&n);
            let zero = jwk(&padded, &e, serde_json::json!({}));
            assert_eq!(both(&zero, &alg, message, &signature), (true, true));
            // A changed message, a changed signature, a cut signature.
            let mut other = message.to_vec();
            other[3] ^= 1;
            assert_eq!(both(&plain, &alg, &other, &signature), (false, false));
            let mut flipped = signature.clone();
            flipped[17] ^= 0x40;
            assert_eq!(both(&plain, &alg, message, &flipped), (false, false));
            assert_eq!(both(&plain, &alg, message, &signature[1..]), (false, false));
            // The key's use and algorithm are honoured.
            let enc = jwk(&n, &e, serde_json::json!({"use": "enc"}));
            assert_eq!(both(&enc, &alg, message, &signature), (false, false));
            let sig = jwk(&n, &e, serde_json::json!({"use": "sig", "alg": alg}));
            assert_eq!(both(&sig, &alg, message, &signature), (true, true));
            let pinned = jwk(&n, &e, serde_json::json!({"alg": "RS384"}));
            let expect = alg == CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384;
            assert_eq!(both(&pinned, &alg, message, &signature), (expect, expect));
        }
        // A signature under one algorithm does not pass as another.
        let signature = sign(&pair, &ring_sig::RSA_PKCS1_SHA256, message);
        let plain = jwk(&n, &e, serde_json::json!({}));
        for (alg, _) in &ALGORITHMS[1..] {
            assert_eq!(both(&plain, alg, message, &signature), (false, false));
        }
        // An RSA key never checks an EC or EdDSA signature (the wrapped key refuses).
        for alg in [
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
            CoreJwsSigningAlgorithm::HmacSha256,
        ] {
            assert_eq!(both(&plain, &alg, message, &signature), (false, false));
        }
    }

    #[test]
    fn keys_under_2048_bits_are_refused() {
        // ring signs with 2,048 bits and more only: this signature was made by openssl.
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/data/rsa-1024-rs256.json")).unwrap();
        let message = fixture["message"].as_str().unwrap().as_bytes();
        let signature = URL_SAFE_NO_PAD
            .decode(fixture["signature"].as_str().unwrap())
            .unwrap();
        let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
        assert!(
            both(&fixture["jwk"], &alg, message, &signature).0,
            "openidconnect's own check takes the small key"
        );
        let ours: SigningKey = serde_json::from_value(fixture["jwk"].clone()).unwrap();
        assert!(matches!(
            ours.verify_signature(&alg, message, &signature),
            Err(SignatureVerificationError::CryptoError(_))
        ));
    }

    #[test]
    fn a_key_without_its_components_falls_to_the_wrapped_check() {
        let key: SigningKey =
            serde_json::from_value(serde_json::json!({"kty": "RSA", "kid": "k", "e": "AQAB"}))
                .unwrap();
        assert!(key.rsa.is_none());
        let refused = key.verify_signature(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            b"a.b",
            &[1; 256],
        );
        assert!(matches!(
            refused,
            Err(SignatureVerificationError::InvalidKey(_))
        ));
        // The set round-trips through its JSON form unchanged.
        let set: KeySet = serde_json::from_str(
            r#"{"keys":[{"kty":"RSA","kid":"k","e":"AQAB","n":"AQAB"},{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#,
        )
        .unwrap();
        let again: KeySet = serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
        assert_eq!(set.keys(), again.keys());
    }
}
