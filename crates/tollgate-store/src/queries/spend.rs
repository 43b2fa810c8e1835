//! Spend records, their rollups, and retention.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::Pool;

use crate::patch::row_limit;
use crate::rollup::{check_amounts, rows_per_statement, totals, unique_sorted, without_nul};
use crate::rows::{
    DAILY_COLUMN_COUNT, DAILY_COLUMNS, DailyRow, SPEND_COLUMN_COUNT, SPEND_COLUMNS, SpendRow,
};
use crate::sql::DecodeRow;
use crate::sql::{Dialect, Param, Query};
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
    let sums = totals(new.iter().copied());
    for ((table, column), amounts) in CHARGED.iter().zip([&sums.keys, &sums.users, &sums.teams]) {
        for (id, cost) in amounts {
            let mut q = Query::<D>::new("UPDATE ");
            q.push(table).and(" SET spend = spend + ", *cost).push(" WHERE ").push(column);
            q.and(" = ", *id);
            q.execute(&mut tx).await?;
        }
    }
    let days: Vec<_> = sums.days.iter().collect();
    for chunk in days.chunks(rows_per_statement(D::MAX_BINDS, DAILY_COLUMN_COUNT)) {
        let mut q = Query::<D>::new("INSERT INTO spend_daily (");
        q.push(DAILY_COLUMNS).push(") VALUES ");
        for (i, ((day, token, user, team, group, served), t)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.values([
                Param::Date(*day),
                Param::Text(token),
                Param::Text(user),
                Param::Text(team),
                Param::Text(group),
                Param::Text(served),
                Param::Int(t.requests),
                Param::Int(t.failures),
                Param::Int(t.prompt_tokens),
                Param::Int(t.completion_tokens),
                Param::Real(t.cost),
                Param::Real(t.premium_units),
            ]);
        }
        q.push(
            " ON CONFLICT (day, token_hash, user_id, team_id, model_group, served_model) \
             DO UPDATE SET requests = spend_daily.requests + excluded.requests, \
             failures = spend_daily.failures + excluded.failures, \
             prompt_tokens = spend_daily.prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = spend_daily.completion_tokens + excluded.completion_tokens, \
             cost = spend_daily.cost + excluded.cost, \
             premium_units = spend_daily.premium_units + excluded.premium_units",
        );
        q.execute(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(new.len() as u64)
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
type TotalsRow<K> = (K, i64, i64, i64, i64, f64, f64);

/// The sums, in [`TotalsRow`] order. `SUM` of a BIGINT is NUMERIC on PostgreSQL, hence the
/// casts.
const SUMS: &str = "CAST(SUM(requests) AS BIGINT), CAST(SUM(failures) AS BIGINT), \
     CAST(SUM(prompt_tokens) AS BIGINT), CAST(SUM(completion_tokens) AS BIGINT), \
     SUM(cost), SUM(premium_units)";

/// The filter's rollup rows summed per `column`: every value in order, or with `top`, the
/// `top` values with the most requests (then cost, then name), leaving out ''.
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
            q.push(" ORDER BY 2 DESC, 6 DESC, 1").and(" LIMIT ", top);
        }
        None => {
            q.push(" GROUP BY ").push(column).push(" ORDER BY 1");
        }
    }
    let mut conn = pool.acquire().await?;
    let rows: Vec<TotalsRow<K>> = q.all(&mut conn).await?;
    Ok(rows
        .into_iter()
        .map(|(k, requests, failures, prompt_tokens, completion_tokens, cost, premium_units)| {
            let t = SpendTotals {
                requests,
                failures,
                prompt_tokens,
                completion_tokens,
                cost,
                premium_units,
            };
            (k, t)
        })
        .collect())
}

/// Per-day sums and the rankings, as five grouped queries run side by side.
pub(super) async fn summary<D: Dialect>(
    pool: &Pool<D::Db>,
    filter: RollupFilter,
    top: u32,
) -> Result<SpendSummary, StoreError> {
    let top = Some(i64::from(top.clamp(1, 1000)));
    let f = &filter;
    let (days, models, keys, users, teams) = tokio::try_join!(
        sums_by::<D, chrono::NaiveDate>(pool, f, "day", None),
        sums_by::<D, String>(pool, f, "model_group", top),
        sums_by::<D, String>(pool, f, "token_hash", top),
        sums_by::<D, String>(pool, f, "user_id", top),
        sums_by::<D, String>(pool, f, "team_id", top),
    )?;
    Ok(SpendSummary { days, models, keys, users, teams })
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
