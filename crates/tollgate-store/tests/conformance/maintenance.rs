//! Migrations, partitions, retention and budget resets.

use chrono::Duration;
use tollgate_store::{
    Backend, EntityKind, KeyPatch, NewTeam, SpendFilter, TeamPatch, UserPatch, next_month_start,
};

use crate::fixtures::{at, key, now, record, team, user};
use crate::harness::{RawDb, backend_tests};

backend_tests!(migrate_is_idempotent, async |store| {
    // The harness already migrated once.
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.maintain(now()).await.unwrap();
    store.ping().await.unwrap();
    store.create_key(key("h1")).await.unwrap();
    assert!(store.get_key("h1").await.unwrap().is_some());
});

backend_tests!(concurrent_maintenance, async |store| {
    let month = at("2031-07-15T00:00:00Z");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.maintain(month).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    store.insert_spend(&[record("r", month)]).await.unwrap();
    assert_eq!(store.count_spend().await.unwrap(), 1);
});

async fn partition_rows(raw: &RawDb, table: &str) -> Option<i64> {
    let exists =
        raw.scalar(&format!("SELECT COUNT(*) FROM pg_class WHERE relname = '{table}'")).await;
    if exists == 0 {
        return None;
    }
    Some(raw.scalar(&format!("SELECT COUNT(*) FROM {table}")).await)
}

backend_tests!(delete_spend_before_cutoff, async |store, raw| {
    // January and February 2024 get partitions on PostgreSQL; December 2023 has none, so its
    // record lands in the default partition.
    store.maintain(at("2024-01-10T00:00:00Z")).await.unwrap();
    let records = [
        record("dec", at("2023-12-31T23:00:00Z")),
        record("jan-1", at("2024-01-01T00:00:00Z")),
        record("jan-2", at("2024-01-15T00:00:00Z")),
        record("jan-3", at("2024-01-31T23:59:59.999999Z")),
        record("feb-1", at("2024-02-01T00:00:00Z")),
        record("feb-2", at("2024-02-14T23:59:59Z")),
        record("feb-3", at("2024-02-15T00:00:00Z")),
        record("feb-4", at("2024-02-20T00:00:00Z")),
    ];
    store.insert_spend(&records).await.unwrap();
    if raw.backend() == Backend::Postgres {
        assert_eq!(partition_rows(&raw, "spend_logs_p202401").await, Some(3));
        assert_eq!(partition_rows(&raw, "spend_logs_p202402").await, Some(4));
        assert_eq!(partition_rows(&raw, "spend_logs_default").await, Some(1));
    }
    let rollups_before = store.daily_spend(Default::default()).await.unwrap();

    let removed = store.delete_spend_before(at("2024-02-15T00:00:00Z")).await.unwrap();
    assert_eq!(removed, 6);
    let left: Vec<_> = store
        .spend_logs(SpendFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(left, ["feb-4", "feb-3"]);
    assert_eq!(
        store.daily_spend(Default::default()).await.unwrap(),
        rollups_before,
        "rollups kept"
    );
    if raw.backend() == Backend::Postgres {
        assert_eq!(partition_rows(&raw, "spend_logs_p202401").await, None, "January dropped whole");
        assert_eq!(partition_rows(&raw, "spend_logs_p202402").await, Some(2));
        assert_eq!(partition_rows(&raw, "spend_logs_default").await, Some(0));
    }
    assert_eq!(store.delete_spend_before(at("2024-02-15T00:00:00Z")).await.unwrap(), 0);
    // A later cutoff takes the rest.
    assert_eq!(store.delete_spend_before(at("2030-01-01T00:00:00Z")).await.unwrap(), 2);
    assert_eq!(store.count_spend().await.unwrap(), 0);
});

backend_tests!(maintain_adopts_default_rows, async |store, raw| {
    // A record for a month without a partition waits in the default partition; creating the
    // month's partition later moves it there instead of failing.
    let far = at("2032-05-05T05:05:05Z");
    assert_eq!(store.insert_spend(&[record("future", far)]).await.unwrap(), 1);
    store.maintain(far).await.unwrap();
    store.maintain(far).await.unwrap();
    if raw.backend() == Backend::Postgres {
        assert_eq!(partition_rows(&raw, "spend_logs_p203205").await, Some(1));
        assert_eq!(partition_rows(&raw, "spend_logs_p203206").await, Some(0));
        assert_eq!(partition_rows(&raw, "spend_logs_default").await, Some(0));
    }
    assert_eq!(store.insert_spend(&[record("future", far)]).await.unwrap(), 0, "still idempotent");
    assert_eq!(store.count_spend().await.unwrap(), 1);
});

backend_tests!(reset_due_budgets, async |store, raw| {
    let mut k = key("k1");
    k.limits.budget_duration = Some("1h".into());
    store.create_key(k).await.unwrap();
    store.create_key(key("k-no-period")).await.unwrap();
    let mut u = user("u1");
    u.limits.budget_duration = Some("1d".into());
    store.create_user(u).await.unwrap();
    store.create_team(NewTeam { ..team("t1") }).await.unwrap();
    store
        .update_team(
            "t1",
            TeamPatch { budget_duration: Some(Some("30m".into())), ..Default::default() },
        )
        .await
        .unwrap();
    for (hash, spend) in [("k1", 3.0), ("k-no-period", 4.0)] {
        store
            .update_key(hash, KeyPatch { spend: Some(spend), ..Default::default() })
            .await
            .unwrap();
    }
    store.update_user("u1", UserPatch { spend: Some(5.0), ..Default::default() }).await.unwrap();
    store.update_team("t1", TeamPatch { spend: Some(6.0), ..Default::default() }).await.unwrap();

    let start = now();
    assert_eq!(store.reset_due_budgets(start).await.unwrap(), 0, "nothing due yet");

    // In 45 minutes only the team's 30-minute period has passed.
    let later = start + Duration::minutes(45);
    let feed = store.latest_change().await.unwrap();
    assert_eq!(store.reset_due_budgets(later).await.unwrap(), 1);
    let t1 = store.get_team("t1").await.unwrap().unwrap();
    assert_eq!(t1.spend, 0.0);
    assert_eq!(t1.budget_reset_at, Some(later + Duration::minutes(30)));
    assert_eq!(store.get_key("k1").await.unwrap().unwrap().spend, 3.0);
    let changes = store.changes_since(feed, 100).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].id, "t1");

    // Two days on, everything with a period is due; the key without one is never reset.
    let much_later = start + Duration::days(2);
    assert_eq!(store.reset_due_budgets(much_later).await.unwrap(), 3);
    let k1 = store.get_key("k1").await.unwrap().unwrap();
    assert_eq!((k1.spend, k1.budget_reset_at), (0.0, Some(much_later + Duration::hours(1))));
    let u1 = store.get_user("u1").await.unwrap().unwrap();
    assert_eq!((u1.spend, u1.budget_reset_at), (0.0, Some(much_later + Duration::days(1))));
    assert_eq!(store.get_key("k-no-period").await.unwrap().unwrap().spend, 4.0);
    assert_eq!(store.reset_due_budgets(much_later).await.unwrap(), 0, "not twice");

    // A period that no longer parses (written by hand) is skipped, not fatal.
    raw.execute("UPDATE virtual_keys SET budget_duration = 'fortnight' WHERE token_hash = 'k1'")
        .await;
    let far = much_later + Duration::days(10);
    assert_eq!(store.reset_due_budgets(far).await.unwrap(), 2, "user and team only");
});

backend_tests!(premium_budgets_are_charged_scheduled_and_reset, async |store| {
    // Without a period, a premium budget resets at the next month's start (Copilot's reset).
    let mut monthly = key("k-monthly");
    monthly.limits.premium_budget_duration = None;
    monthly.user_id = Some("u1".into());
    monthly.limits.max_premium_requests = Some(20.0);
    let created = store.create_key(monthly).await.unwrap();
    let created_at = created.created_at;
    assert_eq!(created.premium_budget_reset_at, Some(next_month_start(created_at)));
    let mut weekly = key("k-weekly");
    weekly.limits.max_premium_requests = Some(5.0);
    weekly.limits.premium_budget_duration = Some(" 7d ".into());
    let weekly = store.create_key(weekly).await.unwrap();
    assert_eq!(weekly.limits.premium_budget_duration.as_deref(), Some("7d"));
    let weekly_reset = weekly.premium_budget_reset_at.unwrap();
    assert_eq!(weekly_reset, weekly.created_at + Duration::days(7));
    // Without a premium budget the period is kept all the same, so what a key shows as used
    // is this month's; setting or clearing a budget keeps the period, changing it starts anew.
    let mut free = key("k-free");
    free.limits.premium_budget_duration = None;
    let free = store.create_key(free).await.unwrap();
    let month = Some(next_month_start(free.created_at));
    assert_eq!(free.premium_budget_reset_at, month);
    let set = KeyPatch { max_premium_requests: Some(Some(3.0)), ..Default::default() };
    assert_eq!(store.update_key("k-free", set).await.unwrap().premium_budget_reset_at, month);
    let clear = KeyPatch { max_premium_requests: Some(None), ..Default::default() };
    assert_eq!(store.update_key("k-free", clear).await.unwrap().premium_budget_reset_at, month);
    let daily = KeyPatch { premium_budget_duration: Some(Some("1d".into())), ..Default::default() };
    let k = store.update_key("k-free", daily).await.unwrap();
    assert_eq!(k.premium_budget_reset_at, Some(k.updated_at + Duration::days(1)));
    // A user made on the way by a key has a period too.
    let mut owned = key("k-owned");
    owned.user_id = Some("implicit".into());
    let owned = store.create_key(owned).await.unwrap();
    let implicit = store.get_user("implicit").await.unwrap().unwrap();
    assert_eq!(implicit.premium_budget_reset_at, Some(next_month_start(owned.created_at)));
    let bad = KeyPatch { max_premium_requests: Some(Some(-1.0)), ..Default::default() };
    assert!(store.update_key("k-free", bad).await.is_err());

    // Spend records charge their premium units to the key and its user, next to the money.
    let since = now() - Duration::seconds(5);
    let mut opus = record("r1", now());
    opus.token_hash = Some("k-monthly".into());
    opus.user_id = Some("u1".into());
    opus.premium_units = 10.0;
    opus.cost = 0.5;
    let mut included = record("r2", now());
    included.token_hash = Some("k-monthly".into());
    included.premium_units = 0.0;
    included.cost = 0.25;
    store.insert_spend(&[opus, included]).await.unwrap();
    let k = store.get_key("k-monthly").await.unwrap().unwrap();
    assert_eq!((k.premium_spend, k.spend), (10.0, 0.75));
    assert_eq!(store.get_user("u1").await.unwrap().unwrap().premium_spend, 10.0);
    // Other processes read it with the changed spend of budgeted holders.
    let changed = store.spend_changed_since(since).await.unwrap();
    let mine = changed.iter().find(|c| c.kind == EntityKind::Key && c.id == "k-monthly").unwrap();
    assert_eq!((mine.spend, mine.premium_spend), (0.75, 10.0));

    // The month ends: the monthly budget resets and is scheduled for the month after; the
    // weekly one is not due yet.
    let month_end = next_month_start(created_at) + Duration::seconds(1);
    if month_end < weekly_reset {
        assert_eq!(store.reset_due_budgets(month_end).await.unwrap(), 1);
        let k = store.get_key("k-monthly").await.unwrap().unwrap();
        assert_eq!((k.premium_spend, k.spend), (0.0, 0.75), "money has no period here");
        assert_eq!(k.premium_budget_reset_at, Some(next_month_start(month_end)));
        assert_eq!(
            store.get_key("k-weekly").await.unwrap().unwrap().premium_budget_reset_at,
            Some(weekly_reset)
        );
    }
    let later = weekly_reset.max(month_end) + Duration::days(40);
    store
        .update_key("k-weekly", KeyPatch { premium_spend: Some(4.0), ..Default::default() })
        .await
        .unwrap();
    assert!(store.reset_due_budgets(later).await.unwrap() >= 1);
    let w = store.get_key("k-weekly").await.unwrap().unwrap();
    assert_eq!(
        (w.premium_spend, w.premium_budget_reset_at),
        (0.0, Some(later + Duration::days(7)))
    );
});
