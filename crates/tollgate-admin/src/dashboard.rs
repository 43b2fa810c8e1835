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
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;
use tollgate_proxy::AppState;
use tollgate_store::{RollupFilter, SpendTotals, latency_percentile};

use crate::copilot;
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
    pub fallbacks: i64,
    pub cost: f64,
    pub tokens: i64,
}

/// A model group's latency, estimated from its histogram.
pub(crate) struct Latency {
    pub model: String,
    pub requests: i64,
    pub p50: String,
    pub p95: String,
}

/// A chart's legend entry: the swatch's class and what it stands for.
pub(crate) struct Legend {
    pub class: &'static str,
    pub label: String,
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
    fallback_share: String,
    requests_chart: String,
    requests_legend: Vec<Legend>,
    spend_chart: String,
    spend_legend: Vec<Legend>,
    fallback_chart: String,
    latency_chart: String,
    latency: Vec<Latency>,
    tops: Vec<(&'static str, Vec<Top>)>,
    accounts: Vec<copilot::Account>,
}

/// A ranking as the dashboard shows it.
fn top(ranked: &[(String, SpendTotals)], name: impl Fn(&str) -> String) -> Vec<Top> {
    ranked
        .iter()
        .map(|(n, t)| Top {
            name: name(n),
            requests: t.requests,
            failures: t.failures,
            fallbacks: t.fallbacks,
            cost: t.cost,
            tokens: t.prompt_tokens + t.completion_tokens,
        })
        .collect()
}

/// The chart class of an outcome: answered, refused by tollgate, or failed.
fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "success" => "bar-ok",
        "refused" => "bar-refused",
        _ => "bar-bad",
    }
}

/// How many model groups the spend chart names; the rest are stacked as "other".
const NAMED_MODELS: usize = 5;

/// A share as a percentage with one decimal, or a dash for nothing.
fn percent(part: i64, whole: i64) -> String {
    if whole > 0 { format!("{:.1}%", part as f64 * 100.0 / whole as f64) } else { "–".to_owned() }
}

/// A latency in ms or s, the digits a reader needs.
fn duration_ms(ms: f64) -> String {
    if ms >= 1000.0 { format!("{:.2} s", ms / 1000.0) } else { format!("{ms:.0} ms") }
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
    // Summed by the database from the narrow rollups: a few hundred rows whatever the range.
    let (summary, accounts) =
        tokio::join!(state.store().spend_summary(filter, 10), copilot::accounts(&state, &signed));
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "dashboard: cannot read the rollups");
            return page::unavailable(&base);
        }
    };
    // The quota table is a part of the page, not a reason to fail it.
    let accounts = accounts.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "dashboard: linked Copilot accounts not read");
        Vec::new()
    });
    let mut range_days = Vec::new();
    let mut day = start;
    while day <= today {
        range_days.push(day);
        day += Duration::days(1);
    }
    let label = |d: &NaiveDate| d.format("%m-%d").to_string();
    let per_day = |parts: &BTreeMap<NaiveDate, Vec<(&'static str, f64)>>| -> Vec<Bar> {
        range_days
            .iter()
            .map(|d| Bar { label: label(d), parts: parts.get(d).cloned().unwrap_or_default() })
            .collect()
    };

    let mut total = SpendTotals::default();
    for (_, t) in &summary.days {
        total.add(t);
    }

    // Requests per day by outcome, answered at the bottom.
    let mut outcomes: Vec<&str> = summary.outcomes.iter().map(|(_, o, _)| o.as_str()).collect();
    outcomes.sort_by_key(|o| (*o != "success", *o));
    outcomes.dedup();
    let mut by_outcome: BTreeMap<NaiveDate, Vec<(&'static str, f64)>> = BTreeMap::new();
    for o in &outcomes {
        for (d, _, n) in summary.outcomes.iter().filter(|(_, x, _)| x == o) {
            by_outcome.entry(*d).or_default().push((outcome_class(o), *n as f64));
        }
    }
    let requests_chart =
        svg::bars("Requests per day by outcome", &per_day(&by_outcome), 160, "requests");
    let requests_legend = outcomes
        .iter()
        .map(|o| Legend { class: outcome_class(o), label: (*o).to_owned() })
        .collect();

    // Spend per day by model group: the costliest few by name, the rest together.
    let mut model_cost: BTreeMap<&str, f64> = BTreeMap::new();
    for (_, m, t) in &summary.model_days {
        *model_cost.entry(m).or_default() += t.cost;
    }
    let mut by_cost: Vec<(&str, f64)> = model_cost.into_iter().filter(|(_, c)| *c > 0.0).collect();
    by_cost.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let named: Vec<&str> = by_cost.iter().take(NAMED_MODELS).map(|(m, _)| *m).collect();
    let series = |m: &str| named.iter().position(|n| *n == m).unwrap_or(NAMED_MODELS);
    let mut by_model: BTreeMap<NaiveDate, Vec<(&'static str, f64)>> = BTreeMap::new();
    for (d, m, t) in &summary.model_days {
        let class = svg::SERIES[series(m)];
        let parts = by_model.entry(*d).or_default();
        match parts.iter_mut().find(|(c, _)| *c == class) {
            Some(part) => part.1 += t.cost,
            None => parts.push((class, t.cost)),
        }
    }
    for parts in by_model.values_mut() {
        parts.sort_by_key(|(c, _)| svg::SERIES.iter().position(|s| s == c));
    }
    let spend_chart =
        svg::bars("Spend per day by model group, USD", &per_day(&by_model), 160, "USD");
    let mut spend_legend: Vec<Legend> = named
        .iter()
        .enumerate()
        .map(|(i, m)| Legend { class: svg::SERIES[i], label: (*m).to_owned() })
        .collect();
    if by_cost.len() > NAMED_MODELS {
        spend_legend.push(Legend { class: svg::SERIES[NAMED_MODELS], label: "other".to_owned() });
    }

    // Share of requests answered by a fallback, per day.
    let share: BTreeMap<NaiveDate, Vec<(&'static str, f64)>> = summary
        .days
        .iter()
        .filter(|(_, t)| t.requests > 0)
        .map(|(d, t)| (*d, vec![("bar-refused", t.fallbacks as f64 * 100.0 / t.requests as f64)]))
        .collect();
    let fallback_chart =
        svg::bars("Share of requests answered by a fallback, per day", &per_day(&share), 120, "%");

    // Latency per model group, from its histogram.
    let mut latency: Vec<(Latency, f64, f64)> = summary
        .latency
        .iter()
        .filter_map(|(model, counts)| {
            let p50 = latency_percentile(counts, 0.5)?;
            let p95 = latency_percentile(counts, 0.95)?;
            let l = Latency {
                model: model.clone(),
                requests: counts.iter().sum(),
                p50: duration_ms(p50),
                p95: duration_ms(p95),
            };
            Some((l, p50, p95))
        })
        .collect();
    latency.sort_by(|a, b| b.0.requests.cmp(&a.0.requests).then(a.0.model.cmp(&b.0.model)));
    latency.truncate(10);
    let latency_chart = svg::ranges(
        "Latency per model group: p50 and p95",
        &latency.iter().map(|(l, p50, p95)| (l.model.clone(), *p50, *p95)).collect::<Vec<_>>(),
        "ms",
    );

    let page = DashboardPage {
        frame: Frame::new(&base, &signed, "Dashboard", "dashboard").with_notice(q.done),
        range,
        requests: total.requests,
        failures: total.failures,
        cost: total.cost,
        tokens: total.prompt_tokens + total.completion_tokens,
        premium: total.premium_units,
        fallback_share: percent(total.fallbacks, total.requests),
        requests_chart,
        requests_legend,
        spend_chart,
        spend_legend,
        fallback_chart,
        latency_chart,
        latency: latency.into_iter().map(|(l, _, _)| l).collect(),
        tops: vec![
            ("Models", top(&summary.models, str::to_owned)),
            ("Keys", top(&summary.keys, |h| key_name(&state, h))),
            ("Users", top(&summary.users, str::to_owned)),
            ("Teams", top(&summary.teams, str::to_owned)),
        ],
        accounts,
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
