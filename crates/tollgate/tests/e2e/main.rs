//! End-to-end tests with real clients: the Claude Code CLI, the Codex CLI, and a headless
//! Chromium driving the `/github` page and the `/ui` admin console, each against tollgate
//! running in-process in front of testkit upstreams.
//!
//! They need tools outside Cargo (`npm install --prefix .tools ...` and Debian's `chromium`),
//! so they are `#[ignore]`d for a plain `cargo test`; `scripts/test` installs the tools and
//! runs them with `cargo nextest run -p tollgate --test e2e --run-ignored ignored-only`.
//! A missing tool fails the test with the command that installs it.

// Test code: unwrap/expect/panic are how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod claude_code;
mod codex;
mod console;
mod mcp;
mod support;
