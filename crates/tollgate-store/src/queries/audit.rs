//! The audit log: who changed what, appended once and read newest first. It is a record for
//! people, not for caches, so it never feeds the change feed.

use serde_json::Value;
use sqlx::Pool;

use super::{insert_returning, select};
use crate::patch::{self, row_limit};
use crate::rollup::{json_replace_nul, replace_nul};
use crate::sql::{Dialect, Param};
use crate::{AuditFilter, AuditRecord, NewAudit, StoreError};

/// Columns of `audit_log`, in [`AuditRecord`] order.
const AUDIT_COLUMNS: &str = "id, at, actor, action, object_type, object_id, before, after";

/// The columns an append writes; the database assigns `id`.
const APPEND_COLUMNS: &str = "at, actor, action, object_type, object_id, before, after";

/// Entries read when a filter gives no limit.
const DEFAULT_LIMIT: u32 = 100;
/// The most entries read at once.
const MAX_LIMIT: u32 = 1000;

fn check(entry: &NewAudit) -> Result<(), StoreError> {
    for (name, value) in [
        ("actor", &entry.actor),
        ("action", &entry.action),
        ("object_type", &entry.object_type),
        ("object_id", &entry.object_id),
    ] {
        if value.trim().is_empty() {
            return Err(StoreError::Invalid(format!("an audit entry needs a non-empty {name}")));
        }
    }
    Ok(())
}

/// Text as dialect `D` can store and compare it: NUL becomes U+FFFD where it is refused.
fn storable<D: Dialect>(s: &mut String) {
    if D::REFUSES_NUL {
        replace_nul(s);
    }
}

/// The entry as it is stored: JSON `null` means no object, like `None`, so it reads back as
/// `None`; where the database refuses NUL characters they become U+FFFD, so a change to an
/// object with an odd name is still recorded.
fn normalise<D: Dialect>(mut entry: NewAudit) -> NewAudit {
    for s in [&mut entry.actor, &mut entry.action, &mut entry.object_type, &mut entry.object_id] {
        storable::<D>(s);
    }
    for state in [&mut entry.before, &mut entry.after] {
        if state.as_ref().is_some_and(Value::is_null) {
            *state = None;
        }
        if let Some(v) = state.as_mut().filter(|_| D::REFUSES_NUL) {
            json_replace_nul(v);
        }
    }
    entry
}

pub(super) async fn append<D: Dialect>(
    pool: &Pool<D::Db>,
    entry: NewAudit,
) -> Result<AuditRecord, StoreError> {
    check(&entry)?;
    let entry = normalise::<D>(entry);
    let now = patch::now();
    let mut tx = D::begin_write(pool).await?;
    let q = insert_returning::<D, 7>(
        "audit_log",
        APPEND_COLUMNS,
        [
            Param::from(now),
            Param::from(&entry.actor),
            Param::from(&entry.action),
            Param::from(&entry.object_type),
            Param::from(&entry.object_id),
            Param::from(&entry.before),
            Param::from(&entry.after),
        ],
        AUDIT_COLUMNS,
    );
    let row: AuditRecord = q.one(&mut tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// Entries matching every field the filter gives, by id descending; `before_id` continues
/// from the previous page's last id, so pages neither repeat nor skip entries.
pub(super) async fn logs<D: Dialect>(
    pool: &Pool<D::Db>,
    mut filter: AuditFilter,
) -> Result<Vec<AuditRecord>, StoreError> {
    for v in [&mut filter.object_type, &mut filter.object_id, &mut filter.actor, &mut filter.action]
        .into_iter()
        .flatten()
    {
        storable::<D>(v);
    }
    let mut q = select::<D>(AUDIT_COLUMNS, "audit_log", " WHERE TRUE");
    for (column, value) in [
        (" AND object_type = ", &filter.object_type),
        (" AND object_id = ", &filter.object_id),
        (" AND actor = ", &filter.actor),
        (" AND action = ", &filter.action),
    ] {
        if let Some(v) = value {
            q.and(column, v);
        }
    }
    if let Some(since) = filter.since {
        q.and(" AND at >= ", since);
    }
    if let Some(until) = filter.until {
        q.and(" AND at < ", until);
    }
    if let Some(before_id) = filter.before_id {
        q.and(" AND id < ", before_id);
    }
    q.push(" ORDER BY id DESC").and(" LIMIT ", row_limit(filter.limit, DEFAULT_LIMIT, MAX_LIMIT));
    let mut conn = pool.acquire().await?;
    Ok(q.all(&mut conn).await?)
}
