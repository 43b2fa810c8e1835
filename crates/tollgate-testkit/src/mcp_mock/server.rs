//! What the mock server answers, whatever the transport: `initialize`, `ping`, tools,
//! the one resource and the one prompt.

use serde_json::{Value, json};

use super::{
    call::{Context, Outcome, RpcError},
    tools::Tool,
};

/// Protocol revisions the server speaks, newest first; `initialize` echoes the client's
/// when it is one of these and answers the first otherwise.
pub const PROTOCOL_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

/// The `serverInfo.name` unless configured otherwise.
pub const DEFAULT_NAME: &str = "mock-mcp";

/// The URI of the one resource every mock server lists.
pub const GREETING_URI: &str = "mock://greeting";

/// One mock server's identity and tool set; shared by all its sessions.
#[derive(Debug)]
pub(crate) struct Server {
    name: String,
    tools: Vec<Tool>,
}

impl Server {
    /// A server called `name` offering every tool, or only those named in `only`.
    pub(crate) fn new(name: &str, only: Option<&[String]>) -> Result<Self, String> {
        let tools = match only {
            None => Tool::ALL.to_vec(),
            Some(names) => names
                .iter()
                .map(|name| {
                    Tool::from_name(name).ok_or_else(|| {
                        let known: Vec<_> = Tool::ALL.iter().map(|t| t.name()).collect();
                        format!("unknown mock MCP tool `{name}` (known: {})", known.join(", "))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self { name: name.to_owned(), tools })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Answers one request.
    pub(crate) async fn call(&self, method: &str, params: &Value, context: Context<'_>) -> Outcome {
        match method {
            "initialize" => Outcome::Result(self.initialize(params)),
            "ping" => Outcome::Result(json!({})),
            "tools/list" => Outcome::Result(json!({
                "tools": self.tools.iter().map(|tool| tool.describe()).collect::<Vec<_>>(),
            })),
            "tools/call" => match self.tool(params) {
                Ok((tool, arguments)) => tool.run(arguments, context).await,
                Err(error) => Outcome::Error(error),
            },
            "resources/list" => Outcome::Result(json!({"resources": [{
                "uri": GREETING_URI,
                "name": "greeting",
                "description": "A greeting from this server",
                "mimeType": "text/plain",
            }]})),
            "resources/read" => self.read_resource(params).into(),
            "prompts/list" => Outcome::Result(json!({"prompts": [{
                "name": "greet",
                "description": "Asks the model to greet someone",
                "arguments": [{"name": "name", "description": "Who to greet", "required": true}],
            }]})),
            "prompts/get" => get_prompt(params).into(),
            _ => Outcome::Error(
                RpcError::new(-32601, format!("method not found: {method}"))
                    .with_data(json!({"method": method})),
            ),
        }
    }

    fn initialize(&self, params: &Value) -> Value {
        let requested = params.get("protocolVersion").and_then(Value::as_str);
        let version = PROTOCOL_VERSIONS
            .iter()
            .find(|v| Some(**v) == requested)
            .unwrap_or(&PROTOCOL_VERSIONS[0]);
        json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}, "resources": {}, "prompts": {}},
            "serverInfo": {"name": self.name, "version": env!("CARGO_PKG_VERSION")},
        })
    }

    /// The tool a `tools/call` names, among those this server offers, and its arguments.
    fn tool<'p>(&self, params: &'p Value) -> Result<(Tool, &'p Value), RpcError> {
        let Some(name) = params.get("name").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params("tools/call: `name` must be a string"));
        };
        let tool = Tool::from_name(name)
            .filter(|tool| self.tools.contains(tool))
            .ok_or_else(|| RpcError::invalid_params(format!("unknown tool: {name}")))?;
        static EMPTY: Value = Value::Null;
        match params.get("arguments") {
            None | Some(Value::Null) => Ok((tool, &EMPTY)),
            Some(arguments @ Value::Object(_)) => Ok((tool, arguments)),
            Some(_) => Err(RpcError::invalid_params("tools/call: `arguments` must be an object")),
        }
    }

    fn read_resource(&self, params: &Value) -> Result<Value, RpcError> {
        let uri = params.get("uri").and_then(Value::as_str);
        if uri != Some(GREETING_URI) {
            return Err(RpcError::invalid_params("resource not found")
                .with_data(json!({"uri": params.get("uri")})));
        }
        Ok(json!({"contents": [{
            "uri": GREETING_URI,
            "mimeType": "text/plain",
            "text": format!("hello from {}", self.name),
        }]}))
    }
}

fn get_prompt(params: &Value) -> Result<Value, RpcError> {
    match params.get("name").and_then(Value::as_str) {
        Some("greet") => {}
        Some(other) => return Err(RpcError::invalid_params(format!("unknown prompt: {other}"))),
        None => return Err(RpcError::invalid_params("prompts/get: `name` must be a string")),
    }
    let Some(name) = params.pointer("/arguments/name").and_then(Value::as_str) else {
        return Err(RpcError::invalid_params("prompt greet: argument `name` is required"));
    };
    Ok(json!({
        "description": "Asks the model to greet someone",
        "messages": [{
            "role": "user",
            "content": {"type": "text", "text": format!("Say hello to {name}")},
        }],
    }))
}
