//! The dashboard: requests, errors, spend, tokens and premium units over a range, per day
//! and per model, key, user and team — all from the daily rollups, never the raw records,
//! summed by the database (`spend_summary`) so a 30-day range does not ship every rollup
//! row to the process.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{Duration, Utc};
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_store::{RollupFilter, SpendTotals};

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

/// A ranking as the dashboard shows it.
fn top(ranked: &[(String, SpendTotals)], name: impl Fn(&str) -> String) -> Vec<Top> {
    ranked
        .iter()
        .map(|(n, t)| Top {
            name: name(n),
            requests: t.requests,
            failures: t.failures,
            cost: t.cost,
            tokens: t.prompt_tokens + t.completion_tokens,
        })
        .collect()
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
    // Summed by the database: a row per day and ten per ranking, whatever the range holds.
    let summary = match state.store().spend_summary(filter, 10).await {
        Ok(s) => s,
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
    let mut total = SpendTotals::default();
    for (d, t) in &summary.days {
        let e = by_day.entry(*d).or_default();
        e.0 += (t.requests - t.failures) as f64;
        e.1 += t.failures as f64;
        e.2 += t.cost;
        total.requests += t.requests;
        total.failures += t.failures;
        total.prompt_tokens += t.prompt_tokens;
        total.completion_tokens += t.completion_tokens;
        total.cost += t.cost;
        total.premium_units += t.premium_units;
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
    let page = DashboardPage {
        frame: Frame::new(&base, &signed, "Dashboard", "dashboard").with_notice(q.done),
        range,
        requests: total.requests,
        failures: total.failures,
        cost: total.cost,
        tokens: total.prompt_tokens + total.completion_tokens,
        premium: total.premium_units,
        requests_chart,
        spend_chart,
        tops: vec![
            ("Models", top(&summary.models, str::to_owned)),
            ("Keys", top(&summary.keys, |h| key_name(&state, h))),
            ("Users", top(&summary.users, str::to_owned)),
            ("Teams", top(&summary.teams, str::to_owned)),
        ],
    };
    let nonce = page.frame.nonce.clone();
    page::html(StatusCode::OK, &nonce, &page)
}

/// A key hash shortened for display.
pub(crate) fn short(hash: &str) -> String {
    hash.chars().take(10).collect()
}

/// A key's alias (or display name) from the in-memory directory, else its shortened hash.
fn key_name(state: &AppState, hash: &str) -> String {
    match state.directory().key(hash) {
        Some(k) => k.record.key_alias.clone().unwrap_or_else(|| k.record.key_name.clone()),
        None => short(hash),
    }
}
