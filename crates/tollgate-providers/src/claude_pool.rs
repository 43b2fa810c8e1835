//! A pool of Claude OAuth tokens (`CLAUDE_OAUTH_TOKENS`) used round-robin for Anthropic
//! deployments without a key of their own. A token answered with 429 rests for a while; when
//! every token rests, the one that frees soonest is used rather than failing at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tollgate_config::Secret;

/// How a request to Claude gets its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenMode {
    /// From the pool, round-robin.
    #[default]
    Rotate,
    /// The client's own Claude token, when it sent one.
    Passthrough,
}

impl TokenMode {
    /// Parses `rotate` or `passthrough`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rotate" => Some(Self::Rotate),
            "passthrough" => Some(Self::Passthrough),
            _ => None,
        }
    }
}

/// The token pool.
#[derive(Debug)]
pub struct ClaudePool {
    tokens: Vec<Secret<String>>,
    resting_until: Mutex<Vec<Option<Instant>>>,
    next: AtomicUsize,
    rest: Duration,
}

impl ClaudePool {
    /// A pool of `tokens`; a token that gets 429 rests for `rest` (or the upstream's
    /// `retry-after`, if longer).
    pub fn new(tokens: Vec<Secret<String>>, rest: Duration) -> Self {
        let n = tokens.len();
        Self { tokens, resting_until: Mutex::new(vec![None; n]), next: AtomicUsize::new(0), rest }
    }

    /// Whether the pool has any token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// How many tokens it has.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// The next token to use: round-robin over the rested ones; if all rest, the one that
    /// frees soonest.
    pub fn pick(&self, now: Instant) -> Option<(usize, &Secret<String>)> {
        let n = self.tokens.len();
        if n == 0 {
            return None;
        }
        let resting = self.resting_until.lock().unwrap_or_else(|e| e.into_inner());
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let free = (0..n).map(|i| (start + i) % n).find(|&i| resting[i].is_none_or(|t| t <= now));
        let i =
            free.unwrap_or_else(|| (0..n).min_by_key(|&i| resting[i].unwrap_or(now)).unwrap_or(0));
        Some((i, &self.tokens[i]))
    }

    /// Lets token `i` rest after a 429.
    pub fn rest(&self, i: usize, now: Instant, retry_after: Option<Duration>) {
        let mut resting = self.resting_until.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = resting.get_mut(i) {
            *slot = Some(now + self.rest.max(retry_after.unwrap_or_default()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> ClaudePool {
        ClaudePool::new(
            (0..n).map(|i| Secret::new(format!("sk-ant-oat-{i}"))).collect(),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn rotates_and_skips_resting_tokens() {
        let p = pool(3);
        let t0 = Instant::now();
        let picks: Vec<usize> = (0..6).map(|_| p.pick(t0).unwrap().0).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        p.rest(1, t0, None);
        let picks: Vec<usize> = (0..4).map(|_| p.pick(t0).unwrap().0).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        assert!(p.pick(t0 + Duration::from_secs(61)).is_some());
    }

    #[test]
    fn when_all_rest_the_soonest_free_is_used() {
        let p = pool(2);
        let t0 = Instant::now();
        p.rest(0, t0, Some(Duration::from_secs(120)));
        p.rest(1, t0, None);
        assert_eq!(p.pick(t0).unwrap().0, 1);
        assert!(pool(0).pick(t0).is_none());
        assert_eq!(TokenMode::parse("PassThrough"), Some(TokenMode::Passthrough));
    }
}
