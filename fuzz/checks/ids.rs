// The `ids` fuzz check, shared by the fuzz target and zt-core's corpus replay (`include!`).

/// Parsing never panics, and whatever parses prints back to the same text.
fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<zt_core::UserId>() {
        assert_eq!(id.to_string(), text);
    }
    if let Ok(id) = text.parse::<zt_core::ChannelId>() {
        assert_eq!(id.to_string(), text);
    }
}
