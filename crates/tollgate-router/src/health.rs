//! What the router remembers about each deployment: requests in flight, recent latency,
//! recent failures and cooldowns, and per-minute request and token use.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use std::sync::Arc;

use tollgate_config::RouterSettings;

use crate::{Deployment, FailureKind};

const WINDOW: Duration = Duration::from_secs(60);
/// The resolution of the per-minute counts: a [`Window`] holds one total per `BUCKET`.
const BUCKET: Duration = Duration::from_secs(1);

/// Quota does not come back within seconds; a deployment out of it rests at least this long.
pub const QUOTA_COOLDOWN: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Live state of one deployment.
#[derive(Debug, Default)]
pub struct DeploymentHealth {
    in_flight: AtomicI64,
    /// Exponentially weighted latency in microseconds; 0 until measured.
    latency_us: AtomicU64,
    failures: Mutex<VecDeque<Instant>>,
    cooldown_until: Mutex<Option<Instant>>,
    requests: Mutex<Window>,
    tokens: Mutex<Window>,
    /// Exponentially weighted completion tokens per answer; 0 until measured.
    completion_tokens: AtomicU64,
    /// The latest failure, written only when an attempt fails.
    last_error: Mutex<Option<LastError>>,
}

/// The latest failure of a deployment, as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// When it happened.
    pub at: SystemTime,
    /// What routing made of it.
    pub kind: FailureKind,
    /// The HTTP status the attempt ended with.
    pub status: u16,
    /// What the upstream (or the gateway) said, at most [`LastError::MAX_CHARS`] characters.
    pub message: String,
}

impl LastError {
    /// The longest message kept.
    pub const MAX_CHARS: usize = 300;

    /// A failure at `at`, its message cut to [`LastError::MAX_CHARS`].
    pub fn new(at: SystemTime, kind: FailureKind, status: u16, message: &str) -> Self {
        let message = match message.char_indices().nth(Self::MAX_CHARS) {
            Some((end, _)) => format!("{}…", &message[..end]),
            None => message.to_owned(),
        };
        Self { at, kind, status, message }
    }
}

/// A total over the last minute, to within a second: one running total per second, at most
/// 61 of them however many requests arrive, and old ones dropped on every write, so memory
/// stays bounded whether or not a limit ever reads it.
#[derive(Debug, Default)]
struct Window {
    /// (start of the second, total in it), oldest first.
    buckets: VecDeque<(Instant, u64)>,
}

impl Window {
    fn add(&mut self, now: Instant, n: u64) {
        self.expire(now);
        match self.buckets.back_mut() {
            // A `now` a little behind the latest (another thread's clock read) joins it too.
            Some((start, total)) if now.saturating_duration_since(*start) < BUCKET => {
                *total = total.saturating_add(n);
            }
            _ => self.buckets.push_back((now, n)),
        }
    }

    fn total(&mut self, now: Instant) -> u64 {
        self.expire(now);
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    fn expire(&mut self, now: Instant) {
        while self
            .buckets
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= WINDOW)
        {
            self.buckets.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// Marks a request in flight on a deployment until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Deployment>);

impl InFlight {
    /// Starts a request on `deployment`: counts it in flight and against its `rpm`.
    pub fn enter(deployment: &Arc<Deployment>, now: Instant) -> Self {
        deployment.health.begin(now);
        Self(deployment.clone())
    }

    /// The deployment.
    pub fn deployment(&self) -> &Arc<Deployment> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.health.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl DeploymentHealth {
    /// Requests now in flight.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Recent latency, if measured.
    pub fn latency(&self) -> Option<Duration> {
        match self.latency_us.load(Ordering::Acquire) {
            0 => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Until when the deployment is cooling down, if it is.
    pub fn cooling_until(&self, now: Instant) -> Option<Instant> {
        lock(&self.cooldown_until).filter(|t| *t > now)
    }

    /// Tokens used in the last minute.
    pub fn tokens_last_minute(&self, now: Instant) -> u64 {
        lock(&self.tokens).total(now)
    }

    /// Whether one more request fits the deployment's `rpm` and `tpm`.
    pub fn has_capacity(&self, now: Instant, rpm: Option<u64>, tpm: Option<u64>) -> bool {
        if let Some(rpm) = rpm
            && lock(&self.requests).total(now) >= rpm
        {
            return false;
        }
        tpm.is_none_or(|tpm| self.tokens_last_minute(now) < tpm)
    }

    fn begin(&self, now: Instant) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        lock(&self.requests).add(now, 1);
    }

    /// Counts tokens a finished request used against `tpm` and usage-based routing.
    pub fn add_tokens(&self, now: Instant, tokens: u64) {
        if tokens > 0 {
            lock(&self.tokens).add(now, tokens);
        }
    }

    /// Notes how many tokens an answer had, for [`DeploymentHealth::typical_completion_tokens`].
    pub fn record_completion(&self, tokens: u64) {
        let old = self.completion_tokens.load(Ordering::Acquire);
        let new = if old == 0 { tokens.max(1) } else { (old * 4 + tokens) / 5 };
        self.completion_tokens.store(new.max(1), Ordering::Release);
    }

    /// How many tokens this deployment's answers have recently had, once any was measured.
    pub fn typical_completion_tokens(&self) -> Option<u64> {
        match self.completion_tokens.load(Ordering::Acquire) {
            0 => None,
            n => Some(n),
        }
    }

    /// Remembers `error` as the deployment's latest failure.
    pub fn note_error(&self, error: LastError) {
        *lock(&self.last_error) = Some(error);
    }

    /// The latest failure, if any since the deployment was built.
    pub fn last_error(&self) -> Option<LastError> {
        lock(&self.last_error).clone()
    }

    /// Records a success and how long the deployment took to start answering.
    pub fn record_success(&self, latency: Duration) {
        let sample = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        let old = self.latency_us.load(Ordering::Acquire);
        let new = if old == 0 { sample.max(1) } else { (old * 4 + sample) / 5 };
        self.latency_us.store(new.max(1), Ordering::Release);
    }

    /// Records a failure. Rate limits and quota put the deployment into cooldown at once
    /// (for the upstream's `retry-after` if longer); other faults do after more than
    /// `allowed_fails` within a minute. Returns the cooldown's end when one starts.
    pub fn record_failure(
        &self,
        now: Instant,
        kind: FailureKind,
        retry_after: Option<Duration>,
        settings: &RouterSettings,
    ) -> Option<Instant> {
        if !kind.is_deployment_fault() {
            return None;
        }
        let rest = match kind {
            FailureKind::RateLimited => {
                Some(settings.cooldown_time.max(retry_after.unwrap_or_default()))
            }
            FailureKind::QuotaExceeded => Some(
                settings.cooldown_time.max(retry_after.unwrap_or_default()).max(QUOTA_COOLDOWN),
            ),
            _ => {
                let mut f = lock(&self.failures);
                f.push_back(now);
                while f.front().is_some_and(|at| now.duration_since(*at) >= WINDOW) {
                    f.pop_front();
                }
                (f.len() as u32 > settings.allowed_fails).then(|| {
                    f.clear();
                    settings.cooldown_time
                })
            }
        }?;
        if rest.is_zero() {
            return None;
        }
        let until = now + rest;
        self.rest_until(until);
        Some(until)
    }

    /// Skips the deployment until `until` (or later, if it already rests longer): how a
    /// cooldown another replica started reaches this one.
    pub fn rest_until(&self, until: Instant) {
        let mut c = lock(&self.cooldown_until);
        if c.is_none_or(|t| t < until) {
            *c = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cools_down_after_allowed_fails_and_recovers() {
        let s = RouterSettings {
            allowed_fails: 1,
            cooldown_time: Duration::from_secs(5),
            ..Default::default()
        };
        let h = DeploymentHealth::default();
        let t0 = Instant::now();
        assert!(h.record_failure(t0, FailureKind::ServerError, None, &s).is_none());
        let until = h.record_failure(t0, FailureKind::ServerError, None, &s).unwrap();
        assert_eq!(until, t0 + Duration::from_secs(5));
        assert!(h.cooling_until(t0 + Duration::from_secs(4)).is_some());
        assert!(h.cooling_until(t0 + Duration::from_secs(5)).is_none());
        // Client errors are not the deployment's fault.
        assert!(h.record_failure(t0, FailureKind::BadRequest, None, &s).is_none());
    }

    #[test]
    fn rate_limits_and_quota_cool_down_at_once() {
        let s = RouterSettings::default();
        let h = DeploymentHealth::default();
        let t0 = Instant::now();
        let until =
            h.record_failure(t0, FailureKind::RateLimited, Some(Duration::from_secs(20)), &s);
        assert_eq!(until, Some(t0 + Duration::from_secs(20)));
        let until = h.record_failure(t0, FailureKind::QuotaExceeded, None, &s);
        assert_eq!(until, Some(t0 + QUOTA_COOLDOWN));
    }

    #[test]
    fn capacity_follows_rpm_and_tpm() {
        let h = DeploymentHealth::default();
        let t0 = Instant::now();
        assert!(h.has_capacity(t0, Some(2), None));
        h.begin(t0);
        h.begin(t0);
        assert!(!h.has_capacity(t0, Some(2), None));
        assert!(h.has_capacity(t0 + WINDOW, Some(2), None));
        h.record_success(Duration::from_millis(10));
        h.add_tokens(t0, 500);
        assert!(!h.has_capacity(t0, None, Some(500)));
        assert!(h.has_capacity(t0, None, Some(501)));
        assert_eq!(h.latency(), Some(Duration::from_millis(10)));
    }

    #[test]
    fn per_minute_counts_stay_bounded_when_nothing_reads_them() {
        let h = DeploymentHealth::default();
        let t0 = Instant::now();
        // Ten minutes of 100 requests a second, with no rpm or tpm set to read the counts.
        for i in 0..60_000u64 {
            let now = t0 + Duration::from_millis(i * 10);
            h.begin(now);
            h.add_tokens(now, 10);
        }
        assert!(lock(&h.requests).len() <= 61, "{} request buckets", lock(&h.requests).len());
        assert!(lock(&h.tokens).len() <= 61, "{} token buckets", lock(&h.tokens).len());
        // And what they count is still the last minute's.
        let end = t0 + Duration::from_millis(599_990);
        let requests = lock(&h.requests).total(end);
        assert!((5_900..=6_000).contains(&requests), "{requests} requests in the last minute");
        let tokens = h.tokens_last_minute(end);
        assert!((59_000..=60_000).contains(&tokens), "{tokens} tokens in the last minute");
    }

    #[test]
    fn an_earlier_clock_read_joins_the_latest_second() {
        let h = DeploymentHealth::default();
        let t0 = Instant::now() + Duration::from_secs(5);
        h.begin(t0);
        h.begin(t0 - Duration::from_millis(3));
        assert_eq!(lock(&h.requests).len(), 1);
        assert!(!h.has_capacity(t0, Some(2), None));
    }

    #[test]
    fn the_latest_failure_is_kept_and_long_messages_are_cut() {
        let h = DeploymentHealth::default();
        assert_eq!(h.last_error(), None);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        h.note_error(LastError::new(t0, FailureKind::ServerError, 500, "first"));
        let long = "é".repeat(LastError::MAX_CHARS + 10);
        h.note_error(LastError::new(t0, FailureKind::RateLimited, 429, &long));
        let last = h.last_error().unwrap();
        assert_eq!((last.kind, last.status, last.at), (FailureKind::RateLimited, 429, t0));
        assert_eq!(last.message.chars().count(), LastError::MAX_CHARS + 1, "cut, with an ellipsis");
        assert!(last.message.ends_with('…'));
    }

    #[test]
    fn in_flight_is_counted() {
        let catalog = crate::Catalog::from_entries(&[crate::default_copilot_entry()]);
        let d = catalog.deployments().next().unwrap().clone();
        let g = InFlight::enter(&d, Instant::now());
        assert_eq!(d.health.in_flight(), 1);
        drop(g);
        assert_eq!(d.health.in_flight(), 0);
    }
}
