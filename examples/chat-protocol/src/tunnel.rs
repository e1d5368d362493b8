//! The API tunnel: `/api/v1` requests carried inside the Noise channel (`zt_crypto::channel`) to
//! the server's pinned key, so no credential or content leaves a client before the server proved
//! it holds that key (docs/architecture.md, "Client verification").
//!
//! After the handshake (whose last message carries no payload the server reads) the client sends
//! one request at a time and the server answers it:
//!
//! 1. a head record: a [`TunnelRequest`] (JSON), then `body_len` bytes of body in records of at
//!    most `zt_crypto::channel::MAX_RECORD` bytes;
//! 2. the answer the same way: a [`TunnelResponse`] head, then its body.
//!
//! A head that does not parse, names a method or path the API does not have, or declares a body
//! above [`MAX_REQUEST_BODY`] (or [`MAX_RESPONSE_BODY`]) ends the tunnel.
//!
//! ```
//! use zt_chat_protocol::tunnel::{TunnelRequest, TunnelError};
//!
//! let head = br#"{"method":"GET","path":"/api/v1/users/me","token":"secret","body_len":0}"#;
//! let request = TunnelRequest::parse(head)?;
//! assert_eq!(request.path, "/api/v1/users/me");
//! // The token never reaches a log through Debug.
//! assert!(!format!("{request:?}").contains("secret"));
//! // Only API paths travel: no upgrade routes, no other hosts, no controls.
//! let other = br#"{"method":"GET","path":"http://elsewhere/","body_len":0}"#;
//! assert!(matches!(TunnelRequest::parse(other), Err(TunnelError::Path)));
//! # Ok::<(), TunnelError>(())
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// The route of the tunnel's WebSocket.
pub const TUNNEL_PATH: &str = "/api/v1/tunnel";

/// The largest request body a tunnel carries (the API's own body limit is lower).
pub const MAX_REQUEST_BODY: u64 = 4 * 1024 * 1024;

/// The largest response body a client accepts through the tunnel.
pub const MAX_RESPONSE_BODY: u64 = 64 * 1024 * 1024;

/// The longest path (with its query) a request may name.
pub const MAX_PATH: usize = 2048;

/// The methods the API answers.
pub const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Why a head was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// Not a head of this protocol.
    #[error("not a tunnel head: {0}")]
    Malformed(String),
    /// A method the API does not answer.
    #[error("the method is not one of the API's")]
    Method,
    /// A path outside `/api/v1`, an upgrade route, or one with control characters or spaces.
    #[error("the path is not an API path")]
    Path,
    /// A body above the limit.
    #[error("the body of {declared} bytes is above the limit of {limit}")]
    TooLarge {
        /// What the head declared.
        declared: u64,
        /// The limit.
        limit: u64,
    },
}

/// A request's head.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelRequest {
    /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The path with its query, starting `/api/v1/`.
    pub path: String,
    /// The session's bearer token, if signed in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// How many body bytes (JSON) follow.
    pub body_len: u64,
}

impl fmt::Debug for TunnelRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TunnelRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("body_len", &self.body_len)
            .finish()
    }
}

fn is_api_path(path: &str) -> bool {
    let route = path.split_once('?').map_or(path, |(route, _)| route);
    path.len() <= MAX_PATH
        && route.starts_with("/api/v1/")
        && route != TUNNEL_PATH
        && route != "/api/v1/realtime"
        && !route
            .split('/')
            .any(|segment| segment == ".." || segment == ".")
        && path.bytes().all(|b| b.is_ascii_graphic())
}

impl TunnelRequest {
    /// Parses and checks a head.
    ///
    /// # Errors
    /// [`TunnelError`].
    pub fn parse(head: &[u8]) -> Result<Self, TunnelError> {
        let request: TunnelRequest =
            serde_json::from_slice(head).map_err(|e| TunnelError::Malformed(e.to_string()))?;
        if !METHODS.contains(&request.method.as_str()) {
            return Err(TunnelError::Method);
        }
        if !is_api_path(&request.path) {
            return Err(TunnelError::Path);
        }
        if request.body_len > MAX_REQUEST_BODY {
            return Err(TunnelError::TooLarge {
                declared: request.body_len,
                limit: MAX_REQUEST_BODY,
            });
        }
        Ok(request)
    }
}

/// A response's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelResponse {
    /// The HTTP status.
    pub status: u16,
    /// The body's media type, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The `Retry-After` seconds of a refusal, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// How many body bytes follow.
    pub body_len: u64,
}

impl TunnelResponse {
    /// Parses and checks a head.
    ///
    /// # Errors
    /// [`TunnelError`].
    pub fn parse(head: &[u8]) -> Result<Self, TunnelError> {
        let response: TunnelResponse =
            serde_json::from_slice(head).map_err(|e| TunnelError::Malformed(e.to_string()))?;
        if !(100..=599).contains(&response.status) {
            return Err(TunnelError::Malformed(format!(
                "status {} is not an HTTP status",
                response.status
            )));
        }
        if response.body_len > MAX_RESPONSE_BODY {
            return Err(TunnelError::TooLarge {
                declared: response.body_len,
                limit: MAX_RESPONSE_BODY,
            });
        }
        Ok(response)
    }
}

/// A body being received in parts, up to the length its head declared: what both ends use.
#[derive(Debug)]
pub struct Body {
    expected: usize,
    bytes: Vec<u8>,
}

impl Body {
    /// A body of `len` bytes (nothing is reserved beyond the first megabyte until it arrives).
    ///
    /// # Errors
    /// [`TunnelError::TooLarge`] for a length this platform cannot hold.
    pub fn new(len: u64) -> Result<Self, TunnelError> {
        let expected = usize::try_from(len).map_err(|_| TunnelError::TooLarge {
            declared: len,
            limit: usize::MAX as u64,
        })?;
        Ok(Body {
            expected,
            bytes: Vec::with_capacity(expected.min(1024 * 1024)),
        })
    }

    /// Whether every declared byte arrived.
    pub fn is_complete(&self) -> bool {
        self.bytes.len() == self.expected
    }

    /// Adds the next part.
    ///
    /// # Errors
    /// [`TunnelError::Malformed`] for an empty part or one past the declared length.
    pub fn push(&mut self, part: &[u8]) -> Result<(), TunnelError> {
        if part.is_empty() || self.bytes.len() + part.len() > self.expected {
            return Err(TunnelError::Malformed(
                "the body is not the length its head declared".into(),
            ));
        }
        self.bytes.extend_from_slice(part);
        Ok(())
    }

    /// The bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, path: &str, body_len: u64) -> Vec<u8> {
        serde_json::to_vec(&TunnelRequest {
            method: method.into(),
            path: path.into(),
            token: None,
            body_len,
        })
        .unwrap()
    }

    #[test]
    fn only_api_requests_within_limits_pass() {
        assert!(TunnelRequest::parse(&head("GET", "/api/v1/channels?limit=5", 0)).is_ok());
        assert!(TunnelRequest::parse(&head("POST", "/api/v1/sessions", 10)).is_ok());
        for path in [
            "/api/v1/tunnel",
            "/api/v1/realtime",
            "/api/v1/../metrics",
            "/metrics",
            "/api/v1/x y",
            "/api/v1/\u{1b}[2J",
            "//host/api/v1/",
        ] {
            assert_eq!(
                TunnelRequest::parse(&head("GET", path, 0)),
                Err(TunnelError::Path),
                "{path}"
            );
        }
        assert_eq!(
            TunnelRequest::parse(&head("CONNECT", "/api/v1/channels", 0)),
            Err(TunnelError::Method)
        );
        assert!(matches!(
            TunnelRequest::parse(&head("POST", "/api/v1/channels", MAX_REQUEST_BODY + 1)),
            Err(TunnelError::TooLarge { .. })
        ));
        assert!(matches!(
            TunnelRequest::parse(br#"{"method":"GET","path":"/api/v1/x","body_len":0,"x":1}"#),
            Err(TunnelError::Malformed(_))
        ));
    }

    #[test]
    fn a_body_takes_exactly_its_declared_length() {
        let mut body = Body::new(5).unwrap();
        body.push(b"abc").unwrap();
        assert!(!body.is_complete());
        assert!(body.push(b"").is_err());
        assert!(body.push(b"def").is_err(), "past the declared length");
        body.push(b"de").unwrap();
        assert!(body.is_complete());
        assert_eq!(body.into_bytes(), b"abcde");
        assert!(Body::new(0).unwrap().is_complete());
    }

    #[test]
    fn a_response_head_is_checked() {
        let ok = br#"{"status":200,"content_type":"application/json","body_len":2}"#;
        assert_eq!(TunnelResponse::parse(ok).unwrap().body_len, 2);
        assert!(TunnelResponse::parse(br#"{"status":99,"body_len":0}"#).is_err());
        let huge = format!(r#"{{"status":200,"body_len":{}}}"#, MAX_RESPONSE_BODY + 1);
        assert!(TunnelResponse::parse(huge.as_bytes()).is_err());
    }
}
