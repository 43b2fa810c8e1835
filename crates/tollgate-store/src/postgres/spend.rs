//! Spend records, rollups, partitions and retention on PostgreSQL.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};

use crate::patch::row_limit;
use crate::rollup::{check_amounts, rows_per_statement, totals, unique_sorted, without_nul};
use crate::rows::{
    DAILY_COLUMN_COUNT, DailyRow, SPEND_COLUMN_COUNT, SpendRow, daily_columns, spend_columns,
};
use crate::{DailySpend, RollupFilter, SpendFilter, SpendRecord, StoreError};

/// PostgreSQL's limit on bind parameters per statement.
const MAX_BINDS: usize = 65_535;

/// Rows deleted per statement when trimming what partition drops leave behind, so a large
/// retention run never holds one huge transaction.
const DELETE_BATCH: i64 = 10_000;

/// One transaction: insert what is new (a conflict on `(request_id, started_at)` means the
/// record was stored by an earlier attempt of this batch or by another process), then add only
/// the new records to spend and rollups. Concurrent inserts of the same record serialise on
/// its primary key, and the loser sees the conflict, so each record is counted once.
pub(super) async fn insert(pool: &PgPool, records: &[SpendRecord]) -> Result<u64, StoreError> {
    check_amounts(records)?;
    let storable: Vec<_> = records.iter().map(without_nul).collect();
    let batch = unique_sorted(storable.iter().map(AsRef::as_ref));
    if batch.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let mut new_ids: HashSet<String> = HashSet::with_capacity(batch.len());
    for chunk in batch.chunks(rows_per_statement(MAX_BINDS, SPEND_COLUMN_COUNT)) {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new(concat!("INSERT INTO spend_logs (", spend_columns!(), ") "));
        qb.push_values(chunk, |mut row, r| {
            row.push_bind(&r.request_id)
                .push_bind(&r.client_request_id)
                .push_bind(r.started_at)
                .push_bind(r.ended_at)
                .push_bind(&r.token_hash)
                .push_bind(&r.user_id)
                .push_bind(&r.team_id)
                .push_bind(&r.api)
                .push_bind(&r.requested_model)
                .push_bind(&r.model_group)
                .push_bind(&r.served_model)
                .push_bind(&r.provider)
                .push_bind(r.prompt_tokens)
                .push_bind(r.completion_tokens)
                .push_bind(r.cached_tokens)
                .push_bind(r.cost)
                .push_bind(r.premium_units)
                .push_bind(r.latency_ms)
                .push_bind(r.ttft_ms)
                .push_bind(r.status)
                .push_bind(&r.outcome)
                .push_bind(&r.attempts)
                .push_bind(r.stream)
                .push_bind(&r.request_body)
                .push_bind(&r.response_body);
        });
        qb.push(" ON CONFLICT (request_id, started_at) DO NOTHING RETURNING request_id");
        let ids: Vec<String> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
        new_ids.extend(ids);
    }
    let new: Vec<&SpendRecord> =
        batch.into_iter().filter(|r| new_ids.contains(&r.request_id)).collect();
    let sums = totals(new.iter().copied());
    for (token_hash, cost) in &sums.keys {
        sqlx::query("UPDATE virtual_keys SET spend = spend + $1 WHERE token_hash = $2")
            .bind(cost)
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
    }
    for (user_id, cost) in &sums.users {
        sqlx::query("UPDATE users SET spend = spend + $1 WHERE user_id = $2")
            .bind(cost)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    for (team_id, cost) in &sums.teams {
        sqlx::query("UPDATE teams SET spend = spend + $1 WHERE team_id = $2")
            .bind(cost)
            .bind(team_id)
            .execute(&mut *tx)
            .await?;
    }
    let days: Vec<_> = sums.days.iter().collect();
    for chunk in days.chunks(rows_per_statement(MAX_BINDS, DAILY_COLUMN_COUNT)) {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new(concat!("INSERT INTO spend_daily (", daily_columns!(), ") "));
        qb.push_values(chunk, |mut row, ((day, token, user, team, group, served), t)| {
            row.push_bind(*day)
                .push_bind(*token)
                .push_bind(*user)
                .push_bind(*team)
                .push_bind(*group)
                .push_bind(*served)
                .push_bind(t.requests)
                .push_bind(t.failures)
                .push_bind(t.prompt_tokens)
                .push_bind(t.completion_tokens)
                .push_bind(t.cost)
                .push_bind(t.premium_units);
        });
        qb.push(
            " ON CONFLICT (day, token_hash, user_id, team_id, model_group, served_model) \
             DO UPDATE SET requests = spend_daily.requests + EXCLUDED.requests, \
             failures = spend_daily.failures + EXCLUDED.failures, \
             prompt_tokens = spend_daily.prompt_tokens + EXCLUDED.prompt_tokens, \
             completion_tokens = spend_daily.completion_tokens + EXCLUDED.completion_tokens, \
             cost = spend_daily.cost + EXCLUDED.cost, \
             premium_units = spend_daily.premium_units + EXCLUDED.premium_units",
        );
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(new.len() as u64)
}

pub(super) async fn logs(
    pool: &PgPool,
    filter: SpendFilter,
) -> Result<Vec<SpendRecord>, StoreError> {
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new(concat!("SELECT ", spend_columns!(), " FROM spend_logs WHERE TRUE"));
    if let Some(token_hash) = filter.token_hash {
        qb.push(" AND token_hash = ").push_bind(token_hash);
    }
    if let Some(user_id) = filter.user_id {
        qb.push(" AND user_id = ").push_bind(user_id);
    }
    if let Some(team_id) = filter.team_id {
        qb.push(" AND team_id = ").push_bind(team_id);
    }
    if let Some(request_id) = filter.request_id {
        qb.push(" AND request_id = ").push_bind(request_id);
    }
    if let Some(client_request_id) = filter.client_request_id {
        qb.push(" AND client_request_id = ").push_bind(client_request_id);
    }
    if let Some(start) = filter.start {
        qb.push(" AND started_at >= ").push_bind(start);
    }
    if let Some(end) = filter.end {
        qb.push(" AND started_at < ").push_bind(end);
    }
    qb.push(" ORDER BY started_at DESC, request_id DESC LIMIT ").push_bind(row_limit(
        filter.limit,
        1000,
        10_000,
    ));
    let rows: Vec<SpendRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub(super) async fn count(pool: &PgPool) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spend_logs").fetch_one(pool).await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

pub(super) async fn daily(
    pool: &PgPool,
    filter: RollupFilter,
) -> Result<Vec<DailySpend>, StoreError> {
    let mut qb: QueryBuilder<Postgres> =
        QueryBuilder::new(concat!("SELECT ", daily_columns!(), " FROM spend_daily WHERE TRUE"));
    if let Some(start) = filter.start {
        qb.push(" AND day >= ").push_bind(start);
    }
    if let Some(end) = filter.end {
        qb.push(" AND day <= ").push_bind(end);
    }
    if let Some(token_hash) = filter.token_hash {
        qb.push(" AND token_hash = ").push_bind(token_hash);
    }
    if let Some(user_id) = filter.user_id {
        qb.push(" AND user_id = ").push_bind(user_id);
    }
    if let Some(team_id) = filter.team_id {
        qb.push(" AND team_id = ").push_bind(team_id);
    }
    qb.push(" ORDER BY day, model_group, served_model, token_hash, user_id, team_id");
    let rows: Vec<DailyRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Drops the monthly partitions that end before `cutoff` (counting their rows first), then
/// deletes older rows left in the cutoff's month and the default partition in bounded batches.
pub(super) async fn delete_before(pool: &PgPool, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    let dropped: i64 = sqlx::query_scalar("SELECT tollgate_drop_spend_partitions_before($1)")
        .bind(cutoff)
        .fetch_one(pool)
        .await?;
    let mut removed = u64::try_from(dropped).unwrap_or_default();
    loop {
        let deleted = sqlx::query(
            "DELETE FROM spend_logs WHERE started_at < $1 AND (request_id, started_at) IN \
             (SELECT request_id, started_at FROM spend_logs WHERE started_at < $1 LIMIT $2)",
        )
        .bind(cutoff)
        .bind(DELETE_BATCH)
        .execute(pool)
        .await?
        .rows_affected();
        removed += deleted;
        if deleted < DELETE_BATCH.unsigned_abs() {
            return Ok(removed);
        }
    }
}

/// Creates the partitions for `now`'s month and the next, so records never need the default
/// partition in normal operation.
pub(super) async fn ensure_partitions(pool: &PgPool, now: DateTime<Utc>) -> Result<(), StoreError> {
    let this_month = NaiveDate::from_ymd_opt(now.year(), now.month(), 1);
    let next_month = this_month.and_then(|m| m.checked_add_months(Months::new(1)));
    let (Some(this_month), Some(next_month)) = (this_month, next_month) else {
        return Err(StoreError::Invalid(format!("no calendar month for {now}")));
    };
    for month in [this_month, next_month] {
        let created: bool = sqlx::query_scalar("SELECT tollgate_ensure_spend_partition($1)")
            .bind(month)
            .fetch_one(pool)
            .await?;
        if created {
            tracing::info!(%month, "created spend_logs partition");
        }
    }
    Ok(())
}
