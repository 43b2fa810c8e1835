//! Anthropic wire types and usage extraction.
// Tests fail by panicking; unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use tollgate_protocol::anthropic::{
    BlockDelta, ContentBlock, ImageSource, MessagesRequest, StreamEvent, StreamUsageObserver, Tool,
    usage_from_response,
};
use tollgate_protocol::openai::Usage;

#[test]
fn requests_round_trip_with_unknown_parts_preserved() {
    let body = json!({
        "model": "c", "max_tokens": 10, "context_management": {"edits": []},
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "t", "citations": []},
            {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
            {"type": "container_upload", "file_id": "file_2"},
            {"type": "tool_result", "tool_use_id": "x", "content": [{"type": "search_result", "title": "r", "source": "s", "content": []}], "is_error": false}
        ]}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}, "defer_loading": true},
                  {"type": "code_execution_20250825", "name": "code_execution"}]
    });
    let typed: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
    let blocks = typed.messages[0].content.list();
    assert!(
        matches!(&blocks[1], ContentBlock::Image(i) if matches!(i.source, ImageSource::Other(_)))
    );
    assert!(matches!(&blocks[2], ContentBlock::Other(v) if v["type"] == "container_upload"));
    assert!(matches!(typed.tools.as_ref().unwrap()[1], Tool::Other(_)));
    assert_eq!(serde_json::to_value(&typed).unwrap(), body);
}

#[test]
fn malformed_known_blocks_are_errors_not_raw() {
    let bad = json!({"model": "c", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]});
    assert!(serde_json::from_value::<MessagesRequest>(bad).is_err());
}

#[test]
fn stream_events_parse_and_encode() {
    for name in ["streams/anthropic_tools.sse", "streams/openai_text.expected.sse"] {
        for event in common::frames(common::text(name).as_bytes()) {
            let typed: StreamEvent = serde_json::from_str(&event.data).unwrap();
            assert_eq!(Some(typed.name()), event.event.as_deref());
            let again: Value =
                serde_json::from_slice(common::frames(&typed.to_sse())[0].data.as_bytes()).unwrap();
            assert_eq!(again, serde_json::from_str::<Value>(&event.data).unwrap());
        }
    }
    let other: StreamEvent = serde_json::from_str(
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"citations_delta","citation":{}}}"#,
    )
    .unwrap();
    assert!(matches!(other, StreamEvent::ContentBlockDelta { delta: BlockDelta::Other(_), .. }));
}

#[test]
fn usage_from_a_response_counts_cache_as_prompt() {
    let body = common::json("a2o_response/tools.json")["response"].to_string();
    assert_eq!(
        usage_from_response(body.as_bytes()),
        Some(Usage { prompt_tokens: 592, completion_tokens: 89, cached_tokens: 100 })
    );
    assert_eq!(usage_from_response(b"{\"type\":\"error\"}"), None);
    assert_eq!(usage_from_response(b"not json"), None);
}

#[test]
fn the_stream_observer_reads_start_and_delta() {
    let mut observer = StreamUsageObserver::new();
    assert_eq!(observer.usage(), None);
    for event in common::frames(common::text("streams/anthropic_tools.sse").as_bytes()) {
        observer.observe(&event.data);
    }
    assert_eq!(
        observer.usage(),
        Some(Usage { prompt_tokens: 592, completion_tokens: 89, cached_tokens: 100 })
    );
    // Newer servers repeat input counts in message_delta; the later count wins.
    observer.observe(
        r#"{"type":"message_delta","delta":{},"usage":{"input_tokens":500,"output_tokens":90}}"#,
    );
    assert_eq!(
        observer.usage(),
        Some(Usage { prompt_tokens: 620, completion_tokens: 90, cached_tokens: 100 })
    );
}
