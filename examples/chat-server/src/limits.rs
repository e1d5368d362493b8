//! Rate limits: a token bucket per key (client address, user), refilled continuously.

use std::hash::Hash;
use std::net::IpAddr;
use std::time::Instant;

use serde::Deserialize;
use zt_core::UserId;

/// The rate limits of the API.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Requests per second a client address may sustain.
    pub per_address_per_second: f64,
    /// Requests an address may send at once, above the sustained rate.
    pub per_address_burst: f64,
    /// Requests per second a user may sustain.
    pub per_user_per_second: f64,
    /// Requests a user may send at once.
    pub per_user_burst: f64,
    /// Requests per second one SCIM key may sustain (zt-chat's `ScimRate`).
    #[serde(default = "scim_per_second")]
    pub per_scim_key_per_second: f64,
    /// Requests one SCIM key may send at once.
    #[serde(default = "scim_burst")]
    pub per_scim_key_burst: f64,
}

fn scim_per_second() -> f64 {
    zt_chat::ScimRate::default().per_second
}

fn scim_burst() -> f64 {
    zt_chat::ScimRate::default().burst
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_address_per_second: 100.0,
            per_address_burst: 400.0,
            per_user_per_second: 50.0,
            per_user_burst: 200.0,
            per_scim_key_per_second: scim_per_second(),
            per_scim_key_burst: scim_burst(),
        }
    }
}

/// How often refusals of one key are reported: the first of each window.
pub use zt_core::rate::REPORT_WINDOW;

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Seconds until a request would be allowed.
    pub retry_after: u64,
    /// Whether this is the key's first refusal in [`REPORT_WINDOW`]: the one to audit, so a
    /// flood of refused requests does not become a flood of audit records.
    pub report: bool,
}

/// Token buckets keyed by `K` (zt-core's [`TokenBuckets`](zt_core::rate::TokenBuckets), on the
/// monotonic clock).
pub struct RateLimiter<K> {
    buckets: zt_core::rate::TokenBuckets<K>,
    /// The instant that counts as time zero.
    base: Instant,
}

impl<K: Hash + Eq> std::fmt::Debug for RateLimiter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("per_second", &self.buckets.per_second())
            .field("burst", &self.buckets.burst())
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// A limiter allowing `per_second` sustained and `burst` at once per key. A rate that is not
    /// positive allows nothing beyond the burst.
    pub fn new(per_second: f64, burst: f64) -> Self {
        RateLimiter {
            buckets: zt_core::rate::TokenBuckets::new(per_second, burst),
            base: Instant::now(),
        }
    }

    /// Takes one token of `key`'s bucket at `now`.
    ///
    /// # Errors
    /// A [`Refusal`] with the seconds until a token is back.
    pub fn check_at(&self, key: K, now: Instant) -> Result<(), Refusal> {
        let millis = now.saturating_duration_since(self.base).as_millis();
        let at = zt_core::Timestamp::from_unix_millis(i64::try_from(millis).unwrap_or(i64::MAX));
        self.buckets.take(key, at).map_err(|refused| Refusal {
            retry_after: refused.retry_after.as_secs().max(1),
            report: refused.report,
        })
    }

    /// Takes one token of `key`'s bucket now.
    ///
    /// # Errors
    /// See [`RateLimiter::check_at`].
    pub fn check(&self, key: K) -> Result<(), Refusal> {
        self.check_at(key, Instant::now())
    }
}

/// The limiters of a server.
#[derive(Debug)]
pub struct Limiters {
    pub(crate) per_address: RateLimiter<IpAddr>,
    pub(crate) per_user: RateLimiter<UserId>,
    /// The settings they were made from.
    pub(crate) settings: Limits,
}

impl Limiters {
    pub(crate) fn new(limits: &Limits) -> Self {
        Limiters {
            settings: *limits,
            per_address: RateLimiter::new(limits.per_address_per_second, limits.per_address_burst),
            per_user: RateLimiter::new(limits.per_user_per_second, limits.per_user_burst),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(2.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            limiter.check_at(1u8, start).unwrap();
        }
        let refused = limiter.check_at(1, start).unwrap_err();
        assert!(refused.report, "the first refusal is reported");
        assert_eq!(refused.retry_after, 1);
        assert!(
            !limiter.check_at(1, start).unwrap_err().report,
            "later ones are not"
        );
        assert_eq!(refused.retry_after, 1);
        // Another key has its own bucket.
        limiter.check_at(2, start).unwrap();
        // Half a second later one token is back, and only one.
        let later = start + Duration::from_millis(500);
        limiter.check_at(1, later).unwrap();
        assert!(limiter.check_at(1, later).is_err());
        // A window later, a refusal is reported again.
        let much_later = start + REPORT_WINDOW;
        for _ in 0..3 {
            let _ = limiter.check_at(1, much_later);
        }
        let after_window = limiter.check_at(1, much_later + Duration::from_millis(1));
        assert!(after_window.unwrap_err().report);
    }

    #[test]
    fn a_zero_rate_allows_only_the_burst() {
        let limiter = RateLimiter::new(0.0, 1.0);
        let now = Instant::now();
        limiter.check_at(1u8, now).unwrap();
        assert!(limiter.check_at(1, now + Duration::from_secs(60)).is_err());
    }
}
