//! Request ids: tollgate names every spend record itself; the client's `x-request-id` is
//! kept beside it, echoed back, and searchable, but never merges two requests into one.

use std::time::Duration;

use serde_json::{Value, json};
use tollgate_store::SpendFilter;
use tollgate_testkit::TestApp;

use crate::helpers::*;
use crate::keys::{COST, admin_get, keyed_setup, new_key};

async fn call_with_id(app: &TestApp, key: &str, id: &str) -> reqwest::Response {
    client()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-request-id", id)
        .json(&chat("priced", "hi"))
        .send()
        .await
        .unwrap()
}

/// What the directory does every 30 s (5 s in tests): read every key's spend back from the
/// database, replacing what it counted in memory.
async fn reconcile(app: &TestApp) {
    app.state.directory().load_all(app.store()).await.unwrap();
}

#[tokio::test]
async fn ten_requests_with_one_client_id_are_ten_records_and_ten_charges() {
    let (mock, app) = keyed_setup("").await;
    let key = new_key(&app, json!({"key_alias": "repeats"})).await;
    for _ in 0..10 {
        let resp = call_with_id(&app, &key, "same-id").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-request-id"], "same-id", "the client's id is echoed");
    }
    assert_eq!(mock.last_request().unwrap().header("x-request-id"), Some("same-id"));
    assert_eq!(app.wait_for_spend_written(10, Duration::from_secs(10)).await, 10);

    let hash = tollgate_proxy::access::keys::hash(&key);
    let rows = app
        .store()
        .spend_logs(SpendFilter { token_hash: Some(hash.clone()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rows.len(), 10, "one record per request");
    let mut own: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    own.sort_unstable();
    own.dedup();
    assert_eq!(own.len(), 10, "each record has an id of its own");
    assert!(own.iter().all(|id| uuid_v7(id)), "{own:?}");
    assert!(rows.iter().all(|r| r.client_request_id.as_deref() == Some("same-id")));
    let stored = app.store().get_key(&hash).await.unwrap().unwrap();
    assert!((stored.spend - 10.0 * COST).abs() < 1e-9, "{}", stored.spend);

    // The spend log answers name both ids, and the client's id finds all ten.
    let (status, found) = admin_get(&app, "/spend/logs?client_request_id=same-id").await;
    assert_eq!(status, 200, "{found}");
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 10);
    assert!(found.iter().all(|r| r["client_request_id"] == "same-id"));
    assert!(found.iter().all(|r| r["request_id"].as_str().is_some_and(uuid_v7)));
    let (_, none) = admin_get(&app, "/spend/logs?client_request_id=other").await;
    assert_eq!(none, json!([]));

    // A request without an id of its own gets tollgate's, which is also the record's.
    let resp = crate::keys::call(&app, &key, "priced").await;
    let made = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid_v7(&made));
    assert_eq!(app.wait_for_spend_written(11, Duration::from_secs(10)).await, 11);
    let (_, by_own) = admin_get(&app, &format!("/spend/logs?request_id={made}")).await;
    assert_eq!(by_own.as_array().map(Vec::len), Some(1), "{by_own}");
    assert_eq!(by_own[0]["client_request_id"], Value::Null);
}

#[tokio::test]
async fn a_repeated_client_id_cannot_dodge_a_budget_across_a_reconcile() {
    let (_mock, app) = keyed_setup("").await;
    // Three requests fit: they start at 0, 0.008 and 0.016 spent; the fourth at 0.024.
    let key = new_key(&app, json!({"max_budget": 0.02})).await;
    for _ in 0..3 {
        assert_eq!(call_with_id(&app, &key, "dodge").await.status(), 200);
    }
    assert_eq!(app.wait_for_spend_written(3, Duration::from_secs(10)).await, 3);
    reconcile(&app).await;
    let hash = tollgate_proxy::access::keys::hash(&key);
    let held = app.state.directory().key(&hash).unwrap().state.spend.used();
    assert!((held - 3.0 * COST).abs() < 1e-9, "spend after the reconcile: {held}");

    for _ in 0..5 {
        let resp = call_with_id(&app, &key, "dodge").await;
        assert_eq!(openai_error(resp, 400).await["code"], "budget_exceeded");
    }
    reconcile(&app).await;
    let resp = call_with_id(&app, &key, "dodge").await;
    assert_eq!(openai_error(resp, 400).await["code"], "budget_exceeded");
    let stored = app.store().get_key(&hash).await.unwrap().unwrap();
    assert!((stored.spend - 3.0 * COST).abs() < 1e-9, "{}", stored.spend);
}

fn uuid_v7(id: &str) -> bool {
    id.len() == 36 && id.as_bytes().get(14) == Some(&b'7')
}
