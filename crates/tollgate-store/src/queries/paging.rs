//! Keyset paging of keys, users and teams, written once: the condition that continues after
//! a cursor, compared as a row `(sort value, id)`, and the matching order.

use crate::patch::page_window;
use crate::sql::{Dialect, Query};
use crate::{ListCursor, ListOrder, SortValue, StoreError};

/// The columns (or expressions) a table's list sorts by.
pub(super) struct Sorts {
    /// When the row was created.
    pub(super) created: &'static str,
    /// Its name.
    pub(super) name: &'static str,
    /// Its spend.
    pub(super) spend: &'static str,
    /// Its id, which breaks ties.
    pub(super) id: &'static str,
}

/// After a `WHERE` clause: the rows after `after` (if any) in `order`, sorted so, at most a
/// page of them; without a cursor, page `page` by offset (the JSON API's `page`/`size`).
pub(super) fn page<'a, D: Dialect>(
    q: &mut Query<'a, D>,
    sorts: &Sorts,
    order: ListOrder,
    after: Option<&'a ListCursor>,
    page: u32,
    size: u32,
) -> Result<(), StoreError> {
    let (column, descending) = match order {
        ListOrder::Newest => (sorts.created, true),
        ListOrder::Oldest => (sorts.created, false),
        ListOrder::Name => (sorts.name, false),
        ListOrder::Spend => (sorts.spend, true),
    };
    let (limit, offset) = page_window(page, size);
    if let Some(c) = after {
        c.check(order)?;
        q.push(" AND (").push(column).push(", ").push(sorts.id);
        q.push(if descending { ") < (" } else { ") > (" });
        match &c.value {
            SortValue::Time(t) => q.bind(*t),
            SortValue::Text(s) => q.bind(s.as_str()),
            SortValue::Real(v) => q.bind(*v),
        };
        q.and(", ", &c.id).push(")");
    }
    let dir = if descending { " DESC" } else { "" };
    q.push(" ORDER BY ").push(column).push(dir).push(", ").push(sorts.id).push(dir);
    q.and(" LIMIT ", limit);
    if after.is_none() {
        q.and(" OFFSET ", offset);
    }
    Ok(())
}

/// After a `WHERE` clause: rows where either column matches `pattern` (from [`contains`]).
pub(super) fn search<'a, D: Dialect>(q: &mut Query<'a, D>, columns: [&str; 2], pattern: &'a str) {
    q.push(" AND (");
    for (i, column) in columns.into_iter().enumerate() {
        q.push(if i == 0 { "" } else { " OR " }).push("lower(COALESCE(").push(column);
        q.and(", '')) LIKE ", pattern).push(" ESCAPE '\\'");
    }
    q.push(")");
}

/// A `LIKE` pattern matching text that contains `s`, ignoring case (`\` escapes): lowered as
/// PostgreSQL's `lower()` lowers the column, every letter; SQLite's lowers ASCII only, so
/// there a non-ASCII capital matches only itself.
pub(super) fn contains(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}
