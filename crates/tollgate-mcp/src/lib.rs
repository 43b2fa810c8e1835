//! tollgate's MCP gateway: the team's Model Context Protocol servers behind one endpoint.
//!
//! Upstream servers are reached over stdio (a child process started on first use and started
//! again when it dies), streamable HTTP or the older HTTP+SSE transport. [`Gateway`] holds
//! them; a [`View`] is what one caller may see of them; [`Gateway::handle`] answers one
//! JSON-RPC request of a client, passing progress back and cancelling upstream when the caller
//! goes away. The HTTP endpoint itself (`/mcp`) is the proxy's.
//!
//! Messages are kept as JSON values end to end, so fields of newer protocol revisions and a
//! server's `_meta` pass through unchanged.

mod calls;
mod gateway;
mod link;
pub mod rpc;
mod semantic;
mod transport;
mod upstream;

pub use calls::{Calls, Pending};
pub use gateway::{Gateway, Grant, SEPARATOR, Scope, View, ViewError};
pub use rpc::RpcError;
pub use semantic::{
    DEFAULT_CACHE_CAPACITY, EmbedError, Embedder, Ranked, SemanticError, ToolRanker, tool_text,
};
pub use upstream::{PROTOCOL_VERSIONS, Progress, ServerStatus, Upstream};
