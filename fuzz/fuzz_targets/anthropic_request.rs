//! A client's `/v1/messages` body: parsed, validated, and (when valid) translated for an
//! OpenAI-format deployment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_protocol::anthropic::validate_messages_request;
use tollgate_protocol::openai::parse_object;
use tollgate_protocol::translate::anthropic_request_to_openai;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_object(data) else { return };
    if validate_messages_request(&body).is_err() {
        return;
    }
    if let Ok((chat, _dropped)) = anthropic_request_to_openai(&body, "upstream-model") {
        assert_eq!(chat["model"], "upstream-model");
        assert!(chat["messages"].is_array(), "no messages: {chat}");
        let text = chat.to_string();
        let again: serde_json::Value = serde_json::from_str(&text).expect("output reparses");
        assert_eq!(again, chat);
    }
});
