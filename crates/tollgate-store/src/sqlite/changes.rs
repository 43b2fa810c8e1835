//! The change feed and budget resets on SQLite.

use chrono::{DateTime, Utc};
use sqlx::sqlite::Sqlite;
use sqlx::{QueryBuilder, SqliteConnection, SqlitePool};

use super::{begin_write, ts};
use crate::budget::parse_budget_duration;
use crate::patch::row_limit;
use crate::rows::{ChangeRow, kind_str};
use crate::{Change, EntityKind, StoreError};

/// Appends changes. SQLite runs one write transaction at a time, so `seq` order is commit
/// order without further locking.
pub(super) async fn append(
    conn: &mut SqliteConnection,
    changes: &[(EntityKind, String)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = ts(now);
    // 3 binds per row; 10,000 rows stay under SQLite's 32,766.
    for chunk in changes.chunks(10_000) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO change_log (kind, entity_id, changed_at) ");
        qb.push_values(chunk, |mut row, (kind, id)| {
            row.push_bind(kind_str(*kind)).push_bind(id.as_str()).push_bind(now.as_str());
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn since(
    pool: &SqlitePool,
    after: i64,
    limit: u32,
) -> Result<Vec<Change>, StoreError> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT seq, kind, entity_id FROM change_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )
    .bind(after)
    .bind(row_limit(limit, 1000, 10_000))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(ChangeRow::into_change).collect())
}

pub(super) async fn latest(pool: &SqlitePool) -> Result<i64, StoreError> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM change_log").fetch_one(pool).await?;
    Ok(seq.unwrap_or(0))
}

/// Per table: the distinct periods of due rows, and the reset of due rows with one period.
struct ResetSql {
    kind: EntityKind,
    due_periods: &'static str,
    reset: &'static str,
}

const RESETS: [ResetSql; 3] = [
    ResetSql {
        kind: EntityKind::Key,
        due_periods: "SELECT DISTINCT budget_duration FROM virtual_keys \
                      WHERE budget_reset_at <= ?1 AND budget_duration IS NOT NULL",
        reset: "UPDATE virtual_keys SET spend = 0, budget_reset_at = ?1, updated_at = ?2 \
                WHERE budget_reset_at <= ?2 AND budget_duration = ?3 RETURNING token_hash",
    },
    ResetSql {
        kind: EntityKind::User,
        due_periods: "SELECT DISTINCT budget_duration FROM users \
                      WHERE budget_reset_at <= ?1 AND budget_duration IS NOT NULL",
        reset: "UPDATE users SET spend = 0, budget_reset_at = ?1, updated_at = ?2 \
                WHERE budget_reset_at <= ?2 AND budget_duration = ?3 RETURNING user_id",
    },
    ResetSql {
        kind: EntityKind::Team,
        due_periods: "SELECT DISTINCT budget_duration FROM teams \
                      WHERE budget_reset_at <= ?1 AND budget_duration IS NOT NULL",
        reset: "UPDATE teams SET spend = 0, budget_reset_at = ?1, updated_at = ?2 \
                WHERE budget_reset_at <= ?2 AND budget_duration = ?3 RETURNING team_id",
    },
];

/// One UPDATE per distinct period rather than per row; the write transaction keeps a second
/// process from resetting the same rows again.
pub(super) async fn reset_due_budgets(
    pool: &SqlitePool,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = begin_write(pool).await?;
    let now_text = ts(now);
    let mut changes = Vec::new();
    for sql in &RESETS {
        let periods: Vec<String> =
            sqlx::query_scalar(sql.due_periods).bind(&now_text).fetch_all(&mut *tx).await?;
        for period in periods {
            let next = match parse_budget_duration(&period) {
                Ok(d) => now + d,
                Err(e) => {
                    tracing::warn!(kind = kind_str(sql.kind), error = %e, "skipping budget reset");
                    continue;
                }
            };
            let ids: Vec<String> = sqlx::query_scalar(sql.reset)
                .bind(ts(next))
                .bind(&now_text)
                .bind(&period)
                .fetch_all(&mut *tx)
                .await?;
            changes.extend(ids.into_iter().map(|id| (sql.kind, id)));
        }
    }
    append(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(changes.len() as u64)
}
