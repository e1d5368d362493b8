//! Sign-in limits applied before the password hash runs, sized to what the hash costs.
//!
//! argon2id is slow on purpose, so a request limiter sized for ordinary API calls never fires on
//! sign-in: the hash is the bottleneck and a flood from one address queues every other address's
//! sign-in behind it. [`SignInLimiter`] refuses first, costing no hash:
//!
//! - **per address** (IPv4 address, IPv6 /64): a token bucket whose sustained rate is, unless
//!   set, an eighth of the hasher's measured capacity (threads ÷ seconds per hash, taken when the
//!   hasher starts), so one address can never take more than an eighth of the sign-in capacity;
//! - **in all**: at most [`SignInLimits::max_waiting`] sign-ins may wait for or run a hash at
//!   once (8 per hashing thread unless set); past it every address is told to retry in a second,
//!   instead of queueing without bound.
//!
//! Refusals say when to retry ([`Refusal::retry_after`]) and whether to record them (the first
//! per address per minute).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::clock::Timestamp;
use crate::rate::{REPORT_WINDOW, Refusal, TokenBuckets};

/// The sign-in limits (`None`: sized from the hasher).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignInLimits {
    /// Sign-in attempts per second one address may sustain.
    pub per_address_per_second: Option<f64>,
    /// Attempts one address may make at once.
    pub per_address_burst: u32,
    /// Sign-ins that may wait for or run a hash at once, in all.
    pub max_waiting: Option<usize>,
}

impl Default for SignInLimits {
    fn default() -> Self {
        SignInLimits {
            per_address_per_second: None,
            per_address_burst: 10,
            max_waiting: None,
        }
    }
}

/// The key of a source address: the IPv4 address, or the /64 of an IPv6 address (one host's
/// share, which an attacker can otherwise rotate through freely).
pub(crate) fn address_bytes(source: IpAddr) -> Vec<u8> {
    match source {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets()[..8].to_vec(),
        },
    }
}

/// The limiter of one deployment (shared by its tenants, like the hasher it protects).
#[derive(Debug)]
pub struct SignInLimiter {
    per_address: TokenBuckets<Vec<u8>>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    reported_full: AtomicI64,
}

/// A sign-in's place among those waiting for the hasher; given back when dropped.
#[derive(Debug)]
pub struct Admission {
    waiting: Arc<AtomicUsize>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

impl SignInLimiter {
    /// A limiter with `limits` for a hasher doing `hashes_per_second` over `threads` threads.
    pub fn new(limits: &SignInLimits, hashes_per_second: f64, threads: usize) -> Self {
        let per_second = limits
            .per_address_per_second
            .unwrap_or((hashes_per_second / 8.0).max(0.2));
        SignInLimiter {
            per_address: TokenBuckets::new(per_second, f64::from(limits.per_address_burst)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: limits.max_waiting.unwrap_or(threads.max(1) * 8).max(1),
            reported_full: AtomicI64::new(i64::MIN),
        }
    }

    /// The sustained rate one address is allowed.
    pub fn per_address_per_second(&self) -> f64 {
        self.per_address.per_second()
    }

    /// Admits one sign-in attempt from `source` at `now` (an attempt without an address shares
    /// one bucket with every other such attempt).
    ///
    /// # Errors
    /// A [`Refusal`]: the address is over its rate, or too many sign-ins are waiting.
    pub fn admit(&self, source: Option<IpAddr>, now: Timestamp) -> Result<Admission, Refusal> {
        let key = source.map(address_bytes).unwrap_or_default();
        self.per_address.take(key, now)?;
        let before = self.waiting.fetch_add(1, Ordering::Relaxed);
        let admission = Admission {
            waiting: Arc::clone(&self.waiting),
        };
        if before >= self.max_waiting {
            drop(admission);
            let window = i64::try_from(REPORT_WINDOW.as_millis()).unwrap_or(i64::MAX);
            let last = self.reported_full.load(Ordering::Relaxed);
            let report = now.unix_millis().saturating_sub(last) >= window
                && self
                    .reported_full
                    .compare_exchange(
                        last,
                        now.unix_millis(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok();
            return Err(Refusal {
                retry_after: Duration::from_secs(1),
                report,
            });
        }
        Ok(admission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_an_eighth_of_the_capacity_and_the_queue_is_bounded() {
        let limiter = SignInLimiter::new(&SignInLimits::default(), 40.0, 2);
        assert!((limiter.per_address_per_second() - 5.0).abs() < 1e-9);
        let now = Timestamp::from_unix_millis(0);
        let flooder: IpAddr = "192.0.2.1".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..10 {
            held.push(limiter.admit(Some(flooder), now).unwrap());
        }
        let refused = limiter.admit(Some(flooder), now).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        // Another address is admitted until 16 (8 per thread) are waiting.
        for i in 0..6 {
            let other: IpAddr = format!("198.51.100.{i}").parse().unwrap();
            held.push(limiter.admit(Some(other), now).unwrap());
        }
        let full = limiter
            .admit(Some("203.0.113.9".parse().unwrap()), now)
            .unwrap_err();
        assert!(full.report);
        held.clear();
        limiter
            .admit(Some("203.0.113.9".parse().unwrap()), now)
            .unwrap();
        // IPv6 addresses of one /64 share a bucket.
        let limits = SignInLimits {
            per_address_per_second: Some(0.0),
            per_address_burst: 1,
            max_waiting: None,
        };
        let strict = SignInLimiter::new(&limits, 40.0, 2);
        let _ = strict
            .admit(Some("2001:db8::1".parse().unwrap()), now)
            .unwrap();
        assert!(
            strict
                .admit(Some("2001:db8::2".parse().unwrap()), now)
                .is_err()
        );
        assert!(
            strict
                .admit(Some("2001:db8:0:1::1".parse().unwrap()), now)
                .is_ok()
        );
    }
}
