// The `wrapped_key` fuzz check, shared by the fuzz target and zt-crypto's corpus replay.

/// Reading any bytes as a stored wrapped key never panics, and what reads writes back the same.
fn check(data: &[u8]) {
    if let Ok(wrapped) = zt_crypto::WrappedKey::from_bytes(data) {
        assert_eq!(wrapped.to_bytes(), data);
    }
}
