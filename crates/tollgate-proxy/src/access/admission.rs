//! Admission: may this key use this model now? Model access per step of the plan, then budgets
//! (with a reservation for what the request may cost) and rate limits of the key, its user and
//! its team — all from memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tollgate_router::{Pattern, Route};
use tollgate_store::Limits;

use super::directory::{Directory, EntityState, KeyEntry, TeamEntry, UserEntry};
use crate::counters::{Counters, Denial, DenialKind, Limited, SharedHold};
use crate::error::ApiError;

/// What an admitted request holds until it ends (however it ends): its parallel-request slots
/// and the share of each budget reserved for it. Dropping it gives both back; the request's
/// real cost is charged before that, so the budget never forgets it in between.
#[derive(Debug, Default)]
pub struct Admitted {
    slots: Vec<Arc<EntityState>>,
    reserved: Vec<(Arc<EntityState>, f64)>,
    /// Premium units held of each premium budget for the attempt in flight.
    premium: Vec<(Arc<EntityState>, f64)>,
    shared: Option<SharedHold>,
}

impl Admitted {
    /// Counts the tokens the request used against the shared tpm limits it was admitted
    /// under (the in-process ones are counted by [`Directory::charge`]).
    pub fn charge_tokens(&self, tokens: u64) {
        if let Some(hold) = &self.shared {
            hold.charge_tokens(tokens);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        for s in &self.slots {
            s.in_flight.leave();
        }
        for (s, amount) in &self.reserved {
            s.spend.release(*amount);
        }
        self.release_premium();
    }
}

impl Admitted {
    fn release_premium(&mut self) {
        for (s, units) in self.premium.drain(..) {
            s.premium.release(units);
        }
    }
}

fn premium_denied(e: &Entity, used: f64, held: f64, max: f64, units: f64, model: &str) -> ApiError {
    let reset = e
        .premium_budget_reset_at()
        .map_or_else(String::new, |t| format!(" It resets at {}.", t.to_rfc3339()));
    let in_flight = if held > 0.0 {
        format!(" ({held} more held by requests in flight)")
    } else {
        String::new()
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!(
            "Premium request budget exceeded for {}: {used} of {max} premium requests \
             used{in_flight}, and `{model}` takes {units} a request.{reset}",
            e.name()
        ),
    )
    .with_code("premium_budget_exceeded")
}

/// One of the entities a request is checked against.
#[derive(Debug, Clone)]
enum Entity {
    Key(Arc<KeyEntry>),
    User(Arc<UserEntry>),
    Team(Arc<TeamEntry>),
}

impl Entity {
    /// `key sk-...a1b2`, `user alice`, `team blue`: how denials name it.
    fn name(&self) -> String {
        match self {
            Self::Key(k) => {
                format!("key {}", k.record.key_alias.as_deref().unwrap_or(&k.record.key_name))
            }
            Self::User(u) => format!("user {}", u.record.user_id),
            Self::Team(t) => {
                format!("team {}", t.record.team_alias.as_deref().unwrap_or(&t.record.team_id))
            }
        }
    }

    fn models(&self) -> &[String] {
        match self {
            Self::Key(k) => &k.record.models,
            Self::User(u) => &u.record.models,
            Self::Team(t) => &t.record.models,
        }
    }

    fn limits(&self) -> &Limits {
        match self {
            Self::Key(k) => &k.record.limits,
            Self::User(u) => &u.record.limits,
            Self::Team(t) => &t.record.limits,
        }
    }

    fn budget_reset_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Self::Key(k) => k.record.budget_reset_at,
            Self::User(u) => u.record.budget_reset_at,
            Self::Team(t) => t.record.budget_reset_at,
        }
    }

    fn premium_budget_reset_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Self::Key(k) => k.record.premium_budget_reset_at,
            Self::User(u) => u.record.premium_budget_reset_at,
            Self::Team(t) => t.record.premium_budget_reset_at,
        }
    }

    /// Its rate limits as the shared counters check them, if it has any.
    fn limited(&self) -> Option<Limited> {
        let l = self.limits();
        let positive = |v: Option<i64>| v.filter(|v| *v > 0).map_or(0, |v| v as u64);
        let (rpm, tpm, parallel) =
            (positive(l.rpm_limit), positive(l.tpm_limit), positive(l.max_parallel_requests));
        if rpm == 0 && tpm == 0 && parallel == 0 {
            return None;
        }
        let entity = match self {
            Self::Key(k) => format!("key:{}", k.record.token_hash),
            Self::User(u) => format!("user:{}", u.record.user_id),
            Self::Team(t) => format!("team:{}", t.record.team_id),
        };
        Some(Limited { entity, rpm, tpm, parallel })
    }

    fn state(&self) -> &Arc<EntityState> {
        match self {
            Self::Key(k) => &k.state,
            Self::User(u) => &u.state,
            Self::Team(t) => &t.state,
        }
    }
}

/// A virtual key with its user and team, as admission checks them.
#[derive(Debug, Clone)]
pub struct Access {
    entities: Vec<Entity>,
}

impl Access {
    /// The key and, when the directory knows them, its user and team.
    pub fn of(directory: &Directory, key: &Arc<KeyEntry>) -> Self {
        let mut entities = vec![Entity::Key(key.clone())];
        if let Some(u) = key.record.user_id.as_deref().and_then(|u| directory.user(u)) {
            entities.push(Entity::User(u));
        }
        if let Some(t) = key.record.team_id.as_deref().and_then(|t| directory.team(t)) {
            entities.push(Entity::Team(t));
        }
        Self { entities }
    }

    /// Whether the key, its user and its team may all use `route`.
    pub fn allows(&self, route: &Route) -> bool {
        self.entities.iter().all(|e| model_allowed(e.models(), route, route.name()))
    }

    /// `allows`, as the answer a refused caller gets: 403 naming who may not use the model.
    pub fn check_model(&self, route: &Route) -> Result<(), ApiError> {
        let requested = route.name();
        match self.entities.iter().find(|e| !model_allowed(e.models(), route, requested)) {
            None => Ok(()),
            Some(e) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "The {} may not use model `{requested}`. Allowed: {}.",
                    e.name(),
                    e.models().join(", ")
                ),
            )
            .with_code("model_not_allowed")
            .with_param("model")),
        }
    }

    /// Checks budgets and rate limits, and takes what the request needs: a slot under each
    /// parallel-request limit and `estimate` dollars of each budget. A budget admits a request
    /// while what is spent plus what requests in flight have reserved is below it, so a burst
    /// of concurrent requests can overrun it only by how far their estimates fall short. Rate
    /// limits are counted where `counters` says: in Redis while it answers, else here.
    pub async fn admit(&self, estimate: f64, counters: &Counters) -> Result<Admitted, ApiError> {
        let estimate = if estimate.is_finite() { estimate.max(0.0) } else { 0.0 };
        self.check_budgets()?;
        let mut admitted = Admitted::default();
        let (limited, whose): (Vec<Limited>, Vec<&Entity>) =
            self.entities.iter().filter_map(|e| Some((e.limited()?, e))).unzip();
        if !limited.is_empty() {
            let shared = match counters.shared() {
                Some(shared) => shared.admit(&limited).await,
                None => Err(()),
            };
            match shared {
                Ok(Ok(hold)) => admitted.shared = Some(hold),
                Ok(Err(denial)) => return Err(denied(whose[denial.index], &denial)),
                // No Redis, or it did not answer: counted in this process.
                Err(()) => self.admit_locally(&mut admitted)?,
            }
        }
        if estimate > 0.0 {
            for e in self.entities.iter().filter(|e| e.limits().max_budget.is_some()) {
                e.state().spend.reserve(estimate);
                admitted.reserved.push((e.state().clone(), estimate));
            }
        }
        Ok(admitted)
    }

    /// Holds `units` premium requests of every premium budget of the key, its user and its
    /// team for the attempt about to be sent to `model`, in place of what an earlier attempt
    /// of the request held; or, when the units would take one past its limit (what is used
    /// plus what attempts in flight hold), holds nothing and answers the refusal naming it.
    /// An attempt on an included model (0 units) always fits. The request's real units are
    /// charged when it ends, before the hold goes.
    pub fn hold_premium(
        &self,
        admitted: &mut Admitted,
        units: f64,
        model: &str,
    ) -> Result<(), ApiError> {
        admitted.release_premium();
        if units.is_nan() || units <= 0.0 {
            return Ok(());
        }
        for e in &self.entities {
            let Some(max) = e.limits().max_premium_requests else { continue };
            if let Err((used, held)) = e.state().premium.try_reserve(units, max) {
                admitted.release_premium();
                return Err(premium_denied(e, used, held, max, units, model));
            }
            admitted.premium.push((e.state().clone(), units));
        }
        Ok(())
    }

    fn check_budgets(&self) -> Result<(), ApiError> {
        for e in &self.entities {
            if let Some(max) = e.limits().max_budget {
                let (spent, reserved) = e.state().spend.used_and_reserved();
                if spent + reserved >= max {
                    let reset = e
                        .budget_reset_at()
                        .map_or_else(String::new, |t| format!(" It resets at {}.", t.to_rfc3339()));
                    let in_flight = if spent < max {
                        format!(" (${reserved:.6} of it held by requests in flight)")
                    } else {
                        String::new()
                    };
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "Budget exceeded for {}: spent ${spent:.6} of ${max:.6}{in_flight}.{reset}",
                            e.name()
                        ),
                    )
                    .with_code("budget_exceeded"));
                }
            }
        }
        Ok(())
    }

    /// The rate limits counted in this process: tokens, then slots in flight, then requests
    /// per minute. Slots taken before a later limit refuses go back with `admitted`.
    fn admit_locally(&self, admitted: &mut Admitted) -> Result<(), ApiError> {
        let now = Instant::now();
        for e in &self.entities {
            if let Some(tpm) = e.limits().tpm_limit.filter(|l| *l > 0) {
                let (used, wait) = e.state().tokens.used(now);
                if used >= tpm as u64 {
                    return Err(tokens_denied(e, used, tpm as u64, wait));
                }
            }
        }
        for e in &self.entities {
            if let Some(max) = e.limits().max_parallel_requests.filter(|l| *l > 0) {
                if !e.state().in_flight.try_enter(max) {
                    return Err(parallel_denied(e, max as u64));
                }
                admitted.slots.push(e.state().clone());
            }
        }
        for e in &self.entities {
            if let Some(rate) = e.state().rpm()
                && let Err(wait) = rate.try_acquire(now)
            {
                return Err(requests_denied(e, rate.limit(), wait));
            }
        }
        Ok(())
    }
}

fn denied(e: &Entity, denial: &Denial) -> ApiError {
    match denial.kind {
        DenialKind::Tokens => {
            let tpm = e.limits().tpm_limit.unwrap_or_default().max(0) as u64;
            tokens_denied(e, denial.used, tpm, denial.wait)
        }
        DenialKind::Parallel => {
            parallel_denied(e, e.limits().max_parallel_requests.unwrap_or_default().max(0) as u64)
        }
        DenialKind::Requests => requests_denied(e, denial.used, denial.wait),
    }
}

fn tokens_denied(e: &Entity, used: u64, tpm: u64, wait: Duration) -> ApiError {
    rate_limited(
        format!("Token rate limit reached for {}: {used} of {tpm} tokens per minute.", e.name()),
        wait,
    )
}

fn parallel_denied(e: &Entity, max: u64) -> ApiError {
    rate_limited(
        format!("Parallel request limit reached for {}: {max} in flight.", e.name()),
        Duration::from_secs(1),
    )
    .with_code("parallel_limit_exceeded")
}

fn requests_denied(e: &Entity, limit: u64, wait: Duration) -> ApiError {
    rate_limited(
        format!("Request rate limit reached for {}: {limit} requests per minute.", e.name()),
        wait,
    )
}

fn rate_limited(message: String, wait: Duration) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
        .with_code("rate_limit_exceeded")
        .with_retry_after(wait.as_secs_f64().ceil().max(1.0) as u64)
}

/// Whether an allow-list admits the request: an empty list allows everything; entries are
/// model names, glob patterns, access groups of the matched deployments, or
/// `all-proxy-models`.
pub fn model_allowed(allowed: &[String], route: &Route, requested: &str) -> bool {
    if allowed.is_empty() {
        return true;
    }
    allowed.iter().any(|a| {
        a == "all-proxy-models"
            || a == requested
            || *a == route.group.name
            || (a.contains('*') && Pattern::new(a).matches(requested))
            || route.group.deployments.iter().any(|d| d.entry.access_groups.iter().any(|g| g == a))
    })
}
