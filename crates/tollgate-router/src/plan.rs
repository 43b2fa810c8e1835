//! Fallback plans: for a requested model, the ordered model groups to try, and within each
//! the deployments in the order the routing strategy prefers, skipping those cooling down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tollgate_config::{Config, FallbackRule, ModelEntry, RouterSettings, RoutingStrategy};

use crate::failure::{FailureKind, MAX_RETRY_WAIT, backoff};
use crate::{Catalog, Deployment, Pattern, Route};

/// The catalog plus the router settings: everything needed to plan a request.
#[derive(Debug)]
pub struct Router {
    catalog: Catalog,
    settings: RouterSettings,
}

impl Router {
    /// Builds the router from a validated config.
    pub fn from_config(config: &Config) -> Self {
        Self { catalog: Catalog::from_config(config), settings: config.router.clone() }
    }

    /// A router for `config`'s models and settings plus `stored` models, carrying over the
    /// health of every deployment `previous` has unchanged (see [`Catalog::build`]).
    pub fn build(config: &Config, stored: Vec<ModelEntry>, previous: Option<&Router>) -> Self {
        Self {
            catalog: Catalog::build(config, stored, previous.map(Router::catalog)),
            settings: config.router.clone(),
        }
    }

    /// Model groups and resolution.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Router settings.
    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    /// The fallback chain of one model group, by precedence: a chain written on the group's
    /// own entries, then the rule naming the model exactly, then the most specific matching
    /// pattern (earlier rules win ties), then `default_fallbacks`. This is one hop; see
    /// [`Router::cascade`] for the whole order a request follows.
    pub fn chain_for(&self, route: &Route, requested: &str) -> Vec<String> {
        let mut own = Vec::new();
        for d in &route.group.deployments {
            for name in &d.entry.fallbacks {
                if !own.contains(name) {
                    own.push(name.clone());
                }
            }
        }
        if !own.is_empty() {
            return own;
        }
        if let Some(rule) = best_rule(&self.settings.fallbacks, requested, &route.group.name) {
            return rule.chain.clone();
        }
        self.settings.default_fallbacks.clone()
    }

    /// The context-window fallback chain, when a prompt is too long for `route`.
    pub fn context_window_chain(&self, route: &Route, requested: &str) -> Vec<String> {
        best_rule(&self.settings.context_window_fallbacks, requested, &route.group.name)
            .map(|r| r.chain.clone())
            .unwrap_or_default()
    }

    /// Every route a request for `requested` may try, in order, as LiteLLM recurses: the
    /// model's own route, then each fallback followed at once by that fallback's own
    /// fallbacks, depth first, up to `max_fallbacks` hops from the requested model. A route
    /// already in the cascade is not added again, so cycles end; names that resolve nowhere
    /// are skipped (and reported by `config check`). `None` if the model resolves nowhere.
    pub fn cascade(&self, requested: &str) -> Option<Vec<Route>> {
        let primary = self.catalog.resolve(requested)?;
        let mut routes = vec![primary.clone()];
        self.follow(&primary, 0, &mut routes);
        Some(routes)
    }

    fn follow(&self, route: &Route, depth: u32, routes: &mut Vec<Route>) {
        if depth >= self.settings.max_fallbacks {
            return;
        }
        for name in self.chain_for(route, route.name()) {
            let Some(next) = self.catalog.resolve(&name) else { continue };
            if routes.iter().any(|r| r.same_target(&next)) {
                continue;
            }
            routes.push(next.clone());
            self.follow(&next, depth + 1, routes);
        }
    }

    /// The plan for a requested model: its [`Router::cascade`], walked attempt by attempt.
    /// `None` if the model resolves nowhere.
    pub fn plan(&self, requested: &str) -> Option<Plan<'_>> {
        let routes = self.cascade(requested)?;
        Some(Plan {
            router: self,
            requested: requested.to_owned(),
            routes,
            route: 0,
            tries_in_route: 0,
            candidates: None,
            next: 0,
            allow: None,
            passed_over: Vec::new(),
        })
    }

    fn extend(&self, routes: &mut Vec<Route>, chain: &[String]) {
        for name in chain {
            if let Some(r) = self.catalog.resolve(name)
                && !routes.iter().any(|x| x.same_target(&r))
            {
                routes.push(r);
            }
        }
    }

    /// Deployments of `route` in the order the strategy prefers, leaving out those cooling
    /// down or at their `rpm`/`tpm`.
    pub fn candidates(&self, route: &Route, now: Instant) -> Vec<Arc<Deployment>> {
        let mut ready: Vec<Arc<Deployment>> = route
            .group
            .deployments
            .iter()
            .filter(|d| d.health.cooling_until(now).is_none())
            .filter(|d| d.health.has_capacity(now, d.entry.rpm, d.entry.tpm))
            .cloned()
            .collect();
        order(&mut ready, self.settings.strategy, now, &mut rand::rng());
        ready
    }
}

/// The rule for a request: one naming the requested model (or its model group, when that is a
/// plain name) exactly, else the most specific pattern matching either.
fn best_rule<'a>(
    rules: &'a [FallbackRule],
    requested: &str,
    group: &str,
) -> Option<&'a FallbackRule> {
    let names: &[&str] = if group.contains('*') { &[requested] } else { &[requested, group] };
    if let Some(exact) = rules.iter().find(|r| names.contains(&r.pattern.as_str())) {
        return Some(exact);
    }
    let mut best: Option<(&FallbackRule, usize)> = None;
    for r in rules.iter().filter(|r| r.pattern.contains('*')) {
        let p = Pattern::new(&r.pattern);
        if names.iter().any(|n| p.matches(n)) && best.is_none_or(|(_, s)| p.specificity() > s) {
            best = Some((r, p.specificity()));
        }
    }
    best.map(|(r, _)| r)
}

fn order(ds: &mut [Arc<Deployment>], strategy: RoutingStrategy, now: Instant, rng: &mut impl Rng) {
    match strategy {
        RoutingStrategy::SimpleShuffle => {
            // Weighted sampling without replacement: each position drawn by weight from what
            // is left, so the first choice follows the weights exactly.
            for i in 0..ds.len() {
                let total: f64 = ds[i..].iter().map(|d| d.entry.weight).sum();
                let mut x = rng.random::<f64>() * total;
                let mut pick = ds.len() - 1;
                for (j, d) in ds.iter().enumerate().skip(i) {
                    if x < d.entry.weight {
                        pick = j;
                        break;
                    }
                    x -= d.entry.weight;
                }
                ds.swap(i, pick);
            }
        }
        RoutingStrategy::LeastBusy => ds.sort_by_key(|d| d.health.in_flight()),
        // Unmeasured deployments sort first so each gets measured.
        RoutingStrategy::LatencyBased => ds.sort_by_key(|d| d.health.latency().unwrap_or_default()),
        RoutingStrategy::UsageBased => ds.sort_by_key(|d| d.health.tokens_last_minute(now)),
    }
}

/// One attempt the plan proposes.
#[derive(Debug, Clone)]
pub struct Step {
    /// The route (model group and pattern captures).
    pub route: Route,
    /// The deployment to send to.
    pub deployment: Arc<Deployment>,
    /// How long to wait before sending (retries only).
    pub wait: Duration,
    /// Whether this moves to another model group than the previous attempt.
    pub is_fallback: bool,
}

/// Which routes of a plan the caller may use.
type Allow<'a> = Box<dyn Fn(&Route) -> bool + Send + Sync + 'a>;

/// Walks a request's plan attempt by attempt.
pub struct Plan<'a> {
    router: &'a Router,
    requested: String,
    routes: Vec<Route>,
    route: usize,
    tries_in_route: u32,
    candidates: Option<Vec<Arc<Deployment>>>,
    next: usize,
    allow: Option<Allow<'a>>,
    /// Routes the walk skipped because the caller may not use them, not yet collected.
    passed_over: Vec<Route>,
}

impl std::fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("requested", &self.requested)
            .field("routes", &self.routes.iter().map(Route::name).collect::<Vec<_>>())
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl<'a> Plan<'a> {
    /// The routes, primary first.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Restricts the walk to routes `allow` accepts; the others are passed over (see
    /// [`Plan::passed_over`]). Applies to routes added later too (context-window fallbacks).
    pub fn restrict(&mut self, allow: impl Fn(&Route) -> bool + Send + Sync + 'a) {
        self.allow = Some(Box::new(allow));
    }

    /// Routes passed over since the last call because the caller may not use them, in the
    /// order the walk reached them.
    pub fn passed_over(&mut self) -> Vec<Route> {
        std::mem::take(&mut self.passed_over)
    }

    fn allowed(&self, index: usize) -> bool {
        match (&self.allow, self.routes.get(index)) {
            (Some(allow), Some(route)) => allow(route),
            (None, Some(_)) => true,
            (_, None) => false,
        }
    }

    /// The first attempt. When every deployment the caller may use is cooling down, the one
    /// that recovers soonest is tried rather than failing at once.
    pub fn first(&mut self, now: Instant) -> Option<Step> {
        while self.route < self.routes.len() {
            if let Some(step) = self.take(now, Duration::ZERO, self.route > 0) {
                return Some(step);
            }
            self.advance();
        }
        let (route, deployment) = self
            .routes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.allowed(*i))
            .flat_map(|(_, r)| r.group.deployments.iter().map(move |d| (r, d)))
            .min_by_key(|(_, d)| d.health.cooling_until(now).unwrap_or(now))?;
        let route_index = self.routes.iter().position(|r| std::ptr::eq(r, route)).unwrap_or(0);
        self.route = route_index;
        self.tries_in_route = 1;
        self.candidates = Some(Vec::new());
        Some(Step {
            route: route.clone(),
            deployment: deployment.clone(),
            wait: Duration::ZERO,
            is_fallback: false,
        })
    }

    /// The attempt after one that failed with `kind` (and the upstream's `retry-after`):
    /// a retry in the same group while retries are left, else the next group. `None` when
    /// the failure must go back to the client or nothing is left to try.
    pub fn after_failure(
        &mut self,
        kind: FailureKind,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Option<Step> {
        if kind == FailureKind::ContextWindow {
            let current = self.routes.get(self.route)?.clone();
            let chain = self.router.context_window_chain(&current, current.name());
            let before = self.routes.len();
            let mut tail = self.routes.split_off(self.route + 1);
            self.router.extend(&mut self.routes, &chain);
            let added = self.routes.len() > before - tail.len();
            self.routes.append(&mut tail);
            if !added {
                return None;
            }
        } else if !kind.moves_on() {
            return None;
        }
        let retries = kind.retries(self.router.settings());
        let waitable = retry_after.is_none_or(|r| r <= MAX_RETRY_WAIT);
        if kind != FailureKind::ContextWindow && self.tries_in_route <= retries && waitable {
            let wait = backoff(self.tries_in_route, retry_after, self.router.settings());
            if let Some(step) = self.take(now, wait, false) {
                return Some(step);
            }
        }
        self.next_group(now)
    }

    /// The attempt after one passed over without sending (one the caller's budgets cannot
    /// afford): the group's next deployment not yet tried, else the next group's first. Not
    /// a retry: nothing failed.
    pub fn pass_over(&mut self, now: Instant) -> Option<Step> {
        let untried = self.candidates.as_ref().is_some_and(|c| self.next < c.len());
        if untried && let Some(step) = self.take(now, Duration::ZERO, false) {
            return Some(step);
        }
        self.next_group(now)
    }

    /// The first attempt of the next model group the walk reaches, leaving the current one:
    /// for a step the caller's budgets cannot afford, as for a group whose retries ran out.
    pub fn next_group(&mut self, now: Instant) -> Option<Step> {
        loop {
            self.advance();
            if self.route >= self.routes.len() {
                return None;
            }
            if let Some(step) = self.take(now, Duration::ZERO, true) {
                return Some(step);
            }
        }
    }

    fn advance(&mut self) {
        self.route += 1;
        self.tries_in_route = 0;
        self.candidates = None;
        self.next = 0;
    }

    fn take(&mut self, now: Instant, wait: Duration, is_fallback: bool) -> Option<Step> {
        let route = self.routes.get(self.route)?.clone();
        // A route is entered with no tries yet; every caller moves on when this says no.
        if self.tries_in_route == 0 && !self.allowed(self.route) {
            self.passed_over.push(route);
            return None;
        }
        let router = self.router;
        let candidates = self.candidates.get_or_insert_with(|| router.candidates(&route, now));
        if candidates.is_empty() {
            return None;
        }
        // Retries go round the group's deployments, so a second try lands elsewhere when
        // there is anywhere else.
        let deployment = candidates[self.next % candidates.len()].clone();
        self.next += 1;
        self.tries_in_route += 1;
        Some(Step { route, deployment, wait, is_fallback })
    }
}
