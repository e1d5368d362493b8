//! The API's request and response types are the protocol package's ([`zt_chat_protocol::views`]);
//! here the server turns zt-chat's values into them and parses ids.

use zt_authz::ChannelVisibility;
use zt_chat::{ChannelInfo, ChannelKind, Mention, Message, MessagePage};
pub use zt_chat_protocol::views::*;
use zt_core::identity::{Session, SessionKind, User, UserState};

use super::error::ApiError;

/// Parses an id of the API.
pub(crate) fn parse_id<T: std::str::FromStr>(field: &str, text: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid(field, format!("not a valid {field} id")))
}

/// The view of a user.
pub(crate) fn user_view(user: &User) -> UserView {
    {
        UserView {
            id: user.id.to_string(),
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            state: match user.state {
                UserState::Active => "active",
                UserState::Deactivated => "deactivated",
                _ => "deleted",
            }
            .into(),
        }
    }
}

/// The view of one of the caller's sessions.
pub(crate) fn session_view(hash: [u8; 32], session: &Session, current: bool) -> SessionView {
    {
        SessionView {
            id: hex::encode(hash),
            kind: match session.kind {
                SessionKind::Interactive => "interactive",
                SessionKind::Api => "api",
                _ => "portal",
            }
            .into(),
            created: session.created.unix_millis(),
            last_seen: session.last_seen.unix_millis(),
            current,
        }
    }
}

/// The view of a channel.
pub(crate) fn channel_view(c: ChannelInfo) -> ChannelView {
    {
        ChannelView {
            id: c.id.to_string(),
            kind: match c.kind {
                ChannelKind::Standard => "standard",
                ChannelKind::Direct => "direct",
            }
            .into(),
            name: c.name,
            topic: c.topic,
            visibility: match c.visibility {
                ChannelVisibility::Public => Visibility::Public,
                ChannelVisibility::Private => Visibility::Private,
            },
            archived: c.archived,
            created_by: c.created_by.to_string(),
            created: c.created.unix_millis(),
            listed: c.listed,
        }
    }
}

/// The view of a message.
pub(crate) fn message_view(m: &Message) -> MessageView {
    {
        MessageView {
            id: m.id.to_string(),
            channel: m.channel.to_string(),
            author: m.author.to_string(),
            created: m.created.unix_millis(),
            edited: m.edited.map(|t| t.unix_millis()),
            revision: m.revision,
            body: m.body.clone(),
            thread: m.thread.map(|t| t.to_string()),
            mentions: m
                .mentions
                .iter()
                .map(|mention| match mention {
                    Mention::User(u) => u.to_string(),
                    Mention::Group(g) => g.to_string(),
                })
                .collect(),
            deleted: m.deleted.is_some(),
        }
    }
}

/// The view of a page of messages.
pub(crate) fn page_view(page: MessagePage) -> MessagePageView {
    {
        MessagePageView {
            messages: page.messages.iter().map(message_view).collect(),
            older: page.older.map(|id| id.to_string()),
            newer: page.newer.map(|id| id.to_string()),
        }
    }
}
