//! Progressive lockout: after `threshold` failures a lock starts at `first_lock` and doubles with
//! each further failure up to `cap`; failures are forgotten one per `decay` of quiet time.
//!
//! A [`LockoutPolicy`] weighs failures three ways (see `Authenticator::login` and
//! docs/threat-model.md): per (account, address) pair, the guesser at one account from one
//! place; per account over the addresses it is not known at, a guess spread over many places;
//! per address over the accounts not known there, a spray. An address where the account signed
//! in lately is *familiar*: strangers' failures, however many, never lock it.
//!
//! ```
//! use std::time::Duration;
//! use zt_core::Timestamp;
//! use zt_core::identity::{LockState, LockoutRule};
//!
//! let rule = LockoutRule {
//!     threshold: 3,
//!     first_lock: Duration::from_secs(10),
//!     cap: Duration::from_secs(60),
//!     decay: Duration::from_secs(300),
//! };
//! let t0 = Timestamp::from_unix_millis(0);
//! let mut state = LockState::default();
//! for _ in 0..2 {
//!     state = rule.fail(&state, t0).0;
//! }
//! assert!(!rule.is_locked(&state, t0));
//! let (state, locked_for) = rule.fail(&state, t0);
//! assert_eq!(locked_for, Some(Duration::from_secs(10)));
//! assert!(rule.is_locked(&state, t0));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// How one kind of key (an account, an address) locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    /// Failures (still counted) that start a lock.
    pub threshold: u32,
    /// The first lock's length.
    pub first_lock: Duration,
    /// The longest lock.
    pub cap: Duration,
    /// Quiet time after which one failure is forgotten.
    pub decay: Duration,
}

/// The rules of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Per (account, address) pair: locks only that account at that address.
    pub pair: LockoutRule,
    /// Per account, counting failures from the addresses it is not familiar at; locks the
    /// account at those addresses only.
    pub account: LockoutRule,
    /// Per source address (IPv4 address, IPv6 /64), counting failures at accounts it is not
    /// familiar to; locks that address for those accounts only.
    pub address: LockoutRule,
    /// How long a successful sign-in keeps its address familiar to the account.
    pub familiar_for: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            pair: LockoutRule {
                threshold: 5,
                first_lock: Duration::from_secs(30),
                cap: Duration::from_secs(15 * 60),
                decay: Duration::from_secs(15 * 60),
            },
            account: LockoutRule {
                threshold: 20,
                first_lock: Duration::from_secs(60),
                cap: Duration::from_secs(15 * 60),
                decay: Duration::from_secs(15 * 60),
            },
            address: LockoutRule {
                threshold: 30,
                first_lock: Duration::from_secs(60),
                cap: Duration::from_secs(15 * 60),
                decay: Duration::from_secs(5 * 60),
            },
            familiar_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// What is stored per key: its failures and lock, when a sign-in last succeeded there (pairs),
/// which lock's refusals were already recorded, and the unlock epoch (accounts: an unlock bumps
/// it, which sets aside every pair's failures counted before).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Failures and lock.
    pub state: LockState,
    /// The last successful sign-in (pairs only).
    pub last_success: Option<Timestamp>,
    /// The end of the lock whose refusals were recorded.
    pub reported_until: Option<Timestamp>,
    /// Accounts: bumped by each unlock. Pairs: the account's epoch when they last changed.
    pub epoch: u64,
}

/// The failures of one key, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    /// Failures counted at `last_failure`.
    pub failures: u32,
    /// When the last failure happened.
    pub last_failure: Option<Timestamp>,
    /// Until when the key is locked.
    pub locked_until: Option<Timestamp>,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl LockoutRule {
    /// The failures still counted at `now`: one is forgotten per `decay` since the last.
    pub fn effective(&self, state: &LockState, now: Timestamp) -> u32 {
        let Some(last) = state.last_failure else {
            return 0;
        };
        let quiet = now.unix_millis().saturating_sub(last.unix_millis()).max(0);
        let forgotten = match millis(self.decay) {
            0 => u32::MAX,
            decay => u32::try_from(quiet / decay).unwrap_or(u32::MAX),
        };
        state.failures.saturating_sub(forgotten)
    }

    /// Whether the key is locked at `now`.
    pub fn is_locked(&self, state: &LockState, now: Timestamp) -> bool {
        state.locked_until.is_some_and(|until| until > now)
    }

    /// How long the lock still runs at `now`, if one does.
    pub fn remaining(&self, state: &LockState, now: Timestamp) -> Option<Duration> {
        let until = state.locked_until.filter(|until| *until > now)?;
        let left = until.unix_millis().saturating_sub(now.unix_millis());
        Some(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }

    /// The lock that `failures` counted failures earn: none below the threshold, then
    /// `first_lock`, doubling per further failure, at most `cap`.
    pub fn lock_for(&self, failures: u32) -> Option<Duration> {
        let over = failures.checked_sub(self.threshold.max(1))?;
        let doubled = self
            .first_lock
            .checked_mul(1u32.checked_shl(over).unwrap_or(u32::MAX))
            .unwrap_or(self.cap);
        Some(doubled.min(self.cap))
    }

    /// Records a failure at `now`; returns the new state and, when it locks, for how long.
    pub fn fail(&self, state: &LockState, now: Timestamp) -> (LockState, Option<Duration>) {
        let failures = self.effective(state, now).saturating_add(1);
        let lock = self.lock_for(failures);
        let running = state.locked_until.filter(|until| *until > now);
        let earned = lock.map(|length| {
            Timestamp::from_unix_millis(now.unix_millis().saturating_add(millis(length)))
        });
        // Neither decay nor a shorter new lock ever cuts a lock already running.
        let locked_until = running.max(earned);
        let next = LockState {
            failures,
            last_failure: Some(now),
            locked_until,
        };
        (next, lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// For any rule and any failure times: no lock below the threshold; locks never shrink
        /// as failures grow and never pass the cap; a failure that earns a lock leaves the key
        /// locked for exactly that long; quiet time never raises the count.
        #[test]
        fn the_schedule_holds_for_any_rule(
            threshold in 1u32..10,
            first in 1u64..600,
            cap in 1u64..7200,
            decay in 1u64..3600,
            gaps in proptest::collection::vec(0u64..4000, 1..40),
        ) {
            let rule = LockoutRule {
                threshold,
                first_lock: Duration::from_secs(first),
                cap: Duration::from_secs(cap),
                decay: Duration::from_secs(decay),
            };
            let mut previous = None;
            for failures in 0..threshold + 12 {
                let lock = rule.lock_for(failures);
                prop_assert_eq!(lock.is_some(), failures >= threshold);
                if let Some(lock) = lock {
                    prop_assert!(lock <= rule.cap);
                    prop_assert!(previous.is_none_or(|p| lock >= p));
                    previous = Some(lock);
                }
            }
            let mut state = LockState::default();
            let mut now = 0i64;
            for gap in gaps {
                now += gap as i64 * 1000;
                let at = Timestamp::from_unix_millis(now);
                let later = Timestamp::from_unix_millis(now + 1_000_000);
                prop_assert!(rule.effective(&state, later) <= rule.effective(&state, at));
                let (next, lock) = rule.fail(&state, at);
                prop_assert_eq!(next.failures, rule.effective(&state, at) + 1);
                if let Some(length) = lock {
                    let end = now + length.as_millis() as i64;
                    prop_assert!(rule.is_locked(&next, at));
                    prop_assert!(rule.is_locked(&next, Timestamp::from_unix_millis(end - 1)));
                }
                // A lock already running is never cut short.
                if let Some(until) = state.locked_until.filter(|u| *u > at) {
                    prop_assert!(next.locked_until >= Some(until));
                }
                state = next;
            }
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(seconds * 1000)
    }

    #[test]
    fn locks_escalate_to_the_cap_and_failures_decay() {
        let rule = LockoutRule {
            threshold: 3,
            first_lock: Duration::from_secs(10),
            cap: Duration::from_secs(80),
            decay: Duration::from_secs(60),
        };
        let expected = [None, None, Some(10), Some(20), Some(40), Some(80), Some(80)];
        let mut state = LockState::default();
        for (n, want) in expected.iter().enumerate() {
            let (next, lock) = rule.fail(&state, at(n as i64));
            assert_eq!(lock, want.map(Duration::from_secs), "failure {}", n + 1);
            state = next;
        }
        assert_eq!(state.failures, 7);
        assert!(rule.is_locked(&state, at(6 + 79)));
        assert!(!rule.is_locked(&state, at(6 + 80)));
        // Ten quiet minutes forget ten failures: the next one starts over.
        let (state, lock) = rule.fail(&state, at(6 + 600));
        assert_eq!((state.failures, lock), (1, None));
        assert!(!rule.is_locked(&state, at(6 + 600)));
        // Two quiet minutes forget two: 7 - 2 + 1 = 6 failures, a capped lock again.
        let mut busy = LockState::default();
        for n in 0..7 {
            busy = rule.fail(&busy, at(n)).0;
        }
        assert_eq!(rule.effective(&busy, at(6 + 120)), 5);
        assert_eq!(
            rule.fail(&busy, at(6 + 120)).1,
            Some(Duration::from_secs(80))
        );
        // A huge count saturates instead of overflowing.
        assert_eq!(rule.lock_for(u32::MAX), Some(Duration::from_secs(80)));
    }
}
