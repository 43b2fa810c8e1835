//! Two replicas on one PostgreSQL and one Redis: rate limits and cooldowns hold across both,
//! and Redis going away never fails a request (each replica counts its own until it returns).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{MockOpenAi, ReplySpec, TestApp, TestDatabase, TestRedis};

use crate::helpers::*;
use crate::keys::{admin, call};

struct Replicas {
    a: TestApp,
    b: TestApp,
    mock: MockOpenAi,
    flaky: MockOpenAi,
    redis: TestRedis,
    _db: TestDatabase,
}

/// `priced` on a mock that answers, `flaky` on one that answers 429 (and falls back to
/// `priced`), on two replicas sharing a database and a Redis of the test's own.
async fn replicas() -> Replicas {
    let db = TestDatabase::create().await.unwrap();
    let redis = TestRedis::start().unwrap();
    let mock = MockOpenAi::start().await;
    mock.set_default(ReplySpec::text("one two"));
    let flaky = MockOpenAi::start().await;
    flaky.set_default(
        ReplySpec::openai_error(429, "rate_limit_exceeded", "slow down").retry_after(30),
    );
    let yaml = format!(
        r#"
model_list:
  - model_name: priced
    litellm_params:
      model: openai/priced-model
      api_base: {ok}
  - model_name: flaky
    litellm_params:
      model: openai/flaky-model
      api_base: {flaky}
router_settings:
  fallbacks: [{{"flaky": ["priced"]}}]
"#,
        ok = mock.base_url(),
        flaky = flaky.base_url()
    );
    let env = [("TOLLGATE_MASTER_KEY", MASTER), ("REDIS_URL", &redis.url())];
    let a = TestApp::spawn_with_database(&yaml, &env, &db.url).await.unwrap();
    let b = TestApp::spawn_with_database(&yaml, &env, &db.url).await.unwrap();
    let r = Replicas { a, b, mock, flaky, redis, _db: db };
    r.wait_for_redis("connected").await;
    r
}

impl Replicas {
    /// Makes a key on A and waits until B knows it too.
    async fn key(&self, body: Value) -> String {
        let made = admin(&self.a, "/key/generate", body).await;
        let hash = made["token"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.b.state.directory().key(&hash).is_none() {
            assert!(Instant::now() < deadline, "B never loaded the new key");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        made["key"].as_str().unwrap().to_owned()
    }

    /// Waits until both replicas' readiness reports `redis` as `want`.
    async fn wait_for_redis(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for app in [&self.a, &self.b] {
            loop {
                let v: Value = client()
                    .get(app.url("/health/readiness"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if v["redis"] == want {
                    break;
                }
                assert!(Instant::now() < deadline, "readiness never said redis {want}: {v}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// `n` requests with `key`, alternating between the replicas; the statuses.
    async fn alternate(&self, key: &str, n: usize) -> Vec<u16> {
        let mut statuses = Vec::with_capacity(n);
        for i in 0..n {
            let app = if i % 2 == 0 { &self.a } else { &self.b };
            statuses.push(call(app, key, "priced").await.status().as_u16());
        }
        statuses
    }
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_rpm_limit_holds_across_replicas() {
    let r = replicas().await;
    let key = r.key(json!({"rpm_limit": 10})).await;
    let statuses = r.alternate(&key, 40).await;
    assert_eq!(count(&statuses, 200), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 30, "{statuses:?}");
    // Both replicas refused (the limit is one, not one each).
    assert!(statuses.iter().step_by(2).any(|s| *s == 429));
    assert!(statuses.iter().skip(1).step_by(2).any(|s| *s == 429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_are_limited_across_replicas() {
    let r = replicas().await;
    r.mock.set_default(ReplySpec::text("one two").delay_ms(1500));
    let key = r.key(json!({"max_parallel_requests": 2})).await;
    let calls = (0..8).map(|i| {
        let app = if i % 2 == 0 { &r.a } else { &r.b };
        let key = key.clone();
        async move { call(app, &key, "priced").await.status().as_u16() }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert_eq!(count(&statuses, 200), 2, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 6, "{statuses:?}");
    assert!(r.mock.peak_concurrency() <= 2);
    // The slots came back: two more fit now, on either replica.
    r.mock.set_default(ReplySpec::text("one two"));
    assert_eq!(call(&r.b, &key, "priced").await.status(), 200);
    assert_eq!(call(&r.a, &key, "priced").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deployment_cooled_down_on_one_replica_is_skipped_by_the_other() {
    let r = replicas().await;
    // A asks `flaky`, gets a 429 with retry-after 30 s, cools it down and falls back.
    let answer = call(&r.a, MASTER, "flaky").await;
    assert_eq!(answer.status(), 200);
    assert_eq!(r.flaky.request_count(), 1);
    // B never asks it while the cooldown runs: straight to the fallback.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !r
        .b
        .state
        .router()
        .catalog()
        .deployments()
        .any(|d| d.entry.model_name == "flaky" && d.health.cooling_until(Instant::now()).is_some())
    {
        assert!(Instant::now() < deadline, "B never learnt of the cooldown");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        assert_eq!(call(&r.b, MASTER, "flaky").await.status(), 200);
    }
    assert_eq!(r.flaky.request_count(), 1, "B sent to a deployment A had cooled down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_each_replica_counts_its_own_and_sharing_returns_with_it() {
    let mut r = replicas().await;
    let key = r.key(json!({"rpm_limit": 10})).await;
    assert_eq!(count(&r.alternate(&key, 4).await, 200), 4);

    r.redis.stop();
    // No request fails because Redis is gone; each replica admits the limit on its own.
    let during = r.alternate(&key, 40).await;
    assert!(during.iter().all(|s| *s == 200 || *s == 429), "{during:?}");
    assert_eq!(count(&during, 200), 20, "per-process counting: {during:?}");
    r.wait_for_redis("unavailable").await;
    let ready: Value =
        client().get(r.a.url("/health/readiness")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "degraded");
    assert!(ready["reasons"].to_string().contains("Redis"), "{ready}");
    let metrics = client().get(r.a.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("tollgate_redis_up 0"), "{metrics}");

    r.redis.start_again().unwrap();
    r.wait_for_redis("connected").await;
    let fresh = r.key(json!({"rpm_limit": 10})).await;
    let after = r.alternate(&fresh, 40).await;
    assert_eq!(count(&after, 200), 10, "shared again: {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_used_on_one_replica_count_on_the_other() {
    let r = replicas().await;
    let key = r.key(json!({"tpm_limit": 1})).await;
    assert_eq!(call(&r.a, &key, "priced").await.status(), 200);
    // B has served nothing for this key; only the shared count knows A's tokens (sent to
    // Redis behind the request's back, so give it a moment).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = call(&r.b, &key, "priced").await;
    assert_eq!(answer.status(), 429);
    let v: Value = answer.json().await.unwrap();
    assert!(v.to_string().contains("tokens per minute"), "{v}");
}
