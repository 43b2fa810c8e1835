//! What a request of the mock server carries and how it ends, shared by the server, its
//! sessions and its tools.

use serde_json::Value;
use tokio::sync::{mpsc, watch};

/// Where a request's notifications (progress) go while it runs. A transport that cannot
/// deliver them drops the receiver; sends then fail and are ignored.
pub(crate) type Outbox = mpsc::UnboundedSender<Value>;

/// Who sent a request, as the `whoami` tool reports it.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// An HTTP client, with its request headers (names lowercase, in arrival order).
    Http(Vec<(String, String)>),
    /// The parent process on stdio; `whoami` reads the environment instead.
    Stdio,
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), data: None }
    }

    /// `-32602 Invalid params`: also what MCP answers for unknown tools, prompts and resources.
    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(-32603, message)
    }

    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// How a method ended; [`super::session::Work::run`] frames it as a response.
#[derive(Debug)]
pub(crate) enum Outcome {
    Result(Value),
    Error(RpcError),
    Cancelled,
    Crash,
}

impl From<Result<Value, RpcError>> for Outcome {
    fn from(result: Result<Value, RpcError>) -> Self {
        result.map_or_else(Outcome::Error, Outcome::Result)
    }
}

/// What a running request can reach besides its params.
pub(crate) struct Context<'a> {
    pub caller: &'a Caller,
    pub out: &'a Outbox,
    pub progress_token: Option<Value>,
    /// Turns `true` when `notifications/cancelled` names the request.
    pub cancelled: watch::Receiver<bool>,
}
