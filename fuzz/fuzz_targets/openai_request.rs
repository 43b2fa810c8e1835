//! A client's `/v1/chat/completions` or `/v1/embeddings` body: parsed, validated, and (when
//! a valid chat request) translated for an Anthropic-format deployment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_protocol::openai::{parse_object, validate_chat_request, validate_embeddings_request};
use tollgate_protocol::translate::openai_request_to_anthropic;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_object(data) else { return };
    let _ = validate_embeddings_request(&body);
    if validate_chat_request(&body).is_err() {
        return;
    }
    if let Ok((messages, _dropped)) = openai_request_to_anthropic(&body, "upstream-model") {
        assert_eq!(messages["model"], "upstream-model");
        assert!(messages["messages"].is_array(), "no messages: {messages}");
        assert!(messages["max_tokens"].is_u64(), "no max_tokens: {messages}");
        let text = messages.to_string();
        let again: serde_json::Value = serde_json::from_str(&text).expect("output reparses");
        assert_eq!(again, messages);
    }
});
