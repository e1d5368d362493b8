// The `tunnel_head` fuzz check, shared by the fuzz target and zt-chat-server's corpus replay.

/// What a client can send as a tunnel request head, and a server as a response head: parsing
/// never panics, and a head that passes is within the protocol's limits and round-trips.
#[allow(clippy::unwrap_used, reason = "the fuzz harness reports a broken invariant by panicking")]
fn check(data: &[u8]) {
    use zt_chat_protocol::tunnel::{
        MAX_PATH, MAX_REQUEST_BODY, MAX_RESPONSE_BODY, METHODS, TunnelRequest, TunnelResponse,
    };

    if let Ok(request) = TunnelRequest::parse(data) {
        assert!(METHODS.contains(&request.method.as_str()));
        assert!(request.path.starts_with("/api/v1/") && request.path.len() <= MAX_PATH);
        assert!(!request.path.bytes().any(|b| b.is_ascii_control() || b == b' '));
        assert!(request.body_len <= MAX_REQUEST_BODY);
        let again = TunnelRequest::parse(&serde_json::to_vec(&request).unwrap()).unwrap();
        assert_eq!(again, request);
    }
    if let Ok(response) = TunnelResponse::parse(data) {
        assert!((100..=599).contains(&response.status));
        assert!(response.body_len <= MAX_RESPONSE_BODY);
    }
}
