//! The change feed.

use chrono::Duration;
use tollgate_store::{Change, EntityKind, KeyPatch, NewKey, NewTeam, NewUser, SpendChange, Store};

use crate::fixtures::{at, key, member, now, owned_record, team, user};
use crate::harness::{RawDb, backend_tests};

fn entries(changes: &[Change]) -> Vec<(EntityKind, &str)> {
    changes.iter().map(|c| (c.kind, c.id.as_str())).collect()
}

backend_tests!(change_feed_order, async |store| {
    use EntityKind::{Key, Team, User};
    assert_eq!(store.latest_change().await.unwrap(), 0);
    assert!(store.changes_since(0, 0).await.unwrap().is_empty());

    store.create_user(user("u1")).await.unwrap();
    store
        .create_team(NewTeam {
            members: vec![member("u1", "admin"), member("u2", "user")],
            ..team("t1")
        })
        .await
        .unwrap();
    let mut k = key("k1");
    k.user_id = Some("u3".into());
    k.team_id = Some("t1".into());
    store.create_key(k).await.unwrap();
    let after_create = store.latest_change().await.unwrap();

    // Spend never feeds changes, even when it moves spend on keys, users and teams.
    let spend = owned_record("r1", at("2026-03-10T00:00:00Z"), "k1", "u3", "t1");
    assert_eq!(store.insert_spend(&[spend]).await.unwrap(), 1);
    assert_eq!(store.latest_change().await.unwrap(), after_create);

    store.update_key("k1", KeyPatch { blocked: Some(true), ..KeyPatch::default() }).await.unwrap();
    store.regenerate_key("k1", "k2", "sk-...k2").await.unwrap();
    store.remove_team_members("t1", &["u2".into()]).await.unwrap();
    store.delete_users(&["u3".into()]).await.unwrap();
    store.delete_keys(&["k2".into()]).await.unwrap();
    store.delete_teams(&["t1".into()]).await.unwrap();

    let all = store.changes_since(0, 1000).await.unwrap();
    assert_eq!(
        entries(&all),
        [
            (User, "u1"),
            (Team, "t1"),
            (User, "u1"),
            (User, "u2"),
            (User, "u3"),
            (Key, "k1"),
            (Key, "k1"),
            (Key, "k1"),
            (Key, "k2"),
            (Team, "t1"),
            (User, "u2"),
            (Key, "k2"),
            (User, "u3"),
            (Key, "k2"),
            (User, "u1"),
            (Team, "t1"),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "strictly increasing");
    assert_eq!(store.latest_change().await.unwrap(), all.last().unwrap().seq);

    // Paging through the feed: after a seq, at most `limit`.
    let page = store.changes_since(all[4].seq, 3).await.unwrap();
    assert_eq!(page, all[5..8].to_vec());
    assert!(store.changes_since(all.last().unwrap().seq, 10).await.unwrap().is_empty());
});

fn budgeted_key(hash: &str) -> NewKey {
    let mut k = key(hash);
    k.limits.max_budget = Some(10.0);
    k
}

fn budgeted_user(id: &str) -> NewUser {
    let mut u = user(id);
    u.limits.max_budget = Some(10.0);
    u
}

/// What `spend_changed_since` returns, in a fixed order.
async fn spend_changes(store: &Store, since: chrono::DateTime<chrono::Utc>) -> Vec<SpendChange> {
    let mut changes = store.spend_changed_since(since).await.unwrap();
    changes.sort_by(|a, b| (a.kind as u8, &a.id).cmp(&(b.kind as u8, &b.id)));
    changes
}

fn spend(kind: EntityKind, id: &str, spend: f64) -> SpendChange {
    SpendChange { kind, id: id.to_owned(), spend, premium_spend: 0.0 }
}

async fn stamped(raw: &RawDb, table: &str, column: &str, id: &str) -> bool {
    let sql = format!(
        "SELECT COUNT(*) FROM {table} WHERE {column} = '{id}' AND spend_changed_at IS NOT NULL"
    );
    raw.scalar(&sql).await == 1
}

backend_tests!(spend_changes_are_the_budgeted_entities_whose_spend_moved, async |store, raw| {
    use EntityKind::{Key, Team, User};
    store.create_user(budgeted_user("u-budget")).await.unwrap();
    store.create_user(user("u-free")).await.unwrap();
    store
        .create_team(NewTeam { limits: budgeted_user("x").limits, ..team("t-budget") })
        .await
        .unwrap();
    store.create_team(team("t-free")).await.unwrap();
    store.create_key(budgeted_key("k-budget")).await.unwrap();
    store.create_key(budgeted_key("k-idle")).await.unwrap();
    store.create_key(key("k-free")).await.unwrap();
    assert!(store.spend_changed_since(at("2000-01-01T00:00:00Z")).await.unwrap().is_empty());

    let before = now();
    let started = at("2026-03-10T00:00:00Z");
    let records = [
        owned_record("r1", started, "k-budget", "u-budget", "t-budget"),
        owned_record("r2", started, "k-budget", "u-budget", "t-free"),
        owned_record("r3", started, "k-free", "u-free", "t-free"),
    ];
    assert_eq!(store.insert_spend(&records).await.unwrap(), 3);
    let after = now();

    // The insert stamps budgeted rows only; the others keep NULL (no indexed column moves).
    assert!(stamped(&raw, "virtual_keys", "token_hash", "k-budget").await);
    assert!(stamped(&raw, "users", "user_id", "u-budget").await);
    assert!(stamped(&raw, "teams", "team_id", "t-budget").await);
    assert!(!stamped(&raw, "virtual_keys", "token_hash", "k-free").await);
    assert!(!stamped(&raw, "virtual_keys", "token_hash", "k-idle").await);
    assert!(!stamped(&raw, "users", "user_id", "u-free").await);
    assert!(!stamped(&raw, "teams", "team_id", "t-free").await);

    // Changed since T: the budgeted ones, with their stored spend; not the unbudgeted ones,
    // nor the budgeted key that spent nothing.
    let changed =
        [spend(Key, "k-budget", 1.0), spend(User, "u-budget", 1.0), spend(Team, "t-budget", 0.5)];
    assert_eq!(spend_changes(&store, before).await, changed);
    // The stamp is the time of the insert: within it, and nothing after it.
    assert_eq!(spend_changes(&store, after).await, [], "stamped before `after`");
    assert_eq!(spend_changes(&store, before - Duration::hours(1)).await, changed);

    // A later batch moves the stamp and the figure; a window that starts after the first
    // batch sees only what the second one touched.
    let between = now();
    let more = owned_record("r4", started, "k-budget", "u-free", "t-free");
    assert_eq!(store.insert_spend(&[more]).await.unwrap(), 1);
    assert_eq!(spend_changes(&store, between).await, [spend(Key, "k-budget", 1.5)]);
    // A record already stored adds nothing and stamps nothing.
    let again = now();
    let repeat = owned_record("r1", started, "k-budget", "u-budget", "t-budget");
    assert_eq!(store.insert_spend(&[repeat]).await.unwrap(), 0);
    assert_eq!(spend_changes(&store, again).await, []);

    // A budget taken away takes the row out of the answer, stamp or not.
    store
        .update_key("k-budget", KeyPatch { max_budget: Some(None), ..KeyPatch::default() })
        .await
        .unwrap();
    assert_eq!(
        spend_changes(&store, before).await,
        [spend(User, "u-budget", 1.0), spend(Team, "t-budget", 0.5)]
    );
});

backend_tests!(a_budget_reset_is_a_spend_change, async |store| {
    use EntityKind::{Key, User};
    let mut k = budgeted_key("k-monthly");
    k.limits.budget_duration = Some("30d".into());
    store.create_key(k).await.unwrap();
    let mut u = budgeted_user("u-daily");
    u.limits.budget_duration = Some("1d".into());
    store.create_user(u).await.unwrap();
    let mut free = key("k-free-daily");
    free.limits.budget_duration = Some("1d".into());
    store.create_key(free).await.unwrap();
    let started = at("2026-03-10T00:00:00Z");
    let r = owned_record("r1", started, "k-monthly", "u-daily", "t-none");
    let r2 = owned_record("r2", started, "k-free-daily", "u-daily", "t-none");
    store.insert_spend(&[r, r2]).await.unwrap();

    // Two days on, the user's daily budget is due and the key's monthly one is not.
    let reset_at = now() + Duration::days(2);
    assert_eq!(store.reset_due_budgets(reset_at).await.unwrap(), 2, "the user and the free key");
    assert_eq!(spend_changes(&store, reset_at).await, [spend(User, "u-daily", 0.0)]);
    assert_eq!(
        spend_changes(&store, reset_at - Duration::days(3)).await,
        [spend(Key, "k-monthly", 0.5), spend(User, "u-daily", 0.0)]
    );
});

backend_tests!(kinds_a_newer_version_writes_do_not_stop_a_reader, async |store, raw| {
    // More unknown entries than a page holds, then one this version knows.
    for i in 0..5 {
        raw.execute(&format!(
            "INSERT INTO change_log (kind, entity_id, changed_at) \
             VALUES ('from_the_future', 'x{i}', '2030-01-01T00:00:00.000000Z')"
        ))
        .await;
    }
    store.announce(EntityKind::CopilotQuota, "default").await.unwrap();
    let page = store.changes_since(0, 3).await.unwrap();
    assert_eq!(page.len(), 1, "{page:?}");
    assert_eq!((page[0].kind, page[0].id.as_str()), (EntityKind::CopilotQuota, "default"));
    assert!(store.changes_since(page[0].seq, 3).await.unwrap().is_empty());
});
