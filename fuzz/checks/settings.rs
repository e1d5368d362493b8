// The `settings` fuzz check, shared by the fuzz target and zt-chat-server's corpus replay.

/// Parsing any text as the settings file returns, never panics.
fn check(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = zt_chat_server::config::parse_file(std::path::Path::new("fuzz.toml"), text);
    }
}
