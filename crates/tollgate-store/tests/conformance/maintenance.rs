//! Migrations, partitions, retention and budget resets.

use chrono::Duration;
use tollgate_store::{Backend, KeyPatch, NewTeam, SpendFilter, TeamPatch, UserPatch};

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
