//! The mock server's tools: their listings and what each call does.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::{sync::watch, time::Instant};

use super::call::{Caller, Context, Outcome, RpcError};

/// The environment variable `whoami` reports on stdio.
pub const SECRET_ENV: &str = "MOCK_MCP_SECRET";

/// How often `slow` reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// The longest `slow` call accepted, so a typo cannot hang a test run.
const SLOW_LIMIT_SECONDS: f64 = 300.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Echo,
    Add,
    Fail,
    Slow,
    Crash,
    Whoami,
}

impl Tool {
    pub(crate) const ALL: [Tool; 6] =
        [Tool::Echo, Tool::Add, Tool::Fail, Tool::Slow, Tool::Crash, Tool::Whoami];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Tool::Echo => "echo",
            Tool::Add => "add",
            Tool::Fail => "fail",
            Tool::Slow => "slow",
            Tool::Crash => "crash",
            Tool::Whoami => "whoami",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|tool| tool.name() == name)
    }

    /// The tool's entry in `tools/list`.
    pub(crate) fn describe(self) -> Value {
        let no_arguments = json!({"type": "object", "properties": {}});
        let (description, schema) = match self {
            Tool::Echo => (
                "Returns the text it is given",
                json!({
                    "type": "object",
                    "properties": {"text": {"type": "string", "description": "Text to return"}},
                    "required": ["text"],
                }),
            ),
            Tool::Add => (
                "Adds two numbers",
                json!({
                    "type": "object",
                    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                    "required": ["a", "b"],
                }),
            ),
            Tool::Fail => ("Always reports a tool error (isError: true)", no_arguments),
            Tool::Slow => (
                "Waits, reporting progress every 100 ms when asked; stops when cancelled",
                json!({
                    "type": "object",
                    "properties": {"seconds": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": SLOW_LIMIT_SECONDS,
                        "description": "How long to wait",
                    }},
                    "required": ["seconds"],
                }),
            ),
            Tool::Crash => (
                "Exits the server process without answering (over HTTP: a JSON-RPC error)",
                no_arguments,
            ),
            Tool::Whoami => (
                "Returns the HTTP request headers the server saw, as JSON (on stdio: the \
                 MOCK_MCP_SECRET environment variable)",
                no_arguments,
            ),
        };
        json!({"name": self.name(), "description": description, "inputSchema": schema})
    }

    /// Runs one call; `arguments` is an object or `null`.
    pub(crate) async fn run(self, arguments: &Value, context: Context<'_>) -> Outcome {
        match self {
            Tool::Echo => match arguments.get("text").and_then(Value::as_str) {
                Some(text) => Outcome::Result(text_result(text, false)),
                None => Outcome::Error(RpcError::invalid_params("echo: `text` must be a string")),
            },
            Tool::Add => add(arguments).into(),
            Tool::Fail => Outcome::Result(text_result("the fail tool always fails", true)),
            Tool::Slow => slow(arguments, context).await,
            Tool::Crash => Outcome::Crash,
            Tool::Whoami => Outcome::Result(whoami(context.caller)),
        }
    }
}

fn text_result(text: &str, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

fn add(arguments: &Value) -> Result<Value, RpcError> {
    let operand = |key: &str| {
        arguments
            .get(key)
            .filter(|v| v.is_number())
            .ok_or_else(|| RpcError::invalid_params(format!("add: `{key}` must be a number")))
    };
    let (a, b) = (operand("a")?, operand("b")?);
    // Whole numbers stay exact; anything else is added as floating point.
    let sum = match (a.as_i64(), b.as_i64()) {
        (Some(a), Some(b)) if a.checked_add(b).is_some() => (a + b).to_string(),
        _ => (a.as_f64().unwrap_or(f64::NAN) + b.as_f64().unwrap_or(f64::NAN)).to_string(),
    };
    Ok(text_result(&sum, false))
}

/// Waits `seconds`, in 100 ms steps that each send `notifications/progress` when the call
/// carried a progress token; a cancellation ends it with no answer.
async fn slow(arguments: &Value, context: Context<'_>) -> Outcome {
    let seconds = match arguments.get("seconds").and_then(Value::as_f64) {
        Some(s) if (0.0..=SLOW_LIMIT_SECONDS).contains(&s) => s,
        _ => {
            return Outcome::Error(RpcError::invalid_params(format!(
                "slow: `seconds` must be a number from 0 to {SLOW_LIMIT_SECONDS}"
            )));
        }
    };
    let total = Duration::from_secs_f64(seconds);
    let steps = total.as_millis().div_ceil(PROGRESS_EVERY.as_millis()).max(1);
    let start = Instant::now();
    let cancelled = cancellation(context.cancelled);
    tokio::pin!(cancelled);
    for step in 1..=steps {
        let due = start + (PROGRESS_EVERY * u32::try_from(step).unwrap_or(u32::MAX)).min(total);
        tokio::select! {
            // A cancellation wins over a step that is due at the same moment.
            biased;
            () = &mut cancelled => return Outcome::Cancelled,
            () = tokio::time::sleep_until(due) => {}
        }
        if let Some(token) = &context.progress_token {
            let _ = context.out.send(json!({
                "jsonrpc": "2.0",
                "method": "notifications/progress",
                "params": {
                    "progressToken": token,
                    "progress": step,
                    "total": steps,
                    "message": format!("step {step} of {steps}"),
                },
            }));
        }
    }
    Outcome::Result(text_result(&format!("waited {seconds} s"), false))
}

/// Resolves when the request is cancelled; never, if its switch is gone.
async fn cancellation(mut cancelled: watch::Receiver<bool>) {
    if cancelled.wait_for(|cancelled| *cancelled).await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn whoami(caller: &Caller) -> Value {
    match caller {
        Caller::Http(headers) => {
            let mut seen = Map::new();
            for (name, value) in headers {
                match seen.get_mut(name) {
                    // Repeated headers are joined as HTTP allows.
                    Some(Value::String(joined)) => {
                        joined.push_str(", ");
                        joined.push_str(value);
                    }
                    _ => {
                        seen.insert(name.clone(), Value::String(value.clone()));
                    }
                }
            }
            text_result(&Value::Object(seen).to_string(), false)
        }
        Caller::Stdio => match std::env::var(SECRET_ENV) {
            Ok(secret) => text_result(&secret, false),
            Err(_) => text_result(&format!("{SECRET_ENV} is not set"), true),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::Tool;

    #[test]
    fn the_public_tool_list_names_every_tool() {
        assert_eq!(super::super::TOOLS, Tool::ALL.map(Tool::name));
    }
}
