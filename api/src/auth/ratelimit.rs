//! Token-bucket rate limits per key (an IP, a user), kept in memory per process.
//!
//! Each key's bucket holds up to `burst` requests and refills at `per_minute`. The set of keys
//! is bounded (least recently used keys are dropped first), so a flood of addresses cannot
//! exhaust memory; a dropped key starts again with a full bucket.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Keys remembered at most per limiter.
pub const KEYS_MAX: u64 = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One limit (e.g. commands per user).
pub struct RateLimiter {
    buckets: moka::sync::Cache<String, Arc<Mutex<Bucket>>>,
    per_second: f64,
    burst: f64,
}

impl RateLimiter {
    /// `per_minute` sustained, with bursts of up to `burst` (both at least 1).
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            buckets: moka::sync::Cache::builder().max_capacity(KEYS_MAX).time_to_idle(Duration::from_secs(600)).build(),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long until one is there.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let bucket = self.buckets.get_with_by_ref(key, || Arc::new(Mutex::new(Bucket { tokens: self.burst, at: now })));
        let mut b = bucket.lock().expect("a bucket's lock is never poisoned: nothing panics under it");
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_requests_wait_for_refill() {
        let limiter = RateLimiter::new(60, 3); // one a second, bursts of three
        let t = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("ip", t).is_ok());
        }
        let wait = limiter.check_at("ip", t).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check_at("other ip", t).is_ok(), "keys have their own buckets");
        assert!(limiter.check_at("ip", t + Duration::from_secs(1)).is_ok(), "refilled after a second");
        assert!(limiter.check_at("ip", t + Duration::from_secs(1)).is_err());
    }
}
