//! The audit log: append and read back, filters, newest-first keyset pages, limits, time
//! ranges.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_store::{AuditFilter, AuditRecord, Backend, NewAudit, Store};

use crate::fixtures::{assert_invalid, close_to, now};
use crate::harness::backend_tests;

/// An entry with no object states.
fn entry(actor: &str, action: &str, object_type: &str, object_id: &str) -> NewAudit {
    NewAudit {
        actor: actor.to_owned(),
        action: action.to_owned(),
        object_type: object_type.to_owned(),
        object_id: object_id.to_owned(),
        before: None,
        after: None,
    }
}

/// Appends `n` entries by one actor on one key; returns them oldest first.
async fn append_many(store: &Store, n: usize) -> Vec<AuditRecord> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let e = NewAudit {
            after: Some(json!({ "n": i })),
            ..entry("master_key", "update", "key", "k")
        };
        out.push(store.append_audit(e).await.unwrap());
    }
    out
}

/// The ids of records, in order.
fn ids(records: &[AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

/// Reads every page of `filter` with pages of `size`, following `before_id`.
async fn all_pages(store: &Store, filter: AuditFilter, size: u32) -> Vec<Vec<AuditRecord>> {
    let mut pages = Vec::new();
    let mut before_id = None;
    loop {
        let page_filter = AuditFilter { before_id, limit: size, ..filter.clone() };
        let page = store.audit_logs(page_filter).await.unwrap();
        let Some(last) = page.last() else { return pages };
        before_id = Some(last.id);
        pages.push(page);
    }
}

backend_tests!(audit_entries_round_trip, async |store| {
    let start = now();
    let feed = store.latest_change().await.unwrap();
    let key = json!({"key_alias": "ci", "models": ["gpt-4o"], "max_budget": 1.5,
                     "metadata": {"nested": [1, null, true, "ünïcode ✓"]}, "blocked": false});
    let created =
        NewAudit { after: Some(key.clone()), ..entry("master_key", "create", "key", "h1") };
    let a = store.append_audit(created.clone()).await.unwrap();
    assert!(a.id > 0);
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.object_type.as_str(), a.object_id.as_str()),
        ("master_key", "create", "key", "h1")
    );
    assert_eq!((&a.before, &a.after), (&None, &Some(key.clone())));
    assert!(a.at >= start && close_to(a.at, start), "{} vs {start}", a.at);

    let blocked = json!({"key_alias": "ci", "blocked": true});
    let updated = NewAudit {
        before: Some(key.clone()),
        after: Some(blocked.clone()),
        ..entry("ui:alice", "block", "key", "h1")
    };
    let b = store.append_audit(updated).await.unwrap();
    let deleted =
        NewAudit { before: Some(blocked.clone()), ..entry("key:ops", "delete", "key", "h1") };
    let c = store.append_audit(deleted).await.unwrap();
    // JSON null means no object, as `None` does, on both sides.
    let nulls = NewAudit {
        before: Some(Value::Null),
        after: Some(Value::Null),
        ..entry("master_key", "delete", "team", "t1")
    };
    let d = store.append_audit(nulls).await.unwrap();
    assert_eq!((&d.before, &d.after), (&None, &None));
    assert_eq!((&b.before, &b.after), (&Some(key), &Some(blocked.clone())));
    assert_eq!((&c.before, &c.after), (&Some(blocked), &None));
    assert!(a.id < b.id && b.id < c.id && c.id < d.id);
    assert!(a.at <= b.at && b.at <= c.at && c.at <= d.at);

    let read = store.audit_logs(AuditFilter::default()).await.unwrap();
    assert_eq!(read, vec![d.clone(), c, b, a.clone()], "newest first, as appended");
    let wire = serde_json::to_value(&a).unwrap();
    assert_eq!(serde_json::from_value::<AuditRecord>(wire).unwrap(), a);
    assert_eq!(store.latest_change().await.unwrap(), feed, "audit entries are not changes");
});

backend_tests!(audit_entries_need_who_what_and_which, async |store| {
    assert_invalid(store.append_audit(entry("", "create", "key", "h1")).await);
    assert_invalid(store.append_audit(entry("master_key", " ", "key", "h1")).await);
    assert_invalid(store.append_audit(entry("master_key", "create", "", "h1")).await);
    assert_invalid(store.append_audit(entry("master_key", "create", "key", "\t")).await);
    assert!(store.audit_logs(AuditFilter::default()).await.unwrap().is_empty());
});

backend_tests!(audit_text_with_nul_is_recorded_and_found, async |store, db| {
    let odd = NewAudit {
        after: Some(json!({"alias": "a\u{0}b", "k\u{0}": 1})),
        ..entry("key:a\u{0}b", "create", "key", "h\u{0}1")
    };
    let stored = store.append_audit(odd).await.unwrap();
    // PostgreSQL refuses NUL in TEXT and JSONB: it becomes U+FFFD there, and stays in SQLite.
    let nul = if db.backend() == Backend::Postgres { "\u{FFFD}" } else { "\u{0}" };
    assert_eq!(stored.object_id, format!("h{nul}1"));
    assert_eq!(stored.after, Some(json!({"alias": format!("a{nul}b"), format!("k{nul}"): 1})));
    let filter = AuditFilter {
        actor: Some("key:a\u{0}b".into()),
        object_id: Some("h\u{0}1".into()),
        ..AuditFilter::default()
    };
    assert_eq!(store.audit_logs(filter).await.unwrap(), vec![stored]);
});

backend_tests!(audit_filters_select_matching_entries, async |store| {
    let log = [
        entry("master_key", "create", "key", "h1"),
        entry("ui:alice", "update", "key", "h1"),
        entry("ui:alice", "create", "user", "h1"),
        entry("key:ops", "create", "team", "t1"),
        entry("ui:alice", "delete", "key", "h2"),
        entry("master_key", "regenerate", "key", "h1"),
    ];
    let mut stored = Vec::new();
    for e in log {
        stored.push(store.append_audit(e).await.unwrap());
    }
    let id = |i: usize| stored[i].id;
    let cases = [
        (AuditFilter::default(), vec![id(5), id(4), id(3), id(2), id(1), id(0)]),
        (
            AuditFilter { object_type: Some("key".into()), ..AuditFilter::default() },
            vec![id(5), id(4), id(1), id(0)],
        ),
        (
            AuditFilter { object_id: Some("h1".into()), ..AuditFilter::default() },
            vec![id(5), id(2), id(1), id(0)],
        ),
        (
            AuditFilter {
                object_type: Some("key".into()),
                object_id: Some("h1".into()),
                ..AuditFilter::default()
            },
            vec![id(5), id(1), id(0)],
        ),
        (
            AuditFilter { actor: Some("ui:alice".into()), ..AuditFilter::default() },
            vec![id(4), id(2), id(1)],
        ),
        (
            AuditFilter { action: Some("create".into()), ..AuditFilter::default() },
            vec![id(3), id(2), id(0)],
        ),
        (
            AuditFilter {
                actor: Some("ui:alice".into()),
                action: Some("create".into()),
                ..AuditFilter::default()
            },
            vec![id(2)],
        ),
        (
            AuditFilter { before_id: Some(id(3)), ..AuditFilter::default() },
            vec![id(2), id(1), id(0)],
        ),
        (AuditFilter { actor: Some("nobody".into()), ..AuditFilter::default() }, vec![]),
        (AuditFilter { object_type: Some("KEY".into()), ..AuditFilter::default() }, vec![]),
    ];
    for (filter, expected) in cases {
        let got = store.audit_logs(filter.clone()).await.unwrap();
        assert_eq!(ids(&got), expected, "{filter:?}");
    }
});

backend_tests!(audit_pages_follow_the_keyset_cursor, async |store| {
    let appended = append_many(&store, 23).await;
    let mut newest_first = appended.clone();
    newest_first.reverse();
    for size in [1, 5, 7, 23, 50] {
        let pages = all_pages(&store, AuditFilter::default(), size).await;
        assert_eq!(pages.len(), 23_usize.div_ceil(size as usize), "pages of {size}");
        assert!(pages.iter().all(|p| p.len() <= size as usize));
        assert_eq!(pages.concat(), newest_first, "pages of {size}: no gaps, no repeats");
    }

    // With a filter, pages cover only its matches, even when other entries fall in between.
    for i in 0..10 {
        let noise = entry("ui:bob", "update", "user", &format!("u{i}"));
        store.append_audit(noise).await.unwrap();
    }
    let only_key = AuditFilter { object_id: Some("k".into()), ..AuditFilter::default() };
    let pages = all_pages(&store, only_key, 4).await;
    assert_eq!(pages.len(), 6);
    assert_eq!(pages.concat(), newest_first);

    // A cursor past the oldest entry ends the walk.
    let oldest = AuditFilter { before_id: Some(appended[0].id), ..AuditFilter::default() };
    assert!(store.audit_logs(oldest).await.unwrap().is_empty());
});

backend_tests!(audit_limit_defaults_to_100_and_is_capped_at_1000, async |store| {
    let appended = append_many(&store, 1001).await;
    let newest = appended.last().unwrap().id;
    let read = |limit| store.audit_logs(AuditFilter { limit, ..AuditFilter::default() });
    let default = read(0).await.unwrap();
    assert_eq!(default.len(), 100);
    assert_eq!(default[0].id, newest);
    assert_eq!(read(1).await.unwrap().len(), 1);
    assert_eq!(read(1000).await.unwrap().len(), 1000);
    assert_eq!(read(1001).await.unwrap().len(), 1000);
    let capped = read(u32::MAX).await.unwrap();
    assert_eq!(capped.len(), 1000);
    assert_eq!(capped[0].id, newest, "the cap keeps the newest");
    let rest = AuditFilter { before_id: Some(capped[999].id), ..AuditFilter::default() };
    assert_eq!(store.audit_logs(rest).await.unwrap(), vec![appended[0].clone()]);
});

backend_tests!(audit_time_filters_are_since_inclusive_until_exclusive, async |store| {
    let mut log = Vec::new();
    for object_id in ["a", "b", "c"] {
        log.push(
            store.append_audit(entry("master_key", "update", "key", object_id)).await.unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (a, b, c) = (&log[0], &log[1], &log[2]);
    assert!(a.at < b.at && b.at < c.at);
    let window = |since, until| AuditFilter { since, until, ..AuditFilter::default() };
    let cases = [
        (window(Some(b.at), None), vec![c.id, b.id]),
        (window(None, Some(b.at)), vec![a.id]),
        (window(Some(a.at), Some(c.at)), vec![b.id, a.id]),
        (window(Some(b.at), Some(b.at)), vec![]),
        (window(Some(c.at + chrono::Duration::microseconds(1)), None), vec![]),
        (window(None, Some(c.at + chrono::Duration::microseconds(1))), vec![c.id, b.id, a.id]),
        (AuditFilter { before_id: Some(c.id), ..window(Some(a.at), None) }, vec![b.id, a.id]),
        (AuditFilter { object_id: Some("a".into()), ..window(Some(b.at), None) }, vec![]),
    ];
    for (filter, expected) in cases {
        let got = store.audit_logs(filter.clone()).await.unwrap();
        assert_eq!(ids(&got), expected, "{filter:?}");
    }
});
