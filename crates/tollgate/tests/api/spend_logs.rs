//! `/spend/logs` filters: model (asked for, group or served), `status_filter` (LiteLLM's
//! success/failure, or an outcome), `status_code` (a status or a class), refused with the
//! parameter named when malformed.

use chrono::{Duration, TimeZone, Utc};
use serde_json::Value;
use tollgate_store::SpendRecord;
use tollgate_testkit::spend_record;

use crate::keys::{admin_get, keyed_setup};

fn record(id: &str, minute: i64, model: &str, status: i32, outcome: &str) -> SpendRecord {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap() + Duration::minutes(minute);
    SpendRecord { status, outcome: outcome.into(), ..spend_record(id, at, model) }
}

fn ids(v: &Value) -> Vec<&str> {
    v.as_array().unwrap().iter().map(|r| r["request_id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn spend_logs_filter_by_model_outcome_status_and_time() {
    let (_mock, app) = keyed_setup("").await;
    app.store()
        .insert_spend(&[
            record("a", 0, "gpt-4o", 200, "success"),
            record("b", 1, "gpt-4o", 502, "upstream_failed"),
            record("c", 2, "claude", 429, "refused"),
            record("d", 3, "claude", 0, "client_disconnected"),
        ])
        .await
        .unwrap();
    let get = |q: &'static str| {
        let app = &app;
        async move {
            let (status, body) = admin_get(app, &format!("/spend/logs?{q}")).await;
            assert_eq!(status, 200, "{q}: {body}");
            body
        }
    };
    assert_eq!(ids(&get("model=gpt-4o").await), ["b", "a"]);
    assert_eq!(ids(&get("model=openai/claude").await), ["d", "c"]);
    assert_eq!(ids(&get("status_filter=failure").await), ["d", "c", "b"]);
    assert_eq!(ids(&get("status_filter=success").await), ["a"]);
    assert_eq!(ids(&get("status_filter=refused").await), ["c"]);
    assert_eq!(ids(&get("status_code=5xx").await), ["b"]);
    assert_eq!(ids(&get("status_code=0").await), ["d"]);
    assert_eq!(ids(&get("model=claude&status_code=4xx").await), ["c"]);
    let range = get("start_date=2026-11-20T12:01:00Z&end_date=2026-11-20T12:03:00Z").await;
    assert_eq!(ids(&range), ["c", "b"]);
    for (q, param) in [
        ("status_code=6xx", "status_code"),
        ("status_filter=broken", "status_filter"),
        ("start_date=2026-11-21&end_date=2026-11-20", "end_date"),
    ] {
        let (status, body) = admin_get(&app, &format!("/spend/logs?{q}")).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert_eq!(body["error"]["param"], param, "{q}: {body}");
    }
}
