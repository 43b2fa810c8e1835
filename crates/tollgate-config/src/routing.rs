//! Router settings: fallback chains, retries, cooldowns and the load-balancing strategy.

use std::time::Duration;

/// How deployments of one model group are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoutingStrategy {
    /// At random, in proportion to `weight` (LiteLLM's default).
    #[default]
    SimpleShuffle,
    /// The deployment with the fewest requests in flight.
    LeastBusy,
    /// The deployment with the lowest recent latency.
    LatencyBased,
    /// The deployment with the fewest tokens used in the last minute.
    UsageBased,
}

impl RoutingStrategy {
    /// The names LiteLLM accepts.
    pub const NAMES: [&'static str; 5] = [
        "simple-shuffle",
        "least-busy",
        "latency-based-routing",
        "usage-based-routing",
        "usage-based-routing-v2",
    ];

    /// Parses a `routing_strategy` value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "simple-shuffle" => Some(Self::SimpleShuffle),
            "least-busy" => Some(Self::LeastBusy),
            "latency-based-routing" => Some(Self::LatencyBased),
            "usage-based-routing" | "usage-based-routing-v2" => Some(Self::UsageBased),
            _ => None,
        }
    }
}

/// One fallback rule: requests for models matching `pattern` fall back to `chain`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackRule {
    /// A model name or glob pattern (`claude-*`).
    pub pattern: String,
    /// Model names to try next.
    pub chain: Vec<String>,
    /// Where the rule was written, for `config check`.
    pub source: &'static str,
}

/// Retries per kind of failure (LiteLLM's `retry_policy`); unset kinds use `num_retries`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `BadRequestErrorRetries`.
    pub bad_request: Option<u32>,
    /// `AuthenticationErrorRetries`.
    pub authentication: Option<u32>,
    /// `TimeoutErrorRetries`.
    pub timeout: Option<u32>,
    /// `RateLimitErrorRetries`.
    pub rate_limit: Option<u32>,
    /// `ContentPolicyViolationErrorRetries`.
    pub content_policy: Option<u32>,
    /// `InternalServerErrorRetries`.
    pub internal_server: Option<u32>,
}

impl RetryPolicy {
    /// The keys LiteLLM uses.
    pub const KEYS: [&'static str; 6] = [
        "BadRequestErrorRetries",
        "AuthenticationErrorRetries",
        "TimeoutErrorRetries",
        "RateLimitErrorRetries",
        "ContentPolicyViolationErrorRetries",
        "InternalServerErrorRetries",
    ];

    pub(crate) fn set(&mut self, key: &str, n: u32) -> bool {
        let slot = match key {
            "BadRequestErrorRetries" => &mut self.bad_request,
            "AuthenticationErrorRetries" => &mut self.authentication,
            "TimeoutErrorRetries" => &mut self.timeout,
            "RateLimitErrorRetries" => &mut self.rate_limit,
            "ContentPolicyViolationErrorRetries" => &mut self.content_policy,
            "InternalServerErrorRetries" => &mut self.internal_server,
            _ => return false,
        };
        *slot = Some(n);
        true
    }
}

/// How the router behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterSettings {
    /// Fallback rules, `router_settings` first, then `litellm_settings`.
    pub fallbacks: Vec<FallbackRule>,
    /// Fallbacks for prompts too long for a model.
    pub context_window_fallbacks: Vec<FallbackRule>,
    /// Fallbacks for models no rule covers.
    pub default_fallbacks: Vec<String>,
    /// How deployments of a group are chosen.
    pub strategy: RoutingStrategy,
    /// Retries within a model group before falling back.
    pub num_retries: u32,
    /// Least wait between retries of one deployment.
    pub retry_after: Duration,
    /// Failures within a minute that put a deployment into cooldown.
    pub allowed_fails: u32,
    /// How long a failing deployment is skipped.
    pub cooldown_time: Duration,
    /// Retries per kind of failure.
    pub retry_policy: RetryPolicy,
    /// How deep fallbacks recurse: a fallback's own fallbacks are followed, up to this many
    /// hops from the requested model (LiteLLM's `max_fallbacks`).
    pub max_fallbacks: u32,
    /// What a request does when its model would take a key, user or team past its premium
    /// request budget.
    pub premium_budget_exceeded: PremiumBudgetExceeded,
    /// Premium requests of each linked Copilot account kept for admins: other callers' premium
    /// requests go to fallbacks once the account has no more than this left.
    pub copilot_premium_reserve: f64,
}

/// `router_settings.premium_budget_exceeded`: when a step of a request's plan would use more
/// premium requests than a budget has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PremiumBudgetExceeded {
    /// Move down the fallback chain to the first step the budgets can afford (a model with a
    /// lower multiplier, or an included one); refuse when none is left.
    #[default]
    Fallback,
    /// Refuse the request, naming the budget.
    Refuse,
}

impl PremiumBudgetExceeded {
    /// The accepted spellings.
    pub const NAMES: [&'static str; 2] = ["fallback", "refuse"];

    /// Parses a setting's value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "fallback" => Some(Self::Fallback),
            "refuse" => Some(Self::Refuse),
            _ => None,
        }
    }
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            default_fallbacks: Vec::new(),
            strategy: RoutingStrategy::SimpleShuffle,
            num_retries: 0,
            retry_after: Duration::ZERO,
            allowed_fails: 3,
            cooldown_time: Duration::from_secs(5),
            retry_policy: RetryPolicy::default(),
            max_fallbacks: 5,
            premium_budget_exceeded: PremiumBudgetExceeded::Fallback,
            copilot_premium_reserve: 0.0,
        }
    }
}
