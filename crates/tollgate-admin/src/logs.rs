//! Logs: the spend records newest first, filtered by key, user, team, request id, model,
//! outcome, HTTP status and time, and paged by keyset (each page continues after the last
//! record of the previous one, `(started_at, request_id)` compared as a pair); a page per request with every attempt and,
//! when prompt storage is on, the redacted prompt and response. Audit: the audit log, paged
//! by id.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tollgate_proxy::ops::spend;
use tollgate_proxy::{ApiError, AppState};
use tollgate_store::{AuditFilter, AuditRecord, SpendCursor, SpendFilter, SpendRecord};

use crate::lists::{PAGE_SIZE, Pager};
use crate::page::{self, Base, Choice, Errors, Frame};
use crate::session::Signed;

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
    model: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    /// The `started_at` of the last record of the previous page.
    #[serde(default)]
    after: Option<String>,
    /// Its request id, which breaks ties between records of one instant.
    #[serde(default)]
    after_id: Option<String>,
}

impl LogsQuery {
    /// The filters, as links carry them to the next page.
    fn params(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("key", self.key.as_deref()),
            ("user", self.user.as_deref()),
            ("team", self.team.as_deref()),
            ("request_id", self.request_id.as_deref()),
            ("model", self.model.as_deref()),
            ("outcome", self.outcome.as_deref()),
            ("status", self.status.as_deref()),
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
        ]
    }
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
    outcomes: Vec<Choice>,
    errors: Errors,
    pager: Pager,
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

/// The outcome choices after "any": success, any failure, then each failure.
fn outcome_choices(current: Option<&str>) -> Vec<Choice> {
    let mut options = vec![spend::OUTCOMES[0], spend::FAILURE];
    options.extend(&spend::OUTCOMES[1..]);
    page::choices(&options, current.unwrap_or(""))
}

/// The value of a check, or its message next to the field it names.
fn checked<T>(r: Result<T, ApiError>, errors: &mut Vec<(String, String)>) -> Option<T> {
    r.map_err(|e| errors.push((e.param().unwrap_or("form").to_owned(), e.message().to_owned())))
        .ok()
}

/// The filters of the form as the store's, or the messages to show next to the fields.
fn filter(q: &LogsQuery, signed: &Signed) -> Result<SpendFilter, Errors> {
    let mut errors = Vec::new();
    let text = |v: &Option<String>| page::text(v.clone());
    let start = text(&q.from).and_then(|s| checked(spend::time("from", &s, false), &mut errors));
    let end = text(&q.to).and_then(|s| checked(spend::time("to", &s, true), &mut errors));
    checked(spend::check_range(start, end, "to"), &mut errors);
    let outcomes = text(&q.outcome)
        .and_then(|o| checked(spend::outcomes("outcome", &o), &mut errors))
        .unwrap_or_default();
    let status = text(&q.status).and_then(|s| checked(spend::status("status", &s), &mut errors));
    if !errors.is_empty() {
        return Err(errors.into_iter().collect());
    }
    let mut filter = SpendFilter {
        token_hash: text(&q.key).map(|k| tollgate_proxy::access::keys::to_hash(&k)),
        user_id: text(&q.user),
        team_id: text(&q.team),
        request_id: text(&q.request_id),
        model: text(&q.model),
        outcomes,
        status,
        start,
        end,
        ..Default::default()
    };
    if !signed.role.sees_all() {
        filter.user_id = signed.user_id.clone();
    }
    Ok(filter)
}

/// Where the page continues, from the link's `after`/`after_id`; `Err` for a damaged link.
fn cursor(q: &LogsQuery) -> Result<Option<SpendCursor>, ()> {
    match (q.after.as_deref(), q.after_id.as_deref()) {
        (None, None) => Ok(None),
        (Some(t), Some(id)) => DateTime::parse_from_rfc3339(t)
            .map(|t| Some(SpendCursor { started_at: t.to_utc(), request_id: id.to_owned() }))
            .map_err(|_| ()),
        _ => Err(()),
    }
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
    let Ok(before) = cursor(&q) else {
        return page::invalid(&base, "This page link is damaged; start again from the first page.");
    };
    let on_first = before.is_none();
    let outcomes = outcome_choices(q.outcome.as_deref());
    let frame = Frame::new(&base, &signed, "Logs", "logs");
    let nonce = frame.nonce.clone();
    let filter = match filter(&q, &signed) {
        Ok(f) => f,
        Err(errors) => {
            let page = LogsPage {
                frame,
                rows: Vec::new(),
                query: q,
                outcomes,
                errors,
                pager: Pager::default(),
            };
            return page::html(StatusCode::BAD_REQUEST, &nonce, &page);
        }
    };
    // As the browser's date-time fields show them (a day typed into a link included), with
    // any fraction of a second kept so the next page filters the same.
    let shown = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
    let mut q = q;
    q.from = filter.start.map(shown);
    q.to = filter.end.map(shown);
    let filter = SpendFilter { before, limit: PAGE_SIZE + 1, ..filter };
    let mut records = match page::read(&base, "logs", state.store().spend_logs(filter).await) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let more = records.len() > PAGE_SIZE as usize;
    records.truncate(PAGE_SIZE as usize);
    let next = more
        .then(|| records.last().map(SpendCursor::after))
        .flatten()
        .map(|c| (c.started_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), c.request_id));
    let pager = Pager::new(&base, "/logs", &q.params(), on_first, next);
    let rows = records
        .into_iter()
        .map(|r| LogRow {
            key: key_name(&state, r.token_hash.as_deref()),
            attempts: r.attempts.as_array().map_or(0, Vec::len),
            record: r,
        })
        .collect();
    let page = LogsPage { frame, rows, query: q, outcomes, errors: Errors::default(), pager };
    page::html(StatusCode::OK, &nonce, &page)
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
