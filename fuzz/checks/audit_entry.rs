// The `audit_entry` fuzz check, shared by the fuzz target and zt-audit's corpus replay.

/// Decoding any bytes never panics, whatever decodes re-encodes to the same bytes, and the
/// non-allocating validation accepts exactly what decoding accepts.
fn check(data: &[u8]) {
    let decoded = zt_audit::entry::decode(data);
    assert_eq!(zt_audit::entry::validate(data).is_ok(), decoded.is_ok());
    if let Ok(event) = decoded {
        assert_eq!(zt_audit::entry::encode(&event), data);
    }
}
