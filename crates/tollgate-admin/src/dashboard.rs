//! The dashboard: requests, errors, spend, tokens and premium units over a range, per day
//! and per model, key, user and team — all from the daily rollups, never the raw records.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{Duration, Utc};
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_store::{DailySpend, RollupFilter};

use crate::page::{self, Base, Frame};
use crate::session::Signed;
use crate::svg::{self, Bar};

#[derive(Debug, Deserialize)]
pub(crate) struct RangeQuery {
    #[serde(default)]
    range: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

/// A row of a "top" table.
pub(crate) struct Top {
    pub name: String,
    pub requests: i64,
    pub failures: i64,
    pub cost: f64,
    pub tokens: i64,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    frame: Frame,
    range: &'static str,
    requests: i64,
    failures: i64,
    cost: f64,
    tokens: i64,
    premium: f64,
    requests_chart: String,
    spend_chart: String,
    tops: Vec<(&'static str, Vec<Top>)>,
}

fn top(rows: &[DailySpend], name: impl Fn(&DailySpend) -> String) -> Vec<Top> {
    let mut by: BTreeMap<String, Top> = BTreeMap::new();
    for r in rows {
        let n = name(r);
        if n.is_empty() {
            continue;
        }
        let t = by.entry(n.clone()).or_insert(Top {
            name: n,
            requests: 0,
            failures: 0,
            cost: 0.0,
            tokens: 0,
        });
        t.requests += r.requests;
        t.failures += r.failures;
        t.cost += r.cost;
        t.tokens += r.prompt_tokens + r.completion_tokens;
    }
    let mut out: Vec<Top> = by.into_values().collect();
    out.sort_by(|a, b| b.requests.cmp(&a.requests).then(b.cost.total_cmp(&a.cost)));
    out.truncate(10);
    out
}

pub(crate) async fn page(
    State(state): State<AppState>,
    parts: Parts,
    signed: Signed,
    Query(q): Query<RangeQuery>,
) -> Response {
    let base = Base::of(&parts, &state);
    let (range, days) = match q.range.as_deref() {
        Some("24h") => ("24h", 1),
        Some("30d") => ("30d", 30),
        _ => ("7d", 7),
    };
    let today = Utc::now().date_naive();
    let start = today - Duration::days(days - 1);
    let mut filter = RollupFilter { start: Some(start), end: Some(today), ..Default::default() };
    if !signed.role.sees_all() {
        filter.user_id = signed.user_id.clone();
    }
    let rows = match state.store().daily_spend(filter).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "dashboard: cannot read the rollups");
            return page::unavailable(&base);
        }
    };
    let mut by_day: BTreeMap<chrono::NaiveDate, (f64, f64, f64)> = BTreeMap::new();
    let mut day = start;
    while day <= today {
        by_day.insert(day, (0.0, 0.0, 0.0));
        day += Duration::days(1);
    }
    for r in &rows {
        let e = by_day.entry(r.day).or_default();
        e.0 += (r.requests - r.failures) as f64;
        e.1 += r.failures as f64;
        e.2 += r.cost;
    }
    let label = |d: &chrono::NaiveDate| d.format("%m-%d").to_string();
    let requests_chart = svg::bars(
        "Requests per day, succeeded and failed",
        &by_day
            .iter()
            .map(|(d, v)| Bar { label: label(d), parts: vec![("bar-ok", v.0), ("bar-bad", v.1)] })
            .collect::<Vec<_>>(),
        160,
        "requests",
    );
    let spend_chart = svg::bars(
        "Spend per day in USD",
        &by_day
            .iter()
            .map(|(d, v)| Bar { label: label(d), parts: vec![("bar-a", v.2)] })
            .collect::<Vec<_>>(),
        160,
        "USD",
    );
    let key_names = key_aliases(&state, &rows).await;
    let page = DashboardPage {
        frame: Frame::new(&base, &signed, "Dashboard", "dashboard").with_notice(q.done),
        range,
        requests: rows.iter().map(|r| r.requests).sum(),
        failures: rows.iter().map(|r| r.failures).sum(),
        cost: rows.iter().map(|r| r.cost).sum(),
        tokens: rows.iter().map(|r| r.prompt_tokens + r.completion_tokens).sum(),
        premium: rows.iter().map(|r| r.premium_units).sum(),
        requests_chart,
        spend_chart,
        tops: vec![
            ("Models", top(&rows, |r| r.model_group.clone())),
            (
                "Keys",
                top(&rows, |r| {
                    key_names.get(&r.token_hash).cloned().unwrap_or_else(|| short(&r.token_hash))
                }),
            ),
            ("Users", top(&rows, |r| r.user_id.clone())),
            ("Teams", top(&rows, |r| r.team_id.clone())),
        ],
    };
    let nonce = page.frame.nonce.clone();
    page::html(StatusCode::OK, &nonce, &page)
}

/// A key hash shortened for display.
pub(crate) fn short(hash: &str) -> String {
    hash.chars().take(10).collect()
}

/// Aliases (or display names) of the keys in `rows`, from the in-memory directory.
async fn key_aliases(
    state: &AppState,
    rows: &[DailySpend],
) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    for r in rows {
        if r.token_hash.is_empty() || out.contains_key(&r.token_hash) {
            continue;
        }
        if let Some(k) = state.directory().key(&r.token_hash) {
            let name = k.record.key_alias.clone().unwrap_or_else(|| k.record.key_name.clone());
            out.insert(r.token_hash.clone(), name);
        }
    }
    out
}
