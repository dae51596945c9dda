//! Request-rate bounds the runner applies before a request reaches the
//! component: per bearer token (a token bucket) and, against token guessing,
//! per client address after failed authentications.
//!
//! The runner does not know which tokens are valid (the component does), so
//! the per-token bucket is keyed by a keyed hash of the `Authorization`
//! value: a guessed token is limited like a real one, and no secret is kept.
//! The failure bound counts the `401` answers each address got in the last
//! window; past the bound, that address is answered `429` without reaching
//! the component until the window ends. Both tables are bounded in size.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Window over which failed authentications are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// Most entries either table keeps; past it, expired ones are dropped and,
/// if none is, the oldest half.
const MAX_ENTRIES: usize = 100_000;

/// The configured bounds; 0 turns one off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests a second per bearer token (bursts of twice that).
    pub per_token: u32,
    /// Failed authentications per client address per [`FAILURE_WINDOW`].
    pub auth_failures: u32,
}

pub struct Throttle {
    limits: Limits,
    hasher: RandomState,
    buckets: Mutex<HashMap<u64, Bucket>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Failures {
    count: u32,
    since: Instant,
}

/// Why a request is turned away, and when to come back.
pub struct Refusal {
    pub detail: &'static str,
    pub retry_after: Duration,
}

impl Throttle {
    pub fn new(limits: Limits) -> Self {
        Throttle { limits, hasher: RandomState::new(), buckets: Mutex::default(), failures: Mutex::default() }
    }

    /// Whether a request from `peer` with this `Authorization` value may go on.
    pub fn admit(&self, peer: IpAddr, authorization: Option<&[u8]>) -> Result<(), Refusal> {
        let now = Instant::now();
        if self.limits.auth_failures > 0 {
            let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = failures.get(&peer)
                && f.count >= self.limits.auth_failures
                && now.duration_since(f.since) < FAILURE_WINDOW
            {
                return Err(Refusal {
                    detail: "too many failed authentications from this address; retry later",
                    retry_after: FAILURE_WINDOW.saturating_sub(now.duration_since(f.since)),
                });
            }
        }
        if let (Some(auth), rate) = (authorization, self.limits.per_token)
            && rate > 0
        {
            let key = self.hasher.hash_one(auth);
            let rate = f64::from(rate);
            let burst = rate * 2.0;
            let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            if buckets.len() >= MAX_ENTRIES && !buckets.contains_key(&key) {
                // A full bucket after a second of rest holds nothing to remember.
                buckets.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(2));
                evict_oldest(&mut buckets, |b| b.at);
            }
            let bucket = buckets.entry(key).or_insert(Bucket { tokens: burst, at: now });
            bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(burst);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                return Err(Refusal {
                    detail: "too many requests for this token; retry later",
                    retry_after: Duration::from_secs_f64((1.0 - bucket.tokens) / rate),
                });
            }
            bucket.tokens -= 1.0;
        }
        Ok(())
    }

    /// Records the status a request from `peer` was answered with.
    pub fn answered(&self, peer: IpAddr, status: u16) {
        if status != 401 || self.limits.auth_failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= MAX_ENTRIES && !failures.contains_key(&peer) {
            failures.retain(|_, f| now.duration_since(f.since) < FAILURE_WINDOW);
            evict_oldest(&mut failures, |f| f.since);
        }
        let f = failures.entry(peer).or_insert(Failures { count: 0, since: now });
        if now.duration_since(f.since) >= FAILURE_WINDOW {
            *f = Failures { count: 0, since: now };
        }
        f.count += 1;
    }
}

/// Drops the older half of a table that is still full.
fn evict_oldest<K: Copy + Eq + std::hash::Hash, V>(table: &mut HashMap<K, V>, at: impl Fn(&V) -> Instant) {
    if table.len() < MAX_ENTRIES {
        return;
    }
    let mut times: Vec<Instant> = table.values().map(&at).collect();
    times.sort_unstable();
    let cut = times[times.len() / 2];
    table.retain(|_, v| at(v) > cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn a_token_gets_its_burst_then_its_rate() {
        let t = Throttle::new(Limits { per_token: 5, auth_failures: 0 });
        for _ in 0..10 {
            assert!(t.admit(PEER, Some(b"Bearer a")).is_ok());
        }
        let refused = t.admit(PEER, Some(b"Bearer a")).expect_err("past the burst of 10");
        assert!(refused.retry_after <= Duration::from_millis(200));
        // Another token is not affected.
        assert!(t.admit(PEER, Some(b"Bearer b")).is_ok());
    }

    #[test]
    fn an_address_with_too_many_failures_waits_out_the_window() {
        let t = Throttle::new(Limits { per_token: 0, auth_failures: 3 });
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
        for _ in 0..3 {
            assert!(t.admit(PEER, Some(b"Bearer guess")).is_ok());
            t.answered(PEER, 401);
        }
        t.answered(PEER, 200);
        let refused = t.admit(PEER, Some(b"Bearer right")).expect_err("three failures");
        assert!(refused.retry_after <= FAILURE_WINDOW && refused.retry_after > Duration::from_secs(50));
        assert!(t.admit(other, Some(b"Bearer right")).is_ok());
    }
}
