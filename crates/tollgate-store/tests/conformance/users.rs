//! Users: CRUD, listing, deletion cascades, errors.

use chrono::Duration;
use serde_json::json;
use tollgate_store::{KeyPatch, Limits, NewUser, Page, Store, UserPatch};

use crate::fixtures::{
    assert_conflict, assert_invalid, assert_not_found, close_to, key, member, now, team, user,
};
use crate::harness::backend_tests;

backend_tests!(user_crud, async |store| {
    let start = now();
    let created = store
        .create_user(NewUser {
            user_id: "alice".into(),
            user_email: Some("alice@example.com".into()),
            user_role: Some("internal_user".into()),
            models: vec!["gpt-4o".into()],
            limits: Limits {
                max_budget: Some(100.0),
                budget_duration: Some("7d".into()),
                ..Limits::default()
            },
            metadata: json!({"dept": "research"}),
        })
        .await
        .unwrap();
    assert_eq!(created.user_email.as_deref(), Some("alice@example.com"));
    assert_eq!(created.models, vec!["gpt-4o".to_owned()]);
    assert!(created.teams.is_empty());
    assert!(close_to(created.budget_reset_at.unwrap(), start + Duration::days(7)));
    assert_eq!(store.get_user("alice").await.unwrap(), Some(created.clone()));
    assert_eq!(store.get_user("nobody").await.unwrap(), None);

    let updated = store
        .update_user(
            "alice",
            UserPatch {
                user_email: Some(None),
                user_role: Some(Some("proxy_admin".into())),
                max_budget: Some(Some(50.0)),
                budget_duration: Some(None),
                tpm_limit: Some(Some(1000)),
                metadata: Some(json!({"dept": "ops"})),
                spend: Some(1.5),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.user_email, None);
    assert_eq!(updated.user_role.as_deref(), Some("proxy_admin"));
    assert_eq!(updated.limits.max_budget, Some(50.0));
    assert_eq!(updated.limits.budget_duration, None);
    assert_eq!(updated.budget_reset_at, None);
    assert_eq!(updated.limits.tpm_limit, Some(1000));
    assert_eq!(updated.spend, 1.5);
    assert_eq!(updated.models, vec!["gpt-4o".to_owned()]);
    assert_eq!(store.get_user("alice").await.unwrap(), Some(updated));
});

/// Users on a page, with their teams.
async fn ids(store: &Store, page: u32, size: u32) -> Vec<(String, Vec<String>)> {
    store
        .list_users(Page { page, size, ..Page::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.user_id, u.teams))
        .collect()
}

backend_tests!(list_users_oldest_first, async |store| {
    for id in ["u3", "u1", "u2"] {
        store.create_user(user(id)).await.unwrap();
    }
    store
        .create_team(tollgate_store::NewTeam { members: vec![member("u1", "admin")], ..team("t1") })
        .await
        .unwrap();
    let all = ids(&store, 0, 0).await;
    assert_eq!(
        all,
        [("u3".into(), vec![]), ("u1".into(), vec!["t1".to_owned()]), ("u2".into(), vec![])]
    );
    assert_eq!(ids(&store, 2, 2).await, [("u2".to_owned(), vec![])]);
});

backend_tests!(delete_user_cascades, async |store| {
    store.create_user(user("alice")).await.unwrap();
    store.create_user(user("bob")).await.unwrap();
    store
        .create_team(tollgate_store::NewTeam {
            members: vec![member("alice", "admin"), member("bob", "user")],
            ..team("t1")
        })
        .await
        .unwrap();
    let mut owned = key("h1");
    owned.user_id = Some("alice".into());
    owned.team_id = Some("t1".into());
    store.create_key(owned).await.unwrap();

    assert_eq!(store.delete_users(&["alice".into(), "ghost".into()]).await.unwrap(), 1);
    assert_eq!(store.get_user("alice").await.unwrap(), None);
    let kept = store.get_key("h1").await.unwrap().expect("key survives its owner");
    assert_eq!(kept.user_id, None);
    assert_eq!(kept.team_id.as_deref(), Some("t1"));
    let t1 = store.get_team("t1").await.unwrap().unwrap();
    assert_eq!(t1.members, vec![member("bob", "user")]);
    assert_eq!(store.delete_users(&[]).await.unwrap(), 0);
});

backend_tests!(user_errors, async |store| {
    store.create_user(user("alice")).await.unwrap();
    assert_conflict(store.create_user(user("alice")).await, "alice");
    assert_not_found(store.update_user("ghost", UserPatch::default()).await, "user");
    assert_invalid(store.create_user(user("")).await);
    let bad = UserPatch { budget_duration: Some(Some("0d".into())), ..UserPatch::default() };
    assert_invalid(store.update_user("alice", bad).await);
    let mut bad = user("bob");
    bad.limits.rpm_limit = Some(-5);
    assert_invalid(store.create_user(bad).await);
    // Keys are not touched by user errors.
    assert_not_found(store.update_key("nope", KeyPatch::default()).await, "key");
});
