//! Spend records, rollups and retention on SQLite.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::sqlite::Sqlite;
use sqlx::{QueryBuilder, SqlitePool};

use super::{begin_write, ts};
use crate::patch::row_limit;
use crate::rollup::{check_amounts, rows_per_statement, totals, unique_sorted};
use crate::rows::{
    DAILY_COLUMN_COUNT, DailyRow, SPEND_COLUMN_COUNT, SpendRow, daily_columns, spend_columns,
};
use crate::{DailySpend, RollupFilter, SpendFilter, SpendRecord, StoreError};

/// SQLite's limit on bind parameters per statement (since 3.32).
const MAX_BINDS: usize = 32_766;

/// Rows deleted per statement, so retention never holds the write lock for long.
const DELETE_BATCH: i64 = 10_000;

/// One write transaction: insert what is new (a conflict on `request_id` means an earlier
/// attempt or another process stored it), then add only the new records to spend and rollups.
/// Writers are serialised by SQLite, so each record is counted once.
pub(super) async fn insert(pool: &SqlitePool, records: &[SpendRecord]) -> Result<u64, StoreError> {
    check_amounts(records)?;
    let batch = unique_sorted(records);
    if batch.is_empty() {
        return Ok(0);
    }
    let mut tx = begin_write(pool).await?;
    let mut new_ids: HashSet<String> = HashSet::with_capacity(batch.len());
    for chunk in batch.chunks(rows_per_statement(MAX_BINDS, SPEND_COLUMN_COUNT)) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new(concat!("INSERT INTO spend_logs (", spend_columns!(), ") "));
        qb.push_values(chunk, |mut row, r| {
            row.push_bind(r.request_id.as_str())
                .push_bind(r.client_request_id.as_deref())
                .push_bind(ts(r.started_at))
                .push_bind(ts(r.ended_at))
                .push_bind(r.token_hash.as_deref())
                .push_bind(r.user_id.as_deref())
                .push_bind(r.team_id.as_deref())
                .push_bind(r.api.as_str())
                .push_bind(r.requested_model.as_str())
                .push_bind(r.model_group.as_str())
                .push_bind(r.served_model.as_str())
                .push_bind(r.provider.as_str())
                .push_bind(r.prompt_tokens)
                .push_bind(r.completion_tokens)
                .push_bind(r.cached_tokens)
                .push_bind(r.cost)
                .push_bind(r.premium_units)
                .push_bind(r.latency_ms)
                .push_bind(r.ttft_ms)
                .push_bind(r.status)
                .push_bind(r.outcome.as_str())
                .push_bind(&r.attempts)
                .push_bind(r.stream)
                .push_bind(r.request_body.as_ref())
                .push_bind(r.response_body.as_ref());
        });
        qb.push(" ON CONFLICT (request_id) DO NOTHING RETURNING request_id");
        let ids: Vec<String> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
        new_ids.extend(ids);
    }
    let new: Vec<&SpendRecord> =
        batch.into_iter().filter(|r| new_ids.contains(&r.request_id)).collect();
    let sums = totals(new.iter().copied());
    for (token_hash, cost) in &sums.keys {
        sqlx::query("UPDATE virtual_keys SET spend = spend + ?1 WHERE token_hash = ?2")
            .bind(cost)
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
    }
    for (user_id, cost) in &sums.users {
        sqlx::query("UPDATE users SET spend = spend + ?1 WHERE user_id = ?2")
            .bind(cost)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    for (team_id, cost) in &sums.teams {
        sqlx::query("UPDATE teams SET spend = spend + ?1 WHERE team_id = ?2")
            .bind(cost)
            .bind(team_id)
            .execute(&mut *tx)
            .await?;
    }
    let days: Vec<_> = sums.days.iter().collect();
    for chunk in days.chunks(rows_per_statement(MAX_BINDS, DAILY_COLUMN_COUNT)) {
        let mut qb: QueryBuilder<Sqlite> =
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
             DO UPDATE SET requests = requests + excluded.requests, \
             failures = failures + excluded.failures, \
             prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
             completion_tokens = completion_tokens + excluded.completion_tokens, \
             cost = cost + excluded.cost, \
             premium_units = premium_units + excluded.premium_units",
        );
        qb.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(new.len() as u64)
}

pub(super) async fn logs(
    pool: &SqlitePool,
    filter: SpendFilter,
) -> Result<Vec<SpendRecord>, StoreError> {
    let mut qb: QueryBuilder<Sqlite> =
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
    // Stored times are fixed-width UTC text, so comparing text compares instants.
    if let Some(start) = filter.start {
        qb.push(" AND started_at >= ").push_bind(ts(start));
    }
    if let Some(end) = filter.end {
        qb.push(" AND started_at < ").push_bind(ts(end));
    }
    qb.push(" ORDER BY started_at DESC, request_id DESC LIMIT ").push_bind(row_limit(
        filter.limit,
        1000,
        10_000,
    ));
    let rows: Vec<SpendRow> = qb.build_query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

pub(super) async fn count(pool: &SqlitePool) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spend_logs").fetch_one(pool).await?;
    Ok(u64::try_from(n).unwrap_or_default())
}

pub(super) async fn daily(
    pool: &SqlitePool,
    filter: RollupFilter,
) -> Result<Vec<DailySpend>, StoreError> {
    let mut qb: QueryBuilder<Sqlite> =
        QueryBuilder::new(concat!("SELECT ", daily_columns!(), " FROM spend_daily WHERE TRUE"));
    // Days are `YYYY-MM-DD` text, which sorts as dates do.
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

/// Deletes records that started before `cutoff`, in batches, each its own short write
/// transaction so request-path writers are never blocked for long.
pub(super) async fn delete_before(
    pool: &SqlitePool,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let cutoff = ts(cutoff);
    let mut removed = 0;
    loop {
        let deleted = sqlx::query(
            "DELETE FROM spend_logs WHERE rowid IN \
             (SELECT rowid FROM spend_logs WHERE started_at < ?1 LIMIT ?2)",
        )
        .bind(&cutoff)
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
