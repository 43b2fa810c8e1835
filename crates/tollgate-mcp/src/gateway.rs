//! The servers behind one endpoint: what a caller may see of them, their tools under one
//! list (named `server-tool`), and each call sent to the server that offers it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use tollgate_config::McpServer;

use crate::rpc::{INVALID_PARAMS, METHOD_NOT_FOUND, RpcError};
use crate::upstream::{PROTOCOL_VERSIONS, Progress, Upstream};

/// Between a server's name and its tool's in the aggregated list.
pub const SEPARATOR: char = '-';

/// Which servers, and which of their tools, a caller may use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grant {
    /// Server names.
    pub servers: Vec<String>,
    /// Per server, the only tools allowed; a server not named here allows all its tools.
    pub tools: BTreeMap<String, Vec<String>>,
}

impl Grant {
    /// Whether the grant lets the caller use `tool` of `server`.
    pub fn allows(&self, server: &str, tool: &str) -> bool {
        self.servers.iter().any(|s| s == server)
            && self.tools.get(server).is_none_or(|tools| tools.iter().any(|t| t == tool))
    }
}

/// What a request is addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `/mcp`: every server the caller may use, tools prefixed with their server's name.
    All,
    /// `/{server}/mcp`: one server, its tools under their own names.
    One(String),
}

/// Why a view cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// No server has this name.
    #[error("there is no MCP server named `{0}`")]
    Unknown(String),
    /// The caller may not use it.
    #[error("this key may not use MCP server `{0}`")]
    NotAllowed(String),
}

/// What one caller sees: the servers, and the tools of each it may use.
#[derive(Debug, Clone)]
pub struct View {
    servers: Vec<Arc<Upstream>>,
    grant: Grant,
    prefixed: bool,
}

impl View {
    /// The servers in it.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|s| s.name())
    }

    /// The server and tool a client's tool name stands for, if the caller may call it.
    pub fn resolve_tool(&self, name: &str) -> Option<(&Arc<Upstream>, String)> {
        let (server, tool) = if self.prefixed {
            let (server, tool) = name.split_once(SEPARATOR)?;
            (self.servers.iter().find(|s| s.name() == server)?, tool)
        } else {
            (self.servers.first()?, name)
        };
        (server.config().offers(tool) && self.grant.allows(server.name(), tool))
            .then(|| (server, tool.to_owned()))
    }

    fn client_name(&self, server: &str, name: &str) -> String {
        if self.prefixed { format!("{server}{SEPARATOR}{name}") } else { name.to_owned() }
    }

    fn resolve_prompt(&self, name: &str) -> Option<(&Arc<Upstream>, String)> {
        if self.prefixed {
            let (server, prompt) = name.split_once(SEPARATOR)?;
            Some((self.servers.iter().find(|s| s.name() == server)?, prompt.to_owned()))
        } else {
            Some((self.servers.first()?, name.to_owned()))
        }
    }
}

/// Every configured server. The set can be replaced while requests run
/// ([`Gateway::set_servers`]); a view keeps the servers it was made with.
#[derive(Debug)]
pub struct Gateway {
    servers: ArcSwap<Vec<Arc<Upstream>>>,
    client: reqwest::Client,
    /// Which server listed a resource, so that reading it goes there.
    resources: Mutex<HashMap<String, String>>,
    /// Serialises replacements of the set.
    replacing: Mutex<()>,
}

/// How long a server taken out of the set stays open for the requests still using it.
const DRAIN: Duration = Duration::from_secs(60);

impl Gateway {
    /// The servers of `config`, none connected yet.
    pub fn new(config: &[McpServer], client: &reqwest::Client) -> Self {
        Self {
            servers: ArcSwap::from_pointee(
                config.iter().map(|c| Arc::new(Upstream::new(c.clone(), client.clone()))).collect(),
            ),
            client: client.clone(),
            resources: Mutex::new(HashMap::new()),
            replacing: Mutex::new(()),
        }
    }

    /// The servers, in config order, as of now.
    pub fn servers(&self) -> Arc<Vec<Arc<Upstream>>> {
        self.servers.load_full()
    }

    /// The server named `name`.
    pub fn server(&self, name: &str) -> Option<Arc<Upstream>> {
        self.servers.load().iter().find(|s| s.name() == name).cloned()
    }

    /// Replaces the set of servers with `config`'s, in its order. A server whose config is
    /// unchanged keeps its connection (a stdio child keeps running); one removed or changed is
    /// shut down in the background once the requests still using it are done (or after a
    /// minute). Returns the names of the servers started afresh.
    pub fn set_servers(&self, config: &[McpServer]) -> Vec<String> {
        let _one_at_a_time = lock(&self.replacing);
        let old = self.servers.load_full();
        let mut fresh = Vec::new();
        let next: Vec<Arc<Upstream>> = config
            .iter()
            .map(|c| match old.iter().find(|s| s.config() == c) {
                Some(kept) => kept.clone(),
                None => {
                    fresh.push(c.name.clone());
                    Arc::new(Upstream::new(c.clone(), self.client.clone()))
                }
            })
            .collect();
        let retired: Vec<Arc<Upstream>> =
            old.iter().filter(|s| !next.iter().any(|n| Arc::ptr_eq(n, s))).cloned().collect();
        self.servers.store(Arc::new(next));
        drop(old);
        if !retired.is_empty() {
            let names: Vec<&str> = retired.iter().map(|s| s.name()).collect();
            tracing::info!(mcp_servers = ?names, "MCP servers removed or changed; stopping the old ones");
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(retire(retired));
                }
                // Without a runtime nothing can have connected them.
                Err(_) => drop(retired),
            }
        }
        fresh
    }

    /// What a caller with `grant` sees at `scope`, narrowed to `only` (the `x-mcp-servers`
    /// header) when given: narrowing never grants.
    pub fn view(
        &self,
        grant: &Grant,
        scope: &Scope,
        only: Option<&[String]>,
    ) -> Result<View, ViewError> {
        let all = self.servers.load();
        let check = |name: &str| -> Result<Arc<Upstream>, ViewError> {
            let server = all
                .iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| ViewError::Unknown(name.to_owned()))?;
            if !grant.servers.iter().any(|s| s == name) {
                return Err(ViewError::NotAllowed(name.to_owned()));
            }
            Ok(server.clone())
        };
        let servers = match (scope, only) {
            (Scope::One(name), _) => vec![check(name)?],
            (Scope::All, Some(only)) => only.iter().map(|n| check(n)).collect::<Result<_, _>>()?,
            (Scope::All, None) => all
                .iter()
                .filter(|s| grant.servers.iter().any(|g| g == s.name()))
                .cloned()
                .collect(),
        };
        if let (Scope::One(name), Some(only)) = (scope, only)
            && !only.iter().any(|n| n == name)
        {
            return Err(ViewError::NotAllowed(name.clone()));
        }
        Ok(View { servers, grant: grant.clone(), prefixed: matches!(scope, Scope::All) })
    }

    /// Answers one request of a client.
    pub async fn handle(
        &self,
        view: &View,
        method: &str,
        params: Value,
        progress: Option<Progress>,
    ) -> Result<Value, RpcError> {
        match method {
            "initialize" => Ok(initialize(view, &params)),
            "ping" | "logging/setLevel" => Ok(json!({})),
            "tools/list" => self.list_tools(view).await,
            "tools/call" => self.call_tool(view, params, progress).await,
            "resources/list" => self.list_resources(view, "resources/list", "resources").await,
            "resources/templates/list" => {
                self.list_resources(view, "resources/templates/list", "resourceTemplates").await
            }
            "resources/read" => self.read_resource(view, params, progress).await,
            "prompts/list" => self.list_prompts(view).await,
            "prompts/get" => self.get_prompt(view, params, progress).await,
            other => Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!("`{other}` is not a method the gateway offers"),
            )),
        }
    }

    /// Stops every server's connection.
    pub async fn shutdown(&self) {
        let servers = self.servers.load_full();
        join_all(servers.iter().map(|s| s.shutdown())).await;
    }

    async fn list_tools(&self, view: &View) -> Result<Value, RpcError> {
        let lists = join_all(view.servers.iter().map(|s| s.tools())).await;
        let mut tools = Vec::new();
        let mut failures = Vec::new();
        for (server, list) in view.servers.iter().zip(lists) {
            match list {
                Ok(list) => {
                    for tool in list.iter() {
                        let Some(name) = tool.get("name").and_then(Value::as_str) else { continue };
                        if !server.config().offers(name) || !view.grant.allows(server.name(), name)
                        {
                            continue;
                        }
                        let mut tool = tool.clone();
                        tool["name"] = Value::String(view.client_name(server.name(), name));
                        tools.push(tool);
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        mcp_server = server.name(),
                        "cannot list its tools: {}",
                        e.message
                    );
                    failures.push(e);
                }
            }
        }
        // One server's failure leaves the others' tools listed; only when all fail is it an error.
        if tools.is_empty() && !failures.is_empty() && failures.len() == view.servers.len() {
            return Err(failures.swap_remove(0));
        }
        Ok(json!({"tools": tools}))
    }

    async fn call_tool(
        &self,
        view: &View,
        mut params: Value,
        progress: Option<Progress>,
    ) -> Result<Value, RpcError> {
        let name = params.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let (server, tool) = view
            .resolve_tool(&name)
            .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("Unknown tool: {name}")))?;
        params["name"] = Value::String(tool);
        server.request("tools/call", params, progress).await
    }

    async fn list_resources(
        &self,
        view: &View,
        method: &str,
        field: &str,
    ) -> Result<Value, RpcError> {
        let lists = join_all(view.servers.iter().map(|s| async move {
            if !s.offers("resources").await? {
                return Ok(Vec::new());
            }
            s.list(method, field).await
        }))
        .await;
        let mut items = Vec::new();
        for (server, list) in view.servers.iter().zip(lists) {
            match list {
                Ok(list) => {
                    let mut owners = lock(&self.resources);
                    for item in list {
                        if let Some(uri) = item.get("uri").and_then(Value::as_str) {
                            owners.insert(uri.to_owned(), server.name().to_owned());
                        }
                        items.push(item);
                    }
                }
                Err(e) => tracing::warn!(
                    mcp_server = server.name(),
                    "cannot list resources: {}",
                    e.message
                ),
            }
        }
        let mut answer = Map::new();
        answer.insert(field.to_owned(), Value::Array(items));
        Ok(Value::Object(answer))
    }

    async fn read_resource(
        &self,
        view: &View,
        params: Value,
        progress: Option<Progress>,
    ) -> Result<Value, RpcError> {
        let uri = params.get("uri").and_then(Value::as_str).unwrap_or_default().to_owned();
        let owner = lock(&self.resources).get(&uri).cloned();
        let candidates: Vec<&Arc<Upstream>> = match owner {
            Some(owner) => view.servers.iter().filter(|s| s.name() == owner).collect(),
            // A URI not listed (a template's, say): each server that has resources is asked.
            None => view.servers.iter().collect(),
        };
        let mut last = None;
        for server in candidates {
            if !server.offers("resources").await.unwrap_or(false) {
                continue;
            }
            match server.request("resources/read", params.clone(), progress.clone()).await {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| RpcError::new(-32002, format!("Resource not found: {uri}"))))
    }

    async fn list_prompts(&self, view: &View) -> Result<Value, RpcError> {
        let lists = join_all(view.servers.iter().map(|s| async move {
            if !s.offers("prompts").await? {
                return Ok(Vec::new());
            }
            s.list("prompts/list", "prompts").await
        }))
        .await;
        let mut prompts = Vec::new();
        for (server, list) in view.servers.iter().zip(lists) {
            match list {
                Ok(list) => {
                    for mut prompt in list {
                        let Some(name) = prompt.get("name").and_then(Value::as_str) else {
                            continue;
                        };
                        prompt["name"] = Value::String(view.client_name(server.name(), name));
                        prompts.push(prompt);
                    }
                }
                Err(e) => {
                    tracing::warn!(mcp_server = server.name(), "cannot list prompts: {}", e.message)
                }
            }
        }
        Ok(json!({"prompts": prompts}))
    }

    async fn get_prompt(
        &self,
        view: &View,
        mut params: Value,
        progress: Option<Progress>,
    ) -> Result<Value, RpcError> {
        let name = params.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let (server, prompt) = view
            .resolve_prompt(&name)
            .ok_or_else(|| RpcError::new(INVALID_PARAMS, format!("Unknown prompt: {name}")))?;
        params["name"] = Value::String(prompt);
        server.request("prompts/get", params, progress).await
    }
}

/// The gateway's own `initialize` answer: the client's protocol version when tollgate speaks
/// it, else tollgate's newest; and what the servers behind it are for.
fn initialize(view: &View, params: &Value) -> Value {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked.filter(|v| PROTOCOL_VERSIONS.contains(v)).unwrap_or("2025-06-18");
    let mut lines = vec!["Tools of these MCP servers, through tollgate:".to_owned()];
    for s in &view.servers {
        let about = s.config().description.as_deref().unwrap_or("(no description)");
        if view.prefixed {
            lines.push(format!(
                "- {} (tools named `{}{SEPARATOR}<tool>`): {about}",
                s.name(),
                s.name()
            ));
        } else {
            lines.push(format!("- {}: {about}", s.name()));
        }
    }
    json!({
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": false}, "resources": {}, "prompts": {}, "logging": {}},
        "serverInfo": {"name": "tollgate", "version": env!("CARGO_PKG_VERSION")},
        "instructions": lines.join("\n"),
    })
}

/// Shuts servers taken out of the set down once nothing else holds them (the views of
/// requests still running do), or after [`DRAIN`].
async fn retire(servers: Vec<Arc<Upstream>>) {
    let until = tokio::time::Instant::now() + DRAIN;
    join_all(servers.into_iter().map(|s| async move {
        while Arc::strong_count(&s) > 1 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.shutdown().await;
    }))
    .await;
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
