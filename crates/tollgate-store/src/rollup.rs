//! Turning a batch of newly stored spend records into spend increments and rollup rows.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde_json::Value;

use crate::{SpendRecord, SpendTotals, StoreError};

/// Refuses records whose amounts are not finite: NaN would poison every spend total it is
/// added to (and SQLite stores it as NULL).
pub(crate) fn check_amounts(records: &[SpendRecord]) -> Result<(), StoreError> {
    for r in records {
        let amounts = [r.cost, r.premium_units, r.latency_ms, r.ttft_ms.unwrap_or_default()];
        if !amounts.iter().all(|a| a.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "spend record `{}` has a cost, premium units or latency that is not a finite number",
                r.request_id
            )));
        }
    }
    Ok(())
}

/// The batch without repeated request ids (first wins), sorted by request id. Every writer
/// inserting in one global order means two overlapping batches wait for each other instead of
/// deadlocking on each other's rows.
pub(crate) fn unique_sorted<'a>(
    records: impl IntoIterator<Item = &'a SpendRecord>,
) -> Vec<&'a SpendRecord> {
    let mut seen = HashSet::new();
    let mut out: Vec<&SpendRecord> =
        records.into_iter().filter(|r| seen.insert(r.request_id.as_str())).collect();
    out.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    out
}

/// The record with NUL characters replaced by U+FFFD, borrowed when it has none. PostgreSQL
/// refuses NUL in TEXT and JSONB, and clients control some of these strings (model names,
/// logged prompts): one such request must not make its whole batch unstorable.
pub(crate) fn without_nul(r: &SpendRecord) -> Cow<'_, SpendRecord> {
    let texts = [
        &r.request_id,
        &r.api,
        &r.requested_model,
        &r.model_group,
        &r.served_model,
        &r.provider,
        &r.outcome,
    ];
    let ids = [&r.client_request_id, &r.token_hash, &r.user_id, &r.team_id];
    let bodies = [Some(&r.attempts), r.request_body.as_ref(), r.response_body.as_ref()];
    let dirty = texts.iter().any(|s| s.contains('\0'))
        || ids.iter().any(|s| s.as_deref().is_some_and(|s| s.contains('\0')))
        || bodies.iter().flatten().any(|v| json_has_nul(v));
    if !dirty {
        return Cow::Borrowed(r);
    }
    let mut r = r.clone();
    for s in [
        &mut r.request_id,
        &mut r.api,
        &mut r.requested_model,
        &mut r.model_group,
        &mut r.served_model,
        &mut r.provider,
        &mut r.outcome,
    ] {
        replace_nul(s);
    }
    for s in [&mut r.client_request_id, &mut r.token_hash, &mut r.user_id, &mut r.team_id]
        .into_iter()
        .flatten()
    {
        replace_nul(s);
    }
    for v in [Some(&mut r.attempts), r.request_body.as_mut(), r.response_body.as_mut()]
        .into_iter()
        .flatten()
    {
        json_replace_nul(v);
    }
    Cow::Owned(r)
}

/// Replaces NUL characters with U+FFFD.
pub(crate) fn replace_nul(s: &mut String) {
    if s.contains('\0') {
        *s = s.replace('\0', "\u{FFFD}");
    }
}

fn json_has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Replaces NUL characters with U+FFFD in every string and object key of a JSON value.
pub(crate) fn json_replace_nul(v: &mut Value) {
    match v {
        Value::String(s) => replace_nul(s),
        Value::Array(items) => items.iter_mut().for_each(json_replace_nul),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains('\0')) {
                let entries = std::mem::take(map);
                for (mut k, v) in entries {
                    replace_nul(&mut k);
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(json_replace_nul);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A `spend_daily` primary key: day, key, user, team, model group, served model ('' for
/// missing ids).
pub(crate) type DayKey<'a> = (NaiveDate, &'a str, &'a str, &'a str, &'a str, &'a str);

/// A `spend_rollup` primary key: scope ('' for everyone, else a user id), dimension, day,
/// value, latency bucket (0 outside `latency`).
pub(crate) type RollupKey<'a> = (&'a str, &'static str, NaiveDate, &'a str, i64);

/// A `spend_window` primary key: span in days, dimension, value.
pub(crate) type WindowKey<'a> = (i64, &'static str, &'a str);

/// The spans, in days, of the running windows rankings read (the dashboard's ranges).
pub const WINDOW_SPANS: [i64; 3] = [1, 7, 30];

/// Upper bounds (exclusive, in ms) of the latency buckets of `spend_rollup`'s `latency`
/// dimension; a request slower than the last is in one more bucket. The migration that
/// backfilled the rollup repeats them (a test checks).
pub const LATENCY_BOUNDS_MS: [f64; 19] = [
    25.0, 50.0, 100.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 5000.0, 7500.0,
    10000.0, 15000.0, 20000.0, 30000.0, 60000.0, 120000.0,
];

/// The latency bucket of `latency_ms`.
pub(crate) fn latency_bucket(latency_ms: f64) -> i64 {
    LATENCY_BOUNDS_MS.iter().position(|b| latency_ms < *b).unwrap_or(LATENCY_BOUNDS_MS.len()) as i64
}

/// The latency below which a share `q` (0 to 1) of a histogram's requests fall, estimated
/// by linear interpolation inside the bucket that holds it; for the open last bucket, its
/// lower bound. `None` for an empty histogram.
pub fn latency_percentile(counts: &[i64], q: f64) -> Option<f64> {
    let total: i64 = counts.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0.0;
    for (i, &n) in counts.iter().enumerate() {
        let n = n as f64;
        if n > 0.0 && below + n >= rank {
            let lower = if i == 0 { 0.0 } else { LATENCY_BOUNDS_MS[i - 1] };
            let Some(&upper) = LATENCY_BOUNDS_MS.get(i) else { return Some(lower) };
            return Some(lower + (upper - lower) * ((rank - below) / n));
        }
        below += n;
    }
    LATENCY_BOUNDS_MS.last().copied()
}

/// Whether a record was answered by a model group other than the first one tried: a
/// successful request whose first and last attempts name different groups.
pub(crate) fn served_by_fallback(r: &SpendRecord) -> bool {
    fn group(a: Option<&Value>) -> Option<&str> {
        a.and_then(|a| a.get("model_group")).and_then(Value::as_str)
    }
    let attempts = r.attempts.as_array().map(Vec::as_slice).unwrap_or_default();
    r.outcome == "success"
        && matches!(
            (group(attempts.first()), group(attempts.last())),
            (Some(first), Some(last)) if first != last
        )
}

/// Adds one record to the sums of a rollup row (of `spend_daily`, `spend_rollup` or
/// `spend_window`).
fn count(t: &mut SpendTotals, r: &SpendRecord, fallback: bool) {
    t.add(&SpendTotals {
        requests: 1,
        failures: i64::from(r.outcome != "success"),
        fallbacks: i64::from(fallback),
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        cost: r.cost,
        premium_units: r.premium_units,
    });
}

/// What records add to a key's, user's or team's spend: money and premium units.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Charge {
    pub(crate) cost: f64,
    pub(crate) premium_units: f64,
}

impl Charge {
    fn add(&mut self, r: &SpendRecord) {
        self.cost += r.cost;
        self.premium_units += r.premium_units;
    }
}

/// What the newly stored records add. Ordered maps so every writer updates rows in the same
/// order (no lock cycles) and issues one statement per distinct id.
#[derive(Debug, Default)]
pub(crate) struct BatchSums<'a> {
    pub(crate) keys: BTreeMap<&'a str, Charge>,
    pub(crate) users: BTreeMap<&'a str, Charge>,
    pub(crate) teams: BTreeMap<&'a str, Charge>,
    pub(crate) days: BTreeMap<DayKey<'a>, SpendTotals>,
    pub(crate) rollups: BTreeMap<RollupKey<'a>, SpendTotals>,
    pub(crate) windows: BTreeMap<WindowKey<'a>, SpendTotals>,
}

/// Sums the new records per key, user, team and rollup row. `windows_through` is the day the
/// running windows end on (`spend_window_state`); a record is added to each window whose
/// days it falls in, and to none while the windows have not been built.
pub(crate) fn totals<'a>(
    new: impl IntoIterator<Item = &'a SpendRecord>,
    windows_through: Option<NaiveDate>,
) -> BatchSums<'a> {
    let mut t = BatchSums::default();
    for r in new {
        if let Some(key) = r.token_hash.as_deref() {
            t.keys.entry(key).or_default().add(r);
        }
        if let Some(user) = r.user_id.as_deref() {
            t.users.entry(user).or_default().add(r);
        }
        if let Some(team) = r.team_id.as_deref() {
            t.teams.entry(team).or_default().add(r);
        }
        let day = r.started_at.date_naive();
        let fallback = served_by_fallback(r);
        let day_key = (
            day,
            r.token_hash.as_deref().unwrap_or_default(),
            r.user_id.as_deref().unwrap_or_default(),
            r.team_id.as_deref().unwrap_or_default(),
            r.model_group.as_str(),
            r.served_model.as_str(),
        );
        count(t.days.entry(day_key).or_default(), r, fallback);
        let own = r.user_id.as_deref().filter(|u| !u.is_empty());
        for scope in std::iter::once("").chain(own) {
            let (outcome, group) = (r.outcome.as_str(), r.model_group.as_str());
            for key in [(scope, "outcome", day, outcome, 0), (scope, "model", day, group, 0)] {
                count(t.rollups.entry(key).or_default(), r, fallback);
            }
            let bucket = (scope, "latency", day, group, latency_bucket(r.latency_ms));
            t.rollups.entry(bucket).or_default().requests += 1;
        }
        let Some(through) = windows_through else { continue };
        let ranked = [
            ("key", r.token_hash.as_deref()),
            ("user", r.user_id.as_deref()),
            ("team", r.team_id.as_deref()),
            ("model", Some(r.model_group.as_str())),
        ];
        for span in WINDOW_SPANS {
            // A window holds the `span` days ending on `through`: a record dated later (a
            // clock ahead, or a day the windows are not rolled to yet) waits for the rebuild.
            if day <= through - chrono::Duration::days(span) || day > through {
                continue;
            }
            for (dimension, value) in ranked {
                if let Some(value) = value.filter(|v| !v.is_empty()) {
                    count(t.windows.entry((span, dimension, value)).or_default(), r, fallback);
                }
            }
        }
    }
    t
}

/// Rows per multi-row insert so `columns` binds per row stay under `max_binds`.
pub(crate) fn rows_per_statement(max_binds: usize, columns: usize) -> usize {
    (max_binds / columns).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: &str) -> SpendRecord {
        SpendRecord {
            request_id: id.to_owned(),
            client_request_id: None,
            started_at: chrono::DateTime::UNIX_EPOCH,
            ended_at: chrono::DateTime::UNIX_EPOCH,
            token_hash: None,
            user_id: None,
            team_id: None,
            api: "chat_completions".to_owned(),
            requested_model: "m".to_owned(),
            model_group: "m".to_owned(),
            served_model: "p/m".to_owned(),
            provider: "p".to_owned(),
            prompt_tokens: 0,
            completion_tokens: 0,
            cached_tokens: 0,
            cost: 0.0,
            premium_units: 0.0,
            latency_ms: 0.0,
            ttft_ms: None,
            status: 200,
            outcome: "success".to_owned(),
            attempts: json!([]),
            stream: false,
            request_body: None,
            response_body: None,
        }
    }

    #[test]
    fn percentiles_interpolate_inside_buckets() {
        let mut h = vec![0; LATENCY_BOUNDS_MS.len() + 1];
        assert_eq!(latency_percentile(&h, 0.5), None);
        // 10 requests between 1000 and 1500 ms, 10 between 1500 and 2000 ms.
        h[8] = 10;
        h[9] = 10;
        assert_eq!(latency_percentile(&h, 0.5), Some(1500.0));
        assert_eq!(latency_percentile(&h, 0.25), Some(1250.0));
        assert_eq!(latency_percentile(&h, 0.95), Some(1950.0));
        h[LATENCY_BOUNDS_MS.len()] = 80;
        assert_eq!(latency_percentile(&h, 0.95), Some(120_000.0), "open bucket: its floor");
        assert_eq!(latency_bucket(24.9), 0);
        assert_eq!(latency_bucket(25.0), 1);
        assert_eq!(latency_bucket(1e9), LATENCY_BOUNDS_MS.len() as i64);
    }

    #[test]
    fn fallbacks_are_answers_from_another_group() {
        let with = |outcome: &str, attempts| SpendRecord {
            outcome: outcome.to_owned(),
            attempts,
            ..record("a")
        };
        let hop = json!([{"model_group": "a"}, {"model_group": "b"}]);
        assert!(served_by_fallback(&with("success", hop.clone())));
        assert!(!served_by_fallback(&with("upstream_failed", hop)));
        let retry = json!([{"model_group": "a"}, {"model_group": "a"}]);
        assert!(!served_by_fallback(&with("success", retry)));
        assert!(!served_by_fallback(&with("success", json!([]))));
    }

    #[test]
    fn nul_is_replaced_only_when_present() {
        let clean = record("a");
        assert!(matches!(without_nul(&clean), Cow::Borrowed(_)));
        let dirty = SpendRecord {
            requested_model: "gpt\0x".to_owned(),
            request_body: Some(json!({"k\0": ["v\0", 1]})),
            ..record("b")
        };
        let fixed = without_nul(&dirty);
        assert_eq!(fixed.requested_model, "gpt\u{FFFD}x");
        assert_eq!(fixed.request_body, Some(json!({"k\u{FFFD}": ["v\u{FFFD}", 1]})));
    }

    #[test]
    fn duplicates_are_dropped_and_order_is_global() {
        let batch = [record("b"), record("a"), record("b")];
        let ids: Vec<_> = unique_sorted(&batch).iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let nan = SpendRecord { cost: f64::NAN, ..record("n") };
        assert!(check_amounts(&[record("a"), nan]).is_err());
    }
}
