//! What a streamed answer said, assembled from the events the client received, so a spend
//! record that keeps bodies keeps streamed answers too. Only built when the operator keeps
//! prompts (`store_prompts_in_spend_logs`).

use serde_json::{Map, Value, json};
use tollgate_protocol::sse::SseEvent;

use tollgate_protocol::Protocol;

/// The answer so far, in the client's protocol's terms.
#[derive(Debug)]
pub struct Transcript {
    protocol: Protocol,
    text: String,
    reasoning: String,
    /// Tool calls by stream index: id, name, arguments as streamed.
    tools: Vec<(u64, String, String, String)>,
    stop_reason: Option<String>,
    error: Option<Value>,
}

impl Transcript {
    /// An empty transcript of a stream in `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            protocol,
            text: String::new(),
            reasoning: String::new(),
            tools: Vec::new(),
            stop_reason: None,
            error: None,
        }
    }

    /// Reads one event as the client received it.
    pub fn observe(&mut self, frame: &[u8]) {
        let event = SseEvent::parse(frame);
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else { return };
        match self.protocol {
            Protocol::Chat => self.openai(&data),
            Protocol::Messages => self.anthropic(&data),
            Protocol::Responses => self.responses(&data),
        }
    }

    fn tool(&mut self, index: u64) -> &mut (u64, String, String, String) {
        let at = match self.tools.iter().position(|t| t.0 == index) {
            Some(at) => at,
            None => {
                self.tools.push((index, String::new(), String::new(), String::new()));
                self.tools.len() - 1
            }
        };
        &mut self.tools[at]
    }

    fn openai(&mut self, data: &Value) {
        if let Some(e) = data.get("error") {
            self.error = Some(e.clone());
        }
        for choice in data["choices"].as_array().into_iter().flatten() {
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str() {
                self.text.push_str(t);
            }
            for key in ["reasoning_content", "reasoning", "reasoning_text"] {
                if let Some(t) = delta[key].as_str() {
                    self.reasoning.push_str(t);
                }
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let tool = self.tool(call["index"].as_u64().unwrap_or_default());
                if let Some(id) = call["id"].as_str() {
                    tool.1.push_str(id);
                }
                if let Some(name) = call["function"]["name"].as_str() {
                    tool.2.push_str(name);
                }
                if let Some(args) = call["function"]["arguments"].as_str() {
                    tool.3.push_str(args);
                }
            }
            if let Some(r) = choice["finish_reason"].as_str() {
                self.stop_reason = Some(r.to_owned());
            }
        }
    }

    fn anthropic(&mut self, data: &Value) {
        match data["type"].as_str() {
            Some("content_block_start") if data["content_block"]["type"] == "tool_use" => {
                let block = &data["content_block"];
                let tool = self.tool(data["index"].as_u64().unwrap_or_default());
                tool.1.push_str(block["id"].as_str().unwrap_or_default());
                tool.2.push_str(block["name"].as_str().unwrap_or_default());
            }
            Some("content_block_delta") => {
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        self.text.push_str(delta["text"].as_str().unwrap_or_default())
                    }
                    Some("thinking_delta") => {
                        self.reasoning.push_str(delta["thinking"].as_str().unwrap_or_default())
                    }
                    Some("input_json_delta") => {
                        let index = data["index"].as_u64().unwrap_or_default();
                        let part = delta["partial_json"].as_str().unwrap_or_default().to_owned();
                        self.tool(index).3.push_str(&part);
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                if let Some(r) = data["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(r.to_owned());
                }
            }
            Some("error") => self.error = Some(data["error"].clone()),
            _ => {}
        }
    }

    fn responses(&mut self, data: &Value) {
        let index = data["output_index"].as_u64().unwrap_or_default();
        match data["type"].as_str() {
            Some("response.output_text.delta") => {
                self.text.push_str(data["delta"].as_str().unwrap_or_default())
            }
            Some("response.reasoning_summary_text.delta" | "response.reasoning_text.delta") => {
                self.reasoning.push_str(data["delta"].as_str().unwrap_or_default())
            }
            Some("response.output_item.added") if data["item"]["type"] == "function_call" => {
                let item = &data["item"];
                let tool = self.tool(index);
                tool.1.push_str(item["call_id"].as_str().unwrap_or_default());
                tool.2.push_str(item["name"].as_str().unwrap_or_default());
            }
            Some("response.function_call_arguments.delta") => {
                let part = data["delta"].as_str().unwrap_or_default().to_owned();
                self.tool(index).3.push_str(&part);
            }
            Some("response.completed" | "response.incomplete" | "response.failed") => {
                let response = &data["response"];
                let reason = response["incomplete_details"]["reason"].as_str();
                self.stop_reason = reason.or(response["status"].as_str()).map(str::to_owned);
                if !response["error"].is_null() {
                    self.error = Some(response["error"].clone());
                }
            }
            Some("error") => self.error = Some(data.clone()),
            _ => {}
        }
    }

    /// The assembled answer.
    pub fn into_value(self) -> Value {
        let mut out = Map::new();
        out.insert("stream".into(), Value::Bool(true));
        out.insert("content".into(), Value::String(self.text));
        if !self.reasoning.is_empty() {
            out.insert("reasoning".into(), Value::String(self.reasoning));
        }
        if !self.tools.is_empty() {
            let tools = self
                .tools
                .into_iter()
                .map(|(_, id, name, arguments)| json!({ "id": id, "name": name, "arguments": arguments }))
                .collect();
            out.insert("tool_calls".into(), Value::Array(tools));
        }
        if let Some(r) = self.stop_reason {
            out.insert("stop_reason".into(), Value::String(r));
        }
        if let Some(e) = self.error {
            out.insert("error".into(), e);
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_openai_chunks() {
        let mut t = Transcript::new(Protocol::Chat);
        for data in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"lo"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"get","arguments":"{\"a\""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"tool_calls"}]}"#,
        ] {
            t.observe(format!("data: {data}\n\n").as_bytes());
        }
        t.observe(b"data: [DONE]\n\n");
        let v = t.into_value();
        assert_eq!(v["content"], "Hello");
        assert_eq!(v["tool_calls"][0]["name"], "get");
        assert_eq!(v["tool_calls"][0]["arguments"], "{\"a\":1}");
        assert_eq!(v["stop_reason"], "tool_calls");
    }

    #[test]
    fn assembles_anthropic_events() {
        let mut t = Transcript::new(Protocol::Messages);
        for (event, data) in [
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t1","name":"ls","input":{}}}"#,
            ),
            (
                "content_block_delta",
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
            ),
            ("message_delta", r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"}}"#),
        ] {
            t.observe(format!("event: {event}\ndata: {data}\n\n").as_bytes());
        }
        let v = t.into_value();
        assert_eq!(v["content"], "Hi");
        assert_eq!(v["reasoning"], "hmm");
        assert_eq!(v["tool_calls"][0]["name"], "ls");
        assert_eq!(v["stop_reason"], "tool_use");
    }
}
