//! Messages: sealed under their channel's key, keyed by channel and time-ordered message id, so a
//! message at rest shows neither its text, its author nor its channel's name. Edits keep the
//! earlier text in the channel's history; a deletion leaves a tombstone.

use std::collections::BTreeSet;
use std::ops::Bound;

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use zt_authz::{Action, Permission, Resource};
use zt_core::{ChannelId, GroupId, MessageId, Timestamp, UserId};
use zt_storage::{Batch, KeyRange, KvStoreExt as _, ScanOptions, codec};

use crate::error::{Error, Result};
use crate::hub::Event;
use crate::workspace::{Caller, Workspace};

/// The most mentions in one message.
pub const MAX_MENTIONS: usize = 64;
/// The most messages in one page.
pub const MAX_PAGE: usize = 200;

/// Someone or something a message mentions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Mention {
    /// A user.
    User(UserId),
    /// A group (only one the author may mention: a hidden group it cannot see is unknown).
    Group(GroupId),
}

/// Who removed a message, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// Who.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its id (time-ordered).
    pub id: MessageId,
    /// Its channel.
    pub channel: ChannelId,
    /// Its author.
    pub author: UserId,
    /// When it was posted.
    pub created: Timestamp,
    /// When it was last edited.
    pub edited: Option<Timestamp>,
    /// How many times it was edited (its earlier texts are in the history).
    pub revision: u32,
    /// Its text; empty once deleted.
    pub body: String,
    /// The message it replies to, in a thread.
    pub thread: Option<MessageId>,
    /// Whom it mentions.
    pub mentions: Vec<Mention>,
    /// Set once it was deleted: the tombstone.
    pub deleted: Option<Deletion>,
}

/// What decides a stored message's removal, decoded from its record without its text or
/// mentions (a retention run reads tens of thousands a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) struct MessageHead {
    pub(crate) id: MessageId,
    pub(crate) channel: ChannelId,
    pub(crate) author: UserId,
    pub(crate) revision: u32,
    pub(crate) deleted: Option<Deletion>,
}

/// An earlier text of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Revision {
    body: String,
    replaced: Timestamp,
    by: UserId,
}

/// Which page of a channel's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRequest {
    /// The newest `limit`.
    Latest {
        /// How many.
        limit: usize,
    },
    /// The `limit` just older than `id`.
    Before {
        /// The cursor.
        id: MessageId,
        /// How many.
        limit: usize,
    },
    /// The `limit` just newer than `id`.
    After {
        /// The cursor.
        id: MessageId,
        /// How many.
        limit: usize,
    },
}

/// A page of messages, oldest first, with the cursors to go on either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePage {
    /// The messages, oldest first.
    pub messages: Vec<Message>,
    /// Pass as [`PageRequest::Before`] for older ones; `None` when there are none.
    pub older: Option<MessageId>,
    /// Pass as [`PageRequest::After`] for newer ones; `None` when there are none (yet).
    pub newer: Option<MessageId>,
}

pub(crate) fn message_key(channel: ChannelId, id: MessageId) -> Vec<u8> {
    let mut key = channel.to_bytes().to_vec();
    key.extend_from_slice(&id.to_bytes());
    key
}

/// Adds to `batch` the removal of `message` (stored as `entry`) with every earlier text of it,
/// required at the version read, so that an edit made meanwhile fails the batch instead of being
/// lost. For retention and a deleted user's content.
pub(crate) fn remove_message(
    ns: &crate::store::Namespaces,
    batch: &mut zt_storage::Batch,
    entry: &zt_storage::Entry,
    message: &MessageHead,
) {
    batch.require_version(&ns.messages, &entry.key, entry.version);
    batch.delete(&ns.messages, &entry.key);
    for revision in 1..=message.revision {
        batch.delete(
            &ns.history,
            &revision_key(message.channel, message.id, revision),
        );
    }
}

pub(crate) fn revision_key(channel: ChannelId, id: MessageId, revision: u32) -> Vec<u8> {
    let mut key = message_key(channel, id);
    key.extend_from_slice(&revision.to_be_bytes());
    key
}

impl Workspace {
    async fn writable(
        &self,
        caller: &Caller,
        channel: ChannelId,
        permission: Permission,
    ) -> Result<()> {
        self.require_in(caller, channel, permission).await?;
        let archived = self.channel(caller, channel).await.map(|c| c.archived)?;
        if archived {
            return Err(Error::Conflict("the channel is archived".into()));
        }
        Ok(())
    }

    async fn message(&self, channel: ChannelId, id: MessageId) -> Result<(Message, u64)> {
        self.ctx
            .store
            .get_decoded::<Message>(&self.ns.messages, &message_key(channel, id))
            .await?
            .ok_or_else(|| Error::NotFound("message".into()))
    }

    /// Stores `message` (read at `version`) as its next revision, with the text it replaces in
    /// the channel's history, in one commit.
    async fn replace(&self, message: &mut Message, version: u64, earlier: &Revision) -> Result<()> {
        message.revision = message.revision.saturating_add(1);
        let key = message_key(message.channel, message.id);
        let mut batch = Batch::new();
        batch.require_version(&self.ns.messages, &key, version);
        batch.put(&self.ns.messages, &key, &codec::encode(&*message)?);
        batch.put_if_absent(
            &self.ns.history,
            &revision_key(message.channel, message.id, message.revision),
            &codec::encode(earlier)?,
        );
        self.ctx.store.commit(batch).await?;
        Ok(())
    }

    fn check_body(&self, body: &str) -> Result<()> {
        if body.trim().is_empty() || body.len() > self.max_message_bytes {
            return Err(Error::invalid(
                "body",
                format!(
                    "1 to {} bytes, not only white space",
                    self.max_message_bytes
                ),
            ));
        }
        // Line breaks and tabs are text; every other control (NUL, ESC, BEL, C1) only drives
        // a terminal or a parser, and no reader should receive one.
        if body
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(Error::invalid(
                "body",
                "no control characters other than line breaks and tabs",
            ));
        }
        Ok(())
    }

    async fn check_mentions(&self, caller: &Caller, mentions: &[Mention]) -> Result<Vec<Mention>> {
        let unique: BTreeSet<Mention> = mentions.iter().copied().collect();
        if unique.len() > MAX_MENTIONS {
            return Err(Error::invalid(
                "mentions",
                format!("at most {MAX_MENTIONS}"),
            ));
        }
        for mention in &unique {
            let known = match mention {
                Mention::User(user) => self.users.get(*user).await?.is_some(),
                Mention::Group(group) => {
                    self.authz
                        .authorize(caller.principal(), Action::Mention, Resource::Group(*group))
                        .await?
                        .allowed
                }
            };
            if !known {
                // A group the caller may not see or mention is told apart from no group at all.
                return Err(Error::invalid(
                    "mentions",
                    "an unknown user, or a group the caller may not mention",
                ));
            }
        }
        Ok(unique.into_iter().collect())
    }

    /// Posts a message (`post_message`), optionally as a reply in the thread of `thread`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for the body, thread or mentions; [`Error::Conflict`] in an
    /// archived channel; [`Error::Forbidden`]; [`Error::NotFound`].
    pub async fn post(
        &self,
        caller: &Caller,
        channel: ChannelId,
        body: &str,
        thread: Option<MessageId>,
        mentions: &[Mention],
    ) -> Result<Message> {
        self.check_body(body)?;
        self.writable(caller, channel, Permission::PostMessage)
            .await?;
        if let Some(parent) = thread {
            let root = self
                .message(channel, parent)
                .await
                .map_err(|_| Error::invalid("thread", "no such message in this channel"))?;
            if root.0.thread.is_some() || root.0.deleted.is_some() {
                return Err(Error::invalid(
                    "thread",
                    "replies go to the thread's first message, which must not be deleted",
                ));
            }
        }
        let mentions = self.check_mentions(caller, mentions).await?;
        let message = Message {
            id: MessageId::generate(&*self.ctx.clock),
            channel,
            author: caller.user(),
            created: self.ctx.clock.now(),
            edited: None,
            revision: 0,
            body: body.to_owned(),
            thread,
            mentions,
            deleted: None,
        };
        let mut batch = Batch::new();
        batch.put_if_absent(
            &self.ns.messages,
            &message_key(channel, message.id),
            &codec::encode(&message)?,
        );
        self.ctx.store.commit(batch).await?;
        self.announce(Event::Posted(message.clone()));
        Ok(message)
    }

    /// Replaces the text of one's own message (`edit_own_message`); the earlier text is kept in
    /// the channel's history, in the same commit.
    ///
    /// # Errors
    /// [`Error::Forbidden`] for another's message; [`Error::InvalidInput`]; [`Error::Conflict`]
    /// for a deleted message, an archived channel, or a concurrent edit.
    pub async fn edit(
        &self,
        caller: &Caller,
        channel: ChannelId,
        id: MessageId,
        body: &str,
    ) -> Result<Message> {
        self.check_body(body)?;
        self.writable(caller, channel, Permission::EditOwnMessage)
            .await?;
        let (mut message, version) = self.message(channel, id).await?;
        if message.author != caller.user() {
            return Err(Error::Forbidden {
                reasons: vec!["not-author".into()],
            });
        }
        if message.deleted.is_some() {
            return Err(Error::Conflict("the message was deleted".into()));
        }
        let now = self.ctx.clock.now();
        let earlier = Revision {
            body: std::mem::replace(&mut message.body, body.to_owned()),
            replaced: now,
            by: caller.user(),
        };
        message.edited = Some(now);
        self.replace(&mut message, version, &earlier).await?;
        self.announce(Event::Edited(message.clone()));
        Ok(message)
    }

    /// Deletes a message: one's own with `delete_own_message`, anyone's with
    /// `delete_any_message`. What remains is a tombstone (who, when); the text moves to the
    /// channel's history, where retention and legal hold decide its fate.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`]; [`Error::Conflict`] in an archived channel.
    pub async fn delete_message(
        &self,
        caller: &Caller,
        channel: ChannelId,
        id: MessageId,
    ) -> Result<Message> {
        let (mut message, version) = {
            // Reading needs read access; which delete power is needed depends on the author.
            self.require_in(caller, channel, Permission::ReadChannel)
                .await?;
            self.message(channel, id).await?
        };
        let permission = Workspace::delete_power(caller, message.author);
        self.writable(caller, channel, permission).await?;
        if message.deleted.is_some() {
            return Ok(message);
        }
        let now = self.ctx.clock.now();
        let earlier = Revision {
            body: std::mem::take(&mut message.body),
            replaced: now,
            by: caller.user(),
        };
        message.mentions.clear();
        message.deleted = Some(Deletion {
            by: caller.user(),
            at: now,
        });
        self.replace(&mut message, version, &earlier).await?;
        self.announce(Event::Deleted(message.clone()));
        Ok(message)
    }

    /// A page of the channel's messages (`read_channel`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a limit outside 1 to [`MAX_PAGE`]; [`Error::NotFound`],
    /// [`Error::Forbidden`].
    pub async fn messages(
        &self,
        caller: &Caller,
        channel: ChannelId,
        page: PageRequest,
    ) -> Result<MessagePage> {
        let limit = match page {
            PageRequest::Latest { limit }
            | PageRequest::Before { limit, .. }
            | PageRequest::After { limit, .. } => limit,
        };
        if limit == 0 || limit > MAX_PAGE {
            return Err(Error::invalid("limit", format!("1 to {MAX_PAGE}")));
        }
        self.require_in(caller, channel, Permission::ReadChannel)
            .await?;
        let prefix = channel.to_bytes().to_vec();
        let all = KeyRange::prefix(&prefix);
        let (range, reverse) = match page {
            PageRequest::Latest { .. } => (all, true),
            PageRequest::Before { id, .. } => (
                KeyRange::new(all.start, Bound::Excluded(message_key(channel, id))),
                true,
            ),
            PageRequest::After { id, .. } => (
                KeyRange::new(Bound::Excluded(message_key(channel, id)), all.end),
                false,
            ),
        };
        let entries: Vec<zt_storage::Entry> = self
            .ctx
            .store
            .scan_stream(
                &self.ns.messages,
                range,
                ScanOptions::new().reverse(reverse).limit(limit + 1),
            )
            .take(limit + 1)
            .try_collect()
            .await?;
        let more = entries.len() > limit;
        let mut messages = entries
            .iter()
            .take(limit)
            .map(|e| codec::decode::<Message>(&e.value))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if reverse {
            messages.reverse();
        }
        let first = messages.first().map(|m| m.id);
        let last = messages.last().map(|m| m.id);
        let (older, newer) = match page {
            PageRequest::Latest { .. } => (first.filter(|_| more), None),
            PageRequest::Before { id, .. } => (first.filter(|_| more), last.or(Some(id))),
            PageRequest::After { id, .. } => (first.or(Some(id)), last.filter(|_| more)),
        };
        Ok(MessagePage {
            messages,
            older,
            newer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head decodes from a whole stored message, whatever its text, mentions and thread: a
    /// renamed or retyped field of [`Message`] fails here instead of in a retention run.
    #[test]
    fn a_message_head_reads_the_fields_that_decide_removal() {
        let at = Timestamp::from_unix_millis(1_700_000_000_000);
        let author = UserId::from_bytes([7; 16]);
        let mut message = Message {
            id: MessageId::from_bytes([1; 16]),
            channel: ChannelId::from_bytes([2; 16]),
            author,
            created: at,
            edited: Some(at),
            revision: 3,
            body: "an earlier text \u{202e} with a bidi override".repeat(40),
            thread: Some(MessageId::from_bytes([3; 16])),
            mentions: vec![
                Mention::User(UserId::from_bytes([4; 16])),
                Mention::Group(GroupId::from_bytes([5; 16])),
            ],
            deleted: None,
        };
        for deleted in [
            None,
            Some(Deletion {
                by: author,
                at: Timestamp::from_unix_millis(1_700_000_000_001),
            }),
        ] {
            message.deleted = deleted;
            let head = codec::decode::<MessageHead>(&codec::encode(&message).unwrap()).unwrap();
            assert_eq!(
                head,
                MessageHead {
                    id: message.id,
                    channel: message.channel,
                    author,
                    revision: 3,
                    deleted,
                }
            );
        }
    }
}
