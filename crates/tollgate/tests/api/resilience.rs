//! The store under stress: a database outage mid-run, parallel spending against a budget,
//! and two processes sharing one database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::json;
use tollgate_testkit::{FlakyRelay, MockOpenAi, ReplySpec, TestApp, TestDatabase};

use crate::helpers::*;
use crate::keys::{COST, PRICED, admin, call, new_key};

fn priced_config(mock: &MockOpenAi) -> String {
    config(mock, &PRICED.replace("{base}", &mock.base_url()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_loses_no_spend_records() {
    let db = TestDatabase::create().await.unwrap();
    let relay = FlakyRelay::start(db.server_addr().unwrap()).await.unwrap();
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("one two"));
    let app = TestApp::spawn_with_database(
        &priced_config(&mock),
        &[("TOLLGATE_MASTER_KEY", MASTER)],
        &db.url_via(relay.addr()),
    )
    .await
    .unwrap();
    let key = new_key(&app, json!({"key_alias": "outage"})).await;
    for _ in 0..20 {
        assert_eq!(call(&app, &key, "priced").await.status(), 200);
    }

    relay.cut();
    // The cached key keeps working while the database is gone.
    for _ in 0..30 {
        assert_eq!(call(&app, &key, "priced").await.status(), 200);
    }
    // Management calls need the database and say so.
    let resp = post(&app, "/key/generate", json!({})).await;
    assert_eq!(openai_error(resp, 503).await["code"], "database_unavailable");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(app.state.sink().writer.stats().written < 50, "nothing can have been written");

    relay.restore();
    let written = app.wait_for_spend_written(50, Duration::from_secs(40)).await;
    assert_eq!(written, 50);
    let direct = tollgate_store::connect(Some(&db.url), std::path::Path::new(".")).await.unwrap();
    assert_eq!(direct.count_spend().await.unwrap(), 50);
    let stored = direct.get_key(&tollgate_proxy::access::keys::hash(&key)).await.unwrap().unwrap();
    assert!((stored.spend - 50.0 * COST).abs() < 1e-9, "{}", stored.spend);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_cannot_overspend_a_budget() {
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("one two").delay_ms(10));
    let app = TestApp::spawn_with_env(&priced_config(&mock), &[("TOLLGATE_MASTER_KEY", MASTER)])
        .await
        .unwrap();
    // Fifty requests fit: the fiftieth starts at 0.392 spent, the next at 0.400.
    let key = new_key(&app, json!({"max_budget": 0.396})).await;
    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_in_flight = Arc::new(AtomicUsize::new(0));
    const CONCURRENCY: usize = 20;
    let statuses: Vec<u16> = futures_util::stream::iter(0..200)
        .map(|_| {
            let url = app.url("/v1/chat/completions");
            let key = key.clone();
            let (in_flight, max_in_flight) = (in_flight.clone(), max_in_flight.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_in_flight.fetch_max(now, Ordering::SeqCst);
                let s = client()
                    .post(url)
                    .bearer_auth(key)
                    .json(&chat("priced", "hi"))
                    .send()
                    .await
                    .unwrap()
                    .status();
                in_flight.fetch_sub(1, Ordering::SeqCst);
                s.as_u16()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 400).count();
    assert_eq!(admitted + refused, 200, "{statuses:?}");
    let bound = 50 + max_in_flight.load(Ordering::SeqCst);
    assert!((50..=bound).contains(&admitted), "admitted {admitted}, bound {bound}");

    // Every request leaves a record: the refused ones too, at no cost.
    assert_eq!(app.wait_for_spend_written(200, Duration::from_secs(10)).await, 200);
    let hash = tollgate_proxy::access::keys::hash(&key);
    let stored = app.store().get_key(&hash).await.unwrap().unwrap();
    assert!((stored.spend - admitted as f64 * COST).abs() < 1e-9, "{} vs {admitted}", stored.spend);
    let rows = app
        .store()
        .spend_logs(tollgate_store::SpendFilter {
            token_hash: Some(hash),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 200);
    assert_eq!(rows.iter().filter(|r| r.outcome == "success").count(), admitted);
    let refusals: Vec<_> = rows.iter().filter(|r| r.outcome == "refused").collect();
    assert_eq!(refusals.len(), refused);
    assert!(
        refusals.iter().all(|r| r.status == 400 && r.cost == 0.0 && r.requested_model == "priced")
    );
    let total: f64 = rows.iter().map(|r| r.cost).sum();
    assert!((total - stored.spend).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_process_sees_key_changes_within_seconds() {
    let db = TestDatabase::create().await.unwrap();
    let mock = MockOpenAi::start().await;
    let yaml = priced_config(&mock);
    let env = [("TOLLGATE_MASTER_KEY", MASTER)];
    let a = TestApp::spawn_with_database(&yaml, &env, &db.url).await.unwrap();
    let b = TestApp::spawn_with_database(&yaml, &env, &db.url).await.unwrap();

    let key = new_key(&a, json!({})).await;
    assert_eq!(call(&a, &key, "priced").await.status(), 200);
    assert!(
        eventually(|| async { call(&b, &key, "priced").await.status() == 200 }).await,
        "B never saw the new key"
    );

    admin(&a, "/key/block", json!({"key": key})).await;
    assert!(
        eventually(|| async { call(&b, &key, "priced").await.status() == 401 }).await,
        "B never saw the block"
    );
    admin(&a, "/key/unblock", json!({"key": key})).await;
    admin(&a, "/key/update", json!({"key": key, "models": ["beta-model"]})).await;
    assert!(
        eventually(|| async { call(&b, &key, "priced").await.status() == 403 }).await,
        "B never saw the update"
    );
    admin(&a, "/key/delete", json!({"keys": [key]})).await;
    assert!(
        eventually(|| async { call(&b, &key, "beta-model").await.status() == 401 }).await,
        "B never saw the delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_spent_on_one_replica_is_refused_on_the_other_within_two_seconds() {
    // The production intervals: the change feed and changed spend read every second, a full
    // reload every 30 s (far beyond what this test waits).
    let options = tollgate_proxy::GatewayOptions::default();
    assert_eq!(options.directory_poll, Duration::from_secs(1));
    assert_eq!(options.reconcile, Duration::from_secs(30));
    let db = TestDatabase::create().await.unwrap();
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("one two"));
    let (yaml, env) = (priced_config(&mock), [("TOLLGATE_MASTER_KEY", MASTER)]);
    let a = TestApp::spawn_with_database_and_options(&yaml, &env, &db.url, options.clone())
        .await
        .unwrap();
    let b = TestApp::spawn_with_database_and_options(&yaml, &env, &db.url, options).await.unwrap();

    // B's probes below are admitted until it refuses and cost what they cost; 25 calls' worth
    // means B's own probes (at most 20 in the two seconds) cannot exhaust it: only A's spend can.
    let key = new_key(&a, json!({"max_budget": 25.0 * COST})).await;
    let hash = tollgate_proxy::access::keys::hash(&key);
    let known = eventually(|| async { b.state.directory().key(&hash).is_some() }).await;
    assert!(known, "B never saw the new key");

    let mut spent_on_a = 0;
    loop {
        let resp = call(&a, &key, "priced").await;
        if resp.status() == 400 {
            break;
        }
        assert_eq!(resp.status(), 200);
        spent_on_a += 1;
        assert!(spent_on_a <= 25, "A never refused the key");
    }
    assert_eq!(spent_on_a, 25);
    let spent_at = std::time::Instant::now();

    let mut probes = 0;
    let refused_after = loop {
        let resp = call(&b, &key, "priced").await;
        let elapsed = spent_at.elapsed();
        if resp.status() == 400 {
            assert_eq!(openai_error(resp, 400).await["code"], "budget_exceeded");
            break elapsed;
        }
        assert_eq!(resp.status(), 200, "B answered neither 200 nor a refusal");
        probes += 1;
        assert!(elapsed < Duration::from_secs(2), "B still admits the key after {elapsed:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("B refused the key {refused_after:?} after A spent it, having admitted {probes}");
    assert!(refused_after < Duration::from_secs(2), "{refused_after:?}");
    assert!(probes < 25, "B refused on its own spend");
}

/// Polls `check` for up to three seconds.
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..30 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_cannot_overrun_a_budget_by_more_than_one_reservation() {
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("one two").delay_ms(200));
    let app = TestApp::spawn_with_env(&priced_config(&mock), &[("TOLLGATE_MASTER_KEY", MASTER)])
        .await
        .unwrap();
    let budget = 50.0 * COST;
    let key = new_key(&app, json!({"max_budget": budget})).await;
    let body = json!({"model": "priced", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]});
    // What admission reserves for it: the body at four bytes a token, and `max_tokens`.
    let reservation = (body.to_string().len() as f64 / 4.0).ceil() * 0.001 + 2.0 * 0.002;
    let http = client();
    let all: Vec<_> = (0..200)
        .map(|_| {
            let (url, key, body) = (app.url("/v1/chat/completions"), key.clone(), body.clone());
            let http = http.clone();
            tokio::spawn(async move {
                http.post(url).bearer_auth(key).json(&body).send().await.unwrap().status().as_u16()
            })
        })
        .collect();
    let mut admitted = 0;
    for handle in all {
        match handle.await.unwrap() {
            200 => admitted += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(app.wait_for_spend_written(200, Duration::from_secs(10)).await, 200);
    let hash = tollgate_proxy::access::keys::hash(&key);
    let spent = app.store().get_key(&hash).await.unwrap().unwrap().spend;
    assert!((spent - admitted as f64 * COST).abs() < 1e-9);
    assert!(spent <= budget + reservation, "spent {spent} of {budget} ({admitted} admitted)");
    // The reservations are given back: the budget that is left can still be used.
    assert!(admitted >= 10, "only {admitted} admitted");
    assert_eq!(call(&app, &key, "priced").await.status(), 200);
}
