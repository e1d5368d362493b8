//! The records of the realtime stream: JSON documents inside the Noise channel
//! (`zt_crypto::channel`), one record per reassembled message.

use serde::{Deserialize, Serialize};

use crate::views::MessageView;

/// What the client sends, encrypted, in the handshake's last message.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// The bearer token of a session.
    pub token: String,
}

/// What the client sends after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientRecord {
    /// Are you there? The server answers [`ServerRecord::Pong`].
    Ping,
}

/// What the server sends after the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerRecord {
    /// Authenticated: events follow.
    Ready {
        /// The workspace.
        workspace: String,
        /// The caller.
        user: String,
    },
    /// A message was posted.
    Posted {
        /// It.
        message: MessageView,
    },
    /// A message was edited.
    Edited {
        /// Its new state.
        message: MessageView,
    },
    /// A message was deleted.
    Deleted {
        /// Its tombstone.
        message: MessageView,
    },
    /// Messages of a channel are gone for good, tombstones too (retention, a deleted user's
    /// content, the clean-up of old tombstones): drop them from view.
    Removed {
        /// The channel.
        channel: String,
        /// The messages' ids, oldest first.
        messages: Vec<String>,
    },
    /// A channel's name, topic or state changed.
    ChannelChanged {
        /// The channel.
        channel: String,
    },
    /// A channel's membership changed.
    MembershipChanged {
        /// The channel.
        channel: String,
    },
    /// A group changed.
    GroupChanged {
        /// The group.
        group: String,
    },
    /// Permissions may have changed: refresh what is shown.
    PermissionsChanged,
    /// The answer to a ping.
    Pong,
    /// The stream ended; the connection closes.
    Closed {
        /// `session_ended`, `too_slow`, `resync`, `shutdown`, `unauthenticated` or
        /// `protocol_error`.
        reason: String,
    },
}
