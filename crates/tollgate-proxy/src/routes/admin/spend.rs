//! `/spend/logs` and `/spend/daily`: what was spent, raw and rolled up.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;
use tollgate_store::{RollupFilter, SpendFilter};

use super::{Admin, store_error};
use crate::access::keys;
use crate::error::ApiError;
use crate::extract::Query;
use crate::ops::spend;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct LogsQuery {
    /// A key or its hash.
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    /// The `x-request-id` the client sent.
    #[serde(default)]
    client_request_id: Option<String>,
    #[serde(default)]
    start_date: Option<String>,
    #[serde(default)]
    end_date: Option<String>,
    /// Requested model, model group or served model.
    #[serde(default)]
    model: Option<String>,
    /// `success`, `failure` (LiteLLM's words), or one of tollgate's outcomes.
    #[serde(default)]
    status_filter: Option<String>,
    /// An HTTP status (`429`) or class (`5xx`).
    #[serde(default)]
    status_code: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

/// `2026-11-21` (the whole day), a UTC date and time, or an RFC 3339 time.
pub(super) fn parse_time(
    param: &str,
    s: &str,
    end_of_day: bool,
) -> Result<DateTime<Utc>, ApiError> {
    spend::time(param, s, end_of_day)
}

pub(super) async fn logs(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    let start = q.start_date.as_deref().map(|s| parse_time("start_date", s, false)).transpose()?;
    let end = q.end_date.as_deref().map(|s| parse_time("end_date", s, true)).transpose()?;
    spend::check_range(start, end, "end_date")?;
    let filter = SpendFilter {
        token_hash: q.api_key.as_deref().map(keys::to_hash),
        user_id: q.user_id,
        team_id: q.team_id,
        request_id: q.request_id,
        client_request_id: q.client_request_id,
        start,
        end,
        model: q.model.filter(|m| !m.trim().is_empty()),
        outcomes: match q.status_filter.as_deref() {
            Some(s) => spend::outcomes("status_filter", s)?,
            None => Vec::new(),
        },
        status: q.status_code.as_deref().map(|s| spend::status("status_code", s)).transpose()?,
        before: None,
        limit: q.limit.unwrap_or(1000).clamp(1, 10_000),
    };
    let records = state.store().spend_logs(filter).await.map_err(store_error)?;
    Ok(Json(serde_json::to_value(records).unwrap_or(Value::Null)))
}

#[derive(Debug, Deserialize)]
pub(super) struct DailyQuery {
    #[serde(default)]
    start_date: Option<NaiveDate>,
    #[serde(default)]
    end_date: Option<NaiveDate>,
    #[serde(default)]
    api_key: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    team_id: Option<String>,
}

pub(super) async fn daily(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<DailyQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = RollupFilter {
        start: q.start_date,
        end: q.end_date,
        token_hash: q.api_key.as_deref().map(keys::to_hash),
        user_id: q.user_id,
        team_id: q.team_id,
    };
    let rows = state.store().daily_spend(filter).await.map_err(store_error)?;
    Ok(Json(serde_json::to_value(rows).unwrap_or(Value::Null)))
}
