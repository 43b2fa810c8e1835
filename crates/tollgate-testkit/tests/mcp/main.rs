//! Black-box tests of the mock MCP servers: over real HTTP, and as a child process on stdio.

// clippy's allow-*-in-tests covers `#[test]` bodies only, not the shared helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod http;
mod sse;
mod stdio;
mod support;
