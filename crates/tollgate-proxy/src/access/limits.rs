//! In-memory rate limits: requests per minute, tokens per minute and requests in flight.
//! Nothing here touches the database; every check is a few atomic or short-locked steps.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

/// Requests per minute as a GCRA ("virtual scheduling"): the limit is a steady rate of
/// `limit` per minute with a burst of `limit`, so a client can use its whole minute at once
/// but never more than `limit` within any minute-long window. One atomic holds the state.
#[derive(Debug)]
pub struct RequestRate {
    limit: u64,
    /// Nanoseconds between requests at the steady rate.
    interval: u64,
    /// Theoretical arrival time of the next request, in nanoseconds since `base`.
    tat: AtomicU64,
    base: Instant,
}

impl RequestRate {
    /// A limit of `per_minute` requests.
    pub fn new(per_minute: u64) -> Self {
        let per_minute = per_minute.max(1);
        Self {
            limit: per_minute,
            interval: (MINUTE.as_nanos() as u64) / per_minute,
            tat: AtomicU64::new(0),
            base: Instant::now(),
        }
    }

    /// The configured limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Takes one request, or says how long to wait before one is allowed.
    pub fn try_acquire(&self, now: Instant) -> Result<(), Duration> {
        let now = now.saturating_duration_since(self.base).as_nanos() as u64;
        let tolerance = self.interval * (self.limit - 1);
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start > now + tolerance {
                return Err(Duration::from_nanos(start - tolerance - now));
            }
            match self.tat.compare_exchange_weak(
                tat,
                start + self.interval,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

/// Tokens used over the last minute, in one-second buckets.
#[derive(Debug, Default)]
pub struct TokenWindow {
    buckets: Mutex<VecDeque<(u64, u64)>>,
    base: Option<Instant>,
}

impl TokenWindow {
    /// An empty window measured from `base`.
    pub fn new(base: Instant) -> Self {
        Self { buckets: Mutex::new(VecDeque::new()), base: Some(base) }
    }

    fn second(&self, now: Instant) -> u64 {
        self.base.map_or(0, |b| now.saturating_duration_since(b).as_secs())
    }

    /// Adds tokens used at `now`.
    pub fn add(&self, now: Instant, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let sec = self.second(now);
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match b.back_mut() {
            Some((s, n)) if *s == sec => *n += tokens,
            _ => b.push_back((sec, tokens)),
        }
        while b.front().is_some_and(|(s, _)| *s + 60 <= sec) {
            b.pop_front();
        }
    }

    /// Tokens used in the minute before `now`, and how long until the oldest of them leaves
    /// the window.
    pub fn used(&self, now: Instant) -> (u64, Duration) {
        let sec = self.second(now);
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        while b.front().is_some_and(|(s, _)| *s + 60 <= sec) {
            b.pop_front();
        }
        let total = b.iter().map(|(_, n)| n).sum();
        let wait = b.front().map_or(Duration::ZERO, |(s, _)| Duration::from_secs(s + 60 - sec));
        (total, wait)
    }
}

/// Requests in flight.
#[derive(Debug, Default)]
pub struct InFlight(AtomicI64);

impl InFlight {
    /// Takes a slot if fewer than `limit` are taken.
    pub fn try_enter(&self, limit: i64) -> bool {
        let mut n = self.0.load(Ordering::Relaxed);
        loop {
            if n >= limit {
                return false;
            }
            match self.0.compare_exchange_weak(n, n + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => n = actual,
            }
        }
    }

    /// Takes a slot regardless of any limit.
    pub fn enter(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    /// Releases a slot.
    pub fn leave(&self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }

    /// Slots taken.
    pub fn current(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_allows_the_limit_then_asks_to_wait() {
        let r = RequestRate::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(r.try_acquire(t0).is_ok());
        }
        let wait = r.try_acquire(t0).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20), "{wait:?}");
        // One slot frees every 20 s.
        assert!(r.try_acquire(t0 + Duration::from_secs(20)).is_ok());
        assert!(r.try_acquire(t0 + Duration::from_secs(20)).is_err());
        // After a quiet minute the whole burst is back.
        let later = t0 + Duration::from_secs(200);
        for _ in 0..3 {
            assert!(r.try_acquire(later).is_ok());
        }
    }

    #[test]
    fn rpm_is_exact_under_contention() {
        let r = std::sync::Arc::new(RequestRate::new(1000));
        let t0 = Instant::now();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || (0..500).filter(|_| r.try_acquire(t0).is_ok()).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 1000);
    }

    #[test]
    fn token_window_slides() {
        let t0 = Instant::now();
        let w = TokenWindow::new(t0);
        w.add(t0, 100);
        w.add(t0 + Duration::from_secs(30), 50);
        assert_eq!(w.used(t0 + Duration::from_secs(31)).0, 150);
        let (used, wait) = w.used(t0 + Duration::from_secs(59));
        assert_eq!(used, 150);
        assert_eq!(wait, Duration::from_secs(1));
        assert_eq!(w.used(t0 + Duration::from_secs(60)).0, 50);
        assert_eq!(w.used(t0 + Duration::from_secs(91)).0, 0);
    }

    #[test]
    fn in_flight_respects_the_limit() {
        let f = InFlight::default();
        assert!(f.try_enter(2));
        assert!(f.try_enter(2));
        assert!(!f.try_enter(2));
        f.leave();
        assert!(f.try_enter(2));
        assert_eq!(f.current(), 2);
    }
}
