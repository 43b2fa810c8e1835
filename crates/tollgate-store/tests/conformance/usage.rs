//! Requests per deployment over a recent window.

use chrono::Duration;
use tollgate_store::{Backend, DeploymentUsage, SpendRecord};

use crate::fixtures::{now, record};
use crate::harness::backend_tests;

fn served(id: &str, at: chrono::DateTime<chrono::Utc>, group: &str, model: &str) -> SpendRecord {
    SpendRecord { model_group: group.to_owned(), served_model: model.to_owned(), ..record(id, at) }
}

fn failed(r: SpendRecord) -> SpendRecord {
    SpendRecord { status: 502, outcome: "upstream_failed".to_owned(), ..r }
}

fn usage(group: &str, model: &str, requests: i64, errors: i64) -> DeploymentUsage {
    DeploymentUsage {
        model_group: group.to_owned(),
        served_model: model.to_owned(),
        requests,
        errors,
    }
}

backend_tests!(
    deployment_usage_counts_recent_requests_and_failures_per_deployment,
    async |store, db| {
        let t = now();
        let since = t - Duration::hours(24);
        let records = vec![
            served("a1", t - Duration::minutes(5), "gpt-4o", "openai/gpt-4o"),
            served("a2", t - Duration::hours(23), "gpt-4o", "openai/gpt-4o"),
            failed(served("a3", t - Duration::hours(1), "gpt-4o", "openai/gpt-4o")),
            // The same served model in another group is another deployment.
            served("b1", t - Duration::hours(2), "fast", "openai/gpt-4o"),
            failed(served("c1", t - Duration::minutes(1), "gpt-4o", "anthropic/claude-sonnet-4-5")),
            SpendRecord {
                outcome: "client_disconnected".to_owned(),
                status: 0,
                ..served("c2", t - Duration::minutes(2), "gpt-4o", "anthropic/claude-sonnet-4-5")
            },
            // Exactly at the start of the window: counted.
            served("edge", since, "gpt-4o", "openai/gpt-4o"),
            // Before the window, and a refusal that reached no deployment: not counted.
            failed(served("old", since - Duration::seconds(1), "gpt-4o", "openai/gpt-4o")),
            served("refused", t - Duration::minutes(3), "gpt-4o", ""),
        ];
        store.insert_spend(&records).await.unwrap();

        let got = store.deployment_usage(since).await.unwrap();
        assert_eq!(
            got,
            vec![
                usage("fast", "openai/gpt-4o", 1, 0),
                usage("gpt-4o", "anthropic/claude-sonnet-4-5", 2, 2),
                usage("gpt-4o", "openai/gpt-4o", 4, 1),
            ]
        );
        assert!(store.deployment_usage(t + Duration::seconds(1)).await.unwrap().is_empty());

        // The index that lets the database answer from the index alone is there.
        let indexed = match db.backend() {
            Backend::Sqlite => {
                "SELECT count(*) FROM pragma_index_info('spend_logs_deployment_idx')".to_owned()
            }
            Backend::Postgres => {
                "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname = 'spend_logs_deployment_idx' AND i.indnatts = 4"
                    .to_owned()
            }
        };
        assert_eq!(db.scalar(&indexed).await, if db.backend() == Backend::Sqlite { 4 } else { 1 });
    }
);
