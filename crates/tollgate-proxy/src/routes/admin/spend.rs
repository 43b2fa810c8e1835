//! `/spend/logs` and `/spend/daily`: what was spent, raw and rolled up.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;
use tollgate_store::{RollupFilter, SpendFilter};

use super::{Admin, bad, store_error};
use crate::access::keys;
use crate::error::ApiError;
use crate::extract::Query;
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
    #[serde(default)]
    limit: Option<u32>,
}

/// `2026-11-21` (the whole day) or an RFC 3339 time.
pub(super) fn parse_time(
    param: &str,
    s: &str,
    end_of_day: bool,
) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| bad(param, "must be a date (YYYY-MM-DD) or an RFC 3339 time"))?;
    let day = if end_of_day { day.succ_opt().unwrap_or(day) } else { day };
    Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

pub(super) async fn logs(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = SpendFilter {
        token_hash: q.api_key.as_deref().map(keys::to_hash),
        user_id: q.user_id,
        team_id: q.team_id,
        request_id: q.request_id,
        client_request_id: q.client_request_id,
        start: q.start_date.as_deref().map(|s| parse_time("start_date", s, false)).transpose()?,
        end: q.end_date.as_deref().map(|s| parse_time("end_date", s, true)).transpose()?,
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
