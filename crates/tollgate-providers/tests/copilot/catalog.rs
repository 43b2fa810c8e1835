//! The model catalog: fetch, cache, background refresh.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tollgate_providers::copilot::ModelCatalog;
use tollgate_testkit::{MockGitHub, github_mock::copilot_model};

use super::{account, eventually, http, manager};

/// How many models the stand-in's catalog lists unless a test changes it.
fn listed() -> usize {
    tollgate_testkit::github_mock::default_models().len()
}

#[tokio::test]
async fn model_catalog_fetches_caches_and_refreshes() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_models");
    let catalog = ModelCatalog::new(http());
    let token = tokens.token(&account).await.unwrap();
    let models = catalog.models(&token, &account.id).await.unwrap();
    assert_eq!(models.len(), listed());
    let sonnet = models.iter().find(|m| m.id == "claude-sonnet-4.5").unwrap();
    assert!(sonnet.supports_messages_api());
    assert_eq!(sonnet.premium_multiplier(), Some(1.0));
    assert_eq!(sonnet.context_window(), Some(144_000));
    let gpt = catalog.model(&token, &account.id, "gpt-4o").await.unwrap().unwrap();
    assert!(!gpt.supports_messages_api());
    assert_eq!(gpt.premium_multiplier(), Some(0.0));
    assert!(
        catalog
            .model(&token, &account.id, "text-embedding-3-small")
            .await
            .unwrap()
            .unwrap()
            .is_embeddings()
    );
    assert_eq!(github.request_count(), 1);

    let request = github.last_request().unwrap();
    assert_eq!(request.path, "/models");
    assert_eq!(request.header("copilot-integration-id"), Some("vscode-chat"));
    assert!(request.header("x-request-id").is_some());
    assert_eq!(request.header("x-initiator"), None);

    github.set_models(vec![tollgate_testkit::github_mock::copilot_model(
        "new",
        "OpenAI",
        0.0,
        &["/chat/completions"],
    )]);
    assert_eq!(catalog.models(&token, &account.id).await.unwrap().len(), listed());
    assert_eq!(catalog.refresh(&token, &account.id).await.unwrap()[0].id, "new");
    assert_eq!(github.request_count(), 2);

    // Past its TTL a list is still served, and one background fetch renews it.
    let short = ModelCatalog::new(http()).with_ttl(Duration::ZERO);
    short.models(&token, &account.id).await.unwrap();
    assert_eq!(github.request_count(), 3);
    assert_eq!(short.models(&token, &account.id).await.unwrap()[0].id, "new");
    assert!(eventually(|| github.request_count() == 4).await);
}

#[tokio::test]
async fn a_stale_catalog_is_served_while_one_slow_refresh_runs() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_stale");
    let token = tokens.token(&account).await.unwrap();
    let catalog = Arc::new(ModelCatalog::new(http()).with_ttl(Duration::from_millis(50)));
    assert_eq!(catalog.models(&token, &account.id).await.unwrap().len(), listed());
    tokio::time::sleep(Duration::from_millis(60)).await;
    github.set_models(vec![copilot_model("new", "OpenAI", 0.0, &["/chat/completions"])]);
    github.set_models_delay(Duration::from_secs(1));

    let started = Instant::now();
    let reads = (0..10).map(|_| {
        let (catalog, token, id) = (Arc::clone(&catalog), token.clone(), account.id.clone());
        tokio::spawn(async move { catalog.models(&token, &id).await.unwrap().len() })
    });
    let lens = futures_util::future::join_all(reads).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "readers waited {took:?} for the refresh");
    assert!(lens.iter().all(|n| *n.as_ref().unwrap() == listed()), "{lens:?}");
    // One refresh, and once it lands readers get the new list.
    let models_calls = || github.requests().iter().filter(|r| r.path == "/models").count();
    assert!(eventually(|| models_calls() == 2).await);
    let mut renewed = false;
    for _ in 0..300 {
        if catalog.models(&token, &account.id).await.unwrap()[0].id == "new" {
            renewed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(renewed, "the background refresh never landed");
    assert!(models_calls() <= 3, "{} fetches", models_calls());
}

#[tokio::test]
async fn readers_do_not_wait_for_a_forced_refresh() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_forced");
    let token = tokens.token(&account).await.unwrap();
    let catalog = Arc::new(ModelCatalog::new(http()));
    catalog.models(&token, &account.id).await.unwrap();
    github.set_models_delay(Duration::from_secs(1));
    let refresh = {
        let (catalog, token, id) = (Arc::clone(&catalog), token.clone(), account.id.clone());
        tokio::spawn(async move { catalog.refresh(&token, &id).await.map(|m| m.len()) })
    };
    assert!(eventually(|| github.request_count() == 2).await, "the refresh is under way");
    let started = Instant::now();
    assert_eq!(catalog.models(&token, &account.id).await.unwrap().len(), listed());
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    assert_eq!(refresh.await.unwrap(), Ok(listed()));
}

#[tokio::test]
async fn concurrent_callers_without_a_catalog_share_one_fetch() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_cold_models");
    let token = tokens.token(&account).await.unwrap();
    github.set_models_delay(Duration::from_millis(200));
    let catalog = Arc::new(ModelCatalog::new(http()));
    let reads = (0..10).map(|_| {
        let (catalog, token, id) = (Arc::clone(&catalog), token.clone(), account.id.clone());
        tokio::spawn(async move { catalog.models(&token, &id).await.unwrap().len() })
    });
    let lens = futures_util::future::join_all(reads).await;
    assert!(lens.iter().all(|n| *n.as_ref().unwrap() == listed()));
    assert_eq!(github.request_count(), 1);
}

#[tokio::test]
async fn a_failed_background_refresh_keeps_the_catalog() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_keep");
    let token = tokens.token(&account).await.unwrap();
    let catalog = ModelCatalog::new(http()).with_ttl(Duration::ZERO);
    catalog.models(&token, &account.id).await.unwrap();
    // Copilot now refuses the token: the refresh fails, the list stays.
    github.expire_all_tokens();
    assert_eq!(catalog.models(&token, &account.id).await.unwrap().len(), listed());
    assert!(eventually(|| github.request_count() == 2).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(catalog.models(&token, &account.id).await.unwrap().len(), listed());
    // It is not retried on every read.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(github.request_count(), 2);
}

#[tokio::test]
async fn models_for_renews_the_token_after_a_401() {
    let github = MockGitHub::start().await;
    let tokens = manager(&github);
    let account = account(&github, "ghu_401");
    let catalog = ModelCatalog::new(http());
    catalog.models_for(&tokens, &account).await.unwrap();
    github.expire_all_tokens();
    // Without a cached list the fetch itself meets the 401.
    catalog.invalidate(&account.id);
    let models = catalog.models_for(&tokens, &account).await.unwrap();
    assert_eq!(models.len(), listed());
    assert_eq!(github.exchange_count("ghu_401"), 2);
    let paths: Vec<_> = github.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/models", "/models", "/models"]);
}

#[tokio::test]
async fn call_terms_come_from_the_catalog_for_copilot_only() {
    use tollgate_config::{MapEnv, Secret};
    use tollgate_protocol::{Operation, Protocol};
    use tollgate_providers::{CallTerms, Providers};

    let entry = |model: &str| {
        let yaml =
            format!("model_list:\n  - model_name: m\n    litellm_params:\n      model: {model}\n");
        tollgate_config::from_yaml_str(&yaml, None, &MapEnv::default()).unwrap().models.remove(0)
    };
    let github = MockGitHub::start().await;
    let providers = Providers::new(http(), github.api_url(), "http://auth".to_owned());
    let copilot = entry("github_copilot/x");
    let terms = |endpoint, model: &'static str| {
        let (providers, copilot) = (&providers, &copilot);
        async move { providers.terms(copilot, endpoint, model, None).await }
    };
    // Not linked yet: OpenAI's wire, nothing billed; the send says what is wrong.
    let plain = CallTerms { protocol: Protocol::Chat, premium_multiplier: None };
    assert_eq!(terms(Operation::Generate(Protocol::Messages), "claude-opus-4.5").await, plain);

    github.add_account("ghu_terms", true);
    providers.copilot().set_account("default", Secret::new("ghu_terms".to_owned()));
    let native = CallTerms { protocol: Protocol::Messages, premium_multiplier: Some(3.0) };
    assert_eq!(terms(Operation::Generate(Protocol::Messages), "claude-opus-4.5").await, native);
    let translated = CallTerms { protocol: Protocol::Chat, premium_multiplier: Some(3.0) };
    assert_eq!(terms(Operation::Generate(Protocol::Chat), "claude-opus-4.5").await, translated);
    let included = CallTerms { protocol: Protocol::Chat, premium_multiplier: Some(0.0) };
    assert_eq!(terms(Operation::Generate(Protocol::Messages), "gpt-4o").await, included);
    assert_eq!(terms(Operation::Generate(Protocol::Messages), "not-in-the-catalog").await, plain);
    assert_eq!(github.requests().iter().filter(|r| r.path == "/models").count(), 1);

    let anthropic = entry("anthropic/claude-sonnet-4-5");
    let openai = entry("openai/gpt-4o");
    let ask = |e| providers.terms(e, Operation::Generate(Protocol::Messages), "m", None);
    assert_eq!(
        ask(&anthropic).await,
        CallTerms { protocol: Protocol::Messages, premium_multiplier: None }
    );
    assert_eq!(
        ask(&openai).await,
        CallTerms { protocol: Protocol::Chat, premium_multiplier: None }
    );
}
