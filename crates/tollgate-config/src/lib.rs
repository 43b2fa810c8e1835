//! tollgate's configuration: a LiteLLM-compatible `config.yaml` plus environment variables,
//! validated once at start-up.
//!
//! Loading never silently drops what a user wrote: unknown keys and features this version does
//! not have become [`Diagnostic`]s that name the key, and invalid values stop start-up with a
//! [`ConfigError`] naming the file, the key and the reason.

mod diagnostics;
mod env;
mod load;
mod mcp;
mod model;
mod raw;
mod routing;
mod secret;
mod settings;

use std::fmt;
use std::path::PathBuf;

pub use diagnostics::{COMPUTED_MODEL_INFO, Diagnostic};
pub use env::{ENV_REF_PREFIX, EnvSource, MapEnv, ProcessEnv};
pub use load::{
    discover, from_yaml_str, load, mcp_server_from_json, model_entry_from_json, parse_period,
};
pub use mcp::{
    DEFAULT_MCP_TIMEOUT, DEFAULT_SEMANTIC_TOP_K, McpAuth, McpServer, McpTransport, SemanticFilter,
    valid_server_name,
};
pub use model::{Described, ModelEntry, PriceOverride, ProviderKind};
pub use routing::{
    FallbackRule, PremiumBudgetExceeded, RetryPolicy, RouterSettings, RoutingStrategy,
};
pub use secret::Secret;
pub use settings::{
    DEFAULT_GITHUB_API_URL, DEFAULT_GITHUB_URL, DEFAULT_MAX_REQUEST_BYTES, DEFAULT_REQUEST_TIMEOUT,
    LogFormat, Settings,
};

/// A loaded and validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` when running on defaults.
    pub source: Option<PathBuf>,
    /// Deployments in file order.
    pub models: Vec<ModelEntry>,
    /// Process-wide settings.
    pub settings: Settings,
    /// Fallbacks, retries, cooldowns and balancing.
    pub router: RouterSettings,
    /// The MCP gateway's servers.
    pub mcp: McpSettings,
    /// Warnings to show at start-up and in `tollgate config check`.
    pub diagnostics: Vec<Diagnostic>,
}

/// The MCP gateway's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct McpSettings {
    /// Upstream servers in file order.
    pub servers: Vec<McpServer>,
    /// Servers a key, user or team without an MCP permission of its own may use
    /// (`default_mcp_servers`); none unless set.
    pub default_servers: Vec<String>,
    /// Semantic tool filtering, when `mcp_semantic_tool_filter` enables it.
    pub semantic_filter: Option<SemanticFilter>,
    /// How many model requests one chat or messages request with MCP tools may make before
    /// tollgate stops running the tools it calls (`litellm_settings.mcp_max_tool_steps`).
    pub max_tool_steps: u32,
}

/// [`McpSettings::max_tool_steps`] unless configured.
pub const DEFAULT_MCP_MAX_TOOL_STEPS: u32 = 10;

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            default_servers: Vec::new(),
            semantic_filter: None,
            max_tool_steps: DEFAULT_MCP_MAX_TOOL_STEPS,
        }
    }
}

impl Config {
    /// Whether no config file was given, so every model name goes to GitHub Copilot.
    pub fn is_default(&self) -> bool {
        self.source.is_none() && self.models.is_empty()
    }
}

/// A config that cannot be used: which file, which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The file, or the variable's origin.
    pub file: String,
    /// The key path, empty for the whole file.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}: `{}`: {}", self.file, self.key, self.reason)
        }
    }
}
