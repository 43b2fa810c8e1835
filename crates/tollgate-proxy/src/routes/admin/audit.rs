//! `GET /audit/logs`: who changed what, newest first, paged by id.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::AuditFilter;

use super::spend::parse_time;
use super::{Admin, store_error};
use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(super) struct AuditQuery {
    #[serde(default)]
    object_type: Option<String>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    action: Option<String>,
    /// A day (`2026-12-01`, from its start) or an RFC 3339 time.
    #[serde(default)]
    start_date: Option<String>,
    /// A day (up to its end) or an RFC 3339 time.
    #[serde(default)]
    end_date: Option<String>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    cursor: Option<i64>,
    #[serde(default)]
    page_size: Option<u32>,
}

pub(super) async fn logs(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let size = q.page_size.unwrap_or(100).clamp(1, 1000);
    let filter = AuditFilter {
        object_type: q.object_type,
        object_id: q.object_id,
        actor: q.actor,
        action: q.action,
        since: q.start_date.as_deref().map(|t| parse_time("start_date", t, false)).transpose()?,
        until: q.end_date.as_deref().map(|t| parse_time("end_date", t, true)).transpose()?,
        before_id: q.cursor,
        limit: size,
    };
    let records = state.store().audit_logs(filter).await.map_err(store_error)?;
    let next = (records.len() == size as usize).then(|| records.last().map(|r| r.id)).flatten();
    Ok(Json(json!({ "data": records, "next_cursor": next, "page_size": size })))
}
