// Helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use tollgate_config::{Diagnostic, LogFormat, MapEnv, ProviderKind, from_yaml_str, load};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

fn env(pairs: &[(&str, &str)]) -> MapEnv {
    MapEnv::from_pairs(pairs.iter().copied())
}

/// Every config a user may start from: each file in `examples/`, and `config.yaml.example`.
fn shipped_configs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 3, "examples/ holds {paths:?}");
    paths.push(root.join("config.yaml.example"));
    paths
}

#[test]
fn the_shipped_configs_load() {
    for path in shipped_configs() {
        let name = path.display();
        for vars in [&[][..], &[("OPENROUTER_API_KEY", "sk-or"), ("LITELLM_MASTER_KEY", "sk-m")]] {
            let cfg = load(Some(&path), &env(vars)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!cfg.models.is_empty(), "{name}");
        }
    }
}

#[test]
fn copilot_fallbacks_reports_what_is_not_built_and_resolves_the_master_key() {
    let cfg = load(
        Some(&example("copilot-fallbacks.yaml")),
        &env(&[("LITELLM_MASTER_KEY", "sk-master")]),
    )
    .unwrap();
    assert_eq!(cfg.settings.master_key.as_ref().map(|k| k.expose().as_str()), Some("sk-master"));
    assert_eq!(cfg.settings.log_format, LogFormat::Json);
    assert!(cfg.settings.store_prompts);
    assert!(cfg.models.iter().all(|m| m.drop_params));
    let texts: Vec<String> = cfg.diagnostics.iter().map(ToString::to_string).collect();
    // Stored models are built: the key is accepted without a word.
    assert!(!texts.iter().any(|t| t.contains("store_model_in_db")), "{texts:#?}");
    assert!(!texts.iter().any(|t| t.contains("fallbacks")), "{texts:#?}");
    assert_eq!(
        cfg.models[0].fallbacks,
        ["github_copilot/gemini-3-pro-preview", "github_copilot/gpt-5-mini"]
    );
    assert_eq!(cfg.models[1].fallbacks, ["github_copilot/gpt-5-mini"]);
    assert!(
        texts.iter().any(|t| t.contains("model_list[0].litellm_params.supports_tool_calling")),
        "{texts:#?}"
    );
    let star = cfg.models.iter().find(|m| m.model_name == "*").unwrap();
    assert_eq!(star.provider, ProviderKind::GithubCopilot);
    assert_eq!(star.upstream_model, "claude-opus-4.6");
    assert_eq!(cfg.models[0].extra_headers.len(), 2);
}

#[test]
fn multi_provider_reports_unset_keys_and_the_misplaced_master_key() {
    let cfg = load(Some(&example("multi-provider.yaml")), &env(&[("ZAI_API_KEY", "zk")])).unwrap();
    let glm = &cfg.models[0];
    assert_eq!(glm.provider, ProviderKind::Anthropic);
    assert_eq!(glm.api_base.as_deref(), Some("https://api.z.ai/api/anthropic"));
    assert_eq!(glm.api_key.as_ref().map(|k| k.expose().as_str()), Some("zk"));
    let openrouter = &cfg.models[2];
    assert_eq!(openrouter.provider, ProviderKind::OpenAi);
    assert_eq!(openrouter.upstream_model, "qwen/qwen3.6-plus:free");
    assert!(cfg.diagnostics.iter().any(|d| matches!(d,
        Diagnostic::MissingEnv { key, var } if key == "model_list[2].litellm_params.api_key" && var == "OPENROUTER_API_KEY")));
    assert!(cfg.diagnostics.iter().any(|d| matches!(d,
        Diagnostic::MissingEnv { key, .. } if key == "litellm_settings.master_key")));
    // Kimi's extra header refers to an unset variable: left out, not sent empty.
    assert!(cfg.models[3].extra_headers.is_empty());

    let cfg =
        load(Some(&example("multi-provider.yaml")), &env(&[("LITELLM_MASTER_KEY", "m")])).unwrap();
    assert!(cfg.settings.master_key.is_some());
    assert!(cfg.diagnostics.iter().any(|d| matches!(d, Diagnostic::Misplaced { .. })));
}

#[test]
fn no_file_means_defaults() {
    let cfg = load(None, &env(&[])).unwrap();
    assert!(cfg.is_default());
    assert_eq!(cfg.settings.port, 4000);
    assert_eq!(cfg.settings.auth_port, 4001);
    assert!(cfg.diagnostics.is_empty());
}

#[test]
fn environment_overrides_the_file() {
    let yaml = "general_settings:\n  master_key: sk-file\n";
    let cfg = from_yaml_str(
        yaml,
        None,
        &env(&[
            ("TOLLGATE_MASTER_KEY", "sk-env"),
            ("TOLLGATE_PORT", "4100"),
            ("PROXY_STATIC_TOKEN", "shared"),
            ("TOLLGATE_LOG_FORMAT", "json"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.settings.master_key.unwrap().expose(), "sk-env");
    assert_eq!(cfg.settings.port, 4100);
    assert_eq!(cfg.settings.static_token.unwrap().expose(), "shared");
    assert_eq!(cfg.settings.log_format, LogFormat::Json);
    let cfg = from_yaml_str(yaml, None, &env(&[("LITELLM_MASTER_KEY", "sk-litellm")])).unwrap();
    assert_eq!(cfg.settings.master_key.unwrap().expose(), "sk-litellm");
}

#[test]
fn the_listen_address_is_loopback_until_a_credential_is_set() {
    let listen = |vars: &[(&str, &str)]| {
        let cfg = load(None, &env(vars)).unwrap();
        (cfg.settings.host.clone(), cfg.settings.listen_host().to_owned())
    };
    assert_eq!(listen(&[]), (None, "127.0.0.1".to_owned()));
    assert_eq!(listen(&[("TOLLGATE_MASTER_KEY", "sk-m")]), (None, "0.0.0.0".to_owned()));
    assert_eq!(listen(&[("PROXY_STATIC_TOKEN", "shared")]), (None, "0.0.0.0".to_owned()));
    // Whatever the operator names is used as given, with or without a key.
    let chosen = Some("0.0.0.0".to_owned());
    assert_eq!(listen(&[("TOLLGATE_HOST", " 0.0.0.0 ")]), (chosen, "0.0.0.0".to_owned()));
    let chosen = Some("127.0.0.1".to_owned());
    let keyed = [("TOLLGATE_HOST", "127.0.0.1"), ("TOLLGATE_MASTER_KEY", "sk-m")];
    assert_eq!(listen(&keyed), (chosen, "127.0.0.1".to_owned()));
    assert_eq!(listen(&[("TOLLGATE_HOST", "  ")]).0, None);
}

#[test]
fn github_urls_default_to_github_and_come_from_the_environment() {
    let cfg = load(None, &env(&[])).unwrap();
    assert_eq!(cfg.settings.github_url, "https://github.com");
    assert_eq!(cfg.settings.github_api_url, "https://api.github.com");
    let cfg = load(
        None,
        &env(&[
            ("TOLLGATE_GITHUB_URL", "http://127.0.0.1:9000/"),
            ("TOLLGATE_GITHUB_API_URL", " https://ghe.example.com/api/v3 "),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.settings.github_url, "http://127.0.0.1:9000");
    assert_eq!(cfg.settings.github_api_url, "https://ghe.example.com/api/v3");
    let err = load(None, &env(&[("TOLLGATE_GITHUB_URL", "github.com")])).unwrap_err();
    assert_eq!(err.key, "TOLLGATE_GITHUB_URL");
    assert!(err.reason.contains("http://"), "{err}");
}

#[test]
fn redis_comes_from_router_settings_or_the_environment() {
    let url =
        |cfg: &tollgate_config::Config| cfg.settings.redis_url.as_ref().map(|u| u.expose().clone());
    assert_eq!(url(&load(None, &env(&[])).unwrap()), None);
    let yaml = "router_settings:\n  redis_host: os.environ/REDIS_HOST\n  redis_port: os.environ/REDIS_PORT\n  redis_password: os.environ/REDIS_PASSWORD\n";
    let from_file = |pairs: &[(&str, &str)]| from_yaml_str(yaml, None, &env(pairs)).unwrap();
    let cfg = from_file(&[
        ("REDIS_HOST", "cache"),
        ("REDIS_PORT", "6380"),
        ("REDIS_PASSWORD", "p@ss w/rd"),
    ]);
    assert_eq!(url(&cfg).as_deref(), Some("redis://:p%40ss%20w%2Frd@cache:6380"));
    let cfg = from_yaml_str("router_settings:\n  redis_url: redis://r:7000/2\n", None, &env(&[]))
        .unwrap();
    assert_eq!(url(&cfg).as_deref(), Some("redis://r:7000/2"));
    // The environment alone, and over the file.
    let cfg = load(None, &env(&[("REDIS_HOST", "10.0.0.5")])).unwrap();
    assert_eq!(url(&cfg).as_deref(), Some("redis://10.0.0.5:6379"));
    let cfg =
        load(None, &env(&[("REDIS_URL", "redis://elsewhere:6379"), ("REDIS_HOST", "x")])).unwrap();
    assert_eq!(url(&cfg).as_deref(), Some("redis://elsewhere:6379"));
    // Mistakes name the setting.
    let e = load(None, &env(&[("REDIS_URL", "rediss://r:6379")])).unwrap_err();
    assert_eq!(e.key, "REDIS_URL");
    assert!(e.reason.contains("TLS"), "{e}");
    let e = load(None, &env(&[("REDIS_HOST", "r"), ("REDIS_PORT", "http")])).unwrap_err();
    assert_eq!(e.key, "REDIS_PORT");
    let e = error_of("router_settings:\n  redis_url: localhost:6379\n");
    assert!(e.contains("router_settings.redis_url") && e.contains("redis://"), "{e}");
    // The URL (and so the password) is a secret: it never prints.
    let cfg = from_file(&[("REDIS_HOST", "cache"), ("REDIS_PASSWORD", "hunter2")]);
    assert!(!format!("{:?}", cfg.settings).contains("hunter2"));
}

fn error_of(yaml: &str) -> String {
    from_yaml_str(yaml, Some(Path::new("cfg.yaml")), &env(&[])).unwrap_err().to_string()
}

#[test]
fn bad_values_name_file_key_and_reason() {
    let e = error_of(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      timeout: soon\n",
    );
    assert!(e.starts_with("cfg.yaml: `model_list[0].litellm_params.timeout`"), "{e}");
    assert!(e.contains("expected a number"), "{e}");

    let e = error_of(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: azure/gpt-4o\n",
    );
    assert!(e.contains("`model_list[0].litellm_params.model`") && e.contains("azure"), "{e}");

    let e = error_of("model_list:\n  - model_name: a\n    litellm_params: {}\n");
    assert!(
        e.contains("model_list[0].litellm_params") && e.contains("missing field `model`"),
        "{e}"
    );

    let e = error_of(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      api_base: localhost:8080\n",
    );
    assert!(e.contains("api_base") && e.contains("http://"), "{e}");

    let e =
        error_of("model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/*\n");
    assert!(e.contains("needs a pattern"), "{e}");

    let e = error_of("general_settings:\n  max_request_size_mb: -1\n");
    assert!(e.contains("general_settings.max_request_size_mb"), "{e}");

    let e = error_of("model_list: [\n");
    assert!(e.contains("not valid YAML"), "{e}");

    let e = error_of("model_list: 5\n");
    assert!(e.contains("`model_list`"), "{e}");
}

#[test]
fn unknown_keys_are_named() {
    let cfg = from_yaml_str(
        "colour: blue\nmodel_list:\n  - model_name: a\n    litellm_params:\n      model: gpt-4o\n      tempurature: 1\n",
        None,
        &env(&[]),
    )
    .unwrap();
    let texts: Vec<String> = cfg.diagnostics.iter().map(ToString::to_string).collect();
    assert!(texts.contains(&"unknown key `colour` is ignored".to_owned()), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("model_list[0].litellm_params.tempurature")),
        "{texts:?}"
    );
    assert_eq!(cfg.models[0].provider, ProviderKind::OpenAi);
}

#[test]
fn timeouts_and_weights_are_parsed() {
    let cfg = from_yaml_str(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      timeout: \"2.5\"\n      weight: 3\n      extra_headers:\n        X-Team: blue\nrouter_settings:\n  timeout: 30\n",
        None,
        &env(&[]),
    )
    .unwrap();
    let m = &cfg.models[0];
    assert_eq!(m.timeout, Some(Duration::from_millis(2500)));
    assert_eq!(m.weight, 3.0);
    assert_eq!(m.extra_headers[0].0, "X-Team");
    assert_eq!(cfg.settings.request_timeout, Duration::from_secs(30));
}

#[test]
fn prices_access_groups_and_retention_are_read() {
    let cfg = from_yaml_str(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n    model_info:\n      access_groups: [beta]\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\ngeneral_settings:\n  maximum_spend_logs_retention_period: 30d\n",
        None,
        &env(&[]),
    )
    .unwrap();
    assert_eq!(cfg.models[0].access_groups, ["beta"]);
    assert_eq!(cfg.models[0].pricing.input, Some(0.000001));
    assert_eq!(cfg.models[0].pricing.output, Some(0.000002));
    assert_eq!(cfg.settings.spend_log_retention, Some(Duration::from_secs(30 * 86_400)));
    assert!(cfg.diagnostics.is_empty(), "{:?}", cfg.diagnostics);
    let e = error_of(
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n    model_info:\n      input_cost_per_token: -1\n",
    );
    assert!(e.contains("model_list[0].model_info.input_cost_per_token"), "{e}");
    let e = error_of("general_settings:\n  maximum_spend_logs_retention_period: forever\n");
    assert!(e.contains("maximum_spend_logs_retention_period"), "{e}");
    assert_eq!(tollgate_config::parse_period("90m"), Some(Duration::from_secs(5400)));
    assert_eq!(tollgate_config::parse_period("0d"), None);
    assert_eq!(tollgate_config::parse_period("5x"), None);
}

#[test]
fn router_settings_are_read_from_both_sections() {
    let cfg = load(Some(&example("multi-provider.yaml")), &env(&[])).unwrap();
    let patterns: Vec<&str> = cfg.router.fallbacks.iter().map(|r| r.pattern.as_str()).collect();
    assert_eq!(patterns, ["claude-*", "anthropic/*", "anthropic/claude-haiku-*"]);
    assert_eq!(cfg.router.fallbacks[2].chain, ["glm-fast"]);
    let cfg = from_yaml_str(
        "router_settings:\n  routing_strategy: least-busy\n  num_retries: 2\n  allowed_fails: 1\n  cooldown_time: 30\n  retry_policy:\n    RateLimitErrorRetries: 4\n  context_window_fallbacks:\n    - small: [large]\nlitellm_settings:\n  fallbacks: [{a: [b]}]\n  default_fallbacks: [c]\n",
        None,
        &env(&[]),
    )
    .unwrap();
    let r = &cfg.router;
    assert_eq!(r.strategy, tollgate_config::RoutingStrategy::LeastBusy);
    assert_eq!((r.num_retries, r.allowed_fails), (2, 1));
    assert_eq!(r.cooldown_time, Duration::from_secs(30));
    assert_eq!(r.retry_policy.rate_limit, Some(4));
    assert_eq!(r.context_window_fallbacks[0].chain, ["large"]);
    assert_eq!(r.fallbacks[0].source, "litellm_settings.fallbacks");
    assert_eq!(r.default_fallbacks, ["c"]);
    let e = error_of("router_settings:\n  routing_strategy: fastest\n");
    assert!(e.contains("routing_strategy") && e.contains("least-busy"), "{e}");
    let e = error_of("router_settings:\n  retry_policy:\n    OopsRetries: 1\n");
    assert!(e.contains("retry_policy.OopsRetries"), "{e}");
    let e = error_of("router_settings:\n  fallbacks: [{a: b}]\n");
    assert!(e.contains("router_settings.fallbacks"), "{e}");
}

#[test]
fn claude_token_pool_settings_come_from_the_environment() {
    let cfg = from_yaml_str(
        "",
        None,
        &env(&[
            ("CLAUDE_OAUTH_TOKENS", "sk-ant-oat01-a, sk-ant-oat01-b"),
            ("CLAUDE_TOKEN_MODE", "passthrough"),
            ("CLAUDE_TOKEN_COOLDOWN", "90"),
        ]),
    )
    .unwrap();
    let tokens: Vec<&str> =
        cfg.settings.claude_oauth_tokens.iter().map(|t| t.expose().as_str()).collect();
    assert_eq!(tokens, ["sk-ant-oat01-a", "sk-ant-oat01-b"]);
    assert!(cfg.settings.claude_passthrough);
    assert_eq!(cfg.settings.claude_token_cooldown, Duration::from_secs(90));
    assert!(
        format!("{:?}", cfg.settings).contains("*****")
            && !format!("{:?}", cfg.settings).contains("oat01-a")
    );
    let e =
        from_yaml_str("", None, &env(&[("CLAUDE_TOKEN_MODE", "random")])).unwrap_err().to_string();
    assert!(e.contains("CLAUDE_TOKEN_MODE"), "{e}");
}

#[test]
fn client_read_timeouts_come_from_the_file_and_the_environment() {
    let cfg = tollgate_config::from_yaml_str(
        "general_settings:\n  request_header_timeout: 5\n  request_body_timeout: 90\n",
        None,
        &MapEnv::default(),
    )
    .unwrap();
    assert_eq!(cfg.settings.header_read_timeout, Duration::from_secs(5));
    assert_eq!(cfg.settings.body_read_timeout, Duration::from_secs(90));
    let cfg = tollgate_config::from_yaml_str(
        "",
        None,
        &env(&[("TOLLGATE_HEADER_TIMEOUT", "2"), ("TOLLGATE_BODY_TIMEOUT", "0.5")]),
    )
    .unwrap();
    assert_eq!(cfg.settings.header_read_timeout, Duration::from_secs(2));
    assert_eq!(cfg.settings.body_read_timeout, Duration::from_millis(500));
    assert!(
        tollgate_config::from_yaml_str("", None, &env(&[("TOLLGATE_BODY_TIMEOUT", "0")])).is_err()
    );
}

#[test]
fn seconds_too_large_for_a_duration_are_an_error_not_a_panic() {
    for yaml in [
        "router_settings:\n  timeout: 1e300\n",
        "router_settings:\n  cooldown_time: 1e300\n",
        "general_settings:\n  request_body_timeout: 1e300\n",
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: openai/x\n      timeout: 1e300\n",
    ] {
        let e = tollgate_config::from_yaml_str(yaml, None, &MapEnv::default());
        assert!(e.is_err(), "{yaml}");
    }
}

#[test]
fn mcp_servers_are_checked_with_their_keys_named() {
    let yaml = "mcp_servers:\n  memory:\n    command: npx\n    args: [-y, '@modelcontextprotocol/server-memory']\n    colour: blue\n  wiki:\n    url: https://example.com/mcp\n    auth_type: bearer_token\n    auth_value: os.environ/WIKI_TOKEN\ndefault_mcp_servers: [memory]\n";
    let env = tollgate_config::MapEnv::from_pairs([("WIKI_TOKEN", "t")]);
    let config = tollgate_config::from_yaml_str(yaml, None, &env).unwrap();
    let names: Vec<&str> = config.mcp.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["memory", "wiki"]);
    assert_eq!(config.mcp.default_servers, ["memory"]);
    let said: Vec<String> = config.diagnostics.iter().map(ToString::to_string).collect();
    assert!(said.iter().any(|d| d.contains("mcp_servers.memory.colour")), "{said:?}");
    assert!(!said.iter().any(|d| d.contains("not supported")), "{said:?}");
    let bad = tollgate_config::from_yaml_str(
        "mcp_servers:\n  a:\n    url: http://h/mcp\ndefault_mcp_servers: [b]\n",
        None,
        &env,
    )
    .unwrap_err();
    assert_eq!(bad.key, "default_mcp_servers[0]");
    let bad =
        tollgate_config::from_yaml_str("mcp_servers:\n  a:\n    transport: stdio\n", None, &env)
            .unwrap_err();
    assert_eq!(bad.key, "mcp_servers.a.command");
}

#[test]
fn the_semantic_tool_filter_is_read_where_litellm_reads_it() {
    let env = MapEnv::default();
    let yaml = "model_list:\n  - model_name: embed\n    litellm_params:\n      model: openai/text-embedding-3-small\nlitellm_settings:\n  mcp_semantic_tool_filter:\n    enabled: true\n    embedding_model: embed\n    top_k: 5\n    similarity_threshold: 0.3\n    colour: blue\n";
    let config = from_yaml_str(yaml, None, &env).unwrap();
    let filter = config.mcp.semantic_filter.unwrap();
    assert_eq!(filter.embedding_model, "embed");
    assert_eq!(filter.top_k, 5);
    assert_eq!(filter.similarity_threshold, Some(0.3));
    let said: Vec<String> = config.diagnostics.iter().map(ToString::to_string).collect();
    assert!(
        said.iter().any(|d| d.contains("litellm_settings.mcp_semantic_tool_filter.colour")),
        "{said:?}"
    );
    assert_eq!(said.len(), 1, "only the unknown key: {said:?}");

    // Off: nothing to filter, nothing to warn about.
    let off = from_yaml_str(
        "litellm_settings:\n  mcp_semantic_tool_filter:\n    enabled: false\n",
        None,
        &env,
    )
    .unwrap();
    assert_eq!(off.mcp.semantic_filter, None);
    assert!(off.diagnostics.is_empty(), "{:?}", off.diagnostics);

    // At the top level it is honoured, with a pointer to where LiteLLM reads it.
    let top = from_yaml_str(
        "mcp_semantic_tool_filter:\n  enabled: true\n  embedding_model: embed\n",
        None,
        &env,
    )
    .unwrap();
    assert_eq!(top.mcp.semantic_filter.unwrap().top_k, tollgate_config::DEFAULT_SEMANTIC_TOP_K);
    assert!(top.diagnostics.iter().any(|d| matches!(
        d,
        Diagnostic::Misplaced { key, belongs: "litellm_settings.mcp_semantic_tool_filter" }
            if key == "mcp_semantic_tool_filter"
    )));

    let bad = |yaml: &str| from_yaml_str(yaml, None, &env).unwrap_err();
    let e = bad("litellm_settings:\n  mcp_semantic_tool_filter:\n    enabled: true\n");
    assert_eq!(e.key, "litellm_settings.mcp_semantic_tool_filter.embedding_model");
    let e = bad("mcp_semantic_tool_filter:\n  enabled: true\n  embedding_model: e\n  top_k: 0\n");
    assert_eq!(e.key, "mcp_semantic_tool_filter.top_k");
    let e = bad(
        "litellm_settings:\n  mcp_semantic_tool_filter:\n    enabled: true\n    embedding_model: e\n    top_k: many\n",
    );
    assert_eq!(e.key, "litellm_settings.mcp_semantic_tool_filter.top_k");
    let e = bad(
        "mcp_semantic_tool_filter: {enabled: true, embedding_model: e}\nlitellm_settings:\n  mcp_semantic_tool_filter: {enabled: true, embedding_model: e}\n",
    );
    assert_eq!(e.key, "mcp_semantic_tool_filter");
}

#[test]
fn the_mcp_tool_step_limit_is_read_and_checked() {
    let env = MapEnv::default();
    let default = from_yaml_str("", None, &env).unwrap();
    assert_eq!(default.mcp.max_tool_steps, tollgate_config::DEFAULT_MCP_MAX_TOOL_STEPS);
    let set = from_yaml_str("litellm_settings:\n  mcp_max_tool_steps: 4\n", None, &env).unwrap();
    assert_eq!(set.mcp.max_tool_steps, 4);
    assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
    for bad in ["0", "2.5", "101", "many"] {
        let yaml = format!("litellm_settings:\n  mcp_max_tool_steps: {bad}\n");
        let e = from_yaml_str(&yaml, None, &env).unwrap_err();
        assert_eq!(e.key, "litellm_settings.mcp_max_tool_steps", "{bad}");
    }
}

#[test]
fn an_mcp_server_given_as_json_is_checked_as_a_config_entry_is() {
    use serde_json::json;
    let env = MapEnv::from_pairs([("WIKI_TOKEN", "t")]);
    let entry = json!({"url": "https://example.com/mcp", "auth_type": "api_key",
                       "auth_value": "os.environ/WIKI_TOKEN", "colour": "blue"});
    let (server, warnings) = tollgate_config::mcp_server_from_json("wiki", &entry, &env).unwrap();
    assert_eq!(server.name, "wiki");
    assert_eq!(server.auth.header(), Some(("x-api-key", "t".to_owned())));
    let said: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(said, ["unknown key `colour` is ignored"]);

    // The same mistakes as in config.yaml, named from the entry's root.
    for (entry, key) in [
        (json!({"transport": "stdio"}), "command"),
        (json!({"url": "ftp://h"}), "url"),
        (json!({"url": "http://h", "auth_type": "bearer_token"}), "auth_value"),
        (json!({"command": "x", "static_headers": {"a": "b"}}), "static_headers"),
        (json!({"command": "x", "args": "not a list"}), "args"),
        (json!({}), ""),
    ] {
        let e = tollgate_config::mcp_server_from_json("s", &entry, &env).unwrap_err();
        assert_eq!(e.key, key, "{entry}: {e}");
        let yaml = format!("mcp_servers:\n  s: {entry}\n");
        let from_file = from_yaml_str(&yaml, None, &env).unwrap_err();
        assert_eq!(from_file.reason, e.reason, "{entry}");
    }
    let e = tollgate_config::mcp_server_from_json("a-b", &json!({"command": "x"}), &env);
    assert_eq!(e.unwrap_err().key, "");
    assert!(tollgate_config::mcp_server_from_json("s", &json!(["x"]), &env).is_err());
}
