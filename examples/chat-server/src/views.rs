//! zt-chat's values as the protocol's views and records (`zt_chat_protocol`): the one place the
//! server translates its library's types for the wire.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use zt_authz::ChannelVisibility;
use zt_chat::{ChannelInfo, ChannelKind, Event, Mention, Message, MessagePage};
use zt_chat_protocol::realtime::ServerRecord;
use zt_chat_protocol::views::{
    ChannelView, MessagePageView, MessageView, SessionView, UserView, Visibility,
};
use zt_core::identity::{Session, SessionKind, User, UserState};

/// The view of a user.
pub(crate) fn user_view(user: &User) -> UserView {
    UserView {
        id: user.id.to_string(),
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        state: match user.state {
            UserState::Active => "active",
            UserState::Deactivated => "deactivated",
            UserState::Deleted => "deleted",
        }
        .into(),
    }
}

/// The view of one of the caller's sessions.
pub(crate) fn session_view(hash: [u8; 32], session: &Session, current: bool) -> SessionView {
    SessionView {
        id: hex::encode(hash),
        kind: match session.kind {
            SessionKind::Interactive => "interactive",
            SessionKind::Api => "api",
            SessionKind::Portal => "portal",
            SessionKind::Sso => "sso",
        }
        .into(),
        created: session.created.unix_millis(),
        last_seen: session.last_seen.unix_millis(),
        current,
    }
}

/// The view of a channel.
pub(crate) fn channel_view(c: ChannelInfo) -> ChannelView {
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

/// The view of a message.
pub(crate) fn message_view(m: &Message) -> MessageView {
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

/// The view of a page of messages.
pub(crate) fn page_view(page: MessagePage) -> MessagePageView {
    MessagePageView {
        messages: page.messages.iter().map(message_view).collect(),
        older: page.older.map(|id| id.to_string()),
        newer: page.newer.map(|id| id.to_string()),
    }
}

/// The record of a hub event.
pub(crate) fn record_of(event: &Event) -> ServerRecord {
    match event {
        Event::Posted(m) => ServerRecord::Posted {
            message: message_view(m),
        },
        Event::Edited(m) => ServerRecord::Edited {
            message: message_view(m),
        },
        Event::Deleted(m) => ServerRecord::Deleted {
            message: message_view(m),
        },
        Event::Removed { channel, messages } => ServerRecord::Removed {
            channel: channel.to_string(),
            messages: messages.iter().map(ToString::to_string).collect(),
        },
        Event::ChannelChanged(c) => ServerRecord::ChannelChanged {
            channel: c.to_string(),
        },
        Event::MembershipChanged(c) => ServerRecord::MembershipChanged {
            channel: c.to_string(),
        },
        Event::GroupChanged(g) => ServerRecord::GroupChanged {
            group: g.to_string(),
        },
        Event::PermissionsChanged => ServerRecord::PermissionsChanged,
    }
}

/// The JSON of the events sent most recently. Every subscriber of a workspace receives the same
/// events in the same order, so one encoding serves all of them: a fan-out to N connections
/// encodes once, not N times. Several are kept because under a burst some subscribers are still
/// sending one event while others have moved on to the next ones.
#[derive(Default)]
pub struct EncodedEvents {
    recent: Mutex<VecDeque<Encoded>>,
}

/// How many encoded events [`EncodedEvents`] keeps.
const ENCODED_KEPT: usize = 16;

/// An event and its record's JSON.
type Encoded = (Arc<Event>, Arc<[u8]>);

impl std::fmt::Debug for EncodedEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedEvents").finish_non_exhaustive()
    }
}

impl EncodedEvents {
    /// The record of `event`, encoded once while it is among the most recent.
    ///
    /// # Errors
    /// The encoder's.
    pub fn encode(&self, event: &Arc<Event>) -> Result<Arc<[u8]>, serde_json::Error> {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, bytes)) = recent
            .iter()
            .rev()
            .find(|(seen, _)| Arc::ptr_eq(seen, event))
        {
            return Ok(Arc::clone(bytes));
        }
        let bytes: Arc<[u8]> = serde_json::to_vec(&record_of(event))?.into();
        if recent.len() == ENCODED_KEPT {
            recent.pop_front();
        }
        // Holding the event keeps its address from being reused while it is cached.
        recent.push_back((Arc::clone(event), Arc::clone(&bytes)));
        Ok(bytes)
    }
}

fn policy_view(p: zt_chat::RetentionPolicy) -> zt_chat_protocol::lifecycle::RetentionPolicyView {
    zt_chat_protocol::lifecycle::RetentionPolicyView {
        messages_seconds: p.messages.map(|d| d.as_secs()),
        files_seconds: p.files.map(|d| d.as_secs()),
    }
}

/// The view of a workspace's retention.
pub(crate) fn retention_view(
    s: &zt_chat::RetentionSettings,
    floor: std::time::Duration,
) -> zt_chat_protocol::lifecycle::RetentionView {
    zt_chat_protocol::lifecycle::RetentionView {
        workspace: policy_view(s.workspace),
        channels: s
            .channels
            .iter()
            .map(|(c, p)| (c.to_string(), policy_view(*p)))
            .collect(),
        floor_seconds: floor.as_secs(),
    }
}

fn counts_view(
    c: zt_chat::retention::ChannelCounts,
) -> zt_chat_protocol::lifecycle::RetentionCountsView {
    zt_chat_protocol::lifecycle::RetentionCountsView {
        messages: c.messages,
        revisions: c.revisions,
        files: c.files,
        spared: c.spared,
    }
}

/// The view of what a retention run did.
pub(crate) fn retention_report_view(
    r: &zt_chat::RetentionReport,
) -> zt_chat_protocol::lifecycle::RetentionReportView {
    zt_chat_protocol::lifecycle::RetentionReportView {
        started: r.started.unix_millis(),
        finished: r.finished.unix_millis(),
        resumed: r.resumed,
        totals: counts_view(r.totals()),
        channels: r
            .channels
            .iter()
            .map(|(c, n)| (c.to_string(), counts_view(*n)))
            .collect(),
        spared_by: r
            .spared_by
            .iter()
            .map(|(h, n)| (h.to_string(), *n))
            .collect(),
    }
}

/// The view of a legal hold.
pub(crate) fn hold_view(h: &zt_chat::LegalHold) -> zt_chat_protocol::lifecycle::LegalHoldView {
    use zt_chat_protocol::lifecycle::HoldKind;
    let (kind, subject) = match h.scope {
        zt_chat::HoldScope::Custodian(u) => (HoldKind::Custodian, Some(u.to_string())),
        zt_chat::HoldScope::Channel(c) => (HoldKind::Channel, Some(c.to_string())),
        zt_chat::HoldScope::AuditLogs => (HoldKind::AuditLogs, None),
    };
    zt_chat_protocol::lifecycle::LegalHoldView {
        id: h.id.to_string(),
        kind,
        subject,
        reason: h.reason.clone(),
        owner: h.owner.to_string(),
        started: h.started.unix_millis(),
    }
}

/// The view of a request for approval.
pub(crate) fn approval_view(a: &zt_chat::Approval) -> zt_chat_protocol::lifecycle::ApprovalView {
    zt_chat_protocol::lifecycle::ApprovalView {
        id: a.id.to_string(),
        action: a.action.name().to_owned(),
        subject: a.action.subject(),
        requested_by: a.requested_by.to_string(),
        requested: a.requested.unix_millis(),
        expires: a.expires.unix_millis(),
    }
}

/// The view of what an approval carried out.
pub(crate) fn approved_view(done: &zt_chat::Approved) -> zt_chat_protocol::lifecycle::ApprovedView {
    match done {
        zt_chat::Approved::LegalHoldReleased(hold) => zt_chat_protocol::lifecycle::ApprovedView {
            action: "release_legal_hold".into(),
            hold: Some(hold_view(hold)),
            wipe: None,
        },
        zt_chat::Approved::WipeApproved(wipe) => zt_chat_protocol::lifecycle::ApprovedView {
            action: "execute_wipe".into(),
            hold: None,
            wipe: Some(wipe_view(wipe)),
        },
        _ => zt_chat_protocol::lifecycle::ApprovedView {
            action: "other".into(),
            hold: None,
            wipe: None,
        },
    }
}

/// The view of a workspace's wipe.
pub(crate) fn wipe_view(w: &zt_chat::WipeSchedule) -> zt_chat_protocol::lifecycle::WipeView {
    zt_chat_protocol::lifecycle::WipeView {
        workspace: w.tenant.to_string(),
        not_before: w.not_before.unix_millis(),
        scheduled_by: w.scheduled_by.to_string(),
        scheduled: w.scheduled.unix_millis(),
        approval: w.approval.to_string(),
        approved_by: w.approved_by.map(|u| u.to_string()),
        phase: match w.phase {
            zt_chat::WipePhase::Scheduled => "scheduled",
            zt_chat::WipePhase::Destroying => "destroying",
            zt_chat::WipePhase::Removing { .. } => "removing",
            zt_chat::WipePhase::Done { .. } => "done",
        }
        .into(),
        unreadable_at: w.unreadable_at.map(|t| t.unix_millis()),
        checkpoints: w.checkpoints.clone(),
    }
}

/// The wire name of a content policy.
pub(crate) fn authored_content_view(
    policy: zt_chat::AuthoredContent,
) -> zt_chat_protocol::lifecycle::AuthoredContentView {
    use zt_chat_protocol::lifecycle::AuthoredContentView as V;
    match policy {
        zt_chat::AuthoredContent::Keep => V::Keep,
        zt_chat::AuthoredContent::Delete => V::Delete,
    }
}

/// The view of what a user's deletion did.
pub(crate) fn user_deletion_view(
    d: &zt_chat::UserDeletion,
) -> zt_chat_protocol::lifecycle::UserDeletionView {
    zt_chat_protocol::lifecycle::UserDeletionView {
        user: user_view(&d.user),
        content: authored_content_view(d.content),
        messages: d.messages,
        revisions: d.revisions,
        files: d.files,
        spared: d.spared,
        sessions: d.sessions,
        links: d.links,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail by panicking")]
mod tests {
    use zt_core::{ChannelId, SystemClock};

    use super::*;

    fn changed() -> Arc<Event> {
        Arc::new(Event::ChannelChanged(ChannelId::generate(&SystemClock)))
    }

    #[test]
    fn interleaved_subscribers_share_one_encoding_per_recent_event() {
        let encoded = EncodedEvents::default();
        let (first, second) = (changed(), changed());
        let a = encoded.encode(&first).unwrap();
        let b = encoded.encode(&second).unwrap();
        // A subscriber one event behind the others still gets the cached bytes.
        assert!(Arc::ptr_eq(&a, &encoded.encode(&first).unwrap()));
        assert!(Arc::ptr_eq(&b, &encoded.encode(&second).unwrap()));
        let Event::ChannelChanged(channel) = *first else {
            unreachable!()
        };
        assert_eq!(
            serde_json::from_slice::<ServerRecord>(&a).unwrap(),
            ServerRecord::ChannelChanged {
                channel: channel.to_string()
            }
        );
        // Once it left the window it is encoded again, to the same bytes.
        for _ in 0..ENCODED_KEPT {
            encoded.encode(&changed()).unwrap();
        }
        let again = encoded.encode(&first).unwrap();
        assert!(!Arc::ptr_eq(&a, &again));
        assert_eq!(a, again);
    }

    /// What retention and deletions removed reaches clients as the channel and the ids, in the
    /// ids' text form, oldest first.
    #[test]
    fn removed_messages_go_out_as_their_channel_and_ids() {
        let channel = ChannelId::generate(&SystemClock);
        let messages = vec![
            zt_core::MessageId::generate(&SystemClock),
            zt_core::MessageId::generate(&SystemClock),
        ];
        let json = serde_json::to_value(record_of(&Event::Removed {
            channel,
            messages: messages.clone(),
        }))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "removed",
                "channel": channel.to_string(),
                "messages": [messages[0].to_string(), messages[1].to_string()],
            })
        );
    }
}
