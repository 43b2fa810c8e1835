//! The tool calls of a Chat Completions stream, gathered from their fragments for a client
//! whose stream carries one call at a time (Anthropic's `tool_use` blocks, Responses'
//! `function_call` items): providers interleave the fragments of several calls, and GitHub
//! Copilot streams calls in choices of their own, numbering them from 0 again.

use std::ops::{Deref, DerefMut};

use crate::openai::types::ToolCallDelta;

/// One tool call as far as it has arrived.
#[derive(Debug)]
pub(crate) struct PendingCall {
    /// Choice index and tool call index.
    pub key: (u32, u32),
    pub id: String,
    pub name: String,
    pub arguments: String,
    /// Bytes of `arguments` already sent.
    pub sent: usize,
    /// Where the client's stream carries the call (its block or output index), once opened.
    pub opened: Option<usize>,
}

impl PendingCall {
    /// Whether the arguments so far are a whole JSON value.
    pub fn arguments_complete(&self) -> bool {
        serde_json::from_str::<serde::de::IgnoredAny>(&self.arguments).is_ok()
    }
}

/// Every call of one stream, in the order first seen.
#[derive(Debug, Default)]
pub(crate) struct PendingCalls(Vec<PendingCall>);

impl PendingCalls {
    /// Adds one fragment of choice `choice`. The id and name are taken from the first
    /// fragment that has them, until the call is opened; arguments are appended.
    pub fn merge(&mut self, choice: u32, call: ToolCallDelta) {
        let function = call.function.unwrap_or_default();
        let key = (choice, call.index);
        let pos = match self.0.iter().position(|t| t.key == key) {
            Some(p) => p,
            None => {
                self.0.push(PendingCall {
                    key,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                    sent: 0,
                    opened: None,
                });
                self.0.len() - 1
            }
        };
        let tool = &mut self.0[pos];
        if tool.opened.is_none() {
            if let Some(id) = call.id.filter(|s| !s.is_empty()) {
                tool.id = id;
            }
            if let Some(name) = function.name.filter(|s| !s.is_empty()) {
                tool.name = name;
            }
        }
        if let Some(fragment) = function.arguments {
            tool.arguments.push_str(&fragment);
        }
    }

    /// The first call not opened yet.
    pub fn waiting(&self) -> Option<usize> {
        self.0.iter().position(|t| t.opened.is_none())
    }
}

impl Deref for PendingCalls {
    type Target = [PendingCall];

    fn deref(&self) -> &[PendingCall] {
        &self.0
    }
}

impl DerefMut for PendingCalls {
    fn deref_mut(&mut self) -> &mut [PendingCall] {
        &mut self.0
    }
}
