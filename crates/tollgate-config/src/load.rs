//! Reading, resolving and validating a config file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diagnostics::{Diagnostic, classify_ignored};
use crate::env::{EnvSource, resolve_env_refs};
use crate::model::{ModelEntry, PriceOverride, ProviderKind};
use crate::raw::{RawConfig, RawModelEntry};
use crate::routing::{
    FallbackRule, PremiumBudgetExceeded, RetryPolicy, RouterSettings, RoutingStrategy,
};
use crate::settings::{LogFormat, Settings};
use crate::{Config, ConfigError, McpServer, McpSettings, Secret};

/// The config file to use: `explicit` (from `--config`), else `TOLLGATE_CONFIG`, else
/// `./config.yaml` when it exists, else none (tollgate then runs on its defaults).
pub fn discover(explicit: Option<&Path>, env: &dyn EnvSource) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = env.var("TOLLGATE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from("config.yaml");
    default.is_file().then_some(default)
}

/// Loads the config at `path`, or the defaults when `path` is `None`.
pub fn load(path: Option<&Path>, env: &dyn EnvSource) -> Result<Config, ConfigError> {
    match path {
        None => from_yaml_str("", None, env),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                file: path.display().to_string(),
                key: String::new(),
                reason: format!("cannot read the file: {e}"),
            })?;
            from_yaml_str(&text, Some(path), env)
        }
    }
}

/// Loads a config from YAML text. `source` names the file in messages.
pub fn from_yaml_str(
    text: &str,
    source: Option<&Path>,
    env: &dyn EnvSource,
) -> Result<Config, ConfigError> {
    let file = source.map_or_else(|| "<defaults>".to_owned(), |p| p.display().to_string());
    let err =
        |key: &str, reason: String| ConfigError { file: file.clone(), key: key.to_owned(), reason };

    let mut tree: yaml_serde::Value = if text.trim().is_empty() {
        yaml_serde::Value::Null
    } else {
        yaml_serde::from_str(text).map_err(|e| err("", format!("not valid YAML: {e}")))?
    };
    if tree.is_null() {
        tree = yaml_serde::Value::Mapping(Default::default());
    }
    if !tree.is_mapping() {
        return Err(err("", "the top level must be a mapping of sections".to_owned()));
    }

    let (raw, mut diagnostics): (RawConfig, _) = read_tree(tree, "", env, &err)?;

    let mut settings = Settings::default();
    apply_sections(&raw, &mut settings, &mut diagnostics, &err)?;
    apply_env(env, &mut settings, &err)?;
    let router = router_settings(&raw, &err)?;

    let mut models = Vec::with_capacity(raw.model_list.len());
    for (i, entry) in raw.model_list.into_iter().enumerate() {
        models.push(validate_entry(&format!("model_list[{i}]."), entry, &settings, &err)?);
    }
    let mut seen_ids = std::collections::HashSet::new();
    for (i, m) in models.iter().enumerate() {
        if let Some(id) = &m.id
            && !seen_ids.insert(id.clone())
        {
            return Err(err(
                &format!("model_list[{i}].model_info.id"),
                format!("id `{id}` is used by more than one model"),
            ));
        }
    }

    let filter = semantic_filter_section(
        raw.litellm_settings.mcp_semantic_tool_filter,
        raw.mcp_semantic_tool_filter,
        &mut diagnostics,
        &err,
    )?;
    let mut mcp =
        mcp_settings(raw.mcp_servers, raw.default_mcp_servers, env, &mut diagnostics, &err)?;
    mcp.semantic_filter = filter;
    if let Some(n) = raw.litellm_settings.mcp_max_tool_steps {
        if !(n.is_finite() && n.fract() == 0.0 && (1.0..=100.0).contains(&n)) {
            return Err(err(
                "litellm_settings.mcp_max_tool_steps",
                format!("must be a whole number from 1 to 100, found {n}"),
            ));
        }
        mcp.max_tool_steps = n as u32;
    }

    Ok(Config { source: source.map(Path::to_path_buf), models, settings, router, mcp, diagnostics })
}

/// `mcp_servers`, each entry read on its own so that its unknown keys are named, and
/// `default_mcp_servers`, which may name only servers defined there.
fn mcp_settings(
    servers: yaml_serde::Mapping,
    defaults: Option<Vec<String>>,
    env: &dyn EnvSource,
    diagnostics: &mut Vec<Diagnostic>,
    err: &ErrFn<'_>,
) -> Result<McpSettings, ConfigError> {
    let mut out = McpSettings::default();
    for (name, entry) in servers {
        let name = match name {
            yaml_serde::Value::String(s) => s,
            other => {
                return Err(err(
                    "mcp_servers",
                    format!("server names must be strings, found {other:?}"),
                ));
            }
        };
        let (server, found) = mcp_entry(&name, entry, env, err)?;
        diagnostics.extend(found);
        out.servers.push(server);
    }
    if let Some(defaults) = defaults {
        for (i, name) in defaults.iter().enumerate() {
            if !out.servers.iter().any(|s| &s.name == name) {
                return Err(err(
                    &format!("default_mcp_servers[{i}]"),
                    format!("`{name}` is not one of the servers under `mcp_servers`"),
                ));
            }
        }
        out.default_servers = defaults;
    }
    Ok(out)
}

/// `mcp_semantic_tool_filter`, read where LiteLLM reads it (`litellm_settings`) or, with a
/// warning, at the top level; set in both places it is an error rather than a guess.
fn semantic_filter_section(
    in_settings: Option<crate::raw::RawSemanticFilter>,
    top_level: Option<crate::raw::RawSemanticFilter>,
    diagnostics: &mut Vec<Diagnostic>,
    err: &ErrFn<'_>,
) -> Result<Option<crate::SemanticFilter>, ConfigError> {
    const KEY: &str = "mcp_semantic_tool_filter";
    const BELONGS: &str = "litellm_settings.mcp_semantic_tool_filter";
    let (raw, at) = match (in_settings, top_level) {
        (Some(_), Some(_)) => {
            return Err(err(KEY, format!("is also set as `{BELONGS}`; keep that one only")));
        }
        (Some(raw), None) => (raw, BELONGS),
        (None, Some(raw)) => {
            diagnostics.push(Diagnostic::Misplaced { key: KEY.to_owned(), belongs: BELONGS });
            (raw, KEY)
        }
        (None, None) => return Ok(None),
    };
    let filter = crate::mcp::semantic_filter(raw)
        .map_err(|(key, reason)| err(&format!("{at}.{key}"), reason))?;
    Ok(filter)
}

/// One `mcp_servers` entry, checked; errors and warnings name keys as
/// `mcp_servers.<name>.<key>`.
fn mcp_entry(
    name: &str,
    entry: yaml_serde::Value,
    env: &dyn EnvSource,
    err: &ErrFn<'_>,
) -> Result<(McpServer, Vec<Diagnostic>), ConfigError> {
    let at = format!("mcp_servers.{name}.");
    let entry =
        if entry.is_null() { yaml_serde::Value::Mapping(Default::default()) } else { entry };
    let (raw, found): (crate::mcp::RawMcpServer, _) = read_tree(entry, &at, env, err)?;
    let server = crate::mcp::validate(name, raw).map_err(|(key, reason)| {
        err(&format!("mcp_servers.{name}{}{key}", if key.is_empty() { "" } else { "." }), reason)
    })?;
    Ok((server, found))
}

/// Checks one MCP server given as JSON (the management API, the admin UI) exactly as an entry
/// of config.yaml's `mcp_servers` named `name` is checked: the same errors, and the same
/// warnings (unknown keys, unset variables), with keys named from the entry's root
/// (`auth_value`, `static_headers.x-team`; an empty key is the entry itself).
pub fn mcp_server_from_json(
    name: &str,
    entry: &serde_json::Value,
    env: &dyn EnvSource,
) -> Result<(McpServer, Vec<Diagnostic>), ConfigError> {
    let at = format!("mcp_servers.{name}.");
    let whole = format!("mcp_servers.{name}");
    let err = |key: &str, reason: String| ConfigError {
        file: "mcp_server".to_owned(),
        key: if key == whole {
            String::new()
        } else {
            key.strip_prefix(&at).unwrap_or(key).to_owned()
        },
        reason,
    };
    if !entry.is_object() {
        return Err(err("", "an MCP server must be an object of settings".to_owned()));
    }
    let tree: yaml_serde::Value = yaml_serde::to_value(entry)
        .map_err(|e| err("", format!("cannot read the MCP server: {e}")))?;
    let (server, found) = mcp_entry(name, tree, env, &err)?;
    Ok((server, found.into_iter().map(|d| d.relocated(&at)).collect()))
}

type ErrFn<'a> = dyn Fn(&str, String) -> ConfigError + 'a;

/// Resolves `os.environ/` references in `tree` and reads it as `T`, with warnings for unset
/// variables and for keys `T` does not take (classified as if found under `at`).
fn read_tree<T: serde::de::DeserializeOwned>(
    mut tree: yaml_serde::Value,
    at: &str,
    env: &dyn EnvSource,
    err: &ErrFn<'_>,
) -> Result<(T, Vec<Diagnostic>), ConfigError> {
    let mut diagnostics = Vec::new();
    let mut missing = Vec::new();
    resolve_env_refs(&mut tree, env, &mut Vec::new(), &mut missing);
    diagnostics.extend(
        missing
            .into_iter()
            .map(|(key, var)| Diagnostic::MissingEnv { key: format!("{at}{key}"), var }),
    );
    let mut ignored = Vec::new();
    let raw: T = {
        let mut on_ignored = |path: serde_ignored::Path<'_>| ignored.push(render_path(&path));
        let de = serde_ignored::Deserializer::new(tree, &mut on_ignored);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            err(&key, e.into_inner().to_string())
        })?
    };
    diagnostics
        .extend(ignored.into_iter().filter_map(|key| classify_ignored(format!("{at}{key}"))));
    Ok((raw, diagnostics))
}

fn apply_sections(
    raw: &RawConfig,
    settings: &mut Settings,
    diagnostics: &mut Vec<Diagnostic>,
    err: &ErrFn<'_>,
) -> Result<(), ConfigError> {
    if let Some(key) = &raw.general_settings.master_key {
        settings.master_key = Some(key.clone());
    } else if let Some(key) = &raw.litellm_settings.master_key {
        diagnostics.push(Diagnostic::Misplaced {
            key: "litellm_settings.master_key".to_owned(),
            belongs: "general_settings.master_key",
        });
        settings.master_key = Some(key.clone());
    }
    if let Some(url) = &raw.general_settings.database_url {
        settings.database_url = Some(url.clone());
    }
    settings.store_prompts = raw.general_settings.store_prompts_in_spend_logs.unwrap_or(false);
    if let Some(period) = &raw.general_settings.maximum_spend_logs_retention_period {
        let key = "general_settings.maximum_spend_logs_retention_period";
        let parsed = parse_period(period).ok_or_else(|| {
            err(key, format!("expected a period such as `30d`, `12h` or `90m`, found {period:?}"))
        })?;
        settings.spend_log_retention = Some(parsed);
    }
    if let Some(mb) = raw.general_settings.max_request_size_mb {
        if !(mb.is_finite() && mb > 0.0) {
            return Err(err(
                "general_settings.max_request_size_mb",
                format!("must be a positive number of megabytes, found {mb}"),
            ));
        }
        settings.max_request_bytes = (mb * 1024.0 * 1024.0) as usize;
    }
    let timeout = raw
        .router_settings
        .timeout
        .map(|t| ("router_settings.timeout", t))
        .or(raw.litellm_settings.request_timeout.map(|t| ("litellm_settings.request_timeout", t)));
    if let Some((key, t)) = timeout {
        settings.request_timeout = seconds(t).ok_or_else(|| err(key, positive_seconds(t)))?;
    }
    for (value, key, slot) in [
        (
            raw.general_settings.request_header_timeout,
            "general_settings.request_header_timeout",
            &mut settings.header_read_timeout,
        ),
        (
            raw.general_settings.request_body_timeout,
            "general_settings.request_body_timeout",
            &mut settings.body_read_timeout,
        ),
    ] {
        if let Some(t) = value {
            *slot = seconds(t).ok_or_else(|| err(key, positive_seconds(t)))?;
        }
    }
    if let Some(drop) = raw.litellm_settings.drop_params {
        settings.drop_params = drop;
    }
    if raw.litellm_settings.json_logs == Some(true) {
        settings.log_format = LogFormat::Json;
    }
    let r = &raw.router_settings;
    let port = match r.redis_port {
        Some(p) if p.fract() == 0.0 && (1.0..=65535.0).contains(&p) => Some(p as u16),
        Some(p) => {
            return Err(err("router_settings.redis_port", format!("expected a port, found {p}")));
        }
        None => None,
    };
    if let Some(url) = redis_url(
        r.redis_url.as_ref().map(|u| u.expose().as_str()),
        r.redis_host.as_deref(),
        port,
        r.redis_password.as_ref().map(|p| p.expose().as_str()),
    )
    .map_err(|e| err("router_settings.redis_url", e))?
    {
        settings.redis_url = Some(url);
    }
    Ok(())
}

/// The Redis URL from a URL, or from a host with an optional port and password, checked:
/// `redis://` only (plain TCP; `rediss://` needs TLS, which this build leaves out).
fn redis_url(
    url: Option<&str>,
    host: Option<&str>,
    port: Option<u16>,
    password: Option<&str>,
) -> Result<Option<Secret<String>>, String> {
    let url = match (url.map(str::trim).filter(|u| !u.is_empty()), host.map(str::trim)) {
        (Some(url), _) => url.to_owned(),
        (None, Some(host)) if !host.is_empty() => {
            if host.contains(['/', '@', ' ']) {
                return Err(format!("expected a host name for Redis, found {host:?}"));
            }
            let auth = password
                .filter(|p| !p.is_empty())
                .map_or_else(String::new, |p| format!(":{}@", percent_encode(p)));
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            format!("redis://{auth}{host}:{}", port.unwrap_or(6379))
        }
        _ => return Ok(None),
    };
    match url.split_once("://") {
        Some(("redis", rest)) if !rest.is_empty() => Ok(Some(Secret::new(url))),
        Some(("rediss", _)) => {
            Err("rediss:// (Redis over TLS) is not supported; use redis:// on a private network"
                .to_owned())
        }
        _ => Err("expected a redis:// URL such as redis://localhost:6379".to_owned()),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn router_settings(raw: &RawConfig, err: &ErrFn<'_>) -> Result<RouterSettings, ConfigError> {
    let r = &raw.router_settings;
    let l = &raw.litellm_settings;
    let mut out = RouterSettings::default();
    fn rules<'a>(
        list: &'a Option<crate::raw::Rules>,
        source: &'static str,
    ) -> impl Iterator<Item = FallbackRule> + 'a {
        list.iter().flatten().map(move |(pattern, chain)| FallbackRule {
            pattern: pattern.clone(),
            chain: chain.clone(),
            source,
        })
    }
    out.fallbacks = rules(&r.fallbacks, "router_settings.fallbacks")
        .chain(rules(&l.fallbacks, "litellm_settings.fallbacks"))
        .collect();
    out.context_window_fallbacks =
        rules(&r.context_window_fallbacks, "router_settings.context_window_fallbacks")
            .chain(rules(&l.context_window_fallbacks, "litellm_settings.context_window_fallbacks"))
            .collect();
    out.default_fallbacks =
        r.default_fallbacks.clone().or_else(|| l.default_fallbacks.clone()).unwrap_or_default();
    if let Some(s) = &r.routing_strategy {
        out.strategy = RoutingStrategy::parse(s).ok_or_else(|| {
            err(
                "router_settings.routing_strategy",
                format!(
                    "unknown strategy {s:?}; expected one of {}",
                    RoutingStrategy::NAMES.join(", ")
                ),
            )
        })?;
    }
    if let Some(s) = &r.premium_budget_exceeded {
        out.premium_budget_exceeded = PremiumBudgetExceeded::parse(s).ok_or_else(|| {
            err(
                "router_settings.premium_budget_exceeded",
                format!(
                    "unknown value {s:?}; expected one of {}",
                    PremiumBudgetExceeded::NAMES.join(", ")
                ),
            )
        })?;
    }
    if let Some(n) = r.copilot_premium_reserve {
        if !(n.is_finite() && n >= 0.0) {
            return Err(err(
                "router_settings.copilot_premium_reserve",
                format!("must be a number of premium requests of at least 0, found {n}"),
            ));
        }
        out.copilot_premium_reserve = n;
    }
    let count = |v: Option<f64>, key: &str| -> Result<Option<u32>, ConfigError> {
        match v {
            None => Ok(None),
            Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 100.0 => {
                Ok(Some(n as u32))
            }
            Some(n) => Err(err(key, format!("must be a whole number from 0 to 100, found {n}"))),
        }
    };
    if let Some(n) = count(r.num_retries, "router_settings.num_retries")?
        .or(count(l.num_retries, "litellm_settings.num_retries")?)
    {
        out.num_retries = n;
    }
    if let Some(n) = count(r.allowed_fails, "router_settings.allowed_fails")? {
        out.allowed_fails = n;
    }
    if let Some(n) = count(r.max_fallbacks, "router_settings.max_fallbacks")? {
        out.max_fallbacks = n;
    }
    for (value, key, slot) in [
        (r.retry_after, "router_settings.retry_after", &mut out.retry_after),
        (r.cooldown_time, "router_settings.cooldown_time", &mut out.cooldown_time),
    ] {
        if let Some(t) = value {
            *slot = (t.is_finite() && t >= 0.0)
                .then(|| Duration::try_from_secs_f64(t).ok())
                .flatten()
                .ok_or_else(|| err(key, format!("must be a number of seconds, found {t}")))?;
        }
    }
    for (k, n) in r.retry_policy.iter().flatten() {
        if !out.retry_policy.set(k, *n) {
            return Err(err(
                &format!("router_settings.retry_policy.{k}"),
                format!("unknown retry kind; expected one of {}", RetryPolicy::KEYS.join(", ")),
            ));
        }
    }
    Ok(out)
}

/// Environment variables override the file.
fn apply_env(env: &dyn EnvSource, s: &mut Settings, err: &ErrFn<'_>) -> Result<(), ConfigError> {
    if let Some(h) = env.var("TOLLGATE_HOST").map(|h| h.trim().to_owned()).filter(|h| !h.is_empty())
    {
        s.host = Some(h);
    }
    for (name, slot) in [("TOLLGATE_PORT", &mut s.port), ("TOLLGATE_AUTH_PORT", &mut s.auth_port)] {
        if let Some(v) = env.var(name) {
            *slot = v
                .trim()
                .parse()
                .map_err(|_| err(name, format!("expected a port number, found {v:?}")))?;
        }
    }
    if let Some(k) = env.var("TOLLGATE_MASTER_KEY").or_else(|| env.var("LITELLM_MASTER_KEY")) {
        s.master_key = Some(Secret::new(k));
    }
    if let Some(tokens) = env.var("CLAUDE_OAUTH_TOKENS") {
        s.claude_oauth_tokens = tokens
            .split([',', '\n', ' '])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| Secret::new(t.to_owned()))
            .collect();
    }
    if let Some(mode) = env.var("CLAUDE_TOKEN_MODE") {
        s.claude_passthrough = match mode.trim().to_ascii_lowercase().as_str() {
            "rotate" => false,
            "passthrough" => true,
            _ => {
                return Err(err(
                    "CLAUDE_TOKEN_MODE",
                    format!("expected `rotate` or `passthrough`, found {mode:?}"),
                ));
            }
        };
    }
    if let Some(secs) = env.var("CLAUDE_TOKEN_COOLDOWN") {
        let t: f64 = secs.trim().parse().map_err(|_| {
            err("CLAUDE_TOKEN_COOLDOWN", format!("expected a number of seconds, found {secs:?}"))
        })?;
        s.claude_token_cooldown =
            seconds(t).ok_or_else(|| err("CLAUDE_TOKEN_COOLDOWN", positive_seconds(t)))?;
    }
    if let Some(k) = env.var("TOLLGATE_SECRET_KEY") {
        s.secret_key = Some(Secret::new(k));
    }
    if let Some(t) = env.var("PROXY_STATIC_TOKEN") {
        s.static_token = Some(Secret::new(t));
    }
    if let Some(u) = env.var("DATABASE_URL") {
        s.database_url = Some(Secret::new(u));
    }
    let redis_port = match env.var("REDIS_PORT").map(|p| p.trim().to_owned()) {
        Some(p) if !p.is_empty() => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| err("REDIS_PORT", format!("expected a port, found {p:?}")))?,
        ),
        _ => None,
    };
    let (url, host, password) =
        (env.var("REDIS_URL"), env.var("REDIS_HOST"), env.var("REDIS_PASSWORD"));
    if let Some(url) = redis_url(url.as_deref(), host.as_deref(), redis_port, password.as_deref())
        .map_err(|e| {
        let name = if url.as_deref().is_some_and(|u| !u.trim().is_empty()) {
            "REDIS_URL"
        } else {
            "REDIS_HOST"
        };
        err(name, e)
    })? {
        s.redis_url = Some(url);
    }
    for (name, slot) in [
        ("TOLLGATE_HEADER_TIMEOUT", &mut s.header_read_timeout),
        ("TOLLGATE_BODY_TIMEOUT", &mut s.body_read_timeout),
    ] {
        if let Some(v) = env.var(name) {
            let t: f64 = v
                .trim()
                .parse()
                .map_err(|_| err(name, format!("expected a number of seconds, found {v:?}")))?;
            *slot = seconds(t).ok_or_else(|| err(name, positive_seconds(t)))?;
        }
    }
    if let Some(u) = env.var("UI_USERNAME").map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) {
        s.ui_username = Some(u);
    }
    if let Some(p) = env.var("UI_PASSWORD") {
        s.ui_password = Some(Secret::new(p));
    }
    if let Some(p) = env.var("SERVER_ROOT_PATH") {
        s.server_root_path = root_path(&p).ok_or_else(|| {
            err(
                "SERVER_ROOT_PATH",
                format!("expected a path such as `/tollgate` (letters, digits, `-`, `_`, `.`, `/`), found {p:?}"),
            )
        })?;
    }
    if let Some(d) = env.var("TOLLGATE_DATA_DIR") {
        s.data_dir = PathBuf::from(d);
    }
    for (name, slot) in [
        ("TOLLGATE_GITHUB_URL", &mut s.github_url),
        ("TOLLGATE_GITHUB_API_URL", &mut s.github_api_url),
    ] {
        if let Some(v) = env.var(name) {
            let url = v.trim().trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(name, format!("must be an http:// or https:// URL, found {v:?}")));
            }
            *slot = url.to_owned();
        }
    }
    if let Some(f) = env.var("TOLLGATE_LOG_FORMAT") {
        s.log_format = match f.to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "human" | "text" | "pretty" => LogFormat::Human,
            _ => {
                return Err(err(
                    "TOLLGATE_LOG_FORMAT",
                    format!("expected `json` or `human`, found {f:?}"),
                ));
            }
        };
    } else if env.var("JSON_LOGS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        s.log_format = LogFormat::Json;
    }
    Ok(())
}

/// A model entry given as JSON by the management API: `{"model_name", "litellm_params",
/// "model_info"}`, checked exactly as a `model_list` entry is. `os.environ/NAME` references are
/// resolved from `env`. Returns the entry and what a config file would have been warned about
/// (unknown keys, unset variables), with keys named from the entry's root
/// (`litellm_params.foo`); the caller decides whether those are errors.
pub fn model_entry_from_json(
    value: &serde_json::Value,
    settings: &Settings,
    env: &dyn EnvSource,
) -> Result<(ModelEntry, Vec<Diagnostic>), ConfigError> {
    const AT: &str = "model_list[0].";
    let err = |key: &str, reason: String| ConfigError {
        file: "model".to_owned(),
        key: key.strip_prefix(AT).unwrap_or(key).to_owned(),
        reason,
    };
    let tree: yaml_serde::Value =
        yaml_serde::to_value(value).map_err(|e| err("", format!("cannot read the model: {e}")))?;
    // Keys are classified as a config entry's would be, then named from the entry's root.
    let (raw, diagnostics): (RawModelEntry, _) = read_tree(tree, AT, env, &err)?;
    let diagnostics = diagnostics.into_iter().map(|d| d.relocated(AT)).collect();
    Ok((validate_entry(AT, raw, settings, &err)?, diagnostics))
}

fn validate_entry(
    prefix: &str,
    entry: RawModelEntry,
    settings: &Settings,
    err: &ErrFn<'_>,
) -> Result<ModelEntry, ConfigError> {
    let at = |key: &str| format!("{prefix}{key}");
    let model_name = entry.model_name.trim().to_owned();
    if model_name.is_empty() {
        return Err(err(&at("model_name"), "must not be empty".to_owned()));
    }
    let p = entry.litellm_params;
    let model = p.model.trim().to_owned();
    if model.is_empty() {
        return Err(err(&at("litellm_params.model"), "must not be empty".to_owned()));
    }
    let (provider, upstream) =
        ProviderKind::split_model(&model).map_err(|r| err(&at("litellm_params.model"), r))?;
    if upstream.contains('*') && !model_name.contains('*') {
        return Err(err(
            &at("litellm_params.model"),
            format!(
                "`{model}` has a `*`, which needs a pattern in model_name (found `{model_name}`)"
            ),
        ));
    }
    let upstream_model = upstream.to_owned();

    let api_base = match p.api_base.map(|b| b.trim().trim_end_matches('/').to_owned()) {
        Some(b) if !(b.starts_with("http://") || b.starts_with("https://")) => {
            return Err(err(
                &at("litellm_params.api_base"),
                format!("must be an http:// or https:// URL, found {b:?}"),
            ));
        }
        other => other,
    };

    let mut extra_headers = Vec::new();
    for (name, value) in p.extra_headers.unwrap_or_default() {
        let key = at(&format!("litellm_params.extra_headers.{name}"));
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(err(&key, "is not a valid HTTP header name".to_owned()));
        }
        // An unset os.environ/ reference was already reported; the header is left out.
        let Some(value) = value else { continue };
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(err(&key, "header values must not contain line breaks".to_owned()));
        }
        extra_headers.push((name, Secret::new(value)));
    }

    let timeout = p
        .timeout
        .map(|t| seconds(t).ok_or_else(|| err(&at("litellm_params.timeout"), positive_seconds(t))))
        .transpose()?;
    let stream_timeout = p
        .stream_timeout
        .map(|t| {
            seconds(t).ok_or_else(|| err(&at("litellm_params.stream_timeout"), positive_seconds(t)))
        })
        .transpose()?;
    let price = |v: Option<f64>, name: &str| match v {
        Some(x) if !(x.is_finite() && x >= 0.0) => Err(err(
            &at(&format!("model_info.{name}")),
            format!("must be a non-negative price per token, found {x}"),
        )),
        other => Ok(other),
    };
    let mut fallbacks = entry.fallbacks.unwrap_or_default();
    for name in p.fallbacks.unwrap_or_default() {
        if !fallbacks.contains(&name) {
            fallbacks.push(name);
        }
    }
    let per_minute = |v: Option<f64>, name: &str| match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 1.0 => Ok(Some(n as u64)),
        Some(n) => Err(err(
            &at(&format!("litellm_params.{name}")),
            format!("must be at least 1, found {n}"),
        )),
    };
    let rpm = per_minute(p.rpm, "rpm")?;
    let tpm = per_minute(p.tpm, "tpm")?;
    let weight = p.weight.unwrap_or(1.0);
    if !(weight.is_finite() && weight > 0.0) {
        return Err(err(&at("litellm_params.weight"), format!("must be positive, found {weight}")));
    }

    let count = |v: Option<f64>, name: &str| match v {
        None => Ok(None),
        Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => Ok(Some(n as u64)),
        Some(n) => Err(err(
            &at(&format!("model_info.{name}")),
            format!("must be a whole number of tokens, found {n}"),
        )),
    };
    let info = &entry.model_info;
    let described = crate::model::Described {
        mode: info.mode.clone(),
        max_tokens: count(info.max_tokens, "max_tokens")?,
        max_input_tokens: count(info.max_input_tokens, "max_input_tokens")?,
        max_output_tokens: count(info.max_output_tokens, "max_output_tokens")?,
        description: info.description.clone(),
    };

    Ok(ModelEntry {
        described,
        model_name,
        model,
        provider,
        upstream_model,
        api_base,
        api_key: p.api_key.filter(|k| !k.expose().is_empty()),
        extra_headers,
        timeout,
        stream_timeout,
        drop_params: p.drop_params.unwrap_or(settings.drop_params),
        weight,
        id: entry.model_info.id,
        access_groups: entry.model_info.access_groups.unwrap_or_default(),
        fallbacks,
        rpm,
        tpm,
        strip_thinking: p.strip_thinking.unwrap_or(false),
        pricing: PriceOverride {
            input: price(entry.model_info.input_cost_per_token, "input_cost_per_token")?,
            output: price(entry.model_info.output_cost_per_token, "output_cost_per_token")?,
            cached_input: price(
                entry.model_info.cache_read_input_token_cost,
                "cache_read_input_token_cost",
            )?,
        },
    })
}

/// `30s`, `30m`, `24h`, `30d`, `2w`: the period syntax budgets and retention share.
pub fn parse_period(s: &str) -> Option<Duration> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].trim().parse().ok().filter(|n| *n > 0)?;
    let secs = match unit {
        's' => n,
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        'w' => n.checked_mul(7 * 86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// `SERVER_ROOT_PATH` normalised: `""` for the root, else `/a/b` without a trailing slash.
fn root_path(p: &str) -> Option<String> {
    let trimmed = p.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Some(String::new());
    }
    let ok = trimmed.split('/').all(|seg| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    });
    ok.then(|| format!("/{trimmed}"))
}

fn seconds(t: f64) -> Option<Duration> {
    // `try_`: a value past what a Duration holds (1e300) is refused, not a panic.
    (t.is_finite() && t > 0.0).then(|| Duration::try_from_secs_f64(t).ok()).flatten()
}

fn positive_seconds(t: f64) -> String {
    format!("must be a positive number of seconds, found {t}")
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `model_list[0].litellm_params.foo` from serde_ignored's path.
fn render_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", render_path(parent)),
        Path::Map { parent, key } => {
            let p = render_path(parent);
            if p.is_empty() { key.clone() } else { format!("{p}.{key}") }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => render_path(parent),
    }
}
