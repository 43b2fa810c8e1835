//! What every management operation checks its input with, and how store failures become
//! answers: shared by the operations and the JSON routes that call them.

use axum::http::StatusCode;
use serde::Deserialize;
use tollgate_store::{Limits, StoreError};

use crate::error::ApiError;

/// Store failures as answers: 404, 409, 400; database trouble is logged and becomes a 503.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, e.to_string()).with_code("not_found")
        }
        StoreError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m).with_code("conflict"),
        StoreError::Invalid(m) => {
            ApiError::new(StatusCode::BAD_REQUEST, m).with_code("invalid_value")
        }
        // The message says what to do and never holds key material.
        StoreError::Crypto(m) => {
            tracing::error!(error = %m, "a stored credential cannot be sealed or opened");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, m).with_code("credential_unreadable")
        }
        other => {
            tracing::error!(error = %other, "store call failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is not available right now.",
            )
            .with_code("database_unavailable")
        }
    }
}

/// The limit fields every entity shares, as written in request bodies and forms.
#[derive(Debug, Default, Deserialize)]
pub struct LimitsBody {
    /// Budget in USD.
    #[serde(default)]
    pub max_budget: Option<f64>,
    /// When the budget resets: `30s`, `30m`, `24h`, `30d`.
    #[serde(default)]
    pub budget_duration: Option<String>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    #[serde(default)]
    pub tpm_limit: Option<i64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub max_parallel_requests: Option<i64>,
    /// Copilot premium requests per premium period.
    #[serde(default)]
    pub max_premium_requests: Option<f64>,
    /// The premium period, like `budget_duration`; without one, the calendar month (UTC).
    #[serde(default)]
    pub premium_budget_duration: Option<String>,
}

impl LimitsBody {
    /// Checks the values and makes them the store's limits.
    pub fn into_limits(self) -> Result<Limits, ApiError> {
        check_limits(
            [self.max_budget, self.max_premium_requests],
            [&self.budget_duration, &self.premium_budget_duration],
            [self.rpm_limit, self.tpm_limit, self.max_parallel_requests],
        )?;
        Ok(Limits {
            max_budget: self.max_budget,
            budget_duration: self.budget_duration,
            rpm_limit: self.rpm_limit,
            tpm_limit: self.tpm_limit,
            max_parallel_requests: self.max_parallel_requests,
            max_premium_requests: self.max_premium_requests,
            premium_budget_duration: self.premium_budget_duration,
        })
    }
}

/// Rejects negative budgets and limits and malformed periods before they reach the store:
/// `amounts` are `max_budget` and `max_premium_requests`, `periods` their periods, `counts`
/// the rpm, tpm and parallel-request limits.
pub fn check_limits(
    amounts: [Option<f64>; 2],
    periods: [&Option<String>; 2],
    counts: [Option<i64>; 3],
) -> Result<(), ApiError> {
    for (name, amount) in ["max_budget", "max_premium_requests"].iter().zip(amounts) {
        if amount.is_some_and(|b| !(b.is_finite() && b >= 0.0)) {
            return Err(bad(name, "must be a non-negative number"));
        }
    }
    for (name, period) in ["budget_duration", "premium_budget_duration"].iter().zip(periods) {
        if let Some(d) = period
            && tollgate_config::parse_period(d).is_none()
        {
            return Err(bad(name, "must be a period such as `30s`, `30m`, `24h` or `30d`"));
        }
    }
    for (name, v) in ["rpm_limit", "tpm_limit", "max_parallel_requests"].iter().zip(counts) {
        if v.is_some_and(|v| v < 0) {
            return Err(bad(name, "must not be negative"));
        }
    }
    Ok(())
}

/// [`check_limits`] for a change: the values it sets (clearing one is always allowed).
pub fn check_limit_changes(
    amounts: [Option<Option<f64>>; 2],
    periods: [&Option<Option<String>>; 2],
    counts: [Option<Option<i64>>; 3],
) -> Result<(), ApiError> {
    let periods = periods.map(|p| p.clone().flatten());
    check_limits(
        amounts.map(Option::flatten),
        [&periods[0], &periods[1]],
        counts.map(Option::flatten),
    )
}

/// A 400 naming a field.
pub fn bad(param: &str, what: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, format!("`{param}` {what}."))
        .with_code("invalid_value")
        .with_param(param)
}

/// Longest name, id, alias, model or period a management body may hold.
pub const MAX_FIELD_CHARS: usize = 256;
/// Most entries of a list (models, members, keys).
pub const MAX_LIST_ENTRIES: usize = 1000;
/// Largest `metadata` or `permissions`, as JSON.
pub const MAX_FREE_FORM_BYTES: usize = 64 * 1024;
