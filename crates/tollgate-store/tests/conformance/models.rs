//! Stored models: create, read, list, update, delete, and the change feed.

use serde_json::json;
use tollgate_store::{EntityKind, ModelPatch, NewModel, StoreError};

use crate::fixtures::{assert_invalid, now};
use crate::harness::backend_tests;

fn model(id: &str, name: &str) -> NewModel {
    NewModel {
        model_id: id.into(),
        model_name: name.into(),
        litellm_params: json!({"model": "openai/gpt-4o", "api_base": "http://x/v1",
                               "api_key": {"sealed": "AAAA"}}),
        model_info: serde_json::Value::Null,
        created_by: Some("master key".into()),
    }
}

backend_tests!(models_round_trip_and_are_listed_oldest_first, async |store| {
    let before = now();
    let a = store.create_model(model("m-1", "gpt-4o")).await.unwrap();
    assert_eq!(a.model_id, "m-1");
    assert_eq!(a.model_name, "gpt-4o");
    assert_eq!(a.litellm_params["api_key"]["sealed"], "AAAA");
    assert_eq!(a.model_info, json!({}));
    assert_eq!(a.created_by.as_deref(), Some("master key"));
    assert_eq!(a.updated_by.as_deref(), Some("master key"));
    assert!(a.created_at >= before && a.created_at == a.updated_at);
    assert_eq!(store.get_model("m-1").await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_model("nope").await.unwrap(), None);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let b = store.create_model(model("m-2", "gpt-4o")).await.unwrap();
    let listed = store.list_models().await.unwrap();
    assert_eq!(listed, vec![a.clone(), b.clone()]);

    let err = store.create_model(model("m-1", "other")).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
});

backend_tests!(models_update_replaces_given_fields_only, async |store| {
    let a = store.create_model(model("m-1", "gpt-4o")).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let patch = ModelPatch {
        litellm_params: Some(json!({"model": "openai/gpt-4o", "api_base": "http://y/v1"})),
        model_info: Some(json!({"mode": "chat"})),
        updated_by: Some("admin alice".into()),
        ..Default::default()
    };
    let b = store.update_model("m-1", patch).await.unwrap();
    assert_eq!(b.model_name, "gpt-4o");
    assert_eq!(b.litellm_params["api_base"], "http://y/v1");
    assert!(b.litellm_params.get("api_key").is_none());
    assert_eq!(b.model_info, json!({"mode": "chat"}));
    assert_eq!(b.created_by, a.created_by);
    assert_eq!(b.updated_by.as_deref(), Some("admin alice"));
    assert_eq!(b.created_at, a.created_at);
    assert!(b.updated_at > a.updated_at);
    assert_eq!(store.get_model("m-1").await.unwrap(), Some(b));

    let missing = store.update_model("nope", ModelPatch::default()).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { kind: "model", .. }), "{missing}");
    let bad = ModelPatch { litellm_params: Some(json!("not an object")), ..Default::default() };
    assert_invalid(store.update_model("m-1", bad).await);
    assert_invalid(store.create_model(model(" ", "x")).await);
});

backend_tests!(model_changes_reach_the_feed, async |store| {
    let start = store.latest_change().await.unwrap();
    store.create_model(model("m-1", "gpt-4o")).await.unwrap();
    store
        .update_model("m-1", ModelPatch { model_name: Some("gpt".into()), ..Default::default() })
        .await
        .unwrap();
    assert!(store.delete_model("m-1").await.unwrap());
    assert!(!store.delete_model("m-1").await.unwrap(), "a second delete finds nothing");
    assert_eq!(store.get_model("m-1").await.unwrap(), None);
    let changes = store.changes_since(start, 100).await.unwrap();
    let models: Vec<_> = changes.iter().filter(|c| c.kind == EntityKind::Model).collect();
    assert_eq!(models.len(), 3, "{changes:?}");
    assert!(models.iter().all(|c| c.id == "m-1"));
});
