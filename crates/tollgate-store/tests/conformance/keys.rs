//! Virtual keys: CRUD, patches, regeneration, listing, errors.

use chrono::Duration;
use serde_json::json;
use tollgate_store::{KeyFilter, KeyPatch, Limits, NewKey, StoreError};

use crate::fixtures::{
    assert_conflict, assert_invalid, assert_not_found, at, close_to, key, now, team,
};
use crate::harness::backend_tests;

backend_tests!(key_crud, async |store| {
    store.create_team(team("t1")).await.unwrap();
    let before = now();
    let created = store
        .create_key(NewKey {
            token_hash: "h1".into(),
            key_name: "sk-...0001".into(),
            key_alias: Some("ci".into()),
            user_id: Some("alice".into()),
            team_id: Some("t1".into()),
            models: vec!["gpt-4o".into(), "claude-*".into()],
            limits: Limits {
                max_budget: Some(10.5),
                budget_duration: Some("30d".into()),
                rpm_limit: Some(60),
                tpm_limit: Some(100_000),
                max_parallel_requests: Some(4),
                max_premium_requests: Some(50.0),
                premium_budget_duration: Some("7d".into()),
            },
            expires: Some(at("2030-01-01T00:00:00.123456Z")),
            blocked: false,
            metadata: json!({"env": "ci", "n": 1}),
            permissions: serde_json::Value::Null,
            object_permission: tollgate_store::ObjectPermission::default(),
        })
        .await
        .unwrap();
    assert_eq!(created.token_hash, "h1");
    assert_eq!(created.key_alias.as_deref(), Some("ci"));
    assert_eq!(created.models, vec!["gpt-4o".to_owned(), "claude-*".to_owned()]);
    assert_eq!(created.limits.rpm_limit, Some(60));
    assert_eq!(created.spend, 0.0);
    assert_eq!(created.permissions, json!({}));
    assert_eq!(created.expires, Some(at("2030-01-01T00:00:00.123456Z")));
    assert!(close_to(created.budget_reset_at.unwrap(), before + Duration::days(30)));
    assert!(close_to(created.created_at, before));
    assert_eq!(created.created_at, created.updated_at);

    // Reading back gives exactly what the write returned.
    assert_eq!(store.get_key("h1").await.unwrap(), Some(created.clone()));
    assert_eq!(store.get_key("missing").await.unwrap(), None);

    assert_eq!(store.delete_keys(&["h1".into(), "missing".into()]).await.unwrap(), 1);
    assert_eq!(store.get_key("h1").await.unwrap(), None);
    assert_eq!(store.delete_keys(&[]).await.unwrap(), 0);
});

backend_tests!(key_patch_semantics, async |store| {
    store.create_team(team("t1")).await.unwrap();
    let mut new = key("h1");
    new.key_alias = Some("alias".into());
    new.user_id = Some("alice".into());
    new.team_id = Some("t1".into());
    new.limits.max_budget = Some(5.0);
    new.limits.budget_duration = Some("1h".into());
    new.expires = Some(at("2030-01-01T00:00:00Z"));
    let created = store.create_key(new).await.unwrap();

    // An empty patch changes nothing but the update time.
    let same = store.update_key("h1", KeyPatch::default()).await.unwrap();
    assert_eq!(same.key_alias, created.key_alias);
    assert_eq!(same.limits, created.limits);
    assert_eq!(same.budget_reset_at, created.budget_reset_at);
    assert!(same.updated_at >= created.updated_at);

    // `Some(value)` sets, `None` keeps.
    let set = store
        .update_key(
            "h1",
            KeyPatch {
                models: Some(vec!["gpt-4o-mini".into()]),
                rpm_limit: Some(Some(10)),
                blocked: Some(true),
                metadata: Some(json!({"owner": "ops"})),
                permissions: Some(json!({"admin": true})),
                spend: Some(2.5),
                ..KeyPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(set.models, vec!["gpt-4o-mini".to_owned()]);
    assert_eq!(set.limits.rpm_limit, Some(10));
    assert_eq!(set.limits.max_budget, Some(5.0));
    assert!(set.blocked);
    assert_eq!(set.metadata, json!({"owner": "ops"}));
    assert_eq!(set.permissions, json!({"admin": true}));
    assert_eq!(set.spend, 2.5);
    assert_eq!(set.key_alias.as_deref(), Some("alias"));

    // `Some(None)` clears; clearing the period clears the schedule.
    let cleared = store
        .update_key(
            "h1",
            KeyPatch {
                key_alias: Some(None),
                user_id: Some(None),
                team_id: Some(None),
                max_budget: Some(None),
                budget_duration: Some(None),
                expires: Some(None),
                metadata: Some(serde_json::Value::Null),
                ..KeyPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.key_alias, None);
    assert_eq!(cleared.user_id, None);
    assert_eq!(cleared.team_id, None);
    assert_eq!(cleared.limits.max_budget, None);
    assert_eq!(cleared.limits.budget_duration, None);
    assert_eq!(cleared.budget_reset_at, None);
    assert_eq!(cleared.expires, None);
    assert_eq!(cleared.metadata, json!({}));
    assert_eq!(cleared.spend, 2.5);

    // Setting a period schedules a reset one period from now.
    let start = now();
    let scheduled = store
        .update_key(
            "h1",
            KeyPatch { budget_duration: Some(Some("24h".into())), ..KeyPatch::default() },
        )
        .await
        .unwrap();
    assert_eq!(scheduled.limits.budget_duration.as_deref(), Some("24h"));
    assert!(close_to(scheduled.budget_reset_at.unwrap(), start + Duration::hours(24)));
    assert_eq!(store.get_key("h1").await.unwrap(), Some(scheduled));

    // A patch naming an unknown user creates it bare.
    let owned = store
        .update_key("h1", KeyPatch { user_id: Some(Some("bob".into())), ..KeyPatch::default() })
        .await
        .unwrap();
    assert_eq!(owned.user_id.as_deref(), Some("bob"));
    assert!(store.get_user("bob").await.unwrap().is_some());
});

backend_tests!(regenerate_keeps_spend, async |store| {
    let mut new = key("old");
    new.key_alias = Some("svc".into());
    new.models = vec!["gpt-4o".into()];
    store.create_key(new).await.unwrap();
    store.update_key("old", KeyPatch { spend: Some(3.25), ..KeyPatch::default() }).await.unwrap();
    let before = store.get_key("old").await.unwrap().unwrap();

    let regenerated = store.regenerate_key("old", "new", "sk-...9999").await.unwrap();
    assert_eq!(regenerated.token_hash, "new");
    assert_eq!(regenerated.key_name, "sk-...9999");
    assert_eq!(regenerated.spend, 3.25);
    assert_eq!(regenerated.key_alias.as_deref(), Some("svc"));
    assert_eq!(regenerated.models, before.models);
    assert_eq!(regenerated.created_at, before.created_at);
    assert_eq!(store.get_key("old").await.unwrap(), None);
    assert_eq!(store.get_key("new").await.unwrap(), Some(regenerated));

    assert_not_found(store.regenerate_key("old", "newer", "x").await, "key");
    store.create_key(key("other")).await.unwrap();
    assert_conflict(store.regenerate_key("other", "new", "x").await, "hash");
});

backend_tests!(list_keys_filters_and_paging, async |store| {
    store.create_team(team("t1")).await.unwrap();
    for (hash, user, team_id, alias) in [
        ("h1", Some("a"), Some("t1"), None),
        ("h2", Some("a"), None, Some("two")),
        ("h3", Some("b"), Some("t1"), None),
        ("h4", Some("a"), None, None),
        ("h5", None, None, Some("five")),
    ] {
        let mut new = key(hash);
        new.user_id = user.map(Into::into);
        new.team_id = team_id.map(Into::into);
        new.key_alias = alias.map(Into::into);
        store.create_key(new).await.unwrap();
    }
    let hashes = |keys: Vec<tollgate_store::KeyRecord>| {
        keys.into_iter().map(|k| k.token_hash).collect::<Vec<_>>()
    };
    let all = store.list_keys(KeyFilter::default()).await.unwrap();
    assert_eq!(hashes(all), ["h5", "h4", "h3", "h2", "h1"], "newest first");

    let by_user = KeyFilter { user_id: Some("a".into()), ..KeyFilter::default() };
    assert_eq!(hashes(store.list_keys(by_user).await.unwrap()), ["h4", "h2", "h1"]);
    let by_team = KeyFilter { team_id: Some("t1".into()), ..KeyFilter::default() };
    assert_eq!(hashes(store.list_keys(by_team).await.unwrap()), ["h3", "h1"]);
    let by_alias = KeyFilter { key_alias: Some("five".into()), ..KeyFilter::default() };
    assert_eq!(hashes(store.list_keys(by_alias).await.unwrap()), ["h5"]);
    let both =
        KeyFilter { user_id: Some("a".into()), team_id: Some("t1".into()), ..KeyFilter::default() };
    assert_eq!(hashes(store.list_keys(both).await.unwrap()), ["h1"]);

    let page = |page, size| KeyFilter { page, size, ..KeyFilter::default() };
    assert_eq!(hashes(store.list_keys(page(1, 2)).await.unwrap()), ["h5", "h4"]);
    assert_eq!(hashes(store.list_keys(page(2, 2)).await.unwrap()), ["h3", "h2"]);
    assert_eq!(hashes(store.list_keys(page(3, 2)).await.unwrap()), ["h1"]);
    assert!(store.list_keys(page(4, 2)).await.unwrap().is_empty());
    assert_eq!(store.list_keys(page(0, 2)).await.unwrap().len(), 2, "page 0 counts as 1");
});

backend_tests!(key_conflicts_and_not_found, async |store| {
    let mut first = key("h1");
    first.key_alias = Some("shared".into());
    store.create_key(first).await.unwrap();

    assert_conflict(store.create_key(key("h1")).await, "hash");
    let mut dup_alias = key("h2");
    dup_alias.key_alias = Some("shared".into());
    assert_conflict(store.create_key(dup_alias).await, "shared");
    assert_eq!(store.get_key("h2").await.unwrap(), None, "failed create leaves nothing");

    store.create_key(key("h2")).await.unwrap();
    let taken = KeyPatch { key_alias: Some(Some("shared".into())), ..KeyPatch::default() };
    assert_conflict(store.update_key("h2", taken).await, "shared");

    assert_not_found(store.update_key("nope", KeyPatch::default()).await, "key");
    match store.update_key("nope", KeyPatch::default()).await {
        Err(StoreError::NotFound { id, .. }) => assert!(!id.contains("nope"), "hash echoed: {id}"),
        other => panic!("{other:?}"),
    }

    // A key's team must exist; its user is created when missing.
    let mut orphan = key("h3");
    orphan.team_id = Some("ghost".into());
    assert_not_found(store.create_key(orphan).await, "team");
    let to_ghost = KeyPatch { team_id: Some(Some("ghost".into())), ..KeyPatch::default() };
    assert_not_found(store.update_key("h2", to_ghost).await, "team");

    let mut owned = key("h4");
    owned.user_id = Some("newbie".into());
    store.create_key(owned).await.unwrap();
    let newbie = store.get_user("newbie").await.unwrap().expect("created bare");
    assert_eq!(newbie.spend, 0.0);
    assert!(newbie.teams.is_empty());
    assert_eq!(newbie.metadata, json!({}));

    // Malformed periods are refused before anything is written.
    let mut bad = key("h5");
    bad.limits.budget_duration = Some("30x".into());
    assert_invalid(store.create_key(bad).await);
    assert_eq!(store.get_key("h5").await.unwrap(), None);
    let bad_patch = KeyPatch { budget_duration: Some(Some("soon".into())), ..KeyPatch::default() };
    assert_invalid(store.update_key("h2", bad_patch).await);
    let negative = KeyPatch { spend: Some(-1.0), ..KeyPatch::default() };
    assert_invalid(store.update_key("h2", negative).await);
});
