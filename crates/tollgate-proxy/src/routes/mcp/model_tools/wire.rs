//! What the tool loop reads from and writes into a request and its answers, in the client's
//! own protocol: OpenAI chat completions or Anthropic messages.

use serde_json::{Value, json};
use tollgate_mcp::RpcError;
use tollgate_protocol::Protocol;

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Requested {
    /// The call's id, which its result must name.
    pub id: String,
    /// The tool's name as the model was offered it.
    pub name: String,
    /// The arguments, as an object (`{}` when the model sent none or sent no JSON).
    pub arguments: Value,
}

/// A tool's answer, as the model reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Outcome {
    pub text: String,
    pub is_error: bool,
}

/// Whether `body`'s `tools` hold an MCP entry: a look at the parsed request, nothing more.
pub(in crate::routes) fn has_mcp_tools(body: &Value) -> bool {
    body.get("tools").and_then(Value::as_array).is_some_and(|tools| tools.iter().any(is_mcp_entry))
}

pub(super) fn is_mcp_entry(tool: &Value) -> bool {
    tool.get("type").and_then(Value::as_str) == Some("mcp")
}

/// An MCP tool (a `tools/list` entry) as a tool of the request's protocol.
pub(super) fn as_tool(protocol: Protocol, tool: &Value) -> Value {
    let name = tool.get("name").cloned().unwrap_or(Value::Null);
    let description = tool.get("description").and_then(Value::as_str).unwrap_or_default();
    let schema = tool
        .get("inputSchema")
        .filter(|s| s.is_object())
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
    match protocol {
        Protocol::Messages => {
            json!({"name": name, "description": description, "input_schema": schema})
        }
        _ => json!({"type": "function", "function": {
            "name": name, "description": description, "parameters": schema,
        }}),
    }
}

/// The text of the conversation's last user turn (not a tool result): the semantic filter's
/// query.
pub(super) fn last_user_text(body: &Value) -> Option<String> {
    let messages = body.get("messages")?.as_array()?;
    messages.iter().rev().filter(|m| m["role"] == "user").find_map(|m| {
        let text = match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter(|p| p["type"] == "text")
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    })
}

/// Every tool call of a whole answer, in order.
pub(super) fn calls(protocol: Protocol, answer: &Value) -> Vec<Requested> {
    match protocol {
        Protocol::Messages => items(&answer["content"])
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .map(|b| Requested {
                id: b["id"].as_str().unwrap_or_default().to_owned(),
                name: b["name"].as_str().unwrap_or_default().to_owned(),
                arguments: b.get("input").filter(|i| i.is_object()).cloned().unwrap_or(json!({})),
            })
            .collect(),
        _ => items(&answer["choices"][0]["message"]["tool_calls"])
            .iter()
            .map(|c| {
                let raw = c["function"]["arguments"].as_str().unwrap_or_default();
                let arguments = serde_json::from_str::<Value>(raw)
                    .ok()
                    .filter(Value::is_object)
                    .unwrap_or_else(|| json!({}));
                Requested {
                    id: c["id"].as_str().unwrap_or_default().to_owned(),
                    name: c["function"]["name"].as_str().unwrap_or_default().to_owned(),
                    arguments,
                }
            })
            .collect(),
    }
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// A `tools/call` answer (or why there is none) as text for the model.
pub(super) fn outcome(answer: &Result<Value, RpcError>) -> Outcome {
    match answer {
        Ok(result) => {
            let parts: Vec<String> = items(&result["content"])
                .iter()
                .map(|part| match part["text"].as_str() {
                    Some(text) if part["type"] == "text" => text.to_owned(),
                    _ => part.to_string(),
                })
                .collect();
            let text = if parts.is_empty() {
                result.get("structuredContent").map(Value::to_string).unwrap_or_default()
            } else {
                parts.join("\n")
            };
            Outcome { text, is_error: result["isError"] == true }
        }
        Err(e) => Outcome { text: format!("The tool call failed: {}", e.message), is_error: true },
    }
}

/// Appends the model's turn (`answer`) and the results of its tool calls to the
/// conversation in `body`.
pub(super) fn append(
    protocol: Protocol,
    body: &mut Value,
    answer: &Value,
    results: &[(Requested, Outcome)],
) {
    let Some(messages) = body.get_mut("messages").and_then(Value::as_array_mut) else { return };
    match protocol {
        Protocol::Messages => {
            messages.push(json!({"role": "assistant", "content": answer["content"]}));
            let blocks: Vec<Value> = results
                .iter()
                .map(|(call, out)| {
                    json!({
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": out.text,
                        "is_error": out.is_error,
                    })
                })
                .collect();
            messages.push(json!({"role": "user", "content": blocks}));
        }
        _ => {
            let said = &answer["choices"][0]["message"];
            let mut turn = json!({"role": "assistant", "content": said["content"]});
            turn["tool_calls"] = said["tool_calls"].clone();
            messages.push(turn);
            for (call, out) in results {
                // Chat has no error flag on a tool message: the text says it.
                let content =
                    if out.is_error { format!("Error: {}", out.text) } else { out.text.clone() };
                messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": content}));
            }
        }
    }
}

/// Marks an answer returned because the step limit was reached.
pub(super) fn mark_step_limit(answer: &mut Value, steps: u32) {
    if let Some(answer) = answer.as_object_mut() {
        answer
            .insert("tollgate_mcp".to_owned(), json!({"steps": steps, "step_limit_reached": true}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcp_entries_are_seen_among_other_tools() {
        let body = json!({"tools": [{"type": "function"}, {"type": "mcp", "server_url": "litellm_proxy"}]});
        assert!(has_mcp_tools(&body));
        assert!(!has_mcp_tools(&json!({"tools": [{"type": "function"}]})));
        assert!(!has_mcp_tools(&json!({"messages": []})));
    }

    #[test]
    fn tools_take_each_protocols_form() {
        let tool =
            json!({"name": "memory-add", "description": "Adds", "inputSchema": {"type": "object"}});
        assert_eq!(as_tool(Protocol::Messages, &tool)["input_schema"], json!({"type": "object"}));
        let chat = as_tool(Protocol::Chat, &tool);
        assert_eq!(chat["type"], "function");
        assert_eq!(chat["function"]["name"], "memory-add");
        assert_eq!(chat["function"]["parameters"], json!({"type": "object"}));
        // A tool without a schema still gets one the providers accept.
        assert_eq!(
            as_tool(Protocol::Chat, &json!({"name": "x"}))["function"]["parameters"]["type"],
            "object"
        );
    }

    #[test]
    fn calls_are_read_from_both_protocols() {
        let chat = json!({"choices": [{"message": {"tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "a-b", "arguments": "{\"x\":1}"}},
            {"id": "c2", "type": "function", "function": {"name": "own", "arguments": "not json"}},
        ]}}]});
        let got = calls(Protocol::Chat, &chat);
        assert_eq!(
            got[0],
            Requested { id: "c1".into(), name: "a-b".into(), arguments: json!({"x": 1}) }
        );
        assert_eq!(got[1].arguments, json!({}));
        let messages = json!({"content": [
            {"type": "text", "text": "Let me look"},
            {"type": "tool_use", "id": "t1", "name": "a-b", "input": {"y": 2}},
        ]});
        let got = calls(Protocol::Messages, &messages);
        assert_eq!(
            got,
            vec![Requested { id: "t1".into(), name: "a-b".into(), arguments: json!({"y": 2}) }]
        );
    }

    #[test]
    fn results_are_text_and_failures_say_so() {
        let ok = Ok(json!({"content": [{"type": "text", "text": "5"}], "isError": false}));
        assert_eq!(outcome(&ok), Outcome { text: "5".into(), is_error: false });
        let tool_error =
            Ok(json!({"content": [{"type": "text", "text": "nope"}], "isError": true}));
        assert!(outcome(&tool_error).is_error);
        let failed = Err(RpcError::new(-32001, "timed out"));
        assert_eq!(outcome(&failed).text, "The tool call failed: timed out");
    }

    #[test]
    fn the_turn_and_results_are_appended_in_the_requests_protocol() {
        let call = Requested { id: "c1".into(), name: "a-b".into(), arguments: json!({}) };
        let out = Outcome { text: "done".into(), is_error: true };
        let mut chat = json!({"messages": [{"role": "user", "content": "hi"}]});
        let answer = json!({"choices": [{"message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "c1"}]}}]});
        append(Protocol::Chat, &mut chat, &answer, &[(call.clone(), out.clone())]);
        assert_eq!(chat["messages"][1]["tool_calls"][0]["id"], "c1");
        assert_eq!(
            chat["messages"][2],
            json!({"role": "tool", "tool_call_id": "c1", "content": "Error: done"})
        );

        let mut messages = json!({"messages": [{"role": "user", "content": "hi"}]});
        let answer =
            json!({"content": [{"type": "tool_use", "id": "c1", "name": "a-b", "input": {}}]});
        append(Protocol::Messages, &mut messages, &answer, &[(call, out)]);
        assert_eq!(messages["messages"][1]["role"], "assistant");
        assert_eq!(messages["messages"][2]["content"][0]["tool_use_id"], "c1");
        assert_eq!(messages["messages"][2]["content"][0]["is_error"], true);
    }

    #[test]
    fn the_query_is_the_last_user_text() {
        let body = json!({"messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "remember Ada"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]},
        ]});
        assert_eq!(last_user_text(&body).as_deref(), Some("remember Ada"));
        assert_eq!(last_user_text(&json!({"messages": []})), None);
    }
}
