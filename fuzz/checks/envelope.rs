// The `envelope` fuzz check, shared by the fuzz target and zt-crypto's corpus replay (`include!`).

/// Parsing and opening any bytes as an envelope returns an error or the plaintext, never panics;
/// nothing but a genuine envelope of this key opens.
fn check(data: &[u8]) {
    let key = zt_crypto::DataKey::from_bytes([7; 32]);
    if let Ok(header) = zt_crypto::envelope::EnvelopeHeader::parse(data) {
        let _ = header.key.to_string();
    }
    let _ = zt_crypto::envelope::open(&key, data, b"fuzz");
}
