//! MCP access (`object_permission`) of keys and teams: stored, patched, defaulted, and
//! removing a server from every holder.

use std::collections::BTreeMap;

use tollgate_store::{
    EntityKind, KeyPatch, NewKey, NewTeam, ObjectPermission, StoreError, TeamPatch,
};

use crate::fixtures::{assert_invalid, key, team};
use crate::harness::backend_tests;

/// `mcp_servers` as given, and `tools` as `server: [tool, ...]`.
fn access(servers: Option<&[&str]>, tools: &[(&str, &[&str])]) -> ObjectPermission {
    let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    ObjectPermission {
        mcp_servers: servers.map(names),
        mcp_tool_permissions: tools
            .iter()
            .map(|(server, list)| ((*server).to_owned(), names(list)))
            .collect::<BTreeMap<_, _>>(),
    }
}

backend_tests!(object_permission_defaults_to_empty, async |store, db| {
    let k = store.create_key(key("h1")).await.unwrap();
    assert_eq!(k.object_permission, ObjectPermission::default());
    let t = store.create_team(team("t1")).await.unwrap();
    assert_eq!(t.object_permission, ObjectPermission::default());
    // Stored as `{}`, the column's default for rows written before it existed.
    let empty = "SELECT COUNT(*) FROM virtual_keys WHERE object_permission = '{}'";
    assert_eq!(db.scalar(empty).await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM teams WHERE object_permission = '{}'").await, 1);

    // A row written without the column (as by an older version) reads as empty too.
    db.execute(
        "INSERT INTO teams (team_id, created_at, updated_at) \
         VALUES ('old', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
    )
    .await;
    let old = store.get_team("old").await.unwrap().unwrap();
    assert_eq!(old.object_permission, ObjectPermission::default());
});

backend_tests!(key_object_permission_round_trips, async |store| {
    let given = access(Some(&["memory", "filesystem"]), &[("filesystem", &["read_file"])]);
    let created =
        store.create_key(NewKey { object_permission: given.clone(), ..key("h1") }).await.unwrap();
    assert_eq!(created.object_permission, given);
    assert_eq!(store.get_key("h1").await.unwrap(), Some(created.clone()));
    let listed = store.list_keys(Default::default()).await.unwrap();
    assert_eq!(listed[0].object_permission, given);

    // A patch without it keeps it; one with it replaces it whole.
    let kept = store
        .update_key("h1", KeyPatch { blocked: Some(true), ..KeyPatch::default() })
        .await
        .unwrap();
    assert_eq!(kept.object_permission, given);
    let none_allowed = access(Some(&[]), &[]);
    let replaced = store
        .update_key(
            "h1",
            KeyPatch { object_permission: Some(none_allowed.clone()), ..KeyPatch::default() },
        )
        .await
        .unwrap();
    assert_eq!(replaced.object_permission, none_allowed, "no servers is not the same as unset");
    assert!(replaced.object_permission.mcp_tool_permissions.is_empty());
    assert_eq!(store.get_key("h1").await.unwrap(), Some(replaced));

    // Back to saying nothing.
    let cleared = store
        .update_key(
            "h1",
            KeyPatch {
                object_permission: Some(ObjectPermission::default()),
                ..KeyPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cleared.object_permission.mcp_servers, None);
    // Regenerating keeps it.
    let tools_only = access(None, &[("memory", &["read_graph"])]);
    store
        .update_key(
            "h1",
            KeyPatch { object_permission: Some(tools_only.clone()), ..KeyPatch::default() },
        )
        .await
        .unwrap();
    let moved = store.regenerate_key("h1", "h2", "sk-...h2").await.unwrap();
    assert_eq!(moved.object_permission, tools_only);
});

backend_tests!(team_object_permission_round_trips, async |store| {
    let given = access(Some(&["memory"]), &[("memory", &["read_graph", "search_nodes"])]);
    let created = store
        .create_team(NewTeam { object_permission: given.clone(), ..team("t1") })
        .await
        .unwrap();
    assert_eq!(created.object_permission, given);
    assert_eq!(store.get_team("t1").await.unwrap(), Some(created));
    assert_eq!(store.list_teams(Default::default()).await.unwrap()[0].object_permission, given);

    let kept = store
        .update_team("t1", TeamPatch { blocked: Some(true), ..TeamPatch::default() })
        .await
        .unwrap();
    assert_eq!(kept.object_permission, given);
    // Membership changes keep it as well.
    let grown = store.add_team_members("t1", &[crate::fixtures::member("u", "user")]).await;
    assert_eq!(grown.unwrap().object_permission, given);
    let other = access(Some(&["filesystem"]), &[]);
    let replaced = store
        .update_team(
            "t1",
            TeamPatch { object_permission: Some(other.clone()), ..TeamPatch::default() },
        )
        .await
        .unwrap();
    assert_eq!(replaced.object_permission, other);
    assert_eq!(store.get_team("t1").await.unwrap(), Some(replaced));
});

backend_tests!(object_permission_names_must_be_non_empty, async |store| {
    let empty_server = access(Some(&[""]), &[]);
    assert_invalid(
        store.create_key(NewKey { object_permission: empty_server.clone(), ..key("h1") }).await,
    );
    assert_eq!(store.get_key("h1").await.unwrap(), None, "nothing written");
    let nul_tool = access(None, &[("memory", &["read\0graph"])]);
    assert_invalid(store.create_team(NewTeam { object_permission: nul_tool, ..team("t1") }).await);
    store.create_team(team("t2")).await.unwrap();
    let empty_key = access(None, &[("", &["x"])]);
    let patch = TeamPatch { object_permission: Some(empty_key), ..TeamPatch::default() };
    assert_invalid(store.update_team("t2", patch).await);
    store.create_key(key("h3")).await.unwrap();
    let patch = KeyPatch { object_permission: Some(empty_server), ..KeyPatch::default() };
    match store.update_key("h3", patch).await {
        Err(StoreError::Invalid(m)) => assert!(m.contains("mcp_servers"), "{m}"),
        other => panic!("expected invalid, got {other:?}"),
    }
});

backend_tests!(forget_mcp_server_removes_it_everywhere, async |store| {
    use EntityKind::{Key, Team};
    let both = access(
        Some(&["memory", "filesystem"]),
        &[("memory", &["read_graph"]), ("filesystem", &["read_file"])],
    );
    let only_memory = access(Some(&["memory"]), &[]);
    let tools_only = access(None, &[("memory", &["search_nodes"])]);
    let unrelated = access(Some(&["filesystem"]), &[("filesystem", &["list_directory"])]);
    store.create_key(NewKey { object_permission: both.clone(), ..key("k-both") }).await.unwrap();
    store.create_key(NewKey { object_permission: only_memory, ..key("k-only") }).await.unwrap();
    store.create_key(NewKey { object_permission: unrelated.clone(), ..key("k-fs") }).await.unwrap();
    store.create_key(key("k-none")).await.unwrap();
    store.create_team(NewTeam { object_permission: tools_only, ..team("t-tools") }).await.unwrap();
    store
        .create_team(NewTeam { object_permission: unrelated.clone(), ..team("t-fs") })
        .await
        .unwrap();
    store.create_team(team("t-none")).await.unwrap();
    let untouched_key = store.get_key("k-fs").await.unwrap().unwrap();
    let untouched_team = store.get_team("t-fs").await.unwrap().unwrap();
    let before_key = store.get_key("k-both").await.unwrap().unwrap();
    let feed_before = store.latest_change().await.unwrap();

    assert_eq!(store.forget_mcp_server("memory").await.unwrap(), 3);

    let k = store.get_key("k-both").await.unwrap().unwrap();
    assert_eq!(
        k.object_permission,
        access(Some(&["filesystem"]), &[("filesystem", &["read_file"])])
    );
    assert!(k.updated_at > before_key.updated_at, "stamped like any admin write");
    assert_eq!(
        store.get_key("k-only").await.unwrap().unwrap().object_permission,
        access(Some(&[]), &[]),
        "a key that named only the removed server now allows none, not all"
    );
    let t = store.get_team("t-tools").await.unwrap().unwrap();
    assert_eq!(t.object_permission, ObjectPermission::default());
    // Holders that did not name it are left exactly as they were.
    assert_eq!(store.get_key("k-fs").await.unwrap().unwrap(), untouched_key);
    assert_eq!(store.get_team("t-fs").await.unwrap().unwrap(), untouched_team);
    assert_eq!(
        store.get_key("k-none").await.unwrap().unwrap().object_permission,
        ObjectPermission::default()
    );

    // Other processes hear of exactly the rows that changed.
    let mut fed: Vec<(EntityKind, String)> = store
        .changes_since(feed_before, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.id))
        .collect();
    fed.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        fed,
        [(Key, "k-both".to_owned()), (Key, "k-only".to_owned()), (Team, "t-tools".to_owned())]
    );

    // Nothing left to remove: nothing changes, nothing is announced.
    let feed_after = store.latest_change().await.unwrap();
    assert_eq!(store.forget_mcp_server("memory").await.unwrap(), 0);
    assert_eq!(store.forget_mcp_server("never-named").await.unwrap(), 0);
    assert_eq!(store.latest_change().await.unwrap(), feed_after);
    assert_eq!(store.get_key("k-fs").await.unwrap().unwrap(), untouched_key);
});
