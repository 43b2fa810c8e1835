//! Teams and memberships.

use serde_json::json;
use tollgate_store::{NewTeam, Page, TeamPatch};

use crate::fixtures::{assert_conflict, assert_invalid, assert_not_found, key, member, team, user};
use crate::harness::backend_tests;

backend_tests!(team_crud_with_members, async |store| {
    store.create_user(user("alice")).await.unwrap();
    let created = store
        .create_team(NewTeam {
            team_alias: Some("Research".into()),
            models: vec!["gpt-4o".into()],
            members: vec![member("carol", "user"), member("alice", "admin")],
            metadata: json!({"cost_center": 42}),
            ..team("t1")
        })
        .await
        .unwrap();
    assert_eq!(created.team_alias.as_deref(), Some("Research"));
    assert!(!created.blocked);
    assert_eq!(created.members, vec![member("alice", "admin"), member("carol", "user")]);
    assert_eq!(store.get_team("t1").await.unwrap(), Some(created.clone()));
    // Unknown members are created bare, and users see their teams.
    assert_eq!(store.get_user("carol").await.unwrap().unwrap().teams, vec!["t1".to_owned()]);
    assert_eq!(store.get_user("alice").await.unwrap().unwrap().teams, vec!["t1".to_owned()]);

    let updated = store
        .update_team(
            "t1",
            TeamPatch {
                team_alias: Some(None),
                blocked: Some(true),
                max_budget: Some(Some(20.0)),
                budget_duration: Some(Some("30d".into())),
                spend: Some(4.0),
                ..TeamPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.team_alias, None);
    assert!(updated.blocked);
    assert_eq!(updated.limits.max_budget, Some(20.0));
    assert!(updated.budget_reset_at.is_some());
    assert_eq!(updated.spend, 4.0);
    assert_eq!(updated.members, created.members, "members survive updates");
    assert_eq!(store.get_team("t1").await.unwrap(), Some(updated));

    // Add (and re-role) members; duplicates in one call keep the last role.
    let grown = store
        .add_team_members(
            "t1",
            &[member("dave", "user"), member("carol", "user"), member("carol", "admin")],
        )
        .await
        .unwrap();
    assert_eq!(
        grown.members,
        vec![member("alice", "admin"), member("carol", "admin"), member("dave", "user")]
    );
    let shrunk = store.remove_team_members("t1", &["alice".into(), "ghost".into()]).await.unwrap();
    assert_eq!(shrunk.members, vec![member("carol", "admin"), member("dave", "user")]);
    assert!(store.get_user("alice").await.unwrap().unwrap().teams.is_empty());
    assert_eq!(store.get_team("t1").await.unwrap().unwrap().members, shrunk.members);
});

backend_tests!(list_teams_oldest_first, async |store| {
    for id in ["tb", "ta", "tc"] {
        store
            .create_team(NewTeam {
                members: vec![member(&format!("{id}-lead"), "admin")],
                ..team(id)
            })
            .await
            .unwrap();
    }
    let teams = store.list_teams(Page::default()).await.unwrap();
    let ids: Vec<_> = teams.iter().map(|t| t.team_id.as_str()).collect();
    assert_eq!(ids, ["tb", "ta", "tc"]);
    assert!(teams.iter().all(|t| t.members.len() == 1), "members filled on list");
    let second = store.list_teams(Page { page: 2, size: 1, ..Page::default() }).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].team_id, "ta");
});

backend_tests!(delete_team_cascades, async |store| {
    store
        .create_team(NewTeam { members: vec![member("alice", "admin")], ..team("t1") })
        .await
        .unwrap();
    store
        .create_team(NewTeam { members: vec![member("alice", "user")], ..team("t2") })
        .await
        .unwrap();
    let mut k = key("h1");
    k.team_id = Some("t1".into());
    k.user_id = Some("alice".into());
    store.create_key(k).await.unwrap();

    assert_eq!(store.delete_teams(&["t1".into(), "ghost".into()]).await.unwrap(), 1);
    assert_eq!(store.get_team("t1").await.unwrap(), None);
    let kept = store.get_key("h1").await.unwrap().expect("key survives its team");
    assert_eq!(kept.team_id, None);
    assert_eq!(kept.user_id.as_deref(), Some("alice"));
    assert_eq!(store.get_user("alice").await.unwrap().unwrap().teams, vec!["t2".to_owned()]);
    assert_eq!(store.delete_teams(&[]).await.unwrap(), 0);
});

backend_tests!(team_errors, async |store| {
    store.create_team(team("t1")).await.unwrap();
    assert_conflict(store.create_team(team("t1")).await, "t1");
    assert_not_found(store.update_team("ghost", TeamPatch::default()).await, "team");
    assert_not_found(store.add_team_members("ghost", &[member("a", "user")]).await, "team");
    assert_not_found(store.remove_team_members("ghost", &["a".into()]).await, "team");
    assert_invalid(store.add_team_members("t1", &[member("a", "owner")]).await);
    assert_invalid(
        store.create_team(NewTeam { members: vec![member("a", "boss")], ..team("t2") }).await,
    );
    assert_eq!(store.get_team("t2").await.unwrap(), None, "failed create leaves nothing");
    assert_eq!(store.get_user("a").await.unwrap(), None);
});
