//! Prometheus metrics: the one process-wide recorder, every metric described at start-up, and
//! labels of bounded cardinality (model group, deployment, status class — never a key or a
//! raw path).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use metrics::{
    Counter, Histogram, Label, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests proxied to an upstream.
pub const REQUESTS: &str = "tollgate_requests_total";
/// Whole-request latency.
pub const REQUEST_DURATION: &str = "tollgate_request_duration_seconds";
/// Time until the first streamed event reached the client.
pub const TIME_TO_FIRST_TOKEN: &str = "tollgate_time_to_first_token_seconds";
/// Tokens by kind.
pub const TOKENS: &str = "tollgate_tokens_total";
/// Upstream failures by reason.
pub const UPSTREAM_ERRORS: &str = "tollgate_upstream_errors_total";
/// Every HTTP request the proxy answered, by matched route.
pub const HTTP_REQUESTS: &str = "tollgate_http_requests_total";
/// Build information.
pub const BUILD_INFO: &str = "tollgate_build_info";
/// Moves from one model group to the next in a fallback plan.
pub const FALLBACKS: &str = "tollgate_fallbacks_total";
/// Retries within a model group.
pub const RETRIES: &str = "tollgate_retries_total";
/// 1 while a deployment is cooling down.
pub const COOLDOWN: &str = "tollgate_deployment_cooldown";
/// Copilot premium requests left this period, per linked account.
pub const COPILOT_PREMIUM_REMAINING: &str = "tollgate_copilot_premium_remaining";
/// Copilot premium requests per period, per linked account.
pub const COPILOT_PREMIUM_ENTITLEMENT: &str = "tollgate_copilot_premium_entitlement";
/// Copilot premium request units used, by model group.
pub const COPILOT_PREMIUM_UNITS: &str = "tollgate_copilot_premium_units_total";
/// Requests refused before any upstream was asked, by API and reason.
pub const REFUSALS: &str = "tollgate_refusals_total";
/// 1 while rate limits and cooldowns are shared through Redis, 0 while this process counts
/// its own because Redis does not answer (absent without Redis).
pub const REDIS_UP: &str = "tollgate_redis_up";
/// Calls to Redis that failed or timed out.
pub const REDIS_ERRORS: &str = "tollgate_redis_errors_total";

/// MCP tool calls through `/mcp`, by server, tool and outcome.
pub const MCP_TOOL_CALLS: &str = "tollgate_mcp_tool_calls_total";
/// How long MCP tool calls took, by server and tool.
pub const MCP_TOOL_CALL_DURATION: &str = "tollgate_mcp_tool_call_duration_seconds";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process) and describes every metric. Returns the handle
/// that renders `/metrics`.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let latency_buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                60.0, 120.0, 300.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &latency_buckets);
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                // Only fails for empty bucket lists; fall back to summaries rather than fail.
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            describe();
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(
        REQUESTS,
        "Requests proxied to an upstream, by API, model group, deployment and status class."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Proxied request latency until the last byte."
    );
    describe_histogram!(
        TIME_TO_FIRST_TOKEN,
        Unit::Seconds,
        "Time until the first streamed event reached the client."
    );
    describe_counter!(
        TOKENS,
        "Tokens reported by upstreams, by kind (prompt, completion, cached)."
    );
    describe_counter!(
        UPSTREAM_ERRORS,
        "Upstream failures by reason (connect, timeout, rate_limited, status_4xx, status_5xx, io, stream)."
    );
    describe_counter!(
        HTTP_REQUESTS,
        "Every HTTP request answered, by matched route, method and status class."
    );
    describe_gauge!(BUILD_INFO, "Always 1; the version label says which tollgate is running.");
    describe_counter!(
        FALLBACKS,
        "Moves to the next model group of a fallback plan, by from/to group and reason."
    );
    describe_counter!(RETRIES, "Retries within a model group, by group and reason.");
    describe_gauge!(COOLDOWN, "1 while a deployment is skipped after failures, else 0.");
    describe_gauge!(
        COPILOT_PREMIUM_REMAINING,
        "Copilot premium requests left this period, per linked account."
    );
    describe_gauge!(
        COPILOT_PREMIUM_ENTITLEMENT,
        "Copilot premium requests per period, per linked account."
    );
    describe_gauge!(
        COPILOT_PREMIUM_UNITS,
        "Running total of Copilot premium request units used (the model's multiplier per request), by model group."
    );
    describe_counter!(
        REFUSALS,
        "Requests refused by authentication or admission (blocked or expired key, model not allowed, budget, rate limits), by API and reason."
    );
    describe_gauge!(
        REDIS_UP,
        "1 while rate limits and cooldowns are shared through Redis; 0 while Redis does not answer and this process counts its own."
    );
    describe_counter!(REDIS_ERRORS, "Calls to Redis that failed or timed out.");
    describe_counter!(
        MCP_TOOL_CALLS,
        "MCP tool calls through /mcp, by server, tool and outcome (success, tool_failed, upstream_failed, cancelled, client_disconnected)."
    );
    describe_histogram!(
        MCP_TOOL_CALL_DURATION,
        Unit::Seconds,
        "How long MCP tool calls took, by server and tool."
    );
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Histograms are drained into their summaries periodically so memory stays flat.
fn spawn_upkeep(handle: PrometheusHandle) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

/// `2xx`, `4xx`, `5xx`, or `disconnected` for a client that went away.
pub fn status_class(status: u16) -> &'static str {
    STATUS_CLASSES[status_index(status)]
}

/// Labels of one proxied request. The names are shared, so labelling a metric copies no text;
/// the metric handles for them are looked up once per label set and kept (see [`Handles`]).
#[derive(Debug, Clone)]
pub struct RequestLabels {
    /// `chat_completions`, `embeddings`, ...
    pub api: &'static str,
    /// The model group's name (a pattern for wildcard routes).
    pub model_group: Arc<str>,
    /// The deployment's configured model.
    pub deployment: Arc<str>,
    /// This label set's handles, found on first use.
    handles: OnceLock<Arc<Handles>>,
}

/// The status classes [`status_class`] gives, in the order [`Handles`] keeps them.
const STATUS_CLASSES: [&str; 6] = ["disconnected", "1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_index(status: u16) -> usize {
    match status {
        0 => 0,
        100..=199 => 1,
        200..=299 => 2,
        300..=399 => 3,
        400..=499 => 4,
        _ => 5,
    }
}

/// The token kinds of [`TOKENS`], in the order [`Handles`] keeps them.
const TOKEN_KINDS: [&str; 3] = ["prompt", "completion", "cached"];

/// The registered metrics of one (api, model group, deployment). Resolving a metric through
/// the recorder builds its key (a label vector) and looks it up in a locked map; a handle is
/// an atomic to add to. Each one is registered when first recorded, so a series appears in
/// `/metrics` only once something was counted in it, as before.
#[derive(Debug, Default)]
struct Handles {
    requests: [OnceLock<(Counter, Histogram)>; 6],
    ttft: OnceLock<Histogram>,
    tokens: [OnceLock<Counter>; 3],
}

type HandleKey = (&'static str, Arc<str>, Arc<str>);

/// Every label set's handles. Bounded like the labels themselves: one entry per API, model
/// group and deployment that served a request.
fn handle_cache() -> &'static RwLock<HashMap<HandleKey, Arc<Handles>>> {
    static CACHE: OnceLock<RwLock<HashMap<HandleKey, Arc<Handles>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

impl RequestLabels {
    /// The labels of a request to `deployment` of `model_group` through `api`.
    pub fn new(api: &'static str, model_group: Arc<str>, deployment: Arc<str>) -> Self {
        Self { api, model_group, deployment, handles: OnceLock::new() }
    }

    /// The handles, once the recorder is installed (a handle taken before that would
    /// record nowhere, forever).
    fn handles(&self) -> Option<&Handles> {
        if let Some(h) = self.handles.get() {
            return Some(h);
        }
        HANDLE.get()?;
        let key = (self.api, Arc::clone(&self.model_group), Arc::clone(&self.deployment));
        let cache = handle_cache();
        let found = cache.read().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let handles = match found {
            Some(h) => h,
            None => Arc::clone(
                cache.write().unwrap_or_else(PoisonError::into_inner).entry(key).or_default(),
            ),
        };
        Some(self.handles.get_or_init(|| handles))
    }

    /// API, model group and deployment.
    fn names(&self) -> [Label; 3] {
        [
            Label::new("api", self.api),
            Label::new("model_group", self.model_group.clone()),
            Label::new("deployment", self.deployment.clone()),
        ]
    }

    /// API, model group, deployment and one more.
    fn names_and(&self, name: &'static str, value: &'static str) -> [Label; 4] {
        let [api, group, deployment] = self.names();
        [api, group, deployment, Label::new(name, value)]
    }

    /// Model group, deployment and one more.
    fn deployment_and(&self, name: &'static str, value: &'static str) -> [Label; 3] {
        [
            Label::new("model_group", self.model_group.clone()),
            Label::new("deployment", self.deployment.clone()),
            Label::new(name, value),
        ]
    }

    fn register_request(&self, class: usize) -> (Counter, Histogram) {
        let labels = self.names_and("status_class", STATUS_CLASSES[class]);
        (counter!(REQUESTS, labels.iter()), histogram!(REQUEST_DURATION, labels.iter()))
    }

    /// Records a finished request.
    pub fn record_request(&self, status: u16, duration: Duration) {
        let class = status_index(status);
        let record = |(count, latency): &(Counter, Histogram)| {
            count.increment(1);
            latency.record(duration.as_secs_f64());
        };
        match self.handles() {
            Some(h) => record(h.requests[class].get_or_init(|| self.register_request(class))),
            None => record(&self.register_request(class)),
        }
    }

    /// Records the time to the first streamed event.
    pub fn record_ttft(&self, ttft: Duration) {
        let register = || histogram!(TIME_TO_FIRST_TOKEN, self.names().iter());
        match self.handles() {
            Some(h) => h.ttft.get_or_init(register).record(ttft.as_secs_f64()),
            None => register().record(ttft.as_secs_f64()),
        }
    }

    /// Records token counts.
    pub fn record_tokens(&self, prompt: u64, completion: u64, cached: u64) {
        let handles = self.handles();
        for (i, n) in [prompt, completion, cached].into_iter().enumerate() {
            if n == 0 {
                continue;
            }
            let register = || counter!(TOKENS, self.deployment_and("kind", TOKEN_KINDS[i]).iter());
            match handles {
                Some(h) => h.tokens[i].get_or_init(register).increment(n),
                None => register().increment(n),
            }
        }
    }

    /// Records an upstream failure.
    pub fn record_upstream_error(&self, reason: &'static str) {
        counter!(UPSTREAM_ERRORS, self.deployment_and("reason", reason).iter()).increment(1);
    }
}

/// The `HTTP_REQUESTS` counters of one route, by method and status class.
#[derive(Debug, Default)]
struct RouteCounters([[OnceLock<Counter>; 6]; METHODS.len()]);

/// The method labels [`method_index`] gives, in the order [`RouteCounters`] keeps them.
const METHODS: [&str; 8] = ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "other"];

/// Records one answered HTTP request.
pub fn record_http(route: &str, method: &http::Method, status: u16) {
    let (m, class) = (method_index(method), status_index(status));
    let register = || {
        let labels = [
            Label::new("route", interned(route)),
            Label::new("method", METHODS[m]),
            Label::new("status_class", STATUS_CLASSES[class]),
        ];
        counter!(HTTP_REQUESTS, labels.iter())
    };
    if HANDLE.get().is_none() {
        register().increment(1);
        return;
    }
    static ROUTES: OnceLock<RwLock<HashMap<Box<str>, Arc<RouteCounters>>>> = OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    let found = routes.read().unwrap_or_else(PoisonError::into_inner).get(route).cloned();
    let counters = match found {
        Some(c) => c,
        None => Arc::clone(
            routes.write().unwrap_or_else(PoisonError::into_inner).entry(route.into()).or_default(),
        ),
    };
    counters.0[m][class].get_or_init(register).increment(1);
}

/// One shared copy of each label value from a small fixed set (the proxy's routes, error codes).
fn interned(route: &str) -> Arc<str> {
    static ROUTES: OnceLock<std::sync::RwLock<std::collections::HashSet<Arc<str>>>> =
        OnceLock::new();
    let routes = ROUTES.get_or_init(Default::default);
    if let Some(r) = routes.read().unwrap_or_else(|e| e.into_inner()).get(route) {
        return r.clone();
    }
    let mut routes = routes.write().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = routes.get(route) {
        return r.clone();
    }
    let shared: Arc<str> = Arc::from(route);
    routes.insert(shared.clone());
    shared
}

fn method_index(method: &http::Method) -> usize {
    match *method {
        http::Method::GET => 0,
        http::Method::POST => 1,
        http::Method::HEAD => 2,
        http::Method::PUT => 3,
        http::Method::PATCH => 4,
        http::Method::DELETE => 5,
        http::Method::OPTIONS => 6,
        _ => 7,
    }
}

/// Records a refused request; `reason` is the error's code, one of a fixed set.
pub fn record_refusal(api: &'static str, reason: &str) {
    let labels = [Label::new("api", api), Label::new("reason", interned(reason))];
    counter!(REFUSALS, labels.iter()).increment(1);
}

/// Adds a request's Copilot premium units to its model group's running total. Multipliers can
/// be fractional (0.33), so the total is a float gauge.
pub fn record_premium_units(labels: &RequestLabels, units: f64) {
    gauge!(COPILOT_PREMIUM_UNITS, "model_group" => labels.model_group.clone()).increment(units);
}

/// Whether Redis answers (see [`REDIS_UP`]).
pub fn set_redis_up(up: bool) {
    gauge!(REDIS_UP).set(if up { 1.0 } else { 0.0 });
}

/// Counts a failed or timed-out call to Redis.
pub fn record_redis_error() {
    counter!(REDIS_ERRORS).increment(1);
}

/// Records a move from one model group to the next.
pub fn record_fallback(from: &str, to: &str, reason: &'static str) {
    let labels = [
        ("from_group", from.to_owned()),
        ("to_group", to.to_owned()),
        ("reason", reason.to_owned()),
    ];
    counter!(FALLBACKS, &labels).increment(1);
}

/// Records a retry within a model group.
pub fn record_retry(group: &str, reason: &'static str) {
    let labels = [("model_group", group.to_owned()), ("reason", reason.to_owned())];
    counter!(RETRIES, &labels).increment(1);
}

/// Sets the cooldown gauge of every deployment.
pub fn record_cooldowns(router: &tollgate_router::Router) {
    let now = std::time::Instant::now();
    for d in router.catalog().deployments() {
        let cooling = d.health.cooling_until(now).is_some();
        gauge!(COOLDOWN, "deployment" => d.label().to_owned()).set(if cooling { 1.0 } else { 0.0 });
    }
}
