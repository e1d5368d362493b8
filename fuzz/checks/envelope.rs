// The `envelope` fuzz check, shared by the fuzz target and zt-crypto's corpus replay (`include!`).

/// Parsing and opening any bytes as an envelope returns an error or the plaintext, never panics;
/// only a genuine envelope opens (sealing what it opened to, with its own nonce, gives back the
/// same bytes); and the input sealed as a plaintext opens to itself, but not once any byte of
/// that envelope is altered.
fn check(data: &[u8]) {
    let key = zt_crypto::DataKey::from_bytes([7; 32]);
    let header = zt_crypto::envelope::EnvelopeHeader::parse(data);
    if let Ok(header) = &header {
        let _ = header.key.to_string();
    }
    if let Ok(plaintext) = zt_crypto::envelope::open(&key, data, b"fuzz") {
        let header = header.unwrap();
        let again = zt_crypto::envelope::EnvelopeKey::new(&key, header.key.clone())
            .unwrap()
            .seal_with_nonce(header.nonce(), &plaintext, b"fuzz")
            .unwrap();
        assert_eq!(again, data, "an envelope opened that is not the one its key seals");
    }

    let key_ref = zt_crypto::KeyRef {
        id: zt_crypto::KeyId::new("fuzz").unwrap(),
        version: 1,
    };
    let sealed = zt_crypto::envelope::seal(&key, &key_ref, data, b"fuzz").unwrap();
    assert_eq!(zt_crypto::envelope::open(&key, &sealed, b"fuzz").unwrap(), data);
    assert!(zt_crypto::envelope::open(&key, &sealed, b"other").is_err());
    let mut altered = sealed;
    let at = data.iter().map(|&b| usize::from(b)).sum::<usize>() % altered.len();
    altered[at] ^= 1 << (data.len() % 8);
    assert!(
        zt_crypto::envelope::open(&key, &altered, b"fuzz").is_err(),
        "an envelope with byte {at} altered still opened"
    );
}
