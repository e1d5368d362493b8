//! The realtime hub of one workspace: live subscriptions that receive the events of what their
//! caller may read, decided when each event is published, so a change of permissions or
//! membership applies to the very next event after it returns.
//!
//! - Channel events (message posted, edited, deleted, removed for good; channel or membership
//!   changed) go to every
//!   subscriber allowed `read_channel` there at the moment of publishing; group events to those
//!   who can see the group. A member removed from
//!   a private channel receives nothing posted after the removal returned.
//! - A subscription ends with a reason: its session was revoked or ended (heard on the
//!   `EventBus`), it fell more than its queue behind (slow subscribers are disconnected, never
//!   buffered without bound), or the bus lagged (what was revoked meanwhile is unknown).
//! - Every authorization change announces [`Event::PermissionsChanged`], for clients to refresh.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, Weak};

use tokio::sync::mpsc;
use zt_authz::{Action, Authorizer, Permission, Resource};
use zt_core::{
    BusEvent, ChannelId, Delivery, GroupId, MessageId, Principal, Subscription as BusSubscription,
    TenantId, UserId,
};

use crate::messages::Message;

/// How many events a subscriber may be behind before it is disconnected.
pub const DEFAULT_QUEUE: usize = 1024;

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message was posted.
    Posted(Message),
    /// A message was edited.
    Edited(Message),
    /// A message was deleted (its tombstone).
    Deleted(Message),
    /// Messages of a channel are gone for good, their tombstones too (retention, a deleted
    /// user's content, the clean-up of old tombstones): drop them from view.
    Removed {
        /// The channel.
        channel: ChannelId,
        /// The messages, oldest first.
        messages: Vec<MessageId>,
    },
    /// A channel's name, topic or state changed.
    ChannelChanged(ChannelId),
    /// A channel's membership changed.
    MembershipChanged(ChannelId),
    /// A group's settings or membership changed (sent to those who can see the group).
    GroupChanged(GroupId),
    /// The workspace's roles, assignments or memberships changed: permissions may have.
    PermissionsChanged,
}

impl Event {
    /// The question a subscriber must be allowed to receive it; `None` for everyone.
    fn question(&self) -> Option<(Action, Resource)> {
        let read = Action::Do(Permission::ReadChannel);
        match self {
            Event::Posted(m) | Event::Edited(m) | Event::Deleted(m) => {
                Some((read, Resource::Channel(m.channel)))
            }
            Event::ChannelChanged(c)
            | Event::MembershipChanged(c)
            | Event::Removed { channel: c, .. } => Some((read, Resource::Channel(*c))),
            Event::GroupChanged(g) => Some((Action::View, Resource::Group(*g))),
            Event::PermissionsChanged => None,
        }
    }
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its session was revoked or ended.
    SessionEnded,
    /// It fell more than its queue behind.
    TooSlow,
    /// The hub lost track of revocations (the bus lagged); subscribe again.
    Resync,
    /// The workspace is shutting down.
    Shutdown,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloseReason::SessionEnded => "the session ended",
            CloseReason::TooSlow => "the subscriber fell too far behind",
            CloseReason::Resync => "subscribe again",
            CloseReason::Shutdown => "the workspace is shutting down",
        })
    }
}

struct Sub {
    principal: Principal,
    session: [u8; 32],
    tx: mpsc::Sender<Arc<Event>>,
    reason: Arc<OnceLock<CloseReason>>,
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::Receiver<Arc<Event>>,
    reason: Arc<OnceLock<CloseReason>>,
    id: u64,
    hub: Weak<Hub>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The next event; once the subscription ended, why (after every event queued before).
    ///
    /// # Errors
    /// The [`CloseReason`] when it ended.
    pub async fn next(&mut self) -> Result<Arc<Event>, CloseReason> {
        match self.rx.recv().await {
            Some(event) => Ok(event),
            None => Err(self.reason.get().copied().unwrap_or(CloseReason::Shutdown)),
        }
    }

    /// The next event if one is queued.
    ///
    /// # Errors
    /// The [`CloseReason`] when it ended; `Ok(None)` when nothing is queued yet.
    pub fn try_next(&mut self) -> Result<Option<Arc<Event>>, CloseReason> {
        match self.rx.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => {
                Err(self.reason.get().copied().unwrap_or(CloseReason::Shutdown))
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.remove(self.id, CloseReason::Shutdown);
        }
    }
}

/// The hub of one workspace.
pub struct Hub {
    tenant: TenantId,
    subs: RwLock<HashMap<u64, Sub>>,
    next: AtomicU64,
    queue: usize,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("tenant", &self.tenant)
            .field("subscribers", &self.len())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub whose subscribers may fall `queue` events behind; it follows `bus` (revocations,
    /// authorization changes) on a task of its own while it lives.
    pub(crate) fn start(
        tenant: TenantId,
        queue: usize,
        bus: Box<dyn BusSubscription>,
    ) -> Arc<Self> {
        let hub = Arc::new(Hub {
            tenant,
            subs: RwLock::new(HashMap::new()),
            next: AtomicU64::new(0),
            queue: queue.max(1),
        });
        tokio::spawn(follow(Arc::downgrade(&hub), bus));
        hub
    }

    /// How many subscriptions are live.
    pub fn len(&self) -> usize {
        self.subs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn subscribe(
        self: &Arc<Self>,
        principal: Principal,
        session: [u8; 32],
    ) -> Subscription {
        let (tx, rx) = mpsc::channel(self.queue);
        let reason = Arc::new(OnceLock::new());
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.subs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                id,
                Sub {
                    principal,
                    session,
                    tx,
                    reason: Arc::clone(&reason),
                },
            );
        Subscription {
            rx,
            reason,
            id,
            hub: Arc::downgrade(self),
        }
    }

    fn remove(&self, id: u64, reason: CloseReason) {
        if let Some(sub) = self
            .subs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id)
        {
            let _ = sub.reason.set(reason);
        }
    }

    fn close_where(&self, reason: CloseReason, mut which: impl FnMut(&Sub) -> bool) {
        let mut subs = self.subs.write().unwrap_or_else(PoisonError::into_inner);
        subs.retain(|_, sub| {
            if which(sub) {
                let _ = sub.reason.set(reason);
                false
            } else {
                true
            }
        });
    }

    /// Delivers `event` to every subscriber `authz` lets read its channel or see its group
    /// (every subscriber, for an event of neither). A subscriber whose queue is full is
    /// disconnected.
    pub(crate) fn publish(&self, authz: &Authorizer, event: Event) {
        let question = event.question();
        let event = Arc::new(event);
        let mut slow = Vec::new();
        {
            let subs = self.subs.read().unwrap_or_else(PoisonError::into_inner);
            for (id, sub) in subs.iter() {
                let allowed = question.is_none_or(|(action, resource)| {
                    authz.authorize(sub.principal, action, resource).allowed
                });
                if !allowed {
                    continue;
                }
                match sub.tx.try_send(Arc::clone(&event)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => slow.push(*id),
                    // The subscription was dropped; its removal is on its way.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        for id in slow {
            self.remove(id, CloseReason::TooSlow);
        }
    }

    pub(crate) fn user_sessions_ended(&self, user: UserId) {
        self.close_where(CloseReason::SessionEnded, |s| s.principal.user == user);
    }
}

/// Applies the bus to the hub until either is gone.
async fn follow(hub: Weak<Hub>, mut bus: Box<dyn BusSubscription>) {
    loop {
        let delivery = bus.next().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        match delivery {
            Delivery::Event(BusEvent::SessionRevoked { token_hash }) => {
                hub.close_where(CloseReason::SessionEnded, |s| s.session == token_hash);
            }
            Delivery::Event(BusEvent::UserSessionsRevoked { user }) => {
                hub.user_sessions_ended(user)
            }
            Delivery::Event(BusEvent::AuthzChanged { tenant, .. }) if tenant == hub.tenant => {
                // Every subscriber may read "permissions changed"; no channel to check.
                let subs: Vec<(u64, mpsc::Sender<Arc<Event>>)> = hub
                    .subs
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .map(|(id, s)| (*id, s.tx.clone()))
                    .collect();
                let event = Arc::new(Event::PermissionsChanged);
                for (id, tx) in subs {
                    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Arc::clone(&event))
                    {
                        hub.remove(id, CloseReason::TooSlow);
                    }
                }
            }
            Delivery::Event(_) => {}
            Delivery::Lagged => hub.close_where(CloseReason::Resync, |_| true),
            Delivery::Closed => {
                hub.close_where(CloseReason::Shutdown, |_| true);
                return;
            }
        }
    }
}
