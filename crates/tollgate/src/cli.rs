//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// tollgate: an LLM gateway with OpenAI- and Anthropic-compatible APIs.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Path of config.yaml [env: TOLLGATE_CONFIG; default: ./config.yaml when present]
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Listen address [env: TOLLGATE_HOST; default: 0.0.0.0]
    #[arg(long, global = true)]
    pub host: Option<String>,
    /// Proxy port [env: TOLLGATE_PORT; default: 4000]
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// Auth helper port [env: TOLLGATE_AUTH_PORT; default: 4001]
    #[arg(long, global = true)]
    pub auth_port: Option<u16>,
    /// Log format [env: TOLLGATE_LOG_FORMAT; default: human]
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy (port 4000) and the auth helper (port 4001) in one process (the default).
    Serve,
    /// Run only the proxy.
    Proxy,
    /// Run only the auth helper, or import an existing GitHub token.
    AuthHelper {
        #[command(subcommand)]
        action: Option<AuthHelperCommand>,
    },
    /// Work with the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Create or update the database schema (also done at every start).
    Migrate,
    /// Manage virtual keys directly in the database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print (or write) the environment that points Claude Code at this gateway.
    ClaudeCode(Box<ClaudeCodeArgs>),
    /// Print (or write) the Codex CLI configuration that points Codex at this gateway.
    Codex(Box<CodexArgs>),
    /// Ask the running proxy to re-read config.yaml (as SIGHUP does): a valid file is applied
    /// without a restart, an invalid one is refused and the running config stays.
    Reload {
        /// The proxy's URL; default: http://127.0.0.1:<port>.
        #[arg(long)]
        url: Option<String>,
    },
    /// List the models the linked GitHub Copilot account offers.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuthHelperCommand {
    /// Import the GitHub token LiteLLM keeps (GITHUB_COPILOT_TOKEN_DIR /
    /// GITHUB_COPILOT_ACCESS_TOKEN_FILE, default ~/.config/litellm/github_copilot/access-token).
    Import {
        /// Whose account it becomes: `default` (shared) or `key:<sha256 of a virtual key>`.
        #[arg(long, default_value = "default")]
        owner: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ShellKind {
    Bash,
    Zsh,
    Powershell,
}

#[derive(Debug, Args)]
pub struct ClaudeCodeArgs {
    /// The model name Claude Code asks for (a model_name of this gateway).
    #[arg(long)]
    pub model: String,
    /// The key Claude Code sends; default: the master key.
    #[arg(long)]
    pub key: Option<String>,
    /// The gateway's URL as Claude Code reaches it; default: http://localhost:<port>.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Model for Claude Code's Opus slot; default: --model.
    #[arg(long)]
    pub opus_model: Option<String>,
    /// Model for Claude Code's Sonnet slot; default: --model.
    #[arg(long)]
    pub sonnet_model: Option<String>,
    /// Model for Claude Code's Haiku (small, fast) slot; default: --model.
    #[arg(long)]
    pub haiku_model: Option<String>,
    /// Shell syntax to print.
    #[arg(long, value_enum, default_value = "bash")]
    pub shell: ShellKind,
    /// Merge the variables into Claude Code's settings.json instead of printing them
    /// (default path: ~/.claude/settings.json).
    #[arg(long, num_args = 0..=1)]
    pub write: Option<Option<PathBuf>>,
}

#[derive(Debug, Args)]
pub struct CodexArgs {
    /// The model name Codex asks for (a model_name of this gateway).
    #[arg(long)]
    pub model: String,
    /// The key Codex sends, from the TOLLGATE_API_KEY variable; default: the master key.
    #[arg(long)]
    pub key: Option<String>,
    /// The gateway's URL as Codex reaches it, without /v1; default: http://localhost:<port>.
    #[arg(long)]
    pub base_url: Option<String>,
    /// Shell syntax of the line that exports the key.
    #[arg(long, value_enum, default_value = "bash")]
    pub shell: ShellKind,
    /// Merge `model`, `model_provider` and `[model_providers.tollgate]` into Codex's
    /// config.toml instead of printing them (default path: $CODEX_HOME/config.toml, else
    /// ~/.codex/config.toml).
    #[arg(long, num_args = 0..=1)]
    pub write: Option<Option<PathBuf>>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (it is shown only once).
    Create(Box<KeyCreateArgs>),
    /// List keys (never the keys themselves).
    List {
        /// Only this user's keys.
        #[arg(long)]
        user: Option<String>,
        /// Only this team's keys.
        #[arg(long)]
        team: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete keys, given as the key itself or its hash.
    Revoke {
        /// Keys or key hashes.
        #[arg(required = true)]
        keys: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// A name to recognise the key by.
    #[arg(long)]
    pub alias: Option<String>,
    /// Allowed models (names, patterns or access groups), comma-separated; default all.
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// Budget in USD.
    #[arg(long)]
    pub max_budget: Option<f64>,
    /// Budget period: 30s, 30m, 24h, 30d.
    #[arg(long)]
    pub budget_duration: Option<String>,
    /// Requests per minute.
    #[arg(long)]
    pub rpm: Option<i64>,
    /// Tokens per minute.
    #[arg(long)]
    pub tpm: Option<i64>,
    /// Requests in flight at once.
    #[arg(long)]
    pub max_parallel: Option<i64>,
    /// Copilot premium requests per premium period (a request uses its model's multiplier).
    #[arg(long)]
    pub max_premium_requests: Option<f64>,
    /// Premium period like --budget-duration; default: each calendar month (UTC).
    #[arg(long)]
    pub premium_budget_duration: Option<String>,
    /// Owner user id (created if missing).
    #[arg(long)]
    pub user: Option<String>,
    /// Team id (must exist).
    #[arg(long)]
    pub team: Option<String>,
    /// Lifetime, e.g. 30d; default: no expiry.
    #[arg(long)]
    pub duration: Option<String>,
    /// Allow the key to use the management API.
    #[arg(long)]
    pub admin: bool,
    /// MCP servers the key may use, comma-separated (`""` for none); default: the team's,
    /// or the operator's default.
    #[arg(long, value_delimiter = ',')]
    pub mcp_servers: Option<Vec<String>>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the config, print warnings and the resolved model list.
    Check {
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
    },
}
