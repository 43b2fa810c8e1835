//! Spend records, their rollups, and retention.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Pool;

use crate::patch::row_limit;
use crate::rollup::{
    LATENCY_BOUNDS_MS, WINDOW_SPANS, check_amounts, rows_per_statement, totals, unique_sorted,
    without_nul,
};
use crate::rows::{DAILY_COLUMNS, DailyRow, SPEND_COLUMN_COUNT, SPEND_COLUMNS, SpendRow};
use crate::sql::DecodeRow;
use crate::sql::{Conn, Dialect, Param, Query};
use crate::{
    DailySpend, RollupFilter, SpendFilter, SpendRecord, SpendSummary, SpendTotals, StoreError,
};

/// Rows deleted per statement when trimming old records, so a large retention run never
/// holds one huge transaction (or SQLite's write lock for long).
const DELETE_BATCH: i64 = 10_000;

/// The budgeted tables a record's cost is added to: table, id column.
const CHARGED: [(&str, &str); 3] =
    [("virtual_keys", "token_hash"), ("users", "user_id"), ("teams", "team_id")];

fn spend_row(r: &SpendRecord) -> [Param<'_>; SPEND_COLUMN_COUNT] {
    [
        Param::from(&r.request_id),
        Param::from(&r.client_request_id),
        Param::from(r.started_at),
        Param::from(r.ended_at),
        Param::from(&r.token_hash),
        Param::from(&r.user_id),
        Param::from(&r.team_id),
        Param::from(&r.api),
        Param::from(&r.requested_model),
        Param::from(&r.model_group),
        Param::from(&r.served_model),
        Param::from(&r.provider),
        Param::from(r.prompt_tokens),
        Param::from(r.completion_tokens),
        Param::from(r.cached_tokens),
        Param::from(r.cost),
        Param::from(r.premium_units),
        Param::from(r.latency_ms),
        Param::from(r.ttft_ms),
        Param::from(r.status),
        Param::from(&r.outcome),
        Param::from(&r.attempts),
        Param::from(r.stream),
        Param::from(&r.request_body),
        Param::from(&r.response_body),
    ]
}

/// One write transaction: insert what is new (a conflict on the record's key means an earlier
/// attempt of this batch or another process stored it), then add only the new records to
/// spend and rollups. Concurrent inserts of one record serialise on its key and the loser sees
/// the conflict, so each record is counted once.
pub(super) async fn insert<D: Dialect>(
    pool: &Pool<D::Db>,
    records: &[SpendRecord],
) -> Result<u64, StoreError> {
    check_amounts(records)?;
    let cleaned: Vec<_>;
    let batch = if D::REFUSES_NUL {
        cleaned = records.iter().map(without_nul).collect();
        unique_sorted(cleaned.iter().map(AsRef::as_ref))
    } else {
        unique_sorted(records)
    };
    if batch.is_empty() {
        return Ok(0);
    }
    let mut tx = D::begin_write(pool).await?;
    // First, so a rebuild of the windows (which holds this row exclusively) waits for this
    // insert or this insert for it, never interleaving.
    let windows_through = windows_through::<D>(&mut tx, D::SHARE_ROWS).await?;
    let mut new_ids: HashSet<String> = HashSet::with_capacity(batch.len());
    for chunk in batch.chunks(rows_per_statement(D::MAX_BINDS, SPEND_COLUMN_COUNT)) {
        let mut q = Query::<D>::new("INSERT INTO spend_logs (");
        q.push(SPEND_COLUMNS).push(") VALUES ");
        for (i, r) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.values(spend_row(r));
        }
        q.push(" ON CONFLICT ").push(D::SPEND_KEY).push(" DO NOTHING RETURNING request_id");
        let ids: Vec<(String,)> = q.all(&mut tx).await?;
        new_ids.extend(ids.into_iter().map(|(id,)| id));
    }
    let new: Vec<&SpendRecord> =
        batch.into_iter().filter(|r| new_ids.contains(&r.request_id)).collect();
    let sums = totals(new.iter().copied(), windows_through);
    // Taken as late as it can be, so the stamp trails the commit that makes it visible by as
    // little as possible (other processes look back a few seconds from their last poll).
    let now = Utc::now();
    for ((table, column), amounts) in CHARGED.iter().zip([&sums.keys, &sums.users, &sums.teams]) {
        for (id, charge) in amounts {
            let mut q = Query::<D>::new("UPDATE ");
            q.push(table)
                .and(" SET spend = spend + ", charge.cost)
                .and(", premium_spend = premium_spend + ", charge.premium_units);
            super::stamp_spend_change(&mut q, now);
            q.push(" WHERE ").push(column).and(" = ", *id);
            q.execute(&mut tx).await?;
        }
    }
    let days = sums.days.iter().map(|((day, token, user, team, group, served), t)| {
        let key = [Param::Date(*day), (*token).into(), (*user).into(), (*team).into()];
        (key.into_iter().chain([(*group).into(), (*served).into()]), t)
    });
    add_sums::<D, _>(&mut tx, "spend_daily", DAILY_KEY, days).await?;
    let rollups = sums.rollups.iter().map(|((scope, dimension, day, value, bucket), t)| {
        let key = [(*scope).into(), (*dimension).into(), Param::Date(*day), (*value).into()];
        (key.into_iter().chain([Param::Int(*bucket)]), t)
    });
    add_sums::<D, _>(&mut tx, "spend_rollup", ROLLUP_KEY, rollups).await?;
    let windows = sums.windows.iter().map(|((span, dimension, value), t)| {
        ([Param::Int(*span), (*dimension).into(), (*value).into()], t)
    });
    add_sums::<D, _>(&mut tx, "spend_window", "span, dimension, value", windows).await?;
    tx.commit().await?;
    Ok(new.len() as u64)
}

/// The primary key of `spend_daily`.
const DAILY_KEY: &str = "day, token_hash, user_id, team_id, model_group, served_model";

/// The primary key of `spend_rollup`.
const ROLLUP_KEY: &str = "scope, dimension, day, value, bucket";

/// The sums every rollup table keeps, in [`SpendTotals`] order.
const SUM_COLUMNS: [&str; 7] = [
    "requests",
    "failures",
    "fallbacks",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "premium_units",
];

fn sum_params(t: &SpendTotals) -> [Param<'static>; 7] {
    [
        Param::Int(t.requests),
        Param::Int(t.failures),
        Param::Int(t.fallbacks),
        Param::Int(t.prompt_tokens),
        Param::Int(t.completion_tokens),
        Param::Real(t.cost),
        Param::Real(t.premium_units),
    ]
}

/// Adds `rows` (each its key's values, in `key` order, and the sums) to the rollup `table`:
/// new rows are inserted, existing ones summed into. Callers pass each key once (the sums
/// are already grouped), as one statement may not update a row twice.
async fn add_sums<'a, D: Dialect, K>(
    tx: &mut Conn<D>,
    table: &str,
    key: &str,
    rows: impl IntoIterator<Item = (K, &'a SpendTotals)>,
) -> Result<(), StoreError>
where
    K: IntoIterator<Item = Param<'a>>,
{
    let key_count = key.split(',').count();
    let rows: Vec<_> = rows.into_iter().collect();
    let sums = SUM_COLUMNS.join(", ");
    let add = SUM_COLUMNS
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let per_statement = rows_per_statement(D::MAX_BINDS, key_count + SUM_COLUMNS.len());
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut q = Query::<D>::new("INSERT INTO ");
        q.push(table).push(" (").push(key).push(", ").push(&sums).push(") VALUES ");
        for (i, (key, t)) in rows.by_ref().take(per_statement).enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.values(key.into_iter().chain(sum_params(t)));
        }
        q.push(" ON CONFLICT (").push(key).push(") DO UPDATE SET ").push(&add);
        q.execute(tx).await?;
    }
    Ok(())
}

/// The day the running windows end on, `None` before they are first built; read with `lock`.
async fn windows_through<D: Dialect>(
    conn: &mut Conn<D>,
    lock: &str,
) -> Result<Option<NaiveDate>, StoreError> {
    let mut q = Query::<D>::new("SELECT through FROM spend_window_state WHERE id = 1");
    q.push(lock);
    let row: Option<(Option<NaiveDate>,)> = q.optional(conn).await?;
    Ok(row.and_then(|(d,)| d))
}

pub(super) async fn logs<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: SpendFilter,
) -> Result<Vec<SpendRecord>, StoreError> {
    let mut q = Query::<D>::new("SELECT ");
    q.push(SPEND_COLUMNS).push(" FROM spend_logs WHERE TRUE");
    for (column, value) in [
        (" AND token_hash = ", &filter.token_hash),
        (" AND user_id = ", &filter.user_id),
        (" AND team_id = ", &filter.team_id),
        (" AND request_id = ", &filter.request_id),
        (" AND client_request_id = ", &filter.client_request_id),
    ] {
        if let Some(v) = value {
            q.and(column, v);
        }
    }
    if let Some(start) = filter.start {
        q.and(" AND started_at >= ", start);
    }
    if let Some(end) = filter.end {
        q.and(" AND started_at < ", end);
    }
    if let Some(model) = &filter.model {
        q.and(" AND (requested_model = ", model)
            .and(" OR model_group = ", model)
            .and(" OR served_model = ", model)
            .push(")");
    }
    if !filter.outcomes.is_empty() {
        q.push(" AND ").is_in("outcome", &filter.outcomes);
    }
    match filter.status {
        Some(s) if s.min == s.max => {
            q.and(" AND status = ", s.min);
        }
        Some(s) => {
            q.and(" AND status >= ", s.min).and(" AND status <= ", s.max);
        }
        None => {}
    }
    // A pair compared as a row: records of the cursor's own microsecond that sort after it
    // (smaller request ids) are on this page, not lost.
    if let Some(c) = &filter.before {
        q.and(" AND (started_at, request_id) < (", c.started_at).and(", ", &c.request_id).push(")");
    }
    q.push(" ORDER BY started_at DESC, request_id DESC")
        .and(" LIMIT ", row_limit(filter.limit, 1000, 10_000));
    let mut conn = pool.acquire().await?;
    // Whether walking back in time or an index of the filtered value is quicker depends on
    // how common the value is, so each read is planned for its own values.
    let rows: Vec<SpendRow> = q.all_planned(&mut conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub(super) async fn count<D: Dialect>(pool: &Pool<D::Db>) -> Result<u64, StoreError> {
    let mut conn = pool.acquire().await?;
    let (n,): (i64,) = Query::<D>::new("SELECT COUNT(*) FROM spend_logs").one(&mut conn).await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// The conditions of a rollup filter, after a `WHERE TRUE`.
fn rollup_where<'a, D: Dialect>(q: &mut Query<'a, D>, filter: &'a RollupFilter) {
    if let Some(start) = filter.start {
        q.and(" AND day >= ", start);
    }
    if let Some(end) = filter.end {
        q.and(" AND day <= ", end);
    }
    for (column, value) in [
        (" AND token_hash = ", &filter.token_hash),
        (" AND user_id = ", &filter.user_id),
        (" AND team_id = ", &filter.team_id),
    ] {
        if let Some(v) = value {
            q.and(column, v);
        }
    }
}

pub(super) async fn daily<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: RollupFilter,
) -> Result<Vec<DailySpend>, StoreError> {
    let mut q = Query::<D>::new("SELECT ");
    q.push(DAILY_COLUMNS).push(" FROM spend_daily WHERE TRUE");
    rollup_where(&mut q, &filter);
    q.push(" ORDER BY day, model_group, served_model, token_hash, user_id, team_id");
    let mut conn = pool.acquire().await?;
    let rows: Vec<DailyRow> = q.all(&mut conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// A rollup total as the database returns it: the grouped column, then the sums.
type TotalsRow<K> = (K, i64, i64, i64, i64, i64, f64, f64);

/// The same with two grouped columns.
type TotalsRow2<K, L> = (K, L, i64, i64, i64, i64, i64, f64, f64);

/// The sums, in [`SpendTotals`] order. `SUM` of a BIGINT is NUMERIC on PostgreSQL, hence the
/// casts.
const SUMS: &str = "CAST(SUM(requests) AS BIGINT), CAST(SUM(failures) AS BIGINT), \
     CAST(SUM(fallbacks) AS BIGINT), CAST(SUM(prompt_tokens) AS BIGINT), \
     CAST(SUM(completion_tokens) AS BIGINT), SUM(cost), SUM(premium_units)";

fn spend_totals(
    (requests, failures, fallbacks, prompt_tokens, completion_tokens, cost, premium_units): (
        i64,
        i64,
        i64,
        i64,
        i64,
        f64,
        f64,
    ),
) -> SpendTotals {
    SpendTotals {
        requests,
        failures,
        fallbacks,
        prompt_tokens,
        completion_tokens,
        cost,
        premium_units,
    }
}

/// The filter's `spend_daily` rows summed per `column`: every value in order, or with
/// `top`, the `top` values with the most requests (then cost, then name), leaving out ''.
async fn sums_by<D: Dialect, K>(
    pool: &Pool<D::Db>,
    filter: &RollupFilter,
    column: &str,
    top: Option<i64>,
) -> Result<Vec<(K, SpendTotals)>, StoreError>
where
    TotalsRow<K>: DecodeRow,
{
    let mut q = Query::<D>::new("SELECT ");
    q.push(column).push(", ").push(SUMS).push(" FROM spend_daily WHERE TRUE");
    rollup_where(&mut q, filter);
    match top {
        Some(top) => {
            q.push(" AND ").push(column).push(" <> ''").push(" GROUP BY ").push(column);
            q.push(" ORDER BY 2 DESC, 7 DESC, 1").and(" LIMIT ", top);
        }
        None => {
            q.push(" GROUP BY ").push(column).push(" ORDER BY 1");
        }
    }
    keyed(pool, q).await
}

/// Runs a query of [`TotalsRow`]s: each key with its sums.
async fn keyed<D: Dialect, K>(
    pool: &Pool<D::Db>,
    q: Query<'_, D>,
) -> Result<Vec<(K, SpendTotals)>, StoreError>
where
    TotalsRow<K>: DecodeRow,
{
    let mut conn = pool.acquire().await?;
    let rows: Vec<TotalsRow<K>> = q.all(&mut conn).await?;
    Ok(rows
        .into_iter()
        .map(|(k, a, b, c, d, e, f, g)| (k, spend_totals((a, b, c, d, e, f, g))))
        .collect())
}

/// Runs a query of [`TotalsRow2`]s by day and value: each with its sums.
async fn per_day<D: Dialect>(
    pool: &Pool<D::Db>,
    q: Query<'_, D>,
) -> Result<Vec<(NaiveDate, String, SpendTotals)>, StoreError> {
    let mut conn = pool.acquire().await?;
    let rows: Vec<TotalsRow2<NaiveDate, String>> = q.all(&mut conn).await?;
    Ok(rows
        .into_iter()
        .map(|(day, v, a, b, c, d, e, f, g)| (day, v, spend_totals((a, b, c, d, e, f, g))))
        .collect())
}

/// `spend_rollup`'s rows of one dimension and scope over the filter's days, per day and
/// value.
async fn rollup_rows<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: &RollupFilter,
    scope: &str,
    dimension: &str,
) -> Result<Vec<(NaiveDate, String, SpendTotals)>, StoreError> {
    let days = days_of(filter);
    let mut q = Query::<D>::new("SELECT day, value, ");
    q.push(SUMS).and(" FROM spend_rollup WHERE scope = ", scope);
    q.and(" AND dimension = ", dimension);
    rollup_where(&mut q, &days);
    q.push(" GROUP BY day, value ORDER BY day, value");
    per_day(pool, q).await
}

/// The filter's `spend_daily` rows summed per day and model group.
async fn daily_models<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: &RollupFilter,
) -> Result<Vec<(NaiveDate, String, SpendTotals)>, StoreError> {
    let mut q = Query::<D>::new("SELECT day, model_group, ");
    q.push(SUMS).push(" FROM spend_daily WHERE TRUE");
    rollup_where(&mut q, filter);
    q.push(" GROUP BY day, model_group ORDER BY day, model_group");
    per_day(pool, q).await
}

/// The `top` values of a ranking `dimension` from the running window of `span` days.
async fn window_top<D: Dialect>(
    pool: &Pool<D::Db>,
    span: i64,
    dimension: &str,
    top: i64,
) -> Result<Vec<(String, SpendTotals)>, StoreError> {
    let mut q = Query::<D>::new("SELECT value, ");
    q.push(&SUM_COLUMNS.join(", ")).and(" FROM spend_window WHERE span = ", span);
    q.and(" AND dimension = ", dimension);
    q.push(" ORDER BY requests DESC, cost DESC, value").and(" LIMIT ", top);
    keyed(pool, q).await
}

/// `CASE` giving a record's latency bucket ([`LATENCY_BOUNDS_MS`]).
fn latency_bucket_sql() -> String {
    let mut sql = String::from("CAST(CASE");
    for (i, bound) in LATENCY_BOUNDS_MS.iter().enumerate() {
        sql.push_str(&format!(" WHEN latency_ms < {bound} THEN {i}"));
    }
    sql.push_str(&format!(" ELSE {} END AS BIGINT)", LATENCY_BOUNDS_MS.len()));
    sql
}

/// Requests per model group and latency bucket over the filter's days: from `spend_rollup`
/// for everyone or one user, from the records themselves (through the key or team index)
/// for one key or team, which the rollup does not split by.
async fn latency_buckets<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: &RollupFilter,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    let days = days_of(filter);
    let mut q;
    if let Some(scope) = rollup_scope(filter) {
        q = Query::<D>::new("SELECT value, CAST(bucket AS BIGINT), CAST(SUM(requests) AS BIGINT)");
        q.and(" FROM spend_rollup WHERE scope = ", scope);
        q.push(" AND dimension = 'latency'");
        rollup_where(&mut q, &days);
        q.push(" GROUP BY value, bucket");
    } else {
        q = Query::<D>::new("SELECT model_group, ");
        q.push(&latency_bucket_sql()).push(", COUNT(*) FROM spend_logs WHERE TRUE");
        records_where(&mut q, filter);
        q.push(" GROUP BY 1, 2");
    }
    q.push(" ORDER BY 1, 2");
    let mut conn = pool.acquire().await?;
    Ok(q.all(&mut conn).await?)
}

/// Requests per day and outcome of one key, user or team, from its records.
async fn record_outcomes<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: &RollupFilter,
) -> Result<Vec<(NaiveDate, String, i64)>, StoreError> {
    let mut q = Query::<D>::new("SELECT ");
    q.push(D::DAY_OF_STARTED_AT).push(", outcome, COUNT(*) FROM spend_logs WHERE TRUE");
    records_where(&mut q, filter);
    q.push(" GROUP BY 1, 2 ORDER BY 1, 2");
    let mut conn = pool.acquire().await?;
    Ok(q.all(&mut conn).await?)
}

/// The conditions of a rollup filter on `spend_logs`, after a `WHERE TRUE`.
fn records_where<'a, D: Dialect>(q: &mut Query<'a, D>, filter: &'a RollupFilter) {
    let midnight = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc();
    if let Some(start) = filter.start {
        q.and(" AND started_at >= ", midnight(start));
    }
    if let Some(end) = filter.end.and_then(|d| d.succ_opt()) {
        q.and(" AND started_at < ", midnight(end));
    }
    for (column, value) in [
        (" AND token_hash = ", &filter.token_hash),
        (" AND user_id = ", &filter.user_id),
        (" AND team_id = ", &filter.team_id),
    ] {
        if let Some(v) = value {
            q.and(column, v);
        }
    }
}

/// Whether a filter is only a range of days (the whole gateway's spend).
fn is_everyone(filter: &RollupFilter) -> bool {
    filter.token_hash.is_none() && filter.user_id.is_none() && filter.team_id.is_none()
}

/// The `spend_rollup` scope a filter reads: '' for everyone, the user's id for one user;
/// `None` for a key or team, which it does not split by.
fn rollup_scope(filter: &RollupFilter) -> Option<&str> {
    if filter.token_hash.is_some() || filter.team_id.is_some() {
        return None;
    }
    Some(filter.user_id.as_deref().unwrap_or_default())
}

/// The filter's days alone.
fn days_of(filter: &RollupFilter) -> RollupFilter {
    RollupFilter { start: filter.start, end: filter.end, ..Default::default() }
}

/// The busiest first `top`: most requests, then most cost, then name.
fn ranked(totals: BTreeMap<String, SpendTotals>, top: i64) -> Vec<(String, SpendTotals)> {
    let mut v: Vec<_> = totals.into_iter().filter(|(k, _)| !k.is_empty()).collect();
    v.sort_by(|(a, x), (b, y)| {
        y.requests.cmp(&x.requests).then(y.cost.total_cmp(&x.cost)).then_with(|| a.cmp(b))
    });
    v.truncate(usize::try_from(top).unwrap_or(usize::MAX));
    v
}

/// A dashboard's sums over a range of days. For the whole gateway or one user they come from
/// the narrow rollups (that user's scope), and the whole gateway's rankings from the running
/// windows when the range is one of theirs (ending today, as rebuilt): a few hundred rows
/// whatever the traffic. A user's rankings come from `spend_daily` through its user index;
/// for one key or team, everything comes from `spend_daily` and that one's records.
pub(super) async fn summary<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: RollupFilter,
    top: u32,
) -> Result<SpendSummary, StoreError> {
    let top = i64::from(top.clamp(1, 1000));
    let f = &filter;
    let (days, outcomes, model_days) = if let Some(scope) = rollup_scope(f) {
        let (outcomes, model_days) = tokio::try_join!(
            rollup_rows::<D>(pool, f, scope, "outcome"),
            rollup_rows::<D>(pool, f, scope, "model")
        )?;
        let mut days: BTreeMap<NaiveDate, SpendTotals> = BTreeMap::new();
        for (day, _, t) in &outcomes {
            days.entry(*day).or_default().add(t);
        }
        let outcomes = outcomes.into_iter().map(|(d, o, t)| (d, o, t.requests)).collect();
        (days.into_iter().collect(), outcomes, model_days)
    } else {
        tokio::try_join!(
            sums_by::<D, NaiveDate>(pool, f, "day", None),
            record_outcomes::<D>(pool, f),
            daily_models::<D>(pool, f),
        )?
    };
    let mut models: BTreeMap<String, SpendTotals> = BTreeMap::new();
    for (_, m, t) in &model_days {
        models.entry(m.clone()).or_default().add(t);
    }
    let span = match (f.start, f.end) {
        (Some(start), Some(end)) => Some(((end - start).num_days() + 1, end)),
        _ => None,
    };
    let mut conn = pool.acquire().await?;
    let through = windows_through::<D>(&mut conn, "").await?;
    drop(conn);
    let windowed = span.filter(|(span, end)| {
        is_everyone(f) && WINDOW_SPANS.contains(span) && through == Some(*end)
    });
    let latency = latency_buckets::<D>(pool, f);
    let (latency, keys, users, teams) = match windowed {
        Some((span, _)) => tokio::try_join!(
            latency,
            window_top::<D>(pool, span, "key", top),
            window_top::<D>(pool, span, "user", top),
            window_top::<D>(pool, span, "team", top),
        )?,
        None => tokio::try_join!(
            latency,
            sums_by::<D, String>(pool, f, "token_hash", Some(top)),
            sums_by::<D, String>(pool, f, "user_id", Some(top)),
            sums_by::<D, String>(pool, f, "team_id", Some(top)),
        )?,
    };
    let mut histograms: Vec<(String, Vec<i64>)> = Vec::new();
    for (model, bucket, n) in latency {
        if histograms.last().is_none_or(|(m, _)| *m != model) {
            histograms.push((model, vec![0; LATENCY_BOUNDS_MS.len() + 1]));
        }
        let slot = histograms
            .last_mut()
            .zip(usize::try_from(bucket).ok())
            .and_then(|((_, h), b)| h.get_mut(b));
        if let Some(slot) = slot {
            *slot += n;
        }
    }
    Ok(SpendSummary {
        days,
        outcomes,
        model_days,
        latency: histograms,
        models: ranked(models, top),
        keys,
        users,
        teams,
    })
}

/// Rebuilds the running windows to end on `today` unless they already end there or later,
/// holding `spend_window_state` exclusively so no insert interleaves; returns whether it
/// rebuilt. Run by every process's upkeep: the first to see a new day does it, the others
/// find it done.
pub(super) async fn roll_windows<D: Dialect>(
    pool: &Pool<D::Db>,
    today: NaiveDate,
) -> Result<bool, StoreError> {
    // Only forwards: a process whose clock is behind another's finds the windows already on
    // (or past) its today and leaves them.
    let current = |through: Option<NaiveDate>| through.is_some_and(|t| t >= today);
    let mut conn = pool.acquire().await?;
    if current(windows_through::<D>(&mut conn, "").await?) {
        return Ok(false);
    }
    drop(conn);
    let mut tx = D::begin_write(pool).await?;
    if current(windows_through::<D>(&mut tx, D::LOCK_ROWS).await?) {
        return Ok(false);
    }
    Query::<D>::new("DELETE FROM spend_window").execute(&mut tx).await?;
    let sums = SUM_COLUMNS.map(|c| format!("SUM({c})")).join(", ");
    for span in WINDOW_SPANS {
        let first = today - chrono::Duration::days(span - 1);
        for (dimension, column) in [
            ("key", "token_hash"),
            ("user", "user_id"),
            ("team", "team_id"),
            ("model", "model_group"),
        ] {
            let mut q = Query::<D>::new("INSERT INTO spend_window (span, dimension, value, ");
            q.push(&SUM_COLUMNS.join(", ")).push(") SELECT ").bind(span).push(", ");
            q.bind(dimension).push(", ").push(column).push(", ").push(&sums);
            q.and(" FROM spend_daily WHERE day >= ", first).and(" AND day <= ", today);
            q.push(" AND ").push(column).push(" <> '' GROUP BY ").push(column);
            q.execute(&mut tx).await?;
        }
    }
    let mut q = Query::<D>::new("UPDATE spend_window_state SET through = ");
    q.bind(today).push(" WHERE id = 1");
    q.execute(&mut tx).await?;
    tx.commit().await?;
    Ok(true)
}

/// Drops whole partitions that end before `cutoff` where there are any, then deletes older
/// rows left (in the cutoff's month, the default partition, or an unpartitioned table) in
/// bounded batches, each its own short transaction.
pub(super) async fn delete_before<D: Dialect>(
    pool: &Pool<D::Db>,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut removed = D::drop_spend_partitions(pool, cutoff).await?;
    loop {
        let mut q = Query::<D>::new("DELETE FROM spend_logs WHERE started_at < ");
        q.bind(cutoff)
            .push(" AND (request_id, started_at) IN (SELECT request_id, started_at FROM spend_logs")
            .and(" WHERE started_at < ", cutoff)
            .and(" LIMIT ", DELETE_BATCH)
            .push(")");
        let mut tx = D::begin_write(pool).await?;
        let deleted = q.execute(&mut tx).await?;
        tx.commit().await?;
        removed += deleted;
        if deleted < DELETE_BATCH.unsigned_abs() {
            return Ok(removed);
        }
    }
}
