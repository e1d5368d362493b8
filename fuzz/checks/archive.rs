// The `archive` fuzz check, shared by the fuzz target and zt-crypto's corpus replay.

/// The fuzzer's bytes as a whole archive, then as the tar stream inside one (sealed again to the
/// reader's identity, as any recipient can): neither panics, and neither verifies, since only
/// the signer can sign a manifest.
fn check(data: &[u8]) {
    use std::sync::OnceLock;
    use zt_crypto::archive::{ArchiveIdentity, fuzzing, verify_archive};

    static KEYS: OnceLock<(ArchiveIdentity, zt_crypto::SigningKey)> = OnceLock::new();
    let (identity, signer) = KEYS.get_or_init(|| {
        (ArchiveIdentity::generate(), zt_crypto::SigningKey::from_seed(&[3; 32]))
    });
    let identities = std::slice::from_ref(identity);
    assert!(verify_archive(data, identities, &signer.verifying_key()).is_err());
    let sealed = fuzzing::seal_plaintext(data, &identity.recipient());
    assert!(sealed.is_ok(), "sealing any bytes succeeds");
    if let Ok(sealed) = sealed {
        assert!(verify_archive(sealed.as_slice(), identities, &signer.verifying_key()).is_err());
    }
}
