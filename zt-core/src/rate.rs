//! Token buckets keyed by anything (a client address, a user): each key may take `burst` at once
//! and `per_second` sustained, refilled continuously. What the sign-in limiter
//! ([`crate::identity::SignInLimiter`]) and the reference server's request limits are made of.
//!
//! ```
//! use zt_core::Timestamp;
//! use zt_core::rate::TokenBuckets;
//!
//! let buckets = TokenBuckets::new(1.0, 2.0);
//! let t0 = Timestamp::from_unix_millis(0);
//! assert!(buckets.take("10.0.0.1", t0).is_ok());
//! assert!(buckets.take("10.0.0.1", t0).is_ok());
//! let refused = buckets.take("10.0.0.1", t0).unwrap_err();
//! assert_eq!(refused.retry_after.as_secs(), 1);
//! assert!(refused.report, "the first refusal of a window is the one to record");
//! // Another key has its own bucket.
//! assert!(buckets.take("10.0.0.2", t0).is_ok());
//! ```

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::clock::Timestamp;

/// How many buckets are kept before the full ones are forgotten.
const MAX_BUCKETS: usize = 100_000;

/// How often refusals of one key are reported: the first of each window.
pub const REPORT_WINDOW: Duration = Duration::from_secs(60);

/// A refused take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// How long until a take would be allowed.
    pub retry_after: Duration,
    /// Whether this is the key's first refusal in [`REPORT_WINDOW`]: the one to audit, so a
    /// flood of refusals does not become a flood of records.
    pub report: bool,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: i64,
    reported: Option<i64>,
}

/// Token buckets keyed by `K`.
#[derive(Debug)]
pub struct TokenBuckets<K> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq> TokenBuckets<K> {
    /// Buckets allowing `per_second` sustained and `burst` at once per key. A rate that is not
    /// positive allows only the burst, ever.
    pub fn new(per_second: f64, burst: f64) -> Self {
        TokenBuckets {
            per_second: if per_second.is_finite() {
                per_second.max(0.0)
            } else {
                0.0
            },
            burst: if burst.is_finite() {
                burst.max(1.0)
            } else {
                1.0
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The sustained rate per key.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// The burst per key.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Takes one token of `key`'s bucket at `now`.
    ///
    /// # Errors
    /// A [`Refusal`] saying when a token is back.
    pub fn take(&self, key: K, now: Timestamp) -> Result<(), Refusal> {
        let now = now.unix_millis();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            let (rate, burst) = (self.per_second, self.burst);
            buckets.retain(|_, b| {
                b.tokens + (now.saturating_sub(b.at).max(0) as f64 / 1000.0) * rate < burst
            });
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
            reported: None,
        });
        let elapsed = now.saturating_sub(bucket.at).max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let window = i64::try_from(REPORT_WINDOW.as_millis()).unwrap_or(i64::MAX);
        let report = bucket
            .reported
            .is_none_or(|at| now.saturating_sub(at) >= window);
        if report {
            bucket.reported = Some(now);
        }
        let retry_after = if self.per_second > 0.0 {
            Duration::from_secs_f64(((1.0 - bucket.tokens) / self.per_second).ceil().max(1.0))
        } else {
            Duration::from_secs(3600)
        };
        Err(Refusal {
            retry_after,
            report,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_and_reports_once_a_window() {
        let buckets = TokenBuckets::new(2.0, 3.0);
        for _ in 0..3 {
            buckets.take(1u8, at(0)).unwrap();
        }
        let refused = buckets.take(1, at(0)).unwrap_err();
        assert!(refused.report);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert!(!buckets.take(1, at(0)).unwrap_err().report);
        buckets.take(2, at(0)).unwrap();
        // Half a second later one token is back, and only one.
        buckets.take(1, at(500)).unwrap();
        assert!(buckets.take(1, at(500)).is_err());
        // A window later, a refusal is reported again.
        let later = 60_000;
        for _ in 0..3 {
            let _ = buckets.take(1, at(later));
        }
        assert!(buckets.take(1, at(later + 1)).unwrap_err().report);
        // A clock that steps back refills nothing.
        let back = TokenBuckets::new(1.0, 1.0);
        back.take(0u8, at(10_000)).unwrap();
        assert!(back.take(0, at(0)).is_err());
    }

    #[test]
    fn a_zero_rate_allows_only_the_burst() {
        let buckets = TokenBuckets::new(0.0, 1.0);
        buckets.take(1u8, at(0)).unwrap();
        assert!(buckets.take(1, at(3_600_000)).is_err());
        let nan = TokenBuckets::<u8>::new(f64::NAN, f64::INFINITY);
        assert_eq!((nan.per_second(), nan.burst()), (0.0, 1.0));
    }
}
