//! `LocalKms` and its key file: passphrase, damage, alteration, permissions, secrets in `Debug`.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

use std::path::Path;

use secrecy::SecretString;
use zt_crypto::{EncryptionContext, ErrorKind, KdfParams, KeyId, Kms, LocalKms};

fn pass(text: &str) -> SecretString {
    SecretString::from(text)
}

async fn make(path: &Path) -> LocalKms {
    let kms = LocalKms::create(path, &pass("right"), KdfParams::insecure_for_tests())
        .await
        .unwrap();
    kms.create_key(&KeyId::new("k").unwrap()).await.unwrap();
    kms
}

async fn open_kind(path: &Path, passphrase: &str) -> Option<ErrorKind> {
    LocalKms::open(path, &pass(passphrase))
        .await
        .err()
        .map(|e| e.kind())
}

#[tokio::test]
async fn a_wrong_passphrase_is_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.json");
    make(&path).await;
    assert_eq!(
        open_kind(&path, "wrong").await,
        Some(ErrorKind::WrongPassphrase)
    );
    assert_eq!(open_kind(&path, "").await, Some(ErrorKind::WrongPassphrase));
    assert_eq!(open_kind(&path, "right").await, None);
}

#[tokio::test]
async fn truncated_or_foreign_files_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.json");
    make(&path).await;
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 1, bytes.len() / 3, bytes.len() / 2, bytes.len() - 3] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert_eq!(
            open_kind(&path, "right").await,
            Some(ErrorKind::Corrupt),
            "cut at {cut}"
        );
    }
    std::fs::write(&path, b"{\"hello\": 1}").unwrap();
    assert_eq!(open_kind(&path, "right").await, Some(ErrorKind::Corrupt));
    let missing = dir.path().join("none.json");
    assert_eq!(open_kind(&missing, "right").await, Some(ErrorKind::Backend));
}

#[tokio::test]
async fn every_altered_field_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.json");
    make(&path).await;
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for field in ["salt", "check", "nonce", "sealed", "digest"] {
        let mut altered = original.clone();
        let text = altered[field].as_str().unwrap().to_string();
        let first = if text.starts_with('0') { '1' } else { '0' };
        let flipped = format!("{first}{}", &text[1..]);
        altered[field] = serde_json::Value::String(flipped);
        std::fs::write(&path, serde_json::to_vec(&altered).unwrap()).unwrap();
        assert_eq!(
            open_kind(&path, "right").await,
            Some(ErrorKind::Corrupt),
            "{field}"
        );
    }
    let mut weaker = original.clone();
    weaker["kdf"]["iterations"] = serde_json::json!(2);
    std::fs::write(&path, serde_json::to_vec(&weaker).unwrap()).unwrap();
    assert_eq!(
        open_kind(&path, "right").await,
        Some(ErrorKind::Corrupt),
        "kdf"
    );
    std::fs::write(&path, serde_json::to_vec(&original).unwrap()).unwrap();
    assert_eq!(
        open_kind(&path, "right").await,
        None,
        "the original still opens"
    );
}

#[tokio::test]
async fn create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.json");
    std::fs::write(&path, b"precious").unwrap();
    let err = LocalKms::create(&path, &pass("p"), KdfParams::insecure_for_tests())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[cfg(unix)]
#[tokio::test]
async fn the_key_file_is_private_and_stays_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.json");
    let kms = make(&path).await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    kms.rotate(&KeyId::new("k").unwrap()).await.unwrap();
    assert_eq!(mode(&path), 0o600, "after a rewrite");
}

#[tokio::test]
async fn secrets_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.json");
    let kms = make(&path).await;
    let context = EncryptionContext::new().with("tenant", "t1");
    let (key, wrapped) = kms
        .generate_data_key(&KeyId::new("k").unwrap(), &context)
        .await
        .unwrap();
    let key_hex = hex::encode(key.expose());
    for text in [
        format!("{kms:?}"),
        format!("{key:?}"),
        format!("{wrapped:?}"),
    ] {
        assert!(!text.contains(&key_hex), "{text}");
        assert!(!text.contains("right"), "{text}");
    }
    let file = std::fs::read_to_string(&path).unwrap();
    assert!(!file.contains(&key_hex));
    assert!(!file.contains("right"));
}

/// A recovery kit sealed to an offline recipient gives back every key that was not destroyed,
/// under a new passphrase, when the old passphrase is gone; a destroyed key stays destroyed; a
/// kit opened by another identity, or checked against another signer, is refused.
#[tokio::test]
async fn a_recovery_kit_brings_the_keys_back_under_a_new_passphrase() {
    use zt_crypto::archive::ArchiveIdentity;
    use zt_crypto::{InsecureFixedKms, SigningKey};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.json");
    let kms = make(&path).await;
    let (kept_id, gone_id) = (KeyId::new("k").unwrap(), KeyId::new("gone").unwrap());
    kms.create_key(&gone_id).await.unwrap();
    let context = EncryptionContext::new().with("tenant", "t1");
    let (kept, kept_wrapped) = kms.generate_data_key(&kept_id, &context).await.unwrap();
    assert_eq!(kms.rotate(&kept_id).await.unwrap(), 2);
    let (newer, newer_wrapped) = kms.generate_data_key(&kept_id, &context).await.unwrap();
    let (_, gone_wrapped) = kms.generate_data_key(&gone_id, &context).await.unwrap();
    kms.destroy(&gone_id).await.unwrap();

    let offline = ArchiveIdentity::generate();
    let server = SigningKey::generate();
    let kit = kms
        .recovery_kit(&[offline.recipient()], &server, 1_765_000_000)
        .await
        .unwrap()
        .expect("a local KMS writes a kit");
    drop(kms);
    std::fs::remove_file(&path).unwrap();

    let stranger = ArchiveIdentity::generate();
    let recovered = dir.path().join("recovered.json");
    let refused = |e: zt_crypto::Error| e.kind();
    let attempt = LocalKms::recover(
        &kit,
        &stranger,
        &server.verifying_key(),
        &recovered,
        &pass("new"),
        KdfParams::insecure_for_tests(),
    )
    .await;
    assert_eq!(
        attempt.map(|_| ()).map_err(refused),
        Err(ErrorKind::Decrypt)
    );
    let forged = SigningKey::generate();
    let attempt = LocalKms::recover(
        &kit,
        &offline,
        &forged.verifying_key(),
        &recovered,
        &pass("new"),
        KdfParams::insecure_for_tests(),
    )
    .await;
    assert_eq!(
        attempt.map(|_| ()).map_err(refused),
        Err(ErrorKind::Tampered)
    );
    assert!(
        !recovered.exists(),
        "nothing is written from a kit that does not verify"
    );

    let kms = LocalKms::recover(
        &kit,
        &offline,
        &server.verifying_key(),
        &recovered,
        &pass("new"),
        KdfParams::insecure_for_tests(),
    )
    .await
    .unwrap();
    assert_eq!(kms.unwrap(&kept_wrapped, &context).await.unwrap(), kept);
    assert_eq!(kms.unwrap(&newer_wrapped, &context).await.unwrap(), newer);
    let gone = kms.unwrap(&gone_wrapped, &context).await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::KeyDestroyed, "{gone}");
    drop(kms);
    // The new file opens with the new passphrase only.
    assert_eq!(
        open_kind(&recovered, "right").await,
        Some(ErrorKind::WrongPassphrase)
    );
    assert_eq!(open_kind(&recovered, "new").await, None);

    // A KMS whose keys cannot leave it writes no kit.
    let fixed = InsecureFixedKms::new();
    assert!(
        fixed
            .recovery_kit(&[offline.recipient()], &server, 0)
            .await
            .unwrap()
            .is_none()
    );
}
