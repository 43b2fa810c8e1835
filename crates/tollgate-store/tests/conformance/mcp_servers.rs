//! Stored MCP servers: create, read, list, update, delete, and the change feed.

use serde_json::json;
use tollgate_store::{EntityKind, McpServerPatch, NewMcpServer, StoreError};

use crate::fixtures::{assert_invalid, now};
use crate::harness::backend_tests;

fn server(name: &str) -> NewMcpServer {
    NewMcpServer {
        name: name.into(),
        entry: json!({"url": "http://mcp.example/mcp", "auth_type": "bearer_token",
                      "auth_value": {"tollgate_sealed": "00:ab"}}),
        created_by: Some("master_key".into()),
    }
}

backend_tests!(mcp_servers_round_trip_and_are_listed_oldest_first, async |store| {
    let before = now();
    let a = store.create_mcp_server(server("wiki")).await.unwrap();
    assert_eq!(a.name, "wiki");
    assert_eq!(a.entry["auth_value"]["tollgate_sealed"], "00:ab");
    assert_eq!(a.created_by.as_deref(), Some("master_key"));
    assert_eq!(a.updated_by.as_deref(), Some("master_key"));
    assert!(a.created_at >= before && a.created_at == a.updated_at);
    assert_eq!(store.get_mcp_server("wiki").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_mcp_server("nope").await.unwrap(), None);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let b = store.create_mcp_server(server("memory")).await.unwrap();
    assert_eq!(store.list_mcp_servers().await.unwrap(), vec![a, b]);

    let err = store.create_mcp_server(server("wiki")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_invalid(store.create_mcp_server(server(" ")).await);
    let not_object = NewMcpServer { entry: json!(["x"]), ..server("x") };
    assert_invalid(store.create_mcp_server(not_object).await);
});

backend_tests!(mcp_server_update_replaces_the_entry, async |store| {
    let a = store.create_mcp_server(server("wiki")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let patch = McpServerPatch {
        entry: json!({"command": "wiki-mcp", "args": ["--stdio"]}),
        updated_by: Some("key:ops".into()),
    };
    let b = store.update_mcp_server("wiki", patch).await.unwrap();
    assert_eq!(b.entry, json!({"command": "wiki-mcp", "args": ["--stdio"]}));
    assert_eq!(b.created_by, a.created_by);
    assert_eq!(b.updated_by.as_deref(), Some("key:ops"));
    assert_eq!(b.created_at, a.created_at);
    assert!(b.updated_at > a.updated_at);
    assert_eq!(store.get_mcp_server("wiki").await.unwrap(), Some(b));

    let patch = McpServerPatch { entry: json!({"url": "http://x/mcp"}), updated_by: None };
    let missing = store.update_mcp_server("nope", patch).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { kind: "mcp_server", .. }), "{missing}");
    let bad = McpServerPatch { entry: json!("text"), updated_by: None };
    assert_invalid(store.update_mcp_server("wiki", bad).await);
});

backend_tests!(mcp_server_changes_reach_the_feed, async |store| {
    let start = store.latest_change().await.unwrap();
    store.create_mcp_server(server("wiki")).await.unwrap();
    let patch = McpServerPatch { entry: json!({"url": "http://y/mcp"}), updated_by: None };
    store.update_mcp_server("wiki", patch).await.unwrap();
    assert!(store.delete_mcp_server("wiki").await.unwrap());
    assert!(!store.delete_mcp_server("wiki").await.unwrap(), "a second delete finds nothing");
    assert_eq!(store.get_mcp_server("wiki").await.unwrap(), None);
    let changes = store.changes_since(start, 100).await.unwrap();
    let ours: Vec<_> = changes.iter().filter(|c| c.kind == EntityKind::McpServer).collect();
    assert_eq!(ours.len(), 3, "{changes:?}");
    assert!(ours.iter().all(|c| c.id == "wiki"));
});
