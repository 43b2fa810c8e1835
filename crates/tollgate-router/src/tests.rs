use rand::SeedableRng;
use std::time::{Duration, Instant};

use tollgate_config::{MapEnv, RouterSettings, from_yaml_str};

use super::*;

fn catalog(yaml: &str) -> Catalog {
    Catalog::from_config(&from_yaml_str(yaml, None, &MapEnv::default()).unwrap())
}

const CONFIG: &str = r#"
model_list:
  - model_name: gpt-4o
    litellm_params: { model: openai/gpt-4o-2024-08-06 }
  - model_name: "*"
    litellm_params: { model: github_copilot/claude-opus-4.6 }
  - model_name: openai/*
    litellm_params: { model: openai/* }
  - model_name: openai/gpt-*-mini
    litellm_params: { model: openrouter/openai/gpt-*-mini }
  - model_name: anthropic/*
    litellm_params: { model: anthropic/* }
"#;

#[test]
fn exact_names_win() {
    let c = catalog(CONFIG);
    let r = c.resolve("gpt-4o").unwrap();
    assert_eq!(r.group.name, "gpt-4o");
    assert_eq!(r.upstream_model(&r.pick()), "gpt-4o-2024-08-06");
}

#[test]
fn most_specific_pattern_wins() {
    let c = catalog(CONFIG);
    let r = c.resolve("openai/gpt-5-mini").unwrap();
    assert_eq!(r.group.name, "openai/gpt-*-mini");
    assert_eq!(r.served_model(&r.pick()), "openrouter/openai/gpt-5-mini");

    let r = c.resolve("openai/o3").unwrap();
    assert_eq!(r.group.name, "openai/*");
    assert_eq!(r.upstream_model(&r.pick()), "o3");

    let r = c.resolve("anthropic/claude-sonnet-4").unwrap();
    assert_eq!(r.upstream_model(&r.pick()), "claude-sonnet-4");

    let r = c.resolve("something-else").unwrap();
    assert_eq!(r.group.name, "*");
    assert_eq!(r.upstream_model(&r.pick()), "claude-opus-4.6");
}

#[test]
fn a_deployment_serves_its_own_name_or_what_its_pattern_makes() {
    let c = catalog(CONFIG);
    let d = |group: &str| c.resolve(group).unwrap().pick();
    assert!(d("gpt-4o").serves("openai/gpt-4o-2024-08-06"));
    assert!(!d("gpt-4o").serves("openai/gpt-4o"));
    assert!(!d("gpt-4o").serves("openrouter/gpt-4o-2024-08-06"), "another provider");
    let mini = d("openai/gpt-5-mini");
    assert!(mini.serves("openrouter/openai/gpt-5-mini"));
    assert!(!mini.serves("openrouter/openai/gpt-5"));
    assert!(d("openai/o3").serves("openai/o3"));
    assert!(!d("openai/o3").serves("openai"), "no model after the provider");
}

#[test]
fn unknown_names_do_not_resolve_without_a_catch_all() {
    let c = catalog("model_list:\n  - model_name: a\n    litellm_params: { model: openai/a }\n");
    assert!(c.resolve("b").is_none());
    assert!(c.resolve("a").is_some());
}

#[test]
fn listing_leaves_patterns_out() {
    let c = catalog(CONFIG);
    assert_eq!(c.model_names().collect::<Vec<_>>(), vec!["gpt-4o"]);
    assert_eq!(c.group_names().count(), 5);
    assert_eq!(c.deployments().count(), 5);
}

#[test]
fn no_config_routes_everything_to_copilot() {
    let c = Catalog::from_config(&tollgate_config::load(None, &MapEnv::default()).unwrap());
    let r = c.resolve("gpt-5-mini").unwrap();
    let d = r.pick();
    assert_eq!(d.entry.provider, ProviderKind::GithubCopilot);
    assert_eq!(r.served_model(&d), "github_copilot/gpt-5-mini");
}

#[test]
fn glob_captures() {
    let p = Pattern::new("a*b*c");
    assert_eq!(p.captures("a1b2c"), Some(vec!["1".to_owned(), "2".to_owned()]));
    assert_eq!(p.captures("abc"), Some(vec![String::new(), String::new()]));
    assert!(p.captures("a1b2").is_none());
    assert!(Pattern::new("claude-*").matches("claude-sonnet-4.5"));
    assert!(!Pattern::new("claude-*").matches("gpt-claude-x"));
    assert!(Pattern::new("exact").matches("exact"));
    assert!(!Pattern::new("exact").matches("exactly"));
    assert_eq!(substitute("x-*-y", &["m".to_owned()]), "x-m-y");
}

#[test]
fn weights_share_traffic() {
    let c = catalog(
        "model_list:\n  - model_name: g\n    litellm_params: { model: openai/a, weight: 3 }\n  - model_name: g\n    litellm_params: { model: openai/b, weight: 1 }\n",
    );
    let group = &c.resolve("g").unwrap().group;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let picks_a = (0..4000)
        .filter(|_| pick_weighted(&group.deployments, &mut rng).entry.model == "openai/a")
        .count();
    assert!((2800..3200).contains(&picks_a), "{picks_a}");
}

mod plans {
    use std::time::{Duration, Instant};

    use tollgate_config::{MapEnv, from_yaml_str};

    use crate::{FailureKind, Router};

    fn router(yaml: &str) -> Router {
        Router::from_config(&from_yaml_str(yaml, None, &MapEnv::default()).unwrap())
    }

    fn groups(r: &Router, model: &str) -> Vec<String> {
        r.plan(model).unwrap().routes().iter().map(|x| x.group.name.clone()).collect()
    }

    const CHAINS: &str = r#"
model_list:
  - model_name: opus
    litellm_params: { model: openai/opus, fallbacks: [gemini, mini] }
  - model_name: gemini
    litellm_params: { model: openai/gemini }
    fallbacks: [mini]
  - model_name: mini
    litellm_params: { model: openai/mini }
  - model_name: claude-haiku
    litellm_params: { model: openai/haiku }
  - model_name: claude-sonnet
    litellm_params: { model: openai/sonnet }
  - model_name: glm
    litellm_params: { model: openai/glm }
  - model_name: glm-fast
    litellm_params: { model: openai/glm-fast }
  - model_name: lonely
    litellm_params: { model: openai/lonely }
  - model_name: anthropic/*
    litellm_params: { model: openai/* }
router_settings:
  fallbacks:
    - "claude-*": ["glm"]
    - "claude-haiku": ["glm-fast"]
    - "anthropic/*": ["glm"]
    - "anthropic/claude-haiku-*": ["glm-fast"]
    - "opus": ["lonely"]
  default_fallbacks: ["mini"]
"#;

    #[test]
    fn chains_on_entries_win() {
        let r = router(CHAINS);
        assert_eq!(groups(&r, "opus"), ["opus", "gemini", "mini"]);
        assert_eq!(groups(&r, "gemini"), ["gemini", "mini"]);
    }

    #[test]
    fn fallbacks_recurse_depth_first_like_litellm() {
        let r = router(
            r#"
model_list:
  - model_name: primary
    litellm_params: { model: openai/primary, fallbacks: [second, other] }
  - model_name: second
    litellm_params: { model: openai/second, fallbacks: [third] }
  - model_name: third
    litellm_params: { model: openai/third }
  - model_name: other
    litellm_params: { model: openai/other }
"#,
        );
        // `second`'s own fallback comes before `primary`'s next one.
        assert_eq!(groups(&r, "primary"), ["primary", "second", "third", "other"]);
    }

    #[test]
    fn recursion_stops_at_max_fallbacks() {
        let mut yaml = String::from("model_list:\n");
        for i in 0..9 {
            yaml.push_str(&format!(
                "  - model_name: m{i}\n    litellm_params: {{ model: openai/m{i}, fallbacks: [m{}] }}\n",
                i + 1
            ));
        }
        yaml.push_str("  - model_name: m9\n    litellm_params: { model: openai/m9 }\n");
        let r = router(&yaml);
        // LiteLLM's default: five hops from the requested model.
        assert_eq!(groups(&r, "m0"), ["m0", "m1", "m2", "m3", "m4", "m5"]);
        assert_eq!(groups(&r, "m6"), ["m6", "m7", "m8", "m9"]);
        let r = router(&format!("{yaml}router_settings:\n  max_fallbacks: 2\n"));
        assert_eq!(groups(&r, "m0"), ["m0", "m1", "m2"]);
        let r = router(&format!("{yaml}router_settings:\n  max_fallbacks: 0\n"));
        assert_eq!(groups(&r, "m0"), ["m0"]);
    }

    #[test]
    fn a_step_passed_over_tries_the_groups_other_deployments_then_the_next_group() {
        let r = router(
            r#"
model_list:
  - model_name: a
    litellm_params: { model: github_copilot/a, fallbacks: [b] }
  - model_name: a
    litellm_params: { model: openai/a, fallbacks: [b] }
  - model_name: b
    litellm_params: { model: openai/b }
"#,
        );
        let now = Instant::now();
        let mut plan = r.plan("a").unwrap();
        let first = plan.first(now).unwrap();
        let second = plan.pass_over(now).unwrap();
        assert_eq!(second.route.name(), "a");
        assert_ne!(second.deployment.id(), first.deployment.id(), "the other deployment of a");
        assert!(!second.is_fallback);
        let third = plan.pass_over(now).unwrap();
        assert_eq!((third.route.name(), third.is_fallback), ("b", true));
        assert!(plan.pass_over(now).is_none());
    }

    #[test]
    fn restricted_routes_are_passed_over_in_order() {
        let r = router(
            r#"
model_list:
  - model_name: a
    litellm_params: { model: openai/a, fallbacks: [b, c] }
  - model_name: b
    litellm_params: { model: openai/b }
  - model_name: c
    litellm_params: { model: openai/c }
"#,
        );
        let now = Instant::now();
        let mut plan = r.plan("a").unwrap();
        plan.restrict(|route| route.name() != "b");
        let first = plan.first(now).unwrap();
        assert_eq!(first.route.name(), "a");
        assert!(plan.passed_over().is_empty());
        let next = plan.after_failure(FailureKind::ServerError, None, now).unwrap();
        assert_eq!(next.route.name(), "c");
        let skipped: Vec<String> = plan.passed_over().iter().map(|r| r.name().to_owned()).collect();
        assert_eq!(skipped, ["b"]);
        assert!(plan.after_failure(FailureKind::ServerError, None, now).is_none());
        assert!(plan.passed_over().is_empty(), "each route is passed over once");

        // Everything the caller may use is cooling: the soonest of those, never `b`.
        let s = r.settings().clone();
        for name in ["a", "c"] {
            let d = r.catalog().group(name).unwrap().deployments[0].clone();
            d.health.record_failure(
                now,
                FailureKind::RateLimited,
                Some(Duration::from_secs(30)),
                &s,
            );
        }
        let mut plan = r.plan("a").unwrap();
        plan.restrict(|route| route.name() != "b");
        let step = plan.first(now).unwrap();
        assert_ne!(step.route.name(), "b");
    }

    #[test]
    fn exact_rules_beat_patterns_and_specific_patterns_beat_general_ones() {
        let r = router(CHAINS);
        // Each fallback then follows its own chain: here `default_fallbacks`.
        assert_eq!(groups(&r, "claude-haiku"), ["claude-haiku", "glm-fast", "mini"]);
        assert_eq!(groups(&r, "claude-sonnet"), ["claude-sonnet", "glm", "mini"]);
        assert_eq!(groups(&r, "anthropic/claude-haiku-4-5"), ["anthropic/*", "glm-fast", "mini"]);
        assert_eq!(groups(&r, "anthropic/claude-opus-4"), ["anthropic/*", "glm", "mini"]);
        assert_eq!(groups(&r, "lonely"), ["lonely", "mini"], "default fallbacks");
        assert_eq!(groups(&r, "mini"), ["mini"], "a model is not its own fallback");
    }

    #[test]
    fn loops_and_unknown_names_are_harmless() {
        let r = router(
            "model_list:\n  - model_name: a\n    litellm_params: { model: openai/a, fallbacks: [b, nowhere, a] }\n  - model_name: b\n    litellm_params: { model: openai/b, fallbacks: [a] }\n",
        );
        assert_eq!(groups(&r, "a"), ["a", "b"]);
        assert_eq!(groups(&r, "b"), ["b", "a"]);
    }

    #[test]
    fn cooling_deployments_are_skipped_and_the_soonest_tried_when_all_cool() {
        let r = router(CHAINS);
        let now = Instant::now();
        let mut plan = r.plan("opus").unwrap();
        let first = plan.first(now).unwrap();
        assert_eq!(first.route.group.name, "opus");
        let settings = r.settings().clone();
        first.deployment.health.record_failure(
            now,
            FailureKind::RateLimited,
            Some(Duration::from_secs(30)),
            &settings,
        );
        let next = plan.after_failure(FailureKind::RateLimited, None, now).unwrap();
        assert_eq!(next.route.group.name, "gemini");
        assert!(next.is_fallback);

        // A new request skips the cooling primary.
        let mut plan = r.plan("opus").unwrap();
        assert_eq!(plan.first(now).unwrap().route.group.name, "gemini");

        // Everything cooling: the one that recovers first is tried.
        let soon = plan.routes()[2].group.deployments[0].clone();
        next.deployment.health.record_failure(
            now,
            FailureKind::RateLimited,
            Some(Duration::from_secs(20)),
            &settings,
        );
        soon.health.record_failure(
            now,
            FailureKind::RateLimited,
            Some(Duration::from_secs(10)),
            &settings,
        );
        let mut plan = r.plan("opus").unwrap();
        let step = plan.first(now).unwrap();
        assert_eq!(step.route.group.name, "mini");
        // Cooldowns end by themselves.
        let mut plan = r.plan("opus").unwrap();
        assert_eq!(plan.first(now + Duration::from_secs(31)).unwrap().route.group.name, "opus");
    }

    #[test]
    fn client_errors_stop_the_plan_and_retries_stay_in_the_group() {
        let yaml = format!("{CHAINS}  num_retries: 2\n");
        let r = router(&yaml);
        let now = Instant::now();
        let mut plan = r.plan("opus").unwrap();
        plan.first(now).unwrap();
        assert!(plan.after_failure(FailureKind::BadRequest, None, now).is_none());

        let mut plan = r.plan("opus").unwrap();
        plan.first(now).unwrap();
        let retry = plan
            .after_failure(FailureKind::ServerError, Some(Duration::from_secs(1)), now)
            .unwrap();
        assert_eq!(retry.route.group.name, "opus");
        assert!(!retry.is_fallback);
        assert_eq!(retry.wait, Duration::from_secs(1));
        let retry = plan.after_failure(FailureKind::ServerError, None, now).unwrap();
        assert_eq!(retry.route.group.name, "opus");
        let fallback = plan.after_failure(FailureKind::ServerError, None, now).unwrap();
        assert_eq!(fallback.route.group.name, "gemini");
        // Quota is not retried in place.
        let mut plan = r.plan("opus").unwrap();
        plan.first(now).unwrap();
        assert_eq!(
            plan.after_failure(FailureKind::QuotaExceeded, None, now).unwrap().route.group.name,
            "gemini"
        );
        // Nothing left after the last fallback.
        let mut plan = r.plan("mini").unwrap();
        plan.first(now).unwrap();
        for _ in 0..2 {
            assert!(plan.after_failure(FailureKind::Timeout, None, now).is_some());
        }
        assert!(plan.after_failure(FailureKind::Timeout, None, now).is_none());
    }

    #[test]
    fn context_window_errors_use_their_own_chain() {
        let yaml = format!("{CHAINS}  context_window_fallbacks:\n    - mini: [claude-sonnet]\n");
        let r = router(&yaml);
        let now = Instant::now();
        let mut plan = r.plan("mini").unwrap();
        plan.first(now).unwrap();
        let next = plan.after_failure(FailureKind::ContextWindow, None, now).unwrap();
        assert_eq!(next.route.group.name, "claude-sonnet");
        let mut plan = r.plan("gemini").unwrap();
        plan.first(now).unwrap();
        assert!(plan.after_failure(FailureKind::ContextWindow, None, now).is_none());
    }
}

fn stored(name: &str, id: &str, base: &str) -> ModelEntry {
    let yaml = format!(
        "model_list:\n  - model_name: {name}\n    litellm_params: {{ model: openai/m, api_base: {base} }}\n    model_info: {{ id: {id} }}\n"
    );
    from_yaml_str(&yaml, None, &MapEnv::default()).unwrap().models.remove(0)
}

#[test]
fn stored_models_join_config_groups_and_a_rebuild_keeps_unchanged_deployments() {
    let config = from_yaml_str(CONFIG, None, &MapEnv::default()).unwrap();
    let first = Router::build(
        &config,
        vec![stored("gpt-4o", "s1", "http://a"), stored("new", "s2", "http://a")],
        None,
    );
    let group = first.catalog().group("gpt-4o").unwrap();
    assert_eq!(group.deployments.len(), 2);
    assert_eq!(group.deployments[0].origin, Origin::Config);
    assert_eq!(group.deployments[1].origin, Origin::Stored);
    assert_eq!(group.deployments[1].id(), "s1");
    assert_eq!(first.catalog().deployment("s2").unwrap().entry.model_name, "new");
    // Config ids are stable across builds of the same file.
    let config_id = group.deployments[0].id().to_owned();
    assert_eq!(
        Router::from_config(&config).catalog().group("gpt-4o").unwrap().deployments[0].id(),
        config_id
    );

    // A cooldown survives a rebuild that leaves its deployment alone, and not one that
    // changes it.
    let now = Instant::now();
    let settings = RouterSettings::default();
    for d in first.catalog().deployments() {
        d.health.record_failure(
            now,
            FailureKind::RateLimited,
            Some(Duration::from_secs(60)),
            &settings,
        );
    }
    let second = Router::build(
        &config,
        vec![stored("gpt-4o", "s1", "http://a"), stored("new", "s2", "http://b")],
        Some(&first),
    );
    let kept = second.catalog().deployment("s1").unwrap();
    assert!(Arc::ptr_eq(kept, first.catalog().deployment("s1").unwrap()));
    assert!(kept.health.cooling_until(now).is_some());
    let changed = second.catalog().deployment("s2").unwrap();
    assert!(changed.health.cooling_until(now).is_none());
    assert_eq!(changed.entry.api_base.as_deref(), Some("http://b"));
    assert!(second.catalog().deployment(&config_id).unwrap().health.cooling_until(now).is_some());
    // Removed: gone from the new router, while a holder of the old one still has it.
    let third = Router::build(&config, Vec::new(), Some(&second));
    assert!(third.catalog().deployment("s1").is_none() && third.catalog().group("new").is_none());
    assert!(second.catalog().group("new").is_some());
}
