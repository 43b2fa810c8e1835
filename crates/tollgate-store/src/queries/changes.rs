//! The change feed, and budget resets (which write to it).

use chrono::{DateTime, Utc};
use sqlx::Pool;

use crate::budget::{next_month_start, parse_budget_duration};
use crate::patch::row_limit;
use crate::rows::{ChangeRow, KNOWN_KINDS, kind_str, parse_kind};
use crate::sql::{Conn, Dialect, Param, Query};
use crate::{Change, EntityKind, SpendChange, StoreError};

/// Appends changes; call it last in a transaction.
pub(super) async fn append<D: Dialect>(
    conn: &mut Conn<D>,
    changes: &[(EntityKind, String)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    D::lock_change_feed(&mut *conn).await?;
    // 3 binds per row.
    for chunk in changes.chunks(D::MAX_BINDS / 3) {
        let mut q = Query::<D>::new("INSERT INTO change_log (kind, entity_id, changed_at) VALUES ");
        for (i, (kind, id)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.values([Param::Text(kind_str(*kind)), Param::Text(id), Param::Time(now)]);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn since<D: Dialect>(
    pool: &Pool<D::Db>,
    after: i64,
    limit: u32,
) -> Result<Vec<Change>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut q = Query::<D>::new("SELECT seq, kind, entity_id FROM change_log WHERE seq > ");
    q.bind(after);
    // Kinds a newer version writes are left out here rather than after the LIMIT, so a page
    // of them alone cannot stop a reader short of the kinds it knows.
    q.push(" AND kind IN (");
    for (i, kind) in KNOWN_KINDS.iter().enumerate() {
        q.push(if i == 0 { "'" } else { ", '" }).push(kind_str(*kind)).push("'");
    }
    q.push(")");
    q.and(" ORDER BY seq LIMIT ", row_limit(limit, 1000, 10_000));
    let rows: Vec<ChangeRow> = q.all(&mut conn).await?;
    Ok(rows.into_iter().filter_map(ChangeRow::into_change).collect())
}

pub(super) async fn latest<D: Dialect>(pool: &Pool<D::Db>) -> Result<i64, StoreError> {
    let mut conn = pool.acquire().await?;
    let (seq,): (Option<i64>,) =
        Query::<D>::new("SELECT MAX(seq) FROM change_log").one(&mut conn).await?;
    Ok(seq.unwrap_or(0))
}

/// The tables with budgets: their kind and id column.
const BUDGETED: [(EntityKind, &str, &str); 3] = [
    (EntityKind::Key, "virtual_keys", "token_hash"),
    (EntityKind::User, "users", "user_id"),
    (EntityKind::Team, "teams", "team_id"),
];

/// One index range per table (each has a partial index on `spend_changed_at` over the rows
/// with a budget), planned for `since` each time: a generic plan could not tell the few
/// rows of the last seconds from a third of the table.
pub(super) async fn spend_changed_since<D: Dialect>(
    pool: &Pool<D::Db>,
    since: DateTime<Utc>,
) -> Result<Vec<SpendChange>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut q = Query::<D>::new("");
    for (i, (kind, table, id)) in BUDGETED.iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push("SELECT '").push(kind_str(*kind)).push("' AS kind, ").push(id);
        q.push(" AS id, spend, premium_spend FROM ").push(table);
        q.push(" WHERE (max_budget IS NOT NULL OR max_premium_requests IS NOT NULL)");
        q.and(" AND spend_changed_at >= ", since);
    }
    let rows: Vec<(String, String, f64, f64)> = q.all_planned(&mut conn).await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, id, spend, premium_spend)| {
            Some(SpendChange { kind: parse_kind(&kind)?, id, spend, premium_spend })
        })
        .collect())
}

/// What a period resets: the amount column, its period and its next reset; and whether a
/// budget without a period resets at each month's start (else it never resets).
struct Meter {
    spend: &'static str,
    duration: &'static str,
    reset_at: &'static str,
    monthly_without_period: bool,
}

/// Money, and premium requests (whose budgets without a period reset at each month's start).
const METERS: [Meter; 2] = [
    Meter {
        spend: "spend",
        duration: "budget_duration",
        reset_at: "budget_reset_at",
        monthly_without_period: false,
    },
    Meter {
        spend: "premium_spend",
        duration: "premium_budget_duration",
        reset_at: "premium_budget_reset_at",
        monthly_without_period: true,
    },
];

/// Resets every budget whose period has passed and schedules its next reset: one UPDATE per
/// distinct period rather than per row. The UPDATE re-checks the reset time, so a process
/// racing this one skips rows it already reset.
pub(super) async fn reset_due_budgets<D: Dialect>(
    pool: &Pool<D::Db>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = D::begin_write(pool).await?;
    let mut changes = Vec::new();
    for (kind, table, id) in BUDGETED {
        for meter in &METERS {
            let mut q = Query::<D>::new("SELECT DISTINCT ");
            q.push(meter.duration).push(" FROM ").push(table);
            q.push(" WHERE ").push(meter.reset_at).and(" <= ", now);
            let periods: Vec<(Option<String>,)> = q.all(&mut tx).await?;
            for (period,) in periods {
                let next = match &period {
                    Some(p) => parse_budget_duration(p).map(|d| now + d),
                    None if meter.monthly_without_period => Ok(next_month_start(now)),
                    None => continue,
                };
                let next = match next {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!(kind = kind_str(kind), error = %e, "skipping budget reset");
                        continue;
                    }
                };
                let mut q = Query::<D>::new("UPDATE ");
                q.push(table).push(" SET ").push(meter.spend).push(" = 0, ");
                q.push(meter.reset_at).and(" = ", next).and(", updated_at = ", now);
                super::stamp_spend_change(&mut q, now);
                q.push(" WHERE ").push(meter.reset_at).and(" <= ", now);
                match &period {
                    Some(p) => q.push(" AND ").push(meter.duration).and(" = ", p.as_str()),
                    None => q.push(" AND ").push(meter.duration).push(" IS NULL"),
                };
                q.push(" RETURNING ").push(id);
                let ids: Vec<(String,)> = q.all(&mut tx).await?;
                changes.extend(ids.into_iter().map(|(id,)| (kind, id)));
            }
        }
    }
    // A holder whose money and premium periods both ended is one change.
    changes.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
    changes.dedup();
    append::<D>(&mut tx, &changes, now).await?;
    tx.commit().await?;
    Ok(changes.len() as u64)
}
