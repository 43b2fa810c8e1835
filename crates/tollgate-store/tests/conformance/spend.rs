//! Spend records: idempotent inserts, spend increments, rollups, filters, concurrency.

use chrono::{Duration, NaiveDate};
use serde_json::json;
use tollgate_store::{
    DailySpend, LATENCY_BOUNDS_MS, NewTeam, RollupFilter, SpendCursor, SpendFilter, SpendRecord,
    StatusRange, Store,
};

use crate::fixtures::{at, key, member, owned_record, record, team};
use crate::harness::backend_tests;

/// A key `k1` owned by `u1` in team `t1`.
async fn setup_owner(store: &Store) {
    store
        .create_team(NewTeam { members: vec![member("u1", "admin")], ..team("t1") })
        .await
        .unwrap();
    let mut k = key("k1");
    k.user_id = Some("u1".into());
    k.team_id = Some("t1".into());
    store.create_key(k).await.unwrap();
}

async fn spends(store: &Store) -> (f64, f64, f64) {
    (
        store.get_key("k1").await.unwrap().unwrap().spend,
        store.get_user("u1").await.unwrap().unwrap().spend,
        store.get_team("t1").await.unwrap().unwrap().spend,
    )
}

fn total_requests(rows: &[DailySpend]) -> i64 {
    rows.iter().map(|r| r.requests).sum()
}

backend_tests!(spend_insert_is_idempotent, async |store| {
    setup_owner(&store).await;
    let t0 = at("2026-03-10T12:00:00Z");
    let batch: Vec<SpendRecord> = (0..10)
        .map(|i| owned_record(&format!("r{i:02}"), t0 + Duration::seconds(i), "k1", "u1", "t1"))
        .collect();
    let changes_before = store.latest_change().await.unwrap();

    assert_eq!(store.insert_spend(&batch).await.unwrap(), 10);
    assert_eq!(store.insert_spend(&batch).await.unwrap(), 0, "a retried batch counts once");
    assert_eq!(store.count_spend().await.unwrap(), 10);
    assert_eq!(spends(&store).await, (5.0, 5.0, 5.0));

    // Half old, half new, and a duplicate inside the batch: only the 5 new ones count.
    let mut mixed: Vec<SpendRecord> = batch[5..].to_vec();
    mixed.extend(
        (10..15).map(|i| {
            owned_record(&format!("r{i:02}"), t0 + Duration::seconds(i), "k1", "u1", "t1")
        }),
    );
    mixed.push(mixed[7].clone());
    assert_eq!(store.insert_spend(&mixed).await.unwrap(), 5);
    assert_eq!(store.count_spend().await.unwrap(), 15);
    assert_eq!(spends(&store).await, (7.5, 7.5, 7.5));

    let daily = store.daily_spend(RollupFilter::default()).await.unwrap();
    assert_eq!(daily.len(), 1);
    let row = &daily[0];
    assert_eq!(row.day, NaiveDate::from_ymd_opt(2026, 3, 10).unwrap());
    assert_eq!(
        (row.token_hash.as_str(), row.user_id.as_str(), row.team_id.as_str()),
        ("k1", "u1", "t1")
    );
    assert_eq!((row.requests, row.failures), (15, 0));
    assert_eq!((row.prompt_tokens, row.completion_tokens), (150, 300));
    assert_eq!(row.cost, 7.5);

    // Records for unknown keys are stored and rolled up; nothing else changes.
    let stray = SpendRecord { token_hash: Some("gone".into()), ..record("stray", t0) };
    assert_eq!(store.insert_spend(&[stray]).await.unwrap(), 1);
    assert_eq!(store.insert_spend(&[]).await.unwrap(), 0);
    assert_eq!(store.latest_change().await.unwrap(), changes_before, "spend does not feed changes");
});

backend_tests!(spend_round_trips_every_field, async |store| {
    let full = SpendRecord {
        client_request_id: Some("client-7".into()),
        token_hash: Some("k9".into()),
        user_id: Some("u9".into()),
        team_id: None,
        cost: 0.000_123,
        premium_units: 1.0,
        ttft_ms: None,
        status: 502,
        outcome: "upstream_failed".into(),
        stream: true,
        request_body: Some(json!({"messages": [{"role": "user", "content": "hi"}]})),
        response_body: Some(json!({"error": {"message": "bad gateway"}})),
        attempts: json!([{"deployment": "a", "status": 502}, {"deployment": "b", "status": 502}]),
        ..record("full", at("2026-03-10T12:00:00.654321Z"))
    };
    store.insert_spend(std::slice::from_ref(&full)).await.unwrap();
    let got = store
        .spend_logs(SpendFilter { request_id: Some("full".into()), ..SpendFilter::default() })
        .await
        .unwrap();
    assert_eq!(got, vec![full]);
});

backend_tests!(spend_batch_of_5000, async |store| {
    setup_owner(&store).await;
    let t0 = at("2026-03-10T00:00:00Z");
    let batch: Vec<SpendRecord> = (0..5000)
        .map(|i| owned_record(&format!("req-{i:05}"), t0 + Duration::seconds(i), "k1", "u1", "t1"))
        .collect();
    assert_eq!(store.insert_spend(&batch).await.unwrap(), 5000);
    assert_eq!(store.count_spend().await.unwrap(), 5000);
    assert_eq!(spends(&store).await, (2500.0, 2500.0, 2500.0));
    let daily = store.daily_spend(RollupFilter::default()).await.unwrap();
    assert_eq!(total_requests(&daily), 5000);
    assert_eq!(daily.iter().map(|r| r.cost).sum::<f64>(), 2500.0);
    assert_eq!(
        store.spend_logs(SpendFilter::default()).await.unwrap().len(),
        1000,
        "default limit"
    );
    assert_eq!(store.insert_spend(&batch).await.unwrap(), 0);
});

backend_tests!(spend_concurrent_inserts, async |store| {
    setup_owner(&store).await;
    let t0 = at("2026-03-10T00:00:00Z");
    // 2,000 distinct records; each of 8 tasks inserts 500 of them in batches of 100, and every
    // record is sent by two tasks, in different batch compositions.
    let all: Vec<SpendRecord> = (0..2000)
        .map(|i| owned_record(&format!("c{i:04}"), t0 + Duration::seconds(i), "k1", "u1", "t1"))
        .collect();
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let store = store.clone();
        let mine: Vec<SpendRecord> = (0..500).map(|j| all[(t * 250 + j) % 2000].clone()).collect();
        tasks.push(tokio::spawn(async move {
            let mut inserted = 0;
            for chunk in mine.chunks(100) {
                inserted += store.insert_spend(chunk).await.unwrap();
            }
            inserted
        }));
    }
    let mut inserted = 0;
    for task in tasks {
        inserted += task.await.unwrap();
    }
    assert_eq!(inserted, 2000, "every record counted exactly once");
    assert_eq!(store.count_spend().await.unwrap(), 2000);
    assert_eq!(spends(&store).await, (1000.0, 1000.0, 1000.0));
    let daily = store.daily_spend(RollupFilter::default()).await.unwrap();
    assert_eq!(total_requests(&daily), 2000);
});

backend_tests!(spend_log_filters, async |store| {
    let t0 = at("2026-03-10T12:00:00Z");
    let rec = |id: &str, minutes: i64, key: &str, user: &str, team: &str| {
        owned_record(id, t0 + Duration::minutes(minutes), key, user, team)
    };
    store
        .insert_spend(&[
            rec("a", 0, "k1", "u1", "t1"),
            rec("b", 10, "k1", "u2", "t1"),
            rec("c", 20, "k2", "u2", "t2"),
            rec("d", 30, "k2", "u1", "t2"),
            SpendRecord { started_at: t0 + Duration::minutes(40), ..record("e", t0) },
        ])
        .await
        .unwrap();
    let ids =
        |records: Vec<SpendRecord>| records.into_iter().map(|r| r.request_id).collect::<Vec<_>>();
    let all = store.spend_logs(SpendFilter::default()).await.unwrap();
    assert_eq!(ids(all), ["e", "d", "c", "b", "a"], "newest first");
    let f = |filter: SpendFilter| {
        let store = store.clone();
        async move { ids(store.spend_logs(filter).await.unwrap()) }
    };
    assert_eq!(
        f(SpendFilter { token_hash: Some("k1".into()), ..Default::default() }).await,
        ["b", "a"]
    );
    assert_eq!(
        f(SpendFilter { user_id: Some("u1".into()), ..Default::default() }).await,
        ["d", "a"]
    );
    assert_eq!(
        f(SpendFilter { team_id: Some("t2".into()), ..Default::default() }).await,
        ["d", "c"]
    );
    assert_eq!(f(SpendFilter { request_id: Some("c".into()), ..Default::default() }).await, ["c"]);
    // Start inclusive, end exclusive; sub-second bounds compare as instants.
    let window = SpendFilter {
        start: Some(t0 + Duration::minutes(10)),
        end: Some(t0 + Duration::minutes(30)),
        ..Default::default()
    };
    assert_eq!(f(window).await, ["c", "b"]);
    let just_after =
        SpendFilter { start: Some(t0 + Duration::microseconds(1)), ..Default::default() };
    assert_eq!(f(just_after).await, ["e", "d", "c", "b"]);
    let just_before =
        SpendFilter { end: Some(t0 + Duration::milliseconds(999)), ..Default::default() };
    assert_eq!(f(just_before).await, ["a"]);
    let combined = SpendFilter {
        user_id: Some("u2".into()),
        start: Some(t0 + Duration::minutes(15)),
        ..Default::default()
    };
    assert_eq!(f(combined).await, ["c"]);
    assert_eq!(f(SpendFilter { limit: 2, ..Default::default() }).await, ["e", "d"]);
});

backend_tests!(a_repeated_client_request_id_is_one_record_per_request, async |store| {
    // Clients choose their `x-request-id` and may send one id many times; each request is
    // its own record (own id), counted once each, and all of them are found by the client's id.
    setup_owner(&store).await;
    let t0 = at("2026-03-10T12:00:00Z");
    let batch: Vec<SpendRecord> = (0..10)
        .map(|i| SpendRecord {
            client_request_id: Some("same".into()),
            ..owned_record(&format!("own-{i}"), t0 + Duration::seconds(i), "k1", "u1", "t1")
        })
        .collect();
    assert_eq!(store.insert_spend(&batch[..4]).await.unwrap(), 4);
    assert_eq!(store.insert_spend(&batch).await.unwrap(), 6, "retries still skip stored ids");
    assert_eq!(store.count_spend().await.unwrap(), 10);
    assert_eq!(spends(&store).await, (5.0, 5.0, 5.0));
    store.insert_spend(&[owned_record("other", t0, "k1", "u1", "t1")]).await.unwrap();

    let by_client = store
        .spend_logs(SpendFilter { client_request_id: Some("same".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(by_client.len(), 10);
    assert!(by_client.iter().all(|r| r.client_request_id.as_deref() == Some("same")));
    let mut own: Vec<_> = by_client.iter().map(|r| r.request_id.as_str()).collect();
    own.sort_unstable();
    own.dedup();
    assert_eq!(own.len(), 10);
    let none = store
        .spend_logs(SpendFilter { client_request_id: Some("own-1".into()), ..Default::default() })
        .await
        .unwrap();
    assert!(none.is_empty(), "the client's id is not matched against the record's own");
    let other = store
        .spend_logs(SpendFilter { request_id: Some("other".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(other[0].client_request_id, None);
});

backend_tests!(daily_rollups_across_two_days, async |store| {
    let day1 = at("2026-03-10T23:59:59.999999Z");
    let day2 = at("2026-03-11T00:00:00Z");
    let failed = |id: &str, t| SpendRecord {
        outcome: "upstream_failed".into(),
        cost: 0.0,
        ..owned_record(id, t, "k1", "u1", "t1")
    };
    store
        .insert_spend(&[
            owned_record("a", day1, "k1", "u1", "t1"),
            failed("b", day1),
            owned_record("c", day2, "k1", "u1", "t1"),
            SpendRecord {
                model_group: "claude".into(),
                served_model: "anthropic/claude".into(),
                premium_units: 2.0,
                ..owned_record("d", day2, "k2", "u1", "t1")
            },
            record("e", day2),
        ])
        .await
        .unwrap();
    let d1 = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let d2 = NaiveDate::from_ymd_opt(2026, 3, 11).unwrap();
    let rows = store.daily_spend(RollupFilter::default()).await.unwrap();
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (r.day, r.token_hash.as_str(), r.model_group.as_str(), r.requests, r.failures, r.cost)
        })
        .collect();
    assert_eq!(
        summary,
        [
            (d1, "k1", "gpt-4o", 2, 1, 0.5),
            (d2, "k2", "claude", 1, 0, 0.5),
            (d2, "", "gpt-4o", 1, 0, 0.5),
            (d2, "k1", "gpt-4o", 1, 0, 0.5),
        ]
    );
    let anonymous = rows.iter().find(|r| r.token_hash.is_empty()).unwrap();
    assert_eq!((anonymous.user_id.as_str(), anonymous.team_id.as_str()), ("", ""));
    assert_eq!(rows[1].premium_units, 2.0);

    let only_day2 = RollupFilter { start: Some(d2), ..Default::default() };
    assert_eq!(total_requests(&store.daily_spend(only_day2).await.unwrap()), 3);
    let only_day1 = RollupFilter { end: Some(d1), ..Default::default() };
    assert_eq!(total_requests(&store.daily_spend(only_day1).await.unwrap()), 2);
    let key1 = RollupFilter { token_hash: Some("k1".into()), ..Default::default() };
    assert_eq!(total_requests(&store.daily_spend(key1).await.unwrap()), 3);
    let user1 = RollupFilter {
        user_id: Some("u1".into()),
        start: Some(d2),
        end: Some(d2),
        ..Default::default()
    };
    assert_eq!(total_requests(&store.daily_spend(user1).await.unwrap()), 2);
    let team1 = RollupFilter { team_id: Some("t1".into()), ..Default::default() };
    assert_eq!(total_requests(&store.daily_spend(team1).await.unwrap()), 4);
});

backend_tests!(spend_hostile_content, async |store| {
    // NUL characters (which PostgreSQL cannot store) in client-controlled fields do not stop
    // a batch; they may come back as U+FFFD.
    let t0 = at("2026-03-10T12:00:00Z");
    let hostile = SpendRecord {
        requested_model: "gpt\u{0}4o".into(),
        request_body: Some(json!({"messages": [{"content": "a\u{0}b"}]})),
        ..record("nul", t0)
    };
    let batch = [hostile, record("plain", t0)];
    assert_eq!(store.insert_spend(&batch).await.unwrap(), 2);
    assert_eq!(store.insert_spend(&batch).await.unwrap(), 0);
    let got = store
        .spend_logs(SpendFilter { request_id: Some("nul".into()), ..SpendFilter::default() })
        .await
        .unwrap();
    assert!(["gpt\u{0}4o", "gpt\u{FFFD}4o"].contains(&got[0].requested_model.as_str()));

    // A non-finite amount is a bug upstream: refused, and nothing of the batch is stored.
    let nan = SpendRecord { cost: f64::NAN, ..record("nan", t0) };
    match store.insert_spend(&[record("ok", t0), nan]).await {
        Err(tollgate_store::StoreError::Invalid(msg)) => assert!(msg.contains("nan"), "{msg}"),
        other => panic!("expected invalid, got {other:?}"),
    }
    assert_eq!(store.count_spend().await.unwrap(), 2);
});

backend_tests!(spend_summary_sums_in_the_database, async |store| {
    let day1 = at("2026-03-10T12:00:00Z");
    let day2 = at("2026-03-11T12:00:00Z");
    let claude = |id: &str, t, k: &str, u: &str, tm: &str| SpendRecord {
        model_group: "claude".into(),
        served_model: "anthropic/claude".into(),
        premium_units: 2.0,
        ..owned_record(id, t, k, u, tm)
    };
    store
        .insert_spend(&[
            owned_record("a", day1, "k1", "u1", "t1"),
            SpendRecord { outcome: "upstream_failed".into(), cost: 0.0, ..record("b", day1) },
            owned_record("c", day2, "k2", "u2", "t1"),
            owned_record("d", day2, "k2", "u2", "t1"),
            claude("e", day2, "k1", "u1", "t2"),
            claude("f", day2, "k3", "u2", "t2"),
        ])
        .await
        .unwrap();
    let d1 = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
    let d2 = NaiveDate::from_ymd_opt(2026, 3, 11).unwrap();
    let s = store.spend_summary(RollupFilter::default(), 10).await.unwrap();
    let days: Vec<_> = s.days.iter().map(|(d, t)| (*d, t.requests, t.failures)).collect();
    assert_eq!(days, [(d1, 2, 1), (d2, 4, 0)]);
    assert_eq!(s.days[1].1.cost, 2.0);
    assert_eq!(s.days[1].1.premium_units, 4.0);
    assert_eq!((s.days[1].1.prompt_tokens, s.days[1].1.completion_tokens), (40, 80));
    let names = |r: &[(String, tollgate_store::SpendTotals)]| {
        r.iter().map(|(n, t)| (n.clone(), t.requests)).collect::<Vec<_>>()
    };
    let pairs = |v: &[(&str, i64)]| v.iter().map(|(n, r)| (n.to_string(), *r)).collect::<Vec<_>>();
    assert_eq!(names(&s.models), pairs(&[("gpt-4o", 4), ("claude", 2)]));
    // Most requests first, then most cost, then by name; the anonymous record is not ranked.
    assert_eq!(names(&s.keys), pairs(&[("k1", 2), ("k2", 2), ("k3", 1)]));
    assert_eq!(names(&s.users), pairs(&[("u2", 3), ("u1", 2)]));
    assert_eq!(names(&s.teams), pairs(&[("t1", 3), ("t2", 2)]));

    let top1 = store.spend_summary(RollupFilter::default(), 1).await.unwrap();
    assert_eq!(names(&top1.keys), pairs(&[("k1", 2)]));
    assert_eq!(top1.days.len(), 2, "days are never cut by `top`");
    let day2_u1 = RollupFilter {
        start: Some(d2),
        end: Some(d2),
        user_id: Some("u1".into()),
        ..Default::default()
    };
    let s = store.spend_summary(day2_u1, 10).await.unwrap();
    assert_eq!(s.days.len(), 1);
    assert_eq!(names(&s.keys), pairs(&[("k1", 1)]));
    assert_eq!(names(&s.models), pairs(&[("claude", 1)]));
});

backend_tests!(dashboard_rollups_split_outcomes_models_latency_and_fallbacks, async |store| {
    let day = at("2026-03-11T12:00:00Z");
    let fell_back = SpendRecord {
        model_group: "claude".into(),
        served_model: "anthropic/claude".into(),
        latency_ms: 40.0,
        attempts: json!([
            {"model_group": "gpt-4o", "outcome": "rate_limited"},
            {"model_group": "claude", "outcome": "answered"}
        ]),
        ..owned_record("fb", day, "k1", "u1", "t1")
    };
    let retried = SpendRecord {
        attempts: json!([
            {"model_group": "gpt-4o", "outcome": "upstream_error"},
            {"model_group": "gpt-4o", "outcome": "answered"}
        ]),
        ..owned_record("retry", day, "k2", "u2", "t1")
    };
    let failed = SpendRecord {
        outcome: "upstream_error".into(),
        latency_ms: 200_000.0,
        ..owned_record("fail", day, "k2", "u2", "t1")
    };
    store.insert_spend(&[fell_back, retried, failed, record("plain", day)]).await.unwrap();
    let d = NaiveDate::from_ymd_opt(2026, 3, 11).unwrap();
    let range = RollupFilter { start: Some(d), end: Some(d), ..Default::default() };
    let s = store.spend_summary(range.clone(), 10).await.unwrap();
    assert_eq!(
        s.outcomes,
        [(d, "success".to_owned(), 3), (d, "upstream_error".to_owned(), 1)],
        "requests per day by outcome"
    );
    let t = &s.days[0].1;
    assert_eq!((t.requests, t.failures, t.fallbacks), (4, 1, 1), "a retry is not a fallback");
    let models: Vec<_> =
        s.model_days.iter().map(|(_, m, t)| (m.as_str(), t.requests, t.fallbacks)).collect();
    assert_eq!(models, [("claude", 1, 1), ("gpt-4o", 3, 0)]);
    // 40 ms is in the second bucket, 1500 ms in the tenth, 200 s beyond the last bound.
    let bucket = |ms: f64| LATENCY_BOUNDS_MS.iter().position(|b| ms < *b).unwrap();
    assert_eq!((bucket(40.0), bucket(1500.0)), (1, 9));
    let histogram = |model: &str| s.latency.iter().find(|(m, _)| m == model).unwrap().1.clone();
    let mut claude = vec![0; LATENCY_BOUNDS_MS.len() + 1];
    claude[1] = 1;
    assert_eq!(histogram("claude"), claude);
    let mut gpt = vec![0; LATENCY_BOUNDS_MS.len() + 1];
    gpt[9] = 2;
    gpt[LATENCY_BOUNDS_MS.len()] = 1;
    assert_eq!(histogram("gpt-4o"), gpt);

    // One user's view comes from their rows and records: the same split, only theirs.
    let u2 = RollupFilter { user_id: Some("u2".into()), ..range };
    let s = store.spend_summary(u2, 10).await.unwrap();
    assert_eq!(s.outcomes, [(d, "success".to_owned(), 1), (d, "upstream_error".to_owned(), 1)]);
    assert_eq!(s.latency.len(), 1);
    assert_eq!(s.latency[0].1[9] + s.latency[0].1[LATENCY_BOUNDS_MS.len()], 2);
    let daily = store.daily_spend(RollupFilter::default()).await.unwrap();
    assert_eq!(daily.iter().map(|r| r.fallbacks).sum::<i64>(), 1);
});

backend_tests!(rankings_read_running_windows_that_match_the_rollups, async |store| {
    let today = chrono::Utc::now().date_naive();
    let noon =
        |days_ago: i64| (today - Duration::days(days_ago)).and_hms_opt(12, 0, 0).unwrap().and_utc();
    // k1 is busiest over 30 days, k2 over 7, k3 today.
    let mut batch = Vec::new();
    for i in 0..5 {
        batch.push(owned_record(&format!("old{i}"), noon(20), "k1", "u1", "t1"));
    }
    for i in 0..3 {
        batch.push(owned_record(&format!("week{i}"), noon(3), "k2", "u2", "t2"));
    }
    batch.push(owned_record("today0", noon(0), "k3", "u3", "t2"));
    batch.push(owned_record("today1", noon(0), "k3", "u3", "t2"));
    store.insert_spend(&batch).await.unwrap();

    let last = |days: i64| RollupFilter {
        start: Some(today - Duration::days(days - 1)),
        end: Some(today),
        ..Default::default()
    };
    let keys = |s: &tollgate_store::SpendSummary| {
        s.keys.iter().map(|(k, t)| (k.clone(), t.requests)).collect::<Vec<_>>()
    };
    let owned = |v: &[(&str, i64)]| v.iter().map(|(k, n)| (k.to_string(), *n)).collect::<Vec<_>>();
    let before: Vec<_> = {
        let mut v = Vec::new();
        for days in [1, 7, 30] {
            v.push(store.spend_summary(last(days), 10).await.unwrap());
        }
        v
    };
    assert!(store.roll_spend_windows(today).await.unwrap(), "the first roll builds them");
    assert!(!store.roll_spend_windows(today).await.unwrap(), "then there is nothing to do");
    for (days, before) in [1, 7, 30].into_iter().zip(&before) {
        let after = store.spend_summary(last(days), 10).await.unwrap();
        assert_eq!(&after, before, "windows of {days} days rank as the rollups do");
    }
    assert_eq!(keys(&before[0]), owned(&[("k3", 2)]));
    assert_eq!(keys(&before[1]), owned(&[("k2", 3), ("k3", 2)]));
    assert_eq!(keys(&before[2]), owned(&[("k1", 5), ("k2", 3), ("k3", 2)]));

    // Records after the roll land in every window that covers their day: a late one from
    // 5 days ago in the 7- and 30-day windows only.
    store
        .insert_spend(&[
            owned_record("late", noon(5), "k3", "u3", "t2"),
            owned_record("now", noon(0), "k2", "u2", "t2"),
        ])
        .await
        .unwrap();
    let s = store.spend_summary(last(1), 10).await.unwrap();
    assert_eq!(keys(&s), owned(&[("k3", 2), ("k2", 1)]));
    let s = store.spend_summary(last(7), 10).await.unwrap();
    assert_eq!(keys(&s), owned(&[("k2", 4), ("k3", 3)]));
    let users: Vec<_> = s.users.iter().map(|(u, t)| (u.as_str(), t.requests)).collect();
    assert_eq!(users, [("u2", 4), ("u3", 3)]);
    let s = store.spend_summary(last(30), 10).await.unwrap();
    assert_eq!(keys(&s), owned(&[("k1", 5), ("k2", 4), ("k3", 3)]));

    // Windows that end on another day are not read: a range ending yesterday is summed from
    // the rollups, and a new day's roll rebuilds from them.
    let yesterday = RollupFilter {
        start: Some(today - Duration::days(6)),
        end: Some(today - Duration::days(1)),
        ..Default::default()
    };
    let s = store.spend_summary(yesterday, 10).await.unwrap();
    assert_eq!(keys(&s), owned(&[("k2", 3), ("k3", 1)]));
    let tomorrow = today + Duration::days(1);
    assert!(store.roll_spend_windows(tomorrow).await.unwrap());
    assert!(
        !store.roll_spend_windows(today).await.unwrap(),
        "a process whose clock is behind never rolls the windows back"
    );
    let next_week = RollupFilter {
        start: Some(tomorrow - Duration::days(6)),
        end: Some(tomorrow),
        ..Default::default()
    };
    let s = store.spend_summary(next_week, 10).await.unwrap();
    assert_eq!(keys(&s), owned(&[("k2", 4), ("k3", 3)]));
});

fn u1_again() -> RollupFilter {
    RollupFilter { user_id: Some("u1".into()), ..Default::default() }
}

backend_tests!(the_upgrade_backfill_rolls_up_as_inserts_do, async |store, db| {
    // The migration that added the narrow rollups filled them from the records kept; run
    // its backfill again over records stored by the insert path, and get the same sums.
    let day = at("2026-03-11T12:00:00Z");
    let mut batch = Vec::new();
    for (i, ms) in [10.0, 24.9, 25.0, 999.0, 1000.0, 120_000.0, 500_000.0].into_iter().enumerate() {
        batch.push(SpendRecord { latency_ms: ms, ..record(&format!("l{i}"), day) });
    }
    batch.push(SpendRecord {
        model_group: "claude".into(),
        attempts: json!([{"model_group": "gpt-4o"}, {"model_group": "claude"}]),
        ..owned_record("fb", day, "k1", "u1", "t1")
    });
    batch.push(SpendRecord {
        outcome: "rate_limited".into(),
        attempts: json!([]),
        ..owned_record("refused", day + Duration::days(1), "k1", "u1", "t1")
    });
    store.insert_spend(&batch).await.unwrap();
    let everyone = RollupFilter::default();
    let inserted = store.spend_summary(everyone.clone(), 10).await.unwrap();
    let u1 = RollupFilter { user_id: Some("u1".into()), ..Default::default() };
    let users_own = store.spend_summary(u1.clone(), 10).await.unwrap();
    assert_eq!(users_own.days.iter().map(|(_, t)| t.requests).sum::<i64>(), 2);
    let daily = store.daily_spend(everyone.clone()).await.unwrap();

    // PostgreSQL keeps the backfill as a function (the console benchmark's seed calls it);
    // SQLite's migration runs it inline, from this comment on.
    let backfill = match db.backend() {
        tollgate_store::Backend::Postgres => "SELECT tollgate_rebuild_spend_rollups()".to_owned(),
        tollgate_store::Backend::Sqlite => {
            let path = format!(
                "{}/../../migrations/sqlite/20261205000001_spend_rollups.sql",
                env!("CARGO_MANIFEST_DIR")
            );
            let migration = std::fs::read_to_string(&path).unwrap();
            migration[migration.find("-- The records kept so far").unwrap()..].to_owned()
        }
    };
    db.execute("DELETE FROM spend_rollup").await;
    db.execute("UPDATE spend_daily SET fallbacks = 0").await;
    assert_ne!(store.spend_summary(everyone.clone(), 10).await.unwrap(), inserted);
    db.execute_script(&backfill).await;
    assert_eq!(store.spend_summary(everyone.clone(), 10).await.unwrap(), inserted);
    assert_eq!(store.spend_summary(u1, 10).await.unwrap(), users_own, "a user's own rollups");
    assert_eq!(store.daily_spend(everyone).await.unwrap(), daily);
    assert_eq!(inserted.days[0].1.fallbacks, 1);

    // A day whose records retention removed is rolled up from `spend_daily`, which keeps it:
    // its failure's outcome is not known there, so it counts as `failed`.
    db.execute("DELETE FROM spend_logs WHERE request_id = 'refused'").await;
    db.execute_script(&backfill).await;
    let s = store.spend_summary(RollupFilter::default(), 10).await.unwrap();
    let d2 = NaiveDate::from_ymd_opt(2026, 3, 12).unwrap();
    assert_eq!(s.days.last().map(|(d, t)| (*d, t.requests, t.failures)), Some((d2, 1, 1)));
    assert!(s.outcomes.contains(&(d2, "failed".to_owned(), 1)), "{:?}", s.outcomes);
    assert_eq!(s.days[0], inserted.days[0], "days with records are as before");
    let own = store.spend_summary(u1_again(), 10).await.unwrap();
    assert_eq!(own.days.last().map(|(d, t)| (*d, t.requests)), Some((d2, 1)), "the user's too");
});

backend_tests!(spend_log_model_outcome_and_status_filters, async |store| {
    let t0 = at("2026-03-10T12:00:00Z");
    let rec = |id: &str, minutes: i64, requested: &str, group: &str, served: &str| SpendRecord {
        requested_model: requested.into(),
        model_group: group.into(),
        served_model: served.into(),
        ..record(id, t0 + Duration::minutes(minutes))
    };
    let failed = |r: SpendRecord, status: i32, outcome: &str| SpendRecord {
        status,
        outcome: outcome.into(),
        cost: 0.0,
        ..r
    };
    store
        .insert_spend(&[
            rec("a", 0, "gpt-4o", "gpt-4o", "openai/gpt-4o"),
            failed(rec("b", 1, "fast", "gpt-4o-mini", "openai/gpt-4o-mini"), 429, "refused"),
            failed(rec("c", 2, "gpt-4o", "gpt-4o", "azure/gpt-4o"), 502, "upstream_failed"),
            failed(rec("d", 3, "claude", "claude", "anthropic/claude"), 0, "client_disconnected"),
            failed(rec("e", 4, "claude", "claude", "anthropic/claude"), 200, "stream_failed"),
            failed(rec("f", 5, "gpt-4o", "gpt-4o", ""), 503, "refused"),
        ])
        .await
        .unwrap();
    let f = |filter: SpendFilter| {
        let store = store.clone();
        async move {
            let records = store.spend_logs(filter).await.unwrap();
            records.into_iter().map(|r| r.request_id).collect::<Vec<_>>()
        }
    };
    let model = |m: &str| SpendFilter { model: Some(m.into()), ..Default::default() };
    // The name clients asked for, the model group, or the deployment that served it.
    assert_eq!(f(model("gpt-4o")).await, ["f", "c", "a"]);
    assert_eq!(f(model("fast")).await, ["b"]);
    assert_eq!(f(model("gpt-4o-mini")).await, ["b"]);
    assert_eq!(f(model("azure/gpt-4o")).await, ["c"]);
    assert!(f(model("gpt")).await.is_empty(), "a model matches whole names only");
    let outcomes = |o: &[&str]| SpendFilter {
        outcomes: o.iter().map(|s| (*s).to_owned()).collect(),
        ..Default::default()
    };
    assert_eq!(f(outcomes(&["success"])).await, ["a"]);
    assert_eq!(f(outcomes(&["refused"])).await, ["f", "b"]);
    assert_eq!(f(outcomes(&["refused", "stream_failed"])).await, ["f", "e", "b"]);
    let status =
        |min, max| SpendFilter { status: Some(StatusRange { min, max }), ..Default::default() };
    assert_eq!(f(status(429, 429)).await, ["b"]);
    assert_eq!(f(status(0, 0)).await, ["d"]);
    assert_eq!(f(status(500, 599)).await, ["f", "c"]);
    assert_eq!(f(status(200, 299)).await, ["e", "a"]);
    let all = SpendFilter {
        model: Some("gpt-4o".into()),
        outcomes: vec!["refused".into(), "upstream_failed".into()],
        status: Some(StatusRange { min: 500, max: 599 }),
        start: Some(t0 + Duration::minutes(2)),
        end: Some(t0 + Duration::minutes(5)),
        ..Default::default()
    };
    assert_eq!(f(all).await, ["c"], "filters combine");
});

backend_tests!(spend_log_cursor_never_skips_or_repeats_records_of_one_instant, async |store| {
    // Seven records, five of them in one microsecond, read two at a time: a page boundary
    // falls inside the tie twice.
    let t0 = at("2026-03-10T12:00:00.123456Z");
    let tie = t0 + Duration::seconds(1);
    let mut records = vec![record("z-early", t0), record("a-late", t0 + Duration::seconds(2))];
    for id in ["r3", "r1", "r5", "r2", "r4"] {
        records.push(SpendRecord { user_id: Some("u".into()), ..record(id, tie) });
    }
    store.insert_spend(&records).await.unwrap();
    let read = |filter: SpendFilter| {
        let store = store.clone();
        async move { store.spend_logs(filter).await.unwrap() }
    };
    let whole: Vec<String> =
        read(SpendFilter::default()).await.into_iter().map(|r| r.request_id).collect();
    assert_eq!(whole, ["a-late", "r5", "r4", "r3", "r2", "r1", "z-early"]);
    for size in [1, 2, 3] {
        for user in [None, Some("u".to_owned())] {
            let mut walked = Vec::new();
            let mut before = None;
            loop {
                let filter = SpendFilter {
                    user_id: user.clone(),
                    before,
                    limit: size,
                    ..Default::default()
                };
                let page = read(filter).await;
                before = page.last().map(SpendCursor::after);
                walked.extend(page.iter().map(|r| r.request_id.clone()));
                if page.len() < size as usize {
                    break;
                }
            }
            let expected: Vec<&String> =
                whole.iter().filter(|id| user.is_none() || id.starts_with('r')).collect();
            assert_eq!(walked.iter().collect::<Vec<_>>(), expected, "size {size}, user {user:?}");
        }
    }
});
