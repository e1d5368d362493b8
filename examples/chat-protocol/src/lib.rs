//! # zt-chat-protocol
//!
//! The wire contract of the zt reference chat server, shared by the server and its client:
//!
//! - [`views`]: the requests and responses of `/api/v1` (users, sessions, channels, messages,
//!   the server identity that clients pin);
//! - [`error`]: the one error body every failed request answers;
//! - [`realtime`]: the records of the realtime stream inside the Noise channel;
//! - [`tunnel`]: the API requests carried inside the Noise channel, so a client sends nothing
//!   before the server proved its pinned key;
//! - [`admin`]: what the admin areas answer that clients read (audit pages and verdicts);
//! - [`lifecycle`]: retention of messages and files, its runs, and legal holds.
//!
//! Ids travel as their text form (`usr_…`, `chn_…`), times as Unix milliseconds. The types know
//! nothing of zt-chat: the server converts its library's values into them, so the library can
//! change without changing the API. Each type carries its OpenAPI schema (utoipa), from which the
//! server's document is built.
//!
//! ```
//! use zt_chat_protocol::realtime::ServerRecord;
//!
//! let record: ServerRecord = serde_json::from_str(r#"{"type":"closed","reason":"shutdown"}"#)?;
//! assert_eq!(record, ServerRecord::Closed { reason: "shutdown".into() });
//! # Ok::<(), serde_json::Error>(())
//! ```

pub mod admin;
pub mod error;
pub mod lifecycle;
pub mod realtime;
pub mod sso;
pub mod tunnel;
pub mod views;
