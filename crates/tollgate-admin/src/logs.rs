//! Logs: the spend records newest first, filtered and paged by time (each page continues
//! before the last record of the previous one); a page per request with every attempt and,
//! when prompt storage is on, the redacted prompt and response. Audit: the audit log, paged
//! by id.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_store::{AuditFilter, AuditRecord, SpendFilter, SpendRecord};

use crate::page::{self, Base, Frame};
use crate::session::Signed;

const PAGE_SIZE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LogsQuery {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    end: Option<String>,
    /// The `started_at` of the last record of the previous page.
    #[serde(default)]
    before: Option<String>,
}

/// A record as the list shows it.
pub(crate) struct LogRow {
    record: SpendRecord,
    key: String,
    attempts: usize,
}

#[derive(Template)]
#[template(path = "admin/logs.html")]
struct LogsPage {
    frame: Frame,
    rows: Vec<LogRow>,
    query: LogsQuery,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/log.html")]
struct LogPage {
    frame: Frame,
    record: SpendRecord,
    key: String,
    attempts: String,
    request_body: Option<String>,
    response_body: Option<String>,
}

fn day(s: &Option<String>, end: bool) -> Option<DateTime<Utc>> {
    let d = NaiveDate::parse_from_str(s.as_deref()?.trim(), "%Y-%m-%d").ok()?;
    let d = if end { d.succ_opt()? } else { d };
    Some(d.and_hms_opt(0, 0, 0)?.and_utc())
}

fn key_name(state: &AppState, hash: Option<&str>) -> String {
    match hash.and_then(|h| state.directory().key(h)) {
        Some(k) => k.record.key_alias.clone().unwrap_or_else(|| k.record.key_name.clone()),
        None => hash.map(crate::dashboard::short).unwrap_or_default(),
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<LogsQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    let before = q
        .before
        .as_deref()
        .and_then(|b| DateTime::parse_from_rfc3339(b).ok())
        .map(|t| t.with_timezone(&Utc));
    let end = match (day(&q.end, true), before) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut filter = SpendFilter {
        token_hash: page::text(q.key.clone()).map(|k| tollgate_proxy::access::keys::to_hash(&k)),
        user_id: page::text(q.user.clone()),
        team_id: page::text(q.team.clone()),
        request_id: page::text(q.request_id.clone()),
        start: day(&q.start, false),
        end,
        limit: PAGE_SIZE,
        ..Default::default()
    };
    if !signed.role.sees_all() {
        filter.user_id = signed.user_id.clone();
    }
    let records = match state.store().spend_logs(filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "logs page: store failed");
            return page::unavailable(&base);
        }
    };
    let next = (records.len() == PAGE_SIZE as usize)
        .then(|| records.last().map(|r| r.started_at.to_rfc3339()))
        .flatten();
    let rows = records
        .into_iter()
        .map(|r| LogRow {
            key: key_name(&state, r.token_hash.as_deref()),
            attempts: r.attempts.as_array().map_or(0, Vec::len),
            record: r,
        })
        .collect();
    let frame = Frame::new(&base, &signed, "Logs", "logs");
    let nonce = frame.nonce.clone();
    page::html(StatusCode::OK, &nonce, &LogsPage { frame, rows, query: q, next })
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Path(request_id): Path<String>,
) -> Response {
    let base = Base::of(&parts, &state);
    let filter = SpendFilter { request_id: Some(request_id), limit: 1, ..Default::default() };
    let record = match state.store().spend_logs(filter).await {
        Ok(mut r) if !r.is_empty() => r.remove(0),
        Ok(_) => return page::not_found(&base, "No such request."),
        Err(e) => {
            tracing::error!(error = %e, "log page: store failed");
            return page::unavailable(&base);
        }
    };
    if !signed.role.sees_all() && record.user_id != signed.user_id {
        return page::refused(&base, "This request is not yours.");
    }
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let frame = Frame::new(&base, &signed, "Request", "logs");
    let nonce = frame.nonce.clone();
    let page = LogPage {
        frame,
        key: key_name(&state, record.token_hash.as_deref()),
        attempts: pretty(&record.attempts),
        request_body: record.request_body.as_ref().map(pretty),
        response_body: record.response_body.as_ref().map(pretty),
        record,
    };
    page::html(StatusCode::OK, &nonce, &page)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    object_type: Option<String>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    cursor: Option<i64>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    frame: Frame,
    records: Vec<(AuditRecord, String, String)>,
    query: AuditQuery,
    next: Option<i64>,
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<AuditQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    if !signed.role.sees_all() {
        return page::refused(&base, "The audit log is for admins.");
    }
    let filter = AuditFilter {
        object_type: page::text(q.object_type.clone()),
        actor: page::text(q.actor.clone()),
        object_id: page::text(q.object_id.clone()),
        before_id: q.cursor,
        limit: PAGE_SIZE,
        ..Default::default()
    };
    let records = match state.store().audit_logs(filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "audit page: store failed");
            return page::unavailable(&base);
        }
    };
    let next =
        (records.len() == PAGE_SIZE as usize).then(|| records.last().map(|r| r.id)).flatten();
    let show =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    let records = records
        .into_iter()
        .map(|r| {
            let (b, a) = (show(&r.before), show(&r.after));
            (r, b, a)
        })
        .collect();
    let frame = Frame::new(&base, &signed, "Audit", "audit");
    let nonce = frame.nonce.clone();
    page::html(StatusCode::OK, &nonce, &AuditPage { frame, records, query: q, next })
}
