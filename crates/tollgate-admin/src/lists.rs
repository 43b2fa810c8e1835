//! What the list pages (keys, users, teams, logs) share: keyset paging through links that
//! carry the list's filters and order, and reading one page of a sorted list.

use std::future::Future;

use axum::response::Response;
use serde::Deserialize;
use tollgate_store::{ListCursor, ListOrder, Page, StoreError};

use crate::page::{self, Base, Choice};

/// Rows a list page shows.
pub(crate) const PAGE_SIZE: u32 = 50;

/// The order and position of a list page, from its query string: `order=`, and the last
/// row of the previous page as `after=` (its sort value) and `after_id=`.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    pub(crate) order: Option<String>,
    #[serde(default)]
    pub(crate) after: Option<String>,
    #[serde(default)]
    pub(crate) after_id: Option<String>,
}

impl Paging {
    /// The cursor as typed, when both halves are there.
    pub(crate) fn position(&self) -> Option<(&str, &str)> {
        Some((self.after.as_deref()?, self.after_id.as_deref()?))
    }
}

/// The links of a list page: back to its first page (when not on it) and on to the next
/// (when there is one), each keeping the filters and order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Pager {
    /// The first page.
    pub(crate) first: Option<String>,
    /// The next page.
    pub(crate) next: Option<String>,
}

impl Pager {
    /// The links of `path`, filtered by `params` (empty ones left out); `next` is the
    /// cursor `(after, after_id)` of the next page, if there is one.
    pub(crate) fn new(
        base: &Base,
        path: &str,
        params: &[(&str, Option<&str>)],
        on_first: bool,
        next: Option<(String, String)>,
    ) -> Self {
        let mut query: Vec<String> = params
            .iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
            .map(|(k, v)| format!("{k}={}", page::url_encode(v)))
            .collect();
        let link = |query: &[String]| {
            let q = query.join("&");
            base.to(&if q.is_empty() { path.to_owned() } else { format!("{path}?{q}") })
        };
        let first = (!on_first).then(|| link(&query));
        let next = next.map(|(after, id)| {
            query.push(format!("after={}", page::url_encode(&after)));
            query.push(format!("after_id={}", page::url_encode(&id)));
            link(&query)
        });
        Self { first, next }
    }
}

/// One page of a sorted list, with its links and the orders to choose from.
pub(crate) struct Listed<T> {
    /// The rows.
    pub(crate) rows: Vec<T>,
    /// The links to the first and next pages.
    pub(crate) pager: Pager,
    /// The orders, the current one chosen.
    pub(crate) orders: Vec<Choice>,
}

const ORDER_NAMES: [&str; 4] = ["newest", "oldest", "name", "spend"];

/// Reads the page of a list at `path` that `paging` asks for (sorted by `default` unless
/// it names another order): `read` is given the order, the cursor and how many rows to
/// read (one more than a page, to know whether a next page exists), `cursor` makes the
/// cursor after a row. A malformed order or cursor is answered with a 400 page, a store
/// failure with the 503 page.
pub(crate) async fn read<T, Fut>(
    base: &Base,
    path: &str,
    paging: &Paging,
    default: ListOrder,
    filters: &[(&str, Option<&str>)],
    read: impl FnOnce(ListOrder, Option<ListCursor>, u32) -> Fut,
    cursor: impl Fn(&T, ListOrder) -> ListCursor,
) -> Result<Listed<T>, Response>
where
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    let order = match page::text(paging.order.clone()) {
        None => default,
        Some(name) => ListOrder::parse(&name).ok_or_else(|| {
            page::invalid(base, &format!("`{name}` is not an order of this list."))
        })?,
    };
    let after = match paging.position() {
        None => None,
        Some((value, id)) => Some(ListCursor::parse(order, value, id).ok_or_else(|| {
            page::invalid(base, "This page link is damaged; start again from the first page.")
        })?),
    };
    let on_first = after.is_none();
    let mut rows = page::read(base, path, read(order, after, PAGE_SIZE + 1).await)?;
    let more = rows.len() > PAGE_SIZE as usize;
    rows.truncate(PAGE_SIZE as usize);
    let next = more.then(|| rows.last().map(|r| cursor(r, order))).flatten();
    let mut params = filters.to_vec();
    params.push(("order", (order != default).then_some(order.as_str())));
    let next = next.map(|c| (c.value_text(), c.id));
    let pager = Pager::new(base, path, &params, on_first, next);
    Ok(Listed { rows, pager, orders: page::choices(&ORDER_NAMES, order.as_str()) })
}

/// The query of a list searched by one text: users, teams.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchQuery {
    #[serde(default)]
    pub(crate) search: Option<String>,
    #[serde(flatten)]
    pub(crate) paging: Paging,
    #[serde(default)]
    pub(crate) done: Option<String>,
}

impl SearchQuery {
    /// What is searched for, as the form shows it.
    pub(crate) fn search(&self) -> String {
        page::text(self.search.clone()).unwrap_or_default()
    }
}

/// [`read`] for a list the store pages with a [`Page`] (users, teams), oldest first unless
/// asked otherwise; `list` is the store's list call.
pub(crate) async fn searched<T, Fut>(
    base: &Base,
    path: &str,
    q: &SearchQuery,
    list: impl FnOnce(Page) -> Fut,
    cursor: impl Fn(&T, ListOrder) -> ListCursor,
) -> Result<Listed<T>, Response>
where
    Fut: Future<Output = Result<Vec<T>, StoreError>>,
{
    let search = page::text(q.search.clone());
    let params = [("search", search.as_deref())];
    let page = |order, after, size| {
        list(Page { order: Some(order), after, size, search: search.clone(), page: 0 })
    };
    read(base, path, &q.paging, ListOrder::Oldest, &params, page, cursor).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_names_are_the_stores() {
        let names: Vec<_> = ListOrder::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(names, ORDER_NAMES);
    }

    #[test]
    fn links_keep_filters_and_leave_out_empty_ones() {
        let base = Base { ui: "/root/ui".into(), https: false };
        let params = [("alias", Some("a b&c")), ("user", None), ("team", Some(""))];
        let p = Pager::new(&base, "/keys", &params, false, Some(("2026".into(), "h/1".into())));
        assert_eq!(p.first.as_deref(), Some("/root/ui/keys?alias=a%20b%26c"));
        assert_eq!(
            p.next.as_deref(),
            Some("/root/ui/keys?alias=a%20b%26c&after=2026&after_id=h/1")
        );
        let p = Pager::new(&base, "/keys", &[], true, None);
        assert!(p.first.is_none() && p.next.is_none());
    }
}
