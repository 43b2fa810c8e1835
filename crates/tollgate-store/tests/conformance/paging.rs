//! Keyset paging of keys, users and teams, in every order, with ties on the sort value: a
//! walk page by page through cursors returns the whole list once, in order.

use std::future::Future;

use tollgate_store::{KeyFilter, ListCursor, ListOrder, Page, SortValue, Store, StoreError};

use crate::fixtures::{assert_invalid, key, team, user};
use crate::harness::{RawDb, backend_tests};

/// One instant, in the text both backends read (SQLite keeps this fixed-width form).
const TIE: &str = "'2026-03-10T12:00:00.000000Z'";

/// Every row of a list, read in one page, and then read page by page through cursors
/// (`size` a page): both must agree, and no page may repeat or skip a row.
async fn walk<T, F, Fut>(size: u32, read: F) -> Vec<T>
where
    T: PartialEq + std::fmt::Debug + Clone,
    F: Fn(Option<ListCursor>, u32) -> Fut,
    Fut: Future<Output = (Vec<T>, Option<ListCursor>)>,
{
    let (whole, _) = read(None, 1000).await;
    let (mut walked, mut after) = (Vec::new(), None);
    loop {
        let (page, last) = read(after.clone(), size).await;
        assert!(page.len() <= size as usize);
        walked.extend(page.iter().cloned());
        if page.len() < size as usize {
            break;
        }
        after = last;
        assert!(walked.len() <= whole.len(), "the walk repeats rows: {walked:?}");
    }
    assert_eq!(walked, whole, "pages through cursors give the whole list once, in order");
    whole
}

async fn keys(store: &Store, order: ListOrder, size: u32) -> Vec<String> {
    walk(size, |after, size| {
        let filter = KeyFilter { order: Some(order), after, size, ..KeyFilter::default() };
        async move {
            let page = store.list_keys(filter).await.unwrap();
            let last = page.last().map(|k| k.cursor(order));
            (page.into_iter().map(|k| k.token_hash).collect(), last)
        }
    })
    .await
}

async fn ties(db: &RawDb, table: &str, id: &str, ids: &[&str]) {
    let list = ids.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", ");
    db.execute(&format!("UPDATE {table} SET created_at = {TIE} WHERE {id} IN ({list})")).await;
    db.execute(&format!("UPDATE {table} SET spend = 2.5 WHERE {id} IN ({list})")).await;
}

backend_tests!(keys_page_by_keyset_in_every_order_with_ties, async |store, db| {
    // h1..h7 created in that order; h2..h5 then share one creation time and one spend.
    for (hash, alias) in [
        ("h1", Some("delta")),
        ("h2", Some("alpha")),
        ("h3", None),
        ("h4", Some("charlie")),
        ("h5", Some("bravo")),
        ("h6", None),
        ("h7", Some("echo")),
    ] {
        store
            .create_key(tollgate_store::NewKey { key_alias: alias.map(Into::into), ..key(hash) })
            .await
            .unwrap();
    }
    ties(&db, "virtual_keys", "token_hash", &["h2", "h3", "h4", "h5"]).await;
    db.execute("UPDATE virtual_keys SET spend = 9 WHERE token_hash = 'h6'").await;
    for size in [1, 2, 3] {
        assert_eq!(
            keys(&store, ListOrder::Newest, size).await,
            ["h7", "h6", "h1", "h5", "h4", "h3", "h2"],
            "newest first; the tied keys (created at the tie, earliest) by hash, descending"
        );
        assert_eq!(
            keys(&store, ListOrder::Oldest, size).await,
            ["h2", "h3", "h4", "h5", "h1", "h6", "h7"],
            "the tied keys (created first, at the tie) by hash, then the rest"
        );
        // A key without an alias sorts by its display name (`sk-...h3`).
        assert_eq!(
            keys(&store, ListOrder::Name, size).await,
            ["h2", "h5", "h4", "h1", "h7", "h3", "h6"]
        );
        assert_eq!(
            keys(&store, ListOrder::Spend, size).await,
            ["h6", "h5", "h4", "h3", "h2", "h7", "h1"],
            "most spend first; equal spend by hash, descending"
        );
    }
    // Filters hold across pages.
    store.create_user(user("u")).await.unwrap();
    for hash in ["h2", "h4", "h6"] {
        let patch =
            tollgate_store::KeyPatch { user_id: Some(Some("u".into())), ..Default::default() };
        store.update_key(hash, patch).await.unwrap();
    }
    let first = KeyFilter {
        user_id: Some("u".into()),
        order: Some(ListOrder::Newest),
        size: 2,
        ..KeyFilter::default()
    };
    let page1 = store.list_keys(first.clone()).await.unwrap();
    assert_eq!(page1.iter().map(|k| k.token_hash.as_str()).collect::<Vec<_>>(), ["h6", "h4"]);
    let next = KeyFilter { after: Some(page1[1].cursor(ListOrder::Newest)), ..first };
    let page2 = store.list_keys(next).await.unwrap();
    assert_eq!(page2.iter().map(|k| k.token_hash.as_str()).collect::<Vec<_>>(), ["h2"]);
    // A cursor of the wrong type for the order is refused, not misread.
    let wrong = KeyFilter {
        order: Some(ListOrder::Spend),
        after: Some(ListCursor { value: SortValue::Text("x".into()), id: "h1".into() }),
        ..KeyFilter::default()
    };
    assert_invalid(store.list_keys(wrong).await);
});

async fn users(store: &Store, order: ListOrder, size: u32, search: Option<&str>) -> Vec<String> {
    walk(size, |after, size| {
        let page =
            Page { order: Some(order), after, size, search: search.map(Into::into), page: 0 };
        async move {
            let list = store.list_users(page).await.unwrap();
            let last = list.last().map(|u| u.cursor(order));
            (list.into_iter().map(|u| u.user_id).collect(), last)
        }
    })
    .await
}

backend_tests!(users_page_by_keyset_with_ties_and_search, async |store, db| {
    for (id, email) in [("u1", "ann@a.example"), ("u2", "bob@b.example"), ("u3", "cy@a.example")]
        .into_iter()
        .chain([("u4", "di@b.example"), ("u5", "ed_x@c.example")])
    {
        store
            .create_user(tollgate_store::NewUser { user_email: Some(email.into()), ..user(id) })
            .await
            .unwrap();
    }
    ties(&db, "users", "user_id", &["u2", "u3", "u4"]).await;
    for size in [1, 2] {
        assert_eq!(
            users(&store, ListOrder::Oldest, size, None).await,
            ["u2", "u3", "u4", "u1", "u5"]
        );
        assert_eq!(
            users(&store, ListOrder::Newest, size, None).await,
            ["u5", "u1", "u4", "u3", "u2"]
        );
        assert_eq!(
            users(&store, ListOrder::Name, size, None).await,
            ["u1", "u2", "u3", "u4", "u5"]
        );
        assert_eq!(
            users(&store, ListOrder::Spend, size, None).await,
            ["u4", "u3", "u2", "u5", "u1"]
        );
        // Search by email or id, ignoring case, `_` taken literally; it holds across pages.
        assert_eq!(users(&store, ListOrder::Oldest, size, Some("@A.")).await, ["u3", "u1"]);
        assert_eq!(users(&store, ListOrder::Name, size, Some("_")).await, ["u5"]);
        assert_eq!(users(&store, ListOrder::Name, size, Some("u4")).await, ["u4"]);
        assert!(users(&store, ListOrder::Name, size, Some("%")).await.is_empty());
    }
    // The JSON API's page numbers still work.
    let page2 = Page { page: 2, size: 2, ..Page::default() };
    let ids: Vec<_> =
        store.list_users(page2).await.unwrap().into_iter().map(|u| u.user_id).collect();
    assert_eq!(ids, ["u4", "u1"]);
});

async fn teams(store: &Store, order: ListOrder, size: u32) -> Vec<String> {
    walk(size, |after, size| {
        let page = Page { order: Some(order), after, size, ..Page::default() };
        async move {
            let list = store.list_teams(page).await.unwrap();
            let last = list.last().map(|t| t.cursor(order));
            (list.into_iter().map(|t| t.team_id).collect(), last)
        }
    })
    .await
}

backend_tests!(teams_page_by_keyset_with_ties, async |store, db| {
    for (id, alias) in
        [("t1", Some("Mid")), ("t2", None), ("t3", Some("Alpha")), ("t4", Some("Beta"))]
    {
        store
            .create_team(tollgate_store::NewTeam { team_alias: alias.map(Into::into), ..team(id) })
            .await
            .unwrap();
    }
    ties(&db, "teams", "team_id", &["t1", "t2", "t3"]).await;
    for size in [1, 2, 3] {
        assert_eq!(teams(&store, ListOrder::Oldest, size).await, ["t1", "t2", "t3", "t4"]);
        assert_eq!(teams(&store, ListOrder::Newest, size).await, ["t4", "t3", "t2", "t1"]);
        // Without an alias a team sorts by its id (`t2`: after the capitalised aliases
        // by bytes and in PostgreSQL's usual collations alike).
        assert_eq!(teams(&store, ListOrder::Name, size).await, ["t3", "t4", "t1", "t2"]);
        assert_eq!(teams(&store, ListOrder::Spend, size).await, ["t3", "t2", "t1", "t4"]);
    }
    let found =
        store.list_teams(Page { search: Some("alp".into()), ..Page::default() }).await.unwrap();
    assert_eq!(found.into_iter().map(|t| t.team_id).collect::<Vec<_>>(), ["t3"]);
    let wrong = Page {
        order: Some(ListOrder::Oldest),
        after: Some(ListCursor { value: SortValue::Real(1.0), id: "t1".into() }),
        ..Page::default()
    };
    let refused: Result<_, StoreError> = store.list_teams(wrong).await;
    assert_invalid(refused);
});
