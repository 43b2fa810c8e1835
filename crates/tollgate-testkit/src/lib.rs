//! Test and benchmark helpers for tollgate: mock upstreams that speak the providers'
//! protocols (and mock MCP servers), programmable per request, observable after the fact.

pub mod anthropic_mock;
pub mod flaky;
pub mod github_mock;
pub mod mcp_mock;
pub mod openai_mock;
pub mod pg;
pub mod records;
pub mod redis_server;
pub mod refused;
pub mod spawn;

pub use anthropic_mock::MockAnthropic;
pub use flaky::FlakyRelay;
pub use github_mock::MockGitHub;
pub use mcp_mock::{McpCall, McpOptions, McpTransport, MockMcp};
pub use openai_mock::{
    MockConfig, MockOpenAi, RecordedRequest, Reply, ReplySpec, ResponseFailure, ToolCall,
};
pub use pg::TestDatabase;
pub use records::spend_record;
pub use redis_server::TestRedis;
pub use refused::RefusingPort;
pub use spawn::{TestApp, fast_options};
