//! The state every handler shares: cheap to clone, built once at start-up.

use std::sync::Arc;

use tollgate_config::{Config, Settings};
use tollgate_providers::Providers;
use tollgate_router::Router;
use tollgate_store::{SecretBox, Store};

use crate::access::Directory;
use crate::auth::Authenticator;
use crate::counters::Counters;
use crate::mcp_servers::McpTable;
use crate::models::ModelTable;
use crate::record::SpendSink;

/// Shared state of the proxy.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("store", &self.0.store.backend()).finish_non_exhaustive()
    }
}

struct Inner {
    settings: Settings,
    models: Arc<ModelTable>,
    providers: Providers,
    auth: Authenticator,
    store: Store,
    secret_box: Arc<SecretBox>,
    sink: SpendSink,
    counters: Counters,
    quota: Arc<crate::copilot::QuotaBoard>,
    mcp: Arc<McpTable>,
    mcp_calls: Arc<tollgate_mcp::Calls>,
    mcp_default_servers: Vec<String>,
    mcp_filter: Option<tollgate_config::SemanticFilter>,
    mcp_max_tool_steps: u32,
    mcp_ranker: tollgate_mcp::ToolRanker,
    started_unix: u64,
}

impl AppState {
    /// Builds the state from a validated config, an HTTP client for upstream calls, the
    /// store, the key that seals stored credentials, where finished requests are charged, and
    /// where rate limits are counted.
    pub fn new(
        config: &Config,
        http: reqwest::Client,
        store: Store,
        secret_box: Arc<SecretBox>,
        sink: SpendSink,
        counters: Counters,
    ) -> Self {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mcp = Arc::new(McpTable::new(
            Arc::new(tollgate_mcp::Gateway::new(&config.mcp.servers, &http)),
            sink.directory.mcp_changed(),
            config.settings.data_dir.join(crate::mcp_servers::MCP_SNAPSHOT_FILE_NAME),
        ));
        Self(Arc::new(Inner {
            settings: config.settings.clone(),
            models: Arc::new(ModelTable::new(config, sink.directory.models_changed())),
            providers: Providers::new(
                http,
                config.settings.github_api_url.clone(),
                auth_page_url(&config.settings),
            )
            .with_claude_pool(tollgate_providers::claude_pool::ClaudePool::new(
                config.settings.claude_oauth_tokens.clone(),
                config.settings.claude_token_cooldown,
            )),
            auth: Authenticator::from_settings(&config.settings),
            store,
            secret_box,
            sink,
            counters,
            quota: Arc::default(),
            mcp,
            mcp_calls: Arc::default(),
            mcp_default_servers: config.mcp.default_servers.clone(),
            mcp_filter: config.mcp.semantic_filter.clone(),
            mcp_max_tool_steps: config.mcp.max_tool_steps,
            mcp_ranker: tollgate_mcp::ToolRanker::default(),
            started_unix,
        }))
    }

    /// Process settings.
    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// Fallback plans, cooldowns and balancing over every model, as of now: a request holds
    /// the one it started with while changes swap in new ones.
    pub fn router(&self) -> Arc<Router> {
        self.0.models.router()
    }

    /// The model table: config.yaml's models and the stored ones.
    pub fn models(&self) -> &Arc<ModelTable> {
        &self.0.models
    }

    /// Upstream clients.
    pub fn providers(&self) -> &Providers {
        &self.0.providers
    }

    /// Credential checks.
    pub fn auth(&self) -> &Authenticator {
        &self.0.auth
    }

    /// The store (management calls only; never on the request path).
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Seals and opens stored credentials (linked accounts' tokens); shared, for what keeps
    /// one of its own (the console's device flows).
    pub fn secret_box(&self) -> &Arc<SecretBox> {
        &self.0.secret_box
    }

    /// The in-memory key directory.
    pub fn directory(&self) -> &Arc<Directory> {
        &self.0.sink.directory
    }

    /// Where finished requests go.
    pub fn sink(&self) -> &SpendSink {
        &self.0.sink
    }

    /// Where rate limits and cooldowns are counted: here, or shared through Redis.
    pub fn counters(&self) -> &Counters {
        &self.0.counters
    }

    /// Copilot quota per linked account.
    pub fn quota(&self) -> &Arc<crate::copilot::QuotaBoard> {
        &self.0.quota
    }

    /// The MCP servers behind `/mcp`.
    pub fn mcp(&self) -> &Arc<tollgate_mcp::Gateway> {
        self.0.mcp.gateway()
    }

    /// The MCP server table: config.yaml's servers and the stored ones.
    pub fn mcp_servers(&self) -> &Arc<McpTable> {
        &self.0.mcp
    }

    /// Clients' MCP requests being answered, for their cancellations.
    pub fn mcp_calls(&self) -> &Arc<tollgate_mcp::Calls> {
        &self.0.mcp_calls
    }

    /// The MCP servers a key may use when neither it nor its team says
    /// (`default_mcp_servers`).
    pub fn mcp_default_servers(&self) -> &[String] {
        &self.0.mcp_default_servers
    }

    /// Semantic filtering of MCP tool lists, when configured.
    pub fn mcp_filter(&self) -> Option<&tollgate_config::SemanticFilter> {
        self.0.mcp_filter.as_ref()
    }

    /// How many model requests a request with MCP tools may make (`mcp_max_tool_steps`).
    pub fn mcp_max_tool_steps(&self) -> u32 {
        self.0.mcp_max_tool_steps
    }

    /// Ranks MCP tools for the filter; caches their embeddings.
    pub fn mcp_ranker(&self) -> &tollgate_mcp::ToolRanker {
        &self.0.mcp_ranker
    }

    /// When the process started, as a Unix timestamp (the `created` of listed models).
    pub fn started_unix(&self) -> u64 {
        self.0.started_unix
    }
}

/// Where people link a Copilot account: the auth helper's `/github` page.
pub fn auth_page_url(settings: &Settings) -> String {
    let host = match settings.listen_host() {
        "0.0.0.0" | "::" | "[::]" | "" => "localhost",
        h => h,
    };
    format!("http://{host}:{}/github", settings.auth_port)
}
