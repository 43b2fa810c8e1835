//! The store conformance suite: every test runs against a fresh SQLite file and a fresh
//! PostgreSQL database (see `harness`). PostgreSQL comes from `TOLLGATE_TEST_DATABASE_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`); if it is unreachable the postgres
//! tests fail, saying how to provide one.

// clippy.toml allows unwrap/expect/panic inside #[test] functions only; the harness and
// fixtures here are plain helper functions, and failing loudly is what a test helper is for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;

mod audit;
mod changes;
mod connect;
mod credentials;
mod fixtures;
mod keys;
mod maintenance;
mod mcp_servers;
mod models;
mod object_permission;
mod paging;
mod sessions;
mod spend;
mod teams;
mod usage;
mod users;
