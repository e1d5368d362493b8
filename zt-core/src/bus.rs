//! The `EventBus` port: how one part of a deployment tells the others that something changed, so
//! that caches in front of the store stay true (a revoked session fails on its very next use).
//!
//! A subscriber that falls behind is told so ([`Delivery::Lagged`]) rather than silently missing
//! events; a cache must then drop everything it holds. [`InProcessBus`] serves one process; a
//! multi-node deployment puts a broker behind the same trait.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use zt_core::{BusEvent, Delivery, EventBus, InProcessBus, UserId};
//!
//! let bus = InProcessBus::new(16);
//! let mut subscription = bus.subscribe();
//! let user = UserId::from_bytes([1; 16]);
//! bus.publish(BusEvent::UserSessionsRevoked { user });
//! assert_eq!(
//!     subscription.next().await,
//!     Delivery::Event(BusEvent::UserSessionsRevoked { user })
//! );
//! # });
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::{TenantId, UserId};

/// Something that changed, for the caches of other components.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BusEvent {
    /// One session ended: the SHA-256 of its token (never the token).
    SessionRevoked {
        /// SHA-256 of the session token.
        token_hash: [u8; 32],
    },
    /// Every session of a user ended (deactivation, deletion, revoke-all).
    UserSessionsRevoked {
        /// The user.
        user: UserId,
    },
    /// A tenant's session policy changed; sessions must be checked against the new one.
    SessionPolicyChanged {
        /// The tenant.
        tenant: TenantId,
    },
    /// A tenant's roles, assignments, memberships or segments changed; `version` is the
    /// tenant's authorization version after the change.
    AuthzChanged {
        /// The tenant.
        tenant: TenantId,
        /// Its authorization version after the change.
        version: u64,
    },
}

/// What a subscriber receives next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The next event.
    Event(BusEvent),
    /// Events were missed (the subscriber fell behind): anything cached must be dropped.
    Lagged,
    /// The bus is gone; no more events will come.
    Closed,
}

/// A subscriber's end of the bus.
#[async_trait]
pub trait Subscription: Send {
    /// Waits for the next delivery.
    async fn next(&mut self) -> Delivery;

    /// The next delivery if one is already waiting, without waiting. A cache drains these
    /// before it answers, so an event published before the question is always applied.
    fn try_next(&mut self) -> Option<Delivery>;

    /// A counter that grows once an event is ready for [`try_next`](Self::try_next) (each
    /// event, before `publish` returns on an in-process bus; on arrival for a networked one).
    /// A hot path remembers its value at its last drain and drains again only when it changed:
    /// one atomic load instead of a lock when nothing happened.
    fn ready_counter(&self) -> Arc<AtomicU64>;
}

/// Publishes changes to every subscriber.
pub trait EventBus: Send + Sync + fmt::Debug + 'static {
    /// Sends `event` to every current subscriber. Never blocks; a subscriber that cannot keep
    /// up is told it lagged.
    fn publish(&self, event: BusEvent);

    /// A new subscription, which sees every event published from now on.
    fn subscribe(&self) -> Box<dyn Subscription>;
}

/// The bus of one process: a bounded broadcast channel.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<BusEvent>,
    published: Arc<AtomicU64>,
}

impl InProcessBus {
    /// A bus whose subscribers may fall `capacity` events behind before they lag (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        InProcessBus {
            sender,
            published: Arc::default(),
        }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        InProcessBus::new(1024)
    }
}

struct InProcessSubscription(broadcast::Receiver<BusEvent>, Arc<AtomicU64>);

#[async_trait]
impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Delivery {
        match self.0.recv().await {
            Ok(event) => Delivery::Event(event),
            Err(broadcast::error::RecvError::Lagged(_)) => Delivery::Lagged,
            Err(broadcast::error::RecvError::Closed) => Delivery::Closed,
        }
    }

    fn try_next(&mut self) -> Option<Delivery> {
        match self.0.try_recv() {
            Ok(event) => Some(Delivery::Event(event)),
            Err(broadcast::error::TryRecvError::Lagged(_)) => Some(Delivery::Lagged),
            Err(broadcast::error::TryRecvError::Closed) => Some(Delivery::Closed),
            Err(broadcast::error::TryRecvError::Empty) => None,
        }
    }

    fn ready_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.1)
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: BusEvent) {
        // Fails only when nobody subscribes, and then nobody needs the event.
        let _ = self.sender.send(event);
        // After the send: whoever sees the new count finds the event in its receiver.
        self.published.fetch_add(1, Ordering::Release);
    }

    fn subscribe(&self) -> Box<dyn Subscription> {
        Box::new(InProcessSubscription(
            self.sender.subscribe(),
            Arc::clone(&self.published),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let bus = InProcessBus::new(2);
        let mut slow = bus.subscribe();
        for i in 0..5u8 {
            bus.publish(BusEvent::UserSessionsRevoked {
                user: UserId::from_bytes([i; 16]),
            });
        }
        assert_eq!(slow.try_next(), Some(Delivery::Lagged));
        // After the lag it reads on from the oldest event still held.
        assert_eq!(
            slow.next().await,
            Delivery::Event(BusEvent::UserSessionsRevoked {
                user: UserId::from_bytes([3; 16])
            })
        );
        let mut late = bus.subscribe();
        assert_eq!(late.try_next(), None);
        // The counter moved with each publication, and moves with the next.
        let counter = late.ready_counter();
        assert_eq!(counter.load(Ordering::Acquire), 5);
        bus.publish(BusEvent::SessionPolicyChanged {
            tenant: TenantId::from_bytes([9; 16]),
        });
        assert_eq!(counter.load(Ordering::Acquire), 6);
        assert!(matches!(late.try_next(), Some(Delivery::Event(_))));
        drop(bus);
        assert_eq!(late.next().await, Delivery::Closed);
    }
}
