//! Admission: may this key use this model now? Model access, budgets, then rate limits of the
//! key, its user and its team — all from memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use tollgate_router::{Pattern, Route};
use tollgate_store::Limits;

use super::directory::{Directory, EntityState, KeyEntry};
use crate::error::ApiError;

/// Slots held by an admitted request; released when it ends (however it ends).
#[derive(Debug, Default)]
pub struct Admitted {
    slots: Vec<Arc<EntityState>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        for s in &self.slots {
            s.in_flight.leave();
        }
    }
}

/// One of the entities a request is checked against.
struct Subject<'a> {
    /// `key sk-...a1b2`, `user alice`, `team blue`: how denials name it.
    name: String,
    models: &'a [String],
    limits: &'a Limits,
    budget_reset_at: Option<chrono::DateTime<chrono::Utc>>,
    state: Arc<EntityState>,
}

/// Checks `key` (and its user and team) for `route`.
pub fn admit(
    directory: &Directory,
    key: &KeyEntry,
    route: &Route,
    requested: &str,
) -> Result<Admitted, ApiError> {
    let user = key.record.user_id.as_deref().and_then(|u| directory.user(u));
    let team = key.record.team_id.as_deref().and_then(|t| directory.team(t));
    let mut subjects = vec![Subject {
        name: format!("key {}", key.record.key_alias.as_deref().unwrap_or(&key.record.key_name)),
        models: &key.record.models,
        limits: &key.record.limits,
        budget_reset_at: key.record.budget_reset_at,
        state: key.state.clone(),
    }];
    if let Some(u) = &user {
        subjects.push(Subject {
            name: format!("user {}", u.record.user_id),
            models: &u.record.models,
            limits: &u.record.limits,
            budget_reset_at: u.record.budget_reset_at,
            state: u.state.clone(),
        });
    }
    if let Some(t) = &team {
        subjects.push(Subject {
            name: format!("team {}", t.record.team_alias.as_deref().unwrap_or(&t.record.team_id)),
            models: &t.record.models,
            limits: &t.record.limits,
            budget_reset_at: t.record.budget_reset_at,
            state: t.state.clone(),
        });
    }

    for s in &subjects {
        if !model_allowed(s.models, route, requested) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "The {} may not use model `{requested}`. Allowed: {}.",
                    s.name,
                    s.models.join(", ")
                ),
            )
            .with_code("model_not_allowed")
            .with_param("model"));
        }
    }
    for s in &subjects {
        if let Some(max) = s.limits.max_budget {
            let spent = s.state.spend();
            if spent >= max {
                let reset = s
                    .budget_reset_at
                    .map_or_else(String::new, |t| format!(" It resets at {}.", t.to_rfc3339()));
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Budget exceeded for {}: spent ${spent:.6} of ${max:.6}.{reset}",
                        s.name
                    ),
                )
                .with_code("budget_exceeded"));
            }
        }
    }
    let now = Instant::now();
    for s in &subjects {
        if let Some(tpm) = s.limits.tpm_limit.filter(|l| *l > 0) {
            let (used, wait) = s.state.tokens.used(now);
            if used >= tpm as u64 {
                return Err(rate_limited(
                    format!(
                        "Token rate limit reached for {}: {used} of {tpm} tokens per minute.",
                        s.name
                    ),
                    wait,
                ));
            }
        }
    }
    let mut admitted = Admitted::default();
    for s in &subjects {
        if let Some(max) = s.limits.max_parallel_requests.filter(|l| *l > 0) {
            if !s.state.in_flight.try_enter(max) {
                return Err(rate_limited(
                    format!("Parallel request limit reached for {}: {max} in flight.", s.name),
                    Duration::from_secs(1),
                )
                .with_code("parallel_limit_exceeded"));
            }
            admitted.slots.push(s.state.clone());
        }
    }
    for s in &subjects {
        if let Some(rate) = s.state.rpm()
            && let Err(wait) = rate.try_acquire(now)
        {
            return Err(rate_limited(
                format!(
                    "Request rate limit reached for {}: {} requests per minute.",
                    s.name,
                    rate.limit()
                ),
                wait,
            ));
        }
    }
    Ok(admitted)
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
