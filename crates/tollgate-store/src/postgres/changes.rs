//! The change feed and budget resets on PostgreSQL.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};

use crate::budget::parse_budget_duration;
use crate::patch::row_limit;
use crate::rows::{ChangeRow, kind_str};
use crate::{Change, EntityKind, StoreError};

/// Advisory lock that orders change-feed writers ("tollgate" in ASCII).
const CHANGE_FEED_LOCK: i64 = 0x746f_6c6c_6761_7465;

/// Appends changes; call it last in a transaction. Sequence numbers are handed out at insert
/// but become visible at commit, so two writers could commit out of order and a reader that
/// already saw the higher seq would never see the lower one. Holding a transaction-scoped lock
/// from here to commit makes seq order commit order.
pub(super) async fn append(
    conn: &mut PgConnection,
    changes: &[(EntityKind, String)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHANGE_FEED_LOCK)
        .execute(&mut *conn)
        .await?;
    // 3 binds per row; far below PostgreSQL's 65535.
    for chunk in changes.chunks(10_000) {
        let mut qb: QueryBuilder<Postgres> =
            QueryBuilder::new("INSERT INTO change_log (kind, entity_id, changed_at) ");
        qb.push_values(chunk, |mut row, (kind, id)| {
            row.push_bind(kind_str(*kind)).push_bind(id).push_bind(now);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn since(
    pool: &PgPool,
    after: i64,
    limit: u32,
) -> Result<Vec<Change>, StoreError> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT seq, kind, entity_id FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(row_limit(limit, 1000, 10_000))
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().filter_map(ChangeRow::into_change).collect())
}

pub(super) async fn latest(pool: &PgPool) -> Result<i64, StoreError> {
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
                      WHERE budget_reset_at <= $1 AND budget_duration IS NOT NULL",
        reset: "UPDATE virtual_keys SET spend = 0, budget_reset_at = $1, updated_at = $2 \
                WHERE budget_reset_at <= $2 AND budget_duration = $3 RETURNING token_hash",
    },
    ResetSql {
        kind: EntityKind::User,
        due_periods: "SELECT DISTINCT budget_duration FROM users \
                      WHERE budget_reset_at <= $1 AND budget_duration IS NOT NULL",
        reset: "UPDATE users SET spend = 0, budget_reset_at = $1, updated_at = $2 \
                WHERE budget_reset_at <= $2 AND budget_duration = $3 RETURNING user_id",
    },
    ResetSql {
        kind: EntityKind::Team,
        due_periods: "SELECT DISTINCT budget_duration FROM teams \
                      WHERE budget_reset_at <= $1 AND budget_duration IS NOT NULL",
        reset: "UPDATE teams SET spend = 0, budget_reset_at = $1, updated_at = $2 \
                WHERE budget_reset_at <= $2 AND budget_duration = $3 RETURNING team_id",
    },
];

/// One UPDATE per distinct period rather than per row. The UPDATE re-checks
/// `budget_reset_at <= now`, so a process racing this one skips rows it already reset.
pub(super) async fn reset_due_budgets(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    let mut changes = Vec::new();
    for sql in &RESETS {
        let periods: Vec<String> =
            sqlx::query_scalar(sql.due_periods).bind(now).fetch_all(&mut *tx).await?;
        for period in periods {
            let next = match parse_budget_duration(&period) {
                Ok(d) => now + d,
                Err(e) => {
                    tracing::warn!(kind = kind_str(sql.kind), error = %e, "skipping budget reset");
                    continue;
                }
            };
            let ids: Vec<String> = sqlx::query_scalar(sql.reset)
                .bind(next)
                .bind(now)
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
