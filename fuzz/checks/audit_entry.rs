// The `audit_entry` fuzz check, shared by the fuzz target and zt-audit's corpus replay.

/// Decoding any bytes never panics, and whatever decodes re-encodes to the same bytes.
fn check(data: &[u8]) {
    if let Ok(event) = zt_audit::entry::decode(data) {
        assert_eq!(zt_audit::entry::encode(&event), data);
    }
}
