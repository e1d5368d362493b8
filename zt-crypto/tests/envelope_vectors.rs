//! Known-answer vectors of the envelope format (tests/data/envelope-v1.json).
//!
//! Regenerate them, after a deliberate format change only, with:
//! `ZT_REGENERATE_VECTORS=1 cargo test -p zt-crypto --test envelope_vectors -- --test-threads=1`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zt_crypto::{DataKey, KeyId, KeyRef, envelope};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Vector {
    comment: String,
    key: String,
    key_id: String,
    key_version: u32,
    nonce: String,
    plaintext: String,
    context: String,
    envelope: String,
}

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/envelope-v1.json");

/// The inputs each vector is sealed from.
struct Input {
    comment: &'static str,
    key: [u8; 32],
    key_id: String,
    version: u32,
    nonce: [u8; 24],
    plaintext: Vec<u8>,
    context: Vec<u8>,
}

fn inputs() -> Vec<Input> {
    let counting_key: [u8; 32] = std::array::from_fn(|i| i as u8);
    let counting_nonce: [u8; 24] = std::array::from_fn(|i| i as u8);
    vec![
        Input {
            comment: "empty plaintext, empty context",
            key: [0x00; 32],
            key_id: "k".into(),
            version: 1,
            nonce: [0x00; 24],
            plaintext: vec![],
            context: vec![],
        },
        Input {
            comment: "short text",
            key: [0x11; 32],
            key_id: "tenant-1/channel".into(),
            version: 7,
            nonce: [0x22; 24],
            plaintext: b"hello, zt".to_vec(),
            context: b"tenant=t1".to_vec(),
        },
        Input {
            comment: "max key id and version",
            key: [0xfe; 32],
            key_id: "x".repeat(64),
            version: u32::MAX,
            nonce: [0xab; 24],
            plaintext: vec![0x5a; 100],
            context: vec![0xff; 33],
        },
        Input {
            comment: "one block and a bit",
            key: counting_key,
            key_id: "scope:user/42".into(),
            version: 2,
            nonce: counting_nonce,
            plaintext: (0..=255).collect(),
            context: b"purpose=file".to_vec(),
        },
    ]
}

fn build() -> Vec<Vector> {
    inputs()
        .into_iter()
        .map(|input| {
            let key_ref = KeyRef {
                id: KeyId::new(&input.key_id).unwrap(),
                version: input.version,
            };
            let sealed = envelope::EnvelopeKey::new(&DataKey::from_bytes(input.key), key_ref)
                .unwrap()
                .seal_with_nonce(&input.nonce, &input.plaintext, &input.context)
                .unwrap();
            Vector {
                comment: input.comment.into(),
                key: hex::encode(input.key),
                key_id: input.key_id,
                key_version: input.version,
                nonce: hex::encode(input.nonce),
                plaintext: hex::encode(&input.plaintext),
                context: hex::encode(&input.context),
                envelope: hex::encode(sealed),
            }
        })
        .collect()
}

#[test]
fn envelope_known_answers() {
    if std::env::var_os("ZT_REGENERATE_VECTORS").is_some() {
        let json = serde_json::to_string_pretty(&build()).unwrap();
        std::fs::write(PATH, json + "\n").unwrap();
    }
    let stored: Vec<Vector> =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vectors file")).unwrap();
    // Sealing the inputs again gives the stored bytes: the format has not drifted.
    assert_eq!(stored, build());
    // And each stored envelope opens to its plaintext with its key and context.
    for v in &stored {
        let key = DataKey::from_slice(&hex::decode(&v.key).unwrap()).unwrap();
        let sealed = hex::decode(&v.envelope).unwrap();
        let opened = envelope::open(&key, &sealed, &hex::decode(&v.context).unwrap()).unwrap();
        assert_eq!(hex::encode(opened), v.plaintext, "{}", v.comment);
        let header = envelope::EnvelopeHeader::parse(&sealed).unwrap();
        assert_eq!(
            (header.key.id.as_str(), header.key.version),
            (v.key_id.as_str(), v.key_version)
        );
    }
}

/// Opens an envelope from the documented layout with the raw primitives, sharing no code with
/// `zt_crypto::envelope`: checks that the format documentation describes the code.
fn open_from_the_spec(key: &[u8], sealed: &[u8], context: &[u8]) -> Vec<u8> {
    assert_eq!(&sealed[..4], b"ZTE\x01", "magic and version");
    let l = usize::from(sealed[4]);
    let nonce = &sealed[9 + l..33 + l];
    let commitment = &sealed[33 + l..65 + l];
    let hkdf = Hkdf::<Sha256>::new(Some(b"zt-envelope-v1"), key);
    let mut expected = [0u8; 32];
    let mut info = b"commitment".to_vec();
    info.extend_from_slice(&sealed[..9 + l]);
    hkdf.expand(&info, &mut expected).unwrap();
    assert_eq!(commitment, expected, "commitment");
    let mut encryption = [0u8; 32];
    hkdf.expand(b"encryption", &mut encryption).unwrap();
    let nonce: [u8; 24] = nonce.try_into().unwrap();
    XChaCha20Poly1305::new_from_slice(&encryption)
        .unwrap()
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &sealed[65 + l..],
                aad: context,
            },
        )
        .expect("decrypts")
}

#[test]
fn vectors_open_from_the_documented_format() {
    let stored: Vec<Vector> =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vectors file")).unwrap();
    for v in &stored {
        let opened = open_from_the_spec(
            &hex::decode(&v.key).unwrap(),
            &hex::decode(&v.envelope).unwrap(),
            &hex::decode(&v.context).unwrap(),
        );
        assert_eq!(hex::encode(opened), v.plaintext, "{}", v.comment);
    }
}

/// Seals from the documented layout with RustCrypto's XChaCha20-Poly1305, sharing no code with
/// `zt_crypto::envelope` (which builds XChaCha over ring).
fn seal_from_the_spec(
    key: &[u8; 32],
    key_id: &str,
    version: u32,
    nonce: &[u8; 24],
    plaintext: &[u8],
    context: &[u8],
) -> Vec<u8> {
    let mut out = b"ZTE\x01".to_vec();
    out.push(u8::try_from(key_id.len()).unwrap());
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    let hkdf = Hkdf::<Sha256>::new(Some(b"zt-envelope-v1"), key);
    let mut commitment = [0u8; 32];
    hkdf.expand(&[b"commitment".as_slice(), &out].concat(), &mut commitment)
        .unwrap();
    let mut encryption = [0u8; 32];
    hkdf.expand(b"encryption", &mut encryption).unwrap();
    out.extend_from_slice(nonce);
    out.extend_from_slice(&commitment);
    let sealed = XChaCha20Poly1305::new_from_slice(&encryption)
        .unwrap()
        .encrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad: context,
            },
        )
        .unwrap();
    out.extend_from_slice(&sealed);
    out
}

proptest::proptest! {
    /// The envelope (XChaCha20-Poly1305 built over ring) and RustCrypto's XChaCha20-Poly1305
    /// agree byte for byte, across sizes that cross ChaCha's 64-byte blocks and ring's
    /// multi-block paths: each opens what the other sealed, and an altered byte is refused.
    #[test]
    fn the_envelope_matches_rustcrypto_xchacha(
        key in proptest::prelude::any::<[u8; 32]>(),
        nonce in proptest::prelude::any::<[u8; 24]>(),
        plaintext in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1100),
        context in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
        flip in proptest::prelude::any::<proptest::sample::Index>(),
    ) {
        let key_ref = KeyRef { id: KeyId::new("scope/t1/chn").unwrap(), version: 3 };
        let ours = envelope::EnvelopeKey::new(&DataKey::from_bytes(key), key_ref).unwrap();
        let sealed = ours.seal_with_nonce(&nonce, &plaintext, &context).unwrap();
        let spec = seal_from_the_spec(&key, "scope/t1/chn", 3, &nonce, &plaintext, &context);
        proptest::prop_assert_eq!(&sealed, &spec);
        proptest::prop_assert_eq!(open_from_the_spec(&key, &sealed, &context), plaintext.clone());
        proptest::prop_assert_eq!(ours.open_owned(spec.clone(), &context).unwrap(), plaintext);
        let mut altered = spec;
        let at = flip.index(altered.len());
        altered[at] ^= 0x01;
        proptest::prop_assert!(ours.open(&altered, &context).is_err());
    }
}
