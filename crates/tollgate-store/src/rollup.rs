//! Turning a batch of newly stored spend records into spend increments and rollup rows.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde_json::Value;

use crate::{SpendRecord, StoreError};

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

/// Sums for one `spend_daily` row.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct DayTotals {
    pub(crate) requests: i64,
    pub(crate) failures: i64,
    pub(crate) prompt_tokens: i64,
    pub(crate) completion_tokens: i64,
    pub(crate) cost: f64,
    pub(crate) premium_units: f64,
}

/// What the newly stored records add. Ordered maps so every writer updates rows in the same
/// order (no lock cycles) and issues one statement per distinct id.
#[derive(Debug, Default)]
pub(crate) struct SpendTotals<'a> {
    pub(crate) keys: BTreeMap<&'a str, f64>,
    pub(crate) users: BTreeMap<&'a str, f64>,
    pub(crate) teams: BTreeMap<&'a str, f64>,
    pub(crate) days: BTreeMap<DayKey<'a>, DayTotals>,
}

/// Sums the new records per key, user, team and rollup row.
pub(crate) fn totals<'a>(new: impl IntoIterator<Item = &'a SpendRecord>) -> SpendTotals<'a> {
    let mut t = SpendTotals::default();
    for r in new {
        if let Some(key) = r.token_hash.as_deref() {
            *t.keys.entry(key).or_default() += r.cost;
        }
        if let Some(user) = r.user_id.as_deref() {
            *t.users.entry(user).or_default() += r.cost;
        }
        if let Some(team) = r.team_id.as_deref() {
            *t.teams.entry(team).or_default() += r.cost;
        }
        let day_key = (
            r.started_at.date_naive(),
            r.token_hash.as_deref().unwrap_or_default(),
            r.user_id.as_deref().unwrap_or_default(),
            r.team_id.as_deref().unwrap_or_default(),
            r.model_group.as_str(),
            r.served_model.as_str(),
        );
        let day = t.days.entry(day_key).or_default();
        day.requests += 1;
        day.failures += i64::from(r.outcome != "success");
        day.prompt_tokens += r.prompt_tokens;
        day.completion_tokens += r.completion_tokens;
        day.cost += r.cost;
        day.premium_units += r.premium_units;
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
