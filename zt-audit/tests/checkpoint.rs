//! Signed checkpoints: a golden note, interoperation with the independent `signed_note` crate in
//! both directions, and tampering.
//!
//! Regenerate the golden note (after a deliberate format change only) with:
//! `ZT_REGENERATE_VECTORS=1 cargo test -p zt-audit --test checkpoint -- --test-threads=1`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

use base64::Engine as _;
use proptest::prelude::*;
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};
use zt_audit::Error;
use zt_audit::checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
use zt_audit::merkle::{leaf_hash, root};
use zt_crypto::SigningKey;

const NAME: &str = "zt.example/audit";
const SEED: [u8; 32] = [7; 32];
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/checkpoint-v1.txt");

fn golden_checkpoint() -> Checkpoint {
    let leaves: Vec<_> = (0u64..7).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    Checkpoint {
        origin: "zt.example/tenant-1/security".into(),
        size: 7,
        root: root(&leaves, 7),
        extensions: vec![],
    }
}

fn signer() -> NoteSigner {
    NoteSigner::new(NAME, SigningKey::from_seed(&SEED)).unwrap()
}

#[test]
fn golden_signed_checkpoint() {
    let note = signer().sign(&golden_checkpoint()).unwrap();
    if std::env::var_os("ZT_REGENERATE_VECTORS").is_some() {
        std::fs::write(GOLDEN, &note).unwrap();
    }
    let stored = std::fs::read_to_string(GOLDEN).expect("golden note");
    assert_eq!(
        note, stored,
        "the checkpoint or signed-note encoding drifted"
    );
    let verifier = NoteVerifier::from_verifier_key(&signer().verifier_key()).unwrap();
    assert_eq!(verifier.verify(&stored).unwrap(), golden_checkpoint());
}

#[test]
fn our_notes_verify_with_the_independent_crate() {
    let signer = signer();
    for checkpoint in [
        golden_checkpoint(),
        Checkpoint {
            size: 0,
            root: root(&Vec::new(), 0),
            ..golden_checkpoint()
        },
        Checkpoint {
            extensions: vec!["ext one".into(), "ext two".into()],
            ..golden_checkpoint()
        },
    ] {
        let note = signer.sign(&checkpoint).unwrap();
        let verifier =
            StandardVerifier::new(&signer.verifier_key()).expect("their parser takes our key");
        let parsed = Note::from_bytes(note.as_bytes()).expect("their parser takes our note");
        let (verified, _) = parsed
            .verify(&VerifierList::new(vec![Box::new(verifier)]))
            .expect("their verifier accepts our signature");
        assert_eq!(verified.len(), 1);
        assert_eq!(parsed.text(), checkpoint.body().unwrap().as_bytes());
    }
}

#[test]
fn their_notes_verify_with_ours() {
    let public = SigningKey::from_seed(&SEED).verifying_key().to_bytes();
    let mut encoded = vec![0x01];
    encoded.extend_from_slice(&public);
    let id = signed_note::key_id(NAME, &encoded);
    let mut private = vec![0x01];
    private.extend_from_slice(&SEED);
    let skey = format!(
        "PRIVATE+KEY+{NAME}+{id:08x}+{}",
        base64::engine::general_purpose::STANDARD.encode(private)
    );
    let their_signer = StandardSigner::new(&skey).expect("signer key");
    let body = golden_checkpoint().body().unwrap();
    let mut note = Note::new(body.as_bytes(), &[]).unwrap();
    note.add_sigs(&[&their_signer]).unwrap();
    let text = String::from_utf8(note.to_bytes()).unwrap();
    let ours = NoteVerifier::from_verifier_key(&signer().verifier_key()).unwrap();
    assert_eq!(ours.verify(&text).unwrap(), golden_checkpoint());
    // Same key, same body: Ed25519 is deterministic, so both implementations sign identically.
    assert_eq!(text, signer().sign(&golden_checkpoint()).unwrap());
}

#[test]
fn altered_notes_and_foreign_keys_are_refused() {
    let signer = signer();
    let verifier = NoteVerifier::from_verifier_key(&signer.verifier_key()).unwrap();
    let note = signer.sign(&golden_checkpoint()).unwrap();
    let bad_signature = |result: zt_audit::Result<Checkpoint>| {
        assert!(matches!(result, Err(Error::BadSignature(_))), "{result:?}");
    };
    bad_signature(verifier.verify(&note.replacen("\n7\n", "\n8\n", 1)));
    let other_root = note.replacen(
        &note.lines().nth(2).unwrap().to_string(),
        &"A".repeat(43).to_string(),
        1,
    );
    assert!(verifier.verify(&other_root).is_err());
    // A note signed by another key under the same name.
    let impostor = NoteSigner::new(NAME, SigningKey::from_seed(&[8; 32])).unwrap();
    bad_signature(verifier.verify(&impostor.sign(&golden_checkpoint()).unwrap()));
    // Malformed notes are typed errors.
    for text in [
        "",
        "no blank line",
        "a\n1\nAAAA\n\nno dash\n",
        "a\n1\n\n\n\u{2014} x y\n",
    ] {
        assert!(verifier.verify(text).is_err(), "{text:?}");
    }
    // Verifier keys with a wrong hash or algorithm are refused.
    let vkey = signer.verifier_key();
    let wrong_hash = format!("{NAME}+00000000+{}", vkey.rsplit('+').next().unwrap());
    assert!(NoteVerifier::from_verifier_key(&wrong_hash).is_err());
    assert!(NoteSigner::new("has space", SigningKey::generate()).is_err());
    assert!(NoteSigner::new("has+plus", SigningKey::generate()).is_err());
}

proptest! {
    #[test]
    fn parsing_any_text_never_panics(text in "\\PC{0,200}") {
        let verifier = NoteVerifier::from_verifier_key(&signer().verifier_key()).unwrap();
        let _ = verifier.verify(&text);
        let _ = Checkpoint::parse_body(&text);
        let _ = NoteVerifier::from_verifier_key(&text);
    }
}
