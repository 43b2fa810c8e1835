//! Where rate limits (rpm, tpm, parallel requests) and deployment cooldowns are counted: in
//! this process, the default, or — with Redis configured — in Redis, shared by every replica,
//! so that N replicas admit a key's limit and not N times it.
//!
//! Redis down or slow never refuses a request: the replica counts in process (the counters in
//! [`crate::access`]) and says so in its log, its readiness answer and a metric, until Redis
//! answers again. Only requests that have a rate limit wait on Redis, for one round trip;
//! releases, token counts and cooldowns are sent behind the request's back.

mod redis;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tollgate_config::Secret;

pub use self::redis::{Denial, DenialKind, Limited, SharedCounters, SharedHold};

/// The counting seam: in process only, or shared through Redis while it answers.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    shared: Option<Arc<SharedCounters>>,
}

/// What `/health/readiness` says about shared counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedStatus {
    /// No Redis configured: limits are per process.
    NotConfigured,
    /// Limits are shared through Redis.
    Connected,
    /// Redis is configured but not answering: limits are per process until it does.
    Unavailable,
}

impl SharedStatus {
    /// The readiness answer's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotConfigured => "not configured",
            Self::Connected => "connected",
            Self::Unavailable => "unavailable",
        }
    }
}

impl Counters {
    /// Counting in this process only.
    pub fn local() -> Self {
        Self::default()
    }

    /// Counting through the Redis at `url`. Nothing connects yet: [`Counters::run`] does,
    /// and until it has, counting is per process.
    pub fn redis(url: &Secret<String>) -> Result<Self, String> {
        Ok(Self { shared: Some(Arc::new(SharedCounters::new(url)?)) })
    }

    /// The shared counters, while Redis answers.
    pub fn shared(&self) -> Option<&Arc<SharedCounters>> {
        self.shared.as_ref().filter(|s| s.is_up())
    }

    /// Whether limits are shared right now.
    pub fn status(&self) -> SharedStatus {
        match &self.shared {
            None => SharedStatus::NotConfigured,
            Some(s) if s.is_up() => SharedStatus::Connected,
            Some(_) => SharedStatus::Unavailable,
        }
    }

    /// Tells the other replicas that deployment `id` rests for `rest`.
    pub fn share_cooldown(&self, id: &str, rest: Duration) {
        if let Some(s) = self.shared() {
            s.share_cooldown(id, rest);
        }
    }

    /// Keeps the connection to Redis (and the replica's heartbeat) until the process ends,
    /// and hands cooldowns other replicas announce to `on_cooldown`. Returns at once without
    /// Redis.
    pub async fn run(self, on_cooldown: impl Fn(&str, Instant) + Send + Sync + 'static) {
        if let Some(s) = self.shared {
            s.run(Arc::new(on_cooldown)).await;
        }
    }
}
