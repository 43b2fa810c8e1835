//! Black-box tests of the mock OpenAI upstream over real HTTP.

// clippy's allow-*-in-tests covers `#[test]` bodies only, not the shared helpers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod behaviour;
mod chat;
mod responses;
mod support;
