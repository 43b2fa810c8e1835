//! The config file as written: LiteLLM's shape, before validation.
//!
//! Keys these structs do not name are collected while deserializing (`serde_ignored`) and
//! reported by name, never dropped silently.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use crate::Secret;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawConfig {
    #[serde(default, deserialize_with = "null_default")]
    pub model_list: Vec<RawModelEntry>,
    #[serde(default, deserialize_with = "null_default")]
    pub litellm_settings: RawLitellmSettings,
    #[serde(default, deserialize_with = "null_default")]
    pub router_settings: RawRouterSettings,
    #[serde(default, deserialize_with = "null_default")]
    pub general_settings: RawGeneralSettings,
    /// MCP servers by name, kept in the order written.
    #[serde(default, deserialize_with = "null_default")]
    pub mcp_servers: yaml_serde::Mapping,
    /// The servers a key with no MCP permission of its own may use.
    #[serde(default)]
    pub default_mcp_servers: Option<Vec<String>>,
    /// Not where LiteLLM reads it (`litellm_settings`), but honoured here with a warning.
    #[serde(default)]
    pub mcp_semantic_tool_filter: Option<RawSemanticFilter>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawModelEntry {
    pub model_name: String,
    pub litellm_params: RawLitellmParams,
    #[serde(default, deserialize_with = "null_default")]
    pub model_info: RawModelInfo,
    /// LiteLLM ignores a chain written here; users write it, so tollgate honours it.
    #[serde(default)]
    pub fallbacks: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RawLitellmParams {
    pub model: String,
    #[serde(default)]
    pub api_base: Option<String>,
    #[serde(default)]
    pub api_key: Option<Secret<String>>,
    #[serde(default)]
    pub extra_headers: Option<BTreeMap<String, Option<String>>>,
    #[serde(default, deserialize_with = "opt_number")]
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub stream_timeout: Option<f64>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub drop_params: Option<bool>,
    #[serde(default, deserialize_with = "opt_number")]
    pub weight: Option<f64>,
    #[serde(default)]
    pub fallbacks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub strip_thinking: Option<bool>,
    #[serde(default, deserialize_with = "opt_number")]
    pub rpm: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub tpm: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawModelInfo {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub access_groups: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_number")]
    pub input_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub output_cost_per_token: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub cache_read_input_token_cost: Option<f64>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    pub max_tokens: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub max_input_tokens: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub max_output_tokens: Option<f64>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawLitellmSettings {
    #[serde(default, deserialize_with = "opt_bool")]
    pub drop_params: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub json_logs: Option<bool>,
    #[serde(default, deserialize_with = "opt_number")]
    pub request_timeout: Option<f64>,
    /// Not where LiteLLM reads it, but users write it here; honoured with a warning.
    #[serde(default)]
    pub master_key: Option<Secret<String>>,
    #[serde(default, deserialize_with = "fallback_rules")]
    pub fallbacks: Option<Rules>,
    #[serde(default, deserialize_with = "fallback_rules")]
    pub context_window_fallbacks: Option<Rules>,
    #[serde(default)]
    pub default_fallbacks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "opt_number")]
    pub num_retries: Option<f64>,
    #[serde(default)]
    pub mcp_semantic_tool_filter: Option<RawSemanticFilter>,
    #[serde(default, deserialize_with = "opt_number")]
    pub mcp_max_tool_steps: Option<f64>,
}

/// `mcp_semantic_tool_filter` as written.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawSemanticFilter {
    #[serde(default, deserialize_with = "opt_bool")]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub embedding_model: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    pub top_k: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub similarity_threshold: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawRouterSettings {
    #[serde(default, deserialize_with = "opt_number")]
    pub timeout: Option<f64>,
    #[serde(default, deserialize_with = "fallback_rules")]
    pub fallbacks: Option<Rules>,
    #[serde(default, deserialize_with = "fallback_rules")]
    pub context_window_fallbacks: Option<Rules>,
    #[serde(default)]
    pub default_fallbacks: Option<Vec<String>>,
    #[serde(default)]
    pub routing_strategy: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    pub num_retries: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub retry_after: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub allowed_fails: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub cooldown_time: Option<f64>,
    #[serde(default)]
    pub retry_policy: Option<BTreeMap<String, u32>>,
    #[serde(default, deserialize_with = "opt_number")]
    pub max_fallbacks: Option<f64>,
    #[serde(default)]
    pub premium_budget_exceeded: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    pub copilot_premium_reserve: Option<f64>,
    #[serde(default)]
    pub redis_url: Option<Secret<String>>,
    #[serde(default)]
    pub redis_host: Option<String>,
    #[serde(default, deserialize_with = "opt_number")]
    pub redis_port: Option<f64>,
    #[serde(default)]
    pub redis_password: Option<Secret<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawGeneralSettings {
    #[serde(default)]
    pub master_key: Option<Secret<String>>,
    #[serde(default, deserialize_with = "opt_number")]
    pub max_request_size_mb: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub request_header_timeout: Option<f64>,
    #[serde(default, deserialize_with = "opt_number")]
    pub request_body_timeout: Option<f64>,
    #[serde(default)]
    pub database_url: Option<Secret<String>>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub store_prompts_in_spend_logs: Option<bool>,
    #[serde(default)]
    pub maximum_spend_logs_retention_period: Option<String>,
    /// Accepted for compatibility: tollgate stores models whenever it has a store.
    #[serde(default, deserialize_with = "opt_bool")]
    #[allow(dead_code)]
    pub store_model_in_db: Option<bool>,
    /// Accepted for compatibility: tollgate always serves cached keys through an outage.
    #[serde(default, deserialize_with = "opt_bool")]
    #[allow(dead_code)]
    pub allow_requests_on_db_unavailable: Option<bool>,
}

/// A missing section and a section written as `key:` with nothing under it mean the same.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Fallback rules in file order: (model or pattern, chain).
pub(crate) type Rules = Vec<(String, Vec<String>)>;

/// Fallback rules as LiteLLM writes them, `[{"pattern": ["a", "b"]}, ...]`, or as one
/// mapping; kept in file order because order breaks ties between equally specific patterns.
fn fallback_rules<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Rules>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        List(Vec<yaml_serde::Mapping>),
        One(yaml_serde::Mapping),
    }
    let maps = match Option::<Written>::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a list of {model: [fallbacks]} mappings"))?
    {
        None => return Ok(None),
        Some(Written::List(maps)) => maps,
        Some(Written::One(map)) => vec![map],
    };
    let mut rules = Vec::new();
    for map in maps {
        for (k, v) in map {
            let key = k
                .as_str()
                .ok_or_else(|| {
                    serde::de::Error::custom("a fallback rule's model must be a string")
                })?
                .to_owned();
            let chain: Vec<String> = yaml_serde::from_value(v).map_err(|_| {
                serde::de::Error::custom(format!(
                    "the fallbacks of `{key}` must be a list of model names"
                ))
            })?;
            rules.push((key, chain));
        }
    }
    Ok(Some(rules))
}

/// Numbers may be written as numbers or, after `os.environ/` substitution, as strings.
fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr {
        Num(f64),
        Str(String),
    }
    match Option::<NumOrStr>::deserialize(d) {
        Ok(None) => Ok(None),
        Ok(Some(NumOrStr::Num(n))) => Ok(Some(n)),
        Ok(Some(NumOrStr::Str(s))) => s
            .trim()
            .parse::<f64>()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected a number, found {s:?}"))),
        Err(_) => Err(serde::de::Error::custom("expected a number")),
    }
}

/// Booleans may be written as booleans or as the strings "true"/"false".
fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrStr {
        Bool(bool),
        Str(String),
    }
    match Option::<BoolOrStr>::deserialize(d) {
        Ok(None) => Ok(None),
        Ok(Some(BoolOrStr::Bool(b))) => Ok(Some(b)),
        Ok(Some(BoolOrStr::Str(s))) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom(format!("expected true or false, found {s:?}"))),
        },
        Err(_) => Err(serde::de::Error::custom("expected true or false")),
    }
}
